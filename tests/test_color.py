"""Colour core: Lab round trips, normalisation and the full-resolution merge on real photos."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer import chroma420, color, gamut


def _batch(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_lab_round_trip_is_within_one_level(photos, name):
    rgb = _batch(photos[name])
    back = color.lab_to_rgb(color.rgb_to_lab(rgb))
    diff = (back * 255).round() - rgb * 255
    within_one = (diff.abs() <= 1).float().mean().item()
    assert within_one >= 0.999, f"{name}: only {within_one:.5f} of channel values within 1 level"


def test_lab_ranges_on_a_real_photo(photos):
    lab = color.rgb_to_lab(_batch(photos["coffee"]))
    assert 0.0 <= lab[:, 0].min() and lab[:, 0].max() <= 100.0
    assert lab[:, 1:].abs().max() <= 110.0
    # A colourful photo really uses the chroma range: the normalised target is not all ~0.
    assert lab[:, 1:].abs().max() > 40.0


@pytest.mark.parametrize("level", [0.0, 0.2, 0.5, 0.93, 1.0])
def test_gray_pixels_have_no_chroma(level):
    gray = torch.full((2, 3, 16, 16), level)
    lab = color.rgb_to_lab(gray)
    assert lab[:, 1:].abs().max() < 0.5


def test_normalisation_maps_ranges_to_minus_one_one(photos):
    l_norm, ab_norm = color.rgb_to_l_ab(_batch(photos["astronaut"]))
    assert l_norm.shape == (1, 1, 512, 512) and ab_norm.shape == (1, 2, 512, 512)
    assert l_norm.dtype == torch.float32
    assert -1.0 <= l_norm.min() and l_norm.max() <= 1.0
    assert ab_norm.abs().max() <= 1.0
    assert torch.allclose(
        color.denormalize_l(color.normalize_l(torch.tensor([0.0, 50.0, 100.0]))), torch.tensor([0.0, 50.0, 100.0])
    )
    assert torch.allclose(color.normalize_ab(torch.tensor([-110.0, 0.0, 110.0])), torch.tensor([-1.0, 0.0, 1.0]))


def test_l_ab_to_rgb_inverts_rgb_to_l_ab(photos):
    rgb = _batch(photos["chelsea"])
    back = color.l_ab_to_rgb(*color.rgb_to_l_ab(rgb))
    assert (back - rgb).abs().mul(255).mean() < 0.5


def test_gray_to_l_equals_l_of_the_gray_photo(photos):
    gray = Image.fromarray(photos["rocket"]).convert("L")
    gray_t = torch.from_numpy(np.asarray(gray).copy())[None, None].float() / 255
    l_from_gray = color.gray_to_l(gray_t)
    l_of_rgb, ab = color.rgb_to_l_ab(gray_t.expand(-1, 3, -1, -1))
    assert torch.allclose(l_from_gray, l_of_rgb, atol=1e-5)
    assert ab.abs().max() < 0.5 / color.AB_SCALE


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        color.rgb_to_lab(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="ab_norm"):
        color.l_ab_to_rgb(torch.zeros(1, 1, 8, 8), torch.zeros(1, 3, 8, 8))


def _true_chroma_at(rgb: Image.Image, gray: Image.Image, size: int) -> np.ndarray:
    """Chroma of the photo's own ab at size x size, joined with the gray image's L (as colorize does)."""
    small_rgb = _batch(np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR)))
    _, ab = color.rgb_to_l_ab(small_rgb)
    small_gray = (
        torch.from_numpy(np.asarray(gray.resize((size, size), Image.Resampling.BILINEAR)).copy())[None, None].float()
        / 255
    )
    return color.predicted_chroma(color.gray_to_l(small_gray), ab)


@pytest.fixture
def photo_640x427(photos) -> Image.Image:
    return Image.fromarray(photos["rocket"]).resize((640, 427), Image.Resampling.LANCZOS)


def test_merge_keeps_size_gray_values_and_restores_colour(photo_640x427):
    gray = photo_640x427.convert("L")
    merged = color.merge_full_resolution(gray, _true_chroma_at(photo_640x427, gray, 64))
    assert merged.size == (640, 427)
    assert merged.mode == "YCbCr"
    regray = np.asarray(merged.convert("RGB").convert("L"), dtype=np.int16)
    assert np.abs(regray - np.asarray(gray, dtype=np.int16)).mean() < 1.0
    assert np.abs(regray - np.asarray(gray, dtype=np.int16)).max() <= 2
    rgb_diff = np.abs(np.asarray(merged.convert("RGB"), dtype=np.int16) - np.asarray(photo_640x427, dtype=np.int16))
    assert rgb_diff.mean() < 6.0


def test_merge_survives_jpeg_encoding_straight_from_ycbcr(photo_640x427):
    gray = photo_640x427.convert("L")
    merged = color.merge_full_resolution(gray, _true_chroma_at(photo_640x427, gray, 64))
    buffer = io.BytesIO()
    merged.save(buffer, format="JPEG", quality=95, subsampling=0)
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    assert decoded.size == (640, 427) and decoded.mode == "RGB"
    regray = np.asarray(decoded.convert("L"), dtype=np.int16)
    assert np.abs(regray - np.asarray(gray, dtype=np.int16)).mean() < 1.0


def test_merge_reduces_chroma_instead_of_clipping_gray_near_white_and_black():
    # Gray ramp from black to white with a strongly saturated prediction everywhere.
    ramp = np.tile(np.linspace(0, 255, 300).round().astype(np.uint8), (40, 1))
    gray = Image.fromarray(ramp)
    saturated = np.stack([np.full((8, 8), 90.0), np.full((8, 8), -90.0)]).astype(np.float32)
    merged = color.merge_full_resolution(gray, saturated)
    rgb = np.asarray(merged.convert("RGB"), dtype=np.int16)
    regray = np.asarray(merged.convert("RGB").convert("L"), dtype=np.int16)
    assert np.abs(regray - ramp).max() <= 1
    # Pure black and pure white stay neutral; mid-grays keep strong colour.
    assert np.ptp(rgb[:, 0], axis=-1).max() <= 1 and np.ptp(rgb[:, -1], axis=-1).max() <= 1
    assert np.ptp(rgb[:, 150], axis=-1).min() > 60


def _limited_everywhere(gray: Image.Image, chroma: np.ndarray) -> np.ndarray:
    """Reference merge: the chroma limit evaluated for every pixel, straight from its definition."""
    planes = [
        cv2.resize(np.clip(np.rint(p + 128.0), 0, 255).astype(np.uint8), gray.size, interpolation=cv2.INTER_LINEAR)
        for p in chroma
    ]
    luma = np.asarray(gray, dtype=np.float32)
    cb, cr = (plane.astype(np.float32) - 128.0 for plane in planes)
    scale = _scale_everywhere(luma, luma, cb, cr)
    limited = [(128.0 + np.trunc(plane * scale)).astype(np.uint8) for plane in (cb, cr)]
    return np.stack([np.asarray(gray), *limited], axis=-1)


def _scale_everywhere(low: np.ndarray, high: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Reference chroma factor per sample, from its definition: the largest in [0, 1] that keeps R, G
    and B inside [0, 255] for gray values from ``low`` to ``high`` (float32 arrays, chroma as offsets)."""
    scale = np.ones_like(cb)
    for offset in (1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb):  # R, G, B (JFIF)
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(offset > 0, (255.0 - high) / offset, np.where(offset < 0, low / -offset, 1.0))
        scale = np.minimum(scale, room)
    return np.clip(scale, 0.0, 1.0)


