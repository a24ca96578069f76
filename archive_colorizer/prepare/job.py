"""The prepare job in the driver: check the paths, list the inputs, run one Ray task per shard.

The driver only lists (:mod:`.listing`) and counts. It deals the listing into shards of
``rows_per_shard`` inputs, mixed over windows of the listing (:mod:`.assign`), and keeps at
most ``max_tasks`` shard tasks in flight, pulling more of the listing only as tasks finish; so
memory holds a bounded window of the listing, never image bytes, and listing overlaps
processing. Each task reads, processes and writes its own shard (:func:`.shard.process_shard`)
and returns a small stats record (the img2dataset pattern: the shard is the unit of work). A
shard's ``_stats/shard-NNNNNN.json`` is written last and marks it done: the same command run
again after a crash skips those shards and redoes only the others (:mod:`.resume`; the
assignment is deterministic, so they get the same inputs). Ray Data's readers would plan every
file up front, which is what the streaming listing avoids; Ray Data reads the finished shards
(``ray.data.read_parquet(OUTPUT)``).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm

from archive_colorizer import folders, storage
from archive_colorizer.errors import ConfigError, JobError
from archive_colorizer.prepare.assign import mixed_shards
from archive_colorizer.prepare.config import PrepareConfig
from archive_colorizer.prepare.listing import InputRef, iter_inputs
from archive_colorizer.prepare.resume import check_resumable, finished_shards
from archive_colorizer.prepare.shard import process_shard
from archive_colorizer.prepare.stats import PrepareResult, ShardStats
from archive_colorizer.prepare.writer import CONFIG_FILE, STATS_FILE, previous_outputs, write_json
from archive_colorizer.resources import check_prepare
from archive_colorizer.runtime import init_ray
from archive_colorizer.stopping import Watchdog


def run(config: PrepareConfig) -> PrepareResult:
    """Turn the photo collection ``config.input`` into Parquet training shards in ``config.output``.

    Per image: decode (EXIF orientation applied), drop corrupt, too large, small, grayscale or
    low-colour images (any other error for one image: ``dropped_error``), resize the shorter
    side to ``config.size``, encode JPEG, assign ``train``/``val`` by a stable hash of the
    relative path (see :mod:`archive_colorizer.prepare.process`). Writes
    ``shard-NNNNNN.parquet`` files (schema :data:`.writer.SHARD_SCHEMA`), ``_stats/`` per shard,
    ``_config.yaml`` and, last, ``_stats.json``; prints a progress bar and a one-line summary.
    Shards are dealt from seeded windows of the listing (:func:`.assign.mixed_shards`); when
    OUTPUT holds an earlier, interrupted run of the same settings, its finished shards are kept
    and counted and only the others are processed.

    Raises:
        ConfigError: INPUT is missing or unreadable as a collection, OUTPUT is INPUT or inside
            it, or OUTPUT holds something other than an earlier prepare of the same settings and
            ``overwrite`` is off (messages name the URLs and the differing settings).
        JobError: INPUT holds no input, an archive cannot be listed, or a shard task failed.
    """
    retried = storage.retried_requests()
    resuming = check_paths(config)
    inputs = _nonempty_listing(config)
    init_ray(config.ray_address, config.ray_connect_timeout)
    check_prepare()
    start = time.monotonic()
    out_fs, out_root = storage.open_url(config.output, config.output_options)
    done = finished_shards(out_fs, out_root) if resuming else {}
    config.save(storage.join(config.output, CONFIG_FILE), config.output_options)
    result = PrepareResult(config.input, config.output)
    for stats in done.values():
        result.add(stats, resumed=True)
    dealt = mixed_shards(inputs, config.rows_per_shard, config.mix_window_shards, config.seed)
    shards = ((index, refs) for index, refs in dealt if index not in done)
    bar = tqdm(
        desc="prepare", unit="img", disable=not config.progress, file=sys.stderr, mininterval=1.0, initial=result.inputs
    )
    with bar, Watchdog(config.stall_timeout, "prepare", "no shard task finished") as watchdog:
        for stats in run_shards(shards, config):
            watchdog.beat()
            result.add(stats)
            bar.update(stats.inputs)
            bar.set_postfix(
                shards=result.shards,
                written=result.counts["written"],
                dropped=result.inputs - result.counts["written"],
                refresh=False,
            )
    result.seconds = time.monotonic() - start
    result.storage_retries += storage.retried_requests() - retried  # the driver's own
    write_json(out_fs, storage.join(out_root, STATS_FILE), result.to_dict(config.public_dict()))
    print(result.summary(), flush=True)
    return result


def check_paths(config: PrepareConfig) -> bool:
    """Refuse a missing INPUT, an OUTPUT equal to or inside INPUT, and a non-empty OUTPUT.

    With ``config.overwrite`` the files of an earlier prepare run in OUTPUT (shards and
    bookkeeping) are deleted instead; anything else there is left alone. Without it, an OUTPUT
    holding an earlier prepare of the same settings (:func:`.resume.check_resumable`) is resumed.

    Returns:
        True when the run resumes an earlier one in OUTPUT.

    Raises:
        ConfigError: naming the URLs and what to do.
    """
    in_fs, in_root = storage.open_url(config.input, config.storage_options)
    if not in_fs.exists(in_root):
        raise ConfigError(f"INPUT {config.input!r} does not exist")
    if storage.is_same_or_inside(config.output, config.input, config.storage_options):
        raise ConfigError(
            f"OUTPUT {config.output!r} is INPUT {config.input!r} or inside it; choose an OUTPUT outside the collection"
        )
    if folders.is_empty_or_missing(config.output, config.output_options):
        return False
    out_fs, out_root = storage.open_url(config.output, config.output_options)
    if not out_fs.isdir(out_root):
        raise ConfigError(f"OUTPUT {config.output!r} is a file; it must be a folder or prefix")
    if not config.overwrite:
        check_resumable(out_fs, out_root, config)
        return True
    for path in previous_outputs(out_fs, out_root):
        out_fs.rm(path, recursive=True)
    return False


def _nonempty_listing(config: PrepareConfig) -> Iterator[InputRef]:
    """The listing of INPUT, after checking that it has a first input (before anything is written)."""
    in_fs, in_root = storage.open_url(config.input, config.storage_options)
    inputs = iter_inputs(in_fs, in_root, config.extensions)
    first = next(inputs, None)
    if first is None:
        raise JobError(
            f"no input found in {config.input!r} (extensions {' '.join(config.extensions)}); nothing was written"
        )
    return itertools.chain([first], inputs)


def run_shards(batches: Iterable[tuple[int, list[InputRef]]], config: PrepareConfig) -> Iterator[ShardStats]:
    """Run :func:`process_shard` as a Ray task per ``(shard index, inputs)``, at most ``max_tasks`` at a time.

    Yields each shard's stats as it finishes (completion order). The next batch is drawn from
    ``batches`` only when a task slot is free, so the listing is consumed as fast as the shards
    are processed. Requires a connected Ray (:func:`init_ray`).

    Raises:
        JobError: a shard task failed (names the shard); tasks still running are cancelled.
    """
    import ray

    task = ray.remote(num_cpus=1)(process_shard)
    limit = config.max_tasks or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    config_ref = ray.put(config)
    pending: dict[ray.ObjectRef, int] = {}
    try:
        for index, batch in batches:
            if len(pending) >= limit:
                yield from _finished(pending)
            pending[task.remote(index, batch, config_ref)] = index
        while pending:
            yield from _finished(pending)
    finally:
        for ref in pending:
            ray.cancel(ref)


def _finished(pending: dict) -> Iterator[ShardStats]:
    """Wait for at least one task of ``pending``; yield the stats of those done, removing them."""
    import ray

    done: list = []
    while not done:  # a timeout, so that signals (SIGTERM, the stall watchdog) are handled within a second
        done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
    for ref in done:
        index = pending.pop(ref)
        try:
            yield ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise JobError(f"shard {index} failed: {exc}") from exc
