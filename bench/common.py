"""What the benchmarks share: a local Ray for the measurement, or the one this process already has."""

from __future__ import annotations

import contextlib
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
