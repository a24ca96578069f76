"""Resuming an interrupted prepare: which settings must match, and which shards are finished.

As in img2dataset, a shard's stats file (``_stats/shard-NNNNNN.json``, written after its
Parquet file) is its done-marker. The same command run again reads the earlier run's
``_config.yaml``; when every setting that decides the shards' contents matches
(:data:`SHARD_SETTINGS`), the finished shards are counted from their stats files and only the
others are dealt to tasks again. Because the shard assignment is deterministic
(:mod:`.assign`), a redone shard receives the same inputs as before, so no image is written twice
and a half-written shard file is simply replaced.
"""

from __future__ import annotations

import json
import posixpath
import re

import fsspec
import yaml

from archive_colorizer import storage
from archive_colorizer.errors import ConfigError
from archive_colorizer.prepare.config import PrepareConfig
from archive_colorizer.prepare.stats import ShardStats
from archive_colorizer.prepare.writer import CONFIG_FILE, SHARD_STATS_FOLDER

SHARD_SETTINGS = (
    "input",
    "size",
    "min_size",
    "gray_threshold",
    "color_threshold",
    "val_fraction",
    "seed",
    "rows_per_shard",
    "mix_window_shards",
    "extensions",
    "jpeg_quality",
    "max_pixels",
)
"""Settings that decide which inputs a shard holds and what its rows are; a resumed run must match them."""

_STATS_NAME = re.compile(r"shard-(\d{6,})\.json")


def check_resumable(fs: fsspec.AbstractFileSystem, root: str, config: PrepareConfig) -> None:
    """Accept the non-empty OUTPUT ``root`` only if it holds an earlier prepare of the same settings.

    Raises:
        ConfigError: OUTPUT has no ``_config.yaml`` (not a prepare output), or its settings
            differ from ``config`` in one of :data:`SHARD_SETTINGS` (named, with both values).
    """
    path = storage.join(root, CONFIG_FILE)
    if not fs.exists(path):
        raise ConfigError(
            f"OUTPUT {config.output!r} is not empty and holds no earlier prepare ({CONFIG_FILE} missing); choose an "
            "empty OUTPUT or pass --overwrite to replace an earlier prepare's shards"
        )
    earlier = yaml.safe_load(fs.cat_file(path)) or {}
    ours = config.public_dict()
    differing = [
        f"{key}: {earlier.get(key)!r} there, {ours[key]!r} now"
        for key in SHARD_SETTINGS
        if earlier.get(key) != ours[key]
    ]
    if differing:
        raise ConfigError(
            f"OUTPUT {config.output!r} holds an earlier prepare with other settings ({'; '.join(differing)}); "
            "run the same command to resume it, choose an empty OUTPUT, or pass --overwrite to replace it"
        )


def finished_shards(fs: fsspec.AbstractFileSystem, root: str) -> dict[int, ShardStats]:
    """Shard index -> stats of every shard with a done-marker in ``root/_stats/`` (unreadable ones are redone)."""
    folder = storage.join(root, SHARD_STATS_FOLDER)
    if not fs.isdir(folder):
        return {}
    paths, indices = [], {}  # indices: shard index by file name
    for path in fs.ls(folder, detail=False):
        if match := _STATS_NAME.fullmatch(posixpath.basename(path)):
            paths.append(path)
            indices[posixpath.basename(path)] = int(match.group(1))
    finished = {}
    for path, data in fs.cat(paths, on_error="omit").items():  # concurrent reads on object stores
        index = indices[posixpath.basename(path)]
        try:
            finished[index] = ShardStats.from_dict(index, json.loads(data))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return finished