def test_upsample_is_pillows_bilinear_within_one_level(photos):
    # OpenCV's INTER_LINEAR (fixed point) against Pillow's BILINEAR on a real photo's small planes.
    small = np.asarray(Image.fromarray(photos["coffee"]).convert("L").resize((24, 16), Image.Resampling.BOX))
    for size in ((600, 400), (451, 300), (25, 17)):
        pillow = np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BILINEAR), dtype=int)
        assert np.abs(color.upsample(small, size).astype(int) - pillow).max() <= 1, size
    float_plane = small.astype(np.float32) * 257.0
    pillow = np.asarray(Image.fromarray(float_plane).resize((600, 400), Image.Resampling.BILINEAR))
    assert np.abs(color.upsample(float_plane, (600, 400)) - pillow).max() < 0.5  # in 16-bit levels


def test_chroma_planes_420_are_half_size_and_in_gamut_for_every_2x2_block(photos):
    gray = np.asarray(Image.fromarray(photos["astronaut"]).convert("L"))[:301, :451]  # odd sides
    rng = np.random.default_rng(3)
    chroma = rng.uniform(-127.5, 127.5, (2, 16, 16)).astype(np.float32)
    cb, cr = chroma420.chroma_planes_420(gray, chroma)
    assert cb.shape == cr.shape == (151, 226) and cb.dtype == np.uint8
    # Every pixel of each 2 x 2 block, joined with its block's chroma, stays inside [0, 255] (within
    # the level that truncating Cb and Cr to integers may move G, as in the full-size merge).
    cb_full = np.repeat(np.repeat(cb.astype(float) - 128, 2, 0), 2, 1)[:301, :451]
    cr_full = np.repeat(np.repeat(cr.astype(float) - 128, 2, 0), 2, 1)[:301, :451]
    luma = gray.astype(float)
    for channel in (luma + 1.402 * cr_full, luma - 0.344136 * cb_full - 0.714136 * cr_full, luma + 1.772 * cb_full):
        assert channel.min() >= -1.0 and channel.max() <= 256.0
    # A mild prediction (reach at most 64 levels) passes unchanged where every pixel of the block
    # lies within 70..185: the half-size bilinear planes themselves.
    mild = chroma / 6.0
    cb, cr = chroma420.chroma_planes_420(gray, mild)
    blocks = np.pad(gray, ((0, 1), (0, 1)), mode="edge").reshape(151, 2, 226, 2)
    mid = (blocks.min(axis=(1, 3)) >= 70) & (blocks.max(axis=(1, 3)) <= 185)
    for plane, prediction in ((cb, mild[0]), (cr, mild[1])):
        expected = cv2.resize(np.clip(np.rint(prediction + 128), 0, 255).astype(np.uint8), (226, 151))
        assert mid.sum() > 10_000 and np.array_equal(plane[mid], expected[mid])


