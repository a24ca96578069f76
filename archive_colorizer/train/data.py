"""Training data with Ray Data: Parquet shards -> decoded, jittered (L, ab) tensors.

The shards are those of the prepare job (DESIGN.md): ``image: struct<bytes, path>`` (JPEG),
``width``, ``height``, ``split`` ("train"/"val"), ``source``. CPU tasks decode each image, apply
pix2pix's random jitter (Isola et al. 2017, section 6.2):

- train: resize the shorter side to ``image_size * 286 / 256`` (286 for 256), random crop
  ``image_size`` x ``image_size``, random horizontal flip. pix2pix's ``resize_and_crop``
  squashes every image to 286 x 286 first; resizing the shorter side keeps the photographs'
  proportions, and the crop then comes from anywhere along the longer side;
- val: resize the shorter side to ``image_size``, centre crop (no randomness);

and ship the 8-bit RGB crops (``rgb``, (B, 3, S, S) uint8; a quarter of the bytes of float32 L
and ab). Training workers read them with ``iter_torch_batches`` and convert them to Lab on
their device (:func:`lab_from_batch`, kornia): ``l`` (B, 1, S, S) in [-1, 1] and ``ab``
(B, 2, S, S) ab/110, float32.

The jitter draws from fresh OS entropy in every task, so augmentations differ per epoch; they
are not reproducible from the seed (Ray Data decides which task sees which rows anyway).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.errors import ConfigError
from archive_colorizer.folders import iter_files
from archive_colorizer.images import ImageDecodeError, decode, resize_shorter_side, to_rgb
from archive_colorizer.storage import is_local, open_url

if TYPE_CHECKING:
    from archive_colorizer.degrade import Degradation

logger = logging.getLogger(__name__)

JITTER_RATIO = 286 / 256
"""pix2pix loads at 286 and crops 256: the resize before the random crop, relative to the crop."""
DECODE_BATCH_SIZE = 32
"""Rows per Ray Data block and decode task."""
FILES_PER_FOOTER_READER = 64
"""Shard files per Parquet footer-reading actor (see :func:`_footer_readers`)."""


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


def to_rgb_batch(
    batch: pa.Table,
    image_size: int,
    jitter: bool,
    degrade: Mapping[str, Mapping[str, Any]] | None = None,
    degrade_seed: int = 0,
) -> dict[str, np.ndarray]:
    """Ray Data batch function of the training data: shard rows -> ``{"rgb": (B, 3, S, S)}`` uint8.

    What the data workers ship to the training workers: 8-bit sRGB crops (196 KB per image at
    256 px, a quarter of float32 L and ab); :func:`lab_from_batch` turns them into the network's
    (L, ab) on the training worker's device. With ``degrade`` (a recipe's operations,
    :class:`archive_colorizer.degrade.Degradation`) the batch also holds ``l_damaged``
    (B, 1, S, S) uint8: the damaged L at 8 bits (``L * 2.55``), computed here from the clean L;
    ab stays clean. Each image's seed is drawn from the task's random state when ``jitter`` (new
    damage every epoch, like the jitter), else it is ``image_seed(degrade_seed, path)``
    (validation: the same damage every epoch).

    Rows whose bytes do not decode are dropped with a warning naming the image's path (the
    prepare job already refuses such files, so this is a last guard).
    """
    rng = np.random.default_rng() if jitter else None
    images = batch.column("image").combine_chunks()
    crops, paths = [], []
    for data, path in zip(images.field("bytes").to_pylist(), images.field("path").to_pylist(), strict=True):
        try:
            crops.append(crop_square(to_rgb(decode(data, source=str(path)).image), image_size, rng))
            paths.append(str(path))
        except ImageDecodeError as exc:
            logger.warning("skipping training image %s: %s", path, exc)
    rgb = np.stack(crops).transpose(0, 3, 1, 2) if crops else np.zeros((0, 3, image_size, image_size), np.uint8)
    result = {"rgb": np.ascontiguousarray(rgb)}  # (B, 3, S, S) uint8
    if degrade:
        # Imported here: albumentations takes ~2 s to import, which runs without --degrade need not pay.
        from archive_colorizer.degrade import Degradation, image_seed

        seeds = [int(rng.integers(2**32)) if rng is not None else image_seed(degrade_seed, p) for p in paths]
        l_norm, _ = rgb_to_l_ab(torch.from_numpy(result["rgb"]).float() / 255.0)
        damaged = degrade_l(l_norm, Degradation(degrade, "--degrade"), seeds) if crops else l_norm
        result["l_damaged"] = torch.round((damaged + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    return result


def lab_from_batch(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's input and target from a :func:`to_rgb_batch` batch, on the batch's device (kornia).

    Args:
        batch: ``rgb`` (B, 3, S, S) uint8 sRGB, and ``l_damaged`` (B, 1, S, S) uint8 (``L * 2.55``)
            when the run degrades L.

    Returns:
        ``(l_norm, ab_norm)``: (B, 1, S, S) ``L / 50 - 1`` in [-1, 1] (the damaged L where given)
        and (B, 2, S, S) ``ab / 110``, float32.
    """
    l_norm, ab_norm = rgb_to_l_ab(batch["rgb"].float() / 255.0)
    if "l_damaged" in batch:
        l_norm = batch["l_damaged"].float() / 127.5 - 1.0
    return l_norm, ab_norm


