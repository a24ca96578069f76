"""The pretrained-encoder recipe of resnet18_unet: param groups, freezing, and both kinds end to end.

End to end, each generator kind trains a few steps in this process (``workers=0``), is exported,
colorizes a small gray archive with the colorize job and is scored by the evaluate job, with no
flag telling those jobs which kind it is.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.colorize import run as colorize
from archive_colorizer.colorize.config import ColorizeConfig
from archive_colorizer.errors import ConfigError
from archive_colorizer.evaluate import run as evaluate
from archive_colorizer.evaluate.config import EvaluateConfig
from archive_colorizer.models import DiscriminatorSpec, ResNetUNetGenerator, ResNetUNetSpec, UNetGenerator
from archive_colorizer.models.artifact import load_generator
from archive_colorizer.train import run as train
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.optim import set_generator_lr, use_encoder_recipe
from archive_colorizer.train.step import build_pix2pix, pretrain_step
from tests.test_resnet_unet import torchvision_like_weights
from tests.train.conftest import make_shards

SMALL_DECODER = ResNetUNetSpec(decoder_channels=(16, 16, 8, 8, 8))


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {name for name, parameter in module.named_parameters() if not torch.equal(before[name], parameter)}


def test_frozen_encoder_stays_put_while_the_decoder_learns_then_learns_at_its_scaled_rate(photos):
    torch.manual_seed(0)
    config = TrainConfig(data="-", run="-", generator="resnet18_unet", image_size=32, lr=1e-3, encoder_lr_scale=0.1)
    model = build_pix2pix(SMALL_DECODER.build(), DiscriminatorSpec(ndf=8, n_layers=2).build(), lr=config.lr)
    use_encoder_recipe(model, config)
    groups = {group["name"]: group for group in model.optimizer_g.param_groups}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4) and groups["decoder"]["lr"] == 1e-3
    generator = model.generator
    assert len(groups["encoder"]["params"]) == len(list(generator.encoder.parameters()))
    assert len(groups["encoder"]["params"]) + len(groups["decoder"]["params"]) == len(list(generator.parameters()))

    image = np.asarray(Image.fromarray(photos["coffee"]).resize((64, 64)), dtype=np.float32) / 255
    l_norm, ab = rgb_to_l_ab(torch.from_numpy(image).permute(2, 0, 1)[None])  # (1, 1, 64, 64), (1, 2, 64, 64)
    set_generator_lr(model.optimizer_g, config.lr, encoder_lr_scale=0.1, frozen=True)
    assert groups["encoder"]["lr"] == 0.0
    encoder_before, decoder_before = _snapshot(generator.encoder), _snapshot(generator.decoder)
    for _ in range(3):
        pretrain_step(model, l_norm, ab)
    assert _changed(encoder_before, generator.encoder) == set()
    assert _changed(decoder_before, generator.decoder) == set(decoder_before)
    set_generator_lr(model.optimizer_g, config.lr, encoder_lr_scale=0.1, frozen=False)
    assert groups["encoder"]["lr"] == pytest.approx(1e-4)
    pretrain_step(model, l_norm, ab)
    assert _changed(encoder_before, generator.encoder) == set(encoder_before)


def test_encoder_options_need_the_resnet_generator():
    with pytest.raises(ValueError, match="encoder_weights apply to generator resnet18_unet only"):
        TrainConfig(data="-", run="-", encoder_weights="w.safetensors")
    with pytest.raises(ValueError, match="divisible by 32 for generator resnet18_unet"):
        TrainConfig(data="-", run="-", generator="resnet18_unet", image_size=48, num_downs=4)
    # num_downs is the U-Net's: a resnet18_unet run at 96 px is fine whatever it says.
    assert TrainConfig(data="-", run="-", generator="resnet18_unet", image_size=96).image_size == 96


@pytest.fixture(scope="module")
def shards(ray_local, tmp_path_factory, photos) -> str:
    """4 training photos (x2), 2 validation photos, at 40 px."""
    return make_shards(tmp_path_factory.mktemp("shards"), photos, val=("rocket", "motorcycle"), repeat=2)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    weights = torchvision_like_weights(seed=5)
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    safetensors.torch.save_file(weights, str(path))
    return str(path), weights, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["unet", "resnet18_unet"])
def test_each_kind_trains_exports_colorizes_and_evaluates_without_a_kind_flag(
    kind, shards, weights_file, photos, tmp_path
):
    path, weights, digest = weights_file
    recipe = (
        {"encoder_weights": path, "encoder_weights_sha256": digest, "freeze_encoder_epochs": 2, "encoder_lr_scale": 0.1}
        if kind == "resnet18_unet"
        else {"ngf": 8, "num_downs": 5}
    )
    config = TrainConfig(
        data=shards,
        run=str(tmp_path / "run"),
        workers=0,
        generator=kind,
        epochs=2,
        pretrain_epochs=1,
        max_steps_per_epoch=2,
        image_size=32,
        ndf=8,
        n_layers=2,
        batch_size=2,
        **recipe,
    )
    result = train(config)
    assert result.global_step == 4
    artifact = load_generator(result.generator)
    assert artifact.metadata["kind"] == kind and artifact.spec.kind == kind
    assert isinstance(artifact.generator, ResNetUNetGenerator if kind == "resnet18_unet" else UNetGenerator)
    if kind == "resnet18_unet":
        # Frozen for both epochs: every encoder weight is the file's (conv1 summed over RGB).
        encoder = artifact.generator.encoder
        assert torch.equal(encoder.conv1.weight, weights["conv1.weight"].sum(dim=1, keepdim=True))
        for name, parameter in encoder.named_parameters():
            if name != "conv1.weight":
                assert torch.equal(parameter, weights[name]), name
        assert artifact.metadata["provenance"]["config"]["encoder_weights"] == path

    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("rocket", "motorcycle"):
        Image.fromarray(photos[name]).convert("L").resize((64, 48)).save(archive / f"{name}.png")
    colorized = colorize(
        ColorizeConfig(
            input=str(archive), output=str(tmp_path / "out"), model=result.generator, progress=False, review_samples=0
        )
    )
    assert colorized.exit_code == 0 and colorized.counts["colorized"] == 2, colorized.counts
    for name in ("rocket", "motorcycle"):
        output = Image.open(tmp_path / "out" / f"{name}.png")
        gray = np.asarray(Image.open(archive / f"{name}.png"), dtype=int)
        assert output.mode == "RGB" and output.size == (64, 48)
        assert np.abs(np.asarray(output.convert("L"), dtype=int) - gray).max() <= 1

    held_out = tmp_path / "held-out"
    held_out.mkdir()
    for name in ("rocket", "motorcycle"):
        Image.fromarray(photos[name]).save(held_out / f"{name}.png")
    scored = evaluate(
        EvaluateConfig(model=result.generator, data=str(held_out), out=str(tmp_path / "eval"), size=64, sheet_images=0)
    )
    assert scored.images == 2 and scored.evaluation["model"]["kind"] == kind
    assert scored.mean["gray"]["colorfulness"] == 0.0
    assert np.isfinite(scored.mean["model"]["psnr"]) and np.isfinite(scored.mean["model"]["ciede2000"])


def test_bad_encoder_weights_fail_in_the_driver_naming_the_keys(shards, tmp_path, weights_file):
    weights = {k: v for k, v in weights_file[1].items() if not k.startswith("layer4.")}
    path = tmp_path / "partial.safetensors"
    safetensors.torch.save_file(weights, str(path))
    config = TrainConfig(
        data=shards,
        run=str(tmp_path / "run"),
        workers=0,
        generator="resnet18_unet",
        image_size=32,
        encoder_weights=str(path),
    )
    with pytest.raises(ConfigError, match="missing: layer4.0.bn1.bias"):
        train(config)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_two_ddp_workers_keep_a_frozen_encoder_and_stay_in_sync(shards, weights_file, tmp_path):
    """Freezing by a zero learning rate leaves DDP's reducer a gradient for every parameter."""
    import json

    path, weights, _ = weights_file
    config = TrainConfig(
        data=shards,
        run=str(tmp_path / "run"),
        workers=2,
        cpus_per_worker=0.5,
        generator="resnet18_unet",
        encoder_weights=path,
        freeze_encoder_epochs=2,
        epochs=2,
        pretrain_epochs=1,
        max_steps_per_epoch=1,
        image_size=32,
        ndf=8,
        n_layers=2,
        batch_size=2,
    )
    result = train(config)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["phase"] for row in rows] == ["pretrain", "gan"]
    for row in rows:
        assert len(set(row["generator_param_sha256"])) == 1, row["generator_param_sha256"]  # ranks in sync
    encoder = load_generator(result.generator).generator.encoder
    assert torch.equal(encoder.layer3[0].downsample[0].weight, weights["layer3.0.downsample.0.weight"])
    assert torch.equal(encoder.conv1.weight, weights["conv1.weight"].sum(dim=1, keepdim=True))
