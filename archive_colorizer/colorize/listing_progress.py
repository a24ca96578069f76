"""What the listing of a colorize run has done: the :class:`ListingProgress` actor and its per-run view.

Listing tasks report per unit (a key range, a folder, a chunk of an input list) how many rows
they listed, how many were not inputs and how many finished inputs they passed over
(idempotent per unit: a retried task does not count twice); the driver's progress bar and its
final check that the counts add up read it. One actor serves every run of a driver process on
the same Ray, on the head node (it must outlive any worker node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive_colorizer.colorize.claim_shards import ListClaims


@dataclass
class _RunCounts:
    units: int | None = None
    listed: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)


class ListingProgress:
    """Ray actor: inputs listed per run and unit (set, not added: a retried task reports the same
    unit again). One actor serves the runs of one driver process (:func:`run_progress`)."""

    def __init__(self) -> None:
        self.counts: dict[str, _RunCounts] = {}

    def start(self, run: str, units: int | None) -> None:
        """Begin (or re-begin) counting run ``run``, whose listing has ``units`` units (None: unknown)."""
        self.counts.setdefault(run, _RunCounts()).units = units

    def report(self, run: str, unit: str, listed: int, other: int, passed: int, done: bool) -> None:
        """Set ``unit``'s counts: rows listed, of them redone for another generator, finished inputs passed over."""
        counts = self.counts.setdefault(run, _RunCounts())
        counts.listed[unit] = (listed, other, passed)
        if done:
            counts.finished.add(unit)

    def state(self, run: str) -> dict[str, Any]:
        """``listed`` (rows), ``other_model`` (finished by another generator, redone), ``passed_over``
        (finished by earlier runs: no row), ``done`` (listing ended)."""
        counts = self.counts.get(run, _RunCounts())
        return {
            "listed": sum(n for n, _, _ in counts.listed.values()),
            "other_model": sum(o for _, o, _ in counts.listed.values()),
            "passed_over": sum(p for _, _, p in counts.listed.values()),
            "done": counts.units is not None and len(counts.finished) >= counts.units,
        }

    def forget(self, run: str) -> None:
        """Drop run ``run``'s counts (its job has read them)."""
        self.counts.pop(run, None)

    def runs(self) -> int:
        """How many runs the actor holds counts for."""
        return len(self.counts)


@dataclass(frozen=True)
class RunProgress:
    """One run's share of the :class:`ListingProgress` actor (picklable: goes to the listing tasks).

    Attributes:
        actor: the actor's handle.
        run: the key of this run's counts (the run id).
    """

    actor: Any
    run: str

    def report(self, unit: str, listed: int, other: int, passed: int, done: bool) -> Any:
        """Send what ``unit`` has listed so far; returns the call's ``ObjectRef``."""
        return self.actor.report.remote(self.run, unit, listed, other, passed, done)

    def state(self) -> Any:
        """``ObjectRef`` of the run's :meth:`ListingProgress.state`."""
        return self.actor.state.remote(self.run)

    def close(self) -> None:
        """Drop the run's counts in the actor (without waiting)."""
        self.actor.forget.remote(self.run)


@dataclass(frozen=True)
class ListRunProgress(RunProgress):
    """A :class:`RunProgress` of an input list that also ends the list's :class:`ListClaims` when closed."""

    claims: ListClaims | None = None

    def close(self) -> None:
        """Drop the run's counts and end its claim shards."""
        super().close()
        if self.claims is not None:
            self.claims.close()


@dataclass
class _SharedActor:
    key: tuple[str, str]
    actor: Any
    answered: bool = False


_SHARED: list[_SharedActor] = []
"""This process's :class:`ListingProgress` actor on the Ray it is connected to (at most one)."""


def _progress_actor() -> _SharedActor:
    """This driver's :class:`ListingProgress` actor on the Ray it is connected to, created once.

    The actor lives on the head node (it must outlive a lost worker node; a driver connected from
    another machine's node may sit on a worker node), else the driver's, and as long as this process
    holds it; another Ray (driver node id) or job id gets a new one.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    runtime = ray.get_runtime_context()
    key = (runtime.get_node_id(), runtime.get_job_id())
    if not _SHARED or _SHARED[0].key != key:
        head = _head_node_id()
        here = NodeAffinitySchedulingStrategy(head or runtime.get_node_id(), soft=head is None)
        # Ray's annotation of scheduling_strategy omits NodeAffinitySchedulingStrategy, which it accepts.
        actor = ray.remote(num_cpus=0, scheduling_strategy=here)(ListingProgress).remote()  # type: ignore[call-overload]
        _SHARED[:] = [_SharedActor(key, actor)]
    return _SHARED[0]


def _head_node_id() -> str | None:
    """The id of the cluster's head node (it outlives the worker nodes), or None when none is marked."""
    import ray

    for node in ray.nodes():
        if node.get("Alive") and "node:__internal_head__" in node.get("Resources", {}):
            return str(node["NodeID"])
    return None


def run_progress(run: str, units: int | None, timeout: float = 30.0) -> RunProgress:
    """Start run ``run``'s counts, with ``units`` listing units (None: unknown), in this driver's actor.

    A new actor is not waited for (its process starts while the job goes on). An actor that
    answered an earlier run is asked to start this one and awaited (a millisecond's round trip),
    and replaced if it has died.

    Raises:
        JobError: the actor does not answer within ``timeout`` seconds.
    """
    import ray

    from archive_colorizer.errors import JobError

    shared = _progress_actor()
    pending = shared.actor.start.remote(run, units)
    if shared.answered:
        try:
            ray.get(pending, timeout=timeout)
        except ray.exceptions.RayActorError:
            _SHARED.clear()
            return run_progress(run, units, timeout)
        except ray.exceptions.GetTimeoutError as exc:
            raise JobError(f"the listing progress actor did not answer within {timeout:g} s") from exc
    shared.answered = True
    return RunProgress(shared.actor, run)
