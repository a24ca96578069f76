"""Decode, jitter and Lab conversion of shard rows (the Ray Data batch function), on real JPEGs."""

from __future__ import annotations

import io
import logging

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from archive_colorizer.color import l_ab_to_rgb, rgb_to_l_ab
from archive_colorizer.images import jpeg_bytes, resize_shorter_side
from archive_colorizer.train.data import crop_square, load_size, to_lab_batch

NAMES = ("astronaut", "coffee", "rocket")


@pytest.fixture(scope="module")
def shard_rows(photos) -> tuple[pa.Table, list[Image.Image]]:
    """Rows as the prepare job writes them (JPEG, shorter side 40) and the decoded images."""
    images = [resize_shorter_side(Image.fromarray(photos[n]), 40) for n in NAMES]
    encoded = [jpeg_bytes(image) for image in images]
    table = pa.table({"image": [{"bytes": data, "path": f"{n}.jpg"} for data, n in zip(encoded, NAMES, strict=True)]})
    decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in encoded]
    return table, decoded


def test_load_size_follows_pix2pix_286_for_256():
    assert (load_size(256), load_size(32), load_size(128)) == (286, 36, 143)


def test_validation_batch_is_the_centre_crop_in_lab(shard_rows):
    table, decoded = shard_rows
    batch = to_lab_batch(table, image_size=32, jitter=False)
    assert batch["l"].shape == (3, 1, 32, 32) and batch["ab"].shape == (3, 2, 32, 32)
    assert batch["l"].dtype == np.float32 and -1 <= batch["l"].min() and batch["l"].max() <= 1
    assert np.abs(batch["ab"]).max() <= 1.0
    rgb = l_ab_to_rgb(torch.from_numpy(batch["l"]), torch.from_numpy(batch["ab"]))  # back to RGB
    for index, image in enumerate(decoded):
        small = resize_shorter_side(image, 32)
        left, top = (small.width - 32) // 2, (small.height - 32) // 2
        expected = np.asarray(small.crop((left, top, left + 32, top + 32)), dtype=np.float32) / 255
        assert np.abs(rgb[index].permute(1, 2, 0).numpy() - expected).max() < 2 / 255
    again = to_lab_batch(table, image_size=32, jitter=False)
    assert np.array_equal(again["ab"], batch["ab"])


def test_training_jitter_is_a_random_window_of_the_286_resize_sometimes_flipped(shard_rows):
    _, decoded = shard_rows
    resized = np.asarray(resize_shorter_side(decoded[1], load_size(32)))  # (36, W, 3)
    rng = np.random.default_rng(1)
    crops = [crop_square(decoded[1], 32, rng) for _ in range(12)]
    windows = {
        (top, left, flip)
        for crop in crops
        for top in range(resized.shape[0] - 31)
        for left in range(resized.shape[1] - 31)
        for flip in (False, True)
        if np.array_equal((crop[:, ::-1] if flip else crop), resized[top : top + 32, left : left + 32])
    }
    assert len(windows) >= 6  # every crop is a window of the resized image, and they differ
    assert {flip for _, _, flip in windows} == {False, True}


def test_undecodable_rows_are_dropped_with_a_warning(shard_rows, caplog):
    table, _ = shard_rows
    broken = pa.concat_tables([table, pa.table({"image": [{"bytes": b"\xff\xd8 not a jpeg", "path": "broken.jpg"}]})])
    with caplog.at_level(logging.WARNING):
        batch = to_lab_batch(broken, image_size=32, jitter=True)
    assert batch["l"].shape[0] == 3
    assert "broken.jpg" in caplog.text