def to_lab_batch(
    batch: pa.Table,
    image_size: int,
    jitter: bool,
    degrade: Mapping[str, Mapping[str, Any]] | None = None,
    degrade_seed: int = 0,
) -> dict[str, np.ndarray]:
    """:func:`to_rgb_batch` then :func:`lab_from_batch` on the CPU: ``{"l": (B,1,S,S), "ab": (B,2,S,S)}`` float32.

    What the training workers compute from the data workers' uint8 batches, as numpy (benchmarks
    and tests).
    """
    shipped = {
        name: torch.from_numpy(array)
        for name, array in to_rgb_batch(batch, image_size, jitter, degrade, degrade_seed).items()
    }
    l_norm, ab_norm = lab_from_batch(shipped)
    return {"l": l_norm.numpy(), "ab": ab_norm.numpy()}


def degrade_l(l_norm: torch.Tensor, degradation: Degradation, seeds: list[int]) -> torch.Tensor:
    """Damage normalised L channels through their 8-bit version.

    Args:
        l_norm: (B, 1, S, S) float32 ``L / 50 - 1`` in [-1, 1].
        degradation: the recipe.
        seeds: one seed per image.

    Returns:
        (B, 1, S, S) float32 in [-1, 1], quantised to 256 levels (0.39 L units).
    """
    levels = torch.round((l_norm[:, 0] + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()  # (B, S, S) = L * 2.55
    damaged = np.stack([degradation(plane, seed) for plane, seed in zip(levels, seeds, strict=True)])
    return torch.from_numpy(damaged.astype(np.float32) / 127.5 - 1)[:, None]


def pa_filesystem(fs) -> pa.fs.FileSystem:
    """An fsspec filesystem as a pyarrow one (fsspec's options, e.g. ``endpoint_url``, apply)."""
    import pyarrow.fs

    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))


