"""The plan job: how long colorizing an archive takes on a cluster, what it costs, and what bounds it.

``run(config)`` checks the generator and the cluster shape, lists INPUT streaming with sizes
and keeps a random sample (:mod:`.survey`), reads the sample's headers, times colorize's own
stages on a few of them here (:mod:`.measure`), turns that into per-image costs of the whole
archive (:func:`workload`), projects them onto the cluster (:mod:`.projection`), prints a
table and writes ``plan.json`` (:mod:`.report`). Nothing here starts Ray.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive_colorizer import __version__
from archive_colorizer.colorize import overlap
from archive_colorizer.errors import ConfigError
from archive_colorizer.plan import cluster, projection, report, survey

if TYPE_CHECKING:
    from archive_colorizer.plan.config import PlanConfig
    from archive_colorizer.plan.measure import StageTimes

__all__ = ["PlanResult", "run", "workload"]

LIST_PAGE = 1000
"""Keys per listing request of S3's ListObjectsV2: the listing of N inputs takes at least N / 1000 requests."""


@dataclass
class PlanResult:
    """What a plan found.

    Attributes:
        exit_code: 0.
        plan: the content of ``plan.json``.
        plan_url: where it was written.
        projections: one per kind of stages projected; ``recommended`` the faster.
    """

    exit_code: int
    plan: dict[str, Any] = field(repr=False)
    plan_url: str
    projections: list[projection.Projection]
    recommended: projection.Projection


def workload(
    config: PlanConfig, archive: survey.ArchiveListing, sample: survey.SampleSummary, times: StageTimes
) -> projection.Workload:
    """Per-image costs of the whole archive from what was measured on the few.

    The codec work (decodes, colour check, merge, encode) scales with pixels: its CPU seconds
    per megapixel measured here times the archive's mean megapixels (from the header sample).
    The generator costs the same per image at any input size; on a GPU, as measured here or
    its FLOPs over ``--gpu-tflops``. Storage is modelled apart:
    requests per image as measured, each taking ``--request-latency-ms`` (default: the mean
    measured here), bytes per image = the sample's mean input size times (1 + output/input
    bytes measured). The listing (before any image is colorized) takes what it took here, or
    ``inputs / 1000`` requests if longer (an object store lists 1000 keys per request).
    """
    images = max(times.images, 1)
    stages = times.stage_seconds
    codec = sum(stages[s] for s in ("decode", "classify", "merge", "encode"))
    if times.megapixels > 0:
        codec_per_image = codec / times.megapixels * sample.megapixels_mean
    else:  # nothing decoded: keep the per-image cost as measured
        codec_per_image = codec / images
    model_cpu = stages["model"] / images
    if times.gpu_model_seconds is not None:
        model_gpu = times.gpu_model_seconds / images
    else:
        model_gpu = times.model_flops / (config.gpu_tflops * 1e12)
    if config.request_latency_ms is not None:
        request_seconds = config.request_latency_ms / 1000
    else:
        request_seconds = times.io_wall_seconds / max(times.requests, 1)
    out_over_in = times.output_bytes / times.input_bytes if times.input_bytes else 1.0
    return projection.Workload(
        images=archive.inputs,
        codec_seconds=codec_per_image,
        model_cpu_seconds=model_cpu,
        model_gpu_seconds=model_gpu,
        requests_per_image=times.requests / images,
        request_seconds=request_seconds,
        bytes_per_image=sample.bytes_mean * (1 + out_over_in),
        fixed_seconds=config.startup_seconds + max(archive.seconds, archive.inputs / LIST_PAGE * request_seconds),
    )


def _concurrent_requests(config: PlanConfig) -> int:
    """Requests a colorize task would keep in flight: ``--concurrent-requests`` where INPUT is an object
    store, or where ``--request-latency-ms`` says the job's store is one (INPUT a local sample of a
    bucket); 1 otherwise (local folders: one request after another). The job's OUTPUT is not known here."""
    if config.request_latency_ms is not None:
        return config.concurrent_requests
    return overlap.concurrency_for((config.input,), config.concurrent_requests, config.storage_options)


def _stages_to_project(config: PlanConfig, shape: cluster.ClusterShape) -> list[str]:
    if config.stages == "split" and not shape.gpus:
        raise ConfigError(f"stages split needs GPUs, and the cluster ({shape.source}) has none")
    if config.stages == "best":
        return ["fused", "split"] if shape.gpus else ["fused"]
    return [config.stages]


def background_load(config: PlanConfig, shape: cluster.ClusterShape, times: StageTimes) -> float:
    """Other work's runnable processes per node: ``--background-load``, else 0 on a cluster, and for this
    machine what the measuring thread saw.

    One thread among ``load`` others on ``C`` cores gets ``min(1, C / (1 + load))`` of a core,
    so a measured share ``s`` (CPU seconds over wall seconds outside storage waits) below 1
    gives ``load = C / s - 1``. A share of 1 says only ``load <= C - 1`` and counts as 0.
    """
    if config.background_load is not None:
        return config.background_load
    if shape.source != cluster.THIS_MACHINE:
        return 0.0
    wall = sum(times.wall_seconds.values()) - times.io_wall_seconds
    share = sum(times.cpu_seconds.values()) / wall if wall > 0 else 1.0
    return max(0.0, shape.cpus / share - 1) if share < 0.95 else 0.0