@pytest.mark.usefixtures("ray_local")
def test_the_training_split_streams_every_epoch_once_in_one_dataset(shard_rows, tmp_path):
    """split_dataset(epochs=3): one dataset holding each image once per epoch (the workers cut it
    into epochs by steps), read bytes materialized once; with jitter each epoch its own crops."""
    import hashlib

    import pyarrow.parquet as pq

    from archive_colorizer.train.data import Shards, split_dataset

    table, _ = shard_rows
    rows = table.append_column("split", pa.array(["train"] * 3)).append_column("source", pa.array(list(NAMES)))
    rows = rows.append_column("width", pa.array([40] * 3)).append_column("height", pa.array([40] * 3))
    (tmp_path / "shards").mkdir()
    pq.write_table(rows.slice(0, 2), tmp_path / "shards" / "shard-00000.parquet")
    pq.write_table(rows.slice(2), tmp_path / "shards" / "shard-00001.parquet")
    shards = Shards.find(str(tmp_path / "shards"))

    def digests(dataset) -> list[str]:
        return [hashlib.sha1(row["rgb"].tobytes()).hexdigest() for row in dataset.iter_rows()]

    once = digests(split_dataset(shards, "train", 32, jitter=False, materialize_bytes=True))
    thrice = digests(split_dataset(shards, "train", 32, jitter=False, materialize_bytes=True, epochs=3))
    assert len(set(once)) == 3 and sorted(thrice) == sorted(once * 3)  # every image once per epoch
    lazy = digests(split_dataset(shards, "train", 32, jitter=False, materialize_bytes=False, epochs=2))
    assert sorted(lazy) == sorted(once * 2)
    jittered = digests(split_dataset(shards, "train", 32, jitter=True, materialize_bytes=True, epochs=3))
    assert len(jittered) == 9 and len(set(jittered)) > 3  # new random crops in the later epochs


def test_degrade_damages_l_only_and_the_val_split_the_same_every_epoch(shard_rows):
    table, _ = shard_rows
    recipe = {"noise": {"p": 1, "std": [0.1, 0.1]}, "jpeg": {"p": 1, "quality": [20, 20]}}
    clean = to_lab_batch(table, image_size=32, jitter=False)
    damaged = to_lab_batch(table, image_size=32, jitter=False, degrade=recipe, degrade_seed=3)
    assert np.array_equal(damaged["ab"], clean["ab"])  # the colour target stays clean
    l_error = np.abs(damaged["l"] - clean["l"]) * 50  # in L units (0-100)
    assert 3 < l_error.mean() < 20  # noise of 10 % of 255 levels (about 10 L units) plus JPEG
    again = to_lab_batch(table, image_size=32, jitter=False, degrade=recipe, degrade_seed=3)
    assert np.array_equal(again["l"], damaged["l"])  # validation: each image from its own fixed seed
    other = to_lab_batch(table, image_size=32, jitter=False, degrade=recipe, degrade_seed=4)
    assert not np.array_equal(other["l"], damaged["l"])
    nothing = to_lab_batch(table, image_size=32, jitter=False, degrade={"noise": {"p": 0}})
    assert np.abs(nothing["l"] - clean["l"]).max() <= 1 / 127.5 + 1e-6  # only the 8-bit rounding of L


def test_uint8_rgb_batches_give_the_losses_of_float32_lab_batches(shard_rows):
    # Issue 29 item 10: the data workers ship 8-bit RGB crops (a quarter of the bytes) and the
    # training worker computes Lab. The same validation crops, as float32 L/ab computed on the data
    # worker (the route before), and as uint8 through lab_from_batch, give one pix2pix step the
    # same losses (tolerance 1e-6: the same float32 kornia conversion on the same 8-bit values).
    from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec
    from archive_colorizer.train.data import lab_from_batch, to_rgb_batch
    from archive_colorizer.train.step import build_pix2pix, gan_step

    table, decoded = shard_rows
    crops = [crop_square(image, 32, None) for image in decoded]  # the centre crops, as the worker made them
    old_l, old_ab = rgb_to_l_ab(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0)
    shipped = to_rgb_batch(table, image_size=32, jitter=False)
    assert shipped["rgb"].dtype == np.uint8 and shipped["rgb"].shape == (3, 3, 32, 32)
    assert shipped["rgb"].nbytes * 4 == old_l.numpy().nbytes + old_ab.numpy().nbytes  # a quarter of the bytes
    new_l, new_ab = lab_from_batch({"rgb": torch.from_numpy(shipped["rgb"])})
    assert torch.allclose(new_l, old_l, atol=1e-6) and torch.allclose(new_ab, old_ab, atol=1e-6)
    losses = []
    for l_norm, ab_norm in ((old_l, old_ab), (new_l, new_ab)):
        torch.manual_seed(0)
        model = build_pix2pix(GeneratorSpec(ngf=8, num_downs=5).build(), DiscriminatorSpec(ndf=8, n_layers=2).build())
        losses.append(gan_step(model, l_norm, ab_norm))
    before, after = losses
    assert before.loss_G_L1 > 0.01  # an untrained generator is far from the real colours
    for name in ("loss_G_L1", "loss_G_GAN", "loss_D_real", "loss_D_fake"):
        assert abs(getattr(before, name) - getattr(after, name)) <= 1e-6, name
