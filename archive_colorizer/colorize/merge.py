"""CPU stage after the actors: full-resolution merge, encode, write; final rows for the manifest.

Per pending row: decode the original bytes again, take its gray values as luma and add the
predicted chroma upsampled to full size (:func:`color.merge_full_resolution`, or
:func:`color.merge_full_resolution_16bit` for 16-bit PNG and TIFF output, or the half-size chroma
planes of :func:`chroma420.chroma_planes_420` for 4:2:0 JPEG), encode in the output format
with the input's metadata and the provenance label (:mod:`.encode`), with ``--c2pa-sign`` embed a
signed C2PA manifest (:mod:`archive_colorizer.signing`), and write it through
fsspec (whole or not at all). The final rows go to the driver, which writes the manifest
(:mod:`.manifest_writer`): a row is recorded only after its output exists.
"""

from __future__ import annotations

import datetime as _dt
import functools
import posixpath
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from archive_colorizer import chroma420, color, gates, images, signing, storage
from archive_colorizer.colorize import encode, manifest, overlap
from archive_colorizer.colorize.decode import gray_planes
from archive_colorizer.colorize.stage_settings import StageSettings
from archive_colorizer.errors import StorageError

CHROMA_SUBSAMPLINGS = ("420", "444")
"""JPEG chroma resolutions: ``420`` half size (the default), ``444`` full size. PNG and TIFF are 4:4:4."""


def output_bits(decoded: images.DecodedImage, fmt: str) -> int:
    """Bits per sample of the output :func:`render` makes: 16 for 16-bit inputs written as PNG or TIFF, else 8."""
    return 16 if fmt in ("PNG", "TIFF") and decoded.image.mode in images.SIXTEEN_BIT_MODES else 8


def render(
    decoded: images.DecodedImage,
    chroma: np.ndarray,
    fmt: str,
    provenance: encode.Provenance,
    jpeg_quality: int = 95,
    jpeg_chroma: str = "420",
) -> bytes:
    """The colorized output file of one decoded input.

    Args:
        decoded: the input, EXIF orientation applied.
        chroma: (2, S, S) float32 Cb/Cr offsets in 8-bit levels at the model's size.
        fmt: ``JPEG``, ``PNG`` or ``TIFF``. 16-bit inputs stay 16-bit (48-bit colour) in PNG and
            TIFF (without alpha); JPEG is 8-bit and drops alpha.
        jpeg_chroma: ``420`` (chroma at half size, encoded from the planes) or ``444``.

    Returns:
        The encoded bytes; the output has the input's size and its gray values as luma.

    Raises:
        ValueError: ``jpeg_chroma`` is not one of :data:`CHROMA_SUBSAMPLINGS`.
    """
    if jpeg_chroma not in CHROMA_SUBSAMPLINGS:
        raise ValueError(f"chroma must be one of {', '.join(CHROMA_SUBSAMPLINGS)}, got {jpeg_chroma!r}")
    planes = gray_planes(decoded.image)
    if fmt == "JPEG" and jpeg_chroma == "420":
        luma = images.gray_array(planes.gray8)  # a view of the decoded pixels, not a copy
        cb, cr = chroma420.chroma_planes_420(luma, chroma)
        segments = encode.input_jpeg_segments(decoded.info, decoded.image.size, provenance)
        return encode.encode_jpeg_planes(luma, cb, cr, segments, jpeg_quality)
    meta = encode.OutputMetadata.from_input(decoded.info, decoded.image.size, provenance)
    if output_bits(decoded, fmt) == 16 and planes.gray16 is not None:  # 16 bits only where the input has them
        rgb16 = color.merge_full_resolution_16bit(planes.gray16, chroma)
        return encode.encode_tiff16(rgb16, meta) if fmt == "TIFF" else encode.encode_png16(rgb16, meta)
    ycbcr = color.merge_full_resolution(planes.gray8, chroma)
    if fmt == "JPEG":
        return encode.encode_jpeg(ycbcr, meta, jpeg_quality)
    rgb = ycbcr.convert("RGB")
    if planes.alpha is not None:
        rgb.putalpha(planes.alpha)
    return encode.encode_png(rgb, meta) if fmt == "PNG" else encode.encode_tiff(rgb, meta)


