"""Where the rows come from: listing datasets that stream on the cluster.

Their progress is counted by :mod:`.listing_progress`, an input list's claims are held by
:mod:`.claim_shards`, an S3 prefix is cut into key ranges by :mod:`.key_ranges`, a IIIF
manifest's rows come from :mod:`.iiif_in`.

::

    tree:  plan_units (one Ray task) -> from_items(units) -> map_batches(list_units)  listing tasks
    list:  plan_chunks (driver: size, footer or manifest.json) -> from_items(chunks)
           -> map_batches(list_chunks)  listing tasks: their share of the chunks, claims in ClaimShard actors

A unit is a key range of an S3 prefix (any layout: cut at split keys sampled with ``LIST``
probes, :func:`~.key_ranges.plan_ranges`, or at the resume index's) or, on other filesystems, a
folder. Each listing task lists its unit a page at a time (one S3 ``LIST`` page,
:func:`archive_colorizer.folders.iter_s3_keys` / :func:`~archive_colorizer.folders.iter_folder_pages`),
at most ``listing_tasks`` at once, and yields its rows as it goes; the dataset is cut into blocks
of one task batch (``repartition(target_num_rows_per_block=...)``, streaming), so the first images
are colorized while the listing goes on; the driver holds no path. Inputs earlier runs finished are
dropped as they are listed, against the range's shard of the resume index (:func:`drop_finished`,
:mod:`.resume`): no request, no row, counted as passed over. A :class:`ListingProgress` actor counts what was
listed per unit (idempotent per unit, so a retried task does not count twice) and knows when
the listing has ended: the driver's progress bar and the final check that the counts add up
read it. The driver process keeps one such actor for all its runs on the same Ray (each run's
counts under its run id, dropped when the run ends): a new actor is a new worker process,
about a second before a listing task may end, and a second job on a warm Ray need not pay it.

Duplicates. A tree listing cannot repeat an input. An input list can: its listing tasks claim
each entry's input in the :class:`ClaimShard` actors (:mod:`.claims`: sharded by key, 16 bytes
per input, logged so that a restarted shard remembers) and mark an entry whose input another
entry holds ``duplicate`` (counted, never written). Output clashes follow a rule that does not
depend on the order of the entries (:func:`.input_rows.list_entry_rows`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from archive_colorizer import compat, folders, gates, storage
from archive_colorizer.colorize import claims, input_lists, input_rows, key_ranges, listing_progress, manifest, resume
from archive_colorizer.colorize.claim_shards import ListClaims, start_claims
from archive_colorizer.colorize.listing_progress import ListRunProgress, RunAhead, _progress_actor, run_progress

MAX_CHUNK_ROWS = listing_progress.CHUNK_ROWS
"""Most rows a listing task holds before it yields them (one folder may be larger)."""
LISTING_BUFFER_BLOCKS = 256
"""Blocks a listing task may have waiting for the colorize tasks before it pauses."""
LISTING_CPUS = 0.0
"""CPUs a listing task reserves: none. It mostly waits on LIST requests or for room to hand rows on
(a tree's or an input list's listing lives as long as the job), and any reservation kept a whole
colorize task from starting beside it on a machine of whole CPUs: on 2 CPUs, 0.25 left room for one
1-CPU colorize task, not two. How many listing tasks run at once is bounded by their number
(:func:`listing_tasks_for_cluster`, :func:`list_tasks`), not by CPUs."""
LISTING_BLOCK_BYTES = 256 * 1024
"""Ray Data's ``target_max_block_size`` for the job's datasets: a task's output leaves it once this
much is buffered (Ray's default, 128 MiB, is about 400,000 listing rows: a big folder's rows would
all wait in its listing task until the folder's whole listing had ended)."""
LISTING_REMOTE_ARGS: dict[str, Any] = {
    "num_cpus": LISTING_CPUS,
    compat.STREAMING_GENERATOR_BUFFER_OPTION: 2 * LISTING_BUFFER_BLOCKS,
}
"""Ray task options of the listing operators: the listing and its cut into small blocks must have
the same options, or Ray Data does not fuse them into one task (:func:`_small_blocks`)."""


@dataclass(frozen=True, kw_only=True)
class ListingContext:
    """What a listing task needs (picklable: URLs, options, object refs and an actor handle).

    Attributes:
        input_url, output_url: INPUT and OUTPUT.
        extensions: input suffixes (lower case, with the dot).
        requested_format: ``auto``, ``jpeg``, ``png`` or ``tiff``.
        model_sha256: the generator of this run.
        keep_other_models: an input another generator finished counts as finished.
        first_chunk_rows: rows per block of the listing dataset (one task batch).
        index: the run's :class:`~.resume.ShardedIndex` (finished inputs), or None (``--overwrite``,
            or nothing finished yet).
        progress: this run's :class:`RunProgress` (set by :func:`tree_dataset` / :func:`list_dataset`), or None.
        storage_options: fsspec options of INPUT and OUTPUT.
        run_id: the run's id, the key of its counts in the :class:`ListingProgress` actor.
        listing_tasks: listing tasks at once; None: :func:`listing_tasks_for_cluster`.
        page_names: keys per ``LIST`` page (S3 answers at most 1,000; tests use fewer).
    """

    input_url: str
    output_url: str
    extensions: tuple[str, ...]
    requested_format: str
    model_sha256: str
    keep_other_models: bool = False
    first_chunk_rows: int = 16
    index: Any = None
    progress: Any = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    run_id: str = "run"
    listing_tasks: int | None = None
    page_names: int = folders.LIST_PAGE_NAMES

    def roots(self) -> input_rows.Roots:
        return input_rows.Roots.resolve(self.input_url, self.output_url, self.storage_options)


def drop_finished(rows: list[dict[str, Any]], context: ListingContext) -> tuple[list[dict[str, Any]], int, int]:
    """The rows still to do: pending rows an earlier run finished are dropped (no request, no row).

    Returns:
        ``(rows kept, kept because another generator finished them, dropped)``. An input finished
        by another generator is kept (colorized again) unless ``keep_other_models``.
    """
    index = context.index
    if index is None:
        return rows, 0, 0
    kept, other, dropped = [], 0, 0
    for row in rows:
        previous = index.lookup(row["input_url"], row["output_url"]) if row["status"] == manifest.PENDING else None
        if previous is None:
            kept.append(row)
        elif previous and previous != context.model_sha256 and not context.keep_other_models:
            other += 1
            kept.append(row)
        else:
            dropped += 1
    return kept, other, dropped


def _report(context: ListingContext, unit: str, counts: tuple[int, int, int], done: bool) -> None:
    """Tell the progress actor what ``unit`` has listed so far, ``(rows, other model, passed over)``;
    the last report (``done``) waits until the actor has it, so a listing task never ends with its
    count still in flight.

    A report still queued in a worker process is lost with its node, and a task that has ended is
    not run again: the driver would then see fewer inputs listed than rows came back. Waiting for
    the final report ties it to the task: if the node goes first, the task is retried and reports
    the unit again (the actor sets a unit's count, it does not add).
    """
    if context.progress is None:
        return
    pending = context.progress.report(unit, *counts, done)
    if done:
        import ray

        ray.get(pending)


def _unit_pages(roots: input_rows.Roots, unit: dict[str, Any], context: ListingContext):
    """(unit label, its pages of rows): a key range of an S3 prefix or a folder (recursive or not)."""
    folder, recursive = str(unit["folder"]), bool(unit["recursive"])
    if unit["ranged"]:
        key_range = key_ranges.KeyRange(unit["after"] or None, unit["last"] or None)
        pages = key_ranges.iter_range_rows(
            roots, key_range, context.extensions, context.requested_format, context.page_names
        )
        return key_range.label(folder), pages
    pages = input_rows.iter_unit_rows(
        roots, folder, recursive, context.extensions, context.requested_format, context.page_names
    )
    return f"{folder}\0{recursive}", pages


def list_units(batch: dict[str, Any], context: ListingContext) -> Iterator[pa.Table]:
    """Ray Data batch function: listing units (``folder``, ``recursive``, ``ranged``, ``after``,
    ``last`` columns) -> tables of listing rows, finished inputs dropped (:func:`drop_finished`)."""
    roots, ahead = context.roots(), RunAhead(context.progress)
    for i in range(len(batch["folder"])):
        unit_label, pages = _unit_pages(roots, {name: batch[name][i] for name in batch}, context)
        listed = other = passed = 0
        for rows in pages:
            for start in range(0, len(rows), MAX_CHUNK_ROWS):
                chunk, chunk_other, chunk_passed = drop_finished(rows[start : start + MAX_CHUNK_ROWS], context)
                other, passed, listed = other + chunk_other, passed + chunk_passed, listed + len(chunk)
                _report(context, unit_label, (listed, other, passed), False)
                if chunk:
                    yield manifest.to_table(chunk)
                    ahead.handed_on(len(chunk))
        _report(context, unit_label, (listed, other, passed), True)


def list_chunks(
    batch: dict[str, Any], context: ListingContext, claimed: ListClaims, inventory: bool
) -> Iterator[pa.Table]:
    """Ray Data batch function: groups of input-list chunks (``chunks`` column: a JSON list of
    :meth:`.input_lists.ListChunk.to_json`) -> tables of listing rows, a batch of entries at a time.

    An inventory's entries outside INPUT or without one of the extensions get no row (the
    inventory lists the whole bucket); an input list's entries each get one.
    """
    roots, ahead = context.roots(), RunAhead(context.progress)
    prefix = roots.input_url.rstrip("/") + "/"
    for text in (chunk for group in batch["chunks"] for chunk in json.loads(str(group))):
        chunk = input_lists.ListChunk.from_json(text)
        unit, listed, other, passed, entry = f"list#{chunk.index}", 0, 0, 0, 0
        gates.hold("colorize.list", f"{chunk.url}#{chunk.index}")
        for entries in input_lists.read_chunk(chunk, context.storage_options):
            if inventory:
                entries = [e for e in entries if input_lists.inventory_entry_wanted(e, prefix, context.extensions)]
            positions = [input_lists.position(chunk.index, entry + i) for i in range(len(entries))]
            entry += len(entries)
            rows = input_rows.list_entry_rows(roots, entries, context.requested_format, context.extensions)
            claimed.mark_duplicates(rows, positions, chunk.index)  # every entry, finished ones too
            rows, chunk_other, chunk_passed = drop_finished(rows, context)
            other, passed = other + chunk_other, passed + chunk_passed
            for start in range(0, len(rows), MAX_CHUNK_ROWS):
                listed += len(rows[start : start + MAX_CHUNK_ROWS])
                _report(context, unit, (listed, other, passed), False)
                yield manifest.to_table(rows[start : start + MAX_CHUNK_ROWS])
                ahead.handed_on(len(rows[start : start + MAX_CHUNK_ROWS]))
        _report(context, unit, (listed, other, passed), True)


RANGES_PER_TASK = 4
"""Key ranges planned per listing task: ranges differ in size (sampled split points), so more ranges
than tasks keep every task busy to the end."""


def listing_tasks_for_cluster() -> int:
    """Listing tasks at once when not set: two per CPU of the cluster (1 to 256; they mostly wait on ``LIST``)."""
    import ray

    return max(1, min(256, int(2 * ray.cluster_resources().get("CPU", 1))))


def plan_units(context: ListingContext, split_points: list[str] | None = None) -> list[dict[str, Any]]:
    """The listing units of INPUT (runs in a Ray task): on S3, key ranges of its prefix (cut at
    ``split_points``, URLs, when given: the resume index's; else sampled: :func:`~.key_ranges.plan_ranges`), about
    :data:`RANGES_PER_TASK` per listing task; elsewhere folders (:func:`~.input_rows.plan_units`).

    Returns:
        Units as dicts with ``folder``, ``recursive``, ``ranged``, ``after`` and ``last`` (a range's
        bounds, ``""`` for none: Ray Data's numpy batches have no None for strings).
    """
    roots = context.roots()
    if not folders.is_s3(roots.input_fs):
        return [
            {"folder": folder, "recursive": recursive, "ranged": False, "after": "", "last": ""}
            for folder, recursive in input_rows.plan_units(roots)
        ]
    bucket, prefix = key_ranges.s3_location(roots)
    base = storage.to_url(roots.input_fs, bucket) + "/"
    keys = [url[len(base) :] for url in split_points or [] if url.startswith(base + prefix)]
    if keys:
        ranges = key_ranges.ranges_from_points(keys)
    else:
        target = RANGES_PER_TASK * (context.listing_tasks or 1)
        ranges = key_ranges.plan_ranges(roots, target, context.page_names)
    folder = storage.to_url(roots.input_fs, f"{bucket}/{prefix}")
    units = [{"folder": folder, "recursive": True, "ranged": True, "after": r.after, "last": r.last} for r in ranges]
    return [{**unit, "after": unit["after"] or "", "last": unit["last"] or ""} for unit in units]


def _range_points(units: list[dict[str, Any]]) -> list[str]:
    """The split keys of planned key ranges (their ``last`` keys but the final range's)."""
    return [unit["last"] for unit in units if unit["ranged"] and unit["last"]]


def tree_dataset(context: ListingContext, resume_from: Any = None):
    """The listing dataset of INPUT (a folder or prefix): units planned in a Ray task, listed in Ray tasks.

    Args:
        resume_from: a :class:`~.resume.IndexPlan` (finished inputs of earlier runs), or None. Its
            shards follow the key ranges: a resumed S3 listing reuses the index's split points,
            a first one gives the index its own.

    Returns:
        ``(dataset, progress, index)``: the progress is a :class:`RunProgress`; :meth:`RunProgress.close` it
        when the run has read its final counts. The index is the run's :class:`~.resume.ShardedIndex`
        or None.

    Raises:
        ConfigError: INPUT does not exist.
    """
    import ray
    import ray.data

    _progress_actor()  # a new actor's process starts while the units are planned
    tasks = context.listing_tasks or listing_tasks_for_cluster()
    context = _with(context, listing_tasks=tasks)
    points = resume_from.split_points() if resume_from is not None else None
    units = ray.get(ray.remote(num_cpus=LISTING_CPUS)(plan_units).remote(context, points))
    index = None
    if resume_from is not None:
        index = resume_from.build(resume.url_bounds(_range_points(units), context.roots()))
    progress = run_progress(context.run_id, len(units), tasks, context.first_chunk_rows)
    context = _with(context, progress=progress, index=index)
    dataset: ray.data.Dataset = ray.data.from_items(units, override_num_blocks=max(1, len(units)))
    compute = ray.data.TaskPoolStrategy(size=max(1, min(tasks, len(units))))  # listing tasks at once
    dataset = dataset.map_batches(
        list_units,  # type: ignore[arg-type]  # Ray's annotation omits fn_kwargs' extra arguments
        batch_size=1,
        batch_format="numpy",
        num_cpus=LISTING_CPUS,
        compute=compute,
        fn_kwargs={"context": context},
    )
    return _small_blocks(dataset, context.first_chunk_rows, compute), progress, index


def _small_blocks(dataset: Any, rows: int, compute: Any = None) -> Any:
    """``dataset`` cut into blocks of ``rows`` rows, streamed, in the listing tasks themselves.

    Ray Data would merge the yielded tables up to 128 MiB blocks (about 600,000 rows) before
    any leaves a task; blocks of one task batch let the first images start at once. The
    repartition and the listing operator before it get the same task options
    (:data:`LISTING_REMOTE_ARGS`; Ray 2.60's ``repartition`` has no argument for them, and on its
    own it would reserve a whole CPU per task, a core the colorize tasks wait for), so Ray Data
    fuses the two into one task per listing unit instead of a listing task and a repartition task
    (:func:`archive_colorizer.compat.fuse_with_previous`: no public Ray API sets them).
    Blocks leave a listing task as it lists (:data:`LISTING_BLOCK_BYTES`), not when it ends.
    """
    dataset = dataset.repartition(target_num_rows_per_block=rows)
    # One context serves the whole job's dataset (the stages after the listing share it). The
    # fused stage's blocks are manifest rows, far below this; the split stages' blocks hold an
    # image's bytes each, which Ray Data's batching of the next stage puts together again.
    dataset.context.target_max_block_size = LISTING_BLOCK_BYTES
    return compat.fuse_with_previous(dataset, LISTING_REMOTE_ARGS, compute)


LIST_TASKS_PER_CPU = 1.0
"""An input list's listing tasks per CPU of the cluster, at most (:func:`list_tasks`)."""


def list_tasks(chunks: int, cpus: float) -> int:
    """How many listing tasks read an input list's chunks: :data:`LIST_TASKS_PER_CPU` per CPU of ``cpus``
    (at least 1, at most one per chunk).

    A chunk is a million entries, listed far faster than they are colorized, so its task spends
    most of its life paused with its output buffer full. With a task per chunk, 8 of the 100
    chunks of a 100M-entry list once took every CPU of a 2-CPU Ray (8 x 0.25 CPU, when listing
    tasks reserved CPUs) and no colorize task could start; they reserve none now
    (:data:`LISTING_CPUS`), but each still holds its buffered blocks and its share of the list's
    requests. So the chunks are dealt out to this many tasks, each reading its share one chunk
    after another (a ``concurrency`` limit on the listing would do the same, but Ray Data then no
    longer fuses the listing with its cut into small blocks, :func:`_small_blocks`).
    """
    return max(1, min(chunks, int(cpus * LIST_TASKS_PER_CPU)))


def list_dataset(list_url: str, context: ListingContext, resume_from: Any = None):
    """The listing dataset of an input list (.txt, .csv, .parquet, or an S3 Inventory's manifest.json).

    The list is cut into chunks (:func:`.input_lists.plan_chunks`, in the driver: a few requests)
    and each chunk is read by a listing task (:func:`list_chunks`), streaming; repeated inputs are
    found by the run's :class:`ClaimShard` actors, one per 10M entries of the list.

    Args:
        resume_from: as :func:`tree_dataset` (an input list's index has one shard, or a kept index's).

    Returns:
        ``(dataset, progress, index)`` as :func:`tree_dataset` (a :class:`ListRunProgress`: closing it
        also ends the claim shards).

    Raises:
        ConfigError: the list does not exist or cannot be read, or an inventory is of another bucket than INPUT.
    """
    import ray
    import ray.data

    from archive_colorizer.errors import ConfigError

    plan = input_lists.plan_chunks(list_url, context.storage_options)
    if plan.inventory and plan.chunks:
        bucket = plan.chunks[0].bucket
        if not (context.input_url + "/").startswith(f"s3://{bucket}/"):
            raise ConfigError(
                f"the S3 Inventory {list_url!r} lists bucket {bucket!r}; INPUT {context.input_url!r} must be "
                f"s3://{bucket} or a prefix in it"
            )
    _progress_actor()
    claimed = start_claims(context.run_id, claims.shard_count(plan.estimated_entries))
    tasks = list_tasks(len(plan.chunks), ray.cluster_resources().get("CPU", 1.0))
    shared = run_progress(context.run_id, len(plan.chunks), tasks, context.first_chunk_rows)
    progress = ListRunProgress(shared.actor, shared.run, shared.tasks, shared.block_rows, shared.tell_rows, claimed)
    index = resume_from.build([""]) if resume_from is not None else None
    context = _with(context, progress=shared, index=index)
    # Task t reads chunks t, t + tasks, t + 2 tasks, ...: every task starts at the head of the list.
    items = [{"chunks": json.dumps([c.to_json() for c in plan.chunks[t::tasks]])} for t in range(tasks)]
    dataset: ray.data.Dataset = ray.data.from_items(items, override_num_blocks=len(items))
    dataset = dataset.map_batches(
        list_chunks,  # type: ignore[arg-type]  # Ray's annotation omits fn_kwargs' extra arguments
        batch_size=1,
        batch_format="numpy",
        num_cpus=LISTING_CPUS,
        fn_kwargs={"context": context, "claimed": claimed, "inventory": plan.inventory},
    )
    return _small_blocks(dataset, context.first_chunk_rows), progress, index


def _with(context: ListingContext, **changes: Any) -> ListingContext:
    from dataclasses import replace

    return replace(context, **changes)
