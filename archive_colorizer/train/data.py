"""Training data with Ray Data: Parquet shards -> decoded, jittered (L, ab) tensors.

The shards are those of the prepare job (DESIGN.md): ``image: struct<bytes, path>`` (JPEG),
``width``, ``height``, ``split`` ("train"/"val"), ``source``. CPU tasks decode each image, apply
pix2pix's random jitter (Isola et al. 2017, section 6.2; ``--preprocess resize_and_crop``):

- train: resize the shorter side to ``image_size * 286 / 256`` (286 for 256), random crop
  ``image_size`` x ``image_size``, random horizontal flip;
- val: resize the shorter side to ``image_size``, centre crop (no randomness);

and convert to Lab (kornia): columns ``l`` (B, 1, S, S) in [-1, 1] and ``ab`` (B, 2, S, S)
ab/110, float32. Training workers read them with ``iter_torch_batches``.

The jitter draws from fresh OS entropy in every task, so augmentations differ per epoch; they
are not reproducible from the seed (Ray Data decides which task sees which rows anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.errors import ConfigError
from archive_colorizer.imageio import ImageDecodeError, decode, resize_shorter_side, to_rgb
from archive_colorizer.storage import is_local, iter_files, open_url

logger = logging.getLogger(__name__)

JITTER_RATIO = 286 / 256
"""pix2pix loads at 286 and crops 256: the resize before the random crop, relative to the crop."""
DECODE_BATCH_SIZE = 32
"""Rows per Ray Data decode task batch."""


def load_size(image_size: int) -> int:
    """Shorter side before the random crop: ``round(image_size * 286 / 256)`` (286 for 256)."""
    return round(image_size * JITTER_RATIO)


def crop_square(image: Image.Image, image_size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Resize, crop and (when training) flip one RGB image.

    Args:
        image: RGB image of any size.
        image_size: side S of the output.
        rng: a generator for the training jitter; ``None`` for validation (resize the shorter
            side to S and take the centre).

    Returns:
        (S, S, 3) uint8 RGB.
    """
    if rng is None:
        image = resize_shorter_side(image, image_size)
        left, top = (image.width - image_size) // 2, (image.height - image_size) // 2
    else:
        image = resize_shorter_side(image, load_size(image_size))
        left = int(rng.integers(0, image.width - image_size + 1))
        top = int(rng.integers(0, image.height - image_size + 1))
    pixels = np.asarray(image.crop((left, top, left + image_size, top + image_size)))
    if rng is not None and rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return pixels


def to_lab_batch(batch: pa.Table, image_size: int, jitter: bool) -> dict[str, np.ndarray]:
    """Ray Data batch function: shard rows -> ``{"l": (B,1,S,S), "ab": (B,2,S,S)}`` float32.

    Rows whose bytes do not decode are dropped with a warning naming the image's path (the
    prepare job already refuses such files, so this is a last guard).
    """
    rng = np.random.default_rng() if jitter else None
    images = batch.column("image").combine_chunks()
    crops = []
    for data, path in zip(images.field("bytes").to_pylist(), images.field("path").to_pylist()):
        try:
            crops.append(crop_square(to_rgb(decode(data, source=str(path)).image), image_size, rng))
        except ImageDecodeError as exc:
            logger.warning("skipping training image %s: %s", path, exc)
    if not crops:
        return {"l": np.zeros((0, 1, image_size, image_size), np.float32), "ab": np.zeros((0, 2, image_size, image_size), np.float32)}
    rgb = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, S, S)
    l_norm, ab_norm = rgb_to_l_ab(rgb)
    return {"l": l_norm.numpy(), "ab": ab_norm.numpy()}


def pa_filesystem(fs) -> pa.fs.FileSystem:
    """An fsspec filesystem as a pyarrow one (fsspec's options, e.g. ``endpoint_url``, apply)."""
    import pyarrow.fs

    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))


def _read_shards(data_url: str, storage_options: Mapping[str, Any] | None, **read_args: Any):
    import ray.data

    fs, path = open_url(data_url, storage_options)
    try:
        return ray.data.read_parquet(path, filesystem=None if is_local(fs) else fs, file_extensions=["parquet"], **read_args)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(f"cannot read training shards at {data_url!r}: {exc}") from exc


def split_counts(data_url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Rows per ``split`` value in the shards, read on the driver (only the ``split`` column).

    A quick check before training starts; Ray Data then reads the images themselves.

    Raises:
        ConfigError: no ``*.parquet`` files at ``data_url``, or they have no ``split`` column.
    """
    import pyarrow.dataset

    fs, root = open_url(data_url, storage_options)
    files = list(iter_files(fs, root, (".parquet",))) if fs.isdir(root) else [root]
    if not files or not fs.exists(files[0]):
        raise ConfigError(f"no Parquet shards (*.parquet) at {data_url!r}")
    try:
        table = pyarrow.dataset.dataset(files, filesystem=pa_filesystem(fs), format="parquet").to_table(columns=["split"])
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"cannot read the split column of the training shards at {data_url!r}: {exc}") from exc
    counts = pc.value_counts(table.column("split").combine_chunks())
    return {str(value): int(count) for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())}


def split_dataset(
    data_url: str,
    split: str,
    image_size: int,
    *,
    jitter: bool,
    limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
):
    """The Ray Dataset of one split as (L, ab) tensors.

    Args:
        data_url: folder or prefix of the shards (only ``*.parquet`` files are read).
        split: "train" or "val".
        image_size: crop side S.
        jitter: random resize-crop-flip (training) or resize + centre crop (validation).
        limit: keep only the first ``limit`` rows.

    Returns:
        A lazy ``ray.data.Dataset`` with columns ``l`` and ``ab`` (see the module docstring);
        training datasets read their files in a new random order every epoch.
    """
    from ray.data.expressions import col, lit

    dataset = _read_shards(data_url, storage_options, shuffle="files" if jitter else None)
    dataset = dataset.filter(expr=col("split") == lit(split)).select_columns(["image"])
    if limit is not None:
        dataset = dataset.limit(limit)
    return dataset.map_batches(
        to_lab_batch,
        fn_kwargs={"image_size": image_size, "jitter": jitter},
        batch_size=DECODE_BATCH_SIZE,
        batch_format="pyarrow",
    )


def training_datasets(data_url: str, *, workers: int, batch_size: int, image_size: int, max_val_images: int | None = None,
                      storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"train": ..., "val": ...}`` datasets for :func:`archive_colorizer.train.trainer.build_trainer`.

    Without a val split (e.g. a tiny collection) validation falls back to the first training
    images, without jitter, and says so in a warning.

    Raises:
        ConfigError: no shards, or fewer training images than ``workers * batch_size`` (no
            worker would get a full batch).
    """
    counts = split_counts(data_url, storage_options)
    train_rows = counts.get("train", 0)
    if train_rows < max(workers, 1) * batch_size:
        raise ConfigError(
            f"the shards at {data_url!r} hold {train_rows} training images (splits: {counts or 'none'}); "
            f"{max(workers, 1)} worker(s) x batch_size {batch_size} need at least {max(workers, 1) * batch_size}"
        )
    val_split = "val"
    if not counts.get("val"):
        logger.warning("the shards at %s have no val split: validating on the first training images", data_url)
        val_split = "train"
    return {
        "train": split_dataset(data_url, "train", image_size, jitter=True, storage_options=storage_options),
        # Decoded once: rank 0 evaluates the same images every epoch.
        "val": split_dataset(
            data_url, val_split, image_size, jitter=False, limit=max_val_images, storage_options=storage_options
        ).materialize(),
    }
