"""The fused CPU stage: one task per batch reads, decodes, predicts, merges and writes.

On machines without GPUs the generator is a small share of the work (the demo's generator
takes about 7 ms per image on one core, decoding, merging and encoding a 1.5 MP scan about
35 ms), so a pool of predictor actors that each reserve a core mostly waits, and the images
wait for the actor to start. Here every task runs the three stages of
:mod:`archive_colorizer.colorize.pipeline` in turn on its batch:
:func:`~archive_colorizer.colorize.decode.prepare_batch`, a
:class:`~archive_colorizer.colorize.predictor.Predictor`, and
:func:`~archive_colorizer.colorize.merge.finish_batch` (their row-level forms, so the rows
stay Python dicts from the listing row to the manifest row, one Arrow conversion each way); the
rows and the failure handling are theirs, unchanged. Each input is decoded once, at full resolution, and
the merge reuses that image (up to :data:`~archive_colorizer.colorize.decode.KEEP_PIXELS`
pixels per task; inputs beyond that are decoded small, then again by the merge). The
generator is loaded once per worker process and kept for the following tasks (and the
following jobs on the same Ray) while its URL, sha256 and size stay the same; torch runs one
thread per task.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from archive_colorizer.colorize import manifest
from archive_colorizer.colorize.decode import prepare_rows
from archive_colorizer.colorize.merge import finish_rows
from archive_colorizer.colorize.stage_settings import StageSettings

_CACHED: dict[tuple[Any, ...], Any] = {}
"""The worker process's predictor, keyed by (model URL, sha256, model size, threads): at most one."""


def cached_predictor(predictor_args: dict[str, Any]) -> Any:
    """The process's :class:`~archive_colorizer.colorize.predictor.Predictor` for ``predictor_args``, loaded once.

    Args:
        predictor_args: keyword arguments of ``Predictor`` (``model_url``, ``expected_sha256``,
            ``model_size``, ``num_threads``, ``storage_options``); ``use_gpu`` must be false.

    Raises:
        ArtifactError: the generator cannot be loaded or is not the one the driver checked.
    """
    from archive_colorizer.colorize.predictor import Predictor  # torch: only where the model runs

    key = (
        predictor_args["model_url"],
        predictor_args["expected_sha256"],
        predictor_args["model_size"],
        predictor_args.get("num_threads", 1),
    )
    if key not in _CACHED:
        _CACHED.clear()  # one generator per process: a new job's model replaces the last one
        _CACHED[key] = Predictor(**predictor_args)
    return _CACHED[key]


def warm(predictor_args: dict[str, Any]) -> bool:
    """Load the process's predictor (imports torch, reads the generator) and the chroma limit's
    compiled kernels (:func:`archive_colorizer.gamut.warm`); True once both are loaded."""
    from archive_colorizer import gamut

    cached_predictor(predictor_args)
    gamut.warm()
    return True


def prewarm(predictor_args: dict[str, Any], num_cpus: float, count: int) -> list[Any]:
    """Start ``count`` tasks that load the predictor into idle worker processes, without waiting.

    On a fresh Ray the first batch of each worker otherwise waits about 2 s for torch's import
    and the generator's load (and about 0.3 s for numba's import and the chroma limit's kernel);
    started as soon as the dataset is built, those seconds overlap with Ray Data's own start (and
    the listing of later chunks). There are as many as fused
    tasks fit the cluster, so they land in the worker processes those tasks reuse; each
    reserves ``num_cpus`` (the pipeline gives a fused task's share less a listing task's, so
    the listing is not held up behind them). A failure here is ignored: the fused task that
    needs the generator raises it.

    Returns:
        The tasks' object refs (nobody needs to wait on them).
    """
    import ray

    task = ray.remote(warm).options(num_cpus=num_cpus, max_retries=0)
    return [task.remote(predictor_args) for _ in range(max(0, count))]


def colorize_batch(batch: pa.Table, settings: StageSettings, predictor_args: dict[str, Any]) -> pa.Table:
    """Ray Data batch function of the fused stage: listing rows (:data:`manifest.ROW_SCHEMA`) in,
    final manifest rows (:data:`manifest.RESULT_SCHEMA`) out.

    Raises:
        ArtifactError: the generator cannot be loaded in this worker (systemic: the job stops);
            every other failure becomes a failed row.
    """
    decoded: dict[int, Any] = {}  # inputs decoded once at full size, reused by the merge
    rows = prepare_rows(batch.to_pylist(), settings, keep=decoded)
    rows = cached_predictor(predictor_args).predict_rows(rows)
    return manifest.to_table(finish_rows(rows, settings, decoded), manifest.RESULT_SCHEMA)
