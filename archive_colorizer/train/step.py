"""One optimisation step of pix2pix colorization, on tensors: no Ray, no files.

Reference: Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks", and junyanz/pytorch-CycleGAN-and-pix2pix ``Pix2PixModel.optimize_parameters``:
the generator predicts ab from L once; the discriminator is updated first on (L, real ab) and
(L, predicted ab, detached); then, with the discriminator frozen, the generator is updated
with ``GAN(D(L, predicted ab), real) + lambda_L1 * L1(predicted ab, real ab)``.

An optional L1-only phase (:func:`pretrain_step`) trains the generator alone before the GAN
phase, as the seed tutorial's recipe does; the discriminator is not touched in it.

The modules may be wrapped in ``DistributedDataParallel``: the discriminator step goes through
the wrapper (its gradients are averaged over ranks), the generator step calls the unwrapped
discriminator so that DDP does not wait for discriminator gradients that never come.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archive_colorizer.models.losses import GANLoss, l1_loss


@dataclass
class Pix2Pix:
    """The networks and optimisers one step needs.

    Attributes:
        generator: U-Net L -> ab, possibly DDP-wrapped; input (B, 1, H, W) in [-1, 1], output
            (B, 2, H, W) in [-1, 1].
        discriminator: PatchGAN on concat(L, ab) (B, 3, H, W), possibly DDP-wrapped.
        optimizer_g: Adam over the generator's parameters (pix2pix: lr 2e-4, betas (0.5, 0.999)).
        optimizer_d: Adam over the discriminator's parameters.
        gan_loss: :class:`GANLoss` (vanilla or LSGAN).
        lambda_l1: weight of the L1 term in the generator's objective (pix2pix: 100).
        autocast_dtype: ``torch.bfloat16`` or ``torch.float16`` to run the forward passes
            under autocast on CUDA; ``None`` for float32 (CPU). See :mod:`.precision`.
        scaler_g, scaler_d: ``torch.amp.GradScaler`` of each optimizer for fp16, else ``None``.
    """

    generator: nn.Module
    discriminator: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    gan_loss: GANLoss
    lambda_l1: float = 100.0
    autocast_dtype: torch.dtype | None = None
    scaler_g: torch.amp.GradScaler | None = None
    scaler_d: torch.amp.GradScaler | None = None

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bf16/fp16 autocast on CUDA when ``autocast_dtype`` is set, otherwise nothing."""
        if self.autocast_dtype is None or device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)


