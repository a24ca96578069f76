"""Where the rows come from: listing datasets that stream on the cluster, and their progress.

::

    tree:  plan_units (one Ray task) -> from_items(units) -> map_batches(list_units)  listing tasks
    list:  plan_chunks (driver: size, footer or manifest.json) -> from_items(chunks)
           -> map_batches(list_chunks)  listing tasks: their share of the chunks, claims in ClaimShard actors

A unit is a key range of an S3 prefix (any layout: cut at split keys sampled with ``LIST``
probes, :func:`~.input_rows.plan_ranges`, or at the resume index's) or, on other filesystems, a
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
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from archive_colorizer import compat, folders, gates, storage
from archive_colorizer.colorize import claims, input_lists, input_rows, manifest, resume

MAX_CHUNK_ROWS = 1024
"""Most rows a listing task holds before it yields them (one folder may be larger)."""
LISTING_BUFFER_BLOCKS = 256
"""Blocks a listing task may have waiting for the colorize tasks before it pauses."""
LISTING_CPUS = 0.25
"""CPUs a listing task reserves: it mostly waits on LIST requests."""
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
        key_range = input_rows.KeyRange(unit["after"] or None, unit["last"] or None)
        pages = input_rows.iter_range_rows(
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
    roots = context.roots()
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
        _report(context, unit_label, (listed, other, passed), True)


def list_chunks(
    batch: dict[str, Any], context: ListingContext, claimed: ListClaims, inventory: bool
) -> Iterator[pa.Table]:
    """Ray Data batch function: groups of input-list chunks (``chunks`` column: a JSON list of
    :meth:`.input_lists.ListChunk.to_json`) -> tables of listing rows, a batch of entries at a time.

    An inventory's entries outside INPUT or without one of the extensions get no row (the
    inventory lists the whole bucket); an input list's entries each get one.
    """
    roots = context.roots()
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
        _report(context, unit, (listed, other, passed), True)


class ClaimShard:
    """Ray actor: one shard of an input list's claims (:class:`.claims.ClaimTable`), logged on its node.

    Created with ``max_restarts=-1`` and ``max_task_retries=-1``: a shard whose process dies is
    started again with the same log (its claims read back) and the calls it had not answered are
    sent again.
    """

    def __init__(self, log_path: str, shard: int) -> None:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self.table = claims.ClaimTable(log_path)
        self.shard = shard

    def claim(self, keys: np.ndarray, positions: np.ndarray, chunk: int) -> np.ndarray:
        """:meth:`.claims.ClaimTable.claim`; hold point ``colorize.claim`` (key ``<shard>:<chunk>``) after
        the claims are logged, before the answer leaves."""
        holds = self.table.claim(keys, positions)
        gates.hold("colorize.claim", f"{self.shard}:{chunk}")
        return holds

    def info(self) -> dict[str, int]:
        """``pid``, ``inputs`` (distinct inputs claimed) and ``bytes`` (their size in memory)."""
        return {"pid": os.getpid(), "inputs": len(self.table), "bytes": self.table.nbytes()}

    def close(self) -> None:
        """Remove the shard's log, and the run's folder of logs once it is empty (its run has ended)."""
        if self.table.log_path and os.path.exists(self.table.log_path):
            os.remove(self.table.log_path)
            try:
                os.rmdir(os.path.dirname(self.table.log_path))
            except OSError:
                pass  # another shard's log is still there: the last shard removes the folder


@dataclass(frozen=True)
class ListClaims:
    """The :class:`ClaimShard` actors of one run's input list (picklable: goes to the listing tasks).

    Attributes:
        shards: the actors' handles; key ``k`` is shard ``k % len(shards)``'s.
    """

    shards: tuple[Any, ...]

    def mark_duplicates(self, rows: list[dict[str, Any]], positions: list[int], chunk: int) -> int:
        """Claim the rows' inputs at ``positions``; mark ``duplicate`` those another entry holds. Returns how many."""
        import ray

        if not rows:
            return 0
        keys = np.array([claims.input_key(row["input_url"]) for row in rows], dtype=np.uint64)
        where = np.asarray(positions, dtype=np.uint64)
        shard_of = keys % np.uint64(len(self.shards))
        parts = [np.flatnonzero(shard_of == shard) for shard in range(len(self.shards))]
        pending = [
            (part, self.shards[shard].claim.remote(keys[part], where[part], chunk))
            for shard, part in enumerate(parts)
            if len(part)
        ]
        repeated = 0
        for part, answer in pending:
            for i in part[~ray.get(answer)]:
                rows[i]["status"] = manifest.DUPLICATE
                repeated += 1
        return repeated

    def info(self) -> list[dict[str, int]]:
        """Each shard's :meth:`ClaimShard.info`."""
        import ray

        return ray.get([shard.info.remote() for shard in self.shards])

    def close(self) -> None:
        """Remove the shards' logs and end the actors."""
        import ray

        try:
            ray.get([shard.close.remote() for shard in self.shards], timeout=30)
        except (ray.exceptions.RayError, TimeoutError):
            pass  # a log left in the temporary folder is all that is lost
        for shard in self.shards:
            ray.kill(shard)


