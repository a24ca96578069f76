"""Encoding colorized outputs with the input's metadata and a provenance label.

Carried over from the input: DPI, EXIF (only the descriptive tags, :data:`DESCRIPTIVE_TAGS`,
never the input's TIFF structure tags; orientation already applied and reset to 1; DateTime,
camera, author and the rest kept; the Exif IFD's pixel dimensions updated), and the ICC
profile when it describes RGB (a gray or CMYK profile does not describe the RGB output).

Provenance, readable with Pillow (``getexif()``, ``info["xmp"]``):

- EXIF ``Software`` = ``archive-colorizer <version>``; EXIF ``ImageDescription`` = the input's
  description (if any) followed by what was done and the generator's sha256.
- XMP ``Iptc4xmpExt:DigitalSourceType`` = IPTC's ``compositeWithTrainedAlgorithmicMedia``
  (real gray values combined with colour from a trained model), ``xmp:CreatorTool``, and
  ``archivecolorizer:GeneratorSha256``.

Formats:

- JPEG 4:2:0 (the default): straight from the Y, Cb, Cr planes by libjpeg-turbo through
  simplejpeg (:func:`encode_jpeg_planes`); the metadata segments (JFIF with DPI, APP1 EXIF,
  APP1 XMP, APP2 ICC) are the ones Pillow writes, taken from a 1 x 1 JPEG Pillow encodes with
  the same metadata and put after the SOI marker (simplejpeg writes none of them).
- JPEG 4:4:4 (``--chroma 444``): straight from a YCbCr image by Pillow.
- PNG and 8-bit TIFF (deflate) through Pillow.
- 16-bit RGB PNG (48 bits per pixel) through OpenCV (:func:`encode_png16`), because Pillow has
  no 16-bit RGB mode to write; its metadata chunks (pHYs, iCCP, eXIf, the XMP iTXt, Software
  tEXt) are again Pillow's, from a 1 x 1 PNG, put after IHDR. Everything is carried.
- 16-bit RGB TIFF through tifffile, for the same reason (TIFF tags carried there: DPI, ICC,
  XMP, DateTime, description, software, artist, copyright, make, model; the Exif sub-IFD is
  not written).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

from archive_colorizer import images

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
XMP_NAMESPACE = "https://archive-colorizer.dev/ns/1.0/"
TAG_IMAGE_DESCRIPTION = 0x010E
TAG_SOFTWARE = 0x0131
TAG_DATETIME = 0x0132
TAG_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
EXIF_PIXEL_X, EXIF_PIXEL_Y = 0xA002, 0xA003
# Base IFD tags that describe the picture, not how its pixels are stored: the only ones carried from
# an input's EXIF (a TIFF input's EXIF is its whole IFD 0; its structure tags, photometric
# interpretation, samples per pixel, bits, compression, strips, tiles, planar configuration,
# would describe the input's pixels, not the output's, and make an unreadable file).
DESCRIPTIVE_TAGS = frozenset(
    {
        0x010D,  # DocumentName
        TAG_IMAGE_DESCRIPTION,
        0x010F,  # Make
        0x0110,  # Model
        TAG_ORIENTATION,
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x011D,  # PageName
        0x0128,  # ResolutionUnit
        TAG_SOFTWARE,
        TAG_DATETIME,
        0x013B,  # Artist
        0x013C,  # HostComputer
        0x4746,  # Rating
        0x4749,  # RatingPercent
        0x8298,  # Copyright
        EXIF_IFD,  # the Exif sub-IFD: capture settings, dates, pixel dimensions (updated)
        0x8825,  # the GPS sub-IFD
        0x9C9B,  # XPTitle
        0x9C9C,  # XPComment
        0x9C9D,  # XPAuthor
        0x9C9E,  # XPKeywords
        0x9C9F,  # XPSubject
    }
)
# Base IFD tags kept when the whole EXIF block does not fit (JPEG APP1 holds 64 KiB) or in 16-bit TIFF.
_ESSENTIAL_TAGS = {0x010F: "make", 0x0110: "model", 0x013B: "artist", 0x8298: "copyright", TAG_DATETIME: "datetime"}


@dataclass(frozen=True)
class Provenance:
    """Who made an output: the tool's version and the generator's sha256."""

    tool_version: str
    model_sha256: str

    @property
    def software(self) -> str:
        return f"archive-colorizer {self.tool_version}"

    def description(self, original: str | None = None) -> str:
        """EXIF ImageDescription: the input's own description first, then the colorization note."""
        note = (
            f"Colorized by {self.software} with a trained pix2pix generator (sha256 {self.model_sha256}); "
            "gray values of the original kept, colour added by the model."
        )
        return f"{original.strip()} | {note}" if original and original.strip() else note

    def xmp(self) -> bytes:
        """An XMP packet with the IPTC digital source type and the generator's sha256."""
        return (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about=""\n'
            '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
            f'    xmlns:archivecolorizer="{XMP_NAMESPACE}"\n'
            f'    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n'
            f'    xmp:CreatorTool="{escape(self.software)}"\n'
            f'    archivecolorizer:GeneratorSha256="{escape(self.model_sha256)}"/>\n'
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>'
        ).encode()


