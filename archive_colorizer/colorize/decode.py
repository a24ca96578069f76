"""CPU stage before the actors: read, decode, classify, and squeeze the gray image for the generator.

Per input: skip it if an earlier run finished it and its output exists (``skipped_existing``,
the input is not even read); read its bytes; decode them (:func:`archive_colorizer.images.decode`:
EXIF orientation applied, pixel limit, JPEGs at a reduced DCT scale); skip colour photographs
(``skipped_color``, from :func:`archive_colorizer.images.mean_chroma`); otherwise resize its
gray values to ``model_size`` x ``model_size`` (8-bit). The actor turns them into the
generator's input ``L/50 - 1`` on its device. Whatever goes wrong with one input becomes a
``failed`` row; the batch carries on.

Between split stages the bytes do not travel on (``keep_bytes=False``): the rows go through the
predictor actors, often on a GPU node, and a batch of 16 100-MP TIFFs would carry 1.6-3.2 GB
into that node's object store and out again. The merge stage reads each input again from its
URL and decodes it at full size (a second read of the file, on a CPU node). The fused stage, which
merges in the same task, decodes each input once at full size instead and hands the image to
the merge (:func:`prepare_batch`'s ``keep``, bounded by :data:`KEEP_PIXELS`). Nothing here
imports torch, so the CPU workers start fast and stay small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from archive_colorizer import color, gates, images, storage
from archive_colorizer.colorize import manifest, overlap
from archive_colorizer.colorize.stage_settings import StageSettings
from archive_colorizer.errors import StorageError

DRAFT_SIDE = 256
"""Smallest side decoded in this stage: the colour measure looks at a 256-pixel thumbnail."""
KEEP_PIXELS = 64_000_000
"""Most decoded pixels a fused task keeps between its decode and its merge (64 MB of 8-bit gray)."""
GRAY_MODES = ("1", "L", "LA", "La", "F", *images.SIXTEEN_BIT_MODES)
"""Modes that hold no colour at all (their mean chroma is 0 by construction)."""


@dataclass
class GrayPlanes:
    """The gray values of a decoded image, and its transparency.

    Attributes:
        gray8: mode "L" image, 8-bit gray (the top 8 bits of 16-bit values).
        gray16: (H, W) uint16 gray values of a 16-bit input, else None.
        alpha: mode "L" alpha channel when the input has transparency that is not fully opaque.
    """

    gray8: Image.Image
    gray16: np.ndarray | None = None
    alpha: Image.Image | None = None


def _alpha(image: Image.Image) -> Image.Image | None:
    if image.mode in ("RGBA", "LA", "PA"):
        alpha = image.getchannel("A")
    elif "transparency" in image.info and image.mode in ("P", "L", "RGB"):
        alpha = image.convert("RGBA").getchannel("A")
    else:
        return None
    return None if alpha.getextrema() == (255, 255) else alpha


def gray_planes(image: Image.Image) -> GrayPlanes:
    """Split a decoded image of any mode into its gray values and alpha.

    Gray is Pillow's ITU-R 601-2 luma (``convert("L")``) for colour modes and palettes (CMYK
    through RGB), the values themselves for gray modes, colour channels taken before any
    transparency is applied. 16-bit gray (``I;16*``, ``I``) is kept in ``gray16`` (clipped to
    [0, 65535]); 32-bit float gray is clipped to [0, 255]. A mode "L" image is returned itself, not
    copied (callers only read it).
    """
    alpha = _alpha(image)
    if image.mode in images.SIXTEEN_BIT_MODES:
        gray16 = np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
        return GrayPlanes(Image.fromarray((gray16 >> 8).astype(np.uint8)), gray16, alpha)
    if image.mode == "F":
        return GrayPlanes(Image.fromarray(images.gray_to_uint8(image)), None, alpha)
    if image.mode == "CMYK":
        return GrayPlanes(image.convert("RGB").convert("L"), None, alpha)
    return GrayPlanes(image if image.mode == "L" else image.convert("L"), None, alpha)


def colour_measure(image: Image.Image) -> float:
    """Mean chroma of ``image`` in 8-bit levels (:func:`images.mean_chroma`); 0 for gray modes."""
    return 0.0 if image.mode in GRAY_MODES else images.mean_chroma(image)


def small_gray(gray8: Image.Image, size: int) -> np.ndarray:
    """The gray image squeezed to ``size`` x ``size`` (box reduction, then bilinear): (size, size) uint8.

    Args:
        gray8: mode "L" image, any size.

    Images at least four times ``size`` on both sides are first halved by OpenCV's 2 x 2 mean
    (:func:`color.halve`, SIMD), then squeezed by Pillow from that: about 0.2 ms less per 1.7 MP
    scan (0.2 against 0.4 ms at 32 px, 0.55 against 0.8 at 128), and the result differs from
    squeezing the whole image by half a level on average.
    """
    width, height = gray8.size
    if width >= 4 * size and height >= 4 * size:
        gray8 = Image.fromarray(color.halve(images.gray_array(gray8)))
    return np.asarray(gray8.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))


def read_input(row: dict[str, Any], settings: StageSettings) -> bytes | None:
    """The storage requests of one pending row: its input's bytes, or None when an earlier run
    finished it and its output exists (a re-run's existence check; the input is not read).

    Runs on :class:`~archive_colorizer.colorize.overlap.Requests`' threads, ahead of the decode.

    Raises:
        FileNotFoundError: the input is gone (message names it).
        StorageError: the input cannot be read.
    """
    if not settings.overwrite and row["previous_sha256"] is not None:
        fs, path = storage.open_url(row["output_url"], settings.storage_options)
        if fs.exists(path):
            return None
    fs, path = storage.open_url(row["input_url"], settings.storage_options)
    gates.hold("colorize.read", row["input_url"])
    return storage.read_bytes(fs, path)


def prepare_row(row: dict[str, Any], settings: StageSettings) -> np.ndarray | None:
    """Advance one pending row through read/decode/classify; returns its small gray or None.

    Updates ``row`` in place: ``skipped_existing``, ``failed`` (with reason), ``skipped_color``,
    or still pending with ``data``, size, mode and format filled in. JPEGs are decoded at a
    reduced DCT scale (the merge stage decodes them again at full size).
    """
    return _prepare(row, settings, False, lambda: read_input(row, settings))[0]


def _prepare(
    row: dict[str, Any], settings: StageSettings, full: bool, get: Callable[[], bytes | None]
) -> tuple[np.ndarray | None, images.DecodedImage | None]:
    """The row's decode and colour check; ``get()`` gives what :func:`read_input` gave (or raises)."""
    try:
        data = get()
    except (FileNotFoundError, StorageError) as exc:
        manifest.fail(row, "unreadable", exc)
        return None, None
    if data is None:
        row.update(status=manifest.SKIPPED_EXISTING, model_sha256=row["previous_sha256"] or None)
        return None, None
    try:
        # Unless the full image is wanted, only a small one is needed here: JPEGs are decoded at
        # 1/2 to 1/8 scale (DCT scaling).
        draft = None if full else (max(settings.model_size, DRAFT_SIDE),) * 2
        decoded = images.decode(data, source=row["input_url"], max_pixels=settings.max_pixels, draft_size=draft)
    except images.ImageDecodeError as exc:
        manifest.fail(row, exc.reason, exc)
        return None, None
    image = decoded.image
    width, height = decoded.full_size
    row.update(width=width, height=height, input_mode=decoded.mode, input_format=decoded.format)
    row["mean_chroma"] = colour_measure(image)
    if settings.on_color == "skip" and row["mean_chroma"] >= settings.color_threshold:
        row.update(status=manifest.SKIPPED_COLOR, reason="color", output_url=None)
        return None, None
    row["data"] = data
    return small_gray(gray_planes(image).gray8, settings.model_size), decoded if full else None


def prepare_batch(
    batch: pa.Table,
    settings: StageSettings,
    keep: dict[int, images.DecodedImage] | None = None,
    keep_pixels: int = KEEP_PIXELS,
    keep_bytes: bool = True,
) -> pa.Table:
    """Ray Data batch function of the decode stage (rows of :data:`manifest.ROW_SCHEMA` in and out).

    Pending rows leave with ``gray_small`` ((S, S) uint8 bytes) and, with ``keep_bytes``, the
    input's bytes in ``data``, or with a final status; rows that arrive with a final status pass
    through untouched.

    Args:
        keep: when given (the fused stage), inputs are decoded once at full resolution and put
            here under their row's index in the batch, for the merge to reuse instead of
            decoding them again (their small gray is squeezed from the full image, so it may
            differ from a reduced decode's by a level here and there), while the images kept
            hold fewer than ``keep_pixels`` pixels; the rest are decoded small and decoded
            again by the merge.
        keep_bytes: keep each pending input's bytes in ``data`` for the merge (the fused stage);
            ``False`` for the split stages, whose merge re-reads the input (the bytes never
            pass through the predictor actors).
    """
    return manifest.to_table(prepare_rows(batch.to_pylist(), settings, keep, keep_pixels, keep_bytes))


def prepare_rows(
    rows: list[dict[str, Any]],
    settings: StageSettings,
    keep: dict[int, images.DecodedImage] | None = None,
    keep_pixels: int = KEEP_PIXELS,
    keep_bytes: bool = True,
) -> list[dict[str, Any]]:
    """:func:`prepare_batch` on a batch's rows as dicts, updated in place and returned (the fused
    stage keeps its rows as dicts from listing row to manifest row, without Arrow in between).

    On an object store the rows' reads run ahead of their decode, ``settings.concurrent_requests``
    at once (:class:`~archive_colorizer.colorize.overlap.Requests`); the batch's retried requests
    are counted on its first pending row (requests in flight together cannot be told apart).
    """
    held = 0
    pending = [(index, row) for index, row in enumerate(rows) if row["status"] == manifest.PENDING]
    if not pending:
        return rows
    retried = storage.retried_requests()
    urls = (pending[0][1]["input_url"], settings.output_url)
    with overlap.Requests[tuple[int, dict[str, Any]]].for_urls(
        urls, settings.concurrent_requests, settings.storage_options
    ) as requests:
        for (index, row), get in requests.ahead(pending, lambda item: read_input(item[1], settings)):
            start = time.perf_counter()
            full = keep is not None and held < keep_pixels
            try:
                gray, decoded = _prepare(row, settings, full, get)
                if full and decoded is not None:
                    keep[index] = decoded  # type: ignore[index]  # full implies keep
                    held += decoded.image.width * decoded.image.height
            except Exception as exc:  # an input must never stop the job; record what happened
                manifest.fail(row, "error", exc)
                if keep is not None:
                    keep.pop(index, None)
                gray = None
            if gray is not None:
                row["gray_small"] = gray.tobytes()
            if not keep_bytes:
                row["data"] = None
            row["seconds"] += time.perf_counter() - start
    first = pending[0][1]
    first["storage_retries"] = (first["storage_retries"] or 0) + storage.retried_requests() - retried
    return rows
