"""How a job stops instead of hanging: stop signals in the driver, and a stall watchdog.

- :func:`stop_handlers`: SIGTERM (what ``ray job stop``, Kubernetes and KubeRay send) and
  SIGINT raise :class:`~archive_colorizer.errors.JobStopped` in the driver's main thread, so
  a job leaves through its ``finally`` blocks (colorize keeps its manifest, prepare its
  finished shards, train its checkpoints) and the command line exits with 128 + the signal.
  ``ray.init`` replaces the SIGTERM handler with its own; :func:`archive_colorizer.runtime.init_ray`
  puts ours back. A second stop signal while the job keeps what finished is noted on stderr,
  not raised (it would cut the saving short); SIGKILL ends a process at once.
  :mod:`archive_colorizer.entrypoint` installs the handlers on the process's first line and
  handles a signal during the process's teardown.
- :class:`Watchdog`: a job whose progress loop has not advanced for ``timeout`` seconds
  (nothing can be scheduled, a worker hangs) fails with a :class:`~archive_colorizer.errors.JobError`
  saying what stalled, instead of waiting forever. A daemon thread watches the time since the
  last :meth:`Watchdog.beat` and interrupts the main thread (``_thread.interrupt_main``),
  which works while the driver blocks in ``ray.get``/``ray.wait`` (Ray checks for signals).
- :class:`Heartbeat`: progress of Ray workers (train's ranks) that the driver's watchdog sees,
  through Ray's internal key-value store.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from archive_colorizer.errors import JobError, JobStopped

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""Signals that stop a job cleanly."""

DEFAULT_STALL_TIMEOUT_S = 600.0
"""Seconds without progress before a job fails (room for an autoscaler to launch a node)."""

_fired: list[JobError] = []  # the error of a watchdog that fired, raised by the stop handler
_stopping: list[int] = []  # the stop signal already raised as JobStopped in this process


def _raise_stop(signal_number: int, frame: Any) -> None:
    if _fired:
        raise _fired[-1]
    if _stopping:
        # A second signal while the job keeps what finished (writes its manifest rows): raising
        # again would cut that short, so it is only noted (os.write: the handler may run while
        # the main thread is inside a print to stderr).
        os.write(2, f"archive-colorizer: signal {signal_number}: already stopping, keeping what finished\n".encode())
        return
    _stopping.append(signal_number)
    raise JobStopped(signal_number)


def stopped_message(argv: Sequence[str], stop: JobStopped) -> str:
    """The one line a stopped command prints: ``archive-colorizer <job>: stopped by signal N; ...``.

    Args:
        argv: the command's arguments (the job is the first that is not an option).
        stop: the :class:`JobStopped` raised by the handler.
    """
    command = next((a for a in argv if not a.startswith("-")), "")
    return f"archive-colorizer{' ' + command if command else ''}: {stop}"


def install_stop_handlers() -> dict[int, Any]:
    """Make SIGTERM and SIGINT raise :class:`JobStopped` (only from the main thread).

    Returns:
        The previous handlers by signal number (empty when not called from the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    _stopping.clear()
    return {number: signal.signal(number, _raise_stop) for number in STOP_SIGNALS}


def stop_handlers_installed() -> bool:
    """Whether SIGTERM currently raises :class:`JobStopped` (so ``init_ray`` should restore it)."""
    return signal.getsignal(signal.SIGTERM) is _raise_stop


def restore_sigterm() -> None:
    """Put the stop handler back on SIGTERM (after ``ray.init`` replaced it with ``sys.exit``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_stop)


