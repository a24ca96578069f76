"""The Ray Data graph of the colorize job, and the driver loop that follows it.

::

    listing chunks (driver, ray.put as listed)
      -> map_batches(prepare_batch)   CPU tasks: read, decode, classify, small L   (decode.py)
      -> map_batches(Predictor)       actor pool, one generator per actor: ab -> chroma (predictor.py)
      -> map_batches(finish_batch)    CPU tasks: re-decode, merge, encode, write, manifest part (merge.py)
      -> driver: counts per status, progress

Every stage passes rows it does not work on (failed, skipped) through untouched, so each
input reaches the end exactly once and the counts add up to the number of inputs. Full-size
pixels exist only inside the last stage; between stages travel the compressed bytes and
(S, S) planes.

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from archive_colorizer.colorize import manifest
from archive_colorizer.colorize.decode import prepare_batch
from archive_colorizer.colorize.fused import colorize_batch, prewarm
from archive_colorizer.colorize.merge import finish_batch
from archive_colorizer.colorize.predictor import Predictor
from archive_colorizer.colorize.settings import StageSettings


@dataclass(frozen=True)
class PoolSettings:
    """Resources of the pipeline's stages.

    Attributes:
        min_actors, max_actors: predictor actor pool bounds (equal for a fixed pool; max None: no
            fixed maximum, the pool grows with the GPUs that join, :mod:`.pool`).
        batch_size: images per generator forward pass.
        task_batch_size: images per CPU task batch and per manifest part.
        cpus_per_task, cpus_per_actor: CPUs reserved per task / actor.
        gpu: one GPU per actor.
        fused: one stage of CPU tasks that also run the generator (:mod:`.fused`), no actors.
    """

    min_actors: int
    max_actors: int | None
    batch_size: int
    task_batch_size: int
    cpus_per_task: float
    cpus_per_actor: float
    gpu: bool
    fused: bool = False


MAX_CHUNK_ROWS = 1024
"""Largest listing chunk (one object in Ray's object store, one block of the dataset)."""


def chunk_sizes(first: int, most: int = MAX_CHUNK_ROWS, per_size: int = 8) -> Iterator[int]:
    """Rows per listing chunk: ``first`` for ``per_size`` chunks, then doubling every ``per_size`` chunks up to ``most``.

    A small job spreads over many small blocks (every CPU gets work at once); a job of
    millions of inputs makes about a thousand times fewer objects than one per batch.
    """
    size = first
    while True:
        for _ in range(per_size):
            yield size
        size = min(most, size * 2)


def listing_chunks(
    rows: Iterable[dict[str, Any]], resume: manifest.ResumeIndex, first_chunk_rows: int
) -> Iterator[pa.Table]:
    """Group listing rows into Arrow tables (growing sizes, :func:`chunk_sizes`), marking inputs an earlier run finished."""
    iterator = iter(rows)
    for size in chunk_sizes(first_chunk_rows, max(MAX_CHUNK_ROWS, first_chunk_rows)):
        chunk = list(islice(iterator, size))
        if not chunk:
            return
        for row in chunk:
            if row["status"] == manifest.PENDING:
                row["previous_sha256"] = resume.lookup(row["input_url"], row["output_url"])
        yield manifest.to_table(chunk)


def build_dataset(block_refs: list[Any], settings: StageSettings, pool: PoolSettings, model_url: str):
    """The lazy Ray Data dataset of manifest rows for the listing blocks in ``block_refs``."""
    import ray.data
    from ray.data import ActorPoolStrategy

    task_args = {
        "batch_format": "pyarrow",
        "batch_size": pool.task_batch_size,
        "num_cpus": pool.cpus_per_task,
        "fn_kwargs": {"settings": settings},
    }
    predictor_args = {
        "model_url": model_url,
        "expected_sha256": settings.run.model_sha256,
        "model_size": settings.model_size,
        "use_gpu": pool.gpu,
        "num_threads": max(1, int(pool.cpus_per_task if pool.fused else pool.cpus_per_actor)),
        "storage_options": settings.storage_options,
    }
    dataset = ray.data.from_arrow_refs(block_refs)
    if pool.fused:
        import ray

        # The generator loads into every worker process while Ray Data starts (see fused.prewarm).
        prewarm(
            predictor_args,
            pool.cpus_per_task,
            min(256, int(ray.available_resources().get("CPU", 0) // pool.cpus_per_task)),
        )
        fused_args = dict(task_args, fn_kwargs={"settings": settings, "predictor_args": predictor_args})
        return dataset.map_batches(colorize_batch, **fused_args)
    if pool.min_actors == pool.max_actors:
        compute = ActorPoolStrategy(size=pool.min_actors)
    else:
        compute = ActorPoolStrategy(min_size=pool.min_actors, max_size=pool.max_actors)
    actor_args: dict[str, Any] = {"num_cpus": pool.cpus_per_actor}
    if pool.gpu:
        actor_args["num_gpus"] = 1
    dataset = dataset.map_batches(prepare_batch, **task_args)
    dataset = dataset.map_batches(
        Predictor,
        batch_format="pyarrow",
        batch_size=pool.batch_size,
        compute=compute,
        fn_constructor_kwargs=predictor_args,
        **actor_args,
    )
    return dataset.map_batches(finish_batch, **task_args)


def execute(dataset, total: int, progress: bool, sink: Callable[[pa.Table], None] | None = None) -> Counter[str]:
    """Run the dataset to the end, counting statuses, with a progress bar on stderr.

    Args:
        sink: called with every batch of manifest rows as it arrives (the run's manifest file).

    Returns:
        Rows per status; the values add up to ``total``.
    """
    from tqdm import tqdm

    counts: Counter[str] = Counter({status: 0 for status in manifest.STATUSES})
    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=total,
        unit="img",
        desc="colorize",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5 if interactive else 15.0,
        dynamic_ncols=interactive,
    )
    started = time.perf_counter()
    with bar:
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            for status, count in zip(*_value_counts(batch.column("status"))):
                counts[status] += count
            if sink is not None:
                sink(batch)
            bar.update(batch.num_rows)
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(
                {
                    "ok": counts[manifest.COLORIZED],
                    "existing": counts[manifest.SKIPPED_EXISTING],
                    "color": counts[manifest.SKIPPED_COLOR],
                    "failed": counts[manifest.FAILED],
                    "img/s": f"{sum(counts.values()) / elapsed:.1f}",
                },
                refresh=False,
            )
    return counts


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()
