"""Connecting to Ray: the one place a job calls ``ray.init``.

How a job finds its Ray (:func:`init_ray`):

1. ``--ray-address`` (or ``ray_address`` in the config), else ``RAY_ADDRESS`` (set by
   ``ray job submit``): join that cluster. An address that does not answer fails within
   ``connect_timeout`` seconds (default 30) with an error naming it (a port that accepts TCP
   but is no Ray head gets as long again in ``ray.init``). ``local`` always starts a
   new local Ray.
2. Neither given: join the cluster that a ``ray start`` on this machine recorded in
   ``$RAY_TMPDIR/ray/ray_current_cluster`` (``/tmp/ray/...`` by default) if its GCS answers a
   TCP connection within :data:`PROBE_TIMEOUT_S`; a record of a head that is gone (stopped,
   crashed, killed) is reported in one line and a new local Ray is started instead.

In tests Ray is already initialised and left as it is.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

from archive_colorizer.errors import JobError

DEFAULT_CONNECT_TIMEOUT_S = 30.0
"""Seconds an explicit address may take to answer before the job fails."""

LOCAL_START_TIMEOUT_S = 180.0
"""Seconds a new local Ray may take to start (minutes only on a badly overloaded machine)."""

PROBE_TIMEOUT_S = 2.0
"""Seconds the recorded cluster's GCS gets to accept a TCP connection."""


