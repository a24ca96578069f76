"""CPU stage after the actors: full-resolution merge, encode, write; final rows for the manifest.

Per pending row: decode the original bytes again, take its gray values as luma and add the
predicted chroma upsampled to full size (:func:`color.merge_full_resolution`, or
:func:`color.merge_full_resolution_16bit` for 16-bit TIFF output), encode in the output format
with the input's metadata and the provenance label (:mod:`.encode`), and write it through
fsspec (whole or not at all). The final rows go to the driver, which writes the manifest
(:mod:`.manifest_writer`): a row is recorded only after its output exists.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

import numpy as np
import pyarrow as pa

from archive_colorizer import color, imageio, storage
from archive_colorizer.colorize import encode, manifest
from archive_colorizer.colorize.decode import gray_planes
from archive_colorizer.colorize.settings import StageSettings
from archive_colorizer.errors import StorageError


def render(
    decoded: imageio.DecodedImage, chroma: np.ndarray, fmt: str, provenance: encode.Provenance, jpeg_quality: int = 95
) -> bytes:
    """The colorized output file of one decoded input.

    Args:
        decoded: the input, EXIF orientation applied.
        chroma: (2, S, S) float32 Cb/Cr offsets in 8-bit levels at the model's size.
        fmt: ``JPEG``, ``PNG`` or ``TIFF``. 16-bit inputs stay 16-bit in TIFF; JPEG drops alpha.

    Returns:
        The encoded bytes; the output has the input's size and its gray values as luma.
    """
    planes = gray_planes(decoded.image)
    meta = encode.OutputMetadata.from_input(decoded.info, decoded.image.size, provenance)
    if fmt == "TIFF" and planes.gray16 is not None:
        return encode.encode_tiff16(color.merge_full_resolution_16bit(planes.gray16, chroma), meta)
    ycbcr = color.merge_full_resolution(planes.gray8, chroma)
    if fmt == "JPEG":
        return encode.encode_jpeg(ycbcr, meta, jpeg_quality)
    rgb = ycbcr.convert("RGB")
    if planes.alpha is not None:
        rgb.putalpha(planes.alpha)
    return encode.encode_png(rgb, meta) if fmt == "PNG" else encode.encode_tiff(rgb, meta)


def colorize_row(row: dict[str, Any], settings: StageSettings) -> None:
    """Render and write one pending row's output; the row becomes ``colorized`` or ``failed``."""
    provenance = encode.Provenance(settings.run.tool_version, settings.run.model_sha256)
    try:
        decoded = imageio.decode(row["data"], source=row["input_url"], max_pixels=settings.max_pixels)
    except imageio.ImageDecodeError as exc:
        manifest.fail(row, exc.reason, exc)
        return
    chroma = np.frombuffer(row["chroma"], np.float32).reshape(2, settings.model_size, settings.model_size)
    try:
        data = render(decoded, chroma, row["output_format"], provenance, settings.jpeg_quality)
    except (OSError, ValueError) as exc:
        manifest.fail(row, "encode_failed", exc)
        return
    fs, path = storage.open_url(row["output_url"], settings.storage_options)
    try:
        storage.write_bytes(fs, path, data)
    except StorageError as exc:
        manifest.fail(row, "write_failed", exc)
        return
    row.update(status=manifest.COLORIZED, model_sha256=settings.run.model_sha256)


def _stamp(rows: list[dict[str, Any]], settings: StageSettings) -> list[dict[str, Any]]:
    """Copies of ``rows`` as manifest rows of this run; rows still pending are recorded as colorized."""
    now = _dt.datetime.now(_dt.timezone.utc)
    stamped = [dict(row, run_id=settings.run.run_id, recorded_at=now) for row in rows]
    for row in stamped:
        if row["status"] == manifest.PENDING:
            row.update(status=manifest.COLORIZED, model_sha256=settings.run.model_sha256)
    return stamped


def finish_batch(batch: pa.Table, settings: StageSettings) -> pa.Table:
    """Ray Data batch function of the merge stage: rows of :data:`manifest.ROW_SCHEMA` in, rows of
    :data:`manifest.RESULT_SCHEMA` out (retries not counted on a row go to the batch's first row).
    """
    rows = batch.to_pylist()
    pending = [row for row in rows if row["status"] == manifest.PENDING]
    retried = storage.retried_requests()
    for row in pending:
        start, row_retried = time.perf_counter(), storage.retried_requests()
        try:
            colorize_row(row, settings)
        except Exception as exc:  # an input must never stop the job; record what happened
            manifest.fail(row, "error", exc)
        row["seconds"] += time.perf_counter() - start
        spent = storage.retried_requests() - row_retried
        row["storage_retries"] = (row["storage_retries"] or 0) + spent
        retried += spent  # counted on the row, not again for the batch
        row.update(data=None, chroma=None)
    final = _stamp(rows, settings)
    if final:
        final[0]["storage_retries"] = (final[0]["storage_retries"] or 0) + storage.retried_requests() - retried
    return manifest.to_table(final, manifest.RESULT_SCHEMA)
