"""The colorize job's ``run``: batch-colorize an archive at full resolution with Ray Data.

Without GPUs each CPU task runs the whole per-image path (:mod:`.fused`); with ``--gpu`` the
decode tasks feed a pool of predictor actors and merge tasks follow (:mod:`.pipeline`).

``run(config)`` checks everything that would make the whole job fail before any Ray work
(unsafe INPUT/OUTPUT, a missing INPUT, a missing or corrupt generator, an OUTPUT that cannot
be written), starts the resume index (:mod:`.resume`) and the streaming listing
(:mod:`.listing_tasks`) on the cluster, runs the pipeline, writes the manifest as rows arrive
(:mod:`.manifest_writer`) and ``OUTPUT/_summary.json`` at the end. Bad inputs never stop it:
each becomes a ``failed`` manifest row. Re-running the same command resumes: finished inputs
are ``skipped_existing``; inputs another generator finished are colorized again unless
``keep_other_models``. The driver holds no per-input state: its memory does not grow with
the archive. At the end it checks that the rows received add up to the inputs listed.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive_colorizer import __version__, folders, signing, storage
from archive_colorizer.colorize import (
    iiif_in,
    iiif_out,
    input_rows,
    listing_tasks,
    manifest,
    manifest_writer,
    resume,
    review,
)
from archive_colorizer.colorize.pool import actor_pool_bounds
from archive_colorizer.colorize.stage_settings import StageSettings
from archive_colorizer.errors import ArchiveColorizerError, ConfigError, JobError, JobStopped, StorageError

if TYPE_CHECKING:  # the CPU workers import this package; only the driver and the actors need torch
    from archive_colorizer.colorize import pipeline
    from archive_colorizer.colorize.config import ColorizeConfig
    from archive_colorizer.models.artifact import GeneratorArtifact

__all__ = ["ColorizeResult", "run"]


@dataclass(kw_only=True)
class ColorizeResult:
    """What a colorize run did.

    Attributes:
        exit_code: 0, or 1 when more inputs failed than ``max_failure_rate`` allows or the rows
            received do not add up to the inputs listed.
        message: one line saying how the run ended.
        counts: inputs per status (``colorized``, ``skipped_existing``, ``skipped_color``,
            ``failed``); they add up to ``inputs``.
        inputs: distinct inputs of this run (repeated input-list entries not counted).
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


def _check_output_writable(config: ColorizeConfig) -> None:
    """Write the resolved (redacted) config to ``OUTPUT/_config.yaml``: proves OUTPUT is writable."""
    try:
        config.save(storage.join(config.output, manifest.CONFIG_NAME), config.storage_options)
    except (StorageError, OSError) as exc:
        raise JobError(f"output {config.output!r} is not writable: {exc}") from exc


def _signing(config: ColorizeConfig) -> signing.SigningSettings | None:
    """With ``--c2pa-sign``, the credentials' references, checked here by signing a test image.

    Raises:
        CredentialError: the certificate chain or key cannot be read or does not sign.
    """
    if not config.c2pa_sign:
        return None
    settings = signing.SigningSettings(
        config.c2pa_cert, config.c2pa_key, config.c2pa_tsa_url, dict(config.storage_options)
    )
    signing.check_credentials(settings)
    return settings


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
        low,
        high,
        config.batch_size,
        config.task_batch_size,
        cpus_per_task,
        config.cpus_per_actor,
        config.gpu,
        fused,
        gpus_per_actor=config.gpus_per_actor,
        actor_concurrency=config.actor_concurrency,
    )


def _check_input(config: ColorizeConfig, roots: input_rows.Roots) -> None:
    """INPUT (or the input list) exists: one request, before any Ray work."""
    if config.input_iiif:
        return  # the manifest is read once, by the listing (a missing one stops the job there, named)
    if config.input_list:
        fs, path = storage.open_url(config.input_list, config.storage_options)
        if not fs.isfile(path):
            raise ConfigError(f"input list {config.input_list!r} does not exist")
    elif not folders.is_folder(roots.input_fs, roots.input_path):
        raise ConfigError(f"input {config.input!r} does not exist or is not a folder")


