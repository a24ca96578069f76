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
- ``psnr_ab`` and ``ssim_ab``: the same two on the chroma only, the a and b channels of CIE Lab
  (D65, scikit-image), with the peak :data:`AB_RANGE` = 220 (ab in [-110, 110], the network's
  scale). A colorizer copies the truth's gray values, so PSNR and SSIM over R, G and B are
  carried by the luma every colouring shares (the gray baseline's RGB PSNR is about 20-25 dB
  on photographs); on ab they measure the colour alone. ``psnr_ab`` floors the RMSE at 1e-4
  as ``psnr`` does (identical chroma: 126.85 dB).
- ``colorfulness``: Hasler & Suesstrunk 2003, "Measuring colourfulness in natural images",
  ``M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)`` with ``rg = R - G``
  and ``yb = (R + G) / 2 - B`` on 8-bit values. A gray image (R = G = B) scores exactly 0;
  everyday photographs score about 15-110 (their "quite" to "extremely colourful").
- ``delta_colorfulness`` (dCF): **signed**, ``colorfulness(prediction) - colorfulness(truth)``;
  negative means duller than the truth, the usual failure of colorization models (the gray
  baseline scores ``-colorfulness(truth)``). ``abs_delta_colorfulness`` is ``|dCF|`` per image,
  and its mean is reported separately (the mean of ``|dCF|`` is not ``|mean dCF|``).
- ``ciede2000``: mean over pixels of the CIEDE2000 colour difference (Sharma, Wu and Dalal
  2005, "The CIEDE2000 color-difference formula: implementation notes, supplementary test
  data, and mathematical observations") by scikit-image, between the CIE Lab (D65, 2 degree
  observer) of truth and prediction; about 2.3 is a just-noticeable difference. The tests
  check it on all 34 reference pairs of the paper's Table 1 to 1e-4.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from archive_colorizer.colorfulness import colorfulness
from archive_colorizer.train.metrics import psnr_8bit

METRICS = (
    "psnr",
    "ssim",
    "psnr_ab",
    "ssim_ab",
    "colorfulness",
    "delta_colorfulness",
    "abs_delta_colorfulness",
    "ciede2000",
)
"""Names of the scores :func:`score` returns, in the order reports list them."""
AB_RANGE = 220.0
"""Peak-to-peak range of CIE Lab's a and b used as ``data_range`` by the chroma metrics: [-110, 110]."""
_RMSE_FLOOR = 1e-4


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


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(rgb)  # (H, W, 3) float64: L in [0, 100], a and b in about [-110, 110]


def psnr_ab_lab(truth_lab: np.ndarray, candidate_lab: np.ndarray) -> float:
    """Chroma PSNR in dB, ``20 * log10(220 / RMSE)`` over the a and b values of two Lab images.

    Args:
        truth_lab, candidate_lab: (H, W, 3) float CIE Lab arrays of one shape; L is ignored.

    Returns:
        dB; the RMSE is floored at 1e-4, so identical chroma gives 126.85 dB, not infinity.
    """
    error = truth_lab[..., 1:].astype(np.float64) - candidate_lab[..., 1:]
    rmse = max(float(np.sqrt(np.mean(error**2))), _RMSE_FLOOR)
    return 20 * math.log10(AB_RANGE / rmse)


def ssim_ab_lab(truth_lab: np.ndarray, candidate_lab: np.ndarray) -> float:
    """Chroma SSIM in [-1, 1]: Wang et al.'s settings on the a and b channels (``data_range`` 220), averaged."""
    return float(
        structural_similarity(
            truth_lab[..., 1:].astype(np.float64),
            candidate_lab[..., 1:].astype(np.float64),
            channel_axis=2,
            data_range=AB_RANGE,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def psnr_ab(truth: np.ndarray, candidate: np.ndarray) -> float:
    """Chroma PSNR in dB of two 8-bit RGB images: :func:`psnr_ab_lab` of their CIE Lab (D65)."""
    _check(truth, candidate)
    return psnr_ab_lab(_lab(truth), _lab(candidate))


def ssim_ab(truth: np.ndarray, candidate: np.ndarray) -> float:
    """Chroma SSIM of two 8-bit RGB images: :func:`ssim_ab_lab` of their CIE Lab (D65)."""
    _check(truth, candidate)
    return ssim_ab_lab(_lab(truth), _lab(candidate))


def ciede2000_lab(truth_lab: np.ndarray, candidate_lab: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference per pixel (Sharma, Wu and Dalal 2005) by scikit-image.

    Args:
        truth_lab, candidate_lab: (..., 3) float CIE Lab arrays of one shape (L, a, b last).

    Returns:
        (...) float64 differences, >= 0 (kL = kC = kH = 1). Checked against the paper's 34
        reference pairs in the tests.
    """
    return np.asarray(deltaE_ciede2000(truth_lab, candidate_lab, channel_axis=-1), dtype=np.float64)


def ciede2000(truth: np.ndarray, candidate: np.ndarray) -> float:
    """Mean CIEDE2000 difference (>= 0; 0: identical colours) between the images' CIE Lab values."""
    _check(truth, candidate)
    return float(np.mean(ciede2000_lab(_lab(truth), _lab(candidate))))


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
    truth_lab, candidate_lab = _lab(truth), _lab(candidate)  # once for the three Lab metrics
    return {
        "psnr": psnr(truth, candidate),
        "ssim": ssim(truth, candidate),
        "psnr_ab": psnr_ab_lab(truth_lab, candidate_lab),
        "ssim_ab": ssim_ab_lab(truth_lab, candidate_lab),
        "colorfulness": candidate_cf,
        "delta_colorfulness": candidate_cf - truth_cf,
        "abs_delta_colorfulness": abs(candidate_cf - truth_cf),
        "ciede2000": float(np.mean(ciede2000_lab(truth_lab, candidate_lab))),
    }