def start_claims(run: str, shards: int) -> ListClaims:
    """``shards`` new :class:`ClaimShard` actors for run ``run`` on the driver's node, logs in its temporary folder."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    folder = os.path.join(tempfile.gettempdir(), "archive-colorizer-claims", f"{run}-{uuid.uuid4().hex[:8]}")
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, scheduling_strategy=here)(ClaimShard)  # type: ignore[call-overload]
    return ListClaims(tuple(actor.remote(os.path.join(folder, f"shard-{i}.bin"), i) for i in range(shards)))


@dataclass
class _RunCounts:
    units: int | None = None
    listed: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)


class ListingProgress:
    """Ray actor: inputs listed per run and unit (set, not added: a retried task reports the same
    unit again). One actor serves the runs of one driver process (:func:`run_progress`)."""

    def __init__(self) -> None:
        self.counts: dict[str, _RunCounts] = {}

    def start(self, run: str, units: int | None) -> None:
        """Begin (or re-begin) counting run ``run``, whose listing has ``units`` units (None: unknown)."""
        self.counts.setdefault(run, _RunCounts()).units = units

    def report(self, run: str, unit: str, listed: int, other: int, passed: int, done: bool) -> None:
        """Set ``unit``'s counts: rows listed, of them redone for another generator, finished inputs passed over."""
        counts = self.counts.setdefault(run, _RunCounts())
        counts.listed[unit] = (listed, other, passed)
        if done:
            counts.finished.add(unit)

    def state(self, run: str) -> dict[str, Any]:
        """``listed`` (rows), ``other_model`` (finished by another generator, redone), ``passed_over``
        (finished by earlier runs: no row), ``done`` (listing ended)."""
        counts = self.counts.get(run, _RunCounts())
        return {
            "listed": sum(n for n, _, _ in counts.listed.values()),
            "other_model": sum(o for _, o, _ in counts.listed.values()),
            "passed_over": sum(p for _, _, p in counts.listed.values()),
            "done": counts.units is not None and len(counts.finished) >= counts.units,
        }

    def forget(self, run: str) -> None:
        """Drop run ``run``'s counts (its job has read them)."""
        self.counts.pop(run, None)

    def runs(self) -> int:
        """How many runs the actor holds counts for."""
        return len(self.counts)


@dataclass(frozen=True)
class RunProgress:
    """One run's share of the :class:`ListingProgress` actor (picklable: goes to the listing tasks).

    Attributes:
        actor: the actor's handle.
        run: the key of this run's counts (the run id).
    """

    actor: Any
    run: str

    def report(self, unit: str, listed: int, other: int, passed: int, done: bool) -> Any:
        """Send what ``unit`` has listed so far; returns the call's ``ObjectRef``."""
        return self.actor.report.remote(self.run, unit, listed, other, passed, done)

    def state(self) -> Any:
        """``ObjectRef`` of the run's :meth:`ListingProgress.state`."""
        return self.actor.state.remote(self.run)

    def close(self) -> None:
        """Drop the run's counts in the actor (without waiting)."""
        self.actor.forget.remote(self.run)


@dataclass(frozen=True)
class ListRunProgress(RunProgress):
    """A :class:`RunProgress` of an input list that also ends the list's :class:`ListClaims` when closed."""

    claims: ListClaims | None = None

    def close(self) -> None:
        """Drop the run's counts and end its claim shards."""
        super().close()
        if self.claims is not None:
            self.claims.close()


RANGES_PER_TASK = 4
"""Key ranges planned per listing task: ranges differ in size (sampled split points), so more ranges
than tasks keep every task busy to the end."""


def listing_tasks_for_cluster() -> int:
    """Listing tasks at once when not set: two per CPU of the cluster (1 to 256; they mostly wait on ``LIST``)."""
    import ray

    return max(1, min(256, int(2 * ray.cluster_resources().get("CPU", 1))))