@dataclass
class OutputMetadata:
    """Metadata written into an output: EXIF (provenance set), DPI, RGB ICC profile, XMP."""

    exif: Image.Exif
    xmp: bytes
    dpi: tuple[float, float] | None = None
    icc_profile: bytes | None = None

    @classmethod
    def from_input(cls, info: dict[str, Any], size: tuple[int, int], provenance: Provenance) -> OutputMetadata:
        """From :attr:`images.DecodedImage.info` of the input and the output's (W, H)."""
        exif = Image.Exif()
        if info.get("exif"):
            try:
                exif.load(info["exif"])
            except Exception:  # an unreadable EXIF block is dropped, not fatal
                exif = Image.Exif()
        for tag in [tag for tag in exif if tag not in DESCRIPTIVE_TAGS]:
            del exif[tag]
        exif[TAG_SOFTWARE] = provenance.software
        exif[TAG_IMAGE_DESCRIPTION] = provenance.description(_text(exif.get(TAG_IMAGE_DESCRIPTION)))
        if exif.get(TAG_ORIENTATION) is not None:
            exif[TAG_ORIENTATION] = 1
        exif_ifd = exif.get_ifd(EXIF_IFD) if EXIF_IFD in exif else {}
        if EXIF_PIXEL_X in exif_ifd or EXIF_PIXEL_Y in exif_ifd:
            exif_ifd[EXIF_PIXEL_X], exif_ifd[EXIF_PIXEL_Y] = size
        return cls(
            exif=exif, xmp=provenance.xmp(), dpi=info.get("dpi"), icc_profile=_rgb_profile(info.get("icc_profile"))
        )

    def essential_exif(self) -> Image.Exif:
        """A small EXIF block: provenance, DateTime, make, model, artist, copyright."""
        small = Image.Exif()
        for tag in (TAG_SOFTWARE, TAG_IMAGE_DESCRIPTION, *_ESSENTIAL_TAGS):
            if self.exif.get(tag) is not None:
                small[tag] = self.exif[tag]
        return small


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _rgb_profile(icc: bytes | None) -> bytes | None:
    """``icc`` if it is a readable ICC profile of an RGB colour space, else None."""
    if not icc:
        return None
    return icc if _is_rgb_profile(icc) else None


