"""Losses of pix2pix (Isola et al. 2017): adversarial loss on patch logits plus lambda_L1 * L1."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

GanMode = Literal["vanilla", "lsgan"]


class GANLoss(nn.Module):
    """Adversarial loss against an all-real or all-fake target of the logits' shape.

    ``vanilla``: binary cross-entropy on logits (the original GAN objective, as pix2pix's
    default). ``lsgan``: mean squared error to 1 (real) / 0 (fake), Mao et al. 2017.

    Args:
        mode: "vanilla" or "lsgan".

    Raises:
        ValueError: unknown mode.
    """

    def __init__(self, mode: GanMode = "vanilla") -> None:
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown gan_mode {mode!r}: expected 'vanilla' or 'lsgan'")
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """Scalar float32 loss of (B, 1, H', W') discriminator logits against the target."""
        logits = logits.float()
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between (B, 2, H, W) normalised ab tensors (float32 scalar).

    pix2pix weighs it by ``lambda_L1`` (100) in the generator's objective.
    """
    return F.l1_loss(prediction.float(), target.float())
