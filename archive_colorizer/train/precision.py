"""Training precision: which autocast dtype a worker uses, and whether losses are scaled.

``--precision auto`` (the default) picks, per worker and logged at start:

- ``bf16`` on a CUDA GPU that computes bfloat16 natively (compute capability 8.0+, Ampere
  and newer: A100, H100, L4, RTX 30xx; :func:`archive_colorizer.devices.bf16_native`):
  autocast to bfloat16, no loss scaling (bf16 has float32's exponent range);
- ``fp16`` on an older CUDA GPU (T4, V100, where torch only emulates bfloat16): autocast to
  float16 with ``torch.amp.GradScaler``, one per optimizer (D and G step separately), which
  scales each loss before ``backward`` so small gradients do not underflow, unscales them
  before the step and skips steps whose gradients overflowed (Micikevicius et al. 2018,
  "Mixed precision training");
- ``fp32`` without a GPU (CPU workers), where autocast would only slow training down.

Requesting ``bf16`` or ``fp16`` explicitly on a worker that cannot run it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archive_colorizer.devices import bf16_native
from archive_colorizer.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class Precision:
    """What one worker runs with.

    Attributes:
        name: ``bf16``, ``fp16`` or ``fp32``.
        autocast_dtype: ``torch.bfloat16``/``torch.float16`` for CUDA autocast, ``None`` for fp32.
        scale_loss: whether the steps use a ``torch.amp.GradScaler`` (fp16 only).
    """

    name: str
    autocast_dtype: torch.dtype | None
    scale_loss: bool

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        """A new GradScaler for ``device`` when losses are scaled, else ``None``."""
        return torch.amp.GradScaler(device.type) if self.scale_loss else None


_BY_NAME = {
    "bf16": Precision("bf16", torch.bfloat16, scale_loss=False),
    "fp16": Precision("fp16", torch.float16, scale_loss=True),
    "fp32": Precision("fp32", None, scale_loss=False),
}


def resolve_precision(requested: str, device: torch.device, bf16_supported: bool | None = None) -> Precision:
    """The precision a worker on ``device`` trains with (rules in the module docstring).

    Args:
        requested: one of :data:`PRECISIONS`.
        device: the worker's device.
        bf16_supported: whether the GPU runs bfloat16 natively; ``None`` asks
            :func:`archive_colorizer.devices.bf16_native` (only for a CUDA device).

    Raises:
        ConfigError: ``requested`` is unknown, or ``bf16``/``fp16`` on a CPU worker, or ``bf16``
            on a GPU without bfloat16 support (the message names ``--precision``).
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision {requested!r} is not one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        if requested in ("bf16", "fp16"):
            raise ConfigError(
                f"--precision {requested} needs a CUDA GPU; this worker runs on {device}: use auto or fp32"
            )
        return _BY_NAME["fp32"]
    if bf16_supported is None:
        bf16_supported = bf16_native(device)
    if requested == "auto":
        return _BY_NAME["bf16" if bf16_supported else "fp16"]
    if requested == "bf16" and not bf16_supported:
        raise ConfigError(
            f"--precision bf16: the GPU {device} does not compute bfloat16 natively (compute capability below 8.0, "
            "where torch only emulates it, slowly); use auto or fp16"
        )
    return _BY_NAME[requested]
