"""Decoding real and broken files, mode conversion, EXIF orientation, chroma measure."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from archive_colorizer import images


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_decodes_a_real_jpeg_with_dpi(photos):
    data = _encode(Image.fromarray(photos["coffee"]), "JPEG", quality=90, dpi=(300, 300))
    decoded = images.decode(data, source="coffee.jpg")
    assert decoded.format == "JPEG" and decoded.mode == "RGB"
    assert decoded.image.size == (600, 400)
    assert decoded.info["dpi"] == pytest.approx((300, 300))


def test_exif_orientation_is_applied_and_reset(photos):
    image = Image.fromarray(photos["chelsea"])  # 451 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x0132] = "2001:02:03 04:05:06"
    decoded = images.decode(_encode(image, "JPEG", exif=exif.tobytes()), source="rotated.jpg")
    assert decoded.image.size == (300, 451)
    kept = Image.Exif()
    kept.load(decoded.info["exif"])
    assert kept[0x0112] == 1 and kept[0x0132] == "2001:02:03 04:05:06"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is a text file, not a JPEG\n" * 4, "not_an_image"),
    ],
)
def test_non_images_are_refused_with_a_reason(data, reason):
    with pytest.raises(images.ImageDecodeError, match="bad.jpg") as info:
        images.decode(data, source="bad.jpg")
    assert info.value.reason == reason


def test_truncated_jpeg_is_refused(photos):
    data = _encode(Image.fromarray(photos["astronaut"]), "JPEG", quality=90)
    with pytest.raises(images.ImageDecodeError) as info:
        images.decode(data[: len(data) // 2], source="cut.jpg")
    assert info.value.reason in ("truncated", "corrupt")
    assert "cut.jpg" in str(info.value)


def test_too_many_pixels_are_refused_before_decoding():
    data = _encode(Image.new("L", (2000, 1500)), "PNG")
    with pytest.raises(images.ImageDecodeError, match="3,000,000 pixels exceeds max_pixels 1,000,000") as info:
        images.decode(data, source="big.png", max_pixels=1_000_000)
    assert info.value.reason == "too_large"


def test_to_rgb_handles_modes(photos):
    rgba = Image.fromarray(photos["rocket"]).convert("RGBA")
    rgba.putalpha(0)
    assert np.asarray(images.to_rgb(rgba)).min() == 255  # fully transparent -> white background
    palette = Image.fromarray(photos["rocket"]).convert("P", palette=Image.Palette.ADAPTIVE)
    assert images.to_rgb(palette).mode == "RGB"
    gray16 = Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    assert np.array_equal(np.asarray(images.to_rgb(gray16))[..., 0], np.arange(256).reshape(16, 16))
    cmyk = Image.fromarray(photos["rocket"]).convert("CMYK")
    assert images.to_rgb(cmyk).size == cmyk.size


def test_mean_chroma_separates_gray_from_colour(photos):
    for name, rgb in photos.items():
        image = Image.fromarray(rgb)
        assert images.mean_chroma(image) > 3 * images.GRAY_CHROMA_THRESHOLD, name
        gray_jpeg = Image.open(io.BytesIO(_encode(image.convert("L"), "JPEG", quality=75)))
        assert images.mean_chroma(gray_jpeg) < 0.5, name


def test_resize_shorter_side_keeps_aspect(photos):
    image = Image.fromarray(photos["coffee"])  # 600 x 400
    assert images.resize_shorter_side(image, 286).size == (429, 286)
    tall = image.transpose(Image.Transpose.ROTATE_90)
    assert images.resize_shorter_side(tall, 286).size == (286, 429)


def test_draft_decoding_is_smaller_but_reports_the_full_size_and_still_refuses_truncation(photos):
    image = Image.fromarray(photos["astronaut"]).resize((1600, 1200))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(image, "JPEG", quality=90, exif=exif.tobytes())
    full = images.decode(data, source="big.jpg")
    small = images.decode(data, source="big.jpg", draft_size=(256, 256))
    assert full.image.size == full.full_size == small.full_size == (1200, 1600)
    assert small.image.size == (300, 400)  # 1/4 scale, then rotated
    assert small.info["exif"] == full.info["exif"]
    with pytest.raises(images.ImageDecodeError) as info:
        images.decode(data[: len(data) // 2], source="cut.jpg", draft_size=(256, 256))
    assert info.value.reason == "truncated"


@pytest.fixture(scope="module")
def small_jpeg(photos) -> bytes:
    """A real JPEG (96 x 64 photo) with an EXIF block (orientation 6, DateTime) and DPI: 4-5 kB."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x0132] = "1968:07:20 10:56:00"
    image = Image.fromarray(photos["chelsea"]).resize((96, 64))
    return _encode(image, "JPEG", quality=85, exif=exif.tobytes(), dpi=(300, 300))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_truncation_or_byte_flip_of_a_jpeg_decodes_or_raises_image_decode_error(small_jpeg, data):
    cut = data.draw(st.integers(0, len(small_jpeg)), label="cut")
    mutated = bytearray(small_jpeg[:cut])
    if mutated:
        flips = st.tuples(st.integers(0, len(mutated) - 1), st.integers(1, 255))
        for position, mask in data.draw(st.lists(flips, max_size=8), label="flips"):
            mutated[position] ^= mask
    try:
        decoded = images.decode(bytes(mutated), source="fuzzed.jpg", max_pixels=200_000)
    except images.ImageDecodeError as exc:
        assert exc.reason in {"empty", "not_an_image", "truncated", "corrupt", "too_large"}
        assert "fuzzed.jpg" in str(exc)
    else:
        width, height = decoded.image.size
        assert 0 < width * height <= 200_000 and decoded.full_size in ((width, height), (height, width))


def _png_header(width: int, height: int) -> bytes:
    """A gray PNG that claims (width x height) pixels but holds almost no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_max_pixels_decides_not_pillows_own_smaller_limit():
    # 200 M pixels: Pillow alone refuses above 179 M; max_pixels allows it, so it is decoded
    # (and found truncated: the file holds almost no pixel data).
    with pytest.raises(images.ImageDecodeError) as allowed:
        images.decode(_png_header(20_000, 10_000), source="large-scan.png", max_pixels=250_000_000)
    assert allowed.value.reason in ("truncated", "corrupt")
    with pytest.raises(images.ImageDecodeError, match="max_pixels 250,000,000") as bomb:
        images.decode(_png_header(50_000, 50_000), source="bomb.png", max_pixels=250_000_000)
    assert bomb.value.reason == "too_large"


def test_gray_array_is_the_decoded_pixels_without_a_copy(photos):
    # A real photograph as a gray JPEG: the view holds exactly Pillow's pixels, in the image's own
    # memory (two views share it; np.asarray would make two copies).
    gray = Image.fromarray(photos["astronaut"]).convert("L")
    decoded = images.decode(images.jpeg_bytes(gray, 95)).image
    view = images.gray_array(decoded)
    assert view.shape == (512, 512) and not view.flags.writeable
    assert np.shares_memory(view, images.gray_array(decoded))
    assert np.array_equal(view, np.asarray(decoded))
    assert view[100, 200] == decoded.getpixel((200, 100))
    with pytest.raises(ValueError, match="mode 'L'"):
        images.gray_array(decoded.convert("RGB"))
