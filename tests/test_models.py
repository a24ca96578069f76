"""pix2pix networks: reference parameter counts, shapes, ranges, init, losses, learning."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer import color
from archive_colorizer.models import DiscriminatorSpec, GANLoss, GeneratorSpec, l1_loss


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_default_generator_is_pix2pix_unet_256():
    assert _count(GeneratorSpec().build()) == 54_409_858
    # 3 -> 3 channels is the figure pix2pix itself prints for unet_256.
    assert _count(GeneratorSpec(in_channels=3, out_channels=3).build()) == 54_413_955


def test_default_discriminator_is_the_70x70_patchgan():
    assert _count(DiscriminatorSpec().build()) == 2_765_633


def test_unet_256_sees_the_whole_image_and_the_patchgan_70x70_pixels():
    """The two receptive fields pix2pix is built on, measured by gradients: U-Net 256 (8 downs to a
    1x1 bottleneck) links every input pixel to every output pixel; one PatchGAN logit sees 70x70."""
    torch.manual_seed(0)
    generator = GeneratorSpec().build().eval()
    gray = (torch.rand(1, 1, 256, 256) * 2 - 1).requires_grad_(True)
    ab = generator(gray)  # (1, 2, 256, 256)
    assert ab.shape == (1, 2, 256, 256) and ab.min() >= -1.0 and ab.max() <= 1.0
    ab[0, :, 0, 0].sum().backward()  # the top-left output pixel
    assert bool((gray.grad[0, 0] != 0).all())  # ... depends on every input pixel, the far corner too
    discriminator = DiscriminatorSpec().build().eval()
    pair = torch.randn(1, 3, 256, 256, requires_grad=True)
    logits = discriminator(pair)
    assert logits.shape == (1, 1, 30, 30)
    logits[0, 0, 15, 15].backward()
    seen = pair.grad.abs().sum(dim=(0, 1)) > 0  # (256, 256)
    rows, cols = seen.any(dim=1).nonzero().flatten(), seen.any(dim=0).nonzero().flatten()
    assert (rows.min().item(), rows.max().item()) == (97, 166)  # 70 rows, from 8 * 15 - 23
    assert (cols.min().item(), cols.max().item()) == (97, 166)


def test_generator_has_dropout_in_the_three_innermost_decoder_blocks():
    generator = GeneratorSpec().build()
    dropouts = [m.p for m in generator.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.5, 0.5, 0.5]
    assert not any(isinstance(m, torch.nn.Dropout) for m in GeneratorSpec(dropout=0.0).build().modules())


def test_weights_are_initialised_from_normal_0_002():
    generator = GeneratorSpec(ngf=16, num_downs=6).build()
    weights = torch.cat(
        [m.weight.flatten() for m in generator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    )
    assert abs(weights.mean().item()) < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)


def test_input_side_must_match_num_downs():
    with pytest.raises(ValueError, match="divisible"):
        GeneratorSpec(ngf=8, num_downs=5).build()(torch.zeros(1, 1, 48, 48))


def test_instance_norm_colours_each_image_on_its_own_and_batch_norm_does_not():
    """In training mode an instance-normalised generator's output for one photo does not depend on
    the other photos of the batch; with BatchNorm (the reference) it does."""
    torch.manual_seed(0)
    batch = torch.rand(3, 1, 32, 32) * 2 - 1
    instance = GeneratorSpec(ngf=8, num_downs=5, norm="instance", dropout=0.0).build().train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in instance.modules())
    alone, together = instance(batch[:1]), instance(batch)[:1]
    assert torch.allclose(alone, together, atol=1e-5)
    batch_norm = GeneratorSpec(ngf=8, num_downs=4, dropout=0.0).build().train()  # 2x2 bottleneck: BatchNorm works
    assert not torch.allclose(batch_norm(batch[:1]), batch_norm(batch)[:1], atol=1e-3)


def test_gan_losses_match_their_definitions():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]]]])
    vanilla, lsgan = GANLoss("vanilla"), GANLoss("lsgan")
    assert vanilla(logits, True).item() == pytest.approx(torch.nn.functional.softplus(-logits).mean().item())
    assert vanilla(logits, False).item() == pytest.approx(torch.nn.functional.softplus(logits).mean().item())
    assert lsgan(logits, True).item() == pytest.approx(((logits - 1) ** 2).mean().item())
    assert lsgan(logits, False).item() == pytest.approx((logits**2).mean().item())
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")


def test_tiny_generator_learns_a_real_photo_with_l1(photos):
    """ngf=8, num_downs=5 at 32x32: 50 L1 steps halve the loss on one real photo."""
    torch.manual_seed(0)
    small = Image.fromarray(photos["coffee"]).resize((32, 32), Image.Resampling.LANCZOS)
    rgb = torch.from_numpy(np.asarray(small).copy()).permute(2, 0, 1)[None].float() / 255
    l_norm, ab_norm = color.rgb_to_l_ab(rgb)
    generator = GeneratorSpec(ngf=8, num_downs=5).build()
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(50):
        loss = l1_loss(generator(l_norm), ab_norm)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"L1 went {losses[0]:.4f} -> {losses[-1]:.4f}"


def test_the_generator_kinds_are_written_once_and_every_part_covers_them():
    from archive_colorizer.models import catalog, kinds
    from archive_colorizer.train.config import TrainConfig

    assert catalog.GENERATOR_KINDS == ("unet", "resnet18_unet")
    assert set(kinds._SPECS) == set(catalog.ARCHITECTURES) == set(catalog.GENERATOR_KINDS)
    assert typing.get_args(TrainConfig.model_fields["generator"].annotation) == catalog.GENERATOR_KINDS


@pytest.mark.parametrize(
    ("side", "num_downs", "kind", "nearest"),
    [(100, 5, "resnet18_unet", "96 or 128"), (20, 5, "unet", "32"), (300, 8, "unet", "256 or 512")],
)
def test_one_side_check_names_the_setting_and_the_nearest_sides_that_fit(side, num_downs, kind, nearest):
    from archive_colorizer.models.catalog import check_side

    check_side(side - side % 2**num_downs or 2**num_downs, num_downs, kind)  # a fitting side passes
    with pytest.raises(ValueError, match=rf"image_size {side} must be divisible by 2\*\*num_downs = ") as info:
        check_side(side, num_downs, kind, "image_size")
    assert str(info.value).endswith(f"for generator {kind} near it: {nearest}")
