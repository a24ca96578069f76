"""How the colorize job's start scales with the archive: first output, listing rate, driver memory, resume.

For each size (default 10k and 1M inputs) the benchmark makes a synthetic archive of hard links
to four small real photographs (scikit-image, made gray) in a nested tree (100 files per leaf
folder, 100 leaf folders per top folder: cheap to make; ``--layout flat``: every file in one
folder, the bucket prefix without folders that archives often are), starts a local Ray in this process and
runs the job's driver as a separate process (``python -m archive_colorizer colorize
--ray-address ...``) with a tiny generator (ngf 8, 5 downsamplings, 32 px). It measures:

- ``seconds_to_first_output``: driver start to the first output file in OUTPUT;
- ``object_store_bytes_at_first_output``: Ray's object-store use at that moment;
- ``driver_peak_rss_bytes``: the driver's peak RSS (psutil, sampled every 50 ms) from its start
  until ``--observe`` seconds after the first output, when it is stopped (SIGTERM, then SIGKILL):
  each run stops after its first outputs, the slope is what matters;
- ``listing_rate``: inputs per second of the listing dataset alone (``listing_tasks.tree_dataset``),
  over at most ``--listing-seconds``;

and, for the largest size, the same with a ``--input-list`` of every input (``input_list``) and
against a manifest of one finished row per input (``resume``: written as the job writes it,
parts of 10,000 rows), where the first output waits for the resume index.

Prints JSON; ratios (``first_output_ratio``, ``driver_rss_ratio``: largest over smallest) are
the figures to judge (targets: <= 2 and <= 1.3). The machine's load average goes with them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import local_ray, stop_driver, timed_listing  # noqa: E402

PHOTOS = ("camera", "coins", "moon", "page")


def make_photos(folder: Path) -> list[Path]:
    """Four small gray JPEGs of real photographs (64 px on the long side)."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        image = Image.fromarray(getattr(data, name)()).convert("L")
        image.thumbnail((64, 64))
        path = folder / f"{name}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


LINKS_PER_SOURCE = 50_000
"""Hard links per source file (ext4 allows 65,000 per inode): copies of the photos serve the rest."""


def _source(photos: list[Path], i: int) -> Path:
    photo = photos[i % len(photos)]
    copy = i // (LINKS_PER_SOURCE * len(photos))
    if copy == 0:
        return photo
    path = photo.with_name(f"{photo.stem}-{copy}{photo.suffix}")
    if not path.exists():
        path.write_bytes(photo.read_bytes())
    return path


def relative_name(i: int, layout: str = "tree") -> str:
    """Input ``i``'s path below INPUT: ``dNNN/sNN/img-N.jpg`` (tree: 100 per leaf folder) or ``img-N.jpg`` (flat)."""
    return f"img-{i:07d}.jpg" if layout == "flat" else f"d{i // 10_000:03d}/s{i // 100 % 100:02d}/img-{i:07d}.jpg"


def make_archive(root: Path, count: int, photos: list[Path], layout: str = "tree") -> None:
    """``count`` hard links below ``root`` (:func:`relative_name`)."""
    if (root / ".complete").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = root / relative_name(i, layout)
        if layout == "tree" and i % 100 == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(_source(photos, i), target)
    (root / ".complete").write_text(str(count))


def make_input_list(root: Path, count: int, path: Path) -> None:
    with open(path, "w") as handle:
        for i in range(count):
            handle.write(relative_name(i) + "\n")


