"""Decoding and encoding images with Pillow: modes, EXIF orientation, size limits, chroma.

Everything that touches image bytes goes through here, so prepare, train and colorize agree on
what a decodable image is and on how a mode becomes RGB or gray.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 250_000_000
"""Default decompression-bomb guard: images with more pixels are refused before decoding."""

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageDecodeError(ValueError):
    """An input is not a decodable image.

    Attributes:
        reason: short machine-readable class: ``empty``, ``not_an_image``, ``truncated``,
            ``corrupt``, ``too_large`` or ``unsupported``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class DecodedImage:
    """A decoded image with the metadata worth carrying to an output.

    Attributes:
        image: the pixels, EXIF orientation already applied (if requested), fully loaded.
        format: Pillow's format name of the input (``JPEG``, ``PNG``, ``TIFF``, ...).
        mode: the mode as stored in the file, before any conversion.
        info: ``dpi`` (tuple), ``exif`` (bytes, orientation reset to 1), ``icc_profile`` (bytes)
            where the input had them.
        full_size: (width, height) of the full-resolution image after orientation; differs
            from ``image.size`` only when ``decode`` was asked for a reduced ``draft_size``.
    """

    image: Image.Image
    format: str
    mode: str
    info: dict[str, Any] = field(default_factory=dict)
    full_size: tuple[int, int] = (0, 0)


def decode(
    data: bytes,
    *,
    source: str = "<bytes>",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    apply_orientation: bool = True,
    draft_size: tuple[int, int] | None = None,
) -> DecodedImage:
    """Decode image bytes with Pillow, refusing what is empty, broken or too large.

    The pixel count is checked from the header before any pixel is decoded. For animated
    images the first frame is used.

    Args:
        data: the file's bytes.
        source: name used in error messages (the input URL).
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).
        apply_orientation: rotate/flip per the EXIF Orientation tag and reset the tag to 1.
        draft_size: when the codec can decode at a reduced scale (JPEG: DCT scaling by 1/2,
            1/4 or 1/8), decode only as large as needed to keep both sides at least this
            (W, H); the whole file is still read, so truncation and corruption are detected.

    Returns:
        A :class:`DecodedImage`.

    Raises:
        ImageDecodeError: with ``reason`` naming the class of failure and a message naming
            ``source``.
    """
    if not data:
        raise ImageDecodeError("empty", f"{source}: file is empty (0 bytes)")
    _raise_pillow_limit(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    "too_large",
                    f"{source}: {width}x{height} = {width * height:,} pixels exceeds max_pixels {max_pixels:,}",
                )
            if draft_size is not None and image.format == "JPEG":
                image.draft(image.mode, draft_size)
            image.load()
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not_an_image", f"{source}: not a recognised image file") from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError("too_large", f"{source}: more than max_pixels {max_pixels:,} ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "corrupt"
        raise ImageDecodeError(reason, f"{source}: {type(exc).__name__}: {exc}") from exc
    decoded = _finish_decode(image, source, apply_orientation)
    rotated = apply_orientation and decoded.image.size != image.size
    decoded.full_size = (height, width) if rotated else (width, height)
    return decoded


