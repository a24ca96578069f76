"""pix2pix steps on real photographs, without Ray: which network each step moves, and learning."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.images import resize_shorter_side
from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec
from archive_colorizer.train.data import crop_square
from archive_colorizer.train.step import build_pix2pix, discriminator_step, gan_step, generator_step, pretrain_step

NAMES = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks step faster on one thread than on two contended ones (shared 2-core machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(photos) -> list[Image.Image]:
    return [resize_shorter_side(Image.fromarray(photos[name]), 40) for name in NAMES]


def _batch(images, rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    rgb = (
        torch.from_numpy(np.stack([crop_square(image, 32, rng) for image in images])).permute(0, 3, 1, 2).float() / 255
    )
    return rgb_to_l_ab(rgb)  # (4, 1, 32, 32), (4, 2, 32, 32)


def _model(lr: float = 2e-4):
    torch.manual_seed(0)
    return build_pix2pix(GeneratorSpec(ngf=8, num_downs=5).build(), DiscriminatorSpec(ndf=8, n_layers=2).build(), lr=lr)


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_gan_step_updates_both_networks_and_reports_finite_losses(images):
    model = _model()
    l_norm, ab = _batch(images, None)
    generator_before, discriminator_before = _snapshot(model.generator), _snapshot(model.discriminator)
    losses = gan_step(model, l_norm, ab)
    assert _changed(generator_before, model.generator) and _changed(discriminator_before, model.discriminator)
    values = [losses.loss_G_GAN, losses.loss_G_L1, losses.loss_D_real, losses.loss_D_fake]
    assert all(np.isfinite(v) and v > 0 for v in values)
    # The generator's L1 is measured before its own update: the mean |ab| error of an untrained
    # network is about the mean |ab| of the photos (it predicts near-gray).
    assert losses.loss_G_L1 == pytest.approx(ab.abs().mean().item(), rel=0.5)
    assert all(p.requires_grad for p in model.discriminator.parameters()), "G step must unfreeze D again"


def test_pretrain_step_trains_the_generator_alone(images):
    model = _model()
    l_norm, ab = _batch(images, None)
    discriminator_before = _snapshot(model.discriminator)
    generator_before = _snapshot(model.generator)
    losses = pretrain_step(model, l_norm, ab)
    assert _changed(generator_before, model.generator)
    assert not _changed(discriminator_before, model.discriminator)
    assert losses.loss_G_GAN is None and losses.loss_D_real is None and losses.loss_G_L1 > 0


def test_discriminator_step_learns_to_tell_real_from_predicted_ab(images):
    """With the generator's prediction fixed, D steps alone drive the D loss down; G is untouched."""
    model = _model(lr=1e-3)
    l_norm, ab = _batch(images, None)
    with torch.no_grad():
        fake_ab = model.generator(l_norm)
    generator_before = _snapshot(model.generator)
    first = discriminator_step(model, l_norm, ab, fake_ab)
    for _ in range(15):
        last = discriminator_step(model, l_norm, ab, fake_ab)
    assert sum(last) < 0.5 * sum(first), (first, last)
    assert not _changed(generator_before, model.generator)


def test_a_tiny_generator_overfits_four_photos_below_half_the_gray_baseline(images):
    """150 GAN steps on jittered crops of 4 photos: L1(ab) on their centre crops < half of gray's."""
    model = _model()
    rng = np.random.default_rng(0)
    l_val, ab_val = _batch(images, None)
    gray_l1 = ab_val.abs().mean().item()  # the gray baseline predicts ab = 0
    for _ in range(150):
        gan_step(model, *_batch(images, rng))
    model.generator.eval()
    with torch.no_grad():
        l1 = (model.generator(l_val) - ab_val).abs().mean().item()
    assert l1 < 0.5 * gray_l1, (l1, gray_l1)


def test_gan_step_reads_its_four_losses_in_one_host_copy_with_the_same_values(images, monkeypatch):
    """One device sync per step instead of four ``.item()`` calls; the values and the updates are
    those of the separate D and G steps (which read each loss on its own)."""
    l_norm, ab = _batch(images, None)
    separate = _model()
    torch.manual_seed(5)
    with separate.autocast(l_norm.device):
        fake_ab = separate.generator(l_norm)
    loss_real, loss_fake = discriminator_step(separate, l_norm, ab, fake_ab)
    loss_gan, loss_l1 = generator_step(separate, l_norm, ab, fake_ab)

    reads = {"item": 0, "tolist": 0}
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def counted(name, method):
        def read(self, *args, **kwargs):
            # Reads by step.py only (Adam reads its own CPU step counters, which costs no sync).
            if sys._getframe(1).f_globals["__name__"] == "archive_colorizer.train.step":
                reads[name] += 1
            return method(self, *args, **kwargs)

        return read

    monkeypatch.setattr(torch.Tensor, "item", counted("item", item))
    monkeypatch.setattr(torch.Tensor, "tolist", counted("tolist", tolist))
    together = _model()
    torch.manual_seed(5)
    losses = gan_step(together, l_norm, ab)
    assert reads == {"item": 0, "tolist": 1}
    assert (losses.loss_D_real, losses.loss_D_fake, losses.loss_G_GAN, losses.loss_G_L1) == (
        loss_real,
        loss_fake,
        loss_gan,
        loss_l1,
    )
    for a, b in zip(separate.generator.parameters(), together.generator.parameters(), strict=True):
        assert torch.equal(a, b)
    reads.update(item=0, tolist=0)
    pretrain_step(together, l_norm, ab)
    assert reads == {"item": 0, "tolist": 1}


def test_cuda_workers_pin_batches_and_let_cudnn_pick_its_algorithms():
    from archive_colorizer.devices import use_device_settings

    try:
        assert use_device_settings(torch.device("cuda", 0)) is True
        assert torch.backends.cudnn.benchmark is True
        assert use_device_settings(torch.device("cpu")) is False
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = False
