"""The chroma planes of a 4:2:0 JPEG output: half-size Cb and Cr whose Y is the gray image unchanged.

Split from :mod:`archive_colorizer.color` (its conventions: BT.601 full-range YCbCr, chroma as
offsets from neutral in 8-bit levels, the prediction upsampled bilinearly by
:func:`archive_colorizer.color.upsample`). Each chroma sample colours a 2 x 2 block of gray
pixels; where the darkest or brightest of them leaves no room for the sample within [0, 255] in
R, G and B (near black or white), the sample is reduced (:func:`archive_colorizer.gamut.limit_blocks`,
one vectorized pass compiled by numba).
"""

from __future__ import annotations

import numpy as np

from archive_colorizer import gamut
from archive_colorizer.color import _small_chroma_8bit, upsample


def chroma_planes_420(gray: np.ndarray, chroma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cb and Cr at half resolution for a 4:2:0 JPEG whose Y is ``gray`` unchanged.

    The prediction is upsampled bilinearly (:func:`archive_colorizer.color.upsample`) straight to half the gray image's
    size (rounded up, what a 4:2:0 JPEG stores); each chroma sample is reduced where the
    darkest or brightest of the 2 x 2 gray pixels it colours leaves no room for it within
    [0, 255] in R, G and B (near black or white); the gray values are never changed.

    Args:
        gray: (H, W) uint8 gray values, the output's Y (any strides).
        chroma: (2, h, w) float32 from :func:`archive_colorizer.color.predicted_chroma`.

    Returns:
        ``(cb, cr)``: two ((H + 1) // 2, (W + 1) // 2) uint8 planes, 128 = neutral.

    Raises:
        ValueError: ``gray`` is not a non-empty 2-D uint8 array or ``chroma`` is not (2, h, w).
    """
    if gray.ndim != 2 or gray.dtype != np.uint8 or gray.size == 0:
        raise ValueError(f"gray must be a non-empty 2-D uint8 array, got {gray.dtype} {gray.shape}")
    if chroma.ndim != 3 or chroma.shape[0] != 2:
        raise ValueError(f"chroma must have shape (2, h, w), got {chroma.shape}")
    height, width = gray.shape
    half = ((width + 1) // 2, (height + 1) // 2)
    cb_small, cr_small = _small_chroma_8bit(chroma)
    cb, cr = upsample(cb_small, half), upsample(cr_small, half)
    gamut.limit_blocks(gray, cb, cr)
    return cb, cr
