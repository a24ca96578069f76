"""Ray Train at the edge: the TorchTrainer of a training run and where it keeps its files.

The run directory URL is Ray Train's experiment folder: ``RunConfig(storage_path=<parent>,
name=<last path component>)``. Resubmitting with the same run directory therefore lets Ray
Train V2 find the run's checkpoint snapshot and hand the latest checkpoint to the workers.
Object stores go through fsspec (so ``endpoint_url`` and the other storage options apply)
wrapped for pyarrow with ``FSSpecHandler``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.fs

from archive_colorizer.errors import ConfigError, JobError
from archive_colorizer.storage import is_local, open_url
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.data import pa_filesystem
from archive_colorizer.train.loop import train_loop_per_worker


@dataclass(frozen=True)
class RunStorage:
    """Where Ray Train keeps a run: ``storage_path/name`` on ``filesystem`` (``None``: local)."""

    storage_path: str
    name: str
    filesystem: pyarrow.fs.FileSystem | None = None


def run_storage(run_url: str, storage_options: Mapping[str, Any] | None = None) -> RunStorage:
    """Split a run directory URL into Ray Train's storage path, run name and filesystem.

    Raises:
        ConfigError: the URL has no folder name (e.g. a bare bucket ``s3://bucket``).
    """
    fs, path = open_url(run_url, storage_options)
    parent, name = posixpath.split(path.rstrip("/"))
    if not name or not parent:
        raise ConfigError(f"--run {run_url!r} must name a folder below a parent, e.g. s3://bucket/runs/places365-a")
    if is_local(fs):
        return RunStorage(parent, name)
    return RunStorage(parent, name, pa_filesystem(fs))


def build_trainer(
    config: TrainConfig,
    datasets: Mapping[str, Any],
    staging_dir: str | None = None,
    heartbeat: str | None = None,
    train_rows: int | None = None,
):
    """The ``TorchTrainer`` of a run.

    Args:
        config: the resolved config (absolute local paths).
        datasets: ``{"train": ..., "val": ...}`` from :mod:`archive_colorizer.train.data`;
            "train" (every epoch, one after another) is split across the workers, "val" is
            read whole by rank 0.
        train_rows: training images per epoch; each worker's epoch is ``train_rows // workers
            // batch_size`` steps. None: the "train" dataset is one epoch, read to its end.
        staging_dir: local folder for checkpoints in local mode (``workers=0``).
        heartbeat: key of the :class:`archive_colorizer.stopping.Heartbeat` the workers beat
            per step (the driver's stall watchdog reads it); ``None``: none.
    """
    import ray
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    storage = run_storage(config.run, config.storage_options)
    # Storage options may hold credentials: they travel as an object reference, so that Ray
    # Train's run records (which copy train_loop_config) never contain them.
    loop_config = {
        "config": config.model_dump(exclude={"storage_options"}),
        "storage_options": ray.put(dict(config.storage_options)),
        "staging_dir": staging_dir,
        "heartbeat": heartbeat,
        "train_rows": train_rows,
    }
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=config.workers, use_gpu=config.gpu, resources_per_worker={"CPU": config.cpus_per_worker}
        ),
        run_config=RunConfig(
            name=storage.name,
            storage_path=storage.storage_path,
            storage_filesystem=storage.filesystem,
            checkpoint_config=CheckpointConfig(num_to_keep=config.keep_checkpoints),
            failure_config=FailureConfig(max_failures=config.max_failures),
        ),
        datasets=dict(datasets),
        dataset_config=DataConfig(
            datasets_to_split=["train"], execution_options={"val": ExecutionOptions(preserve_order=True)}
        ),
    )


def fit(trainer):
    """``trainer.fit()``, with Ray Train's failure turned into a :class:`JobError` naming the cause.

    Returns:
        Ray Train's ``Result``.
    """
    import ray.train

    try:
        return trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise JobError(f"training failed: {exc}") from exc


def startup_wait_reason(config: TrainConfig, resources: Mapping[str, float]) -> str:
    """What a run that has not made its first step waits for, from the cluster's resources.

    Args:
        config: the run's config (workers, ``gpu``, ``cpus_per_worker``).
        resources: ``ray.cluster_resources()``: the totals of the nodes that have joined.

    Returns:
        One sentence: GPUs or CPUs the cluster lacks (nodes pending), else workers not ready.
    """
    workers = max(config.workers, 1)
    if config.gpu and resources.get("GPU", 0) < workers:
        return (
            f"{workers} training workers need {workers} GPUs and the cluster has {resources.get('GPU', 0):g} "
            "(GPU nodes still pending from the autoscaler, or no GPU node type configured)"
        )
    cpus = workers * config.cpus_per_worker
    if resources.get("CPU", 0) < cpus:
        return (
            f"{workers} training workers need {cpus:g} CPUs and the cluster has {resources.get('CPU', 0):g} "
            "(nodes still pending from the autoscaler)"
        )
    return (
        f"the cluster has the resources of the {workers} training workers but none has finished a first step "
        "(workers not ready: still starting, installing packages, importing torch, reading their first batches, "
        "or waiting for each other)"
    )


def startup_wait(config: TrainConfig) -> str:
    """:func:`startup_wait_reason` for the cluster this process is connected to."""
    import ray

    return startup_wait_reason(config, ray.cluster_resources())
