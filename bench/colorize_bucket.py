"""Colorize a simulated bucket (bench/s3sim.py): parallel listing of every layout, and resume that costs nothing.

The bucket is :mod:`s3sim`'s (generated keys, 30 ms per ``LIST``, 15 ms per ``HEAD``/``GET``/``PUT``),
served from a thread of this process; a local Ray of ``--cpus`` CPUs runs the work. Prints JSON:

- ``listing``: per layout (``wide``, ``flat``), size (``--sizes``, default 100k and 100M keys) and
  number of listing tasks (``--tasks``, default 1 and 4): the listing dataset alone
  (``listing_tasks.tree_dataset``: ranges planned with ``LIST`` probes, listed by that many tasks), its
  seconds to the first block, keys per second after it over ``--listing-seconds``, the requests
  it made by type, and the CPU time it cost, all processes together (this one with the simulator's
  thread and the reader, Ray's GCS, raylet and workers): ``cpu_ms_per_1000_keys`` listed (one
  ``LIST`` page) and ``keys_per_cpu_second``, figures the other sessions sharing the cores barely move;
- ``jobs``: the colorize job (its driver a separate process, a tiny generator) on the ``tree``
  layout of ``--job-keys`` keys: ``fresh`` (seconds to the first output, driver peak RSS),
  ``rerun_finished`` (a manifest of every input synthesized on the simulator: the run to its end,
  requests by type and by kind of object) and ``rerun_90`` (90% of the inputs finished, every tenth
  one not: seconds to the first new output);
- ``scale`` (with ``--scale-seconds``): the whole job for that long on each layout and size (the scans
  ``--photo-side`` pixels square, the job's ``--concurrent-requests`` if given): first output, outputs
  written and ``outputs_per_second_after_first``, the driver's RSS;
- ``load_average`` at the start and end (the machine is shared).

The figures to judge are ratios and counts (``docs/colorize-at-scale.md``), not absolute seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import s3sim  # noqa: E402
from common import TreeCpu, local_ray, stop_driver, timed_listing  # noqa: E402

CREDENTIALS = {"key": "bench", "secret": "bench"}


def _options(sim: s3sim.S3Sim) -> dict[str, Any]:
    return {"endpoint_url": sim.endpoint, **CREDENTIALS, "skip_instance_cache": True}


def listing_figures(sim: s3sim.S3Sim, tasks: int, seconds: float) -> dict[str, Any]:
    """The listing dataset alone on ``sim``'s bucket with ``tasks`` listing tasks: first block, rate, requests."""
    from archive_colorizer.colorize import listing_tasks

    context = listing_tasks.ListingContext(
        input_url=sim.url, output_url="s3://archive/out", extensions=(".jpg",), requested_format="auto",
        model_sha256="00" * 32, first_chunk_rows=1024,
        storage_options=_options(sim), run_id=f"bench-{tasks}", listing_tasks=tasks,
    )  # fmt: skip
    sim.reset_stats()
    with TreeCpu() as meter:
        started = time.perf_counter()
        dataset, progress, _ = listing_tasks.tree_dataset(context)
        planned = time.perf_counter() - started
        listed, first, elapsed = timed_listing(dataset, seconds, started, progress)
        progress.close()
        stats = sim.stats()
    cpu = meter.seconds
    return {
        "listing_tasks": tasks,
        "seconds_to_plan": round(planned, 3),
        "seconds_to_first_block": round((first or started) - started, 3),
        "keys_listed_after_first_block": listed,
        "keys_per_second": round(listed / elapsed, 1),
        "requests": stats["requests"],
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_1000_keys": round(1e6 * cpu / max(stats["keys_listed"], 1), 1),
        "keys_per_cpu_second": round(stats["keys_listed"] / max(cpu, 1e-9)),
        "cpu_seconds_by_process": meter.by_process(),
    }


