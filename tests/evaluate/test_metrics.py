"""Evaluate's metrics on real photographs: the truth against itself, the gray baseline, the references."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import peak_signal_noise_ratio

from archive_colorizer.evaluate.metrics import (
    AB_RANGE,
    METRICS,
    ciede2000,
    ciede2000_lab,
    colorfulness,
    psnr,
    psnr_ab,
    score,
    ssim,
    ssim_ab,
)
from archive_colorizer.train.data import crop_square

NAMES = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module")
def truths(photos) -> dict[str, np.ndarray]:
    """256 x 256 crops of real colour photographs, made as evaluate makes them."""
    return {name: crop_square(Image.fromarray(photos[name]), 256, None) for name in NAMES}


def _gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_the_truth_against_itself_scores_top_marks(truths):
    for truth in truths.values():
        scores = score(truth, truth.copy())
        assert scores["psnr"] == pytest.approx(20 * math.log10(255 / 1e-4))  # RMSE floored: 128.13 dB, finite
        assert scores["ssim"] == pytest.approx(1.0)
        assert scores["psnr_ab"] == pytest.approx(20 * math.log10(220 / 1e-4))  # 126.85 dB
        assert scores["ssim_ab"] == pytest.approx(1.0)
        assert scores["delta_colorfulness"] == scores["abs_delta_colorfulness"] == 0.0
        assert scores["ciede2000"] == 0.0
        assert scores["colorfulness"] == colorfulness(truth) > 10  # real colour photographs
        assert list(scores) == list(METRICS)


def test_the_gray_baseline_has_no_colourfulness_and_loses_all_of_the_truths(truths):
    for truth in truths.values():
        gray = _gray(truth)
        scores = score(truth, gray)
        assert scores["colorfulness"] == 0.0
        assert scores["delta_colorfulness"] == pytest.approx(-colorfulness(truth))  # signed: duller is negative
        assert scores["abs_delta_colorfulness"] == pytest.approx(colorfulness(truth))
        assert 10 < scores["psnr"] < 35 and scores["ciede2000"] > 3 and scores["ssim"] < 1
        # On chroma the gray baseline's error is the truth's whole ab: RMSE = RMS of the truth's a and b.
        truth_ab = rgb2lab(truth)[..., 1:]
        assert scores["psnr_ab"] == pytest.approx(20 * math.log10(AB_RANGE / np.sqrt(np.mean(truth_ab**2))), abs=1e-3)
        assert scores["ssim_ab"] < 0.9


def _scale_chroma(truth: np.ndarray, share: float) -> np.ndarray:
    """The photograph with its Lab a and b multiplied by ``share`` (L kept), back to 8-bit RGB."""
    lab = rgb2lab(truth)
    lab[..., 1:] *= share
    return np.rint(lab2rgb(lab) * 255).astype(np.uint8)


def test_chroma_psnr_follows_a_known_perturbation_of_the_colour(truths):
    # Keeping share s of the chroma leaves an ab error of (1 - s) * ab: the chroma PSNR is the gray
    # baseline's (s = 0) plus -20*log10(1 - s) dB, i.e. +6.02 dB at s = 1/2, +12.04 dB at s = 3/4.
    for truth in truths.values():
        gray = psnr_ab(truth, _gray(truth))
        for share, gain in ((0.5, 6.0206), (0.75, 12.0412)):
            assert psnr_ab(truth, _scale_chroma(truth, share)) == pytest.approx(gray + gain, abs=0.25)
        # The chroma metrics order the colourings as the error says; SSIM on ab too.
        assert ssim_ab(truth, _scale_chroma(truth, 0.75)) > ssim_ab(truth, _scale_chroma(truth, 0.5))
        assert ssim_ab(truth, _scale_chroma(truth, 0.5)) > ssim_ab(truth, _gray(truth))


def test_chroma_ssim_does_not_credit_the_gray_baseline_with_the_copied_luma(truths):
    # SSIM over R, G and B mostly measures the structure of the luma, which every colouring copies:
    # the gray baseline, with no colour at all, scores 0.72-0.93 on these photographs. On ab it
    # keeps 0.03-0.33 (measured 0.325 astronaut, 0.030 coffee, 0.035 chelsea, 0.160 rocket).
    expected_ab = {"astronaut": 0.325, "coffee": 0.030, "chelsea": 0.035, "rocket": 0.160}
    for name, truth in truths.items():
        gray = _gray(truth)
        assert ssim(truth, gray) > 0.7
        assert ssim_ab(truth, gray) == pytest.approx(expected_ab[name], abs=0.002)


def test_colourfulness_difference_of_an_image_with_itself_is_zero_and_of_gray_is_the_truths(truths):
    for truth in truths.values():
        assert score(truth, truth.copy())["abs_delta_colorfulness"] == 0.0
        assert score(truth, _gray(truth))["abs_delta_colorfulness"] == pytest.approx(colorfulness(truth))
        assert colorfulness(truth) > 10


# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Color Res. Appl. 30(1), Table 1:
# pair, L1, a1, b1, L2, a2, b2, dE00 (all 34 pairs).
SHARMA_2005 = (
    (1, 50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (2, 50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (3, 50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (4, 50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (5, 50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (6, 50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (7, 50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (8, 50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (9, 50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (10, 50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (11, 50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (12, 50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (13, 50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (14, 50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (15, 50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (16, 50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (17, 50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (18, 50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (19, 50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (20, 50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (21, 50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (22, 50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (23, 50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (24, 50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (25, 60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (26, 63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (27, 61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (28, 35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (29, 22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (30, 36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (31, 90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (32, 90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (33, 6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (34, 2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
)


def test_ciede2000_matches_sharma_wu_and_dalals_reference_pairs():
    table = np.array(SHARMA_2005, dtype=np.float64)
    assert table.shape == (34, 8) and list(table[:, 0]) == list(range(1, 35))
    differences = ciede2000_lab(table[:, 1:4], table[:, 4:7])  # (34,)
    for pair, found, published in zip(table[:, 0], differences, table[:, 7], strict=True):
        assert found == pytest.approx(published, abs=1e-4), f"pair {int(pair)}"
    # The formula is symmetric (pairs 7 and 8 are one pair both ways) and 0 for identical colours.
    assert np.allclose(ciede2000_lab(table[:, 4:7], table[:, 1:4]), differences, atol=1e-4)
    assert not ciede2000_lab(table[:, 1:4], table[:, 1:4]).any()


def test_psnr_is_scikit_images_for_images_that_differ(truths):
    for truth in truths.values():
        for candidate in (_gray(truth), _jpeg(truth, 30)):
            assert psnr(truth, candidate) == pytest.approx(
                peak_signal_noise_ratio(truth, candidate, data_range=255), abs=1e-4
            )


def test_metrics_order_colourings_by_how_close_they_are(truths):
    for truth in truths.values():
        close, far = _jpeg(truth, 95), _jpeg(truth, 10)
        assert psnr(truth, close) > psnr(truth, far)
        assert ssim(truth, close) > ssim(truth, far)
        assert ciede2000(truth, close) < ciede2000(truth, far)


def test_colourfulness_follows_hasler_and_suesstrunk():
    # A flat colour has no spread: M = 0.3 * sqrt(mean(rg)^2 + mean(yb)^2), rg = R - G, yb = (R + G) / 2 - B.
    flat = np.full((8, 8, 3), (200, 100, 50), np.uint8)
    assert colorfulness(flat) == pytest.approx(0.3 * math.hypot(200 - 100, 150 - 50))
    # Two colours in equal parts: the spread term is half the distance between them (population std).
    halves = np.concatenate(
        [np.full((8, 4, 3), (255, 0, 0), np.uint8), np.full((8, 4, 3), (0, 255, 0), np.uint8)], axis=1
    )
    rg, yb = np.array([255.0, -255.0]), np.array([127.5, 127.5])
    assert colorfulness(halves) == pytest.approx(
        math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    )


def test_desaturating_a_photograph_lowers_its_colourfulness(truths):
    truth = truths["coffee"]
    gray = _gray(truth).astype(np.float64)
    values = [
        colorfulness(np.rint(gray + share * (truth - gray)).clip(0, 255).astype(np.uint8))
        for share in (1.0, 0.5, 0.25, 0.0)
    ]
    assert values == sorted(values, reverse=True) and values[-1] == 0.0
    assert values[1] == pytest.approx(values[0] / 2, rel=0.02)  # M is linear in the chroma


def test_mismatched_images_are_refused(truths):
    with pytest.raises(ValueError, match="one shape"):
        psnr(truths["coffee"], truths["coffee"][:128])
    with pytest.raises(ValueError, match="uint8"):
        ssim(truths["coffee"], truths["coffee"].astype(np.float32))
