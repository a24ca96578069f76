"""Networks of pix2pix colorization: U-Net generator, PatchGAN discriminator, losses, artifact."""

from archive_colorizer.models.discriminator import DiscriminatorSpec, PatchDiscriminator
from archive_colorizer.models.generator import GeneratorSpec, UNetGenerator, init_weights
from archive_colorizer.models.losses import GANLoss, l1_loss

__all__ = [
    "DiscriminatorSpec",
    "GANLoss",
    "GeneratorSpec",
    "PatchDiscriminator",
    "UNetGenerator",
    "init_weights",
    "l1_loss",
]
