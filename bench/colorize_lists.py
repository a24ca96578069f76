"""Colorize from a 100M-entry Parquet input list and a 10M-key S3 Inventory on the S3 simulator.

The objects the lists name live on ``bench/s3sim.py`` (a separate process, ``flat`` layout,
``--keys`` generated keys ``scans/IMG_<n>.jpg``, default latencies). The benchmark makes:

- ``parquet``: a local Parquet list of ``--entries`` relative names (``IMG_<n>.jpg``), written in
  row groups of 1M rows (pyarrow, a chunk at a time: the generator never holds the list);
- ``inventory``: an S3 Inventory report of ``--inventory-keys`` keys as AWS writes it
  (``manifest.json`` and gzip CSV files of 1M rows without a header, ``Bucket, Key, Size``, the
  key URL-encoded), put on the simulator in bucket ``inventory``;

then, for each, runs the colorize driver as a separate process (``python -m archive_colorizer
colorize s3://archive/scans s3://archive/out-<name> --input-list ...``, a tiny generator, a
local Ray of ``--cpus`` CPUs started here) and measures:

- ``seconds_to_first_output``: driver start to the first output object in OUTPUT;
- ``peak_rss_bytes``: the peak RSS of every process of the run (the driver, Ray's own processes,
  the listing tasks' and claim shards' workers; psutil every 0.2 s) from the driver's start to
  ``--observe`` s after the first output; ``max_process_rss_bytes`` is the largest. A Ray worker's
  RSS counts the pages of the node's shared object store it has touched; ``private`` (RSS less
  shared pages) is what the process itself holds;
- ``listing``: the list's listing dataset alone (no colorizing) for ``--listing-seconds``:
  entries per second and the claim shards' size (distinct inputs, bytes);

and ``claim_shard``: one claim table (:mod:`archive_colorizer.colorize.claims`) filled with
``--shard-entries`` random keys in batches of 4,096 in a process of its own: its peak RSS, what
one shard of a 100M-entry list holds (10M per shard).

Prints JSON with the load average at the start and the end (and keeps it in
``WORKDIR/report.json``, written after each list). Run::

    .venv/bin/python bench/colorize_lists.py --entries 100000000 --inventory-keys 10000000
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import local_ray, stop_driver  # noqa: E402
from s3sim import KeySpace  # noqa: E402

ROW_GROUP = 1_000_000


def _names(space: KeySpace, start: int, stop: int, prefix: str = "") -> Any:
    """Keys ``start..stop`` of the flat layout (without ``scans/``), as an Arrow string array (vectorized)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pa.array(np.arange(start, stop)).cast(pa.string()), width=space.name_digits, padding="0")
    return pc.binary_join_element_wise(f"{prefix}IMG_", digits, ".jpg", "")


