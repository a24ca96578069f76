"""Validation metrics on real photographs: PSNR in 8-bit RGB, L1 of ab, the gray baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.train.metrics import Accumulator, psnr_8bit, validation_sums


@pytest.fixture(scope="module")
def rgb(photos) -> torch.Tensor:
    crops = [
        np.asarray(Image.fromarray(photos[n]).resize((64, 64), Image.Resampling.BILINEAR))
        for n in ("coffee", "astronaut")
    ]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()  # (2, 3, 64, 64), 8-bit values


def test_psnr_of_an_image_off_by_d_levels_is_20_log10_255_over_d(rgb):
    for offset in (1.0, 4.0, 25.0):
        shifted = torch.where(rgb < 128, rgb + offset, rgb - offset)  # |difference| = offset everywhere
        expected = 20 * math.log10(255 / offset)
        assert psnr_8bit(shifted, rgb).tolist() == pytest.approx([expected] * 2, abs=1e-4)


def test_validation_sums_of_a_perfect_prediction_and_of_the_gray_baseline(rgb):
    l_norm, ab = rgb_to_l_ab(rgb / 255)
    perfect = validation_sums(l_norm, ab, ab)
    assert perfect["val_L1_ab"] == 0.0
    assert perfect["val_L1_ab_gray"] == pytest.approx(ab.abs().mean(dim=(1, 2, 3)).sum().item(), rel=1e-6)
    assert perfect["val_PSNR"] / 2 > 60  # identical 8-bit images
    # Gray is a poor guess for colour photos: coffee and the astronaut lose 15-30 dB against truth.
    assert 10 < perfect["val_PSNR_gray"] / 2 < 35
    half_way = validation_sums(l_norm, ab / 2, ab)
    assert half_way["val_L1_ab"] == pytest.approx(perfect["val_L1_ab_gray"] / 2, rel=1e-5)
    assert perfect["val_PSNR_gray"] < half_way["val_PSNR"] < perfect["val_PSNR"]


def test_accumulator_means_survive_the_reduction_vector():
    sums = Accumulator(("loss", "val", "never"))
    sums.add("loss", 0.5)
    sums.add("loss", 1.5)
    sums.add("val", 9.0, count=3)
    sums.add("never", None)
    other = Accumulator(("loss", "val", "never"))
    other.add("loss", 4.0)
    reduced = Accumulator.from_tensor(sums.names, sums.to_tensor() + other.to_tensor())  # as all_reduce(SUM)
    assert reduced.means() == {"loss": 2.0, "val": 3.0, "never": None}
