"""ResNet-18 U-Net generator (the fastai colorization recipe), predicting ab from L.

Reference: fastai ``DynamicUnet`` over a ``resnet18`` body as used in fastai's and DeOldify's
colorizers, and Ronneberger et al. 2015 (U-Net): an ImageNet-style ResNet-18 encoder
(:mod:`archive_colorizer.models.resnet`, torchvision's parameter names) and a decoder that
upsamples by 2 five times, each time concatenating the encoder's feature map of that
resolution (the stem at H/2, layer1..layer3 at H/4..H/16) and, at full resolution, the input L
itself, as fastai's ``last_cross`` does. The decoder blocks are bilinear upsampling + two 3x3
convolutions with BatchNorm and ReLU (no transposed convolutions: no checkerboard artefacts);
a 1x1 convolution and tanh give ab.

Same input/output contract as :class:`~archive_colorizer.models.generator.UNetGenerator`:
input (B, 1, H, W) ``L/50 - 1`` in [-1, 1], output (B, 2, H, W) ``ab/110`` in [-1, 1]; H and W
divisible by 32 (``num_downs`` is 5).

Size with the default decoder (256, 128, 64, 32, 16): 14,321,970 parameters (11,170,240 in the
encoder) and 10.59 GFLOP per 256x256 image (2.65 at 128x128), counted with
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2); pix2pix's ``unet_256``
has 54,409,858 parameters and 11.96 GFLOP, the demo's U-Net (ngf 32, num_downs 6) 7,312,706
and 0.74 GFLOP at 128x128. About 4.53 of the 10.59 GFLOP are the encoder's.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn
from torch.nn import functional as F

from archive_colorizer.models.resnet import STAGE_CHANNELS, ResNet18Encoder

GRAY_MEAN = 0.449
"""ImageNet's RGB mean (0.485, 0.456, 0.406) averaged over the channels; the encoder sees gray g as (g - mean) / std."""
GRAY_STD = 0.226
"""ImageNet's RGB std (0.229, 0.224, 0.225) averaged over the channels."""


class ResNetUNetSpec(BaseModel):
    """Architecture of :class:`ResNetUNetGenerator` (saved in ``generator.json`` with ``kind``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["resnet18_unet"] = "resnet18_unet"
    in_channels: int = Field(1, ge=1, description="input channels (1: L)")
    out_channels: int = Field(2, ge=1, description="output channels (2: ab)")
    decoder_channels: tuple[int, int, int, int, int] = Field(
        (256, 128, 64, 32, 16), description="channels of the decoder blocks at H/16, H/8, H/4, H/2 and H"
    )

    @field_validator("decoder_channels")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if min(value) < 1:
            raise ValueError(f"decoder channels must be positive, got {value}")
        return value

    @property
    def num_downs(self) -> int:
        """Downsamplings of the encoder (5): the input side must be divisible by ``2**num_downs`` = 32."""
        return 5

    def build(self) -> ResNetUNetGenerator:
        """A freshly initialised generator (encoder with torchvision's initialisation, not pretrained)."""
        return ResNetUNetGenerator(self.in_channels, self.out_channels, self.decoder_channels)


class UpBlock(nn.Module):
    """Bilinear x2 upsampling, concatenation with a skip, then (conv 3x3 + BatchNorm + ReLU) twice.

    Shapes:
        features (B, C_in, h, w), skip (B, C_skip, 2h, 2w) -> (B, C_out, 2h, 2w).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """(B, C_in, h, w), (B, C_skip, 2h, 2w) -> (B, C_out, 2h, 2w)."""
        upsampled = F.interpolate(features, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([upsampled, skip], dim=1))


class ResNetUNetGenerator(nn.Module):
    """ResNet-18 encoder + U-Net decoder: L -> ab.

    ``encoder`` is a :class:`~archive_colorizer.models.resnet.ResNet18Encoder` whose state dict
    keys are torchvision's (prefixed ``encoder.`` here). Its input is the L channel rescaled as
    ImageNet-normalised gray: ``(L/100 - GRAY_MEAN) / GRAY_STD`` (see
    :mod:`archive_colorizer.models.encoder_weights` for why this fits pretrained weights).

    Args:
        in_channels, out_channels, decoder_channels: see :class:`ResNetUNetSpec`.

    Shapes:
        input (B, in_channels, H, W) float in [-1, 1], H and W divisible by 32; output
        (B, out_channels, H, W) float in [-1, 1].
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 2, decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    ) -> None:
        super().__init__()
        self.encoder = ResNet18Encoder(in_channels)
        skips = (*STAGE_CHANNELS[3::-1], in_channels)  # 256 (H/16), 128, 64, 64 (H/2), the input (H)
        blocks, previous = [], STAGE_CHANNELS[-1]
        for skip, channels in zip(skips, decoder_channels, strict=True):
            blocks.append(UpBlock(previous, skip, channels))
            previous = channels
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(previous, out_channels, 1)
        for module in self.decoder.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.head.weight, 0.0, 0.02)  # starts near ab = 0 (gray), as pix2pix's init
        if self.head.bias is not None:  # always: the head is built with a bias
            nn.init.zeros_(self.head.bias)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        if l_norm.shape[-1] % 32 or l_norm.shape[-2] % 32:
            raise ValueError(f"input side must be divisible by 32 (ResNet-18 encoder), got {tuple(l_norm.shape[-2:])}")
        gray = ((l_norm + 1) / 2 - GRAY_MEAN) / GRAY_STD  # L/100 as ImageNet-normalised gray
        *skips, features = self.encoder(gray)  # stem (H/2) ... layer3 (H/16); layer4 (H/32)
        for block, skip in zip(self.decoder, [*skips[::-1], l_norm], strict=True):
            features = block(features, skip)  # H/16, H/8, H/4, H/2, H
        return torch.tanh(self.head(features))
