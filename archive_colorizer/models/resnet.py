"""ResNet-18 (He et al. 2016) as an encoder, with torchvision's module layout and parameter names.

Reference: torchvision ``torchvision.models.resnet.resnet18`` (``BasicBlock``, layers [2, 2, 2, 2]).
Every module here has the name and shape of torchvision's, so ``conv1.weight``, ``bn1.running_mean``,
``layer2.0.downsample.0.weight`` ... of an ImageNet state dict load without any renaming. The
classifier (``avgpool``, ``fc``) is left out: a colorizer uses the feature maps of each stage.
With 3 input channels the encoder has 11,176,512 parameters (torchvision's 11,689,512 less the
513,000 of ``fc``); with 1 (the L channel) 11,170,240.

torchvision is not a dependency: it has no CPU wheel on this project's package index, and the
network is this one file.
"""

from __future__ import annotations

import torch
from torch import nn

STAGE_CHANNELS = (64, 64, 128, 256, 512)
"""Channels of the five feature maps :meth:`ResNet18Encoder.forward` returns (stride 2, 4, 8, 16, 32)."""


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity (or 1x1 projection) shortcut.

    ``downsample`` is ``Sequential(conv 1x1/stride, BatchNorm)`` when the block changes the
    channels or the stride, as in torchvision, so its parameters are ``downsample.0.weight`` and
    ``downsample.1.*``.

    Shapes:
        input (B, in_channels, H, W); output (B, channels, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C, H / stride, W / stride)."""
        shortcut = features if self.downsample is None else self.downsample(features)
        out = self.relu(self.bn1(self.conv1(features)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet18Encoder(nn.Module):
    """ResNet-18 without its classifier, returning the feature map of every stage.

    Args:
        in_channels: channels of the input image (1 for L; torchvision's weights have 3, see
            :func:`archive_colorizer.models.encoder_weights.load_encoder_weights`).

    Shapes:
        input (B, in_channels, H, W) with H and W divisible by 32; output five tensors, of
        :data:`STAGE_CHANNELS` channels at H/2 (after conv1), H/4 (layer1), H/8 (layer2),
        H/16 (layer3) and H/32 (layer4).
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        # torchvision's initialisation: Kaiming normal (fan_out) convolutions, BatchNorm 1 and 0.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """(B, in_channels, H, W) -> [(B, 64, H/2), (B, 64, H/4), (B, 128, H/8), (B, 256, H/16), (B, 512, H/32)]."""
        stem = self.relu(self.bn1(self.conv1(image)))  # (B, 64, H/2, W/2)
        stage1 = self.layer1(self.maxpool(stem))  # (B, 64, H/4, W/4)
        stage2 = self.layer2(stage1)  # (B, 128, H/8, W/8)
        stage3 = self.layer3(stage2)  # (B, 256, H/16, W/16)
        stage4 = self.layer4(stage3)  # (B, 512, H/32, W/32)
        return [stem, stage1, stage2, stage3, stage4]
