"""The unit of work: one shard task turns a list of inputs into one Parquet shard.

Read the inputs' bytes (:mod:`.reader`), decode/filter/resize/encode each (:mod:`.process`),
give each written image its split and label, write ``shard-NNNNNN.parquet`` and
``_stats/shard-NNNNNN.json`` (:mod:`.writer`). Plain Python: the pipeline runs it as a Ray task,
tests may call it directly.
"""

from __future__ import annotations

from collections.abc import Sequence

from archive_colorizer import storage
from archive_colorizer.prepare.config import PrepareConfig
from archive_colorizer.prepare.listing import InputRef
from archive_colorizer.prepare.process import Processed, ProcessSettings, assign_split, process_image
from archive_colorizer.prepare.reader import read_inputs
from archive_colorizer.prepare.stats import ShardStats
from archive_colorizer.prepare.writer import (
    SHARD_STATS_FOLDER,
    ShardRows,
    label_of,
    shard_name,
    shard_stats_name,
    write_json,
    write_shard,
)


def settings_from(config: PrepareConfig) -> ProcessSettings:
    """The per-image rules of a prepare config."""
    return ProcessSettings(
        size=config.size,
        min_size=config.min_size,
        gray_threshold=config.gray_threshold,
        jpeg_quality=config.jpeg_quality,
        max_pixels=config.max_pixels,
        color_threshold=config.color_threshold,
    )


def process_shard(index: int, refs: Sequence[InputRef], config: PrepareConfig) -> ShardStats:
    """Process one shard's inputs and write its files to OUTPUT.

    Args:
        index: the shard's number; names its files.
        refs: its inputs, as listed from ``config.input``.
        config: the job's settings.

    Returns:
        The shard's :class:`ShardStats` without the dropped records (they are in its JSON file).

    Raises:
        StorageError: the shard could not be written (bad input never raises).
    """
    retried = storage.retried_requests()
    in_fs, _ = storage.open_url(config.input, config.storage_options)
    out_fs, out_root = storage.open_url(config.output, config.output_options)
    settings = settings_from(config)
    stats, rows = ShardStats(index), ShardRows()
    for raw in read_inputs(in_fs, refs, threads=config.read_threads):
        if raw.data is None:
            processed = Processed("dropped_unreadable", error=raw.error)
        else:
            processed = process_image(raw.data, settings, source=raw.source)
        split, label = None, None
        if processed.jpeg is not None:
            label = label_of(raw.path)
            split = assign_split(raw.path, config.val_fraction, config.seed)
            rows.append(processed.jpeg, raw.path, processed.width, processed.height, split, raw.source)
        stats.add(raw.path, raw.source, processed, split, label)
    if len(rows):
        stats.file = shard_name(index)
        write_shard(out_fs, storage.join(out_root, stats.file), rows)
    # Written last: its presence marks the shard as finished (a resumed run skips it).
    write_json(out_fs, storage.join(out_root, SHARD_STATS_FOLDER, shard_stats_name(index)), stats.to_dict())
    stats.dropped = []
    stats.storage_retries = storage.retried_requests() - retried
    return stats
