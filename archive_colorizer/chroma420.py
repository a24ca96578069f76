"""The chroma planes of a 4:2:0 JPEG output: half-size Cb and Cr whose Y is the gray image unchanged.

Split from :mod:`archive_colorizer.color` (its conventions: BT.601 full-range YCbCr, chroma as
offsets from neutral in 8-bit levels, the prediction upsampled bilinearly by
:func:`archive_colorizer.color.upsample`). Each chroma sample colours a 2 x 2 block of gray
pixels; where the darkest or brightest of them leaves no room for the sample within [0, 255] in
R, G and B (near black or white), the sample is reduced.

That limit is one pass over the half-size planes compiled by numba (:func:`_limit_to_blocks`):
for every sample its block's extrema, its channel offsets and its factor, without branches, so
that LLVM vectorizes the loop (AVX2: eight samples at a time). About 0.45 ms for a 1.7 MP scan
whatever the prediction; numpy with OpenCV took 1-2 ms for a mild prediction and up to 19 ms for a
saturated one (most samples near black or white by their reach). The arithmetic is float32 in
the order of :func:`archive_colorizer.color._limit_chroma`, without fast-math (no reassociation,
no fused multiply-add), so the result is the same to the bit. The compiled kernel is cached on
disk (numba's ``cache=True``: beside the module, or in the user's cache folder where that is not
writable); a worker process loads it in about 0.1 s, compiling it the first time takes about 1 s.
"""

from __future__ import annotations

import numba
import numpy as np

from archive_colorizer.color import _CB_TO_B, _CB_TO_G, _CR_TO_G, _CR_TO_R, _small_chroma_8bit, upsample

# float32 constants: numba would compute with a Python float in float64 (numpy with float32 arrays
# and a Python float computes in float32, as the reference formula does).
_R_CR, _G_CB, _G_CR, _B_CB = (np.float32(value) for value in (_CR_TO_R, _CB_TO_G, _CR_TO_G, _CB_TO_B))
_NEUTRAL, _WHITE, _ONE, _ZERO = np.float32(128.0), np.float32(255.0), np.float32(1.0), np.float32(0.0)


@numba.njit(inline="always", error_model="numpy")
def _limit_sample(cb_row: np.ndarray, cr_row: np.ndarray, index: int, low: np.uint8, high: np.uint8) -> None:
    """Reduce the sample ``index`` of one row of Cb and Cr in place for its block's darkest gray value
    ``low`` and brightest ``high``: the largest factor in [0, 1] that keeps R, G and B inside [0, 255],
    the offsets truncated toward zero (rounding could push a channel a level out). A factor of 1
    leaves the sample exactly as it was."""
    cb_off = np.float32(cb_row[index]) - _NEUTRAL
    cr_off = np.float32(cr_row[index]) - _NEUTRAL
    red, green, blue = _R_CR * cr_off, _G_CB * cb_off + _G_CR * cr_off, _B_CB * cb_off
    up = max(max(red, green), blue)  # the channel pushed furthest toward 255 ...
    down = -min(min(red, green), blue)  # ... and toward 0
    # Both quotients are computed and one is selected (error_model numpy: x / 0 is inf, no branch).
    room_up = (_WHITE - np.float32(high)) / up
    room_down = np.float32(low) / down
    scale = min(_ONE, room_up if up > _ZERO else _ONE)
    scale = max(min(scale, room_down if down > _ZERO else _ONE), _ZERO)
    cb_row[index] = np.uint8(_NEUTRAL + np.trunc(cb_off * scale))
    cr_row[index] = np.uint8(_NEUTRAL + np.trunc(cr_off * scale))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _limit_pairs(top: np.ndarray, bottom: np.ndarray, cb_row: np.ndarray, cr_row: np.ndarray, pairs: int) -> None:
    """The first ``pairs`` samples of one row against the gray rows ``top`` and ``bottom`` of their
    blocks (the same row for an odd last row), two columns each. A function of its own, with
    nothing after its loop: so LLVM vectorizes the loop (0.45 ms for a 1.7 MP scan); written
    inside :func:`_limit_to_blocks`'s loop over rows it did not (2.4 ms)."""
    for index in range(pairs):
        column = 2 * index
        a, b, c, d = top[column], top[column + 1], bottom[column], bottom[column + 1]
        _limit_sample(cb_row, cr_row, index, min(min(a, b), min(c, d)), max(max(a, b), max(c, d)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _limit_to_blocks(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    """Limit every sample of the half-size ``cb`` and ``cr`` (uint8, ((H + 1) // 2, (W + 1) // 2)) in
    place against its 2 x 2 block of ``gray`` ((H, W) uint8; an odd last row or column is its own
    block's second row or column)."""
    height, width = gray.shape
    pairs = width // 2
    for row in range(cb.shape[0]):
        top, bottom = gray[2 * row], gray[min(2 * row + 1, height - 1)]
        _limit_pairs(top, bottom, cb[row], cr[row], pairs)
        if width % 2:
            a, c = top[width - 1], bottom[width - 1]
            _limit_sample(cb[row], cr[row], pairs, min(a, c), max(a, c))


def warm() -> None:
    """Load (or compile, the first time on a machine) the limit's kernel now, not in the first image's merge.

    numba compiles a version per argument type: the gray plane of a decoded image is read-only
    (:func:`archive_colorizer.images.gray_array`), one computed from it is writable; both are loaded.
    """
    readonly = np.zeros((3, 3), np.uint8)
    readonly.flags.writeable = False
    for gray in (readonly, np.zeros((3, 3), np.uint8)):
        chroma_planes_420(gray, np.zeros((2, 2, 2), np.float32))


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
    _limit_to_blocks(gray, cb, cr)
    return cb, cr
