"""What every stage of the colorize pipeline needs to know, in one picklable object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archive_colorizer.colorize.manifest import RunInfo
from archive_colorizer.colorize.overlap import CONCURRENT_REQUESTS
from archive_colorizer.signing import SigningSettings


@dataclass(frozen=True, kw_only=True)
class StageSettings:
    """Settings shipped to the Ray tasks and actors of one run (built by the driver from the config).

    Attributes:
        output_url: OUTPUT, where outputs and manifest parts go.
        model_size: side (pixels) of the square gray image the generator sees.
        max_pixels: decompression-bomb guard.
        on_color: ``skip`` or ``colorize``.
        color_threshold: mean chroma (8-bit levels) from which an input counts as colour.
        overwrite: redo inputs an earlier run finished.
        jpeg_quality: quality of JPEG outputs.
        jpeg_chroma: chroma resolution of JPEG outputs, ``420`` or ``444``.
        run: identity of the run, stamped on manifest rows and output metadata.
        storage_options: fsspec options (may hold credentials: never logged or written).
        c2pa: where the C2PA signing credentials are (references only; each worker reads them
            itself), or None: outputs are not signed.
        concurrent_requests: storage requests a task keeps in flight on an object store (reads
            ahead, writes behind: :mod:`archive_colorizer.colorize.overlap`); 1 on local files.
    """

    output_url: str
    model_size: int
    max_pixels: int
    on_color: str
    color_threshold: float
    overwrite: bool
    jpeg_quality: int
    run: RunInfo
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    jpeg_chroma: str = "420"
    c2pa: SigningSettings | None = None
    concurrent_requests: int = CONCURRENT_REQUESTS
