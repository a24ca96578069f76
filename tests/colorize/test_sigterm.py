"""SIGTERM (``ray job stop``, Kubernetes) during colorize: exit 143, and a re-run counts every input once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO_ROOT

CLI = str(Path(sys.executable).with_name("archive-colorizer"))


@pytest.mark.slow
def test_sigterm_during_colorize_keeps_a_manifest_from_which_a_rerun_counts_every_input_once(
    photos, tiny_model, tmp_path
):
    archive = tmp_path / "archive"
    archive.mkdir()
    for index in range(48):
        name = ("astronaut", "coffee", "chelsea", "rocket")[index % 4]
        gray = Image.fromarray(photos[name]).convert("L").resize((96, 96))
        gray.rotate(index * 7).save(archive / f"scan_{index:03d}.png")
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
    job = subprocess.Popen(args, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((output / "_manifest").glob("part-*")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.poll() is None, "colorize finished before it could be stopped"
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
    # The stopped run wrote the rows of its finished outputs before exiting; the re-run did the rest.
    runs = read_manifest(str(output)).column("run_id").to_pylist()
    stopped_rows, rerun_rows = sorted(Counter(runs).values())
    assert 0 < stopped_rows < 48 and rerun_rows == 48, Counter(runs)
