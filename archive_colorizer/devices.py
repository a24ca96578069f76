"""What a device computes natively (the autocast dtype of training and inference), and the settings it trains with.

bfloat16 runs in hardware on CUDA GPUs of compute capability 8.0 and newer (Ampere: A100, A10,
L4, RTX 30xx; Ada; Hopper: H100, H200) and on ROCm. Below 8.0 (V100 7.0, T4 7.5) torch emulates
it: ``torch.cuda.is_bf16_supported()`` answers True there, as its ``including_emulation``
defaults to True since torch 2.3, yet the emulated kernels run far slower than float16 tensor
cores. So a choice of precision asks :func:`bf16_native`, never ``is_bf16_supported()``.
Reference: NVIDIA's CUDA compute capability table; torch.cuda.is_bf16_supported's source.
"""

from __future__ import annotations

import torch


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (see the module docstring).

    Args:
        device: a torch device; anything but ``cuda`` answers False.
    """
    if device.type != "cuda":
        return False
    if torch.version.hip:
        return True
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def inference_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a generator's forward pass on ``device``.

    Returns:
        ``torch.bfloat16`` where it is native, ``torch.float16`` on an older CUDA GPU (the
        forward pass needs no loss scaling), ``None`` (float32, no autocast) on a CPU.
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if bf16_native(device) else torch.float16


def use_device_settings(device: torch.device) -> bool:
    """Settings of a worker training on ``device``; returns whether batches are pinned.

    On CUDA: ``torch.backends.cudnn.benchmark`` on (every training batch has the same shape,
    ``drop_last`` and a fixed image size, so cuDNN's autotuned convolution algorithms are
    chosen once and reused) and batches copied from pinned host memory (``pin_memory``: the
    host-to-device copy does not first go through a pageable staging buffer). On CPU neither.
    """
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    return cuda
