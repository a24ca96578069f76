"""The Ray Data graph of the colorize job, and the driver loop that follows it.

::

    listing dataset (listing tasks on the cluster, streamed: listing_tasks.py)
      -> map_batches(prepare_batch)   CPU tasks: read, decode, classify, small L   (decode.py)
      -> map_batches(Predictor)       actor pool, one generator per actor: ab -> chroma (predictor.py)
      -> map_batches(finish_batch)    CPU tasks: re-read, decode, merge, encode, write, manifest part (merge.py)
      -> driver: counts per status, progress

Every stage passes rows it does not work on (failed, skipped) through untouched, so each
input reaches the end exactly once and the counts add up to the number of inputs. Full-size
pixels exist only inside the last stage; between stages travel only the rows' metadata and
(S, S) planes: the inputs' bytes never pass through the actors (on GPU nodes), the merge
stage reads each input again.

Without GPUs the three stages run fused by default (``--stages fused``,
:mod:`archive_colorizer.colorize.fused`): one CPU task per batch does all three, with the
generator loaded once per worker process, so every core does codec and model work and no
image waits for an actor to start.

With ``--stages split`` (the default with ``--gpu``) the stages stay separate because tasks
and actors reserve different resources (by default 0.5 CPU per task, two per core, and 1 CPU
per actor); were they equal, Ray Data would fuse the decode stage into the actors, and
decoding would scale with the actors instead of the CPUs.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from archive_colorizer.colorize import listing_progress, listing_tasks, manifest
from archive_colorizer.colorize.decode import prepare_batch
from archive_colorizer.colorize.fused import colorize_batch, prewarm
from archive_colorizer.colorize.merge import finish_batch
from archive_colorizer.colorize.predictor import Predictor
from archive_colorizer.colorize.stage_settings import StageSettings


@dataclass(frozen=True)
class PoolSettings:
    """Resources of the pipeline's stages.

    Attributes:
        min_actors, max_actors: predictor actor pool bounds (equal for a fixed pool; max None: no
            fixed maximum, the pool grows with the GPUs that join, :mod:`.pool`).
        batch_size: images per generator forward pass.
        task_batch_size: images per CPU task batch and per manifest part.
        cpus_per_task, cpus_per_actor: CPUs reserved per task / actor.
        gpu: the actors run on GPUs.
        fused: one stage of CPU tasks that also run the generator (:mod:`.fused`), no actors.
        gpus_per_actor: the share of a GPU each actor reserves with ``gpu`` (0.5: two actors per
            GPU, so that one turns its batch into tensors while the other's forward pass runs).
        actor_concurrency: batches one actor works on at once, each on its own thread (2: the
            next batch's Arrow-to-tensor work and copy overlap the current forward pass).
    """

    min_actors: int
    max_actors: int | None
    batch_size: int
    task_batch_size: int
    cpus_per_task: float
    cpus_per_actor: float
    gpu: bool
    fused: bool = False
    gpus_per_actor: float = 1.0
    actor_concurrency: int = 1


def predictor_arguments(settings: StageSettings, pool: PoolSettings, model_url: str) -> dict[str, Any]:
    """Keyword arguments of :class:`~.predictor.Predictor` for this run's stages."""
    return {
        "model_url": model_url,
        "expected_sha256": settings.run.model_sha256,
        "model_size": settings.model_size,
        "use_gpu": pool.gpu,
        "num_threads": max(1, int(pool.cpus_per_task if pool.fused else pool.cpus_per_actor)),
        "storage_options": settings.storage_options,
    }


def prewarm_fused(settings: StageSettings, pool: PoolSettings, model_url: str) -> None:
    """With fused stages, start loading the generator into the worker processes (:func:`.fused.prewarm`).

    One task per fused task the cluster can run; each reserves a fused task's CPUs less a listing
    task's (which reserves none, :data:`.listing_tasks.LISTING_CPUS`), so the listing's tasks start
    beside them instead of after them. The job calls
    this before it plans the listing, so that the workers' torch import and model load overlap
    with the listing and Ray Data's start. Does nothing with split stages.
    """
    import ray

    if pool.fused:
        prewarm(
            predictor_arguments(settings, pool, model_url),
            max(0.0, pool.cpus_per_task - listing_tasks.LISTING_CPUS),
            min(256, int(ray.cluster_resources().get("CPU", 0) // pool.cpus_per_task)),
        )


def predictor_stage_options(pool: PoolSettings) -> dict[str, Any]:
    """``map_batches`` options of the predictor actor stage: its pool, CPUs, GPU share and concurrency.

    Returns:
        ``compute`` (an ``ActorPoolStrategy`` of ``pool``'s bounds, ``actor_concurrency`` calls
        of the predictor at once per actor, each on its own thread; every call holds its batch's
        activations, so GPU memory grows with it), ``num_cpus``, and ``num_gpus`` (``gpus_per_actor`` with ``gpu``, else
        None).
    """
    from ray.data import ActorPoolStrategy

    # Ray Data runs one call of the class at a time per actor unless true multi-threading is on;
    # the Predictor's own call holds the Arrow-to-tensor work that should overlap the forward pass
    # (its forward passes are read-only, and torch releases the GIL inside them).
    threads: dict[str, Any] = {"max_concurrent_calls_per_actor": pool.actor_concurrency}
    threads["enable_true_multi_threading"] = pool.actor_concurrency > 1
    if pool.min_actors == pool.max_actors:
        compute = ActorPoolStrategy(size=pool.min_actors, **threads)
    else:
        compute = ActorPoolStrategy(min_size=pool.min_actors, max_size=pool.max_actors, **threads)
    return {
        "compute": compute,
        "num_cpus": pool.cpus_per_actor,
        "num_gpus": pool.gpus_per_actor if pool.gpu else None,
    }


SPLIT_PREPARE_KWARGS: dict[str, Any] = {"keep_bytes": False}
"""The split decode stage's options: the inputs' bytes stay out of the rows that go through the
predictor actors (the merge stage reads each input again; :mod:`.decode`)."""


def build_dataset(listing_dataset: Any, settings: StageSettings, pool: PoolSettings, model_url: str):
    """The lazy Ray Data dataset of final manifest rows for the listing rows of ``listing_dataset``.

    Args:
        listing_dataset: a Ray Data dataset of listing rows (:data:`manifest.ROW_SCHEMA`,
            :mod:`.listing_tasks`), or a list of object refs of such tables.
    """
    import ray.data

    task_kwargs: dict[str, Any] = {"settings": settings}
    predictor_args = predictor_arguments(settings, pool, model_url)
    dataset = ray.data.from_arrow_refs(listing_dataset) if isinstance(listing_dataset, list) else listing_dataset
    # The stage functions take their settings through fn_kwargs; Ray's annotation of map_batches'
    # fn admits only one-argument callables, hence the ignores on fn below.
    if pool.fused:
        fused = dataset.map_batches(
            colorize_batch,  # type: ignore[arg-type]  # extra arguments come from fn_kwargs
            batch_format="pyarrow",
            batch_size=pool.task_batch_size,
            num_cpus=pool.cpus_per_task,
            fn_kwargs={"settings": settings, "predictor_args": predictor_args},
        )
        # Ray Data reserves half the CPUs for its operators in equal shares by default: the
        # listing's share would keep one colorize task of two waiting on a 2-CPU machine. The
        # fused stage is the only one that computes, so it may take every CPU the listing leaves.
        fused.context.op_resource_reservation_enabled = False
        return fused
    dataset = dataset.map_batches(
        prepare_batch,  # type: ignore[arg-type]  # extra arguments come from fn_kwargs
        batch_format="pyarrow",
        batch_size=pool.task_batch_size,
        num_cpus=pool.cpus_per_task,
        fn_kwargs=SPLIT_PREPARE_KWARGS | task_kwargs,
    )
    dataset = dataset.map_batches(
        Predictor,
        batch_format="pyarrow",
        batch_size=pool.batch_size,
        fn_constructor_kwargs=predictor_args,
        **predictor_stage_options(pool),
    )
    return dataset.map_batches(
        finish_batch,  # type: ignore[arg-type]  # extra arguments come from fn_kwargs
        batch_format="pyarrow",
        batch_size=pool.task_batch_size,
        num_cpus=pool.cpus_per_task,
        fn_kwargs=task_kwargs,
    )


@dataclass
class Progress:
    """What the driver knows while the job runs (the total is unknown until the listing ends).

    Attributes:
        counts: final rows received per status (``duplicate`` included).
        listed: inputs listed so far (from the listing progress actor).
        listing_done: the listing has ended (``listed`` is then the total).
        other_model: listed inputs finished by another generator, redone with this one.
        passed_over: inputs earlier runs finished, dropped at listing (no request, no row).
    """

    counts: Counter[str] = field(default_factory=Counter)
    listed: int = 0
    listing_done: bool = False
    other_model: int = 0
    passed_over: int = 0

    @property
    def received(self) -> int:
        return sum(self.counts.values())


def execute(
    dataset,
    progress_actor: Any,
    show_progress: bool,
    sink: Callable[[pa.Table], None] | None = None,
    poll_seconds: float = 1.0,
) -> Progress:
    """Run the dataset to the end, counting statuses, with a progress bar on stderr.

    The bar shows listed, done, failed and the rate; its total (and so an ETA) appears once
    the listing has ended.

    Args:
        progress_actor: the run's :class:`~.listing_progress.RunProgress` (or None).
        sink: called with every batch of final rows as it arrives (the run's manifest writer).

    Returns:
        The final :class:`Progress` (the listing actor read once more at the end).
    """
    from tqdm import tqdm

    state = Progress(Counter({status: 0 for status in manifest.STATUSES}))
    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=None,
        unit="img",
        desc="colorize",
        disable=not show_progress,
        file=sys.stderr,
        mininterval=0.5 if interactive else 15.0,
        dynamic_ncols=interactive,
    )
    started = last_poll = time.perf_counter()
    receipts = listing_progress.Receipts(progress_actor)
    with bar:
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            for status, count in zip(*_value_counts(batch.column("status")), strict=True):
                state.counts[status] += count
            if sink is not None:
                sink(batch)
            bar.update(batch.num_rows)
            receipts.add(batch.num_rows)  # room for the listing
            if time.perf_counter() - last_poll >= poll_seconds:
                _poll(progress_actor, state, bar)
                last_poll = time.perf_counter()
            _postfix(bar, state, time.perf_counter() - started)
        _poll(progress_actor, state, bar)
    return state


def _poll(progress_actor: Any, state: Progress, bar: Any) -> None:
    """Read the run's listing counts (1 s at most: progress must never hold the job up)."""
    if progress_actor is None:
        return
    import ray

    try:
        listing = ray.get(progress_actor.state(), timeout=1.0)
    except ray.exceptions.RayError:  # slow or lost: the final check says so if the counts differ
        return
    state.listed, state.other_model = listing["listed"], listing["other_model"]
    state.passed_over = listing.get("passed_over", 0)
    if listing["done"] and not state.listing_done:
        state.listing_done = True
        bar.total = state.listed
        bar.refresh()


def _postfix(bar: Any, state: Progress, elapsed: float) -> None:
    counts = state.counts
    bar.set_postfix(
        {
            "listed": f"{state.listed}{'' if state.listing_done else '+'}",
            "ok": counts[manifest.COLORIZED],
            "existing": counts[manifest.SKIPPED_EXISTING],
            "color": counts[manifest.SKIPPED_COLOR],
            "failed": counts[manifest.FAILED],
            "img/s": f"{state.received / max(elapsed, 1e-9):.1f}",
        },
        refresh=False,
    )


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()