def _raise_pillow_limit(max_pixels: int) -> None:
    """Let ``max_pixels`` decide what is too large.

    Pillow has its own guard: ``Image.open`` refuses images above twice
    ``Image.MAX_IMAGE_PIXELS`` (89 M pixels by default, so 179 M), before :func:`decode` can
    look at the size, and would refuse a 200 M pixel scan that ``max_pixels`` (default 250 M)
    allows. Its limit is raised to ``max_pixels`` where lower; it is never lowered, so any other
    code in the process keeps at least Pillow's own guard.
    """
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _finish_decode(image: Image.Image, source: str, apply_orientation: bool) -> DecodedImage:
    fmt, mode = image.format or "", image.mode
    info: dict[str, Any] = {}
    if "dpi" in image.info:
        info["dpi"] = tuple(float(v) for v in image.info["dpi"])
    if image.info.get("icc_profile"):
        info["icc_profile"] = image.info["icc_profile"]
    try:
        exif = image.getexif()
        # Pillow's exif_transpose copies the whole image when there is nothing to turn: only
        # an orientation other than 1 (normal) is handed to it.
        if apply_orientation and exif.get(0x0112, 1) != 1:
            transposed = ImageOps.exif_transpose(image)
            image = transposed if transposed is not None else image
            if exif.get(0x0112) is not None:
                exif[0x0112] = 1
        info["exif"] = exif.tobytes() if len(exif) else b""
    except Exception as exc:  # a corrupt EXIF block is no reason to lose the pixels
        info["exif"] = b""
        info["exif_error"] = f"{type(exc).__name__}: {exc}"
    if not info["exif"]:
        info.pop("exif")
    return DecodedImage(image=image, format=fmt, mode=mode, info=info)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparency (RGBA, LA, P with a transparent index) is composited over ``background``;
    16-bit and 32-bit gray is scaled to 8 bits; CMYK goes through Pillow's conversion.
    """
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        return Image.fromarray(gray_to_uint8(image)).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def gray_array(image: Image.Image) -> np.ndarray:
    """The pixels of a mode "L" image as an (H, W) uint8 array, without a copy where Pillow allows.

    ``np.asarray`` copies every pixel (Pillow's array interface goes through ``tobytes``); the
    Arrow C data interface (``pyarrow.array(image)``, Pillow 11.2+) hands out the image's own
    memory when its rows lie in one block (images up to Pillow's 16 MB block size). The view is
    read-only and keeps that memory alive. Other images are copied.

    Raises:
        ValueError: ``image`` is not mode "L".
    """
    if image.mode != "L":
        raise ValueError(f"gray_array expects a mode 'L' image, got mode {image.mode!r}")
    import pyarrow as pa

    try:
        flat = pa.array(image).to_numpy(zero_copy_only=True)
    except (ValueError, TypeError, pa.ArrowException):  # rows in several blocks; an older Pillow
        return np.asarray(image)
    return flat.reshape(image.height, image.width)


def gray_to_uint8(image: Image.Image) -> np.ndarray:
    """A 16-bit or 32-bit gray image as (H, W) uint8 (top 8 bits of 16-bit values)."""
    array = np.asarray(image)
    if image.mode == "F":
        return np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return (np.clip(array.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)


GRAY_CHROMA_THRESHOLD = 4.0
"""Default :func:`mean_chroma` below which an image counts as grayscale (8-bit levels)."""


def mean_chroma(image: Image.Image, max_side: int = 256) -> float:
    """How colourful an image is: mean BT.601 chroma magnitude in 8-bit levels.

    The image is reduced to at most ``max_side`` pixels on its longer side (bilinear),
    converted to YCbCr, and the distance of (Cb, Cr) from neutral (128, 128) is averaged over
    the pixels. A gray image scores 0 (also after JPEG compression); scanner noise on a gray
    print scanned as RGB stays around 1-2; colour photographs score about 15-55
    (scikit-image's ``rocket`` 17.5, ``astronaut`` 23, ``coffee`` 49) and a nearly black
    colour photo far less (``hubble_deep_field`` 3.0). Toned prints (sepia, cyanotype) score
    like colour photographs (about 20-40): their chroma is real, so by this measure they
    count as colour.

    Args:
        image: any mode; converted with :func:`to_rgb`.

    Returns:
        float >= 0; compare with :data:`GRAY_CHROMA_THRESHOLD`.
    """
    small = to_rgb(image).copy()
    small.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    chroma = np.asarray(small.convert("YCbCr"), dtype=np.float32)[..., 1:] - 128.0
    return float(np.sqrt((chroma**2).sum(axis=-1)).mean())


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side is ``size`` pixels, keeping the aspect ratio (Lanczos)."""
    width, height = image.size
    scale = size / min(width, height)
    target = (max(size, round(width * scale)), max(size, round(height * scale)))
    if target == (width, height):
        return image
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def jpeg_bytes(image: Image.Image, quality: int = 95, **params: Any) -> bytes:
    """Encode an RGB, L or YCbCr image as a JPEG (4:4:4 at quality >= 90 keeps the chroma sharp)."""
    buffer = io.BytesIO()
    subsampling = 0 if quality >= 90 else 2
    image.save(buffer, format="JPEG", quality=quality, subsampling=subsampling, **params)
    return buffer.getvalue()