@functools.lru_cache(maxsize=16)
def _is_rgb_profile(icc: bytes) -> bool:
    """Whether ``icc`` is a readable ICC profile of an RGB colour space (cached: a collection shares a few profiles)."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        return False
    return bool(profile.profile.xcolor_space.strip() == "RGB")


def _common(meta: OutputMetadata) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if meta.dpi:
        params["dpi"] = meta.dpi
    if meta.icc_profile:
        params["icc_profile"] = meta.icc_profile
    return params


def encode_jpeg(ycbcr: Image.Image, meta: OutputMetadata, quality: int) -> bytes:
    """A JPEG straight from a YCbCr image (no RGB round trip), with EXIF, DPI, ICC and XMP.

    An EXIF block too large for JPEG's 64 KiB APP1 segment is replaced by :meth:`OutputMetadata.essential_exif`.
    """
    params = {**_common(meta), "xmp": meta.xmp}
    try:
        return images.jpeg_bytes(ycbcr, quality, exif=meta.exif.tobytes(), **params)
    except ValueError:
        return images.jpeg_bytes(ycbcr, quality, exif=meta.essential_exif().tobytes(), **params)


_SOI = b"\xff\xd8"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _jpeg_segments(data: bytes, markers: range) -> tuple[list[bytes], int]:
    """The header segments of a JPEG whose marker is in ``markers``, and where the header ends.

    Walks the segments after SOI up to the first one that is not an APPn or COM segment.
    """
    if not data.startswith(_SOI):
        raise ValueError("not a JPEG: no SOI marker")
    segments, position = [], 2
    while data[position] == 0xFF and (0xE0 <= data[position + 1] <= 0xEF or data[position + 1] == 0xFE):
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if data[position + 1] in markers:
            segments.append(data[position:end])
        position = end
    return segments, position


def _metadata_jpeg_segments(meta: OutputMetadata) -> bytes:
    """JFIF (DPI), EXIF, XMP and ICC segments as Pillow writes them for ``meta``, concatenated."""
    segments = _pillow_jpeg_segments(meta.exif.tobytes(), meta.xmp, meta.dpi, meta.icc_profile)
    if segments is None:  # EXIF larger than one APP1 segment
        segments = _pillow_jpeg_segments(meta.essential_exif().tobytes(), meta.xmp, meta.dpi, meta.icc_profile)
    return segments or b""


@functools.lru_cache(maxsize=32)
def _pillow_jpeg_segments(exif: bytes, xmp: bytes, dpi: tuple[float, float] | None, icc: bytes | None) -> bytes | None:
    """The metadata segments of a 1 x 1 JPEG that Pillow encodes with these values, or None when
    ``exif`` does not fit one APP1 segment. Cached: the inputs of one scanner or collection often
    carry the same metadata, and setting up Pillow's encoder costs more than the segments' bytes."""
    params: dict[str, Any] = {"xmp": xmp}
    if dpi:
        params["dpi"] = dpi
    if icc:
        params["icc_profile"] = icc
    try:
        data = images.jpeg_bytes(Image.new("L", (1, 1)), 95, exif=exif, **params)
    except ValueError:
        return None
    segments, _ = _jpeg_segments(data, range(0xE0, 0xF0))
    return b"".join(segments)


_LUMA_MARGIN = 16
"""Rows and columns past the luma plane that libjpeg-turbo may read: one 4:2:0 MCU (16 x 16)."""


def _luma_with_margin(y: np.ndarray) -> np.ndarray:
    """``y`` as a view into a buffer whose margin (:data:`_LUMA_MARGIN`) repeats its last row and column.

    simplejpeg hands libjpeg-turbo the plane with its strides, and libjpeg-turbo reads luma up
    to the MCU boundary: past the last row (and column) of a plane whose sides are not
    multiples of 16. Without a margin those reads see whatever memory follows the array, so the
    bottom rows of the output change from one call to the next (by up to 12 levels). Repeating
    the edge is what JPEG's own padding does.
    """
    height, width = y.shape
    buffer = np.empty((height + _LUMA_MARGIN, width + _LUMA_MARGIN), np.uint8)
    buffer[:height, :width] = y
    buffer[:height, width:] = y[:, -1:]
    buffer[height:] = buffer[height - 1]
    return buffer[:height, :width]


def input_jpeg_segments(info: dict[str, Any], size: tuple[int, int], provenance: Provenance) -> bytes:
    """The metadata segments of an input's JPEG output: those of :meth:`OutputMetadata.from_input`
    (JFIF with DPI, EXIF, XMP, ICC, as :func:`encode_jpeg_planes` writes them), cached.

    Building them (an EXIF block made and serialised) costs about 0.3 ms per output; inputs
    without EXIF, or with the same EXIF, DPI and ICC profile, share them. The output's size is
    part of the key only where the input has EXIF (whose Exif IFD may record it).

    Args:
        info: :attr:`archive_colorizer.images.DecodedImage.info` of the input.
        size: the output's (W, H).

    Returns:
        The segments' bytes, for :func:`encode_jpeg_planes`'s ``meta``.
    """
    exif = info.get("exif") or None
    return _input_jpeg_segments(
        exif, tuple(size) if exif else None, info.get("dpi"), info.get("icc_profile"), provenance
    )


@functools.lru_cache(maxsize=64)
def _input_jpeg_segments(
    exif: bytes | None,
    size: tuple[int, int] | None,
    dpi: tuple[float, float] | None,
    icc: bytes | None,
    provenance: Provenance,
) -> bytes:
    info = {key: value for key, value in (("exif", exif), ("dpi", dpi), ("icc_profile", icc)) if value is not None}
    return _metadata_jpeg_segments(OutputMetadata.from_input(info, size or (0, 0), provenance))


def encode_jpeg_planes(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, meta: OutputMetadata | bytes, quality: int
) -> bytes:
    """A 4:2:0 JPEG straight from its planes (libjpeg-turbo via simplejpeg), with DPI, EXIF, XMP and ICC.

    Args:
        y: (H, W) uint8 luma, stored as is (up to the codec's quantisation).
        cb, cr: ((H + 1) // 2, (W + 1) // 2) uint8 chroma planes, 128 = neutral.
        meta: the output's metadata, or its segments already made (:func:`input_jpeg_segments`).
        quality: 1-100, libjpeg's scale (the same tables as Pillow's at that quality).

    Returns:
        The JPEG bytes (JFIF; the metadata segments follow SOI, then simplejpeg's tables and scan).

    Raises:
        ValueError: the planes' shapes do not make a 4:2:0 image.
    """
    import simplejpeg

    height, width = y.shape
    if cb.shape != ((height + 1) // 2, (width + 1) // 2) or cr.shape != cb.shape:
        raise ValueError(f"4:2:0 chroma planes of {width}x{height} must be {(height + 1) // 2}x{(width + 1) // 2}")
    data = simplejpeg.encode_jpeg_yuv_planes(
        _luma_with_margin(y), np.ascontiguousarray(cb), np.ascontiguousarray(cr), quality=quality
    )
    _, body = _jpeg_segments(data, range(0))  # drop simplejpeg's own APP0 (JFIF without DPI)
    segments = meta if isinstance(meta, bytes) else _metadata_jpeg_segments(meta)
    return b"".join((_SOI, segments, memoryview(data)[body:]))


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk) of every chunk of a PNG."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG: no signature")
    chunks, position = [], len(_PNG_SIGNATURE)
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 12 + length
        chunks.append((data[position + 4 : position + 8], data[position:end]))
        position = end
    return chunks


def encode_png16(rgb: np.ndarray, meta: OutputMetadata) -> bytes:
    """A 16-bit RGB PNG (48 bits per pixel, via OpenCV) with pHYs (DPI), iCCP, eXIf, the XMP iTXt and Software.

    Args:
        rgb: (H, W, 3) uint16 RGB.

    Returns:
        The PNG bytes: OpenCV's IHDR and IDAT (compression level 6, as :func:`encode_png`), with
        the ancillary chunks Pillow writes for ``meta`` after IHDR.

    Raises:
        ValueError: ``rgb`` is not (H, W, 3) uint16, or OpenCV cannot encode it.
    """
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint16:
        raise ValueError(f"rgb must be an (H, W, 3) uint16 array, got {rgb.dtype} {rgb.shape}")
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape[1]}x{rgb.shape[0]} 16-bit PNG")
    pixels = _png_chunks(encoded.tobytes())
    carrier = [chunk for kind, chunk in _png_chunks(encode_png(Image.new("RGB", (1, 1)), meta)) if kind[:1].islower()]
    ancillary_free = [chunk for kind, chunk in pixels if kind[:1].isupper()]  # IHDR, IDAT..., IEND
    return _PNG_SIGNATURE + ancillary_free[0] + b"".join(carrier) + b"".join(ancillary_free[1:])


def encode_png(image: Image.Image, meta: OutputMetadata) -> bytes:
    """A PNG (RGB or RGBA) with eXIf, pHYs (DPI), iCCP and the XMP packet as iTXt ``XML:com.adobe.xmp``."""
    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8"))
    text.add_text("Software", str(meta.exif[TAG_SOFTWARE]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=meta.exif.tobytes(), pnginfo=text, compress_level=6, **_common(meta))
    return buffer.getvalue()


def encode_tiff(image: Image.Image, meta: OutputMetadata) -> bytes:
    """An 8-bit RGB or RGBA TIFF (deflate) with the EXIF tags, DPI, ICC and XMP (tag 700)."""
    exif = Image.Exif()
    exif.load(meta.exif.tobytes())
    exif[700] = meta.xmp
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF", exif=exif, compression="tiff_adobe_deflate", **_common(meta))
    return buffer.getvalue()


def encode_tiff16(rgb: np.ndarray, meta: OutputMetadata) -> bytes:
    """A 16-bit RGB TIFF (deflate, via tifffile) with DPI, ICC, XMP and the essential EXIF tags.

    Args:
        rgb: (H, W, 3) uint16.
    """
    import tifffile

    exif = meta.essential_exif()
    extratags = [(700, "B", len(meta.xmp), meta.xmp, True)]
    for tag in (0x010F, 0x0110, 0x013B, 0x8298):
        if isinstance(exif.get(tag), str):
            extratags.append((tag, "s", 0, exif[tag], True))
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        rgb,
        photometric="rgb",
        compression="zlib",
        metadata=None,
        description=str(exif[TAG_IMAGE_DESCRIPTION]),
        software=str(exif[TAG_SOFTWARE]),
        datetime=exif.get(TAG_DATETIME) if isinstance(exif.get(TAG_DATETIME), str) else None,
        resolution=meta.dpi,
        resolutionunit="INCH" if meta.dpi else None,
        iccprofile=meta.icc_profile,
        extratags=extratags,
    )
    return buffer.getvalue()
