"""IIIF input: the canvases of a IIIF Presentation manifest (or collection) as the rows of a colorize run.

``colorize --input-iiif``: the driver reads the manifest (:mod:`archive_colorizer.iiif`), makes one
row per canvas's full-size image with its output at ``OUTPUT/<manifest name>/<canvas number>``,
drops inputs earlier runs finished, and hands the rows on as one dataset; :mod:`.iiif_out` writes
the output manifests at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from archive_colorizer import storage
from archive_colorizer.colorize import input_rows, manifest
from archive_colorizer.colorize.listing_progress import run_progress
from archive_colorizer.colorize.listing_tasks import LISTING_BLOCK_BYTES, ListingContext, drop_finished


@dataclass
class IiifSource:
    """The input manifests of a ``--input-iiif`` run, read by the driver (for the output manifests).

    Attributes:
        manifests: manifest id -> (label, output folder name, its canvases in order).
    """

    manifests: dict[str, tuple[str, str, list[Any]]] = field(default_factory=dict)


def iiif_rows(context: ListingContext, manifest_url: str) -> tuple[list[dict[str, Any]], IiifSource]:
    """A listing row per canvas of the IIIF manifest or collection at ``manifest_url`` (:mod:`archive_colorizer.iiif`).

    A canvas's input URL is its full-size image request; its output is
    ``OUTPUT/<manifest name>/<canvas number, 4 digits>.<format>`` and its row keeps ``canvas_id``.
    A canvas without an image is a failed row (reason ``no_image`` or ``not_an_image``; input URL
    the canvas id). An image that two canvases share is one input (the first canvas's row).

    Raises:
        StorageError: a manifest or collection cannot be read; ValueError: it is not IIIF.
    """
    from archive_colorizer import iiif

    roots, source = context.roots(), IiifSource()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    names: set[str] = set()
    labels: dict[str, str] = {}
    for canvas in iiif.read_canvases(manifest_url, context.storage_options, labels=labels):
        if canvas.manifest_id not in source.manifests:
            name = _unique(_slug(canvas.manifest_id), names)
            source.manifests[canvas.manifest_id] = (labels.get(canvas.manifest_id, name), name, [])
        _, name, canvases = source.manifests[canvas.manifest_id]
        canvases.append(canvas)
        if canvas.image_url is None:
            error = f"canvas {canvas.canvas_id} of {canvas.manifest_id}: no image to colorize ({canvas.error})"
            rows.append(manifest.new_row(canvas.canvas_id, status=manifest.FAILED, reason=canvas.error, error=error))
            rows[-1]["canvas_id"] = canvas.canvas_id
            continue
        if canvas.image_url in seen:
            continue
        seen.add(canvas.image_url)
        fmt = "JPEG" if context.requested_format == "auto" else context.requested_format.upper()
        relative = f"{name}/{len(canvases):04d}{input_rows.SUFFIX_BY_FORMAT[fmt]}"
        out_url = storage.to_url(roots.output_fs, storage.join(roots.output_path, relative))
        rows.append(
            manifest.new_row(canvas.image_url, output_url=out_url, output_format=fmt, canvas_id=canvas.canvas_id)
        )
    return rows, source


def _slug(manifest_id: str) -> str:
    """A folder name from a manifest id: its last path part without ``.json`` (``.../v3/manifest.json`` -> ``v3``)."""
    parts = [p for p in manifest_id.split("?")[0].rstrip("/").split("/") if p]
    last = parts[-1] if parts else "manifest"
    if last.lower() in ("manifest", "manifest.json") and len(parts) > 1:
        last = parts[-2]
    last = last.removesuffix(".json")
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in last).strip("._")
    return cleaned or "manifest"


def _unique(name: str, names: set[str]) -> str:
    candidate, number = name, 2
    while candidate in names:
        candidate, number = f"{name}-{number}", number + 1
    names.add(candidate)
    return candidate


def iiif_dataset(manifest_url: str, context: ListingContext, resume_from: Any = None):
    """The listing dataset of a IIIF manifest or collection: its rows, made by the driver, as one dataset.

    Returns:
        ``(dataset, progress, source, index)``: as :func:`tree_dataset`, plus the :class:`IiifSource`.
    """
    import ray
    import ray.data

    index = resume_from.build([""]) if resume_from is not None else None
    context = replace(context, index=index)
    rows, source = iiif_rows(context, manifest_url)
    rows, other, passed = drop_finished(rows, context)
    progress = run_progress(context.run_id, 1)
    ray.get(progress.report("iiif", len(rows), other, passed, True))
    size = context.first_chunk_rows
    tables = [manifest.to_table(rows[start : start + size]) for start in range(0, len(rows), size)]
    dataset = ray.data.from_arrow(tables or [manifest.ROW_SCHEMA.empty_table()])
    dataset.context.target_max_block_size = LISTING_BLOCK_BYTES
    return dataset, progress, source, index
