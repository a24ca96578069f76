"""Colorization quality of one image against its ground truth: pure functions on 8-bit RGB arrays.

Every function takes (H, W, 3) uint8 sRGB arrays of the same shape (``truth`` first) and
returns a Python float. Conventions:

- ``psnr``: dB over the R, G and B 8-bit values, ``20 * log10(255 / RMSE)``, as Zhang et al.
  2016 ("Colorful Image Colorization") report it at 256x256. The project's single definition
  is :func:`archive_colorizer.train.metrics.psnr_8bit` (also train's ``val_PSNR``); it floors
  the RMSE at 1e-4, so identical images score 128.13 dB instead of infinity and the JSON stays
  finite. Otherwise it equals scikit-image's ``peak_signal_noise_ratio(data_range=255)``.
- ``ssim``: structural similarity (Wang et al. 2004) by scikit-image, per channel and averaged
  (``channel_axis``), with the paper's settings: Gaussian window sigma 1.5, population
  covariance, ``data_range=255``.
- ``colorfulness``: Hasler & Suesstrunk 2003, "Measuring colourfulness in natural images",
  ``M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)`` with ``rg = R - G``
  and ``yb = (R + G) / 2 - B`` on 8-bit values. A gray image (R = G = B) scores exactly 0;
  everyday photographs score about 15-110 (their "quite" to "extremely colourful").
- ``delta_colorfulness`` (dCF): **signed**, ``colorfulness(prediction) - colorfulness(truth)``;
  negative means duller than the truth, the usual failure of colorization models (the gray
  baseline scores ``-colorfulness(truth)``). ``abs_delta_colorfulness`` is ``|dCF|`` per image,
  and its mean is reported separately (the mean of ``|dCF|`` is not ``|mean dCF|``).
- ``ciede2000``: mean over pixels of the CIEDE2000 colour difference (Sharma et al. 2005) by
  scikit-image, between the CIE Lab (D65, 2 degree observer) of truth and prediction;
  about 2.3 is a just-noticeable difference.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from archive_colorizer.colorfulness import colorfulness
from archive_colorizer.train.metrics import psnr_8bit

METRICS = ("psnr", "ssim", "colorfulness", "delta_colorfulness", "abs_delta_colorfulness", "ciede2000")
"""Names of the scores :func:`score` returns, in the order reports list them."""


def _check(truth: np.ndarray, candidate: np.ndarray) -> None:
    if truth.shape != candidate.shape or truth.ndim != 3 or truth.shape[2] != 3:
        raise ValueError(f"expected two (H, W, 3) RGB arrays of one shape, got {truth.shape} and {candidate.shape}")
    if truth.dtype != np.uint8 or candidate.dtype != np.uint8:
        raise ValueError(f"expected uint8 arrays, got {truth.dtype} and {candidate.dtype}")


def psnr(truth: np.ndarray, candidate: np.ndarray) -> float:
    """PSNR in dB of ``candidate`` against ``truth`` (8-bit RGB; see the module docstring).

    Raises:
        ValueError: the arrays are not (H, W, 3) uint8 of one shape (also for the other metrics).
    """
    _check(truth, candidate)
    as_batch = [torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] for a in (candidate, truth)]
    return float(psnr_8bit(*as_batch)[0])  # (1, 3, H, W) 8-bit values each


def ssim(truth: np.ndarray, candidate: np.ndarray) -> float:
    """SSIM in [-1, 1] (1: identical), Wang et al.'s settings, averaged over R, G and B."""
    _check(truth, candidate)
    return float(
        structural_similarity(
            truth,
            candidate,
            channel_axis=2,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def ciede2000(truth: np.ndarray, candidate: np.ndarray) -> float:
    """Mean CIEDE2000 difference (>= 0; 0: identical colours) between the images' CIE Lab values."""
    _check(truth, candidate)
    return float(np.mean(deltaE_ciede2000(rgb2lab(truth), rgb2lab(candidate))))


def score(truth: np.ndarray, candidate: np.ndarray, truth_colorfulness: float | None = None) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one colouring of one image.

    Args:
        truth: (H, W, 3) uint8 ground-truth RGB.
        candidate: (H, W, 3) uint8 colouring of the same gray values (prediction or gray baseline).
        truth_colorfulness: ``colorfulness(truth)`` if already known (saves recomputing it).

    Returns:
        ``{name: value}`` in :data:`METRICS` order.
    """
    truth_cf = colorfulness(truth) if truth_colorfulness is None else truth_colorfulness
    candidate_cf = colorfulness(candidate)
    return {
        "psnr": psnr(truth, candidate),
        "ssim": ssim(truth, candidate),
        "colorfulness": candidate_cf,
        "delta_colorfulness": candidate_cf - truth_cf,
        "abs_delta_colorfulness": abs(candidate_cf - truth_cf),
        "ciede2000": ciede2000(truth, candidate),
    }
