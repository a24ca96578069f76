"""Figures that train, evaluate and demo share: image grids as PNG bytes.

- :func:`image_grid_png`: a matplotlib grid (object API and the Agg canvas, no pyplot state,
  so it can be drawn from any thread or Ray worker without a display) of images in named
  columns with optional row and cell labels: the training sample grid and evaluate's contact
  sheet.
- :func:`labelled_grid_png`: a Pillow grid of images at one row height, column titles above
  and a name in the corner of each row's first image, stored as a palette PNG: the demo's
  before/after figure (small enough to commit to ``docs/``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 22
"""Height of the column titles of :func:`labelled_grid_png`, in pixels."""
GAP = 6
"""Pixels between the cells of :func:`labelled_grid_png`."""
MAX_COLORS = 256
"""Colours of the palette PNG :func:`labelled_grid_png` writes (median cut, Floyd-Steinberg
dithering): a third of the bytes of an RGB PNG."""


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (Agg canvas, ``dpi`` dots per inch)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def image_grid_png(
    columns: Mapping[str, Sequence[np.ndarray] | np.ndarray],
    *,
    row_labels: Sequence[str] | None = None,
    cell_labels: Sequence[Sequence[str]] | None = None,
    title: str = "",
    cell_inches: float = 2.0,
) -> bytes:
    """PNG grid of images: one column per named colouring, one row per image.

    Args:
        columns: column title -> N images, (H, W, 3) RGB each, uint8 or float in [0, 1].
        row_labels: N labels written left of each row (e.g. the image's name).
        cell_labels: N rows of one label per column, written under each image (e.g. its scores).
        title: figure title.
        cell_inches: width and height of one image in inches (100 dpi).

    Raises:
        ValueError: the columns hold different numbers of images, or none.
    """
    counts = {len(images) for images in columns.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every column needs the same, non-zero number of images, got {sorted(counts)}")
    count = counts.pop()
    label_space = 0.3 if cell_labels else 0.0
    # Constrained layout keeps the title clear of the column titles (tight_layout ignores suptitle).
    figure = Figure(
        figsize=(cell_inches * len(columns) + (1.2 if row_labels else 0), (cell_inches + label_space) * count + 0.5),
        layout="constrained",
    )
    axes = np.atleast_2d(figure.subplots(count, len(columns), squeeze=False))
    for column, (name, images) in enumerate(columns.items()):
        for row in range(count):
            cell = axes[row, column]
            cell.imshow(images[row], interpolation="nearest")
            cell.set_xticks([])
            cell.set_yticks([])
            if cell_labels:
                cell.set_xlabel(cell_labels[row][column], fontsize="x-small")
        axes[0, column].set_title(name, fontsize="small")
    for row, label in enumerate(row_labels or ()):
        axes[row, 0].set_ylabel(label, fontsize="x-small")
    if title:
        figure.suptitle(title, fontsize="small")
    return figure_png(figure)


def _fit(image: Image.Image, height: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def labelled_grid_png(
    titles: Sequence[str], rows: Sequence[Sequence[Image.Image | None]], names: Sequence[str], height: int
) -> bytes:
    """Draw ``rows`` of images as a grid at ``height`` pixels a row, blank where a cell is None.

    Args:
        titles: one title per column, written above it; a column with no image is left out.
        rows: per row one image (any mode, any size: resized to ``height``, aspect ratio kept)
            or None per column.
        names: per row a label written in the bottom-left corner of its first-column image.
        height: row height in pixels.

    Returns:
        PNG bytes (palette of :data:`MAX_COLORS` colours), each column as wide as its widest
        image, ``len(rows) * (height + GAP) - GAP + LABEL_HEIGHT`` high.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("no image to draw")
    cells = [[_fit(image, height) if image is not None else None for image in row] for row in rows]
    widths = [max((cell.width for row in cells if (cell := row[c]) is not None), default=0) for c in range(len(titles))]
    columns = [c for c in range(len(titles)) if widths[c]]
    canvas = Image.new(
        "RGB", (sum(widths[c] + GAP for c in columns) - GAP, LABEL_HEIGHT + len(rows) * (height + GAP) - GAP), "white"
    )
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    left = 0
    for c in columns:
        draw.text((left + 2, 3), titles[c], fill="black", font=font)
        for r, row in enumerate(cells):
            top = LABEL_HEIGHT + r * (height + GAP)
            cell = row[c]
            if cell is not None:
                canvas.paste(cell.convert("RGB"), (left, top))
            if c == columns[0]:  # the row's name in a corner of its first image
                box = draw.textbbox((left + 4, top + height - 20), names[r], font=font)
                draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill="white")
                draw.text((left + 4, top + height - 20), names[r], fill="black", font=font)
        left += widths[c] + GAP
    buffer = io.BytesIO()
    canvas.quantize(MAX_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        buffer, "PNG", optimize=True
    )
    return buffer.getvalue()
