"""Networks of pix2pix colorization: U-Net and ResNet-18 U-Net generators, PatchGAN discriminator, losses, artifact."""

from archive_colorizer.models.discriminator import DiscriminatorSpec, PatchDiscriminator
from archive_colorizer.models.generator import GeneratorSpec, UNetGenerator, init_weights
from archive_colorizer.models.kinds import GENERATOR_KINDS, AnyGeneratorSpec, GeneratorKind, generator_spec
from archive_colorizer.models.losses import GANLoss, l1_loss
from archive_colorizer.models.resnet_unet import ResNetUNetGenerator, ResNetUNetSpec

__all__ = [
    "GENERATOR_KINDS",
    "AnyGeneratorSpec",
    "DiscriminatorSpec",
    "GANLoss",
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