@dataclass(frozen=True)
class Shards:
    """The Parquet files of a shards URL, listed once on the driver.

    Attributes:
        url: the shards folder or prefix as given.
        fs: its fsspec filesystem.
        files: paths of the ``*.parquet`` files below it (hidden and ``_``-prefixed entries
            skipped, as :func:`archive_colorizer.folders.iter_files` does), sorted.
    """

    url: str
    fs: Any
    files: tuple[str, ...]

    @classmethod
    def find(cls, url: str, storage_options: Mapping[str, Any] | None = None) -> Shards:
        """List the shards at ``url``.

        Raises:
            ConfigError: there is no ``*.parquet`` file at ``url``.
        """
        fs, root = open_url(url, storage_options)
        if fs.isdir(root):
            files = tuple(iter_files(fs, root, (".parquet",)))
        else:
            files = (root,) if fs.exists(root) else ()
        if not files:
            raise ConfigError(f"no Parquet shards (*.parquet) at {url!r}; write them with 'archive-colorizer prepare'")
        return cls(url, fs, files)

    def split_counts(self) -> dict[str, int]:
        """Rows per ``split`` value, read on the driver (only the ``split`` column).

        Raises:
            ConfigError: the files are not Parquet or have no ``split`` column.
        """
        import pyarrow.dataset

        try:
            table = pyarrow.dataset.dataset(
                list(self.files), filesystem=pa_filesystem(self.fs), format="parquet"
            ).to_table(columns=["split"])
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"cannot read the split column of the training shards at {self.url!r}: {exc}") from exc
        counts = pc.value_counts(table.column("split").combine_chunks())
        return {
            str(v): int(c)
            for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        }

    def read(self, shuffle_files: bool):
        """``ray.data.read_parquet`` of exactly these files."""
        import ray.data

        with _footer_readers(len(self.files)):
            return ray.data.read_parquet(
                list(self.files),
                filesystem=None if is_local(self.fs) else self.fs,
                shuffle="files" if shuffle_files else None,
            )


@contextlib.contextmanager
def _footer_readers(files: int) -> Iterator[None]:
    """Size Ray 2.60's pool of Parquet footer-reading actors to the number of shard files.

    ``read_parquet`` starts ``RAY_DATA_PARQUET_FOOTER_NUM_ACTORS`` (default 32) actors at every
    execution of the dataset, i.e. every epoch. For a few hundred shard files that is mostly
    process start-up: it delayed each epoch's first batch by about 3 s on 2 cores. Ray reads
    the variable when ``read_parquet`` is called; a value set by the user is left alone.
    """
    name = "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(max(1, min(32, math.ceil(files / FILES_PER_FOOTER_READER))))
    try:
        yield
    finally:
        os.environ.pop(name, None)


def split_dataset(
    shards: Shards,
    split: str,
    image_size: int,
    *,
    jitter: bool,
    limit: int | None = None,
    materialize_bytes: bool = False,
    epochs: int = 1,
    degrade: Mapping[str, Mapping[str, Any]] | None = None,
    degrade_seed: int = 0,
):
    """The Ray Dataset of one split as (L, ab) tensors.

    Args:
        shards: the listed shard files.
        split: "train" or "val".
        image_size: crop side S.
        jitter: random resize-crop-flip (training) or resize + centre crop (validation).
        limit: keep only the first ``limit`` rows.
        materialize_bytes: read the split's JPEG bytes once into Ray's object store
            (``Dataset.materialize()``, about the shards' size; Ray spills to disk beyond its
            memory) and take them from there in a new random block order for every epoch
            (``randomize_block_order``); only the decode, jitter and Lab conversion run per
            epoch. Without it, every epoch reads the Parquet files again (in a new file order
            when ``jitter``).
        epochs: the split ``epochs`` times over, one after another, as one dataset (``union``):
            one execution serves the whole run, so an epoch does not wait for a new pipeline
            and a refilled shuffle buffer before its first batch (2.6-2.8 s per epoch in
            ``bench/train_throughput.py``). The training loop cuts the stream into epochs by
            their number of steps.
        degrade, degrade_seed: damage of L (see :func:`to_rgb_batch`); ``None``: clean.

    Returns:
        A lazy ``ray.data.Dataset`` with column ``rgb`` (uint8; ``l_damaged`` with ``degrade``,
        :func:`to_rgb_batch`) and ``epochs`` times the split's rows.
    """
    if materialize_bytes:
        stored = _split_bytes(shards, split, limit, shuffle_files=False).materialize()
        # randomize_block_order: each copy a new block order at every execution
        parts = [stored.randomize_block_order() if jitter else stored for _ in range(epochs)]
    else:
        parts = [_split_bytes(shards, split, limit, shuffle_files=jitter) for _ in range(epochs)]
    dataset = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return dataset.map_batches(
        to_rgb_batch,
        fn_kwargs={"image_size": image_size, "jitter": jitter, "degrade": degrade, "degrade_seed": degrade_seed},
        batch_size=DECODE_BATCH_SIZE,
        batch_format="pyarrow",
    )