@contextmanager
def stop_handlers() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`JobStopped`; the old handlers return after."""
    previous = install_stop_handlers()
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _interrupt_main() -> None:
    # Through SIGTERM's Python handler (ours, or ray.init's sys.exit) when there is one, else
    # as KeyboardInterrupt; Watchdog.__exit__ turns either into its JobError.
    main_ident = threading.main_thread().ident  # None only for a thread never started
    if callable(signal.getsignal(signal.SIGTERM)) and main_ident is not None:
        # A real signal to the main thread (not only the flag interrupt_main sets): it also
        # wakes a sleeping or waiting system call.
        signal.pthread_kill(main_ident, signal.SIGTERM)
    else:
        _thread.interrupt_main()


class Watchdog:
    """Fail the driver's blocking wait when a job has made no progress for ``timeout`` seconds.

    Use as a context manager around a job's progress loop and call :meth:`beat` whenever a
    task or batch finishes (or pass ``probe``, polled every few seconds, for progress made
    elsewhere, e.g. a :class:`Heartbeat` of Ray workers)::

        with Watchdog(config.stall_timeout, "prepare", "no shard task finished") as watchdog:
            for stats in run_shards(...):
                watchdog.beat()

    With ``startup_timeout``, the time before the first progress (a fresh cluster's GPU nodes
    joining, each pulling its image and installing packages, every worker starting) has its
    own allowance: the stall timeout applies only from the first progress on, and a start
    that takes too long fails with ``waiting_for()``'s account of what it still waits for.

    Args:
        timeout: seconds without progress (``None`` or 0: never fail).
        job: the job's name, for the message.
        what: what did not happen, e.g. ``"no shard task finished"``.
        probe: optional callable returning a value that changes when progress is made.
        message: the error's message instead of the default one.
        startup_timeout: seconds until the first progress (``None``: ``timeout`` applies from
            the start; 0: the start may take forever).
        waiting_for: optional callable saying what the start waits for (nodes pending,
            workers not ready), for the start-up message.

    Raises:
        JobError: on leaving the block after the watchdog fired; the message names the job,
            the seconds, ``--stall-timeout`` (or ``--startup-timeout``) and the likely causes.
    """

    def __init__(
        self,
        timeout: float | None,
        job: str,
        what: str,
        probe: Callable[[], Any] | None = None,
        message: str | None = None,
        startup_timeout: float | None = None,
        waiting_for: Callable[[], str] | None = None,
    ) -> None:
        self.timeout = timeout or None
        self.job, self.what, self.probe, self.message = job, what, probe, message
        self.startup_timeout, self.waiting_for = startup_timeout, waiting_for
        self.started = startup_timeout is None  # without an allowance, the stall timeout applies at once
        self.error: JobError | None = None
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Record progress now."""
        self._last = time.monotonic()
        self.started = True

    def beating(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` wrapped to record progress before each call (e.g. a manifest sink)."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.beat()
            return function(*args, **kwargs)

        return wrapped

    def __enter__(self) -> Watchdog:
        self._last = time.monotonic()
        if self.timeout is not None or self.startup_timeout:
            self._thread = threading.Thread(target=self._watch, name=f"{self.job}-watchdog", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        limits = [t for t in (self.timeout, self.startup_timeout) if t]
        interval = min(5.0, min(limits) / 10)
        seen = self._probe()
        while not self._stop.wait(interval):
            value = self._probe()
            if value != seen:
                seen = value
                self.beat()
            idle = time.monotonic() - self._last
            limit = self.timeout if self.started else self.startup_timeout
            if limit and idle >= limit:
                self.error = JobError(self.message or self._describe(idle, limit))
                _fired.append(self.error)
                _interrupt_main()
                return

    def _describe(self, idle: float, limit: float) -> str:
        if not self.started:
            waiting = self._waiting_for() or self.what
            return (
                f"{self.job} did not start within {idle:.0f} s: {waiting}; stopped by --startup-timeout {limit:g}. "
                "See `ray status` (pending nodes, resources asked for) and the workers' logs; raise "
                "--startup-timeout where new nodes take longer to join and install"
            )
        return (
            f"{self.job} made no progress for {idle:.0f} s ({self.what}); stopped by --stall-timeout "
            f"{limit:g}. Likely the cluster lacks the CPUs, GPUs or memory the job's tasks ask for "
            "(see `ray status`), or a worker hangs; finished work is kept, re-running resumes"
        )

    def _waiting_for(self) -> str:
        if self.waiting_for is None:
            return ""
        try:
            return self.waiting_for()
        except Exception:  # an account that cannot be had is no reason to hide the timeout
            return ""

    def _probe(self) -> Any:
        if self.probe is None:
            return None
        try:
            return self.probe()
        except Exception:  # a probe that cannot answer is no progress
            return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.error is not None:
            if self.error in _fired:
                _fired.remove(self.error)
            if exc is not None and exc is not self.error:
                raise self.error from exc


class Heartbeat:
    """Progress of Ray workers, seen by the driver: a counter in Ray's internal key-value store.

    The driver creates it and passes :attr:`key` to the workers; a worker calls
    ``Heartbeat(key).beat()`` per step (written at most every ``every`` seconds); the driver's
    :class:`Watchdog` polls :meth:`read` as its probe. A ``None`` key records nothing.
    """

    def __init__(self, key: str | None, every: float = 5.0) -> None:
        self.key, self.every = key, every
        self._written = 0.0
        self._count = 0

    @classmethod
    def new(cls, job: str) -> Heartbeat:
        """A heartbeat with a fresh key for one run of ``job``."""
        import uuid

        return cls(f"archive-colorizer/heartbeat/{job}/{uuid.uuid4().hex}")

    def beat(self) -> None:
        """Record progress (in a Ray worker or driver); cheap: writes at most every ``every`` seconds."""
        self._count += 1
        now = time.monotonic()
        if self.key is None or now - self._written < self.every:
            return
        from archive_colorizer.compat import kv_put

        try:
            kv_put(self.key, f"{self._count}:{time.time()}")
            self._written = now
        except Exception:  # progress reporting must never fail a training step
            pass

    def read(self) -> bytes | None:
        """The last value written (``None`` before the first)."""
        if self.key is None:
            return None
        from archive_colorizer.compat import kv_get

        return kv_get(self.key)
