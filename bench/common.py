"""What the benchmarks share: a local Ray for the measurement, stopping a driver process, a timed listing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any


def print_report(report: dict[str, Any]) -> dict[str, Any]:
    """Stamp ``load_average_after`` (the machine is shared: the reader judges the figures by it), print
    ``report`` as indented JSON on stdout and return it."""
    import json
    import sys

    report["load_average_after"] = round(os.getloadavg()[0], 2)
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


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


def timed_listing(
    dataset: Any, seconds: float, started: float, progress: Any = None
) -> tuple[int, float | None, float]:
    """Read a listing dataset for ``seconds`` after its first block, telling its ``progress`` (the
    listing's :class:`RunProgress`) what was received, as the job's driver does: the listing pauses
    once it is its bound of rows ahead.

    Returns:
        ``(rows after the first block, time of the first block or None, seconds measured)``;
        the rate is rows / seconds.
    """
    from archive_colorizer.colorize.listing_progress import Receipts

    listed, first, receipts = 0, None, Receipts(progress)
    for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
        receipts.add(batch.num_rows)
        if first is None:
            first = time.perf_counter()
        else:
            listed += batch.num_rows
        if time.perf_counter() - first > seconds:
            break
    return listed, first, max(time.perf_counter() - (first or started), 1e-9)


class TreeCpu:
    """CPU seconds (user + system) used by this process and every process below it (a local Ray's GCS,
    raylet and workers; a simulator's thread) while the meter runs: ``with TreeCpu() as cpu: ...;
    cpu.seconds``. The processes are sampled every ``interval`` s, so one that ends between samples
    loses at most its last ``interval``'s CPU (an undercount, never an overcount)."""

    def __init__(self, interval: float = 0.25) -> None:
        import threading

        self.interval = interval
        self.first: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self.names: dict[tuple[int, float], str] = {}
        self._started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-cpu", daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                key, times = (process.pid, process.create_time()), process.cpu_times()
                self.names.setdefault(key, "this process" if process is me else process.name())
            except psutil.Error:  # ended meanwhile
                continue
            self.last[key] = times.user + times.system
            self.first.setdefault(key, self.last[key] if not self._started else 0.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeCpu:
        self._started = False
        self._sample()
        self._started = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        """CPU seconds used since the meter started (all sampled processes together)."""
        return sum(self.last[key] - self.first[key] for key in self.last)

    def by_process(self) -> dict[str, float]:
        """CPU seconds by process name (``ray::...`` for Ray's workers, named by their last task), largest first."""
        out: dict[str, float] = {}
        for key in self.last:
            out[self.names[key]] = out.get(self.names[key], 0.0) + self.last[key] - self.first[key]
        return {name: round(cpu, 2) for name, cpu in sorted(out.items(), key=lambda item: -item[1]) if cpu >= 0.05}
