"""Per image: decode, filter, resize, encode; and the train/val split.

Pure functions on bytes, no Ray and no storage, so every rule is testable on its own:

1. decode with Pillow (:func:`images.decode`), EXIF orientation applied, pixel limit checked
   from the header first; undecodable bytes are ``dropped_corrupt``, oversized ``dropped_too_large``;
2. convert to 8-bit RGB (:func:`images.to_rgb`);
3. drop ``dropped_small`` if the shorter side is below ``min_size``;
4. drop ``dropped_grayscale`` if :func:`images.mean_chroma` is below ``gray_threshold``:
   a gray photo has no colour to teach (pix2pix colorization learns ab from L);
5. drop ``dropped_low_color`` if the Hasler & Suesstrunk colourfulness
   (:func:`archive_colorizer.colorfulness.colorfulness`, on the same <= 256 px thumbnail) is
   below ``color_threshold``: desaturated, faded and gray-toned prints pass the chroma test
   but teach the model dull colours (see :data:`archive_colorizer.colorfulness.LOW_COLOR_THRESHOLD`
   for the measurement behind the default);
6. resize so the shorter side is ``size`` (Lanczos, aspect ratio kept) and encode JPEG.

Any other exception raised for one image, in decoding or after it (colour conversion, resize,
encode, an exception type the decoder does not map), makes it ``dropped_error`` with the
exception's type and message: one image never fails its shard.

Decode, resize and encode are deterministic, so the same photo gives the same bytes from a
folder, an archive or a bucket.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from archive_colorizer import images
from archive_colorizer.colorfulness import LOW_COLOR_THRESHOLD, colorfulness

OUTCOMES = (
    "written",
    "dropped_corrupt",
    "dropped_too_large",
    "dropped_small",
    "dropped_grayscale",
    "dropped_low_color",
    "dropped_unreadable",
    "dropped_error",
)
"""Every input ends in exactly one of these; their counts add up to the number of inputs."""

SPLITS = ("train", "val")


@dataclass(frozen=True)
class ProcessSettings:
    """The per-image rules (a subset of :class:`~archive_colorizer.config.PrepareConfig`).

    Attributes:
        size: shorter side of the stored image in pixels.
        min_size: smallest accepted shorter side of the input, pixels.
        gray_threshold: smallest accepted mean chroma (8-bit BT.601 levels).
        jpeg_quality: JPEG quality 1-100 of the stored image.
        max_pixels: largest accepted input, pixels (checked before decoding).
        color_threshold: smallest accepted colourfulness M (0 turns the test off).
    """

    size: int = 286
    min_size: int = 128
    gray_threshold: float = images.GRAY_CHROMA_THRESHOLD
    jpeg_quality: int = 95
    max_pixels: int = images.DEFAULT_MAX_PIXELS
    color_threshold: float = LOW_COLOR_THRESHOLD


@dataclass(frozen=True)
class Processed:
    """What became of one input.

    Attributes:
        outcome: one of :data:`OUTCOMES`.
        jpeg: the stored JPEG bytes when ``outcome == "written"``, else ``None``.
        width, height: the stored image's size in pixels (0 when dropped).
        error: why the input was dropped, naming the source; ``None`` when written.
    """

    outcome: str
    jpeg: bytes | None = None
    width: int = 0
    height: int = 0
    error: str | None = None


def process_image(data: bytes, settings: ProcessSettings, source: str = "<bytes>") -> Processed:
    """Decode, filter, resize and encode one image (the steps in the module docstring).

    Args:
        data: the file's bytes (may be empty or not an image at all).
        settings: the rules.
        source: the input's URL, used in the ``error`` messages.

    Returns:
        A :class:`Processed`; never raises for bad input: an unexpected exception for this
        image gives ``dropped_error`` with ``"<source>: <stage>: <Type>: <message>"``.
    """
    stage = "decode"
    try:
        decoded = images.decode(data, source=source, max_pixels=settings.max_pixels)
    except images.ImageDecodeError as exc:
        outcome = "dropped_too_large" if exc.reason == "too_large" else "dropped_corrupt"
        return Processed(outcome, error=str(exc))
    except Exception as exc:  # an exception type the decoder does not map: this image only
        return _failed(source, stage, exc)
    try:
        stage = "filter"
        rgb = images.to_rgb(decoded.image)
        dropped = _filter(rgb, settings, source)
        if dropped is not None:
            return dropped
        stage = "resize"
        resized = images.resize_shorter_side(rgb, settings.size)
        stage = "encode"
        return Processed("written", images.jpeg_bytes(resized, quality=settings.jpeg_quality), *resized.size)
    except Exception as exc:  # colour conversion, resize, encode: this image only
        return _failed(source, stage, exc)


def _failed(source: str, stage: str, exc: Exception) -> Processed:
    return Processed("dropped_error", error=f"{source}: {stage}: {type(exc).__name__}: {exc}")


def _filter(rgb: Image.Image, settings: ProcessSettings, source: str) -> Processed | None:
    """The drop an 8-bit RGB image gets from the size, chroma and colourfulness tests, or ``None``."""
    width, height = rgb.size
    if min(width, height) < settings.min_size:
        return Processed("dropped_small", error=f"{source}: {width}x{height} is below min_size {settings.min_size}")
    chroma = images.mean_chroma(rgb)
    if chroma < settings.gray_threshold:
        return Processed(
            "dropped_grayscale",
            error=f"{source}: mean chroma {chroma:.2f} is below gray_threshold {settings.gray_threshold}",
        )
    if settings.color_threshold > 0:
        score = thumbnail_colorfulness(rgb)
        if score < settings.color_threshold:
            return Processed(
                "dropped_low_color",
                error=f"{source}: colourfulness {score:.2f} is below color_threshold {settings.color_threshold}",
            )
    return None


def thumbnail_colorfulness(rgb: Image.Image, max_side: int = 256) -> float:
    """Colourfulness M of an 8-bit RGB image reduced to at most ``max_side`` px (bilinear), as prepare tests it."""
    small = rgb.copy()
    small.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return colorfulness(np.asarray(small))


def assign_split(path: str, val_fraction: float, seed: int = 0) -> str:
    """``"val"`` or ``"train"`` for an image, from a stable hash of its relative path.

    The path's UTF-8 bytes, salted with ``seed``, are hashed with BLAKE2b (64 bits) and read as a
    number u in [0, 1); the image is ``val`` when u < ``val_fraction``. The result depends on
    nothing else (not on the run, machine, order or Python's hash seed), so a photo keeps its
    split across runs and across folder, zip, tar and bucket copies of a collection, and a larger
    ``val_fraction`` only moves images from train to val.

    Args:
        path: the image's ``/``-separated path relative to the collection root.
        val_fraction: in [0, 1].
        seed: salt in [0, 2**63); another seed draws another validation set.
    """
    digest = hashlib.blake2b(path.encode("utf-8"), digest_size=8, salt=seed.to_bytes(8, "little")).digest()
    return "val" if int.from_bytes(digest, "big") / 2**64 < val_fraction else "train"
