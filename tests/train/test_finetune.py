"""Fine-tuning from an exported generator (``--init-generator``): same weights, same loss, parent recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.errors import ConfigError
from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec
from archive_colorizer.models.artifact import load_generator, save_generator
from archive_colorizer.train import run as train
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.data import crop_square
from archive_colorizer.train.finetune import (
    FINE_TUNE_DEFAULTS,
    fine_tune_config,
    load_parent_generator,
    read_parent,
)
from archive_colorizer.train.optim import encoder_frozen, generator_spec_of
from archive_colorizer.train.step import build_pix2pix, gan_step, pretrain_step
from tests.train.conftest import make_shards

SIZE = 32
PARENT_SPEC = GeneratorSpec(ngf=8, num_downs=5)


def _batch(photos, names=("astronaut", "coffee", "chelsea", "rocket")) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, ab) of real photographs at 32 px: (4, 1, 32, 32) and (4, 2, 32, 32) in [-1, 1]."""
    rgb = np.stack([crop_square(Image.fromarray(photos[name]), SIZE, None) for name in names])
    return rgb_to_l_ab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255)


@pytest.fixture(scope="module")
def parent(photos, tmp_path_factory) -> str:
    """A tiny U-Net trained for 30 L1 steps on four photographs, exported as an artifact."""
    torch.manual_seed(0)
    generator = PARENT_SPEC.build()
    model = build_pix2pix(generator, DiscriminatorSpec(ndf=8, n_layers=1).build(), lr=2e-3)
    l_norm, ab = _batch(photos)
    for _ in range(30):
        pretrain_step(model, l_norm, ab)
    url = str(tmp_path_factory.mktemp("parent") / "generator")
    save_generator(generator, url, spec=PARENT_SPEC, working_size=SIZE, provenance={"data": "four photos"})
    return url


def _given(**values) -> TrainConfig:
    """A config as the command line builds it: only the options typed are set."""
    return TrainConfig.load(None, {"data": "shards", "run": "run", **values})


def test_the_artifact_gives_kind_sizes_and_fine_tuning_defaults(parent):
    artifact = load_generator(parent)
    tuned = fine_tune_config(_given(init_generator=parent), artifact)
    assert (tuned.generator, tuned.ngf, tuned.num_downs, tuned.image_size) == ("unet", 8, 5, SIZE)
    assert (tuned.lr, tuned.epochs) == (FINE_TUNE_DEFAULTS["lr"], FINE_TUNE_DEFAULTS["epochs"]) == (5e-5, 5)
    assert tuned.init_generator_sha256 == artifact.sha256
    assert "cpus_per_worker" not in tuned.model_fields_set  # still a default: train sizes it to the cluster
    given = fine_tune_config(_given(init_generator=parent, lr=1e-4, epochs=2, image_size=64, ngf=8), artifact)
    assert (given.lr, given.epochs, given.image_size, given.ngf) == (1e-4, 2, 64, 8)  # agreeing or free options kept


def test_a_mismatched_kind_or_size_is_refused_naming_both(parent):
    artifact = load_generator(parent)
    with pytest.raises(
        ConfigError,
        match=r"holds a unet generator.*--generator resnet18_unet \(the artifact's "
        r"generator is unet\)",
    ):
        fine_tune_config(_given(init_generator=parent, generator="resnet18_unet"), artifact)
    with pytest.raises(
        ConfigError,
        match=r"--ngf 16 \(the artifact's ngf is 8\); --num-downs 6 \(the artifact's "
        r"num_downs is 5\)",
    ):
        fine_tune_config(_given(init_generator=parent, ngf=16, num_downs=6), artifact)
    with pytest.raises(ConfigError, match="--init-generator-sha256 asks for 0000"):
        fine_tune_config(_given(init_generator=parent, init_generator_sha256="0" * 64), artifact)


