"""The evaluate job's ``run``: score a generator on held-out photographs, or score blind-test votes."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from archive_colorizer import __version__, storage
from archive_colorizer.color import merge_full_resolution
from archive_colorizer.colorize.decode import gray_planes, small_gray
from archive_colorizer.degrade import Degradation, image_seed
from archive_colorizer.errors import ArchiveColorizerError, ConfigError, JobError
from archive_colorizer.evaluate.blind import FOLDER as BLIND_FOLDER
from archive_colorizer.evaluate.blind import KEY_NAME, format_votes, read_json, summarize_votes, write_blind_test
from archive_colorizer.evaluate.data import HeldOut, HeldOutImage
from archive_colorizer.evaluate.metrics import METRICS
from archive_colorizer.evaluate.report import ScoredImage, contact_sheet_png, format_table, means
from archive_colorizer.stopping import Heartbeat

if TYPE_CHECKING:
    from archive_colorizer.colorize.predictor import Predictor
    from archive_colorizer.evaluate.config import EvaluateConfig

__all__ = ["EvaluateResult", "colorize_truths", "run"]

EVALUATION_NAME = "evaluation.json"
CONTACT_SHEET_NAME = "contact_sheet.png"
CONVENTIONS = {
    "images": "ground truth: shorter side resized to size, centre crop (size x size, 8-bit sRGB); gray = its "
    "BT.601 luma",
    "model": "colorized as the colorize job does: generator at model_size, chroma upsampled, merged with the gray "
    "as luma; not JPEG-encoded",
    "gray": "gray baseline: the gray image with no colour (ab = 0, R = G = B = gray)",
    "model_degraded": "with --degrade: colorized from the gray image damaged by the recipe (L only, seeded per image "
    "by degrade_seed and its name), merged with the damaged gray as luma; scored against the clean truth",
    "gray_degraded": "with --degrade: the damaged gray image with no colour",
    "psnr": "dB, 20*log10(255/RMSE) over R, G, B 8-bit values (Zhang et al. 2016); RMSE floored at 1e-4 "
    "(identical: 128.13)",
    "ssim": "Wang et al. 2004 (scikit-image): Gaussian sigma 1.5, population covariance, data_range 255, mean "
    "over R, G, B",
    "psnr_ab": "dB, 20*log10(220/RMSE) over the a and b values of CIE Lab (D65, scikit-image): chroma only, "
    "the luma every colouring shares left out; RMSE floored at 1e-4 (identical: 126.85)",
    "ssim_ab": "SSIM as ssim on the a and b channels of CIE Lab, data_range 220, mean over a and b",
    "colorfulness": "Hasler & Suesstrunk 2003 M on 8-bit RGB; 0 for gray",
    "delta_colorfulness": "signed: colorfulness(x) - colorfulness(truth); negative = duller than the truth",
    "abs_delta_colorfulness": "|delta_colorfulness| per image (its mean is not |mean delta_colorfulness|)",
    "ciede2000": "mean over pixels of CIEDE2000 between the CIE Lab (D65) of truth and x (scikit-image)",
    "mean": "arithmetic mean over the images of each per-image value",
}


@dataclass
class EvaluateResult:
    """What an evaluation found.

    Attributes:
        exit_code: always 0 (failures raise).
        images: images scored.
        mean: ``{"model": {metric: mean}, "gray": {...}, "truth": {"colorfulness": ...}}``.
        out_url, evaluation_url, contact_sheet_url: where the results are (the sheet None when
            ``sheet_images`` is 0).
        evaluation: the content of ``evaluation.json``.
    """

    exit_code: int
    images: int
    mean: dict[str, Any]
    out_url: str
    evaluation_url: str
    contact_sheet_url: str | None
    evaluation: dict[str, Any] = field(repr=False, default_factory=dict)


def colorize_truths(
    predictor: Predictor, truths: list[np.ndarray], model_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Make ground truths gray and colorize them along the colorize job's path.

    Args:
        predictor: the colorize job's predictor (generator loaded once).
        truths: (S, S, 3) uint8 RGB images.
        model_size: side of the gray image the generator sees.

    Returns:
        ``(gray, prediction)`` per image: (S, S, 3) uint8 RGB each; ``gray`` is the baseline.
    """
    return colorize_grays(predictor, [gray_planes(Image.fromarray(truth)).gray8 for truth in truths], model_size)