def synthesize_manifest(sim: s3sim.S3Sim, output: str, count: int, every: int = 1, skip: int | None = None) -> int:
    """Put a manifest of ``colorized`` rows for inputs ``0..count-1`` (but every ``skip``-th) on the simulator,
    in parts of 10,000 rows as the job writes them; returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3fs

    from archive_colorizer.colorize import manifest, manifest_writer

    fs = s3fs.S3FileSystem(endpoint_url=sim.endpoint, **CREDENTIALS, skip_instance_cache=True)
    run = manifest.RunInfo("bench0000000", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "", "bench")
    space, written, seq = sim.space, 0, 0
    chosen = [i for i in range(count) if skip is None or i % skip]
    for start in range(0, len(chosen), manifest_writer.ROWS_PER_PART):
        keys = [space.key(i) for i in chosen[start : start + manifest_writer.ROWS_PER_PART]]
        n = len(keys)
        columns = {f.name: pa.nulls(n, f.type) for f in manifest.MANIFEST_SCHEMA}
        columns["input_url"] = pa.array([f"s3://archive/{k}" for k in keys])
        columns["output_url"] = pa.array([f"{output}/{k.removeprefix(s3sim.ROOT)}" for k in keys])
        columns["status"] = pa.array([manifest.COLORIZED] * n)
        columns["model_sha256"] = pa.array([""] * n)  # "": made by an unknown generator, counts as finished
        columns["run_id"] = pa.array([run.run_id] * n)
        columns["recorded_at"] = pa.array([run.started] * n, pa.timestamp("us", tz="UTC"))
        buffer = io.BytesIO()
        pq.write_table(pa.table(columns, schema=manifest.MANIFEST_SCHEMA), buffer, compression="zstd")
        path = f"{output.removeprefix('s3://')}/{manifest.MANIFEST_DIR}/{manifest_writer.part_name(run, seq)}"
        fs.pipe_file(path, buffer.getvalue())
        written, seq = written + n, seq + 1
    return written


def _kinds(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Requests by type and kind of object: inputs (scans/), outputs, _manifest, _resume, _runs, other."""
    kinds: dict[str, dict[str, int]] = {}
    for kind, prefixes in stats["by_prefix"].items():
        for prefix, n in prefixes.items():
            if prefix.startswith(s3sim.ROOT):
                what = "inputs"
            elif prefix.startswith("out") and prefix.count("/") == 1:
                what = "job files"  # _config.yaml, _summary.json
            elif prefix.startswith("out") and "/_" in prefix:
                what = prefix.split("/_", 1)[1].split("/", 1)[0].rstrip("/")
                what = "_" + what
            elif prefix.startswith("out"):
                what = "outputs"
            else:
                what = "other"
            kinds.setdefault(what, {}).setdefault(kind, 0)
            kinds[what][kind] += n
    return kinds


def _output_puts(stats: dict[str, Any], output_prefix: str) -> int:
    return sum(
        n
        for prefix, n in stats["by_prefix"].get("PUT", {}).items()
        if prefix.startswith(output_prefix) and "/_" not in prefix
    )


def run_driver(
    sim: s3sim.S3Sim,
    output: str,
    model: str,
    options: argparse.Namespace,
    to_end: bool,
    workdir: Path,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The colorize driver on ``sim`` until ``--observe`` seconds after its first output (``to_end``: until it
    ends; ``seconds``: that long after it starts); figures, requests, the driver's RSS every ``--sample`` s."""
    import psutil
    import ray

    command = [sys.executable, "-m", "archive_colorizer", "colorize", sim.url, output, "--model", model]
    command += ["--no-progress", "--ray-address", ray.get_runtime_context().gcs_address]
    command += [f"--storage-option=endpoint_url={sim.endpoint}"]
    command += [f"--storage-option={k}={v}" for k, v in CREDENTIALS.items()]
    if options.concurrent_requests is not None:
        command += ["--concurrent-requests", str(options.concurrent_requests)]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    prefix = output.removeprefix("s3://archive/")
    sim.reset_stats()
    started = time.perf_counter()
    log_path = workdir / f"{prefix.replace('/', '_')}.log"
    with open(log_path, "wb") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        process = psutil.Process(driver.pid)
        peak, first, deadline = 0, None, started + (seconds or options.timeout)
        series: list[tuple[float, int, int]] = []  # (seconds, driver RSS, outputs written) every --sample s
        try:
            while time.perf_counter() < deadline and driver.poll() is None:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    break
                peak = max(peak, rss)
                now = time.perf_counter() - started
                if not series or now - series[-1][0] >= options.sample:
                    series.append((round(now, 1), rss, _output_puts(sim.stats(), prefix)))
                if first is None and _output_puts(sim.stats(), prefix) > 0:
                    first = time.perf_counter() - started
                    if not to_end and seconds is None:
                        deadline = min(deadline, time.perf_counter() + options.observe)
                time.sleep(0.05)
        finally:
            ended = time.perf_counter() - started
            code = driver.poll()
            stop_driver(driver)
    stats = sim.stats()
    figures: dict[str, Any] = {
        "seconds_to_first_output": None if first is None else round(first, 3),
        "seconds": round(ended, 3),
        "exit_code": code,
        "driver_peak_rss_bytes": peak,
        "outputs_written": _output_puts(stats, prefix),
        # the rate once outputs flow: what the tasks sustain, without Ray's and the listing's start
        "outputs_per_second_after_first": (
            None if first is None or ended <= first else round((_output_puts(stats, prefix) - 1) / (ended - first), 2)
        ),
        "driver_rss_series": series,
        "requests": stats["requests"],
        "requests_by_kind": _kinds(stats),
        "log": str(log_path),
    }
    if to_end and code == 0:
        summary = json.loads(_read(sim, f"{prefix}/_summary.json"))
        figures["summary"] = {k: summary[k] for k in ("inputs", "counts", "passed_over", "wall_seconds")}
    return figures


def _read(sim: s3sim.S3Sim, key: str) -> bytes:
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=sim.endpoint, **CREDENTIALS, skip_instance_cache=True).cat(f"archive/{key}")


