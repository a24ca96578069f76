"""The generator of a training run and the pretrained-encoder recipe (fastai's colorization recipe).

Recipe for ``--generator resnet18_unet`` (fastai's ``unet_learner`` colorization, Howard and
Gugger 2020; DeOldify's "NoGAN" schedule): start the encoder from ImageNet weights
(``--encoder-weights``), train the decoder alone first (``--freeze-encoder-epochs``), train
the encoder with a lower learning rate than the decoder (``--encoder-lr-scale``, fastai's
discriminative learning rates), and use L1 alone before the GAN epochs (``--pretrain-epochs``).

The generator's Adam then has two param groups, ``decoder`` (everything but the encoder, at
``lr``) and ``encoder`` (at ``lr * encoder_lr_scale``, or 0 while frozen). Freezing sets the
encoder's learning rate to 0 rather than ``requires_grad`` off: DDP's reducer expects a
gradient for every parameter it was built with, at every step. Its BatchNorm statistics still
adapt while frozen (as fastai's ``freeze`` with ``train_bn``). The U-Net keeps one group.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from archive_colorizer.models import AnyGeneratorSpec, GeneratorSpec, ResNetUNetSpec
from archive_colorizer.models.encoder_weights import load_encoder_weights, read_encoder_weights
from archive_colorizer.models.kinds import encoder_of
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.step import Pix2Pix, unwrap

logger = logging.getLogger(__name__)

ENCODER_GROUP = "encoder"
DECODER_GROUP = "decoder"
ADAM_BETAS = (0.5, 0.999)
"""pix2pix's Adam betas, as in :func:`archive_colorizer.train.step.build_pix2pix`."""


def generator_spec_of(config: TrainConfig) -> AnyGeneratorSpec:
    """The generator architecture a training config asks for (``--generator``)."""
    if config.generator == "resnet18_unet":
        return ResNetUNetSpec()
    return GeneratorSpec(ngf=config.ngf, num_downs=config.num_downs)


def load_pretrained_encoder(generator: nn.Module, config: TrainConfig) -> list[str]:
    """Copy ``--encoder-weights`` into the generator's encoder; nothing without the option.

    Returns:
        The state dict keys ignored (the classifier ``fc.*``).

    Raises:
        ConfigError: unreadable, pickled, mismatched (sha256, names, shapes) weights; see
            :mod:`archive_colorizer.models.encoder_weights`.
    """
    encoder = encoder_of(generator)
    if config.encoder_weights is None or encoder is None:
        return []
    weights = read_encoder_weights(config.encoder_weights, config.encoder_weights_sha256, config.storage_options)
    ignored = load_encoder_weights(encoder, weights)
    logger.info("encoder weights from %s (ignored: %s)", config.encoder_weights, ", ".join(ignored) or "none")
    return ignored


def check_encoder_weights(config: TrainConfig) -> None:
    """In the driver, before any worker starts: ``--encoder-weights`` reads and fits the encoder.

    Raises:
        ConfigError: as :func:`load_pretrained_encoder`.
    """
    if config.encoder_weights is not None and config.generator == "resnet18_unet":
        load_pretrained_encoder(generator_spec_of(config).build(), config)


def generator_param_groups(generator: nn.Module, encoder_lr_scale: float) -> list[dict]:
    """Adam param groups: ``decoder`` (scale 1) and ``encoder`` (``encoder_lr_scale``).

    Each group carries ``name`` and ``lr_scale`` (plain JSON values, saved in checkpoints).

    Raises:
        ValueError: the generator has no pretrainable encoder (the U-Net).
    """
    network = unwrap(generator)
    encoder = encoder_of(network)
    if encoder is None:
        raise ValueError(f"{type(network).__name__} has no encoder to give its own learning rate")
    encoder_ids = {id(parameter) for parameter in encoder.parameters()}
    return [
        {
            "params": [p for p in network.parameters() if id(p) not in encoder_ids],
            "name": DECODER_GROUP,
            "lr_scale": 1.0,
        },
        {"params": list(encoder.parameters()), "name": ENCODER_GROUP, "lr_scale": float(encoder_lr_scale)},
    ]


def use_encoder_recipe(model: Pix2Pix, config: TrainConfig) -> None:
    """Give a ``resnet18_unet`` generator its two param groups (a U-Net is left as it is)."""
    if encoder_of(unwrap(model.generator)) is None:
        return
    groups = generator_param_groups(model.generator, config.encoder_lr_scale)
    model.optimizer_g = torch.optim.Adam(groups, lr=config.lr, betas=ADAM_BETAS)
    set_generator_lr(model.optimizer_g, config.lr, encoder_lr_scale=config.encoder_lr_scale, frozen=False)


def set_generator_lr(optimizer: torch.optim.Optimizer, lr: float, *, encoder_lr_scale: float, frozen: bool) -> None:
    """Set each group's learning rate: ``lr`` (decoder), ``lr * encoder_lr_scale`` or 0 while frozen (encoder).

    Called at the start of every epoch, so a resumed run takes the current command's ``lr``
    and ``encoder_lr_scale`` (the checkpoint's param groups carry the old ones). A U-Net's
    single group gets ``lr``.
    """
    for group in optimizer.param_groups:
        if group.get("name") == ENCODER_GROUP:
            group["lr_scale"] = float(encoder_lr_scale)
            group["lr"] = 0.0 if frozen else lr * group["lr_scale"]
        else:
            group["lr"] = lr * float(group.get("lr_scale", 1.0))


def encoder_frozen(config: TrainConfig, epoch: int) -> bool:
    """Whether the encoder is frozen in ``epoch`` (0-based): every epoch with ``freeze_encoder``, else the first
    ``freeze_encoder_epochs``."""
    return config.freeze_encoder or epoch < config.freeze_encoder_epochs
