"""Where the rows come from: listing datasets that stream on the cluster, and their progress.

::

    tree:  plan_units (one Ray task) -> from_items(units) -> map_batches(list_units)  listing tasks
    list:  read_text / read_csv / read_parquet(--input-list) -> map_batches(list_entries)
           -> map_batches(FirstSeen)  one actor: duplicates and output clashes

Each listing task walks its unit a folder at a time and yields its rows as it goes; the
dataset is cut into blocks of one task batch (``repartition(target_num_rows_per_block=...)``,
streaming), so the first images are colorized while the listing goes on; the driver holds no
path. Rows are marked against the resume index as they are listed
(:func:`mark_finished`, :mod:`.resume`). A :class:`ListingProgress` actor counts what was
listed per unit (idempotent per unit, so a retried task does not count twice) and knows when
the listing has ended: the driver's progress bar and the final check that the counts add up
read it.

Duplicates. A tree listing cannot repeat an input. An input list can: the :class:`FirstSeen`
actor keeps the 64-bit keys of the input URLs and the output URLs seen so far (about 150 bytes
per input in Python sets, in the actor, not the driver) and marks a repeated entry
``duplicate`` (counted, never written) and an entry whose output another entry already has
``failed`` (``output_clash``). Which of two clashing list entries wins follows the order rows
reach the actor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from archive_colorizer import storage
from archive_colorizer.colorize import listing, manifest, resume

MAX_CHUNK_ROWS = 1024
"""Most rows a listing task holds before it yields them (one folder may be larger)."""
LISTING_BUFFER_BLOCKS = 256
"""Blocks a listing task may have waiting for the colorize tasks before it pauses."""
LISTING_CPUS = 0.25
"""CPUs a listing task reserves: it mostly waits on LIST requests."""
LISTING_REMOTE_ARGS: dict[str, Any] = {
    "num_cpus": LISTING_CPUS,
    "_generator_backpressure_num_objects": 2 * LISTING_BUFFER_BLOCKS,
}
"""Ray task options of the listing operators: the listing and its cut into small blocks must have
the same options, or Ray Data does not fuse them into one task (:func:`_small_blocks`)."""


@dataclass(frozen=True)
class ListingContext:
    """What a listing task needs (picklable: URLs, options, object refs and an actor handle).

    Attributes:
        input_url, output_url: INPUT and OUTPUT.
        extensions: input suffixes (lower case, with the dot).
        requested_format: ``auto``, ``jpeg``, ``png`` or ``tiff``.
        model_sha256: the generator of this run.
        keep_other_models: an input another generator finished counts as finished.
        first_chunk_rows: rows per block of the listing dataset (one task batch).
        index_ref: ``ObjectRef`` of the :class:`~.resume.ResumeIndex`, or None.
        progress: handle of the :class:`ListingProgress` actor, or None.
    """

    input_url: str
    output_url: str
    extensions: tuple[str, ...]
    requested_format: str
    model_sha256: str
    keep_other_models: bool = False
    first_chunk_rows: int = 16
    index_ref: Any = None
    progress: Any = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    def roots(self) -> listing.Roots:
        return listing.Roots.resolve(self.input_url, self.output_url, self.storage_options)


def mark_finished(rows: list[dict[str, Any]], context: ListingContext) -> int:
    """Set ``previous_sha256`` on pending rows an earlier run finished; returns how many were finished
    by another generator and are therefore redone (0 with ``keep_other_models``)."""
    index = resume.get_index(context.index_ref)
    if not len(index):
        return 0
    other = 0
    for row in rows:
        if row["status"] != manifest.PENDING:
            continue
        previous = index.lookup(row["input_url"], row["output_url"])
        if previous and previous != context.model_sha256 and not context.keep_other_models:
            other += 1
            previous = None
        row["previous_sha256"] = previous
    return other


def _report(context: ListingContext, unit: str, listed: int, other: int, done: bool) -> None:
    """Tell the progress actor what ``unit`` has listed so far; the last report (``done``) waits
    until the actor has it, so a listing task never ends with its count still in flight.

    A report still queued in a worker process is lost with its node, and a task that has ended is
    not run again: the driver would then see fewer inputs listed than rows came back. Waiting for
    the final report ties it to the task: if the node goes first, the task is retried and reports
    the unit again (the actor sets a unit's count, it does not add).
    """
    if context.progress is None:
        return
    pending = context.progress.report.remote(unit, listed, other, done)
    if done:
        import ray

        ray.get(pending)


def list_units(batch: dict[str, Any], context: ListingContext) -> Iterator[pa.Table]:
    """Ray Data batch function: listing units (``folder``, ``recursive`` columns) -> tables of listing rows."""
    roots = context.roots()
    for folder, recursive in zip(batch["folder"], batch["recursive"], strict=True):
        unit = f"{folder}\0{bool(recursive)}"
        listed = other = 0
        for rows in listing.iter_unit_rows(
            roots, str(folder), bool(recursive), context.extensions, context.requested_format
        ):
            for start in range(0, len(rows), MAX_CHUNK_ROWS):
                chunk = rows[start : start + MAX_CHUNK_ROWS]
                other += mark_finished(chunk, context)
                listed += len(chunk)
                _report(context, unit, listed, other, False)
                yield manifest.to_table(chunk)
        _report(context, unit, listed, other, True)


def list_entries(batch: pa.Table, context: ListingContext, column: str) -> pa.Table:
    """Ray Data batch function: a batch of input-list entries -> listing rows."""
    entries = batch.column(column).to_pylist()
    rows = listing.list_entry_rows(context.roots(), entries, context.requested_format)
    other = mark_finished(rows, context)
    unit = hashlib.sha1("\n".join(str(e) for e in entries).encode()).hexdigest()
    _report(context, unit, len(rows), other, True)
    return manifest.to_table(rows)


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class FirstSeen:
    """Ray Data actor of input lists: marks repeated inputs ``duplicate`` and output clashes ``failed``."""

    def __init__(self) -> None:
        self.inputs: set[int] = set()
        self.outputs: dict[int, str] = {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        for row in rows:
            key = _key(row["input_url"])
            if key in self.inputs:
                row["status"] = manifest.DUPLICATE
                continue
            self.inputs.add(key)
            if row["status"] != manifest.PENDING:
                continue
            output = _key(row["output_url"])
            if output in self.outputs:
                error = listing.clash_error(row["input_url"], row["output_url"], self.outputs[output])
                manifest.fail(row, "output_clash", error)
            else:
                self.outputs[output] = row["input_url"]
        return manifest.to_table(rows)


class ListingProgress:
    """Ray actor: inputs listed per unit (set, not added: a retried task reports the same unit again)."""

    def __init__(self, units: int | None = None) -> None:
        self.units = units
        self.listed: dict[str, tuple[int, int]] = {}
        self.finished: set[str] = set()

    def report(self, unit: str, listed: int, other: int, done: bool) -> None:
        self.listed[unit] = (listed, other)
        if done:
            self.finished.add(unit)

    def state(self) -> dict[str, Any]:
        """``listed``, ``other_model`` (finished by another generator, redone), ``done`` (listing ended)."""
        return {
            "listed": sum(n for n, _ in self.listed.values()),
            "other_model": sum(o for _, o in self.listed.values()),
            "done": self.units is not None and len(self.finished) >= self.units,
        }


def _plan(context: ListingContext) -> list[tuple[str, bool]]:
    return listing.plan_units(context.roots())


def tree_dataset(context: ListingContext):
    """The listing dataset of INPUT (a folder or prefix): units planned in a Ray task, listed in Ray tasks.

    Returns:
        ``(dataset, progress actor)``.

    Raises:
        ConfigError: INPUT does not exist.
    """
    import ray
    import ray.data

    units = ray.get(ray.remote(num_cpus=LISTING_CPUS)(_plan).remote(context))
    progress = _progress_actor(len(units))
    context = _with(context, progress=progress)
    items = [{"folder": folder, "recursive": recursive} for folder, recursive in units]
    dataset: ray.data.Dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    dataset = dataset.map_batches(
        list_units,  # type: ignore[arg-type]  # Ray's annotation omits fn_kwargs' extra arguments
        batch_size=1,
        batch_format="numpy",
        num_cpus=LISTING_CPUS,
        fn_kwargs={"context": context},
    )
    return _small_blocks(dataset, context.first_chunk_rows), progress


def _small_blocks(dataset: Any, rows: int) -> Any:
    """``dataset`` cut into blocks of ``rows`` rows, streamed, in the listing tasks themselves.

    Ray Data would merge the yielded tables up to 128 MiB blocks (about 600,000 rows) before
    any leaves a task; blocks of one task batch let the first images start at once. The
    repartition and the listing operator before it get the same task options
    (:data:`LISTING_REMOTE_ARGS`; Ray 2.60's ``repartition`` has no argument for them, and on its
    own it would reserve a whole CPU per task, a core the colorize tasks wait for), so Ray Data
    fuses the two into one task per listing unit instead of a listing task and a repartition task.
    """
    dataset = dataset.repartition(target_num_rows_per_block=rows)
    cut = dataset._logical_plan.dag
    for operator in (cut, *cut.input_dependencies):
        remote_args = getattr(operator, "ray_remote_args", None)
        if isinstance(remote_args, dict):
            remote_args.update(LISTING_REMOTE_ARGS)
    return dataset


def list_dataset(list_url: str, context: ListingContext):
    """The listing dataset of an input list (.txt, .csv, .parquet), read by Ray Data's readers.

    Returns:
        ``(dataset, progress actor)``; the actor never says the listing is done (the list's length
        is known only when it has been read).

    Raises:
        ConfigError: the list does not exist or has no columns.
    """
    import ray
    import ray.data
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    from archive_colorizer.errors import ConfigError

    fs, path = storage.open_url(list_url, context.storage_options)
    if not fs.isfile(path):
        raise ConfigError(f"input list {list_url!r} does not exist")
    filesystem = PyFileSystem(FSSpecHandler(fs))
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix == "parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as handle:
            column = listing.pick_column(pq.read_schema(handle).names, list_url)
        dataset = ray.data.read_parquet(path, filesystem=filesystem).select_columns([column])
    elif suffix == "csv":
        with fs.open(path, "rb") as handle:
            header = handle.readline().decode("utf-8", "replace").strip()
        column = listing.pick_column([name.strip().strip('"') for name in header.split(",") if name.strip()], list_url)
        dataset = ray.data.read_csv(path, filesystem=filesystem).select_columns([column])
    else:
        column = "text"
        dataset = ray.data.read_text(path, filesystem=filesystem)
    progress = _progress_actor(None)
    context = _with(context, progress=progress)
    dataset = dataset.map_batches(
        list_entries,  # type: ignore[arg-type]  # Ray's annotation omits fn_kwargs' extra arguments
        batch_format="pyarrow",
        batch_size=4096,
        num_cpus=LISTING_CPUS,
        fn_kwargs={"context": context, "column": column},
    )
    dataset = _small_blocks(dataset, context.first_chunk_rows)
    dataset = dataset.map_batches(
        FirstSeen, batch_format="pyarrow", batch_size=None, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0
    )
    return dataset, progress


def _progress_actor(units: int | None) -> Any:
    """The :class:`ListingProgress` actor, on the driver's node (it must outlive a lost worker node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    # Ray's annotation of scheduling_strategy omits NodeAffinitySchedulingStrategy, which it accepts.
    return ray.remote(num_cpus=0, scheduling_strategy=here)(ListingProgress).remote(units)  # type: ignore[call-overload]


def _with(context: ListingContext, **changes: Any) -> ListingContext:
    from dataclasses import replace

    return replace(context, **changes)
