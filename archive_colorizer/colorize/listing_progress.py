"""What the listing of a colorize run has done: the :class:`ListingProgress` actor and its per-run view.

Listing tasks report per unit (a key range, a folder, a chunk of an input list) how many rows
they listed, how many were not inputs and how many finished inputs they passed over
(idempotent per unit: a retried task does not count twice); the driver's progress bar and its
final check that the counts add up read it. One actor serves every run of a driver process on
the same Ray, on the head node (it must outlive any worker node).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive_colorizer import gates

if TYPE_CHECKING:
    from archive_colorizer.colorize.claim_shards import ListClaims


RUN_AHEAD_MIN_ROWS = 4096
"""Fewest rows the listing may hand on beyond what the driver has received back (:func:`run_ahead_rows`)."""
RUN_AHEAD_ROWS_PER_CPU = 256
"""Rows per CPU of the cluster the listing may run ahead of the driver (about a minute of a CPU's work)."""
ROOM_CHECK_ROWS = 256
"""Rows a listing task hands on between two looks at whether it may go on (:class:`RunAhead`)."""
ROOM_WAIT_S = 0.2
"""Seconds a paused listing task waits before it looks again."""


CHUNK_ROWS = 1024
"""Most rows a listing task yields at once (``listing_tasks.MAX_CHUNK_ROWS``)."""


def run_ahead_rows(cpus: float, listing_tasks: int, block_rows: int) -> int:
    """How many listed rows may be on their way through the job (handed on by the listing, not yet
    received back by the driver) before the listing tasks pause.

    Without a bound a listing of 100M keys runs far ahead of the colorize tasks: every listed block
    waits in the driver's streaming executor (about 1 KB of driver memory per row: 770 MB a minute
    into a run of a flat 100M-key prefix), and the listing's CPU is taken from the colorize tasks.
    The bound follows the cluster (:data:`RUN_AHEAD_ROWS_PER_CPU` per CPU, at least
    :data:`RUN_AHEAD_MIN_ROWS`), not the number of inputs. It is also at least twice what the
    listing tasks may hold where no one can move it: Ray Data's cut into blocks keeps the last
    table a listing task yielded (up to :data:`CHUNK_ROWS` rows) until the task yields the next, and
    a part-filled block and batch besides; a paused task yields nothing, so the rows on their way
    must be able to fall below the bound without it.

    Args:
        cpus: the cluster's CPUs now (an autoscaling cluster's grow while the job runs).
        listing_tasks: listing tasks at once.
        block_rows: rows per block of the listing (one task batch).

    Returns:
        The bound, in rows.
    """
    held = listing_tasks * (CHUNK_ROWS + 2 * block_rows)
    return max(RUN_AHEAD_MIN_ROWS, int(RUN_AHEAD_ROWS_PER_CPU * cpus), 2 * held)


@dataclass
class _RunCounts:
    units: int | None = None
    listed: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    total: int = 0
    received: int = 0
    run_ahead: int = RUN_AHEAD_MIN_ROWS


class ListingProgress:
    """Ray actor: inputs listed per run and unit (set, not added: a retried task reports the same
    unit again). One actor serves the runs of one driver process (:func:`run_progress`)."""

    def __init__(self) -> None:
        self.counts: dict[str, _RunCounts] = {}

    def start(self, run: str, units: int | None, run_ahead: int = RUN_AHEAD_MIN_ROWS) -> None:
        """Begin (or re-begin) counting run ``run``, whose listing has ``units`` units (None: unknown) and
        may run ``run_ahead`` rows ahead of the driver (:func:`run_ahead_rows`)."""
        counts = self.counts.setdefault(run, _RunCounts())
        counts.units, counts.run_ahead = units, run_ahead

    def report(self, run: str, unit: str, listed: int, other: int, passed: int, done: bool) -> None:
        """Set ``unit``'s counts: rows listed, of them redone for another generator, finished inputs passed over."""
        counts = self.counts.setdefault(run, _RunCounts())
        counts.total += listed - counts.listed.get(unit, (0, 0, 0))[0]
        counts.listed[unit] = (listed, other, passed)
        if done:
            counts.finished.add(unit)

    def received(self, run: str, rows: int, run_ahead: int) -> None:
        """The driver has received ``rows`` final rows of run ``run``; the listing may run ``run_ahead`` rows ahead."""
        counts = self.counts.setdefault(run, _RunCounts())
        counts.received, counts.run_ahead = rows, run_ahead

    def counts_of(self, run: str) -> dict[str, int]:
        """``listed`` (rows handed on), ``received`` (by the driver) and ``run_ahead`` (the bound) of run ``run``."""
        counts = self.counts.get(run, _RunCounts())
        return {"listed": counts.total, "received": counts.received, "run_ahead": counts.run_ahead}

    def room(self, run: str) -> bool:
        """Whether run ``run``'s listing may hand on more rows: fewer than its bound are on their way."""
        counts = self.counts.get(run)
        return counts is None or counts.total - counts.received <= counts.run_ahead

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
        tasks: the run's listing tasks at once; block_rows: rows per listing block (for
            :func:`run_ahead_rows`).
        tell_rows: the driver tells the actor what it has received every this many rows: a 16th of
            the bound, so the rows it has not told of and those the listing holds (at most half the
            bound) can never be what keeps the listing waiting.
    """

    actor: Any
    run: str
    tasks: int = 1
    block_rows: int = 16
    tell_rows: int = ROOM_CHECK_ROWS

    def report(self, unit: str, listed: int, other: int, passed: int, done: bool) -> Any:
        """Send what ``unit`` has listed so far; returns the call's ``ObjectRef``."""
        return self.actor.report.remote(self.run, unit, listed, other, passed, done)

    def state(self) -> Any:
        """``ObjectRef`` of the run's :meth:`ListingProgress.state`."""
        return self.actor.state.remote(self.run)

    def room(self) -> Any:
        """``ObjectRef`` of the run's :meth:`ListingProgress.room`."""
        return self.actor.room.remote(self.run)

    def received(self, rows: int) -> Any:
        """Tell the actor the driver has received ``rows`` rows, with the bound for the cluster's CPUs now
        (:func:`run_ahead_rows`); returns the call's ``ObjectRef`` (no wait)."""
        import ray

        cpus = float(ray.cluster_resources().get("CPU", 0.0))
        return self.actor.received.remote(self.run, rows, run_ahead_rows(cpus, self.tasks, self.block_rows))

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
class Receipts:
    """The driver's side of the bound: counts the rows it received back and tells the run's actor
    (:meth:`RunProgress.received`) every ``progress.tell_rows`` rows, without waiting.

    Attributes:
        progress: the run's :class:`RunProgress`, or None (nothing to tell).
        rows: rows received so far.
    """

    progress: RunProgress | None
    rows: int = 0
    _told: int = 0

    def add(self, rows: int) -> None:
        """Count ``rows`` more rows received; tell the actor when ``tell_rows`` have come since it was last told."""
        self.rows += rows
        if self.progress is not None and self.rows - self._told >= self.progress.tell_rows:
            self.progress.received(self.rows)
            self._told = self.rows


