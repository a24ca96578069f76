"""A job never waits forever: the stall watchdog fails it, SIGTERM stops it and keeps what finished."""

from __future__ import annotations

import os
import signal
import time

import pytest

from archive_colorizer.errors import JobError, JobStopped
from archive_colorizer.stopping import Watchdog, stop_handlers


def test_watchdog_fails_a_wait_without_progress_after_its_timeout():
    started = time.monotonic()
    with stop_handlers(), pytest.raises(JobError) as raised, Watchdog(1.0, "prepare", "no shard task finished"):
        time.sleep(30)
    seconds = time.monotonic() - started
    assert 1.0 <= seconds < 3.0, seconds
    assert "prepare made no progress" in str(raised.value) and "--stall-timeout 1" in str(raised.value)


def test_watchdog_lets_a_loop_that_beats_run_past_its_timeout():
    with Watchdog(0.5, "colorize", "no batch finished") as watchdog:
        for _ in range(15):
            time.sleep(0.1)
            watchdog.beat()
    assert watchdog.error is None


def test_sigterm_raises_job_stopped_in_the_main_thread():
    with stop_handlers(), pytest.raises(JobStopped) as raised:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert raised.value.signal_number == signal.SIGTERM and "re-running the same command resumes" in str(raised.value)


def test_a_second_stop_signal_while_stopping_is_noted_not_raised(capfd):
    # The first signal stops the job; a second one during its cleanup (writing the manifest rows
    # of finished outputs) must not cut that cleanup short.
    saved = []
    with stop_handlers():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except JobStopped:
            os.kill(os.getpid(), signal.SIGINT)  # during the cleanup
            time.sleep(0.1)  # the handler runs here, and returns
            saved.append("rows of finished outputs")
    assert saved == ["rows of finished outputs"]
    assert "signal 2: already stopping, keeping what finished" in capfd.readouterr().err
