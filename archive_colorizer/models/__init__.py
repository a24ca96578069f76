"""Networks of pix2pix colorization: U-Net and ResNet-18 U-Net generators, PatchGAN discriminator, losses, artifact.

The names below are re-exported lazily: importing a torch-free module of the package
(:mod:`.catalog`, read by the command line) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive_colorizer.lazy import reexports

if TYPE_CHECKING:
    from archive_colorizer.models.discriminator import DiscriminatorSpec, PatchDiscriminator
    from archive_colorizer.models.generator import GeneratorSpec, UNetGenerator, init_weights
    from archive_colorizer.models.kinds import GENERATOR_KINDS, AnyGeneratorSpec, GeneratorKind, generator_spec
    from archive_colorizer.models.losses import GANLoss, l1_loss
    from archive_colorizer.models.resnet_unet import ResNetUNetGenerator, ResNetUNetSpec

_WHERE = {
    "DiscriminatorSpec": "discriminator",
    "PatchDiscriminator": "discriminator",
    "GeneratorSpec": "generator",
    "UNetGenerator": "generator",
    "init_weights": "generator",
    "GENERATOR_KINDS": "catalog",
    "GeneratorKind": "catalog",
    "AnyGeneratorSpec": "kinds",
    "generator_spec": "kinds",
    "GANLoss": "losses",
    "l1_loss": "losses",
    "ResNetUNetGenerator": "resnet_unet",
    "ResNetUNetSpec": "resnet_unet",
}
__all__ = [
    "AnyGeneratorSpec",
    "DiscriminatorSpec",
    "GANLoss",
    "GENERATOR_KINDS",
    "GeneratorKind",
    "GeneratorSpec",
    "PatchDiscriminator",
    "ResNetUNetGenerator",
    "ResNetUNetSpec",
    "UNetGenerator",
    "generator_spec",
    "init_weights",
    "l1_loss",
]
__getattr__ = reexports(__name__, _WHERE)