def plan_units(context: ListingContext, split_points: list[str] | None = None) -> list[dict[str, Any]]:
    """The listing units of INPUT (runs in a Ray task): on S3, key ranges of its prefix (cut at
    ``split_points``, URLs, when given: the resume index's; else sampled: :func:`~.input_rows.plan_ranges`), about
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
    bucket, prefix = input_rows.s3_location(roots)
    base = storage.to_url(roots.input_fs, bucket) + "/"
    keys = [url[len(base) :] for url in split_points or [] if url.startswith(base + prefix)]
    if keys:
        ranges = input_rows.ranges_from_points(keys)
    else:
        target = RANGES_PER_TASK * (context.listing_tasks or 1)
        ranges = input_rows.plan_ranges(roots, target, context.page_names)
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
    progress = run_progress(context.run_id, len(units))
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


LIST_CPU_SHARE = 0.25
"""Share of the cluster's CPUs an input list's listing tasks may reserve at once (:func:`list_tasks`)."""


def list_tasks(chunks: int, cpus: float) -> int:
    """How many listing tasks read an input list's chunks: :data:`LIST_CPU_SHARE` of ``cpus`` (at least 1).

    A chunk is a million entries, listed far faster than they are colorized, so its task spends
    most of its life paused with its output buffer full, still holding its CPU reservation. With
    a task per chunk, 8 of the 100 chunks of a 100M-entry list took every CPU of a 2-CPU Ray
    (8 x 0.25) and no colorize task could start: the first output never came. So the chunks are
    dealt out to this many tasks, each reading its share one chunk after another (a
    ``concurrency`` limit on the listing would do the same, but Ray Data then no longer fuses the
    listing with its cut into small blocks, :func:`_small_blocks`).
    """
    return max(1, min(chunks, int(cpus * LIST_CPU_SHARE / LISTING_CPUS)))


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
    shared = run_progress(context.run_id, len(plan.chunks))
    progress = ListRunProgress(shared.actor, shared.run, claimed)
    index = resume_from.build([""]) if resume_from is not None else None
    context = _with(context, progress=shared, index=index)
    tasks = list_tasks(len(plan.chunks), ray.cluster_resources().get("CPU", 1.0))
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


@dataclass
class _SharedActor:
    key: tuple[str, str]
    actor: Any
    answered: bool = False


_SHARED: list[_SharedActor] = []
"""This process's :class:`ListingProgress` actor on the Ray it is connected to (at most one)."""


def _progress_actor() -> _SharedActor:
    """This driver's :class:`ListingProgress` actor on the Ray it is connected to, created once.

    The actor lives on the head node (it must outlive a lost worker node; a driver connected from
    another machine's node may sit on a worker node), else the driver's, and as long as this process
    holds it; another Ray (driver node id) or job id gets a new one.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    runtime = ray.get_runtime_context()
    key = (runtime.get_node_id(), runtime.get_job_id())
    if not _SHARED or _SHARED[0].key != key:
        head = _head_node_id()
        here = NodeAffinitySchedulingStrategy(head or runtime.get_node_id(), soft=head is None)
        # Ray's annotation of scheduling_strategy omits NodeAffinitySchedulingStrategy, which it accepts.
        actor = ray.remote(num_cpus=0, scheduling_strategy=here)(ListingProgress).remote()  # type: ignore[call-overload]
        _SHARED[:] = [_SharedActor(key, actor)]
    return _SHARED[0]


def _head_node_id() -> str | None:
    """The id of the cluster's head node (it outlives the worker nodes), or None when none is marked."""
    import ray

    for node in ray.nodes():
        if node.get("Alive") and "node:__internal_head__" in node.get("Resources", {}):
            return str(node["NodeID"])
    return None


def run_progress(run: str, units: int | None, timeout: float = 30.0) -> RunProgress:
    """Start run ``run``'s counts, with ``units`` listing units (None: unknown), in this driver's actor.

    A new actor is not waited for (its process starts while the job goes on). An actor that
    answered an earlier run is asked to start this one and awaited (a millisecond's round trip),
    and replaced if it has died.

    Raises:
        JobError: the actor does not answer within ``timeout`` seconds.
    """
    import ray

    from archive_colorizer.errors import JobError

    shared = _progress_actor()
    pending = shared.actor.start.remote(run, units)
    if shared.answered:
        try:
            ray.get(pending, timeout=timeout)
        except ray.exceptions.RayActorError:
            _SHARED.clear()
            return run_progress(run, units, timeout)
        except ray.exceptions.GetTimeoutError as exc:
            raise JobError(f"the listing progress actor did not answer within {timeout:g} s") from exc
    shared.answered = True
    return RunProgress(shared.actor, run)