def make_parquet_list(path: Path, entries: int, space: KeySpace) -> float:
    """A Parquet list of ``entries`` names relative to ``s3://archive/scans``; returns the seconds it took."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists() and pq.ParquetFile(path).metadata.num_rows == entries:
        return 0.0
    started = time.perf_counter()
    schema = pa.schema([("path", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, entries, ROW_GROUP):
            writer.write_table(pa.table({"path": _names(space, start, min(entries, start + ROW_GROUP))}, schema=schema))
    return time.perf_counter() - started


def make_inventory(fs: Any, keys: int, space: KeySpace) -> tuple[str, float]:
    """An S3 Inventory report of ``keys`` keys of bucket ``archive`` in bucket ``inventory``; its manifest URL."""
    import pyarrow as pa
    import pyarrow.csv

    started = time.perf_counter()
    base = "inventory/archive/daily"
    files = []
    for number, start in enumerate(range(0, keys, ROW_GROUP)):
        stop = min(keys, start + ROW_GROUP)
        table = pa.table(
            {
                "Bucket": pa.array(["archive"] * (stop - start)),
                "Key": _names(space, start, stop, "scans/"),
                "Size": pa.array([2048] * (stop - start), pa.int64()),
            }
        )
        buffer = io.BytesIO()
        pyarrow.csv.write_csv(table, buffer, pyarrow.csv.WriteOptions(include_header=False, quoting_style="all_valid"))
        data = gzip.compress(buffer.getvalue(), compresslevel=1)
        key = f"{base}/data/part-{number:05d}.csv.gz"
        fs.pipe(f"inventory/{key}", data)
        files.append({"key": key, "size": len(data), "MD5checksum": "0" * 32})
    report = {
        "sourceBucket": "archive",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "creationTimestamp": "1764550800000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": files,
    }
    fs.pipe(f"inventory/{base}/2026-12-01T01-00Z/manifest.json", json.dumps(report).encode())
    return f"s3://inventory/{base}/2026-12-01T01-00Z/manifest.json", time.perf_counter() - started


class Watch:
    """Peak RSS of every process below this one (Ray's and the driver's), sampled by :meth:`sample`."""

    def __init__(self, exclude: set[int]) -> None:
        import psutil

        self.me = psutil.Process()
        self.exclude = exclude
        self.peaks: dict[int, tuple[int, int, str]] = {}

    def sample(self) -> None:
        import psutil

        for process in self.me.children(recursive=True):
            if process.pid in self.exclude:
                continue
            try:
                memory = process.memory_info()
                label = " ".join(process.cmdline()[:3])[:80] or process.name()
            except psutil.Error:
                continue
            rss, private = self.peaks.get(process.pid, (0, 0, ""))[:2]
            self.peaks[process.pid] = (max(rss, memory.rss), max(private, memory.rss - memory.shared), label)

    def report(self, top: int = 8) -> dict[str, Any]:
        """The largest peaks: ``rss`` (Ray's workers count the object store's shared pages they touched)
        and ``private`` (RSS less shared pages: what the process itself holds)."""
        ranked = sorted(self.peaks.values(), reverse=True)
        return {
            "max_process_rss_bytes": ranked[0][0] if ranked else 0,
            "max_process_private_bytes": max((p for _, p, _ in ranked), default=0),
            "processes_watched": len(ranked),
            "peak_rss_bytes": [{"rss": rss, "private": p, "process": label} for rss, p, label in ranked[:top]],
        }


def first_output(client: Any, prefix: str) -> bool:
    answer = client.list_objects_v2(Bucket="archive", Prefix=f"{prefix}/IMG_", MaxKeys=1)
    return bool(answer.get("KeyCount"))


def run_driver(name: str, list_url: str, model: str, options: argparse.Namespace, watch: Watch) -> dict[str, Any]:
    """Start the driver, wait for its first output, watch ``--observe`` s more, stop it; the figures."""
    import boto3  # type: ignore[import-untyped]  # no stubs installed; the benchmark only lists
    import ray

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    command = [
        sys.executable,
        "-m",
        "archive_colorizer",
        "colorize",
        "s3://archive/scans",
        f"s3://archive/out-{name}",
        "--input-list",
        list_url,
        "--model",
        model,
        "--no-progress",
        "--task-batch-size",
        "16",
        "--ray-address",
        ray.get_runtime_context().gcs_address,
    ]
    log_path = options.workdir / f"driver-{name}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        first, deadline, next_look = None, started + options.timeout, 0.0
        try:
            while time.perf_counter() < deadline and driver.poll() is None:
                watch.sample()
                if first is None and time.perf_counter() >= next_look:
                    next_look = time.perf_counter() + 0.5
                    if first_output(client, f"out-{name}"):
                        first = time.perf_counter() - started
                        deadline = time.perf_counter() + options.observe
                time.sleep(0.2)
        finally:
            stop_driver(driver)
    if first is None:
        raise RuntimeError(f"{name}: no output within {options.timeout} s; see {log_path}")
    return {"seconds_to_first_output": round(first, 2), "observed_seconds": round(time.perf_counter() - started, 1)}


def listing_alone(list_url: str, seconds: float, watch: Watch) -> dict[str, Any]:
    """The list's listing dataset without colorizing, for ``seconds`` after its first block."""
    from archive_colorizer.colorize import listing_tasks

    context = listing_tasks.ListingContext(
        input_url="s3://archive/scans",
        output_url="s3://archive/out-listing",
        extensions=(".jpg",),
        requested_format="auto",
        model_sha256="00" * 32,
        first_chunk_rows=1024,
    )
    started = time.perf_counter()
    dataset, progress, _ = listing_tasks.list_dataset(list_url, context)
    listed, first = 0, None
    batches = iter(dataset.iter_batches(batch_format="pyarrow", batch_size=None))
    try:
        for batch in batches:
            watch.sample()
            if first is None:
                first = time.perf_counter()
            listed += batch.num_rows
            if time.perf_counter() - first > seconds:
                break
        shards = progress.claims.info()
    finally:
        # End the dataset's execution before Ray is shut down: a Ray Data thread left iterating
        # after ray.shutdown() makes Ray end the whole process.
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        progress.close()
    elapsed = max(time.perf_counter() - (first or started), 1e-9)
    return {
        "seconds_to_first_block": round((first or started) - started, 2),
        "entries_listed": listed,
        "entries_per_second": round(listed / elapsed, 1),
        "claim_shards": len(shards),
        "claimed_inputs": sum(s["inputs"] for s in shards),
        "claim_bytes": sum(s["bytes"] for s in shards),
    }