def backward_and_step(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> None:
    """``loss.backward()`` and ``optimizer.step()``, through ``scaler`` when there is one.

    With a GradScaler the loss is multiplied by the current scale before ``backward``, the
    gradients are unscaled in ``scaler.step`` (which skips the step when any is inf/NaN) and the
    scale is updated for the next step (``torch.amp`` recipe).
    """
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


@dataclass
class StepLosses:
    """Scalar float losses of one step (plain Python floats, not tensors).

    ``loss_G_L1`` is the mean absolute error in normalised ab units (ab/110), before the
    lambda_L1 weight, so it compares directly with the validation ``val_L1_ab``. The GAN and
    discriminator terms are ``None`` in an L1-only pretraining step.
    """

    loss_G_L1: float
    loss_G_GAN: float | None = None
    loss_D_real: float | None = None
    loss_D_fake: float | None = None


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def set_requires_grad(module: nn.Module, requires_grad: bool) -> None:
    """Freeze or unfreeze every parameter of ``module`` (pix2pix's ``set_requires_grad``)."""
    for parameter in module.parameters():
        parameter.requires_grad_(requires_grad)


def _to_floats(*losses: torch.Tensor) -> list[float]:
    """Scalar loss tensors as Python floats, in one device-to-host copy (one sync, not one per loss)."""
    return torch.stack([loss.detach().float() for loss in losses]).tolist()


def discriminator_step(
    model: Pix2Pix, l_norm: torch.Tensor, real_ab: torch.Tensor, fake_ab: torch.Tensor
) -> tuple[float, float]:
    """Update the discriminator on one batch: ``0.5 * (GAN(D(L, real), 1) + GAN(D(L, fake), 0))``.

    Args:
        l_norm: (B, 1, H, W) in [-1, 1].
        real_ab: (B, 2, H, W) ground-truth ab/110.
        fake_ab: (B, 2, H, W) the generator's prediction; detached here.

    Returns:
        ``(loss_D_real, loss_D_fake)`` as floats.
    """
    loss_real, loss_fake = _to_floats(*_discriminator_update(model, l_norm, real_ab, fake_ab))
    return loss_real, loss_fake


def _discriminator_update(
    model: Pix2Pix, l_norm: torch.Tensor, real_ab: torch.Tensor, fake_ab: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`discriminator_step` returning the losses as scalar tensors on the device (no sync)."""
    set_requires_grad(model.discriminator, True)
    model.optimizer_d.zero_grad(set_to_none=True)
    with model.autocast(l_norm.device):
        logits_real = model.discriminator(torch.cat([l_norm, real_ab], dim=1))  # (B, 1, H', W')
        logits_fake = model.discriminator(torch.cat([l_norm, fake_ab.detach()], dim=1))
    loss_real = model.gan_loss(logits_real, True)
    loss_fake = model.gan_loss(logits_fake, False)
    backward_and_step(0.5 * (loss_real + loss_fake), model.optimizer_d, model.scaler_d)
    return loss_real.detach(), loss_fake.detach()


def generator_step(
    model: Pix2Pix, l_norm: torch.Tensor, real_ab: torch.Tensor, fake_ab: torch.Tensor
) -> tuple[float, float]:
    """Update the generator: ``GAN(D(L, fake), 1) + lambda_L1 * L1(fake, real)``, D frozen.

    ``fake_ab`` must still carry the generator's graph (not detached).

    Returns:
        ``(loss_G_GAN, loss_G_L1)`` as floats; ``loss_G_L1`` is unweighted.
    """
    loss_gan, loss_l1 = _to_floats(*_generator_update(model, l_norm, real_ab, fake_ab))
    return loss_gan, loss_l1


def _generator_update(
    model: Pix2Pix, l_norm: torch.Tensor, real_ab: torch.Tensor, fake_ab: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`generator_step` returning the losses as scalar tensors on the device (no sync)."""
    discriminator = unwrap(model.discriminator)
    set_requires_grad(discriminator, False)
    model.optimizer_g.zero_grad(set_to_none=True)
    with model.autocast(l_norm.device):
        logits_fake = discriminator(torch.cat([l_norm, fake_ab], dim=1))
    loss_gan = model.gan_loss(logits_fake, True)
    loss_l1 = l1_loss(fake_ab, real_ab)
    backward_and_step(loss_gan + model.lambda_l1 * loss_l1, model.optimizer_g, model.scaler_g)
    set_requires_grad(discriminator, True)
    return loss_gan.detach(), loss_l1.detach()


def gan_step(model: Pix2Pix, l_norm: torch.Tensor, real_ab: torch.Tensor) -> StepLosses:
    """One pix2pix step on a batch: G forward, D step, then G step.

    Args:
        l_norm: (B, 1, H, W) float32 in [-1, 1] on the models' device.
        real_ab: (B, 2, H, W) float32 ab/110 in about [-1, 1].

    Returns:
        The four losses of the step, copied to the host together at the end (one sync per
        step on CUDA, where reading each loss with ``.item()`` would wait four times).
    """
    with model.autocast(l_norm.device):
        fake_ab = model.generator(l_norm)  # (B, 2, H, W) in [-1, 1]
    d_losses = _discriminator_update(model, l_norm, real_ab, fake_ab)
    g_losses = _generator_update(model, l_norm, real_ab, fake_ab)
    loss_real, loss_fake, loss_gan, loss_l1 = _to_floats(*d_losses, *g_losses)
    return StepLosses(loss_G_L1=loss_l1, loss_G_GAN=loss_gan, loss_D_real=loss_real, loss_D_fake=loss_fake)


def pretrain_step(model: Pix2Pix, l_norm: torch.Tensor, real_ab: torch.Tensor) -> StepLosses:
    """One L1-only generator step (pretraining phase); the discriminator is left alone.

    Args:
        l_norm: (B, 1, H, W) in [-1, 1].
        real_ab: (B, 2, H, W) ab/110.

    Returns:
        :class:`StepLosses` with only ``loss_G_L1`` set.
    """
    model.optimizer_g.zero_grad(set_to_none=True)
    with model.autocast(l_norm.device):
        fake_ab = model.generator(l_norm)
    loss_l1 = l1_loss(fake_ab, real_ab)
    backward_and_step(loss_l1, model.optimizer_g, model.scaler_g)
    (value,) = _to_floats(loss_l1)
    return StepLosses(loss_G_L1=value)


def build_pix2pix(
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    lr: float = 2e-4,
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla",
    lambda_l1: float = 100.0,
    autocast_dtype: torch.dtype | None = None,
    grad_scaler: Callable[[], torch.amp.GradScaler | None] | None = None,
) -> Pix2Pix:
    """Networks plus pix2pix's optimisers: Adam(lr, betas=(0.5, 0.999)) for each.

    ``grad_scaler`` makes one GradScaler per optimizer (fp16; :meth:`.Precision.grad_scaler`).

    Build the optimisers over the unwrapped modules' parameters before or after DDP wrapping
    (DDP shares the parameters), and pass the wrapped modules here if there are any.
    """
    return Pix2Pix(
        generator=generator,
        discriminator=discriminator,
        optimizer_g=torch.optim.Adam(unwrap(generator).parameters(), lr=lr, betas=(0.5, 0.999)),
        optimizer_d=torch.optim.Adam(unwrap(discriminator).parameters(), lr=lr, betas=(0.5, 0.999)),
        gan_loss=GANLoss(gan_mode),
        lambda_l1=lambda_l1,
        autocast_dtype=autocast_dtype,
        scaler_g=grad_scaler() if grad_scaler else None,
        scaler_d=grad_scaler() if grad_scaler else None,
    )
