"""Resource checks before a job starts: refuse (or resize) work the cluster could never schedule.

Ray waits, without an error, for resources that never come: two Train workers of one CPU each
on a 2-CPU machine leave Ray Data's read tasks nothing, and the job waits forever ("Cluster
resources are not enough to run any task" in the log). Each job therefore compares what it
reserves with the cluster's CPUs before it starts: the CPUs of the nodes now, or the
autoscaler's maximum when the cluster has one (Ray's recorded cluster config). What still
cannot make progress later is caught by :class:`archive_colorizer.stopping.Watchdog`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, TypeVar

from archive_colorizer.errors import ConfigError

PIPELINE_CPUS = 1.0
"""CPUs a job's data pipeline (Ray Data's read, decode and augment tasks) needs at the least."""

PoolT = TypeVar("PoolT", bound=Any)

SMALLEST_WORKER_CPUS = 0.25
"""Train workers are not sized below this many CPUs each (their torch threads would starve)."""


@dataclass(frozen=True)
class ClusterCPUs:
    """CPUs of a Ray cluster.

    Attributes:
        now: logical CPUs of the nodes in the cluster now.
        most: CPUs the cluster can grow to (the autoscaler's maximum when known, else ``now``).
    """

    now: float
    most: float

    def describe(self) -> str:
        text = f"{self.now:g} CPUs"
        return text if self.most == self.now else f"{text} now, at most {self.most:g} with autoscaling"


def cluster_cpus() -> ClusterCPUs:
    """The connected Ray cluster's CPUs (requires ``ray.init``)."""
    import ray

    now = float(ray.cluster_resources().get("CPU", 0))
    from archive_colorizer.compat import max_cluster_resources

    limits = max_cluster_resources()  # {} when unknown: the nodes of now are all we know
    most = float(limits.get("CPU") or 0)
    return ClusterCPUs(now, max(now, most if most < 1e12 else math.inf))


def fit_train_workers(workers: int, cpus_per_worker: float, cpus: ClusterCPUs, explicit: bool) -> float:
    """The CPUs per Train worker that leave the data pipeline at least :data:`PIPELINE_CPUS`.

    Args:
        workers: Ray Train workers (0: local mode, nothing reserved).
        cpus_per_worker: CPUs each worker asks for (``--cpus-per-worker``).
        cpus: the cluster's CPUs.
        explicit: the user chose ``cpus_per_worker``; then too much is an error, not resized.

    Returns:
        ``cpus_per_worker`` when it fits, else the largest value (to 0.05 CPU) that does,
        after printing one line saying so.

    Raises:
        ConfigError: it does not fit and was given explicitly, or even
            :data:`SMALLEST_WORKER_CPUS` per worker does not fit; names ``--workers``,
            ``--cpus-per-worker`` and the cluster's CPUs.
    """
    if workers == 0 or workers * cpus_per_worker + PIPELINE_CPUS <= cpus.most:
        return cpus_per_worker
    sized = math.floor((cpus.most - PIPELINE_CPUS) / workers * 20) / 20
    problem = (
        f"--workers {workers} x --cpus-per-worker {cpus_per_worker:g} leaves the data pipeline less than "
        f"{PIPELINE_CPUS:g} of the cluster's {cpus.describe()}, so training would wait forever for its images"
    )
    if explicit or sized < SMALLEST_WORKER_CPUS:
        raise ConfigError(
            f"{problem}; use fewer --workers, a smaller --cpus-per-worker (at most "
            f"{max(sized, 0):g} here), or a larger cluster"
        )
    print(f"archive-colorizer train: {problem}; using --cpus-per-worker {sized:g}", file=sys.stderr, flush=True)
    return sized


def check_tasks(job: str, reserved: dict[str, float], cpus: ClusterCPUs) -> None:
    """Refuse a job whose smallest set of concurrent actors and tasks needs more CPUs than the cluster has.

    Args:
        job: the job's name, for the message.
        reserved: CPUs that must run at once for any progress, by the option that sets them,
            e.g. ``{"--cpus-per-task": 1.0}`` or ``{"--actors MIN x --cpus-per-actor": 2.0,
            "--cpus-per-task": 0.5}``.
        cpus: the cluster's CPUs.

    Raises:
        ConfigError: the sum exceeds ``cpus.most``; names the options and the cluster's CPUs.
    """
    needed = sum(reserved.values())
    if needed <= cpus.most:
        return
    parts = ", ".join(f"{option} {value:g}" for option, value in reserved.items())
    raise ConfigError(
        f"{job} needs at least {needed:g} CPUs at once ({parts}) but the Ray cluster has {cpus.describe()}; "
        "lower those options or add CPU nodes"
    )


def check_colorize(pool: PoolT, cpus: ClusterCPUs | None = None) -> PoolT:
    """:func:`check_tasks` for colorize's pool (:class:`archive_colorizer.colorize.pipeline.PoolSettings`).

    Returns:
        ``pool`` unchanged (so the check wraps the call that builds it).
    """
    reserved = {"--cpus-per-task": pool.cpus_per_task}
    if not pool.fused:
        reserved["--actors MIN x --cpus-per-actor"] = pool.min_actors * pool.cpus_per_actor
    check_tasks("colorize", reserved, cpus or cluster_cpus())
    return pool


def check_prepare(cpus: ClusterCPUs | None = None) -> None:
    """:func:`check_tasks` for prepare's shard tasks (1 CPU each)."""
    check_tasks("prepare", {"shard task": 1.0}, cpus or cluster_cpus())
