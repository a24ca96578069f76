"""Colour conversion and the full-resolution merge.

Convention (pix2pix colorization, Isola et al. 2017, "Image-to-Image Translation with
Conditional Adversarial Networks"; Lab normalisation as in Zhang et al. 2016):

- CIE Lab with the D65 white point, computed by kornia (tensors on CPU or CUDA). L is in
  [0, 100]; a and b lie in about [-110, 110] for sRGB colours.
- Network input ``L / 50 - 1`` in [-1, 1], shape (B, 1, H, W).
- Network output ``ab / 110`` in [-1, 1] (tanh), shape (B, 2, H, W).

Full-resolution output never goes through Lab: the prediction is turned into RGB and then
into YCbCr (ITU-R BT.601 full range, what JPEG stores) at the model's working size, the two
chroma planes are upsampled bilinearly to the original size, and they are joined with the
original gray image as Y. Where a predicted colour cannot exist at a pixel's gray value (near
black or white) the chroma is reduced; the gray value is never changed.

JPEG outputs take the chroma only at half size (4:2:0,
:func:`archive_colorizer.chroma420.chroma_planes_420`): the planes go straight to the JPEG
encoder with the full-resolution gray as Y. Upsampling is bilinear
through OpenCV (``cv2.resize``, ``INTER_LINEAR``: the same triangle filter on pixel centres as
Pillow's ``BILINEAR`` when enlarging, about 4x faster).

torch and kornia are imported by the functions that use them: the full-resolution merge needs
only numpy, OpenCV and Pillow, so the CPU workers of the colorize job never load torch (about 2 s of
start-up and 200 MB of memory per worker process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from archive_colorizer import gamut, images
from archive_colorizer.lazy import moved

# One OpenCV thread: each colorize task already has its own core (Ray reserves it), and OpenCV's
# thread pool on a busy machine costs more in waiting than the resize itself.
cv2.setNumThreads(1)

if TYPE_CHECKING:
    import torch

L_SCALE = 50.0
"""``L_norm = L / L_SCALE - 1`` maps L in [0, 100] to [-1, 1]."""
AB_SCALE = 110.0
"""``ab_norm = ab / AB_SCALE`` maps a, b in about [-110, 110] to [-1, 1]."""


def _check_batch(image: torch.Tensor, channels: int, name: str) -> None:
    import torch

    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != channels:
        raise ValueError(f"{name} must have shape (B, {channels}, H, W), got {tuple(image.shape)}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB to CIE Lab (D65) through kornia.

    Args:
        rgb: (B, 3, H, W) float, gamma-encoded sRGB in [0, 1], any device.

    Returns:
        (B, 3, H, W) float32 Lab: L in [0, 100], a and b in about [-110, 110].

    Raises:
        ValueError: the shape is not (B, 3, H, W).
    """
    import kornia.color

    _check_batch(rgb, 3, "rgb")
    return kornia.color.rgb_to_lab(rgb.float())


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (D65) to sRGB through kornia, clipped to the displayable range.

    Args:
        lab: (B, 3, H, W) float Lab, L in [0, 100].

    Returns:
        (B, 3, H, W) float32 sRGB in [0, 1].
    """
    import kornia.color

    _check_batch(lab, 3, "lab")
    return kornia.color.lab_to_rgb(lab.float(), clip=True)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> network input in [-1, 1] (``L / 50 - 1``)."""
    return lightness / L_SCALE - 1.0


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    """Network input in [-1, 1] -> L in [0, 100]."""
    return (l_norm + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a, b in about [-110, 110] -> network target in about [-1, 1] (``ab / 110``)."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    """Network output in [-1, 1] -> a, b in [-110, 110]."""
    return ab_norm * AB_SCALE


def rgb_to_l_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a batch of RGB images into the network's input and target.

    Args:
        rgb: (B, 3, H, W) float sRGB in [0, 1].

    Returns:
        ``(l_norm, ab_norm)``: (B, 1, H, W) in [-1, 1] and (B, 2, H, W) in about [-1, 1],
        float32, on the input's device.
    """
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def l_ab_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Join normalised L and ab back into RGB.

    Args:
        l_norm: (B, 1, H, W) in [-1, 1].
        ab_norm: (B, 2, H, W) in [-1, 1], e.g. the generator's output.

    Returns:
        (B, 3, H, W) float32 sRGB in [0, 1].
    """
    import torch

    _check_batch(l_norm, 1, "l_norm")
    _check_batch(ab_norm, 2, "ab_norm")
    lab = torch.cat([denormalize_l(l_norm.float()), denormalize_ab(ab_norm.float())], dim=1)
    return lab_to_rgb(lab)


def gray_to_l(gray: torch.Tensor) -> torch.Tensor:
    """Network input for gray images: the L of the neutral colour R = G = B = gray.

    Args:
        gray: (B, 1, H, W) float gray values in [0, 1] (8-bit value / 255, 16-bit / 65535).

    Returns:
        (B, 1, H, W) float32 ``l_norm`` in [-1, 1].
    """
    _check_batch(gray, 1, "gray")
    return normalize_l(rgb_to_lab(gray.float().expand(-1, 3, -1, -1))[:, :1])


def predicted_chroma_batch(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """BT.601 chroma of a batch of predictions at the model's working size, on their device.

    The prediction (L, ab) is turned into sRGB and then into YCbCr (kornia, full range, as JPEG
    stores it); only Cb and Cr are kept, since the full-size output takes its luma from the
    original gray image.

    Args:
        l_norm: (B, 1, h, w) in [-1, 1].
        ab_norm: (B, 2, h, w) in [-1, 1].

    Returns:
        (B, 2, h, w) float32 tensor on the inputs' device: Cb and Cr as offsets from neutral in
        8-bit levels, each in [-127.5, 127.5].
    """
    import kornia.color

    ycbcr = kornia.color.rgb_to_ycbcr(l_ab_to_rgb(l_norm, ab_norm))
    return (ycbcr[:, 1:] - 0.5) * 255.0


def predicted_chroma(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> np.ndarray:
    """:func:`predicted_chroma_batch` of one prediction, as a numpy array on the host.

    Args:
        l_norm: (1, h, w) or (1, 1, h, w) in [-1, 1].
        ab_norm: (2, h, w) or (1, 2, h, w) in [-1, 1].

    Returns:
        (2, h, w) float32 numpy array: Cb and Cr offsets from neutral in 8-bit levels.
    """
    import torch

    if l_norm.ndim == 3:
        l_norm = l_norm.unsqueeze(0)
    if ab_norm.ndim == 3:
        ab_norm = ab_norm.unsqueeze(0)
    return predicted_chroma_batch(l_norm, ab_norm)[0].detach().to("cpu", torch.float32).numpy()


def _small_chroma_8bit(chroma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(2, h, w) float offsets -> two (h, w) uint8 planes, 128 = neutral."""
    planes = np.clip(np.rint(chroma + 128.0), 0, 255).astype(np.uint8)
    return planes[0], planes[1]


def upsample(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one plane (OpenCV ``INTER_LINEAR``, pixel centres aligned as Pillow's BILINEAR).

    Args:
        plane: (h, w) uint8 or float32.
        size: (W, H) of the result.

    Returns:
        A new, writable (H, W) array of the input's dtype.
    """
    if plane.shape[::-1] == tuple(size):
        return plane.copy()
    return cv2.resize(plane, tuple(size), interpolation=cv2.INTER_LINEAR)


def halve(plane: np.ndarray) -> np.ndarray:
    """The mean of each 2 x 2 block (OpenCV's ``INTER_AREA`` at exactly half size, SIMD).

    Args:
        plane: (H, W) uint8, H and W at least 2; an odd last row or column is left out.

    Returns:
        A new (H // 2, W // 2) uint8 array (means rounded).
    """
    height, width = plane.shape
    even = plane[: height // 2 * 2, : width // 2 * 2]
    return cv2.resize(even, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def merge_full_resolution(gray: Image.Image, chroma: np.ndarray) -> Image.Image:
    """Colour a full-resolution 8-bit gray image with a small chroma prediction.

    Cb and Cr are upsampled bilinearly (:func:`upsample`) to the gray image's size; where a pixel's
    gray value leaves no room for the predicted colour (near black or white), its chroma is
    scaled down so that R, G and B stay within [0, 255] (:func:`archive_colorizer.gamut.limit_pixels`).
    The gray image becomes Y unchanged, so ``result.convert("L")`` returns the input within about
    one level (Pillow's fixed-point YCbCr -> RGB rounding). No full-size float array and no Lab.

    Args:
        gray: mode "L" image, any size (W, H).
        chroma: (2, h, w) float32 from :func:`predicted_chroma`.

    Returns:
        A mode "YCbCr" image of size (W, H); save it as JPEG directly, or ``.convert("RGB")``.

    Raises:
        ValueError: ``gray`` is not mode "L" or ``chroma`` is not (2, h, w).
    """
    if gray.mode != "L":
        raise ValueError(f"merge_full_resolution expects a mode 'L' image, got mode {gray.mode!r}")
    if chroma.ndim != 3 or chroma.shape[0] != 2:
        raise ValueError(f"chroma must have shape (2, h, w), got {chroma.shape}")
    cb_small, cr_small = _small_chroma_8bit(chroma)
    cb, cr = upsample(cb_small, gray.size), upsample(cr_small, gray.size)
    gamut.limit_pixels(images.gray_array(gray), cb, cr)
    return Image.merge("YCbCr", (gray, Image.fromarray(cb), Image.fromarray(cr)))


def merge_full_resolution_16bit(gray: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Colour a full-resolution 16-bit gray image; the 16-bit counterpart of :func:`merge_full_resolution`.

    Chroma is upsampled bilinearly in float32 (:func:`upsample`), limited per pixel as in the
    8-bit route, and added to the original gray values as BT.601 luma
    (:func:`archive_colorizer.gamut.rgb16`, one compiled pass).

    Args:
        gray: (H, W) uint16 gray values in [0, 65535].
        chroma: (2, h, w) float32 from :func:`predicted_chroma` (8-bit units; scaled by 257 here).

    Returns:
        (H, W, 3) uint16 RGB whose BT.601 luma equals ``gray`` up to rounding.

    Raises:
        ValueError: ``gray`` is not a 2-D uint16 array or ``chroma`` is not (2, h, w).
    """
    if gray.ndim != 2 or gray.dtype != np.uint16:
        raise ValueError(f"gray must be a 2-D uint16 array, got {gray.dtype} {gray.shape}")
    if chroma.ndim != 3 or chroma.shape[0] != 2:
        raise ValueError(f"chroma must have shape (2, h, w), got {chroma.shape}")
    height, width = gray.shape
    cb, cr = (upsample(np.ascontiguousarray(plane, np.float32) * 257.0, (width, height)) for plane in chroma)
    return gamut.rgb16(gray, cb, cr)


# chroma_planes_420 has its own module; the old path resolves (with a warning) for one release.
__getattr__ = moved(__name__, {"chroma_planes_420": "archive_colorizer.chroma420"})
