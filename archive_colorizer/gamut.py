"""Chroma kept inside the RGB gamut: the per-sample limit of the full-resolution merge, compiled by numba.

A chroma sample (Cb, Cr, BT.601 full range as JPEG stores it, 128 = neutral) added to a gray value
Y gives R = Y + 1.402 Cr', G = Y - 0.344136 Cb' - 0.714136 Cr', B = Y + 1.772 Cb' (JFIF, Cb' and
Cr' the offsets from 128). Where Y leaves no room for the offsets within [0, 255] (near black or
white) the merge scales both offsets by the largest factor in [0, 1] that keeps R, G and B inside,
truncated toward zero (rounding could push a channel a level out); the gray value is never changed.

Two kernels apply that limit in place: :func:`limit_pixels` (4:4:4: one chroma sample per gray
pixel) and :func:`limit_blocks` (4:2:0: one sample per 2 x 2 block, against the block's darkest and
brightest gray value); a third, :func:`rgb16`, limits 16-bit chroma and makes the 16-bit RGB pixels
of PNG and TIFF outputs from it. Each is one pass, without branches in its inner loop, so that LLVM
vectorizes it (AVX2: eight samples at a time): for a 1.7 MP scan about 0.45 ms (4:2:0) and 1 ms
(4:4:4) whatever the prediction, where numpy and OpenCV, computing the formula only near black and
white, took 1-2.5 and 14 ms with the demo's trained generator and up to 19 and 35 ms with a
saturated prediction. The arithmetic is float32 in the order of the reference formula
(``tests/test_color.py``), without fast-math (no reassociation, no fused multiply-add), so the
result is the same to the bit. The compiled kernels are cached on disk (numba's ``cache=True``:
beside the module, or in the user's cache folder where that is not writable); a worker process
loads them in about 0.1 s (with numba's import 0.3 s), compiling them the first time takes about 1 s.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

CR_TO_R, CB_TO_G, CR_TO_G, CB_TO_B = 1.402, -0.344136, -0.714136, 1.772
"""JFIF's YCbCr -> RGB coefficients: the offsets from Y of R (of Cr), G (of Cb and of Cr) and B (of Cb)."""

# float32 constants: numba would compute with a Python float in float64 (numpy with float32 arrays
# and a Python float computes in float32, as the reference formula does).
_R_CR, _G_CB, _G_CR, _B_CB = (np.float32(value) for value in (CR_TO_R, CB_TO_G, CR_TO_G, CB_TO_B))
_NEUTRAL, _WHITE, _ONE, _ZERO = np.float32(128.0), np.float32(255.0), np.float32(1.0), np.float32(0.0)
_WHITE_16 = np.float32(65535.0)


@numba.njit(inline="always", error_model="numpy")
def _factor(cb_off: np.float32, cr_off: np.float32, low: np.float32, high: np.float32, white: np.float32) -> np.float32:
    """The largest factor in [0, 1] for the offsets (float32) that keeps R, G and B of the darkest
    gray value ``low`` at least 0 and of the brightest ``high`` at most ``white``."""
    red, green, blue = _R_CR * cr_off, _G_CB * cb_off + _G_CR * cr_off, _B_CB * cb_off
    up = max(max(red, green), blue)  # the channel pushed furthest toward white ...
    down = -min(min(red, green), blue)  # ... and toward 0
    # Both quotients are computed and one is selected (error_model numpy: x / 0 is inf, no branch).
    room_up = (white - high) / up
    room_down = low / down
    scale = min(_ONE, room_up if up > _ZERO else _ONE)
    return max(min(scale, room_down if down > _ZERO else _ONE), _ZERO)


