"""Per image: decode, filter, resize, encode; and the train/val split.

Pure functions on bytes, no Ray and no storage, so every rule is testable on its own:

1. decode with Pillow (:func:`imageio.decode`), EXIF orientation applied, pixel limit checked
   from the header first; undecodable bytes are ``dropped_corrupt``, oversized ``dropped_too_large``;
2. convert to 8-bit RGB (:func:`imageio.to_rgb`);
3. drop ``dropped_small`` if the shorter side is below ``min_size``;
4. drop ``dropped_grayscale`` if :func:`imageio.mean_chroma` is below ``gray_threshold``:
   a gray photo has no colour to teach (pix2pix colorization learns ab from L);
5. resize so the shorter side is ``size`` (Lanczos, aspect ratio kept) and encode JPEG.

Decode, resize and encode are deterministic, so the same photo gives the same bytes from a
folder, an archive or a bucket.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from archive_colorizer import imageio

OUTCOMES = (
    "written",
    "dropped_corrupt",
    "dropped_too_large",
    "dropped_small",
    "dropped_grayscale",
    "dropped_unreadable",
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
    """

    size: int = 286
    min_size: int = 128
    gray_threshold: float = imageio.GRAY_CHROMA_THRESHOLD
    jpeg_quality: int = 95
    max_pixels: int = imageio.DEFAULT_MAX_PIXELS


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
        A :class:`Processed`; never raises for bad input.
    """
    try:
        decoded = imageio.decode(data, source=source, max_pixels=settings.max_pixels)
    except imageio.ImageDecodeError as exc:
        outcome = "dropped_too_large" if exc.reason == "too_large" else "dropped_corrupt"
        return Processed(outcome, error=str(exc))
    rgb = imageio.to_rgb(decoded.image)
    width, height = rgb.size
    if min(width, height) < settings.min_size:
        return Processed("dropped_small", error=f"{source}: {width}x{height} is below min_size {settings.min_size}")
    chroma = imageio.mean_chroma(rgb)
    if chroma < settings.gray_threshold:
        return Processed(
            "dropped_grayscale",
            error=f"{source}: mean chroma {chroma:.2f} is below gray_threshold {settings.gray_threshold}",
        )
    resized = imageio.resize_shorter_side(rgb, settings.size)
    return Processed("written", imageio.encode_jpeg(resized, quality=settings.jpeg_quality), *resized.size)


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