@pytest.mark.parametrize("amplitude", [10.0, 60.0, 127.5])
def test_merge_limits_exactly_the_pixels_that_need_it(photos, amplitude):
    # Photos with deep shadows and highlights, random strong predictions: the merge (numba's
    # vectorized pass, gamut.limit_pixels) equals the limit evaluated everywhere in numpy, to the bit.
    rng = np.random.default_rng(int(amplitude))
    for name in ("astronaut", "coffee", "rocket"):
        gray = Image.fromarray(photos[name]).convert("L")
        chroma = rng.uniform(-amplitude, amplitude, (2, 16, 16)).astype(np.float32)
        merged = np.asarray(color.merge_full_resolution(gray, chroma))
        assert np.array_equal(merged, _limited_everywhere(gray, chroma)), name


def _planes_limited_everywhere(gray: np.ndarray, chroma: np.ndarray) -> tuple[np.ndarray, ...]:
    """Reference 4:2:0 planes: the half-size bilinear prediction, every sample limited by its definition
    against its 2 x 2 block's darkest and brightest gray value (edge repeated on odd sides)."""
    height, width = gray.shape
    half = ((width + 1) // 2, (height + 1) // 2)
    cb, cr = (
        cv2.resize(np.clip(np.rint(p + 128.0), 0, 255).astype(np.uint8), half).astype(np.float32) - 128.0
        for p in chroma
    )
    blocks = np.pad(gray, ((0, height % 2), (0, width % 2)), mode="edge").reshape(half[1], 2, half[0], 2)
    low, high = blocks.min(axis=(1, 3)).astype(np.float32), blocks.max(axis=(1, 3)).astype(np.float32)
    scale = _scale_everywhere(low, high, cb, cr)
    return scale, *((128.0 + np.trunc(plane * scale)).astype(np.uint8) for plane in (cb, cr))


@pytest.mark.parametrize("amplitude", [10.0, 60.0, 127.5])
def test_chroma_planes_420_limit_exactly_the_samples_that_need_it(photos, amplitude):
    # The 4:2:0 planes (numba's vectorized pass) equal the limit evaluated for every sample by its
    # definition in numpy against its 2 x 2 block, to the bit, on photos with deep shadows and
    # highlights and odd sides.
    rng = np.random.default_rng(int(amplitude) + 1)
    for name in ("astronaut", "coffee", "rocket"):
        gray = np.asarray(Image.fromarray(photos[name]).convert("L"))[:-1, :-1]
        chroma = rng.uniform(-amplitude, amplitude, (2, 16, 16)).astype(np.float32)
        scale, *expected = _planes_limited_everywhere(gray, chroma)
        planes = chroma420.chroma_planes_420(gray, chroma)
        assert (scale < 1).sum() > 100, name  # the photo has samples that need the limit
        assert all(np.array_equal(got, want) for got, want in zip(planes, expected, strict=True)), name


def test_chroma_planes_420_of_every_small_shape_and_of_views():
    # Odd and even sides from 1 to 7 (the odd last row and column are their blocks' second row and
    # column), for contiguous, read-only and strided (reversed) gray planes, near black and white.
    rng = np.random.default_rng(5)
    for height in range(1, 8):
        for width in range(1, 8):
            plane = rng.choice(np.array([0, 3, 128, 250, 255], np.uint8), (height + 1, width + 2))
            readonly = plane[:height, :width].copy()
            readonly.flags.writeable = False
            chroma = rng.uniform(-127.5, 127.5, (2, 3, 3)).astype(np.float32)
            for view in (plane[:height, :width], plane[1:, ::-1][:height, :width], readonly):
                _, *expected = _planes_limited_everywhere(np.ascontiguousarray(view), chroma)
                planes = chroma420.chroma_planes_420(view, chroma)
                assert all(np.array_equal(a, b) for a, b in zip(planes, expected, strict=True)), (height, width)


def test_chroma_planes_420_refuse_what_is_not_a_gray_plane():
    with pytest.raises(ValueError, match="2-D uint8"):
        chroma420.chroma_planes_420(np.zeros((4, 4), np.uint16), np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="2-D uint8"):
        chroma420.chroma_planes_420(np.zeros((0, 4), np.uint8), np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        chroma420.chroma_planes_420(np.zeros((4, 4), np.uint8), np.zeros((3, 2, 2), np.float32))


def test_the_gamut_kernels_refuse_planes_they_cannot_limit_in_place():
    gray, planes = np.zeros((5, 5), np.uint8), np.zeros((3, 3), np.uint8)
    with pytest.raises(ValueError, match=r"cb must be a writable uint8 array of shape \(5, 5\)"):
        gamut.limit_pixels(gray, planes, planes.copy())
    readonly = planes.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="cr must be a writable"):
        gamut.limit_blocks(gray, planes, readonly)
    with pytest.raises(ValueError, match="2-D uint8"):
        gamut.limit_blocks(gray.astype(np.uint16), planes, planes.copy())
    with pytest.raises(ValueError, match=r"cr must be a float32 array of shape \(5, 5\)"):
        gamut.rgb16(gray.astype(np.uint16), np.zeros((5, 5), np.float32), np.zeros((5, 5), np.float64))


def test_chroma_planes_420_leave_midtones_alone(photos):
    # Gray values farther from 0 and 255 than the chroma reaches anywhere: the planes are the
    # upsampled prediction itself, every factor exactly 1.
    gray = (np.asarray(Image.fromarray(photos["coffee"]).convert("L"))[:-1, :-1] // 2 + 64).astype(np.uint8)
    chroma = np.random.default_rng(9).uniform(-20.0, 20.0, (2, 16, 16)).astype(np.float32)
    half = ((gray.shape[1] + 1) // 2, (gray.shape[0] + 1) // 2)
    planes = chroma420.chroma_planes_420(gray, chroma)
    for plane, prediction in zip(planes, chroma, strict=True):
        assert np.array_equal(plane, cv2.resize(np.clip(np.rint(prediction + 128), 0, 255).astype(np.uint8), half))


def test_merge_16bit_keeps_luma_and_sixteen_bits(photo_640x427):
    gray8 = photo_640x427.convert("L")
    gray16 = np.asarray(gray8, dtype=np.uint16) * 257 + 100  # use the low byte too
    rgb16 = color.merge_full_resolution_16bit(gray16, _true_chroma_at(photo_640x427, gray8, 64))
    assert rgb16.shape == (427, 640, 3) and rgb16.dtype == np.uint16
    luma = rgb16.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - gray16).mean() < 2.0  # in 16-bit levels: 1/257 of an 8-bit level
    assert len(np.unique(rgb16[..., 1] & 0xFF)) > 200  # really 16 bits, not 8 shifted
    rgb_diff = np.abs(rgb16.astype(np.float64) / 257 - np.asarray(photo_640x427, dtype=np.float64))
    assert rgb_diff.mean() < 6.0


def _rgb16_everywhere(gray16: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Reference 16-bit merge in numpy: chroma x 257 upsampled (float32), every pixel's factor from its
    definition, offsets scaled (not truncated), JFIF's RGB rounded half to even and clipped."""
    height, width = gray16.shape
    cb, cr = (cv2.resize(np.ascontiguousarray(p, np.float32) * 257.0, (width, height)) for p in chroma)
    luma = gray16.astype(np.float32)
    scale = np.ones_like(luma)
    for offset in (1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb):
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(offset > 0, (65535.0 - luma) / offset, np.where(offset < 0, luma / -offset, 1.0))
        scale = np.minimum(scale, room)
    scale = np.clip(scale, 0.0, 1.0)
    cb, cr = cb * scale, cr * scale
    channels = (luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb)
    return np.stack([np.clip(np.rint(c), 0, 65535).astype(np.uint16) for c in channels], axis=-1)


@pytest.mark.parametrize("amplitude", [10.0, 127.5])
def test_merge_16bit_equals_the_limit_evaluated_everywhere(photos, amplitude):
    # numba's pass (gamut.rgb16) against the definition in numpy, to the bit: photos with odd
    # sides, the low byte used, rows of pure black and pure white, random strong predictions.
    rng = np.random.default_rng(int(amplitude) + 7)
    for name in ("astronaut", "rocket"):
        gray8 = np.asarray(Image.fromarray(photos[name]).convert("L"))[:-1, :-1]
        gray16 = (gray8.astype(np.uint16) * 257 + rng.integers(0, 257, gray8.shape)).astype(np.uint16)
        gray16[:3], gray16[-3:] = 0, 65535
        chroma = rng.uniform(-amplitude, amplitude, (2, 16, 16)).astype(np.float32)
        rgb16 = color.merge_full_resolution_16bit(gray16, chroma)
        assert rgb16.shape == (*gray16.shape, 3) and np.array_equal(rgb16, _rgb16_everywhere(gray16, chroma)), name
    tiny = color.merge_full_resolution_16bit(np.full((1, 1), 40000, np.uint16), np.full((2, 2, 2), 50, np.float32))
    assert np.array_equal(
        tiny, _rgb16_everywhere(np.full((1, 1), 40000, np.uint16), np.full((2, 2, 2), 50, np.float32))
    )


def test_merge_refuses_non_gray_input(photo_640x427):
    with pytest.raises(ValueError, match="mode 'L'"):
        color.merge_full_resolution(photo_640x427, np.zeros((2, 8, 8), np.float32))


def test_chroma_planes_420_moved_to_its_own_module_and_the_old_name_still_resolves():
    with pytest.warns(DeprecationWarning, match="chroma420"):
        assert color.chroma_planes_420 is chroma420.chroma_planes_420