def make_manifest(root: Path, output: Path, count: int) -> None:
    """One ``colorized`` row per input, in parts of 10,000 rows (as the job writes them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive_colorizer.colorize import manifest, manifest_writer

    run = manifest.RunInfo("bench0000000", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "00" * 32, "bench")
    folder = output / manifest.MANIFEST_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for seq, start in enumerate(range(0, count, manifest_writer.ROWS_PER_PART)):
        names = [relative_name(i) for i in range(start, min(count, start + manifest_writer.ROWS_PER_PART))]
        columns = {
            name: pa.nulls(len(names), field.type)
            for name, field in zip(manifest.MANIFEST_SCHEMA.names, manifest.MANIFEST_SCHEMA, strict=True)
        }
        columns["input_url"] = pa.array([str(root / n) for n in names])
        columns["output_url"] = pa.array([str(output / n) for n in names])
        columns["status"] = pa.array([manifest.COLORIZED] * len(names))
        columns["model_sha256"] = pa.array([run.model_sha256] * len(names))
        columns["run_id"] = pa.array([run.run_id] * len(names))
        columns["recorded_at"] = pa.array([run.started] * len(names), pa.timestamp("us", tz="UTC"))
        pq.write_table(pa.table(columns, schema=manifest.MANIFEST_SCHEMA), folder / manifest_writer.part_name(run, seq))


def object_store_used() -> int:
    import ray

    total = ray.cluster_resources().get("object_store_memory", 0)
    return int(total - ray.available_resources().get("object_store_memory", total))


def run_driver(inputs: Path, output: Path, model: str, options: argparse.Namespace, extra: list[str]) -> dict:
    """Start the driver, wait for its first output, watch ``--observe`` s more, stop it; the figures."""
    import psutil
    import ray

    command = [
        sys.executable,
        "-m",
        "archive_colorizer",
        "colorize",
        str(inputs),
        str(output),
        "--model",
        model,
        "--no-progress",
        "--task-batch-size",
        str(options.task_batch_size),
        "--ray-address",
        ray.get_runtime_context().gcs_address,
        *extra,
    ]
    started = time.perf_counter()
    log = open(output.parent / f"{output.name}.log", "wb")
    driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process = psutil.Process(driver.pid)
    peak, first, store, deadline = 0, None, None, started + options.timeout
    try:
        while time.perf_counter() < deadline and driver.poll() is None:
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.Error:
                break
            if first is None and _has_output(output):
                first, store = time.perf_counter() - started, object_store_used()
                deadline = min(deadline, time.perf_counter() + options.observe)
            time.sleep(0.05)
    finally:
        stop_driver(driver, 20)
        log.close()
    if first is None:
        raise RuntimeError(f"no output within {options.timeout} s; see {output.parent / (output.name + '.log')}")
    return {
        "seconds_to_first_output": round(first, 3),
        "object_store_bytes_at_first_output": store,
        "driver_peak_rss_bytes": peak,
        "observed_seconds": round(time.perf_counter() - started, 1),
    }


def _has_output(output: Path) -> bool:
    """Whether any output file exists yet (outputs mirror d000/s00/... or the flat folder's img-*.jpg)."""
    if any(output.glob("img-*.jpg")):
        return True
    for top in sorted(output.glob("d*")):
        for leaf in sorted(top.iterdir()):
            if any(leaf.iterdir()):
                return True
    return False


def listing_rate(inputs: Path, output: Path, seconds: float) -> dict:
    """Inputs per second of the listing dataset alone (no colorizing), from its first block on, over at most
    ``seconds`` after it (Ray Data's start-up is not listing)."""
    from archive_colorizer.colorize import listing_tasks

    context = listing_tasks.ListingContext(
        input_url=str(inputs),
        output_url=str(output),
        extensions=(".jpg",),
        requested_format="auto",
        model_sha256="00" * 32,
        first_chunk_rows=1024,
    )
    started = time.perf_counter()
    dataset, progress, _ = listing_tasks.tree_dataset(context)
    listed, first, elapsed = timed_listing(dataset, seconds, started, progress)
    progress.close()
    return {
        "seconds_to_first_block": round((first or started) - started, 3),
        "listed_after_first_block": listed,
        "seconds": round(elapsed, 3),
        "inputs_per_second": round(listed / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/colorize_scale"))
    parser.add_argument("--task-batch-size", type=int, default=16)
    parser.add_argument("--observe", type=float, default=15.0, help="seconds watched after the first output")
    parser.add_argument("--listing-seconds", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--no-extras", action="store_true", help="skip the input-list and resume runs")
    parser.add_argument(
        "--layout",
        choices=("tree", "flat"),
        default="tree",
        help="tree: 100 files per leaf folder; flat: every file in INPUT itself (one folder, no extras)",
    )
    options = parser.parse_args(argv)

    import shutil

    import torch

    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.models.artifact import save_generator

    options.workdir.mkdir(parents=True, exist_ok=True)
    photos = make_photos(options.workdir / "photos")
    torch.manual_seed(0)
    spec = GeneratorSpec(ngf=8, num_downs=5)
    model = str(options.workdir / "generator")
    save_generator(spec.build(), model, spec=spec, working_size=32)
    report: dict = {"sizes": {}, "load_average_start": os.getloadavg(), "cpus": options.cpus}
    with local_ray(options.cpus):
        for size in options.sizes:
            name = f"{size}" if options.layout == "tree" else f"flat-{size}"
            inputs, work = options.workdir / f"archive-{name}", options.workdir / f"run-{name}"
            made = time.perf_counter()
            make_archive(inputs, size, photos, options.layout)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            figures: dict[str, Any] = {"archive_seconds": round(time.perf_counter() - made, 1)}
            figures["fresh"] = run_driver(inputs, work / "out", model, options, [])
            figures["listing"] = listing_rate(inputs, work / "out", options.listing_seconds)
            figures["load_average"] = os.getloadavg()
            report["sizes"][str(size)] = figures
        largest, smallest = str(max(options.sizes)), str(min(options.sizes))
        if not options.no_extras and options.layout == "tree":
            size = max(options.sizes)
            inputs, work = options.workdir / f"archive-{size}", options.workdir / f"run-{size}"
            make_input_list(inputs, size, work / "inputs.txt")
            report["input_list"] = run_driver(
                inputs, work / "out-list", model, options, ["--input-list", str(work / "inputs.txt")]
            )
            make_manifest(inputs, work / "out-resume", size)
            report["resume"] = run_driver(inputs, work / "out-resume", model, options, [])
            report["resume"]["manifest_rows"] = size
    sizes = report["sizes"]
    report["first_output_ratio"] = round(
        sizes[largest]["fresh"]["seconds_to_first_output"] / sizes[smallest]["fresh"]["seconds_to_first_output"], 3
    )
    report["driver_rss_ratio"] = round(
        sizes[largest]["fresh"]["driver_peak_rss_bytes"] / sizes[smallest]["fresh"]["driver_peak_rss_bytes"], 3
    )
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
