"""What the benchmarks share: a local Ray for the measurement, stopping a driver process, a timed listing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def local_ray(num_cpus: int, **init_kwargs: Any) -> Iterator[bool]:
    """A new local Ray of ``num_cpus`` CPUs for the block, shut down after it; yields True.

    When this process is already connected to a Ray (the test suite's session Ray runs each
    benchmark at a tiny size), that one is used and left running; yields False.
    """
    import ray

    if ray.is_initialized():
        yield False
        return
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **init_kwargs)
    try:
        yield True
    finally:
        ray.shutdown()


def stop_driver(driver: subprocess.Popen, grace: float = 30.0) -> None:
    """End a driver started in its own process group: SIGTERM (it saves its manifest), SIGKILL after ``grace`` s."""
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGTERM)
        try:
            driver.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


def timed_listing(dataset: Any, seconds: float, started: float) -> tuple[int, float | None, float]:
    """Read a listing dataset for ``seconds`` after its first block.

    Returns:
        ``(rows after the first block, time of the first block or None, seconds measured)``;
        the rate is rows / seconds.
    """
    listed, first = 0, None
    for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
        if first is None:
            first = time.perf_counter()
        else:
            listed += batch.num_rows
        if time.perf_counter() - first > seconds:
            break
    return listed, first, max(time.perf_counter() - (first or started), 1e-9)


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and every process below it: a local
    Ray's GCS, raylet and workers, a simulator's thread. Processes that ended are not counted."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # ended meanwhile
            continue
        total += times.user + times.system
    return total