def needs_read(row: dict[str, Any], has_decoded: bool, signing_on: bool) -> bool:
    """Whether the merge must read ``row``'s input again: its bytes did not travel with the row
    (the split stages) and either it is not decoded yet or the signer needs the bytes."""
    return row["data"] is None and (not has_decoded or signing_on)


def read_again(row: dict[str, Any], settings: StageSettings) -> bytes:
    """The input's bytes, read again from ``row["input_url"]`` (the split stages' merge).

    Raises:
        FileNotFoundError: the input is gone since the decode stage read it.
        StorageError: it cannot be read.
    """
    fs, path = storage.open_url(row["input_url"], settings.storage_options)
    return storage.read_bytes(fs, path)


def encode_row(
    row: dict[str, Any],
    settings: StageSettings,
    decoded: images.DecodedImage | None,
    signer: signing.Signer | None,
    get: Callable[[], bytes | None],
) -> tuple[bytes, int] | None:
    """Render and sign one pending row's output; ``(its bytes, bits per sample)``, or None once the row failed.

    Args:
        decoded: the input already decoded at full resolution (the fused stage), else None:
            the input's bytes are decoded here.
        signer: embeds a signed C2PA manifest with the input's bytes as ingredient
            (``c2pa`` = ``signed``); a file it cannot sign fails the row (``c2pa_failed``).
        get: gives the input's bytes read again (:func:`read_again`, ahead of time), or None
            when ``row["data"]`` holds them or nothing needs them; what it raises fails the
            row as ``unreadable`` (a file gone since the decode stage).
    """
    provenance = encode.Provenance(settings.run.tool_version, settings.run.model_sha256)
    try:
        input_bytes = get()
    except (FileNotFoundError, StorageError) as exc:
        manifest.fail(row, "unreadable", exc)
        return None
    if input_bytes is None:
        input_bytes = row["data"]
    if decoded is None:
        try:
            decoded = images.decode(input_bytes, source=row["input_url"], max_pixels=settings.max_pixels)
        except images.ImageDecodeError as exc:
            manifest.fail(row, exc.reason, exc)
            return None
    chroma = np.frombuffer(row["chroma"], np.float32).reshape(2, settings.model_size, settings.model_size)
    try:
        fmt = row["output_format"]
        data = render(decoded, chroma, fmt, provenance, settings.jpeg_quality, settings.jpeg_chroma)
    except (OSError, ValueError) as exc:
        manifest.fail(row, "encode_failed", exc)
        return None
    if signer is not None:
        try:
            title = posixpath.basename(row["output_url"])
            data = signer.sign(data, fmt, input_bytes, row["input_format"], title, settings.run.model_sha256)
        except signing.SigningError as exc:
            manifest.fail(row, "c2pa_failed", exc)
            return None
        row["c2pa"] = signing.SIGNED
    return data, output_bits(decoded, fmt)


def write_output(row: dict[str, Any], settings: StageSettings, data: bytes) -> None:
    """Write one row's output to ``row["output_url"]`` (whole or not at all: :func:`storage.write_bytes`),
    its seconds added to the row's (on a request's thread: nothing else touches the row meanwhile).

    Raises:
        StorageError: the write failed.
    """
    start = time.perf_counter()
    try:
        fs, path = storage.open_url(row["output_url"], settings.storage_options)
        gates.hold("colorize.write", row["input_url"])
        storage.write_bytes(fs, path, data)
    finally:
        row["seconds"] += time.perf_counter() - start


