"""Every output format written from every input mode reopens in Pillow (and tifffile, OpenCV) as colour.

Each input is made from one known gray photograph (scikit-image's ``camera``, cropped to an
odd size so that 4:2:0 has a half-covered edge), stored in a different mode and container; the
expected gray values are those Pillow itself decodes from the stored input, never ones this
package computes.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from archive_colorizer import images
from archive_colorizer.colorize import encode
from archive_colorizer.colorize.merge import render
from tests.colorize.conftest import encode as encode_image

PROVENANCE = encode.Provenance("0.1.0", "5e" * 32)
HEIGHT, WIDTH = 97, 131
OUTPUTS = [("JPEG", "420"), ("JPEG", "444"), ("PNG", "444"), ("TIFF", "444")]


def _chroma(size: int = 32) -> np.ndarray:
    """A strong, spatially varying prediction: Cb rises left to right, Cr top to bottom (8-bit levels)."""
    ramp = np.linspace(-60, 60, size, dtype=np.float32)
    return np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size))])


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.camera()[150 : 150 + HEIGHT, 200 : 200 + WIDTH])


def _inputs(gray: np.ndarray) -> dict[str, bytes]:
    """Input name -> file bytes: one gray photograph in every mode and container an archive holds."""
    image = Image.fromarray(gray)
    palette = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    alpha = Image.fromarray(np.tile(np.linspace(40, 255, WIDTH).astype(np.uint8), (HEIGHT, 1)))
    gray16 = Image.fromarray(gray.astype(np.uint16) * 257 + 100)
    cmyk = Image.merge("CMYK", [Image.new("L", image.size, 0)] * 3 + [Image.fromarray(255 - gray)])
    return {
        "L.jpg": encode_image(image, "JPEG", quality=92),
        "L.png": encode_image(image, "PNG"),
        "L.tif": encode_image(image, "TIFF"),  # plain, uncompressed, MinIsBlack: the held-out defect
        "L-lzw.tif": encode_image(image, "TIFF", compression="tiff_lzw", dpi=(600, 600)),
        "1.png": encode_image(image.convert("1", dither=Image.Dither.NONE), "PNG"),
        "P.png": encode_image(palette, "PNG"),
        "LA.png": encode_image(Image.merge("LA", (image, alpha)), "PNG"),
        "RGB.jpg": encode_image(image.convert("RGB"), "JPEG", quality=92),
        "RGB.tif": encode_image(image.convert("RGB"), "TIFF"),
        "CMYK.tif": encode_image(cmyk, "TIFF"),
        "I16.png": encode_image(gray16, "PNG"),
        "I16.tif": encode_image(gray16, "TIFF"),
        "F.tif": encode_image(Image.fromarray(gray.astype(np.float32)), "TIFF"),
    }


def _expected_gray(data: bytes) -> np.ndarray:
    """The input's gray values as Pillow decodes them, in 8-bit levels."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode in images.SIXTEEN_BIT_MODES:
            return (np.asarray(image).astype(np.int64) >> 8).astype(np.uint8)
        if image.mode == "F":
            return np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        if image.mode == "CMYK":
            image = image.convert("RGB")
        if image.mode == "LA":
            image = image.getchannel("L")
        return np.asarray(image.convert("L"))


@pytest.mark.parametrize(("fmt", "chroma"), OUTPUTS, ids=[f"{f}-{c}" for f, c in OUTPUTS])
def test_every_input_mode_gives_an_output_every_reader_opens_in_colour(gray, fmt, chroma):
    for name, data in _inputs(gray).items():
        out = render(images.decode(data, source=name), _chroma(), fmt, PROVENANCE, jpeg_chroma=chroma)
        with Image.open(io.BytesIO(out)) as image:
            image.load()
            expected_mode = "RGBA" if name.startswith("LA") and fmt != "JPEG" else "RGB"
            assert (image.format, image.mode, image.size) == (fmt, expected_mode, (WIDTH, HEIGHT)), name
            if name.startswith("1."):  # only black and white: no colour exists at 0 or 255, so none is added
                assert images.mean_chroma(image) < 1, name
            else:
                assert images.mean_chroma(image) > 15, f"{name} -> {fmt}: no colour"
            luma_error = np.abs(np.asarray(image.convert("L"), float) - _expected_gray(data))
        if fmt == "JPEG":  # quantisation of Y at quality 95, and chroma rounding
            assert luma_error.mean() < 1.5 and luma_error.max() <= 12, (name, luma_error.mean(), luma_error.max())
        else:  # DESIGN's contract: the gray image back within about one level
            assert luma_error.max() <= 1, (name, luma_error.max())
        if fmt == "TIFF":
            with tifffile.TiffFile(io.BytesIO(out)) as tif:
                page = tif.pages[0]
                assert page.photometric == tifffile.PHOTOMETRIC.RGB, name
                assert page.samplesperpixel == (4 if expected_mode == "RGBA" else 3), name
                pixels = page.asarray()
                assert pixels.shape == (HEIGHT, WIDTH, page.samplesperpixel), name
                assert pixels.dtype == (np.uint16 if name.startswith("I16") else np.uint8), name


def test_a_plain_gray_tiff_carries_its_description_but_not_its_structure(gray):
    exif = Image.Exif()
    exif[0x010E] = "Harbour, 1931"
    exif[0x013B] = "A. Photographer"
    source = encode_image(Image.fromarray(gray), "TIFF", exif=exif)
    out = render(images.decode(source), _chroma(), "TIFF", PROVENANCE)
    with tifffile.TiffFile(io.BytesIO(out)) as tif:
        tags = tif.pages[0].tags
        assert tags["PhotometricInterpretation"].value == tifffile.PHOTOMETRIC.RGB
        assert tags["SamplesPerPixel"].value == 3 and tags["BitsPerSample"].value == (8, 8, 8)
        assert tags["Compression"].value == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert tags["Artist"].value == "A. Photographer"
        assert tags["ImageDescription"].value.startswith("Harbour, 1931 | Colorized by archive-colorizer")


def test_sixteen_bit_png_stays_sixteen_bit_with_its_gray_as_luma_and_its_metadata(photos):
    gray16 = (np.asarray(Image.fromarray(photos["chelsea"]).convert("L"), np.uint16) * 257 + 77).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0132] = "1931:05:04 12:00:00"
    source = encode_image(Image.fromarray(gray16), "PNG", dpi=(1200, 1200), exif=exif.tobytes())
    decoded = images.decode(source)
    assert decoded.image.mode in images.SIXTEEN_BIT_MODES
    out = render(decoded, _chroma(), "PNG", PROVENANCE)
    assert out[24:26] == bytes([16, 2])  # IHDR: bit depth 16, colour type 2 (RGB): 48 bits per pixel
    bgr = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)
    assert bgr.dtype == np.uint16 and bgr.shape == (*gray16.shape, 3)
    rgb = bgr[..., ::-1].astype(np.float64)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    assert np.abs(luma - gray16).max() < 2.0  # in 16-bit levels: the archive's precision kept
    assert len(np.unique(bgr[..., 1])) > 2000  # more levels than 8 bits can hold
    assert rgb.std(axis=-1).mean() > 1000  # coloured
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["dpi"] == pytest.approx((1200, 1200), abs=0.01)
        assert b"compositeWithTrainedAlgorithmicMedia" in image.info["xmp"]
        assert image.getexif()[0x0132] == "1931:05:04 12:00:00"
        assert image.getexif()[0x0131] == "archive-colorizer 0.1.0"
        assert np.abs(np.asarray(image.convert("L"), float) - (gray16 >> 8)).max() <= 1
