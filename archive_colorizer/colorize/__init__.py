"""The colorize job: batch-colorize an archive at full resolution with Ray Data.

Without GPUs each CPU task runs the whole per-image path (:mod:`.fused`); with ``--gpu`` the
decode tasks feed a pool of predictor actors and merge tasks follow (:mod:`.pipeline`).

``run(config)`` checks everything that would make the whole job fail before any Ray work
(unsafe INPUT/OUTPUT, a missing or corrupt generator, an OUTPUT that cannot be written), lists
the inputs, runs the pipeline (:mod:`.pipeline`), and writes ``OUTPUT/_summary.json``. Bad
inputs never stop it: each becomes a ``failed`` manifest row. Re-running the same command
resumes: finished inputs are ``skipped_existing``.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive_colorizer import __version__, storage
from archive_colorizer.colorize import listing, manifest, review
from archive_colorizer.colorize.pool import actor_pool_bounds
from archive_colorizer.colorize.settings import StageSettings
from archive_colorizer.errors import ArchiveColorizerError, ConfigError, JobError, StorageError

if TYPE_CHECKING:  # the CPU workers import this package; only the driver and the actors need torch
    from archive_colorizer.colorize import pipeline
    from archive_colorizer.config import ColorizeConfig
    from archive_colorizer.models.artifact import GeneratorArtifact

__all__ = ["ColorizeResult", "run"]


@dataclass
class ColorizeResult:
    """What a colorize run did.

    Attributes:
        exit_code: 0, or 1 when more inputs failed than ``max_failure_rate`` allows.
        message: one line saying how the run ended.
        counts: inputs per status (``colorized``, ``skipped_existing``, ``skipped_color``,
            ``failed``); they add up to ``inputs``.
        inputs: inputs of this run.
        wall_seconds: the run's wall time, listing included.
        images_per_second: inputs handled per second of wall time.
        output_url, manifest_url, summary_url: where the results are.
        model_sha256: the generator's sha256.
        run_id: id stamped on this run's manifest rows.
        summary: the content of ``_summary.json``.
        storage_retries: object-store requests that botocore retried in this run, on the
            driver and in the tasks (not those of the actors loading the model).
    """

    exit_code: int
    message: str
    counts: dict[str, int]
    inputs: int
    wall_seconds: float
    images_per_second: float
    output_url: str
    manifest_url: str
    summary_url: str
    model_sha256: str
    run_id: str
    summary: dict[str, Any] = field(repr=False, default_factory=dict)
    storage_retries: int = 0


def _model_size(config: ColorizeConfig, artifact: GeneratorArtifact) -> int:
    size = config.model_size or artifact.working_size
    multiple = 2**artifact.spec.num_downs
    if size % multiple:
        raise ConfigError(
            f"model_size {size} must be divisible by 2**num_downs = {multiple} of the generator at {artifact.url!r}"
        )
    return size


def _check_output_writable(config: ColorizeConfig) -> None:
    """Write the resolved (redacted) config to ``OUTPUT/_config.yaml``: proves OUTPUT is writable."""
    try:
        config.save(storage.join(config.output, manifest.CONFIG_NAME), config.storage_options)
    except (StorageError, OSError) as exc:
        raise JobError(f"output {config.output!r} is not writable: {exc}") from exc


def _pool(config: ColorizeConfig) -> pipeline.PoolSettings:
    import ray

    from archive_colorizer.colorize import pipeline

    resources = ray.cluster_resources()
    if config.gpu and not resources.get("GPU"):
        print(
            "archive-colorizer colorize: warning: --gpu but the Ray cluster has no GPU now; "
            "the predictor actors wait until GPU nodes join",
            file=sys.stderr,
        )
    low, high = actor_pool_bounds(config.actors, config.gpu, resources)
    fused = config.stages == "fused" or (config.stages == "auto" and not config.gpu)
    if fused and config.actors is not None:
        print(
            "archive-colorizer colorize: warning: --actors applies to split stages; these stages are fused "
            "(no --gpu): every CPU task runs the generator. Add --stages split for an actor pool.",
            file=sys.stderr,
        )
    cpus_per_task = config.cpus_per_task or (1.0 if fused else 0.5)
    return pipeline.PoolSettings(
        low, high, config.batch_size, config.task_batch_size, cpus_per_task, config.cpus_per_actor, config.gpu, fused
    )


def _list_inputs(config: ColorizeConfig, roots: listing.Roots, resume: manifest.ResumeIndex) -> tuple[list[Any], int]:
    """List the inputs into Ray's object store chunk by chunk; returns (block refs, number of inputs)."""
    import ray

    from archive_colorizer.colorize import pipeline

    if config.input_list:
        rows = listing.iter_from_list(roots, config.input_list, config.format, config.storage_options)
    else:
        rows = listing.iter_listed(roots, tuple(config.extensions), config.format)
    refs, total = [], 0
    for table in pipeline.listing_chunks(rows, resume, config.task_batch_size):
        refs.append(ray.put(table))
        total += table.num_rows
    return refs, total