SHARD_PROBE = """
import resource, sys, time, numpy as np
from archive_colorizer.colorize import claims
n = int(sys.argv[1]); table = claims.ClaimTable(None); rng = np.random.default_rng(0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
started = time.perf_counter()
for start in range(0, n, 4096):
    size = min(4096, n - start)
    table.claim(rng.integers(0, 2**63, size, dtype=np.uint64), np.arange(start, start + size, dtype=np.uint64))
print(n, len(table), table.nbytes(), base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      time.perf_counter() - started)
"""


def claim_shard(entries: int) -> dict[str, Any]:
    """One shard's table filled with ``entries`` random keys in its own process: peak RSS and time."""
    out = subprocess.run([sys.executable, "-c", SHARD_PROBE, str(entries)], capture_output=True, text=True, check=True)
    n, held, nbytes, base, peak, seconds = out.stdout.split()
    return {
        "entries": int(n),
        "distinct_inputs": int(held),
        "claim_bytes": int(nbytes),
        "process_rss_before_bytes": int(base),
        "process_peak_rss_bytes": int(peak),
        "seconds": round(float(seconds), 1),
        "microseconds_per_claim": round(float(seconds) / int(n) * 1e6, 2),
    }


def start_simulator(keys: int, port: int, store: Path) -> subprocess.Popen:
    import urllib.request

    store.mkdir(parents=True, exist_ok=True)
    simulator = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("s3sim.py")), "--layout", "flat", "--keys", str(keys),
         "--port", str(port), "--store", str(store)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=1)
            return simulator
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the S3 simulator did not start")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000_000, help="entries of the Parquet list")
    parser.add_argument("--inventory-keys", type=int, default=10_000_000)
    parser.add_argument("--shard-entries", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/colorize_lists"))
    parser.add_argument("--observe", type=float, default=30.0, help="seconds watched after the first output")
    parser.add_argument("--listing-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--port", type=int, default=9717)
    parser.add_argument("--which", nargs="+", default=["parquet", "inventory"], choices=["parquet", "inventory"])
    options = parser.parse_args(argv)

    import s3fs
    import torch

    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.models.artifact import save_generator

    options.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load_average_start": os.getloadavg(), "cpus": options.cpus}
    report["claim_shard"] = claim_shard(options.shard_entries)
    torch.manual_seed(0)
    spec = GeneratorSpec(ngf=8, num_downs=5)
    model = str(options.workdir / "generator")
    save_generator(spec.build(), model, spec=spec, working_size=32)
    keys = max(options.entries, options.inventory_keys)
    space = KeySpace("flat", keys)
    simulator = start_simulator(keys, options.port, options.workdir / "store")
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{options.port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        lists: dict[str, str] = {}
        if "parquet" in options.which:
            path = options.workdir / f"list-{options.entries}.parquet"
            report["parquet_list_seconds_to_make"] = round(make_parquet_list(path, options.entries, space), 1)
            report["parquet_list_bytes"] = path.stat().st_size
            lists["parquet"] = str(path)
        if "inventory" in options.which:
            fs = s3fs.S3FileSystem()
            fs.mkdir("inventory")
            lists["inventory"], made = make_inventory(fs, options.inventory_keys, space)
            report["inventory_seconds_to_make"] = round(made, 1)
        with local_ray(options.cpus):
            for name, url in lists.items():
                watch = Watch({simulator.pid})
                figures: dict[str, Any] = {"list": url}
                figures["fresh"] = run_driver(name, url, model, options, watch)
                figures["fresh"].update(watch.report())
                watch = Watch({simulator.pid})
                figures["listing"] = listing_alone(url, options.listing_seconds, watch)
                figures["listing"].update(watch.report(top=4))
                figures["load_average"] = os.getloadavg()
                report[name] = figures
                (options.workdir / "report.json").write_text(json.dumps(report, indent=2))
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
