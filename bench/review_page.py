"""Benchmark: the colorize review page of a very large run (JSON on stdout).

Writes one run's manifest of ``--rows`` rows (1 % failed, 2 % skipped as colour, the rest
colorized; paths like an archive's) through :class:`manifest_writer.ManifestWriter`, as a run
does (parts of 10,000 rows and the run's record), then times what the driver does at the end
of a run for the review page: one streamed pass over the run's manifest parts
(:func:`review.iter_run_rows` into :class:`review.ReviewRows`) and :func:`review.render_page`.
Thumbnails are left out (their cost is fixed: ``--review-samples`` pairs, whatever the size of
the job). Reports the wall time, the growth of the process's peak memory during the pass (the
manifest is written by a child process), and the page's size.

    python bench/review_page.py --rows 1000000
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing
import resource
import tempfile
import time

import pyarrow as pa

from archive_colorizer.colorize import manifest, manifest_writer, review


def write_run(output: str, rows: int, run: manifest.RunInfo, chunk: int = 100_000) -> None:
    """``rows`` manifest rows of one run under ``output/_manifest``, written as a run writes them.

    :class:`manifest_writer.ManifestWriter` writes parts of at most 10,000 rows and the run's
    record under ``output/_runs``, as the colorize job does.
    """
    writer = manifest_writer.ManifestWriter(output, run)
    now = _dt.datetime.now(_dt.timezone.utc)
    for start in range(0, rows, chunk):
        index = range(start, min(rows, start + chunk))
        status = [
            manifest.FAILED if i % 100 == 0 else manifest.SKIPPED_COLOR if i % 50 == 1 else manifest.COLORIZED
            for i in index
        ]
        failed = [s == manifest.FAILED for s in status]
        columns = {
            "input_url": [f"s3://archive/box-{i // 1000:04d}/scan-{i:08d}.tif" for i in index],
            "output_url": [
                None if s != manifest.COLORIZED else f"s3://colorized/box-{i // 1000:04d}/scan-{i:08d}.tif"
                for i, s in zip(index, status, strict=True)
            ],
            "status": status,
            "reason": ["truncated" if f else None for f in failed],
            "error": [
                f"ImageDecodeError: s3://archive/scan-{i:08d}.tif: file is truncated" if f else None
                for i, f in zip(index, failed, strict=True)
            ],
            "width": [4000] * len(index),
            "height": [3000] * len(index),
            "input_mode": ["L"] * len(index),
            "input_format": ["TIFF"] * len(index),
            "mean_chroma": [0.5 if s == manifest.SKIPPED_COLOR else None for s in status],
            "model_sha256": [None if s != manifest.COLORIZED else run.model_sha256 for s in status],
            "seconds": [0.25] * len(index),
            "run_id": [run.run_id] * len(index),
            "recorded_at": [now] * len(index),
        }
        table = pa.table({name: columns.get(name, [None] * len(index)) for name in manifest.MANIFEST_SCHEMA.names})
        writer.write(table.cast(manifest.MANIFEST_SCHEMA))
    writer.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="manifest rows of the run (default 1,000,000)")
    parser.add_argument("--samples", type=int, default=24, help="before/after pairs (default 24)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="review-bench-") as output:
        run = manifest.RunInfo("benchrun0001", _dt.datetime.now(_dt.timezone.utc), "0" * 64, "bench")
        writer = multiprocessing.get_context("spawn").Process(target=write_run, args=(output, args.rows, run))
        writer.start()  # in another process, so that this one's peak memory is the review pass's
        writer.join()
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        rows = review.ReviewRows(args.samples, review.FAILURES_LISTED)
        for batch in review.iter_run_rows(output, run.run_id, None):
            rows.add(batch)
        pass_seconds = time.perf_counter() - start
        pairs = [
            (row, {"before": "b.jpg", "after": "a.jpg", "width": 320, "height": 240}) for row in rows.sample_rows()
        ]
        summary = {
            "inputs": args.rows,
            "counts": {s: 0 for s in manifest.STATUSES},
            "wall_seconds": 1.0,
            "images_per_second": 1.0,
            "run_id": run.run_id,
            "started": "",
            "finished": "",
            "message": "",
            "manifest": manifest.manifest_url(output),
            "runs": [],
            "model": {"url": "s3://models/gen", "sha256": run.model_sha256},
            "config": {"output": output},
        }
        page = review.render_page(summary, rows, pairs, "s3://archive/")
        report = {
            "rows": args.rows,
            "failed": rows.failed_total,
            "samples": len(pairs),
            "pass_seconds": round(pass_seconds, 2),
            "render_seconds": round(time.perf_counter() - start - pass_seconds, 3),
            "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024, 1),
            "page_bytes": len(page.encode()),
        }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
