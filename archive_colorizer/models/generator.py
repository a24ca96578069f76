"""U-Net generator of pix2pix (Isola et al. 2017), predicting ab from L.

Reference: junyanz/pytorch-CycleGAN-and-pix2pix, ``UnetGenerator`` / ``UnetSkipConnectionBlock``
(``--netG unet_256``). The recursion of the reference is written here as an explicit encoder
and decoder with skip connections; layer for layer the network is the same, so the default
(8 downsamplings, ngf 64, BatchNorm, 1 -> 2 channels) has exactly 54,409,858 parameters.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm (affine) or InstanceNorm (no affine, no running stats), as in pix2pix."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"unknown norm {kind!r}: expected 'batch' or 'instance'")


class GeneratorSpec(BaseModel):
    """Architecture hyperparameters of :class:`UNetGenerator` (saved in ``generator.json``).

    ``kind`` tells the generator kinds apart (:mod:`archive_colorizer.models.kinds`); a spec
    written before there was more than one kind has none and means this one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["unet"] = "unet"
    in_channels: int = Field(1, ge=1, description="input channels (1: L)")
    out_channels: int = Field(2, ge=1, description="output channels (2: ab)")
    num_downs: int = Field(8, ge=2, le=12, description="downsamplings; input side must be divisible by 2**num_downs")
    ngf: int = Field(64, ge=1, description="filters in the outermost encoder layer")
    norm: Literal["batch", "instance"] = Field("batch", description="normalization layer")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout in the decoder blocks next to the innermost")

    def build(self) -> UNetGenerator:
        """A freshly initialised generator with this architecture."""
        return UNetGenerator(**self.model_dump(exclude={"kind"}))


class UNetGenerator(nn.Module):
    """pix2pix U-Net: L -> ab.

    Encoder level ``i`` has ``ngf * min(2**i, 8)`` channels; every level halves the side with a
    4x4 stride-2 convolution (LeakyReLU 0.2 before it, norm after it except at the outermost
    and innermost levels). The decoder mirrors it with transposed convolutions (ReLU before,
    norm after), concatenating the encoder's activation at every level, and dropout in the
    decoder blocks of the middle ``ngf*8 -> ngf*8`` levels (three of them in ``unet_256``).
    The last layer is a transposed convolution to ``out_channels`` followed by tanh.

    Args:
        in_channels, out_channels, num_downs, ngf, norm, dropout: see :class:`GeneratorSpec`.

    Shapes:
        input (B, in_channels, H, W) float in [-1, 1] with H and W divisible by
        ``2**num_downs``; output (B, out_channels, H, W) float in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be at least 2, got {num_downs}")
        self.num_downs = num_downs
        # Conv layers followed by BatchNorm carry no bias (the norm has one); InstanceNorm has none.
        use_bias = norm == "instance"
        channels = [ngf * min(2**level, 8) for level in range(num_downs)]
        innermost = num_downs - 1

        self.encoder = nn.ModuleList()
        for level in range(num_downs):
            source = in_channels if level == 0 else channels[level - 1]
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(source, channels[level], 4, 2, 1, bias=use_bias))
            if 0 < level < innermost:
                layers.append(norm_layer(norm, channels[level]))
            self.encoder.append(nn.Sequential(*layers))

        # decoder[level] maps level's features (plus the skip, except innermost) to level-1's size.
        self.decoder = nn.ModuleList()
        for level in range(num_downs):
            source = channels[level] if level == innermost else 2 * channels[level]
            if level == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(source, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [
                    nn.ReLU(True),
                    nn.ConvTranspose2d(source, channels[level - 1], 4, 2, 1, bias=use_bias),
                    norm_layer(norm, channels[level - 1]),
                ]
                if 4 <= level < innermost and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        side = 2**self.num_downs
        if l_norm.shape[-1] % side or l_norm.shape[-2] % side:
            raise ValueError(f"input side must be divisible by 2**num_downs = {side}, got {tuple(l_norm.shape[-2:])}")
        skips = []
        features = l_norm
        for block in self.encoder:
            features = block(features)
            skips.append(features)  # level i: (B, C_i, H / 2**(i+1), W / 2**(i+1))
        features = self.decoder[-1](skips[-1])
        for level in range(self.num_downs - 2, -1, -1):
            features = self.decoder[level](torch.cat([skips[level], features], dim=1))
        return features


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix ``init_type='normal'``: conv weights ~ N(0, gain), biases 0, norm weights ~ N(1, gain)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)