def _stopped_by(exc: BaseException) -> str:
    """The most useful message in an exception raised through Ray: our own error if there is one."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, ArchiveColorizerError):
            return str(seen)
        visited.add(id(seen))
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else (seen.__cause__ or seen.__context__)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def run(config: ColorizeConfig) -> ColorizeResult:
    """Colorize every input below ``config.input`` into ``config.output``.

    Returns:
        A :class:`ColorizeResult`; ``exit_code`` 1 when the failed fraction exceeds
        ``config.max_failure_rate``.

    Raises:
        ConfigError: OUTPUT is INPUT or inside it (or contains it), INPUT or the input list
            does not exist or holds no inputs, or ``model_size`` does not fit the generator.
        ArtifactError: the generator is missing or corrupt (raised before any Ray work).
        JobError: OUTPUT is not writable, or the pipeline stopped on a systemic error.
    """
    from archive_colorizer.colorize import pipeline
    from archive_colorizer.models.artifact import load_generator
    from archive_colorizer.runtime import init_ray

    started, clock = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    options = config.storage_options
    roots = listing.Roots.resolve(config.input, config.output, options)
    artifact = load_generator(config.model, storage_options=options)
    model_size = _model_size(config, artifact)
    _check_output_writable(config)
    resume = manifest.ResumeIndex.from_manifest(manifest.read_manifest(config.output, options))
    run_info = manifest.RunInfo(uuid.uuid4().hex[:12], started, artifact.sha256, __version__)
    settings = StageSettings(
        config.output,
        model_size,
        config.max_pixels,
        config.on_color,
        config.color_threshold,
        config.overwrite,
        config.jpeg_quality,
        run_info,
        dict(options),
        jpeg_chroma=config.chroma,
    )
    init_ray(config.ray_address)
    driver_retries = storage.retried_requests()
    refs, total = _list_inputs(config, roots, resume)
    if total == 0:
        raise ConfigError(f"no inputs found in {config.input!r} (extensions {', '.join(config.extensions)})")
    dataset = pipeline.build_dataset(refs, settings, _pool(config), config.model)
    run_manifest = manifest.RunManifest(config.output, run_info, options)
    try:
        counts = pipeline.execute(dataset, total, config.progress, sink=run_manifest.write)
    except Exception as exc:
        run_manifest.abort()
        raise JobError(f"the colorize pipeline stopped: {_stopped_by(exc)}") from exc
    run_manifest.commit()
    retries = run_manifest.storage_retries + storage.retried_requests() - driver_retries
    result = _finish(config, artifact, run_info, counts, total, time.perf_counter() - clock, model_size, retries)
    review.write_review(config, result)  # OUTPUT/_review/index.html: a page to look at the run
    return result


def _finish(
    config: ColorizeConfig,
    artifact: GeneratorArtifact,
    run_info: manifest.RunInfo,
    counts: Counter[str],
    total: int,
    wall: float,
    model_size: int,
    storage_retries: int = 0,
) -> ColorizeResult:
    failed_fraction = counts[manifest.FAILED] / total
    exit_code = 1 if failed_fraction > config.max_failure_rate else 0
    message = (
        f"{counts[manifest.FAILED]} of {total} inputs failed ({failed_fraction:.1%}), more than --max-failure-rate "
        f"{config.max_failure_rate:.1%}; the manifest lists each with its error"
        if exit_code
        else f"done: {counts[manifest.COLORIZED] + counts[manifest.SKIPPED_EXISTING]} of {total} inputs colorized"
    )
    history = manifest.run_history(
        manifest.read_manifest(config.output, config.storage_options, ["run_id", "status", "recorded_at", "input_url"])
    )
    summary = {
        "tool": f"archive-colorizer {__version__}",
        "run_id": run_info.run_id,
        "started": run_info.started.isoformat(timespec="seconds"),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "inputs": total,
        "counts": {status: counts[status] for status in manifest.STATUSES},
        "images_per_second": round(total / wall, 3),
        "colorized_per_second": round(counts[manifest.COLORIZED] / wall, 3),
        "failed_fraction": round(failed_fraction, 6),
        "storage_retries": storage_retries,
        "exit_code": exit_code,
        "message": message,
        "model": {
            "url": config.model,
            "sha256": artifact.sha256,
            "working_size": artifact.working_size,
            "model_size": model_size,
            "spec": artifact.spec.model_dump(),
            "provenance": artifact.metadata.get("provenance", {}),
        },
        "manifest": manifest.manifest_url(config.output),
        "runs": history,
        "config": config.public_dict(),
    }
    summary_url = manifest.write_summary(config.output, summary, config.storage_options)
    print(format_summary(summary), file=sys.stdout if exit_code == 0 else sys.stderr)
    return ColorizeResult(
        exit_code,
        message,
        dict(summary["counts"]),
        total,
        wall,
        summary["images_per_second"],
        config.output,
        manifest.manifest_url(config.output),
        summary_url,
        artifact.sha256,
        run_info.run_id,
        summary,
        storage_retries,
    )


def format_summary(summary: dict[str, Any]) -> str:
    """The end-of-run table: inputs per status with shares, throughput, where the results are."""
    total = max(summary["inputs"], 1)
    lines = [
        f"colorize {summary['run_id']}: {summary['inputs']} inputs in {summary['wall_seconds']:.1f} s "
        f"({summary['images_per_second']:.2f} images/s)",
        f"  {'status':<18}{'inputs':>10}{'share':>9}",
    ]
    for status, count in summary["counts"].items():
        lines.append(f"  {status:<18}{count:>10}{count / total:>9.1%}")
    lines.append(f"  {'total':<18}{summary['inputs']:>10}")
    if summary.get("storage_retries"):
        lines.append(f"  object-store requests retried: {summary['storage_retries']}")
    if len(summary["runs"]) > 1:
        lines.append(f"  runs recorded in the manifest: {len(summary['runs'])} (this one resumes the earlier ones)")
    lines += [
        f"  model sha256 {summary['model']['sha256']}",
        f"  manifest {summary['manifest']}",
        f"  {summary['message']}",
    ]
    return "\n".join(lines)
