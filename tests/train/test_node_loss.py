"""A Train worker's node lost without warning: Ray Train restarts from the last checkpoint.

A ``ray.cluster_utils.Cluster`` of its own (head with no CPUs, two worker nodes of 3 logical
CPUs); the train command runs as a separate driver process connected to it, so the session's
``ray_local`` Ray is not touched. ``--cpus-per-worker 2`` fits one Train worker per node, so
each worker node hosts exactly one worker (checked from the nodes' process trees) and the
data pipeline keeps a CPU on each. Once epoch 0's checkpoint is registered one worker node is
removed (``allow_graceful=False``: its raylet and workers are killed) while both workers are
held before epoch 1 (the ``train.epoch`` hold point: the run is certainly mid-way), and a fresh node joins,
as an autoscaler would replace a lost node; with ``--max-failures 1`` the run must restore
``checkpoint_epoch_0001`` on the new worker group and finish every epoch exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.train.conftest import make_shards

EPOCHS = 3
NODE = {"num_cpus": 3, "object_store_memory": 80 * 2**20}
TINY = ["--image-size", "32", "--ngf", "8", "--num-downs", "5", "--ndf", "8", "--n-layers", "2", "--batch-size", "2"]


def _train_worker_pids(node) -> list[int]:
    """Process ids of the Ray Train workers the raylet of ``node`` (a cluster_utils node) started."""
    import ray._private.ray_constants as ray_constants

    pids = []
    for info in node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, []):
        try:
            for child in psutil.Process(info.process.pid).children(recursive=True):
                if "RayTrainWorker" in " ".join(child.cmdline()[:1]):
                    pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


def _checkpointed_and_placed(run: Path, workers: list) -> dict | None:
    """Epoch 0's checkpoint registered and a Train worker on every worker node: what is seen then."""
    snapshot, metrics = run / "checkpoint_manager_snapshot.json", run / "metrics.jsonl"
    if not (metrics.exists() and snapshot.exists() and "checkpoint_epoch_0001" in snapshot.read_text()):
        return None
    pids = [_train_worker_pids(node) for node in workers]
    if not all(len(p) == 1 for p in pids):
        return None
    return {"pids": pids, "rows": metrics.read_text().splitlines()}


@pytest.mark.slow
def test_a_removed_worker_node_is_replaced_and_training_resumes_from_its_last_checkpoint(
    ray_local, photos, tmp_path, monkeypatch, gates
):
    from ray.cluster_utils import Cluster

    # 8 training rows: 2 steps per epoch on 2 workers x batch 2.
    shards = make_shards(tmp_path / "data", photos, val=("rocket", "motorcycle"), repeat=2)
    run = tmp_path / "run"
    # Inherited by the cluster's processes and the driver: Ray Train's controller polls its
    # workers every 0.2 s (not 2 s), and its placement-group cleaner must not query another
    # session's dashboard (see ray_local in tests/conftest.py).
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:9")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    try:
        workers = [cluster.add_node(**NODE) for _ in range(2)]
        cluster.wait_for_nodes()
        command = [sys.executable, "-m", "archive_colorizer", "train", "--data", shards, "--run", str(run)]
        command += ["--workers", "2", "--cpus-per-worker", "2", "--epochs", str(EPOCHS), "--max-failures", "1"]
        command += [*TINY, "--ray-address", cluster.address]
        # Both workers wait before epoch 1 (after epoch 0's checkpoint) until the node is gone.
        gates.hold("train.epoch", "1")
        with open(tmp_path / "driver.log", "wb") as log:
            driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
            try:
                gates.wait_reached("train.epoch", count=2, process=driver, timeout=400)
                deadline, seen = time.monotonic() + 400, None
                while driver.poll() is None and time.monotonic() < deadline:
                    seen = _checkpointed_and_placed(run, workers)
                    if seen:
                        break
                    time.sleep(0.05)
                assert seen and driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
                cluster.remove_node(workers[0], allow_graceful=False)
            finally:
                gates.release("train.epoch")
            lost = seen["pids"][0][0]
            cluster.add_node(**NODE)  # the replacement the autoscaler would start
            returncode = driver.wait(timeout=500)
        output = (tmp_path / "driver.log").read_text()
        assert returncode == 0, output[-3000:]
    finally:
        cluster.shutdown()
    assert not psutil.pid_exists(lost)  # the removed node's Train worker really died ...
    assert len(seen["rows"]) < EPOCHS  # ... before the run had finished
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(EPOCHS))  # each epoch exactly once
    assert [row["global_step"] for row in rows] == [2, 4, 6]
    assert all(row["workers"] == 2 for row in rows)
    assert json.dumps(rows[0]) == seen["rows"][0]  # epoch 0 was restored from its checkpoint, not trained again
    assert f"trained {EPOCHS} epochs ({2 * EPOCHS} steps)" in output
    assert "resuming after epoch" in output, output[-3000:]