@dataclass
class RunAhead:
    """A listing task's side of the bound on how far the listing runs ahead of the driver.

    Call :meth:`handed_on` after each table the task yields: every :data:`ROOM_CHECK_ROWS` rows it
    asks the run's actor for room (:meth:`ListingProgress.room`) and waits while there is none (the
    rows it handed on are then all on their way: the bound cannot hold up the rows that would make
    room). The first wait passes the hold point ``colorize.run_ahead`` (key: the run id).

    Attributes:
        progress: the run's :class:`RunProgress`, or None (no bound).
    """

    progress: RunProgress | None
    _since: int = 0

    def handed_on(self, rows: int) -> None:
        """Count ``rows`` rows handed on; wait for room every :data:`ROOM_CHECK_ROWS` rows."""
        self._since += rows
        if self.progress is None or self._since < ROOM_CHECK_ROWS:
            return
        import ray

        self._since = 0
        waited = False
        while not ray.get(self.progress.room()):
            if not waited and gates.active():
                gates.hold("colorize.run_ahead", self.progress.run)
            waited = True
            time.sleep(ROOM_WAIT_S)


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


def run_progress(
    run: str, units: int | None, tasks: int = 1, block_rows: int = 16, timeout: float = 30.0
) -> RunProgress:
    """Start run ``run``'s counts, with ``units`` listing units (None: unknown), ``tasks`` listing tasks
    at once and ``block_rows`` rows per listing block, in this driver's actor: the listing may run
    :func:`run_ahead_rows` rows ahead of the driver.

    A new actor is not waited for (its process starts while the job goes on). An actor that
    answered an earlier run is asked to start this one and awaited (a millisecond's round trip),
    and replaced if it has died.

    Raises:
        JobError: the actor does not answer within ``timeout`` seconds.
    """
    import ray

    from archive_colorizer.errors import JobError

    shared = _progress_actor()
    run_ahead = run_ahead_rows(float(ray.cluster_resources().get("CPU", 0.0)), tasks, block_rows)
    pending = shared.actor.start.remote(run, units, run_ahead)
    if shared.answered:
        try:
            ray.get(pending, timeout=timeout)
        except ray.exceptions.RayActorError:
            _SHARED.clear()
            return run_progress(run, units, tasks, block_rows, timeout)
        except ray.exceptions.GetTimeoutError as exc:
            raise JobError(f"the listing progress actor did not answer within {timeout:g} s") from exc
    shared.answered = True
    return RunProgress(shared.actor, run, tasks, block_rows, max(1, run_ahead // 16))