@numba.njit(inline="always", error_model="numpy")
def _limit_sample(cb_row: np.ndarray, cr_row: np.ndarray, index: int, low: np.uint8, high: np.uint8) -> None:
    """Reduce the sample ``index`` of one row of 8-bit Cb and Cr in place for the darkest gray value
    ``low`` and the brightest ``high`` it colours. A factor of 1 leaves the sample as it was."""
    cb_off = np.float32(cb_row[index]) - _NEUTRAL
    cr_off = np.float32(cr_row[index]) - _NEUTRAL
    scale = _factor(cb_off, cr_off, np.float32(low), np.float32(high), _WHITE)
    cb_row[index] = np.uint8(_NEUTRAL + np.trunc(cb_off * scale))
    cr_row[index] = np.uint8(_NEUTRAL + np.trunc(cr_off * scale))


# Each row's loop is a function of its own, with nothing after the loop: so LLVM vectorizes it.
# Written inside the loop over rows it did not (2.4 against 0.45 ms for the 4:2:0 planes).


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _limit_row(luma: np.ndarray, cb_row: np.ndarray, cr_row: np.ndarray) -> None:
    for index in range(luma.shape[0]):
        _limit_sample(cb_row, cr_row, index, luma[index], luma[index])


@numba.njit(cache=True, nogil=True)
def _limit_pixels(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    for row in range(luma.shape[0]):
        _limit_row(luma[row], cb[row], cr[row])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _limit_pairs(top: np.ndarray, bottom: np.ndarray, cb_row: np.ndarray, cr_row: np.ndarray, pairs: int) -> None:
    for index in range(pairs):
        column = 2 * index
        a, b, c, d = top[column], top[column + 1], bottom[column], bottom[column + 1]
        _limit_sample(cb_row, cr_row, index, min(min(a, b), min(c, d)), max(max(a, b), max(c, d)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _limit_blocks(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    height, width = gray.shape
    pairs = width // 2
    for row in range(cb.shape[0]):
        top, bottom = gray[2 * row], gray[min(2 * row + 1, height - 1)]
        _limit_pairs(top, bottom, cb[row], cr[row], pairs)
        if width % 2:  # the odd last column: its block is one column wide
            a, c = top[width - 1], bottom[width - 1]
            _limit_sample(cb[row], cr[row], pairs, min(a, c), max(a, c))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rgb16_row(
    gray_row: np.ndarray,
    cb_row: np.ndarray,
    cr_row: np.ndarray,
    red_row: np.ndarray,
    green_row: np.ndarray,
    blue_row: np.ndarray,
) -> None:
    # Three planes, not the (W, 3) pixels: LLVM vectorizes contiguous stores (1.3 ms for 1.8 MP),
    # not stores three apart (11 ms); OpenCV interleaves the planes afterwards (0.6-1.6 ms).
    for index in range(gray_row.shape[0]):
        luma = np.float32(gray_row[index])
        cb_off, cr_off = cb_row[index], cr_row[index]
        scale = _factor(cb_off, cr_off, luma, luma, _WHITE_16)
        cb_off, cr_off = cb_off * scale, cr_off * scale  # not truncated: 16-bit levels are fine enough
        red, green, blue = luma + _R_CR * cr_off, luma + _G_CB * cb_off + _G_CR * cr_off, luma + _B_CB * cb_off
        red_row[index] = np.uint16(min(max(np.rint(red), _ZERO), _WHITE_16))
        green_row[index] = np.uint16(min(max(np.rint(green), _ZERO), _WHITE_16))
        blue_row[index] = np.uint16(min(max(np.rint(blue), _ZERO), _WHITE_16))


@numba.njit(cache=True, nogil=True)
def _rgb16(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray, planes: np.ndarray) -> None:
    for row in range(gray.shape[0]):
        _rgb16_row(gray[row], cb[row], cr[row], planes[0, row], planes[1, row], planes[2, row])


def _check_gray(gray: np.ndarray, dtype: type) -> None:
    if gray.ndim != 2 or gray.dtype != dtype or gray.size == 0:
        raise ValueError(f"gray must be a non-empty 2-D {np.dtype(dtype).name} array, got {gray.dtype} {gray.shape}")


def _check_chroma(cb: np.ndarray, cr: np.ndarray, shape: tuple[int, ...], dtype: type, writable: bool) -> None:
    for name, plane in (("cb", cb), ("cr", cr)):
        if plane.shape != shape or plane.dtype != dtype or (writable and not plane.flags.writeable):
            needed = f"a writable {np.dtype(dtype).name}" if writable else f"a {np.dtype(dtype).name}"
            raise ValueError(f"{name} must be {needed} array of shape {shape}, got {plane.dtype} {plane.shape}")


def limit_pixels(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    """Limit full-size (4:4:4) chroma planes in place: each sample against its own gray pixel.

    Args:
        gray: (H, W) uint8 gray values (Y), any strides, read-only allowed.
        cb, cr: (H, W) uint8 writable chroma planes, 128 = neutral; changed in place.

    Raises:
        ValueError: the planes are not uint8 of one (H, W) shape, or ``cb``/``cr`` are read-only.
    """
    _check_gray(gray, np.uint8)
    _check_chroma(cb, cr, gray.shape, np.uint8, writable=True)
    _limit_pixels(gray, cb, cr)


def limit_blocks(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    """Limit half-size (4:2:0) chroma planes in place: each sample against its 2 x 2 block of ``gray``.

    Args:
        gray: (H, W) uint8 gray values (Y), any strides, read-only allowed; an odd last row or
            column is its blocks' only row or column.
        cb, cr: ((H + 1) // 2, (W + 1) // 2) uint8 writable chroma planes; changed in place.

    Raises:
        ValueError: the planes are not uint8 of those shapes, or ``cb``/``cr`` are read-only.
    """
    _check_gray(gray, np.uint8)
    _check_chroma(cb, cr, ((gray.shape[0] + 1) // 2, (gray.shape[1] + 1) // 2), np.uint8, writable=True)
    _limit_blocks(gray, cb, cr)


def rgb16(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """16-bit RGB from 16-bit gray values and full-size chroma offsets, each pixel's chroma limited.

    The 16-bit counterpart of :func:`limit_pixels` followed by the YCbCr -> RGB conversion: per
    pixel, the offsets are scaled by the largest factor in [0, 1] that keeps R, G and B inside
    [0, 65535] (not truncated: a 16-bit level is 1/257 of an 8-bit one), added to the gray value
    as JFIF's luma, rounded to the nearest level (half to even) and clipped.

    Args:
        gray: (H, W) uint16 gray values in [0, 65535], any strides.
        cb, cr: (H, W) float32 chroma offsets from neutral in 16-bit levels.

    Returns:
        A new (H, W, 3) uint16 RGB array whose BT.601 luma is ``gray`` up to rounding.

    Raises:
        ValueError: ``gray`` is not a non-empty 2-D uint16 array, or ``cb``/``cr`` are not float32 of its shape.
    """
    _check_gray(gray, np.uint16)
    _check_chroma(cb, cr, gray.shape, np.float32, writable=False)
    planes = np.empty((3, *gray.shape), np.uint16)
    _rgb16(gray, cb, cr, planes)
    return cv2.merge(list(planes))


def warm() -> None:
    """Load (or compile, the first time on a machine) the kernels now, not in the first image's merge.

    numba compiles a version per argument type: the gray plane of a decoded image is read-only
    (:func:`archive_colorizer.images.gray_array`), one computed from it is writable; both are loaded.
    """
    readonly = np.zeros((3, 3), np.uint8)
    readonly.flags.writeable = False
    for gray in (readonly, np.zeros((3, 3), np.uint8)):
        limit_blocks(gray, np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
        limit_pixels(gray, np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8))
    chroma16 = np.zeros((3, 3), np.float32)
    rgb16(np.zeros((3, 3), np.uint16), chroma16, chroma16)