def test_loss_at_step_zero_equals_the_parents_on_the_same_batch(parent, photos):
    artifact = load_generator(parent)
    config = fine_tune_config(_given(init_generator=parent), artifact)
    child = generator_spec_of(config).build()  # a fresh initialisation, then the parent's weights
    assert load_parent_generator(child, config) == artifact.sha256
    l_norm, ab = _batch(photos)

    def first_step(generator: torch.nn.Module, step) -> float:
        generator.train()  # as in training: batch statistics, dropout (seeded alike below)
        model = build_pix2pix(generator, DiscriminatorSpec(ndf=8, n_layers=1).build(), lr=config.lr)
        torch.manual_seed(1)
        return step(model, l_norm, ab).loss_G_L1

    parent_loss = first_step(artifact.generator, pretrain_step)
    assert first_step(child, pretrain_step) == parent_loss
    fresh = load_generator(parent)  # the parent again, and a GAN step (the discriminator starts fresh)
    assert first_step(fresh.generator, gan_step) == first_step(load_generator(parent).generator, gan_step)
    torch.manual_seed(0)
    untuned = first_step(PARENT_SPEC.build(), pretrain_step)  # same architecture, not the parent's weights
    assert parent_loss < 0.8 * untuned, (parent_loss, untuned)


def test_the_parent_is_read_from_s3_and_a_replaced_parent_is_refused_by_the_workers(parent, s3_bucket):
    bucket, options = s3_bucket
    artifact = load_generator(parent)
    url = f"{bucket}/models/parent"
    save_generator(artifact.generator, url, spec=PARENT_SPEC, working_size=SIZE, storage_options=options)
    config = read_parent(
        TrainConfig.load(None, {"data": "shards", "run": "run", "init_generator": url, "storage_options": options})
    )
    assert config.init_generator_sha256 == artifact.sha256 and config.ngf == 8  # the same weights, via S3
    child = PARENT_SPEC.build()
    assert load_parent_generator(child, config) == artifact.sha256
    other = PARENT_SPEC.build()  # someone replaces the parent after the driver pinned its sha256
    save_generator(other, url, spec=PARENT_SPEC, working_size=SIZE, storage_options=options)
    with pytest.raises(ConfigError, match=f"now has sha256 .* the run started with {artifact.sha256}"):
        load_parent_generator(PARENT_SPEC.build(), config)


def test_freeze_encoder_freezes_every_epoch_of_a_resnet18_unet_only():
    config = _given(generator="resnet18_unet", freeze_encoder=True, epochs=3)
    assert [encoder_frozen(config, epoch) for epoch in range(3)] == [True, True, True]
    assert not encoder_frozen(_given(generator="resnet18_unet", epochs=3), 0)
    with pytest.raises(ConfigError, match="freeze_encoder apply to generator resnet18_unet only"):
        _given(freeze_encoder=True)


def test_a_tiny_fine_tuning_run_on_degraded_photos_records_its_parent_and_data(ray_local, parent, photos, tmp_path):
    shards = make_shards(
        tmp_path / "shards", {n: photos[n] for n in ("astronaut", "coffee", "rocket")}, val=("rocket",), repeat=2
    )
    run = tmp_path / "run"
    result = train(
        TrainConfig.load(
            None,
            {
                "data": shards,
                "run": str(run),
                "init_generator": parent,
                "workers": 0,
                "epochs": 1,
                "batch_size": 2,
                "ndf": 8,
                "n_layers": 1,
                "max_val_images": 1,
                "degrade": "old-photo",
            },
        )
    )
    child = load_generator(result.generator)
    provenance = child.metadata["provenance"]
    assert provenance["parent"] == {"url": parent, "sha256": load_generator(parent).sha256}
    assert provenance["data"] == shards and provenance["epochs_trained"] == 1
    assert provenance["config"]["lr"] == 5e-5 and provenance["config"]["init_generator"] == parent
    assert provenance["config"]["degrade"] == "old-photo"
    assert child.spec == PARENT_SPEC and child.working_size == SIZE and child.sha256 != provenance["parent"]["sha256"]
    saved = json.loads((Path(result.generator) / "generator.json").read_text())
    assert saved["provenance"]["parent"]["sha256"] == load_generator(parent).sha256
