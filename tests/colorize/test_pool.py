"""The predictor actor pool's bounds: a GPU pool follows the GPUs that join; settings are kept."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ray.data import ActorPoolStrategy

from archive_colorizer.colorize.pool import actor_pool_bounds


def test_a_gpu_pool_started_on_a_cluster_without_gpus_has_no_maximum_of_one():
    # A cluster that autoscales from zero GPU nodes: at the start Ray reports no GPU at all.
    low, high = actor_pool_bounds(None, gpu=True, resources={"CPU": 4.0})
    assert (low, high) == (1, None)
    strategy = ActorPoolStrategy(min_size=low, max_size=high)  # Ray Data accepts it: grows with the GPUs
    assert strategy.min_size == 1 and strategy.max_size == float("inf")


def test_explicit_actors_and_the_cpu_default_are_kept():
    assert actor_pool_bounds([3], gpu=True, resources={"GPU": 8.0}) == (3, 3)
    assert actor_pool_bounds([2, 6], gpu=False, resources={"CPU": 2.0}) == (2, 6)
    assert actor_pool_bounds(None, gpu=False, resources={"CPU": 16.0}) == (1, 8)
    assert actor_pool_bounds(None, gpu=False, resources={"CPU": 1.0}) == (1, 1)


PROBE = """
import json, sys, threading, time
import ray
from archive_colorizer.colorize.pipeline import PoolSettings, predictor_stage_options

class Probe:
    # Records where each call runs, what the actor was given, and how many of its calls overlap.
    def __init__(self):
        self.lock, self.running, self.most = threading.Lock(), 0, 0

    def __call__(self, batch):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.5)
        with self.lock:
            self.running -= 1
        context = ray.get_runtime_context()
        gpus = context.get_accelerator_ids()["GPU"]
        share = context.get_assigned_resources().get("GPU")
        return {"actor": [context.get_actor_id()], "gpus": [",".join(gpus)], "share": [share], "most": [self.most]}

ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="ERROR")
pool = PoolSettings(2, 2, 1, 1, 0.5, 0.5, gpu=True, gpus_per_actor=0.5, actor_concurrency=2)
rows = ray.data.range(16, override_num_blocks=16).map_batches(Probe, batch_size=1, **predictor_stage_options(pool))
print(json.dumps(rows.take_all()))
"""


@pytest.mark.slow
def test_gpu_share_and_concurrency_reach_the_actor_pool(tmp_path):
    # One logical GPU (no CUDA needed): with --gpus-per-actor 0.5 two predictor actors share it,
    # each holding half of GPU 0, and with --actor-concurrency 2 each works on two batches at once.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 16
    assert len({row["actor"] for row in rows}) == 2
    assert {row["gpus"] for row in rows} == {"0"} and {row["share"] for row in rows} == {0.5}
    assert max(row["most"] for row in rows) == 2


def test_predictor_stage_options_follow_the_pool():
    from archive_colorizer.colorize.pipeline import PoolSettings, predictor_stage_options

    gpu = predictor_stage_options(PoolSettings(1, None, 16, 16, 0.5, 1.0, gpu=True, gpus_per_actor=0.25))
    assert gpu["num_gpus"] == 0.25 and gpu["num_cpus"] == 1.0
    assert gpu["compute"].min_size == 1 and gpu["compute"].max_size == float("inf")
    cpu = predictor_stage_options(PoolSettings(2, 2, 16, 16, 0.5, 2.0, gpu=False, actor_concurrency=3))
    assert cpu["num_gpus"] is None and cpu["compute"].max_concurrent_calls_per_actor == 3
