"""The train job's ``run``: resolve the run directory, fit with Ray Train, export the generator."""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from archive_colorizer.errors import ConfigError, JobError
from archive_colorizer.storage import is_local, join, open_url, read_bytes, retried_requests
from archive_colorizer.train.config import TrainConfig

CONFIG_NAME = "config.yaml"
GENERATOR_FOLDER = "generator"


@dataclass
class TrainResult:
    """Outcome of a training run.

    Attributes:
        run: the run directory URL.
        epochs: epochs completed in total (over all submissions).
        global_step: optimiser steps in total.
        checkpoint: URL of the checkpoint the generator was exported from (``None`` in local
            mode, ``workers=0``, which keeps no checkpoint).
        generator: URL of the exported generator artifact.
        metrics: the last ``metrics.jsonl`` row (``None`` if this submission trained nothing).
    """

    run: str
    epochs: int
    global_step: int
    checkpoint: str | None
    generator: str
    metrics: dict[str, Any] | None = field(default=None, repr=False)
    exit_code: int = 0


def _absolute(url: str | None, storage_options: dict[str, Any]) -> str | None:
    if url is None:
        return None
    fs, path = open_url(url, storage_options)
    return os.path.abspath(os.path.expanduser(path)) if is_local(fs) else url


def resolve(config: TrainConfig) -> TrainConfig:
    """The config with local paths made absolute (Ray workers run in other directories)."""
    options = config.storage_options
    return config.model_copy(
        update={
            name: _absolute(getattr(config, name), options)
            for name in ("data", "run", "export", "encoder_weights", "init_generator")
        }
    )


def check_resumable(config: TrainConfig) -> None:
    """Refuse to continue a run whose checkpoints have another architecture.

    Raises:
        ConfigError: ``<run>/config.yaml`` exists and differs in image size or network sizes.
    """
    import yaml

    fs, run = open_url(config.run, config.storage_options)
    try:
        previous = yaml.safe_load(read_bytes(fs, join(run, CONFIG_NAME))) or {}
    except FileNotFoundError:
        return
    changed = {k: (previous.get(k), v) for k, v in config.model_settings().items() if previous.get(k, v) != v}
    if changed:
        details = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
        raise ConfigError(
            f"run directory {config.run!r} holds a run with other model settings ({details}); "
            "use a new --run, or the same settings to continue it"
        )


def fit_workers(config: TrainConfig) -> TrainConfig:
    """The config with ``cpus_per_worker`` sized so the workers leave the data pipeline a CPU.

    See :func:`archive_colorizer.resources.fit_train_workers` (requires a connected Ray).

    Raises:
        ConfigError: an explicit ``--cpus-per-worker`` (or ``--workers``) that does not fit.
    """
    from archive_colorizer.resources import cluster_cpus, fit_train_workers

    explicit = "cpus_per_worker" in config.model_fields_set
    cpus = fit_train_workers(config.workers, config.cpus_per_worker, cluster_cpus(), explicit)
    return config if cpus == config.cpus_per_worker else config.model_copy(update={"cpus_per_worker": cpus})


def run(config: TrainConfig) -> TrainResult:
    """Train (or continue training) and export the generator. See the module docstring.

    Raises:
        ConfigError: unreadable shards, too few images, or a run directory of another model.
        JobError: training failed (more worker failures than ``max_failures``).
        StorageError: the run directory cannot be written.
    """
    from archive_colorizer.degrade import Degradation
    from archive_colorizer.export.job import export_checkpoint
    from archive_colorizer.runtime import init_ray
    from archive_colorizer.stopping import Heartbeat, Watchdog
    from archive_colorizer.train.data import training_datasets
    from archive_colorizer.train.finetune import read_parent
    from archive_colorizer.train.optim import check_encoder_weights
    from archive_colorizer.train.trainer import build_trainer, fit, startup_wait

    config = read_parent(resolve(config))  # --init-generator: kind, sizes and sha256 from the artifact
    retried = retried_requests()
    init_ray(config.ray_address, config.ray_connect_timeout)
    config = fit_workers(config)
    check_resumable(config)
    check_encoder_weights(config)  # a bad --encoder-weights fails here, not in every worker
    degradation = Degradation.named(config.degrade, config.storage_options)  # read once, here
    config.save(join(config.run, CONFIG_NAME), config.storage_options)
    data = training_datasets(
        config.data,
        workers=config.workers,
        batch_size=config.batch_size,
        image_size=config.image_size,
        max_val_images=config.max_val_images,
        storage_options=config.storage_options,
        materialize_train=config.materialize_train,
        epochs=config.epochs,
        degrade=degradation.describe()["operations"] if degradation else None,
        degrade_seed=config.seed,
    )
    staging = tempfile.mkdtemp(prefix="archive-colorizer-checkpoints-") if config.workers == 0 else None
    heartbeat = Heartbeat.new("train")
    try:
        with Watchdog(
            config.stall_timeout,
            "train",
            "no worker finished a training step",
            heartbeat.read,
            startup_timeout=config.startup_timeout,
            waiting_for=lambda: startup_wait(config),
        ):
            result = fit(build_trainer(config, data.datasets, staging, heartbeat.key, train_rows=data.train_rows))
        if result.checkpoint is None:
            raise JobError(f"training of {config.run!r} ended without a checkpoint")
        checkpoint = result.checkpoint.path if staging else join(config.run, posixpath.basename(result.checkpoint.path))
        out = config.export or join(config.run, GENERATOR_FOLDER)
        metadata = export_checkpoint(checkpoint, out, config.storage_options, {"checkpoint": None} if staging else None)
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    provenance = metadata["provenance"]
    retried = retried_requests() - retried
    note = (
        f"; object-store requests retried by the driver: {retried} (workers: storage_retries in metrics.jsonl)"
        if retried
        else ""
    )
    print(
        f"trained {provenance['epochs_trained']} epochs ({provenance['global_step']} steps); generator exported "
        f"to {out}{note}"
    )
    return TrainResult(
        config.run,
        provenance["epochs_trained"],
        provenance["global_step"],
        None if staging else checkpoint,
        out,
        result.metrics,
    )


__all__ = ["TrainResult", "run"]