def _background_source(config: PlanConfig, background: float) -> str:
    if config.background_load is not None:
        return "--background-load"
    return "measured here" if background else "none seen"


def _assumptions(config: PlanConfig, work: projection.Workload, background: float, times: StageTimes) -> dict[str, Any]:
    measured_latency = config.request_latency_ms is None
    return {
        "bandwidth_mb_per_s": config.bandwidth_mb_per_s,
        "request_latency_ms": round(work.request_seconds * 1000, 3),
        "request_latency_source": "measured here" if measured_latency else "--request-latency-ms",
        "gpu_tflops": config.gpu_tflops if times.gpu_model_seconds is None else "measured here",
        "model_gflops_per_image": round(times.model_flops / 1e9, 3),
        "startup_seconds": config.startup_seconds,
        "efficiency": config.efficiency,
        "background_load": round(background, 3),
        "background_load_source": _background_source(config, background),
        "driver_cpus": config.driver_cpus,
        "cpus_per_actor": config.cpus_per_actor,
        "concurrent_requests": _concurrent_requests(config),
    }


@dataclass
class _Findings:
    """What the survey and the measurement found, before any projection."""

    listed: survey.ArchiveListing
    archive: survey.ArchiveListing
    sample: survey.SampleSummary
    times: StageTimes


def _survey_and_measure(config: PlanConfig, model_size: int, sha256: str) -> _Findings:
    """List INPUT, read the sample's headers, time colorize's stages on ``config.measure`` of them."""
    from archive_colorizer.plan.measure import measure_stages

    listed = survey.list_archive(config)
    archive = survey.scaled(listed, config.assume_inputs)
    headers = [survey.read_header(url, size, config.storage_options) for url, size in archive.sample]
    sample = survey.summarise(headers, config.max_pixels)
    chosen = random.Random(config.seed).sample(headers, min(config.measure, len(headers)))
    megapixels = sum(h.megapixels for h in chosen if h.error is None)
    times = measure_stages(config, [h.url for h in chosen], megapixels, model_size, sha256)
    return _Findings(listed, archive, sample, times)


def _document(config: PlanConfig, found: _Findings, model: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """The content of plan.json."""
    archive = found.archive
    total_bytes = archive.total_bytes if archive.total_bytes is not None else found.sample.bytes_mean * archive.inputs
    return {
        "tool": f"archive-colorizer {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "archive": {
            "input": config.input,
            "input_list": config.input_list,
            "inputs": archive.inputs,
            "listed_inputs": found.listed.inputs,
            "total_bytes": int(total_bytes),
            "bytes_estimated": archive.bytes_estimated,
            "listing_seconds": round(archive.seconds, 3),
        },
        "sample": found.sample.to_dict(),
        "model": model,
        "measured": found.times.to_dict(),
        **parts,
        "config": config.public_dict(),
    }


def run(config: PlanConfig) -> PlanResult:
    """Plan colorizing ``config.input`` with ``config.model`` on the configured cluster shape.

    Returns:
        A :class:`PlanResult`; the plan is also printed and written to ``config.output``.

    Raises:
        ArtifactError: the generator is missing or corrupt (before anything is listed).
        ConfigError: INPUT or the input list does not exist or holds no inputs, no sampled
            header is readable, the cluster file is unusable, or ``model_size`` does not fit.
        StorageError: listing INPUT or writing the plan failed.
    """
    from archive_colorizer.models.artifact import load_generator

    artifact = load_generator(config.model, storage_options=config.storage_options)
    model_size = artifact.model_size(config.model_size)
    shape = cluster.resolve_shape(config)
    kinds = _stages_to_project(config, shape)
    found = _survey_and_measure(config, model_size, artifact.sha256)
    work = workload(config, found.archive, found.sample, found.times)
    background = background_load(config, shape, found.times)
    assumed = projection.Assumptions(
        config.bandwidth_mb_per_s,
        config.efficiency,
        background,
        config.cpus_per_actor,
        config.driver_cpus,
        config.cpus_per_task,
        _concurrent_requests(config),
    )
    projections = [projection.project(work, shape, assumed, kind) for kind in kinds]
    best = max(projections, key=lambda p: p.images_per_second)
    model = {
        "url": config.model,
        "sha256": artifact.sha256,
        "model_size": model_size,
        "spec": artifact.spec.model_dump(),
    }
    plan = _document(
        config,
        found,
        model,
        workload=vars(work) | {"io_seconds": work.io_seconds},
        cluster=shape.to_dict(),
        assumptions=_assumptions(config, work, background, found.times),
        projections=[p.to_dict() for p in projections],
        recommended={"stages": best.stages, "advice": best.advice},
    )
    plan_url = report.write_plan(config.output, plan, config.storage_options)
    print(report.format_plan(plan) + f"\nplan written to {plan_url}", file=sys.stdout)
    return PlanResult(0, plan, plan_url, projections, best)