def _with(context: ListingContext, **changes: Any) -> ListingContext:
    from dataclasses import replace

    return replace(context, **changes)


@dataclass
class IiifSource:
    """The input manifests of a ``--input-iiif`` run, read by the driver (for the output manifests).

    Attributes:
        manifests: manifest id -> (label, output folder name, its canvases in order).
    """

    manifests: dict[str, tuple[str, str, list[Any]]] = field(default_factory=dict)


def iiif_rows(context: ListingContext, manifest_url: str) -> tuple[list[dict[str, Any]], IiifSource]:
    """A listing row per canvas of the IIIF manifest or collection at ``manifest_url`` (:mod:`archive_colorizer.iiif`).

    A canvas's input URL is its full-size image request; its output is
    ``OUTPUT/<manifest name>/<canvas number, 4 digits>.<format>`` and its row keeps ``canvas_id``.
    A canvas without an image is a failed row (reason ``no_image`` or ``not_an_image``; input URL
    the canvas id). An image that two canvases share is one input (the first canvas's row).

    Raises:
        StorageError: a manifest or collection cannot be read; ValueError: it is not IIIF.
    """
    from archive_colorizer import iiif

    roots, source = context.roots(), IiifSource()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    names: set[str] = set()
    labels: dict[str, str] = {}
    for canvas in iiif.read_canvases(manifest_url, context.storage_options, labels=labels):
        if canvas.manifest_id not in source.manifests:
            name = _unique(_slug(canvas.manifest_id), names)
            source.manifests[canvas.manifest_id] = (labels.get(canvas.manifest_id, name), name, [])
        _, name, canvases = source.manifests[canvas.manifest_id]
        canvases.append(canvas)
        if canvas.image_url is None:
            error = f"canvas {canvas.canvas_id} of {canvas.manifest_id}: no image to colorize ({canvas.error})"
            rows.append(manifest.new_row(canvas.canvas_id, status=manifest.FAILED, reason=canvas.error, error=error))
            rows[-1]["canvas_id"] = canvas.canvas_id
            continue
        if canvas.image_url in seen:
            continue
        seen.add(canvas.image_url)
        fmt = "JPEG" if context.requested_format == "auto" else context.requested_format.upper()
        relative = f"{name}/{len(canvases):04d}{input_rows.SUFFIX_BY_FORMAT[fmt]}"
        out_url = storage.to_url(roots.output_fs, storage.join(roots.output_path, relative))
        rows.append(
            manifest.new_row(canvas.image_url, output_url=out_url, output_format=fmt, canvas_id=canvas.canvas_id)
        )
    return rows, source


def _slug(manifest_id: str) -> str:
    """A folder name from a manifest id: its last path part without ``.json`` (``.../v3/manifest.json`` -> ``v3``)."""
    parts = [p for p in manifest_id.split("?")[0].rstrip("/").split("/") if p]
    last = parts[-1] if parts else "manifest"
    if last.lower() in ("manifest", "manifest.json") and len(parts) > 1:
        last = parts[-2]
    last = last.removesuffix(".json")
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in last).strip("._")
    return cleaned or "manifest"


def _unique(name: str, names: set[str]) -> str:
    candidate, number = name, 2
    while candidate in names:
        candidate, number = f"{name}-{number}", number + 1
    names.add(candidate)
    return candidate


def iiif_dataset(manifest_url: str, context: ListingContext, resume_from: Any = None):
    """The listing dataset of a IIIF manifest or collection: its rows, made by the driver, as one dataset.

    Returns:
        ``(dataset, progress, source, index)``: as :func:`tree_dataset`, plus the :class:`IiifSource`.
    """
    import ray
    import ray.data

    index = resume_from.build([""]) if resume_from is not None else None
    context = _with(context, index=index)
    rows, source = iiif_rows(context, manifest_url)
    rows, other, passed = drop_finished(rows, context)
    progress = run_progress(context.run_id, 1)
    ray.get(progress.report("iiif", len(rows), other, passed, True))
    size = context.first_chunk_rows
    tables = [manifest.to_table(rows[start : start + size]) for start in range(0, len(rows), size)]
    dataset = ray.data.from_arrow(tables or [manifest.ROW_SCHEMA.empty_table()])
    dataset.context.target_max_block_size = LISTING_BLOCK_BYTES
    return dataset, progress, source, index
