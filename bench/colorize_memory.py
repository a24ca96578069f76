"""Memory of the colorize job: does it grow with the number of images, and what does one huge scan cost? Prints JSON.

- ``job``: peak resident memory of the whole job, the driver plus every process of its local
  Ray (raylet, GCS, workers: the driver's descendants), sampled every ``--interval`` seconds
  with psutil, for a job of ``--small`` and one of ``--large`` gray JPEGs (each job on a fresh
  local Ray of every core, the demo-size generator). ``ratio`` = large / small: memory must
  not grow with the number of images. RSS counts the pages of Ray's shared object store in
  every process that maps them, so the sums overstate; they overstate both jobs alike.
- ``huge_image``: peak resident memory of one process that colorizes one gray JPEG of
  ``--huge-megapixels`` (default 100 MP) through the job's own per-image code (decode, small
  gray, generator, full-resolution merge, JPEG encode: ``colorize_throughput.colorize_one``),
  less the process's memory before it decoded (Python, torch and the generator loaded). The
  full-resolution merge works on uint8 planes in row strips; no float64 or float32 full-size
  array is built.

Usage::

    .venv/bin/python bench/colorize_memory.py [--small 100] [--large 1000] [--megapixels 1.0]
        [--huge-megapixels 100] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from colorize_throughput import MODELS, existing_or_new_inputs  # noqa: E402
from common import local_ray, print_report  # noqa: E402


class PeakSampler:
    """Samples the summed RSS of this process and its descendants in a thread; ``peak_mb`` is the highest sum."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._total())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


def job_peak(files: list[Path], inputs: Path, output: Path, model_url: str, interval: float) -> dict:
    """Peak summed RSS of a colorize job on ``files``, on a fresh local Ray."""
    from archive_colorizer.colorize import run
    from archive_colorizer.colorize.config import ColorizeConfig

    listing = output.with_suffix(".txt")
    listing.write_text("".join(f"{path.name}\n" for path in files))
    config = ColorizeConfig(
        input=str(inputs), output=str(output), model=model_url, input_list=str(listing), progress=False
    )
    with PeakSampler(interval) as sampler, local_ray(os.cpu_count() or 1, logging_level="WARNING"):
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            result = run(config)
        seconds = time.perf_counter() - start
    return {
        "images": result.inputs,
        "colorized": result.counts["colorized"],
        "seconds": round(seconds, 2),
        "peak_rss_mb": sampler.peak_mb,
        "samples": sampler.samples,
    }


def make_huge(path: Path, megapixels: float) -> tuple[int, int]:
    """A gray JPEG of about ``megapixels`` (a real photograph enlarged); returns its size."""
    import skimage.data
    from PIL import Image

    source = Image.fromarray(skimage.data.camera())
    side = int((megapixels * 1e6) ** 0.5)
    image = source.resize((side, side), Image.Resampling.BILINEAR)
    image.save(path, quality=90)
    del image
    return side, side


HUGE_CHILD = r"""
import json, resource, sys, time
import psutil
sys.path.insert(0, sys.argv[4])
from colorize_throughput import colorize_one, load_predictor

path, model_url, out = sys.argv[1:4]
predictor, working_size, provenance = load_predictor(model_url)
before = psutil.Process().memory_info().rss
start = time.perf_counter()
rendered = colorize_one(open(path, "rb").read(), predictor, working_size, provenance)
open(out, "wb").write(rendered)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
print(json.dumps({"baseline_rss_mb": round(before / 2**20, 1), "peak_rss_mb": round(peak / 2**20, 1),
                  "peak_over_baseline_mb": round((peak - before) / 2**20, 1), "seconds": round(seconds, 2),
                  "output_bytes": len(rendered)}))
"""


def huge_image_peak(workdir: Path, model_url: str, megapixels: float) -> dict:
    """Peak RSS of one process colorizing one gray JPEG of ``megapixels`` (see the module docstring)."""
    path = workdir / f"huge-{megapixels:g}mp.jpg"
    if not path.exists():
        make_huge(path, megapixels)
    from PIL import Image

    with Image.open(path) as image:
        size = image.size
    completed = subprocess.run(
        [sys.executable, "-c", HUGE_CHILD, str(path), model_url, str(workdir / "huge-out.jpg"), str(BENCH)],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH.parent,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"width": size[0], "height": size[1], "megapixels": round(size[0] * size[1] / 1e6, 1), **report}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--huge-megapixels", type=float, default=100.0)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between memory samples")
    parser.add_argument("--workdir", default=None)
    options = parser.parse_args(argv)

    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.models.artifact import save_generator

    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="colorize-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spec_args, working_size = MODELS["demo"]
    spec = GeneratorSpec(**spec_args)
    model_url = str(workdir / "model-demo")
    save_generator(spec.build(), model_url, spec=spec, working_size=working_size)
    inputs = workdir / "in"
    files = existing_or_new_inputs(inputs, options.large, options.megapixels)[: options.large]
    report: dict = {
        "cores": os.cpu_count(),
        "megapixels_per_image": options.megapixels,
        "load_average_before": round(os.getloadavg()[0], 2),
        "model": f"untrained GeneratorSpec({spec_args}), working size {working_size} (demo)",
    }
    small = job_peak(files[: options.small], inputs, workdir / "out-small", model_url, options.interval)
    large = job_peak(files, inputs, workdir / "out-large", model_url, options.interval)
    report["job"] = {"small": small, "large": large, "ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)}
    report["huge_image"] = huge_image_peak(workdir, model_url, options.huge_megapixels)
    return print_report(report)


if __name__ == "__main__":
    main()