def jobs(options: argparse.Namespace, model: str) -> dict[str, Any]:
    """Fresh run, re-run of a finished job, re-run of a 90%-finished job, on the tree layout."""
    out: dict[str, Any] = {"keys": options.job_keys, "layout": "tree"}
    with s3sim.S3Sim("tree", options.job_keys, prefixes=max(1, options.job_keys // 1000)) as sim:
        out["listing_alone"] = listing_figures(sim, options.job_tasks, options.listing_seconds)
        out["fresh"] = run_driver(sim, "s3://archive/out-fresh", model, options, False, options.workdir)
        rows = synthesize_manifest(sim, "s3://archive/out-done", options.job_keys)
        out["rerun_finished"] = {"manifest_rows": rows, "first": None, "second": None}
        # The first re-run reads the synthesized manifest and keeps the index; the second reads the index.
        out["rerun_finished"]["first"] = run_driver(sim, "s3://archive/out-done", model, options, True, options.workdir)
        out["rerun_finished"]["second"] = run_driver(
            sim, "s3://archive/out-done", model, options, True, options.workdir
        )
        rows = synthesize_manifest(sim, "s3://archive/out-90", options.job_keys, skip=10)
        out["rerun_90"] = {"manifest_rows": rows}
        out["rerun_90"].update(run_driver(sim, "s3://archive/out-90", model, options, False, options.workdir))
    fresh, ninety = out["fresh"]["seconds_to_first_output"], out["rerun_90"]["seconds_to_first_output"]
    if fresh and ninety:
        out["rerun_90_first_output_ratio"] = round(ninety / fresh, 2)
    return out


def scale_runs(options: argparse.Namespace, model: str) -> dict[str, Any]:
    """The whole job for ``--scale-seconds`` on each of ``--layouts`` x ``--scale-sizes``: first output and
    driver RSS, and their ratios largest size / smallest size per layout."""
    out: dict[str, Any] = {}
    for layout in options.layouts:
        runs = {}
        for size in options.scale_sizes:
            with s3sim.S3Sim(layout, size, photo_side=options.photo_side) as sim:
                output = f"s3://archive/out-{layout}-{size}"
                runs[str(size)] = run_driver(sim, output, model, options, False, options.workdir, options.scale_seconds)
                runs[str(size)]["load_average_end"] = os.getloadavg()
        small, large = runs[str(min(options.scale_sizes))], runs[str(max(options.scale_sizes))]
        firsts = (small["seconds_to_first_output"], large["seconds_to_first_output"])
        out[layout] = {
            "runs": runs,
            "first_output_ratio": round(firsts[1] / firsts[0], 2) if all(firsts) else None,
            "driver_peak_rss_ratio": round(large["driver_peak_rss_bytes"] / small["driver_peak_rss_bytes"], 3),
        }
    return out


def _tiny_generator(workdir: Path) -> str:
    """An untrained tiny generator (ngf 8, 5 downs, 32 px) saved under ``workdir``; its path."""
    import torch

    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.models.artifact import save_generator

    torch.manual_seed(0)
    spec = GeneratorSpec(ngf=8, num_downs=5)
    model = str(workdir / "generator")
    save_generator(spec.build(), model, spec=spec, working_size=32)
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", nargs="+", default=["wide", "flat"], choices=s3sim.LAYOUTS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 100_000_000])
    parser.add_argument("--tasks", nargs="+", type=int, default=[1, 4], help="listing tasks to compare")
    parser.add_argument("--listing-seconds", type=float, default=10.0)
    parser.add_argument("--job-keys", type=int, default=100_000, help="keys of the job runs (0: no job runs)")
    parser.add_argument("--job-tasks", type=int, default=4, help="listing tasks of the job runs' listing figure")
    parser.add_argument("--observe", type=float, default=3.0, help="seconds a run goes on after its first output")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--list-ms", type=float, default=30.0, help="LIST latency of the listing runs (ms)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--scale-seconds", type=float, default=0.0, help="length of each whole-job scale run (0: none)")
    parser.add_argument("--scale-sizes", nargs="+", type=int, default=[100_000, 100_000_000])
    parser.add_argument("--sample", type=float, default=15.0, help="seconds between driver RSS samples")
    parser.add_argument(
        "--photo-side", type=int, default=96, help="side (pixels) of the gray scans of the scale runs' bucket"
    )
    parser.add_argument(
        "--concurrent-requests", type=int, default=None, help="the job's --concurrent-requests (default: its own)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/colorize-bucket"))
    options = parser.parse_args(argv)
    options.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load_average_start": os.getloadavg(), "cpus": options.cpus, "listing": {}}
    with local_ray(options.cpus):
        for layout in options.layouts:
            for size in options.sizes:
                with s3sim.S3Sim(layout, size, latency={"LIST": options.list_ms / 1000}) as sim:
                    runs = [listing_figures(sim, tasks, options.listing_seconds) for tasks in options.tasks]
                rates = [run["keys_per_second"] for run in runs]
                report["listing"][f"{layout}-{size}"] = {
                    "runs": runs,
                    "rate_ratio_most_to_fewest_tasks": round(rates[-1] / max(rates[0], 1e-9), 2),
                }
        model = _tiny_generator(options.workdir) if options.job_keys or options.scale_seconds else ""
        if options.job_keys:
            report["jobs"] = jobs(options, model)
        if options.scale_seconds:
            report["scale"] = scale_runs(options, model)
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
