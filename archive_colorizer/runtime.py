"""Connecting to Ray: the one place a job calls ``ray.init``.

Under ``ray job submit`` the job's driver finds its cluster through ``RAY_ADDRESS``; from the
command line on a laptop with no cluster, a local Ray is started; in tests Ray is already
initialised and left as it is.
"""

from __future__ import annotations

import logging
import os


def init_ray(address: str | None = None) -> None:
    """Make sure this process is connected to Ray.

    Args:
        address: a cluster address (``ray://host:10001``, ``host:6379``, ``auto``); ``None``
            uses ``RAY_ADDRESS`` when set (as under ``ray job submit``), else starts a local
            Ray with this machine's CPUs and GPUs.

    Does nothing when Ray is already initialised in this process.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    ray.init(address=address, logging_level=logging.WARNING, configure_logging=True)