def init_ray(address: str | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
    """Make sure this process is connected to Ray (see the module docstring for the order).

    Args:
        address: a cluster address (``host:6379``, ``ray://host:10001``, ``auto``) or ``local``;
            ``None`` uses ``RAY_ADDRESS`` when set, else the recorded ``ray start`` cluster
            when it answers, else a new local Ray with this machine's CPUs and GPUs.
        connect_timeout: seconds an explicit address gets to answer (> 0).

    Does nothing when Ray is already initialised in this process. Afterwards SIGTERM raises
    :class:`~archive_colorizer.errors.JobStopped` again when it did before (``ray.init``
    installs its own handler).

    Raises:
        JobError: the address (given, from ``RAY_ADDRESS`` or ``auto``'s record) does not
            answer within ``connect_timeout``; the message names it and what to do.
    """
    import ray

    from archive_colorizer.stopping import Watchdog, restore_sigterm, stop_handlers_installed

    if ray.is_initialized():
        return
    ours = stop_handlers_installed()
    target = choose_address(address, connect_timeout)
    # ray.init itself gets the same bound: a port that answers TCP but is no Ray GCS would
    # otherwise keep it retrying for minutes.
    bound = LOCAL_START_TIMEOUT_S if target == "local" else connect_timeout
    message = (
        f"ray.init(address={target!r}) did not connect within {bound:g} s: the port answers but no Ray cluster "
        "replied (is it a Ray head's GCS port, 6379 by default, of the same Ray version?); fix --ray-address or "
        "RAY_ADDRESS, or raise --ray-connect-timeout"
        if target != "local"
        else f"a local Ray did not start within {bound:g} s (see the logs in {address_file().rsplit('/', 1)[0]})"
    )
    try:
        if target == "local":
            with Watchdog(bound, "connecting to Ray", "ray.init did not return", message=message):
                ray.init(address=target, logging_level=logging.WARNING, configure_logging=True)
        else:
            _join_in_thread(target, bound, message)
    except JobError:
        raise
    except Exception as exc:  # Ray's own start-up failures (a node that timed out, a refused join)
        what = "start a local Ray" if target == "local" else f"connect to the Ray cluster at {target!r}"
        raise JobError(f"could not {what}: {exc}; on a busy machine, try again") from exc
    except SystemExit as exc:  # ray.init's own SIGTERM handler during the connection
        from archive_colorizer.errors import JobStopped

        raise JobStopped(int(exc.code) if isinstance(exc.code, int) else 15) from None
    finally:
        if ours:
            restore_sigterm()


def _join_in_thread(target: str, bound: float, message: str) -> None:
    """``ray.init(address=target)`` in a helper thread, the main thread waiting at most ``bound`` s.

    Joining blocks in Ray's C++ GCS client, which lets no Python signal handler run until it
    gives up (30 s per attempt); waiting here instead keeps SIGTERM prompt.
    """
    import ray

    failure: list[BaseException] = []

    def connect() -> None:
        try:
            ray.init(address=target, logging_level=logging.WARNING, configure_logging=True)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    thread = threading.Thread(target=connect, name="ray-connect", daemon=True)
    from archive_colorizer.compat import RAY_WORKER_LOGGER

    quiet = logging.getLogger(RAY_WORKER_LOGGER)  # not "SIGTERM handler is not set": ours stays
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        thread.start()
        thread.join(bound)  # a signal's handler runs (and may raise JobStopped) during this wait
    finally:
        quiet.setLevel(level)
    if thread.is_alive():
        raise JobError(message)
    if failure:
        raise failure[0]


def choose_address(address: str | None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> str:
    """The address to pass to ``ray.init``: the given one (checked to answer), a live record, or ``"local"``.

    Raises:
        JobError: an explicit address (or ``auto``'s record) does not answer in ``connect_timeout`` s.
    """
    given, source = (address, "--ray-address") if address else (os.environ.get("RAY_ADDRESS") or None, "RAY_ADDRESS")
    if given == "local":
        return "local"
    if given is not None and given != "auto":
        wait_for_address(given, source, connect_timeout)
        return given
    record = recorded_address()
    if record is not None and gcs_answers(record, PROBE_TIMEOUT_S):
        return record
    if given == "auto":
        raise JobError(
            f"{source}=auto but no running Ray cluster was found on this machine "
            f"({'recorded ' + repr(record) + ' does not answer' if record else 'no ray start recorded'}); "
            "start one with `ray start --head`, give its address, or leave it unset for a local Ray"
        )
    if record is not None:
        print(
            f"archive-colorizer: Ray cluster {record} recorded by `ray start` in {address_file()} does not answer "
            "(stopped or crashed); starting a local Ray instead",
            file=sys.stderr,
            flush=True,
        )
    return "local"


def address_file() -> str:
    """Where ``ray start`` records its cluster: ``$RAY_TMPDIR/ray/ray_current_cluster`` (default ``/tmp/ray``)."""
    from archive_colorizer.compat import ray_address_file

    return ray_address_file()


def recorded_address() -> str | None:
    """The GCS address (``host:port``) that the last ``ray start`` on this machine recorded, if any."""
    try:
        with open(address_file()) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def host_port(address: str) -> tuple[str, int] | None:
    """``host:6379``, ``ray://host:10001``, ``http://host:8265`` -> (host, port); ``None`` if there is no port."""
    parsed = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parsed.port
    except ValueError:
        return None
    return (parsed.hostname, port) if parsed.hostname and port else None


def gcs_answers(address: str, timeout: float) -> bool:
    """Whether ``address`` accepts a TCP connection within ``timeout`` seconds."""
    target = host_port(address)
    if target is None:
        return False
    try:
        with socket.create_connection(target, timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_address(address: str, source: str, timeout: float) -> None:
    """Retry a TCP connection to ``address`` for up to ``timeout`` seconds (a head may be starting).

    Raises:
        JobError: it never answered; names the address, where it came from and what to do.
    """
    if host_port(address) is None:
        return  # nothing to probe (e.g. a name Ray resolves itself); ray.init's own bound applies
    deadline = time.monotonic() + timeout
    while True:
        if gcs_answers(address, min(PROBE_TIMEOUT_S, max(deadline - time.monotonic(), 0.1))):
            return
        if time.monotonic() >= deadline:
            raise JobError(
                f"the Ray cluster at {address!r} (from {source}) did not answer within {timeout:g} s; check that its "
                "head is running (`ray status --address ...`) and the address and port are right, or leave "
                "--ray-address and RAY_ADDRESS unset to run on a local Ray"
            )
        time.sleep(0.5)
