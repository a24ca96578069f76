"""IIIF out: a v3 manifest per input manifest of a ``--input-iiif`` run, under ``OUTPUT/_iiif/``.

Each canvas of the input manifest whose image was colorized (in this run or an earlier one:
its final manifest row, :func:`.manifest.latest_rows`) becomes a canvas painted by a Choice of
[original, colorized] (:func:`archive_colorizer.iiif.choice_manifest`); the colorized image's
URL is ``--iiif-base-url`` followed by its path below OUTPUT, and its label gives the C2PA
status of the row. Canvases without an output are left out.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from archive_colorizer import __version__, iiif, storage
from archive_colorizer.colorize import manifest

if TYPE_CHECKING:
    from archive_colorizer.colorize.config import ColorizeConfig
    from archive_colorizer.colorize.iiif_in import IiifSource

IIIF_DIR = "_iiif"
_MIME = {".jpg": "image/jpeg", ".png": "image/png", ".tif": "image/tiff"}
_COLUMNS = ["input_url", "output_url", "status", "width", "height", "c2pa", "canvas_id", "recorded_at"]


def write_manifests(config: ColorizeConfig, source: IiifSource, model_sha256: str) -> list[str]:
    """Write ``OUTPUT/_iiif/<manifest name>.json`` for every input manifest; returns their URLs.

    Raises:
        StorageError: the manifest rows cannot be read or a IIIF manifest cannot be written.
    """
    options = config.storage_options
    rows = manifest.latest_rows(manifest.read_manifest(config.output, options, columns=_COLUMNS)).to_pylist()
    done = {row["canvas_id"]: row for row in rows if row["canvas_id"] and row["status"] in manifest.DONE_STATUSES}
    _, root = storage.open_url(config.output, options)
    base = str(config.iiif_base_url).rstrip("/")
    written = []
    for label, name, canvases in source.manifests.values():
        entries = []
        for canvas in canvases:
            row = done.get(canvas.canvas_id)
            if row is None or not row["output_url"]:
                continue
            _, path = storage.open_url(row["output_url"], options)
            relative = path[len(root.rstrip("/")) + 1 :]
            fmt = _MIME.get("." + relative.rsplit(".", 1)[-1].lower(), "image/jpeg")
            url = f"{base}/{relative}"
            entries.append(iiif.ColorizedCanvas(canvas, url, row["width"], row["height"], row["c2pa"], fmt))
        manifest_url = f"{base}/{IIIF_DIR}/{name}.json"
        document = iiif.choice_manifest(manifest_url, label, entries, model_sha256, f"archive-colorizer {__version__}")
        target = storage.join(config.output, IIIF_DIR, f"{name}.json")
        fs, path = storage.open_url(target, options)
        storage.write_bytes(fs, path, (json.dumps(document, indent=1) + "\n").encode())
        written.append(target)
        print(f"  IIIF manifest {target} ({len(entries)} of {len(canvases)} canvases) -> {manifest_url}")
    sys.stdout.flush()
    return written