def _listing(config: ColorizeConfig, run_info: manifest.RunInfo) -> tuple[Any, Any, Any, Any]:
    """The streaming listing dataset, the run's listing progress (:mod:`.listing_tasks`), the IIIF input or
    None, and the run's resume index (:mod:`.resume`; None with ``--overwrite`` or nothing finished)."""
    context = listing_tasks.ListingContext(
        input_url=config.input,
        output_url=config.output,
        extensions=tuple(config.extensions),
        requested_format=config.format,
        model_sha256=run_info.model_sha256,
        keep_other_models=config.keep_other_models,
        first_chunk_rows=config.task_batch_size,
        storage_options=dict(config.storage_options),
        run_id=run_info.run_id,
        listing_tasks=config.listing_tasks,
    )
    resume_from = (
        None if config.overwrite else resume.plan_index(config.output, run_info.run_id, config.storage_options)
    )
    if config.input_iiif:
        try:
            dataset, progress, source, index = iiif_in.iiif_dataset(config.input, context, resume_from)
        except ValueError as exc:
            raise ConfigError(f"--input-iiif: {exc}") from exc
        return dataset, progress, source, index
    if config.input_list:
        dataset, progress, index = listing_tasks.list_dataset(config.input_list, context, resume_from)
    else:
        dataset, progress, index = listing_tasks.tree_dataset(context, resume_from)
    return dataset, progress, None, index


def _execute(
    dataset: Any,
    progress: Any,
    config: ColorizeConfig,
    writer: manifest_writer.ManifestWriter,
    review_rows: review.ReviewRows,
) -> Any:
    """Run the pipeline; on a stop or a failure the rows received so far are written first.

    Every batch of final rows goes to the manifest writer and to the review page's bounded
    sample as it arrives, so nothing reads the run's manifest again afterwards.
    """
    from archive_colorizer.colorize import pipeline
    from archive_colorizer.stopping import Watchdog

    def sink(table: Any) -> None:
        writer.write(table)
        review_rows.add_table(table)

    try:
        with Watchdog(config.stall_timeout, "colorize", "no batch of inputs finished") as watchdog:
            state = pipeline.execute(dataset, progress, config.progress, sink=watchdog.beating(sink))
    except (JobStopped, KeyboardInterrupt):
        writer.close(finished=False)  # keep every finished row, then stop as asked
        raise
    except Exception as exc:
        try:
            writer.close(finished=False)
        except StorageError:
            pass  # the pipeline's failure is the one to report
        raise JobError(f"the colorize pipeline stopped: {_stopped_by(exc)}") from exc
    writer.close()
    return _settled(state, progress)


def _settled(state: Any, progress: Any, wait_seconds: float = 10.0) -> Any:
    """The final listing count: the actor's last reports may still be on their way (a few seconds at most)."""
    from archive_colorizer.colorize import pipeline

    deadline = time.monotonic() + wait_seconds
    while progress is not None and time.monotonic() < deadline:
        pipeline._poll(progress, state, _NoBar())
        if state.listed == state.received:
            break
        time.sleep(0.2)
    return state