def _split_bytes(shards: Shards, split: str, limit: int | None, shuffle_files: bool):
    """The lazy dataset of one split's ``image`` column, in blocks of :data:`DECODE_BATCH_SIZE` rows."""
    from ray.data.expressions import col, lit

    dataset = shards.read(shuffle_files=shuffle_files).filter(expr=col("split") == lit(split))
    dataset = dataset.select_columns(["image"])
    if limit is not None:
        dataset = dataset.limit(limit)
    # A shard file arrives as one block; decoding it in one task would let the first batch out
    # only when the whole file is done, on one CPU. Small blocks stream and decode in parallel.
    return dataset.repartition(target_num_rows_per_block=DECODE_BATCH_SIZE)


@dataclass(frozen=True)
class TrainingData:
    """What :func:`training_datasets` gives the trainer.

    Attributes:
        datasets: ``{"train": ..., "val": ...}`` Ray datasets; ``train`` holds every epoch.
        train_rows: training images in one epoch (the workers cut the stream into epochs of
            ``train_rows // workers // batch_size`` steps each).
    """

    datasets: dict[str, Any]
    train_rows: int


def training_datasets(
    data_url: str,
    *,
    workers: int,
    batch_size: int,
    image_size: int,
    max_val_images: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    materialize_train: bool = True,
    epochs: int = 1,
    degrade: Mapping[str, Mapping[str, Any]] | None = None,
    degrade_seed: int = 0,
) -> TrainingData:
    """The ``train`` (``epochs`` epochs in one dataset) and ``val`` datasets for
    :func:`archive_colorizer.train.trainer.build_trainer`, and the rows of one epoch.

    Without a val split (e.g. a tiny collection) validation falls back to the first training
    images, without jitter, and says so in a warning. The validation images are decoded once
    (materialized) since rank 0 evaluates the same images every epoch. With
    ``materialize_train`` the training split's JPEG bytes are read once (see
    :func:`split_dataset`), which saves re-planning and re-reading the Parquet files every epoch.
    ``degrade`` damages the L channel of both splits (the val split the same way every epoch).

    Raises:
        ConfigError: no shards, or fewer training images than ``workers * batch_size`` (no
            worker would get a full batch).
    """
    shards = Shards.find(data_url, storage_options)
    counts = shards.split_counts()
    needed = max(workers, 1) * batch_size
    if counts.get("train", 0) < needed:
        raise ConfigError(
            f"the shards at {data_url!r} hold {counts.get('train', 0)} training images (splits: {counts}); "
            f"{max(workers, 1)} worker(s) x batch_size {batch_size} need at least {needed}"
        )
    val_split = "val"
    if not counts.get("val"):
        logger.warning("the shards at %s have no val split: validating on the first training images", data_url)
        val_split = "train"
    train = split_dataset(
        shards,
        "train",
        image_size,
        jitter=True,
        materialize_bytes=materialize_train,
        epochs=max(1, epochs),
        degrade=degrade,
        degrade_seed=degrade_seed,
    )
    val = split_dataset(
        shards, val_split, image_size, jitter=False, limit=max_val_images, degrade=degrade, degrade_seed=degrade_seed
    ).materialize()
    return TrainingData({"train": train, "val": val}, counts["train"])