def _written(row: dict[str, Any], settings: StageSettings, bits: int, error: BaseException | None) -> None:
    """The row's final status once its write ended: ``colorized``, or ``failed`` (``write_failed``, ``error``)."""
    if error is None:
        row.update(status=manifest.COLORIZED, model_sha256=settings.run.model_sha256, output_bits=bits)
    else:
        manifest.fail(row, "write_failed" if isinstance(error, StorageError) else "error", error)
    row.update(data=None, chroma=None)


def _stamp(rows: list[dict[str, Any]], settings: StageSettings) -> list[dict[str, Any]]:
    """Copies of ``rows`` as manifest rows of this run; rows still pending are recorded as colorized."""
    now = _dt.datetime.now(_dt.timezone.utc)
    stamped = [dict(row, run_id=settings.run.run_id, recorded_at=now) for row in rows]
    for row in stamped:
        if row["status"] == manifest.PENDING:
            row.update(status=manifest.COLORIZED, model_sha256=settings.run.model_sha256)
    return stamped


def finish_batch(
    batch: pa.Table, settings: StageSettings, decoded: dict[int, images.DecodedImage] | None = None
) -> pa.Table:
    """Ray Data batch function of the merge stage: rows of :data:`manifest.ROW_SCHEMA` in, rows of
    :data:`manifest.RESULT_SCHEMA` out (retries not counted on a row go to the batch's first row).

    Args:
        decoded: full-resolution inputs already decoded, by row index in the batch (the fused
            stage, :func:`~archive_colorizer.colorize.decode.prepare_batch`'s ``keep``); each is
            dropped once its output is written.
    """
    return manifest.to_table(finish_rows(batch.to_pylist(), settings, decoded), manifest.RESULT_SCHEMA)


def finish_rows(
    rows: list[dict[str, Any]], settings: StageSettings, decoded: dict[int, images.DecodedImage] | None = None
) -> list[dict[str, Any]]:
    """:func:`finish_batch` on a batch's rows as dicts: returns the final manifest rows (dicts of
    :data:`manifest.RESULT_SCHEMA`'s fields).

    Per pending row: its input read again where needed (:func:`needs_read`), :func:`encode_row`,
    :func:`write_output`. On an object store the reads run ahead and the writes behind,
    ``settings.concurrent_requests`` at once (:class:`~archive_colorizer.colorize.overlap.Requests`);
    every write has ended (and its row is final) before this returns. The batch's retried
    requests are counted on its first row.
    """
    kept = decoded if decoded is not None else {}
    # Read by this process from the references (systemic: unreadable credentials stop the job).
    signer = signing.process_signer(settings.c2pa) if settings.c2pa is not None else None
    pending = [(index, row) for index, row in enumerate(rows) if row["status"] == manifest.PENDING]
    retried = storage.retried_requests()
    urls = (pending[0][1]["input_url"] if pending else None, settings.output_url)

    def read(item: tuple[int, dict[str, Any]]) -> bytes | None:
        index, row = item
        return read_again(row, settings) if needs_read(row, index in kept, signer is not None) else None

    with overlap.Requests[tuple[int, dict[str, Any]]].for_urls(
        urls, settings.concurrent_requests, settings.storage_options
    ) as requests:
        for (index, row), get in requests.ahead(pending, read):
            start = time.perf_counter()
            try:
                encoded = encode_row(row, settings, kept.pop(index, None), signer, get)
            except Exception as exc:  # an input must never stop the job; record what happened
                manifest.fail(row, "error", exc)
                encoded = None
            row["seconds"] += time.perf_counter() - start
            if encoded is None:
                row.update(data=None, chroma=None)
                continue
            data, bits = encoded
            requests.behind(
                functools.partial(write_output, row, settings, data),
                len(data),
                functools.partial(_written, row, settings, bits),
            )
    final = _stamp(rows, settings)
    if final:
        final[0]["storage_retries"] = (final[0]["storage_retries"] or 0) + storage.retried_requests() - retried
    return final
