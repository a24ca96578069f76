"""Evaluate's metrics on real photographs: the truth against itself, the gray baseline, the references."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from archive_colorizer.evaluate.metrics import METRICS, ciede2000, colorfulness, psnr, score, ssim
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
