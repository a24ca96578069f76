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
from PIL import Image

from archive_colorizer import storage
from archive_colorizer.colorize import manifest
from archive_colorizer.figures import labelled_grid_png

ROW_HEIGHT = 180
"""Height of each image in the figure, in pixels (widths keep the aspect ratio)."""
COLUMNS = ("before (gray input)", "after (colorized)", "real colours")


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


def before_after_png(rows: Sequence[FigureRow], height: int = ROW_HEIGHT) -> bytes:
    """Draw ``rows`` as a grid: before | after | real colours (blank where unknown), names on the gray inputs.

    Returns:
        PNG bytes (palette of :data:`figures.MAX_COLORS` colours), about ``3 * 1.4 * height``
        wide for 4:3 photos and ``len(rows) * (height + GAP) + LABEL_HEIGHT`` high.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("no colorized image to draw")
    cells = [
        [row.before, row.after, Image.fromarray(row.original) if row.original is not None else None] for row in rows
    ]
    return labelled_grid_png(COLUMNS, cells, [row.name for row in rows], height)


def write_figure(url: str, rows: Sequence[FigureRow], storage_options: Mapping[str, Any]) -> str:
    """Write :func:`before_after_png` of ``rows`` to ``url``; returns ``url``."""
    fs, path = storage.open_url(url, storage_options)
    storage.write_bytes(fs, path, before_after_png(rows))
    return url
