"""Writing shards: the training-shard schema, Parquet files and JSON bookkeeping.

A shard is a Parquet file ``shard-NNNNNN.parquet`` in OUTPUT holding the images of one shard
task, in the Hugging Face image layout (DESIGN.md, "Training shards"):

    image: struct<bytes: binary, path: string>   JPEG bytes, path relative to the collection
    width: int32, height: int32                  the stored image's size in pixels
    split: string                                "train" or "val"
    source: string                               URL of the original (see reader.RawInput)
    label: string                                the image's folder relative to the collection
                                                 (``a/abbey`` for ``a/abbey/1.jpg``: the category of a
                                                 folder-per-category tree, as HF imagefolder's label;
                                                 null for images at the root)

Bookkeeping files start with ``_`` and are not ``.parquet`` (``_stats.json``, ``_stats/``,
``_config.yaml``), so ``ray.data.read_parquet(OUTPUT)`` and pyarrow's dataset discovery skip
them. Every file is written whole or not at all (:func:`storage.write_bytes`).
"""

from __future__ import annotations

import io
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from archive_colorizer import storage

IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

_HF_FEATURES = {
    "image": {"_type": "Image"},
    "width": {"dtype": "int32", "_type": "Value"},
    "height": {"dtype": "int32", "_type": "Value"},
    "split": {"dtype": "string", "_type": "Value"},
    "source": {"dtype": "string", "_type": "Value"},
    "label": {"dtype": "string", "_type": "Value"},
}

SHARD_SCHEMA = pa.schema(
    [
        pa.field("image", IMAGE_TYPE),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("split", pa.string()),
        pa.field("source", pa.string()),
        pa.field("label", pa.string()),
    ],
    # The features record Hugging Face `datasets` reads, so it decodes `image` as an Image.
    metadata={b"huggingface": json.dumps({"info": {"features": _HF_FEATURES}}).encode()},
)
"""Arrow schema of every training shard."""

ROW_GROUP_ROWS = 100
"""Rows per Parquet row group (what `datasets` uses for images): readers can stream a shard."""

STATS_FILE = "_stats.json"
SHARD_STATS_FOLDER = "_stats"
CONFIG_FILE = "_config.yaml"
SHARD_GLOB = "shard-*.parquet"


def shard_name(index: int) -> str:
    """File name of shard ``index`` (0-based, see :mod:`.assign`): ``shard-000042.parquet``."""
    return f"shard-{index:06d}.parquet"


def label_of(path: str) -> str | None:
    """The category of an image: its ``/``-separated folder relative to the collection, ``None`` at the root."""
    folder = posixpath.dirname(path)
    return folder or None


def shard_stats_name(index: int) -> str:
    """File name in ``_stats/`` of shard ``index``'s stats, its done-marker: ``shard-000042.json``."""
    return f"shard-{index:06d}.json"


@dataclass
class ShardRows:
    """The rows of one shard, column by column."""

    images: list[dict[str, Any]] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)

    def append(self, jpeg: bytes, path: str, width: int, height: int, split: str, source: str) -> None:
        """Add one written image; its ``label`` is its folder (:func:`label_of`)."""
        self.labels.append(label_of(path))
        self.images.append({"bytes": jpeg, "path": path})
        self.widths.append(width)
        self.heights.append(height)
        self.splits.append(split)
        self.sources.append(source)

    def __len__(self) -> int:
        return len(self.images)

    def to_table(self) -> pa.Table:
        """The rows as an Arrow table of :data:`SHARD_SCHEMA`."""
        columns = [self.images, self.widths, self.heights, self.splits, self.sources, self.labels]
        return pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SHARD_SCHEMA, strict=True)], schema=SHARD_SCHEMA
        )


def write_shard(fs: fsspec.AbstractFileSystem, path: str, rows: ShardRows) -> None:
    """Write ``rows`` as one Parquet file at ``path`` (atomically).

    JPEG bytes do not compress, so the file is stored uncompressed.

    Raises:
        StorageError: the write failed (names the URL).
    """
    buffer = io.BytesIO()
    pq.write_table(rows.to_table(), buffer, row_group_size=ROW_GROUP_ROWS, compression="NONE")
    storage.write_bytes(fs, path, buffer.getvalue())


def write_json(fs: fsspec.AbstractFileSystem, path: str, data: Any) -> None:
    """Write ``data`` as indented JSON at ``path`` (atomically)."""
    storage.write_bytes(fs, path, (json.dumps(data, indent=2) + "\n").encode())


def previous_outputs(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    """Paths in the folder ``root`` that a prepare run writes: shards and bookkeeping files."""
    names = {STATS_FILE, SHARD_STATS_FOLDER, CONFIG_FILE}
    found = fs.glob(f"{root.rstrip('/')}/{SHARD_GLOB}")
    found += [path for path in fs.ls(root, detail=False) if path.rstrip("/").rsplit("/", 1)[-1] in names]
    return sorted(set(found))