class _NoBar:
    total = None

    def refresh(self) -> None:
        pass


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
        ``config.max_failure_rate`` or the rows that came back do not add up to the inputs listed.

    Raises:
        ConfigError: OUTPUT is INPUT or inside it (or contains it), INPUT or the input list
            does not exist or holds no inputs, ``model_size`` does not fit the generator, or
            the C2PA credentials of ``--c2pa-sign`` cannot be read or do not sign.
        ArtifactError: the generator is missing or corrupt (raised before any Ray work).
        JobError: OUTPUT is not writable, or the pipeline stopped on a systemic error.
        JobStopped: a stop signal (the rows of finished outputs are written first).
    """
    from archive_colorizer.colorize import pipeline
    from archive_colorizer.models.artifact import load_generator
    from archive_colorizer.resources import check_colorize
    from archive_colorizer.runtime import init_ray

    started, clock = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    options = config.storage_options
    roots = input_rows.Roots.resolve(config.input, config.output, options)
    _check_input(config, roots)
    artifact = load_generator(config.model, storage_options=options)
    model_size = artifact.model_size(config.model_size)
    signing_settings = _signing(config)
    _check_output_writable(config)
    run_info = manifest.RunInfo(uuid.uuid4().hex[:12], started, artifact.sha256, __version__)
    settings = StageSettings(
        output_url=config.output,
        model_size=model_size,
        max_pixels=config.max_pixels,
        on_color=config.on_color,
        color_threshold=config.color_threshold,
        overwrite=config.overwrite,
        jpeg_quality=config.jpeg_quality,
        run=run_info,
        storage_options=dict(options),
        jpeg_chroma=config.chroma,
        c2pa=signing_settings,
        concurrent_requests=config.concurrent_requests,
    )
    init_ray(config.ray_address, config.ray_connect_timeout)
    driver_retries = storage.retried_requests()
    pool = check_colorize(_pool(config))
    pipeline.prewarm_fused(settings, pool, config.model)
    dataset, progress, iiif_source, index = _listing(config, run_info)
    dataset = pipeline.build_dataset(dataset, settings, pool, config.model)
    writer = manifest_writer.ManifestWriter(
        config.output, run_info, options, flush_seconds=config.manifest_flush_seconds
    )
    review_rows = review.ReviewRows(config.review_samples, review.FAILURES_LISTED)
    try:
        state = _execute(dataset, progress, config, writer, review_rows)
    finally:
        progress.close()
    if index is not None:
        index.commit()  # the merged index is kept: the next run reads it, not this run's predecessors' parts
    if state.received == 0 and state.passed_over == 0:
        where = config.input_list or config.input
        raise ConfigError(f"no inputs found in {where!r} (extensions {', '.join(config.extensions)})")
    retries = writer.storage_retries + storage.retried_requests() - driver_retries
    iiif_manifests = []
    if iiif_source is not None and config.iiif_base_url:  # before the summary, which lists them
        iiif_manifests = iiif_out.write_manifests(config, iiif_source, artifact.sha256)
    result = _finish(
        config, artifact, run_info, state, time.perf_counter() - clock, model_size, retries, iiif_manifests
    )
    review.write_review(config, result, rows=review_rows)  # OUTPUT/_review/index.html: a page to look at the run
    return result


def _accounting(config: ColorizeConfig, state: Any) -> tuple[int, str | None]:
    """(distinct inputs, why the counts do not add up or None)."""
    duplicates = state.counts[manifest.DUPLICATE]
    total = state.received - duplicates + state.passed_over
    if state.listed != state.received:
        return total, (
            f"the counts do not add up: {state.listed} inputs listed but {state.received} rows came back "
            f"({', '.join(f'{s} {state.counts[s]}' for s in (*manifest.STATUSES, manifest.DUPLICATE))}); "
            "some inputs have no row in this run: run the same command again to finish them"
        )
    return total, None


def _finish(
    config: ColorizeConfig,
    artifact: GeneratorArtifact,
    run_info: manifest.RunInfo,
    state: Any,
    wall: float,
    model_size: int,
    storage_retries: int = 0,
    iiif_manifests: list[str] | None = None,
) -> ColorizeResult:
    counts = state.counts.copy()
    counts[manifest.SKIPPED_EXISTING] += state.passed_over  # finished before: passed over at listing, no new row
    total, mismatch = _accounting(config, state)
    failed_fraction = counts[manifest.FAILED] / max(total, 1)
    exit_code = 1 if failed_fraction > config.max_failure_rate or mismatch else 0
    message = (
        mismatch
        or (
            f"{counts[manifest.FAILED]} of {total} inputs failed ({failed_fraction:.1%}), more than --max-failure-rate "
            f"{config.max_failure_rate:.1%}; the manifest lists each with its error"
        )
        if exit_code
        else f"done: {counts[manifest.COLORIZED] + counts[manifest.SKIPPED_EXISTING]} of {total} inputs colorized"
    )
    if state.other_model:
        print(
            f"archive-colorizer colorize: note: {state.other_model} inputs finished by another generator were "
            "colorized again with this one (--keep-other-models keeps them)",
            file=sys.stderr,
        )
    history = manifest_writer.read_run_history(config.output, config.storage_options)
    summary = {
        "tool": f"archive-colorizer {__version__}",
        "run_id": run_info.run_id,
        "started": run_info.started.isoformat(timespec="seconds"),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "inputs": total,
        "listed": state.listed,
        "duplicates": counts[manifest.DUPLICATE],
        "passed_over": state.passed_over,
        "redone_other_model": state.other_model,
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
        "iiif_manifests": iiif_manifests or [],
    }
    summary_url = manifest.write_summary(config.output, summary, config.storage_options)
    print(format_summary(summary), file=sys.stdout if exit_code == 0 else sys.stderr)
    return ColorizeResult(
        exit_code=exit_code,
        message=message,
        counts=dict(summary["counts"]),
        inputs=total,
        wall_seconds=wall,
        images_per_second=summary["images_per_second"],
        output_url=config.output,
        manifest_url=manifest.manifest_url(config.output),
        summary_url=summary_url,
        model_sha256=artifact.sha256,
        run_id=run_info.run_id,
        summary=summary,
        storage_retries=storage_retries,
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
    if summary.get("passed_over"):
        lines.append(
            f"  of them finished by earlier runs and passed over as listed (no request, no new row): "
            f"{summary['passed_over']}"
        )
    if summary.get("duplicates"):
        lines.append(f"  repeated input-list entries (done once): {summary['duplicates']}")
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
