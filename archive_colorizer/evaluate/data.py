"""The held-out images of an evaluation: shards of prepare (one split) or a folder of colour photos.

Either way each image arrives as an (S, S, 3) uint8 RGB ground truth, made exactly as train
makes its validation crops (:func:`archive_colorizer.train.data.crop_square`: shorter side
resized to S, centre crop). Images are streamed one at a time (shard files in row batches,
folders one folder listing at a time), so memory does not grow with the size of the split.

What cannot serve as ground truth is skipped and counted by reason: ``not_an_image``,
``truncated``, ``empty``, ``corrupt``, ``too_large`` (:mod:`archive_colorizer.images`),
``unreadable`` (storage), and ``gray`` (a folder photo whose mean chroma is below the gray
threshold: it holds no colour to compare against; prepare already dropped such images from
shards).
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archive_colorizer import folders, images, storage
from archive_colorizer.errors import ConfigError, StorageError
from archive_colorizer.train.data import Shards, crop_square

SHARDS, FOLDER = "shards", "folder"
ROWS_PER_READ = 64
"""Shard rows read at once (one row group holds about 100 images of a few tens of kB)."""
SKIPPED_EXAMPLES = 20
"""Skipped images named in the report (the counts cover all of them)."""


@dataclass
class HeldOutImage:
    """One ground truth.

    Attributes:
        name: where it came from: the image's path as stored in the shard, or its path
            relative to the folder.
        rgb: (S, S, 3) uint8 RGB.
    """

    name: str
    rgb: np.ndarray


@dataclass
class HeldOut:
    """The held-out images at a URL, and what was skipped while reading them.

    Attributes:
        url: the data URL as given.
        kind: ``shards`` or ``folder``.
        split: the shard split read (None for a folder).
        skipped: images skipped per reason.
        skipped_examples: the first :data:`SKIPPED_EXAMPLES` skipped images, ``{name, reason, error}``.
    """

    url: str
    kind: str
    split: str | None
    fs: Any = field(repr=False)
    root: str = field(repr=False)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def open(
        cls, url: str, split: str, extensions: tuple[str, ...], storage_options: Mapping[str, Any] | None
    ) -> HeldOut:
        """Find out what ``url`` holds: Parquet shards (a ``.parquet`` file, or a folder whose first
        file found is one) or a folder of photographs.

        Raises:
            ConfigError: nothing readable at ``url``.
        """
        fs, root = storage.open_url(url, storage_options)
        if root.endswith(".parquet") and fs.isfile(root):
            return cls(url, SHARDS, split, fs, root)
        if not fs.isdir(root):
            raise ConfigError(f"evaluation data {url!r} is neither a folder nor a .parquet file")
        first = next(folders.iter_files(fs, root, (".parquet", *extensions)), None)
        if first is None:
            raise ConfigError(f"no Parquet shards and no images ({', '.join(extensions)}) below {url!r}")
        kind = SHARDS if first.endswith(".parquet") else FOLDER
        return cls(url, kind, split if kind == SHARDS else None, fs, root.rstrip("/"))

    def skip(self, name: str, reason: str, error: BaseException | str) -> None:
        """Count a skipped image (and name it among the first few)."""
        self.skipped[reason] += 1
        if len(self.skipped_examples) < SKIPPED_EXAMPLES:
            self.skipped_examples.append({"name": name, "reason": reason, "error": str(error)})

    def images(
        self,
        size: int,
        *,
        gray_threshold: float,
        extensions: tuple[str, ...],
        max_pixels: int,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Iterator[HeldOutImage]:
        """Stream the ground truths, (size, size, 3) uint8 each; skipped ones are counted in :attr:`skipped`.

        Raises:
            StorageError: a shard file cannot be read (a broken data set, not a broken image).
        """
        if self.kind == SHARDS:
            yield from self._shard_images(size, max_pixels, storage_options)
        else:
            yield from self._folder_images(size, gray_threshold, extensions, max_pixels)

    def _shard_images(
        self, size: int, max_pixels: int, storage_options: Mapping[str, Any] | None
    ) -> Iterator[HeldOutImage]:
        files = (self.root,) if self.root.endswith(".parquet") else Shards.find(self.url, storage_options).files
        for path in files:
            try:
                with self.fs.open(path, "rb") as handle:
                    for batch in pq.ParquetFile(handle).iter_batches(
                        batch_size=ROWS_PER_READ, columns=["image", "split"]
                    ):
                        batch = batch.filter(pc.equal(batch.column("split"), self.split))
                        images = batch.column("image")
                        for data, name in zip(
                            images.field("bytes").to_pylist(), images.field("path").to_pylist(), strict=True
                        ):
                            truth = self._truth(data, str(name), size, max_pixels)
                            if truth is not None:
                                yield HeldOutImage(str(name), truth)
            except (OSError, pa.ArrowException) as exc:
                raise StorageError(f"cannot read the shard {storage.to_url(self.fs, path)!r}: {exc}") from exc

    def _folder_images(
        self, size: int, gray_threshold: float, extensions: tuple[str, ...], max_pixels: int
    ) -> Iterator[HeldOutImage]:
        for path in folders.iter_files(self.fs, self.root, extensions):
            name = posixpath.relpath(path, self.root)
            try:
                data = storage.read_bytes(self.fs, path)
            except (FileNotFoundError, StorageError) as exc:
                self.skip(name, "unreadable", exc)
                continue
            truth = self._truth(data, name, size, max_pixels, gray_threshold)
            if truth is not None:
                yield HeldOutImage(name, truth)

    def _truth(
        self, data: bytes, name: str, size: int, max_pixels: int, gray_threshold: float | None = None
    ) -> np.ndarray | None:
        """Decode one image into its (size, size, 3) ground truth, or count why not and return None."""
        try:
            image = images.to_rgb(images.decode(data, source=name, max_pixels=max_pixels).image)
        except images.ImageDecodeError as exc:
            self.skip(name, exc.reason, exc)
            return None
        if gray_threshold is not None:
            chroma = images.mean_chroma(image)
            if chroma < gray_threshold:
                self.skip(name, "gray", f"mean chroma {chroma:.2f} is below the gray threshold {gray_threshold}")
                return None
        return crop_square(image, size, None)

    def describe(self) -> dict[str, Any]:
        """The data section of ``evaluation.json``."""
        return {
            "url": self.url,
            "kind": self.kind,
            "split": self.split,
            "skipped": dict(self.skipped),
            "skipped_examples": list(self.skipped_examples),
        }
