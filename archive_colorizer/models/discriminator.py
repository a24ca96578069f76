"""PatchGAN discriminator of pix2pix (Isola et al. 2017), on concat(L, ab).

Reference: junyanz/pytorch-CycleGAN-and-pix2pix, ``NLayerDiscriminator`` (``--netD basic``):
with ``n_layers=3`` and ``ndf=64`` each output logit sees a 70x70 patch, a 256x256 input gives
30x30 logits, and for 3 input channels the network has 2,765,633 parameters.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from archive_colorizer.models.generator import init_weights, norm_layer


class DiscriminatorSpec(BaseModel):
    """Architecture hyperparameters of :class:`PatchDiscriminator`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(3, ge=1, description="input channels (3: L and ab)")
    ndf: int = Field(64, ge=1, description="filters in the first layer")
    n_layers: int = Field(3, ge=1, le=8, description="stride-2 layers (3: 70x70 receptive field)")
    norm: Literal["batch", "instance"] = Field("batch", description="normalization layer")

    def build(self) -> PatchDiscriminator:
        """A freshly initialised discriminator with this architecture."""
        return PatchDiscriminator(**self.model_dump())


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits, one per overlapping patch.

    Layers: conv 4x4/2 (no norm) + LeakyReLU 0.2; ``n_layers - 1`` conv 4x4/2 + norm + LeakyReLU
    doubling the filters up to ``ndf * 8``; one conv 4x4/1 + norm + LeakyReLU; a conv 4x4/1 to
    one channel (raw logits, no sigmoid).

    Shapes:
        input (B, in_channels, H, W): concat(L, ab) in [-1, 1]; output (B, 1, H', W') logits,
        H' = H / 2**n_layers - 2 (30 for 256 and n_layers=3).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        use_bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        filters = ndf
        for index in range(1, n_layers + 1):
            previous, filters = filters, ndf * min(2**index, 8)
            stride = 2 if index < n_layers else 1
            layers += [
                nn.Conv2d(previous, filters, 4, stride, 1, bias=use_bias),
                norm_layer(norm, filters),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(filters, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, l_ab: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, 1, H', W') patch logits."""
        return self.model(l_ab)
