"""A stop signal (``ray job stop``, Kubernetes, Ctrl-C) at any moment of a colorize process.

The moments are made certain with the job's hold points (the ``gates`` fixture): the job waits
there until the test has sent its signal, so none of these tests depends on the job being slow.

- in the middle: one input's read is held, so the job cannot finish; SIGTERM gives exit 143, and
  a re-run counts every input once;
- at start-up (before the package has loaded): exit 143 or 130 with the one-line message;
- after the job finished, while the process tears down: exit 0 with its summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO_ROOT

CLI = str(Path(sys.executable).with_name("archive-colorizer"))


def _archive(folder: Path, photos, count: int) -> None:
    folder.mkdir()
    for index in range(count):
        name = ("astronaut", "coffee", "chelsea", "rocket")[index % 4]
        gray = Image.fromarray(photos[name]).convert("L").resize((96, 96))
        gray.rotate(index * 7).save(folder / f"scan_{index:03d}.png")


@contextmanager
def _started(args: list[str], gates, point: str, **popen) -> Iterator[subprocess.Popen]:
    """The command started with ``point`` held; on the way out the point is released and the process gone."""
    job = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        yield job
    finally:
        gates.release(point)
        if job.poll() is None:
            job.kill()
            job.wait()


@pytest.mark.slow
def test_sigterm_during_colorize_keeps_a_manifest_from_which_a_rerun_counts_every_input_once(
    photos, tiny_model, tmp_path, gates
):
    archive = tmp_path / "archive"
    _archive(archive, photos, 48)
    output = tmp_path / "out"
    args = [
        CLI,
        "colorize",
        str(archive),
        str(output),
        "--model",
        tiny_model,
        "--no-progress",
        "--task-batch-size",
        "2",
        "--manifest-flush-seconds",
        "1",
    ]
    env = dict(os.environ, RAY_ADDRESS="local")
    gates.hold("colorize.read", "*/scan_047.png")  # the last input cannot finish: the job cannot either
    with _started(args, gates, "colorize.read", env=env) as job:
        gates.wait_reached("colorize.read", process=job)
        deadline = time.monotonic() + 300
        while not list((output / "_manifest").glob("part-*")) and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # rows of other inputs written: the run is certainly between 0 and 48
        assert job.poll() is None, job.communicate()
        job.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        _, err = job.communicate(timeout=120)
    seconds = time.monotonic() - stopped
    assert job.returncode == 128 + signal.SIGTERM, err
    assert "stopped by signal 15; re-running the same command resumes" in err, err
    assert seconds < 60, seconds
    rerun = subprocess.run(args, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    from archive_colorizer.colorize.manifest import latest_rows, read_manifest

    rows = latest_rows(read_manifest(str(output)))
    inputs = rows.column("input_url").to_pylist()
    assert len(inputs) == len(set(inputs)) == 48
    assert set(rows.column("status").to_pylist()) <= {"colorized", "skipped_existing"}
    assert len(list(output.glob("scan_*.png"))) == 48
    summary = json.loads((output / "_summary.json").read_text())
    assert sum(summary["counts"].values()) == summary["inputs"] <= 48, summary["counts"]
    # The stopped run wrote the rows of its finished outputs before exiting; the re-run passed over
    # those (no new row) and did the rest: every input has exactly one row.
    by_run = Counter(read_manifest(str(output)).column("run_id").to_pylist())
    stopped_rows = by_run[summary["runs"][0]["run_id"]]
    assert 0 < stopped_rows < 48 and sum(by_run.values()) == 48, by_run
    assert summary["passed_over"] == stopped_rows and summary["inputs"] == 48


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_at_start_up_exits_with_128_plus_the_signal_and_one_line(tiny_model, tmp_path, gates, stop):
    (tmp_path / "archive").mkdir()
    args = [CLI, "colorize", str(tmp_path / "archive"), str(tmp_path / "out"), "--model", tiny_model]
    gates.hold("cli.start", "colorize")  # the process has its handlers, and nothing else yet
    with _started(args, gates, "cli.start") as job:
        gates.wait_reached("cli.start", process=job, timeout=60)
        job.send_signal(stop)
        out, err = job.communicate(timeout=60)
    assert job.returncode == 128 + stop, err
    message = f"archive-colorizer colorize: stopped by signal {stop}; re-running the same command resumes"
    assert err.splitlines() == [message]
    assert out == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_after_the_job_finished_exits_0_with_its_summary(
    ray_local, photos, tiny_model, tmp_path, gates, stop
):
    import ray

    _archive(tmp_path / "archive", photos, 3)
    output = tmp_path / "out"
    args = [CLI, "colorize", str(tmp_path / "archive"), str(output), "--model", tiny_model, "--no-progress"]
    args += ["--ray-address", ray.get_runtime_context().gcs_address]
    gates.hold("cli.finish", "colorize")  # the job has returned; the process is about to tear down
    with _started(args, gates, "cli.finish") as job:
        gates.wait_reached("cli.finish", process=job)
        job.send_signal(stop)
        gates.release("cli.finish")
        out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    assert ": 3 inputs in " in out and "  colorized                  3   100.0%" in out, out
    assert f"archive-colorizer colorize: signal {stop} after the job ended; exit 0" in err, err
    summary = json.loads((output / "_summary.json").read_text())
    assert summary["counts"]["colorized"] == 3
