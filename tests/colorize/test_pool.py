"""The predictor actor pool's bounds: a GPU pool follows the GPUs that join; settings are kept."""

from __future__ import annotations

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
