"""The demo's before/after figure, drawn from a colorize run's own inputs, outputs and manifest.

One row per image: the gray input, the colorized output and, where the demo knows it (the
held-out colour photographs), the real colours. Images are read back from the URLs the
manifest records, so the figure shows exactly what the job wrote.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from archive_colorizer import storage
from archive_colorizer.colorize import manifest

ROW_HEIGHT = 180
"""Height of each image in the figure, in pixels (widths keep the aspect ratio)."""
LABEL_HEIGHT = 22
GAP = 6
COLUMNS = ("before (gray input)", "after (colorized)", "real colours")
MAX_COLORS = 256
"""The figure is stored as a palette PNG (median cut, Floyd-Steinberg dithering): a third of
the bytes of an RGB PNG, which keeps the copy committed to ``docs/`` small."""


@dataclass(frozen=True)
class FigureRow:
    """One row of the figure.

    Attributes:
        name: the input's file name (its label).
        before: the gray input as stored in the archive.
        after: the colorized output.
        original: the real colours, (H, W, 3) uint8 RGB, when known.
    """

    name: str
    before: Image.Image
    after: Image.Image
    original: np.ndarray | None = None


def _open(url: str, storage_options: Mapping[str, Any]) -> Image.Image:
    fs, path = storage.open_url(url, storage_options)
    image = Image.open(io.BytesIO(storage.read_bytes(fs, path)))
    return image.convert("RGB")


def pick_rows(
    output_url: str, originals: Mapping[str, np.ndarray], count: int, storage_options: Mapping[str, Any]
) -> list[FigureRow]:
    """The colorized inputs of ``output_url``'s manifest, those with known colours first.

    Args:
        output_url: a colorize OUTPUT.
        originals: real colours by input file name (e.g. ``{"chelsea.jpg": rgb}``).
        count: at most this many rows.

    Returns:
        Rows in this order: inputs named in ``originals`` (their order), then the other
        colorized inputs in path order.
    """
    table = manifest.latest_rows(
        manifest.read_manifest(output_url, storage_options, ["input_url", "output_url", "status", "recorded_at"])
    )
    done = {row["input_url"]: row["output_url"] for row in table.to_pylist() if row["status"] in manifest.DONE_STATUSES}
    by_name = {url.rsplit("/", 1)[-1]: url for url in sorted(done)}
    names = [n for n in originals if n in by_name] + [n for n in by_name if n not in originals]
    return [
        FigureRow(
            name,
            _open(by_name[name], storage_options),
            _open(done[by_name[name]], storage_options),
            originals.get(name),
        )
        for name in names[:count]
    ]


def _fit(image: Image.Image, height: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def before_after_png(rows: Sequence[FigureRow], height: int = ROW_HEIGHT) -> bytes:
    """Draw ``rows`` as a grid: before | after | real colours (blank where unknown), names on the gray inputs.

    Returns:
        PNG bytes (palette of :data:`MAX_COLORS` colours), about ``3 * 1.4 * height`` wide for
        4:3 photos and ``len(rows) * (height + GAP) + LABEL_HEIGHT`` high.
    """
    if not rows:
        raise ValueError("no colorized image to draw")
    cells = [
        [
            _fit(row.before, height),
            _fit(row.after, height),
            _fit(Image.fromarray(row.original), height) if row.original is not None else None,
        ]
        for row in rows
    ]
    widths = [max((cell.width for row in cells if (cell := row[c]) is not None), default=0) for c in range(3)]
    columns = [c for c in range(3) if widths[c]]
    canvas = Image.new(
        "RGB", (sum(widths[c] + GAP for c in columns) - GAP, LABEL_HEIGHT + len(rows) * (height + GAP) - GAP), "white"
    )
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    left = 0
    for c in columns:
        draw.text((left + 2, 3), COLUMNS[c], fill="black", font=font)
        for r, row in enumerate(cells):
            top = LABEL_HEIGHT + r * (height + GAP)
            cell = row[c]
            if cell is not None:
                canvas.paste(cell, (left, top))
            if c == 0:  # the input's name in a corner of its gray image
                box = draw.textbbox((left + 4, top + height - 20), rows[r].name, font=font)
                draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill="white")
                draw.text((left + 4, top + height - 20), rows[r].name, fill="black", font=font)
        left += widths[c] + GAP
    buffer = io.BytesIO()
    canvas.quantize(MAX_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        buffer, "PNG", optimize=True
    )
    return buffer.getvalue()


def write_figure(url: str, rows: Sequence[FigureRow], storage_options: Mapping[str, Any]) -> str:
    """Write :func:`before_after_png` of ``rows`` to ``url``; returns ``url``."""
    fs, path = storage.open_url(url, storage_options)
    storage.write_bytes(fs, path, before_after_png(rows))
    return url