def colorize_grays(
    predictor: Predictor, grays: list[Image.Image], model_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Colorize gray images (mode "L", (S, S)) as the colorize job does; ``(gray, prediction)`` RGB per image."""
    chroma = predictor.predict(np.stack([small_gray(gray, model_size) for gray in grays]))  # (N, 2, s, s)
    return [
        (np.asarray(gray.convert("RGB")), np.asarray(merge_full_resolution(gray, plane).convert("RGB")))
        for gray, plane in zip(grays, chroma, strict=True)
    ]


def _score_batch(
    predictor: Predictor, batch: list[HeldOutImage], model_size: int, degradation: Degradation | None, seed: int
) -> list[tuple[ScoredImage, dict[str, np.ndarray]]]:
    """Score one batch: clean colourings, and with ``degradation`` those of the damaged gray images too."""
    grays = [gray_planes(Image.fromarray(image.rgb)).gray8 for image in batch]  # mode "L", BT.601 luma
    colourings: list[dict[str, np.ndarray]] = [
        {"model": prediction, "gray": gray} for gray, prediction in colorize_grays(predictor, grays, model_size)
    ]
    if degradation is not None:
        damaged = [
            Image.fromarray(degradation(np.asarray(gray), image_seed(seed, image.name)))
            for gray, image in zip(grays, batch, strict=True)
        ]
        for found, (gray, prediction) in zip(colourings, colorize_grays(predictor, damaged, model_size), strict=True):
            found.update(model_degraded=prediction, gray_degraded=gray)
    return [
        (ScoredImage.of(image.name, image.rgb, found), found) for image, found in zip(batch, colourings, strict=True)
    ]


def _batches(images: Iterable[HeldOutImage], size: int) -> Iterator[list[HeldOutImage]]:
    iterator = iter(images)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class Scoring:
    """The scores of one evaluation, computed where the generator runs (this process, or a GPU task).

    Attributes:
        model: the ``model`` section of ``evaluation.json``.
        held_out: the data read, with its skipped images counted.
        scored: one :class:`ScoredImage` per image, in the order read.
        sheet: ``(scored, colourings, real RGB)`` of the contact sheet's rows.
        blind: ``(name, real RGB, colorized RGB)`` of the blind test's images; RGB (S, S, 3) uint8.
        degraded: the ``--degrade`` recipe and seed, or None.
    """

    model: dict[str, Any]
    held_out: HeldOut
    scored: list[ScoredImage]
    sheet: list[tuple[ScoredImage, dict[str, np.ndarray], np.ndarray]]
    blind: list[tuple[str, np.ndarray, np.ndarray]]
    degraded: dict[str, Any] | None


def run(config: EvaluateConfig) -> EvaluateResult:
    """Score ``config.model`` on the held-out images at ``config.data``; see the module docstring.

    Without ``gpu`` the generator runs in this process. With ``gpu`` it runs in a Ray task that
    asks for one GPU (:func:`score_on_gpu`), so that ``ray job submit -- archive-colorizer
    evaluate --gpu`` uses a GPU node, not the CPU-only head the driver runs on; that task reads
    MODEL and DATA itself, and this process writes OUT.

    Raises:
        ConfigError: the data holds no usable image (none of the split, all skipped),
            ``model_size`` does not fit the generator, ``degrade`` is no recipe, or ``gpu``
            on a Ray cluster that has and can get no GPU.
        ArtifactError: the generator is missing or corrupt.
        StorageError: a shard cannot be read, or OUT cannot be written.
        JobError: the GPU task sees no CUDA device, or waited ``stall_timeout`` for a GPU.
    """
    if config.votes:
        return score_votes(config)
    started, clock = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    scoring = score_on_gpu(config) if config.gpu else score(config)
    evaluated = _write(
        config,
        scoring.held_out,
        scoring.model,
        scoring.scored,
        scoring.sheet,
        scoring.degraded,
        started,
        time.perf_counter() - clock,
    )
    if scoring.blind:
        page = write_blind_test(
            evaluated.out_url, scoring.blind, seed=config.degrade_seed, storage_options=config.storage_options
        )
        print(f"  blind test for curators: {page} (score the downloaded votes with --votes)")
    return evaluated


def score_on_gpu(config: EvaluateConfig) -> Scoring:
    """:func:`score` in a Ray task with one GPU (``num_gpus=1``), waited for under ``--stall-timeout``.

    Raises:
        ConfigError: the cluster has no GPU now and its autoscaler cannot add one.
        JobError: no GPU became free within ``stall_timeout``, or the task's CUDA device is missing.
    """
    import ray

    from archive_colorizer.compat import max_cluster_resources
    from archive_colorizer.runtime import init_ray
    from archive_colorizer.stopping import Heartbeat, Watchdog

    init_ray(config.ray_address, config.ray_connect_timeout)
    gpus = max(float(ray.cluster_resources().get("GPU", 0)), float(max_cluster_resources().get("GPU") or 0))
    if gpus < 1:
        raise ConfigError(
            "evaluate --gpu runs the generator in a Ray task with one GPU, but the Ray cluster has no GPU and "
            "cannot grow to one; drop --gpu, or run on a cluster with GPU nodes"
        )
    heartbeat = Heartbeat.new("evaluate")  # the task beats when it starts and after every batch
    remote_score: Any = ray.remote(score)  # Ray's stubs type a function with a default argument as taking none
    task = remote_score.options(num_gpus=1, num_cpus=1, max_retries=2).remote(config, heartbeat.key)
    what = "the GPU task neither started nor scored a batch (is a GPU free?)"
    with Watchdog(config.stall_timeout, "evaluate", what, probe=heartbeat.read) as watchdog:
        while not ray.wait([task], timeout=2.0)[0]:
            if watchdog.error is not None:
                break
    try:
        return ray.get(task)
    except ray.exceptions.RayTaskError as exc:  # the task's own error, without Ray's wrapping
        if isinstance(exc.cause, ArchiveColorizerError):
            raise exc.cause from None
        raise


def score(config: EvaluateConfig, heartbeat: str | None = None) -> Scoring:
    """Read the held-out images, colorize them with the generator (on CUDA with ``gpu``) and score them.

    ``heartbeat``: key of a :class:`~archive_colorizer.stopping.Heartbeat` beaten at the start and
    after every batch (the driver's stall watchdog of :func:`score_on_gpu`), or None.

    Raises:
        ConfigError, ArtifactError, StorageError: as :func:`run`.
        JobError: ``gpu`` and this process sees no CUDA device (names the GPU Ray gave it).
    """
    import torch

    from archive_colorizer.colorize.predictor import Predictor
    from archive_colorizer.models.artifact import load_generator

    assert config.model is not None and config.data is not None  # EvaluateConfig's validator
    if config.gpu and not torch.cuda.is_available():
        raise JobError(
            f"evaluate --gpu: the task given GPU {_gpu_ids()} on {platform.node()} sees no CUDA device "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}; is torch a CUDA build there?)"
        )
    beats = Heartbeat(heartbeat)
    beats.beat()
    options = config.storage_options
    degradation = Degradation.named(config.degrade, options)  # a bad recipe fails before any work
    artifact = load_generator(config.model, storage_options=options)
    model_size = artifact.model_size(config.model_size)
    held_out = HeldOut.open(config.data, config.split, tuple(config.extensions), options)
    predictor = Predictor(
        config.model,
        artifact.sha256,
        model_size,
        use_gpu=config.gpu,
        num_threads=os.cpu_count() or 1,
        storage_options=options,
    )
    stream = islice(
        held_out.images(
            config.size,
            gray_threshold=config.gray_threshold,
            extensions=tuple(config.extensions),
            max_pixels=config.max_pixels,
            storage_options=options,
        ),
        config.max_images,
    )
    scoring = Scoring(_model_section(artifact, model_size), held_out, [], [], [], None)
    for batch in _batches(stream, config.batch_size):
        for image, (result, colourings) in zip(
            batch, _score_batch(predictor, batch, model_size, degradation, config.degrade_seed), strict=True
        ):
            scoring.scored.append(result)
            if len(scoring.sheet) < config.sheet_images:
                scoring.sheet.append((result, colourings, image.rgb))
            if len(scoring.blind) < config.blind_test_images:
                scoring.blind.append((image.name, image.rgb, colourings["model"]))
        beats.beat()
    if not scoring.scored:
        where = f"split {config.split!r} of the shards" if held_out.kind == "shards" else "the folder"
        raise ConfigError(
            f"no image to evaluate in {where} at {config.data!r} (skipped: {dict(held_out.skipped) or 'none'})"
        )
    scoring.degraded = degradation.describe() | {"seed": config.degrade_seed} if degradation else None
    return scoring


def _gpu_ids() -> list[Any]:
    try:
        import ray

        return list(ray.get_gpu_ids()) if ray.is_initialized() else []
    except Exception:  # not in a Ray worker
        return []


def _model_section(artifact: Any, model_size: int) -> dict[str, Any]:
    return {
        "url": artifact.url,
        "sha256": artifact.sha256,
        "kind": artifact.spec.kind,
        "working_size": artifact.working_size,
        "model_size": model_size,
        "spec": artifact.spec.model_dump(),
        "provenance": artifact.metadata.get("provenance", {}),
    }


def score_votes(config: EvaluateConfig) -> EvaluateResult:
    """``evaluate --votes FILE...``: the blind test's fooling rate, printed and returned (nothing is scored anew).

    Raises:
        ConfigError: no key at ``OUT/blind_test/key.json``, or a votes file of another test.
    """
    out = config.out or storage.join(str(config.model), "evaluation")
    key = read_json(storage.join(out, BLIND_FOLDER, KEY_NAME), config.storage_options, "blind test key")
    votes = [read_json(url, config.storage_options, "votes file") for url in config.votes or []]
    summary = summarize_votes(key, votes)
    print(format_votes(summary))
    return EvaluateResult(0, 0, {"blind_test": summary}, out, storage.join(out, BLIND_FOLDER, KEY_NAME), None, summary)


def _write(
    config: EvaluateConfig,
    held_out: HeldOut,
    model: dict[str, Any],
    scored: list[ScoredImage],
    sheet: list[tuple],
    degraded: dict[str, Any] | None,
    started: _dt.datetime,
    wall: float,
) -> EvaluateResult:
    """Write ``evaluation.json`` and the contact sheet, print the table, build the result."""
    out = config.out or storage.join(model["url"], "evaluation")
    fs, folder = storage.open_url(out, config.storage_options)
    mean = means(scored)
    title = f"evaluate {model['sha256'][:12]} on {held_out.kind} {config.data}" + (
        f" (split {held_out.split})" if held_out.split else ""
    )
    sheet_url = None
    if sheet:
        storage.write_bytes(fs, storage.join(folder, CONTACT_SHEET_NAME), contact_sheet_png(sheet, title))
        sheet_url = storage.join(out, CONTACT_SHEET_NAME)
    evaluation = {
        "tool": f"archive-colorizer {__version__}",
        "created": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "images": len(scored),
        "size": config.size,
        "metrics": list(METRICS),
        "degrade": degraded,
        "conventions": CONVENTIONS,
        "mean": mean,
        "model": model,
        "data": held_out.describe(),
        "contact_sheet": CONTACT_SHEET_NAME if sheet_url else None,
        "per_image": [image.to_json() for image in scored],
        "config": config.public_dict(),
    }
    storage.write_bytes(
        fs, storage.join(folder, EVALUATION_NAME), (json.dumps(evaluation, indent=2, allow_nan=False) + "\n").encode()
    )
    print(format_table(mean, len(scored), title))
    print(f"  results: {storage.join(out, EVALUATION_NAME)}" + (f", {sheet_url}" if sheet_url else ""))
    if held_out.skipped:
        print(f"  skipped: {dict(held_out.skipped)}", file=sys.stderr)
    return EvaluateResult(0, len(scored), mean, out, storage.join(out, EVALUATION_NAME), sheet_url, evaluation)
