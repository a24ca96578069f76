"""``ray job submit -- python jobs/colorize.py ...`` against a real ``ray start --head`` cluster."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.colorize.conftest import GRAY_PHOTOS, encode
from tests.conftest import submit_job


@pytest.mark.slow
def test_ray_job_submit_runs_the_colorize_entrypoint(ray_head, photos, tiny_model, tmp_path):
    for name in GRAY_PHOTOS:
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{name}.jpg").write_bytes(
            encode(Image.fromarray(photos[name]).convert("L"), "JPEG", quality=90)
        )
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    completed = submit_job(
        ray_head,
        "jobs/colorize.py",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        "--model",
        tiny_model,
        "--max-failure-rate",
        "0.25",
        "--no-progress",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "succeeded" in completed.stdout
    summary = json.loads((tmp_path / "out" / "_summary.json").read_text())
    assert summary["counts"] == {"colorized": 4, "skipped_existing": 0, "skipped_color": 0, "failed": 1}
    for name in GRAY_PHOTOS:
        assert Image.open(tmp_path / "out" / f"{name}.jpg").size == Image.open(tmp_path / "in" / f"{name}.jpg").size


@pytest.mark.slow
def test_a_lost_worker_node_loses_no_input_and_no_output(photos, tiny_model, tmp_path, gates):
    """Head with no CPUs, two worker nodes; one is removed without warning while outputs are being written."""
    import os
    import subprocess
    import sys
    import time

    from ray.cluster_utils import Cluster

    from archive_colorizer.colorize import manifest

    inputs = []
    for i in range(48):
        path = tmp_path / "in" / f"part{i % 3}" / f"scan-{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        gray = Image.fromarray(photos[GRAY_PHOTOS[i % len(GRAY_PHOTOS)]]).convert("L").resize((96, 64))
        path.write_bytes(encode(gray, "JPEG", quality=90))
        inputs.append(path)
    out = tmp_path / "out"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    try:
        workers = [cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20) for _ in range(2)]
        cluster.wait_for_nodes()
        command = [sys.executable, "-m", "archive_colorizer", "colorize", str(tmp_path / "in"), str(out)]
        command += ["--model", tiny_model, "--no-progress", "--task-batch-size", "2", "--batch-size", "2"]
        command += ["--manifest-flush-seconds", "0.5", "--ray-address", cluster.address]
        # The last input is held until the node is gone: the job is certainly in the middle.
        gates.hold("colorize.read", "*/scan-47.jpg")
        with open(tmp_path / "driver.log", "wb") as log:
            driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
            try:
                gates.wait_reached("colorize.read", process=driver)
                deadline = time.monotonic() + 300
                while len(list(out.rglob("scan-*.jpg"))) < 4 and driver.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
                done_before = len(list(out.rglob("scan-*.jpg")))
                cluster.remove_node(workers[0], allow_graceful=False)
            finally:
                gates.release("colorize.read")
            returncode = driver.wait(timeout=400)
        assert returncode == 0, (tmp_path / "driver.log").read_text()[-3000:]
        assert 4 <= done_before < len(inputs)
    finally:
        cluster.shutdown()
    rows = manifest.read_manifest(str(out)).to_pylist()
    assert sorted(row["input_url"] for row in rows) == sorted(str(p) for p in inputs)  # each exactly once
    assert {row["status"] for row in rows} == {"colorized"}
    for row in rows:
        with Image.open(row["output_url"]) as output:
            output.load()
            assert output.size == (96, 64)
    summary = manifest.read_summary(str(out))
    assert summary["counts"]["colorized"] == summary["listed"] == len(inputs)
