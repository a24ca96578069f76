"""Rendering outputs: full-resolution merge, formats, carried metadata and the provenance label."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, JpegImagePlugin

from archive_colorizer import images
from archive_colorizer.colorize import encode
from archive_colorizer.colorize.merge import render
from tests.colorize.conftest import encode as encode_image

PROVENANCE = encode.Provenance("0.1.0", "5e" * 32)
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def _chroma(size: int = 32) -> np.ndarray:
    """A strong, spatially varying prediction: Cb rises left to right, Cr top to bottom (8-bit levels)."""
    ramp = np.linspace(-60, 60, size, dtype=np.float32)
    return np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size))])


def _decoded(photos, fmt="JPEG", **params) -> images.DecodedImage:
    exif = Image.Exif()
    exif[0x0132] = "1931:05:04 12:00:00"
    exif[0x010E] = "Harbour, seen from the lighthouse"
    gray = Image.fromarray(photos["coffee"]).convert("L")
    return images.decode(encode_image(gray, fmt, exif=exif.tobytes(), dpi=(400, 400), **params))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_output_keeps_size_gray_dpi_datetime_and_labels_itself(photos, fmt):
    decoded = _decoded(photos)
    output = Image.open(io.BytesIO(render(decoded, _chroma(), fmt, PROVENANCE)))
    assert output.format == fmt and output.size == decoded.image.size
    difference = np.abs(np.asarray(output.convert("L"), float) - np.asarray(decoded.image, float))
    assert difference.mean() < 1.0
    assert images.mean_chroma(output) > 10  # colour was added
    assert output.info["dpi"] == pytest.approx((400, 400), abs=0.01)
    exif = output.getexif()
    assert exif[0x0132] == "1931:05:04 12:00:00"
    assert exif[0x0131] == "archive-colorizer 0.1.0"
    assert exif[0x010E].startswith("Harbour, seen from the lighthouse | Colorized by archive-colorizer 0.1.0")
    assert PROVENANCE.model_sha256 in exif[0x010E]
    description = ET.fromstring(output.info["xmp"]).find(f".//{RDF}Description")
    assert (
        description.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType") == encode.DIGITAL_SOURCE_TYPE
    )


def test_jpeg_444_is_encoded_from_ycbcr_with_full_chroma(photos):
    data = render(_decoded(photos), _chroma(), "JPEG", PROVENANCE, jpeg_quality=95, jpeg_chroma="444")
    output = Image.open(io.BytesIO(data))
    assert output.mode == "RGB" and JpegImagePlugin.get_sampling(output) == 0  # 4:4:4: chroma not subsampled
    assert output.getexif().get(0x0112) in (None, 1)


def test_jpeg_420_is_encoded_from_the_planes_at_half_chroma_keeping_the_gray(photos):
    decoded = _decoded(photos)
    output = Image.open(io.BytesIO(render(decoded, _chroma(), "JPEG", PROVENANCE)))
    # SOF: Y sampled 2 x 2, Cb and Cr 1 x 1 (Pillow's code 2 = 4:2:0).
    assert [component[1:3] for component in output.layer] == [(2, 2), (1, 1), (1, 1)]
    assert JpegImagePlugin.get_sampling(output) == 2
    error_420 = np.abs(np.asarray(output.convert("L"), float) - np.asarray(decoded.image, float))
    old = Image.open(io.BytesIO(render(decoded, _chroma(), "JPEG", PROVENANCE, jpeg_chroma="444")))
    error_444 = np.abs(np.asarray(old.convert("L"), float) - np.asarray(decoded.image, float))
    # Y's quantisation at quality 95 dominates both routes: on scikit-image's six photos 4:2:0 gives
    # mean 0.39-1.27, max 9-11 levels; 4:4:4 mean 0.30-1.17, max 7-11 (8-bit levels, from PNG inputs).
    assert error_420.mean() < 1.0 and error_420.max() <= 12, (error_420.mean(), error_420.max())
    assert error_420.mean() < error_444.mean() + 0.3
    assert images.mean_chroma(output) > 10
    assert images.mean_chroma(output) == pytest.approx(images.mean_chroma(old), rel=0.1)


@pytest.mark.parametrize("crop", [(427, 640), (427, 599), (400, 599)], ids=["odd-height", "odd-both", "odd-width"])
def test_jpeg_420_never_reads_past_the_luma_plane(photos, crop):
    """libjpeg-turbo reads luma up to the 16 x 16 MCU boundary: the plane's neighbours in memory must not
    reach the output (they did: the bottom rows changed by up to 12 levels from call to call)."""
    height, width = crop
    gray = np.asarray(Image.fromarray(photos["rocket"]).convert("L"))[:height, :width]
    cb = np.full(((height + 1) // 2, (width + 1) // 2), 100, np.uint8)
    cr = np.full_like(cb, 150)
    meta = encode.OutputMetadata.from_input({}, (width, height), PROVENANCE)
    outputs = []
    for neighbour in (0, 255):  # what lies in memory below and right of the plane
        buffer = np.full((height + 32, width + 32), neighbour, np.uint8)
        buffer[:height, :width] = gray
        outputs.append(encode.encode_jpeg_planes(buffer[:height, :width], cb, cr, meta, 95))
    assert outputs[0] == outputs[1]
    luma = np.asarray(Image.open(io.BytesIO(outputs[0])).convert("YCbCr"))[..., 0].astype(int)
    bottom = np.abs(luma[-2:] - gray[-2:])
    assert bottom.mean() < 2.0 and bottom.max() <= 12  # the bottom rows are the image's own, as quantised


def test_jpeg_420_carries_icc_and_large_exif_like_444(photos):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0132] = "1931:05:04 12:00:00"
    exif[0x927C] = b"x" * 70_000  # too large for one APP1 segment: the essential tags are kept
    gray = Image.fromarray(photos["coffee"]).convert("L")
    decoded = images.decode(encode_image(gray, "PNG", exif=exif.tobytes(), icc_profile=srgb, dpi=(300, 300)))
    output = Image.open(io.BytesIO(render(decoded, _chroma(), "JPEG", PROVENANCE)))
    assert output.info["icc_profile"] == srgb
    assert output.info["dpi"] == pytest.approx((300, 300))
    assert output.getexif()[0x0132] == "1931:05:04 12:00:00" and 0x927C not in output.getexif()
    assert output.getexif()[0x0131] == "archive-colorizer 0.1.0"
    assert b"compositeWithTrainedAlgorithmicMedia" in output.info["xmp"]


def test_sixteen_bit_tiff_stays_sixteen_bit_with_its_gray_as_luma(photos):
    gray16 = (np.asarray(Image.fromarray(photos["chelsea"]).convert("L"), dtype=np.uint16) * 257 + 77).astype(np.uint16)
    decoded = images.decode(encode_image(Image.fromarray(gray16), "TIFF", dpi=(1200, 1200)))
    data = render(decoded, _chroma(), "TIFF", PROVENANCE)
    rgb = tifffile.imread(io.BytesIO(data))
    assert rgb.dtype == np.uint16 and rgb.shape == (*gray16.shape, 3)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    assert np.abs(luma - gray16).mean() < 2.0  # in 16-bit levels
    assert rgb.std(axis=-1).mean() > 1000  # coloured
    with Image.open(io.BytesIO(data)) as image:
        assert image.info["dpi"] == pytest.approx((1200, 1200))
        assert b"compositeWithTrainedAlgorithmicMedia" in image.info["xmp"]
        assert image.getexif()[0x0131] == "archive-colorizer 0.1.0"


def test_rgb_icc_profiles_are_kept_and_others_dropped(photos):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour_input = images.decode(encode_image(Image.fromarray(photos["coffee"]), "PNG", icc_profile=srgb))
    assert Image.open(io.BytesIO(render(colour_input, _chroma(), "PNG", PROVENANCE))).info["icc_profile"] == srgb
    # A profile of another colour space (here CIE Lab) does not describe the RGB output.
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    gray_input = images.decode(encode_image(Image.fromarray(photos["coffee"]).convert("L"), "JPEG", icc_profile=lab))
    assert gray_input.info["icc_profile"] == lab
    assert "icc_profile" not in Image.open(io.BytesIO(render(gray_input, _chroma(), "JPEG", PROVENANCE))).info


def test_an_exif_block_too_large_for_jpeg_keeps_the_essential_tags(photos):
    exif = Image.Exif()
    exif[0x0132] = "1931:05:04 12:00:00"
    exif[0x927C] = b"x" * 70_000  # a huge maker note: no longer fits JPEG's 64 KiB APP1 segment
    decoded = images.decode(encode_image(Image.fromarray(photos["coffee"]).convert("L"), "PNG", exif=exif.tobytes()))
    output = Image.open(io.BytesIO(render(decoded, _chroma(), "JPEG", PROVENANCE)))
    assert output.getexif()[0x0132] == "1931:05:04 12:00:00" and 0x927C not in output.getexif()
    assert output.getexif()[0x0131] == "archive-colorizer 0.1.0"


def test_cached_jpeg_segments_are_those_of_each_inputs_own_metadata(photos):
    # The segments of the 4:2:0 route are cached by the input's EXIF, DPI and ICC: inputs without
    # EXIF share them whatever their size; an EXIF block recording the pixel size is updated per size.
    exif = Image.Exif()
    exif.get_ifd(encode.EXIF_IFD)[encode.EXIF_PIXEL_X] = 10
    exif.get_ifd(encode.EXIF_IFD)[encode.EXIF_PIXEL_Y] = 10
    infos = [{}, {"dpi": (300.0, 300.0)}, {"exif": exif.tobytes(), "dpi": (72.0, 72.0)}]
    for info in infos:
        for size in ((640, 427), (451, 301), (640, 427)):
            own = encode._metadata_jpeg_segments(encode.OutputMetadata.from_input(info, size, PROVENANCE))
            assert encode.input_jpeg_segments(info, size, PROVENANCE) == own
    segments = encode.input_jpeg_segments(infos[2], (451, 301), PROVENANCE)
    half = np.full((151, 226), 128, np.uint8)
    output = encode.encode_jpeg_planes(np.zeros((301, 451), np.uint8), half, half, segments, 95)
    pixels = Image.open(io.BytesIO(output)).getexif().get_ifd(encode.EXIF_IFD)
    assert (pixels[encode.EXIF_PIXEL_X], pixels[encode.EXIF_PIXEL_Y]) == (451, 301)
