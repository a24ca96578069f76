"""How honest is ``archive-colorizer plan``? The plan for a local archive against the colorize run itself; prints JSON.

Makes N gray JPEGs of about ``--megapixels`` from scikit-image's photographs (the same inputs
as ``colorize_throughput.py``: resized, flipped, with film grain), saves an untrained generator
(``--model``, default the demo's size), then, back to back:

1. ``plan``: ``archive_colorizer.plan.run`` for this machine (its CPUs), its default
   assumptions (the other work on a shared machine estimated from the CPU share its measuring
   thread got);
2. ``colorize``: the real job with default flags (``archive_colorizer.colorize.run``) on a
   local Ray of every core started inside the clock, as ``archive-colorizer colorize`` does
   (fused CPU tasks, one per core); when this process already has a Ray (the test suite's),
   that one is used and the plan is given ``--startup-seconds`` of a warm Ray instead.

Reports both wall times, the per-core rates (images per second per core, start-up excluded
on the plan's side, included on the run's), the load averages around each step, and
``error`` = plan wall / measured wall - 1 (the target: within 30% on 2 cores).

Usage::

    .venv/bin/python bench/plan_accuracy.py [--images 300] [--megapixels 1.5] [--model demo] [--workdir DIR]
        [--startup-seconds S] [--efficiency E]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from colorize_throughput import MODELS, existing_or_new_inputs  # noqa: E402
from common import local_ray  # noqa: E402

WARM_RAY_STARTUP_SECONDS = 3.0
"""Start-up assumed when the colorize run finds a Ray already running (no ``ray.init`` in the clock)."""


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def run_plan(inputs: Path, model_url: str, workdir: Path, options: argparse.Namespace, startup: float | None) -> dict:
    """The plan for this machine; returns its projection and what it measured."""
    from archive_colorizer.plan import run
    from archive_colorizer.plan.config import PlanConfig

    values = {"startup_seconds": startup} if startup is not None else {}
    if options.efficiency is not None:
        values["efficiency"] = options.efficiency
    config = PlanConfig(
        input=str(inputs),
        model=model_url,
        output=str(workdir / "plan.json"),
        sample=options.sample,
        measure=options.measure,
        **values,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the plan's table; stdout carries the JSON
        result = run(config)
    projected = result.recommended
    work = result.plan["workload"]
    per_image = work["codec_seconds"] + work["model_cpu_seconds"] + work["io_seconds"]
    return {
        "seconds_to_plan": round(time.perf_counter() - start, 3),
        "background_load": result.plan["assumptions"]["background_load"],
        "wall_seconds": round(projected.wall_seconds, 3),
        "images_per_second": round(projected.images_per_second, 3),
        "fixed_seconds": round(work["fixed_seconds"], 3),
        "cpu_seconds_per_image": round(per_image, 5),
        "per_core_images_per_second": round(projected.images_per_second / (os.cpu_count() or 1), 3),
        "efficiency": config.efficiency,
    }


def run_colorize(inputs: Path, output: Path, model_url: str) -> dict:
    """The colorize job with default flags, the local Ray's start inside the clock (unless one is running)."""
    from archive_colorizer.colorize import run
    from archive_colorizer.colorize.config import ColorizeConfig

    shutil.rmtree(output, ignore_errors=True)
    config = ColorizeConfig(input=str(inputs), output=str(output), model=model_url, progress=False)
    start = time.perf_counter()
    with local_ray(os.cpu_count() or 1, logging_level="WARNING") as started_here:
        with contextlib.redirect_stdout(sys.stderr):
            result = run(config)
        wall = time.perf_counter() - start
    cores = os.cpu_count() or 1
    return {
        "ray_started_in_clock": started_here,
        "wall_seconds": round(wall, 3),
        "job_wall_seconds": round(result.wall_seconds, 3),
        "counts": result.counts,
        "images_per_second": round(result.inputs / wall, 3),
        "per_core_images_per_second": round(result.inputs / wall / cores, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--megapixels", type=float, default=1.5)
    parser.add_argument("--model", choices=sorted(MODELS), default="demo")
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--measure", type=int, default=20)
    parser.add_argument("--workdir", default=None, help="where inputs and outputs go (default: a temporary folder)")
    parser.add_argument("--startup-seconds", type=float, default=None, help="the plan's; default: the plan's own")
    parser.add_argument("--efficiency", type=float, default=None, help="the plan's; default: the plan's own")
    options = parser.parse_args(argv)

    import ray

    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.models.artifact import save_generator

    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="plan-accuracy-"))
    spec_args, working_size = MODELS[options.model]
    spec = GeneratorSpec(**spec_args)
    model_url = str(workdir / f"model-{options.model}")
    save_generator(spec.build(), model_url, spec=spec, working_size=working_size)
    inputs = workdir / "in"
    existing_or_new_inputs(inputs, options.images, options.megapixels)
    for extra in sorted(inputs.glob("*.jpg"))[options.images :]:
        extra.unlink()
    startup = options.startup_seconds
    if startup is None and ray.is_initialized():
        startup = WARM_RAY_STARTUP_SECONDS
    report = {"images": options.images, "cores": os.cpu_count(), "machine": "shared with other agents"}
    report["load_average_before_plan"] = _load()
    report["plan"] = run_plan(inputs, model_url, workdir, options, startup)
    report["load_average_before_colorize"] = _load()
    report["colorize"] = run_colorize(inputs, workdir / "out", model_url)
    report["load_average_after"] = _load()
    report["error"] = round(report["plan"]["wall_seconds"] / report["colorize"]["wall_seconds"] - 1, 3)
    report["per_core_rate_ratio"] = round(
        report["colorize"]["per_core_images_per_second"] / report["plan"]["per_core_images_per_second"], 3
    )
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


if __name__ == "__main__":
    main()
