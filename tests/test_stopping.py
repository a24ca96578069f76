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


def test_the_start_has_its_own_allowance_and_the_stall_timeout_applies_from_the_first_progress():
    # A fresh cluster: nodes joining and installing take longer than the stall timeout allows.
    with stop_handlers(), Watchdog(0.5, "train", "no worker finished a training step", startup_timeout=60) as dog:
        time.sleep(2)  # four stall timeouts without progress, still within the start-up allowance
        assert dog.error is None
        dog.beat()  # the first step
    assert dog.error is None
    started = time.monotonic()
    with stop_handlers(), pytest.raises(JobError) as raised:
        with Watchdog(0.5, "train", "no worker finished a training step", startup_timeout=60) as dog:
            dog.beat()
            time.sleep(30)  # after the first step, the stall timeout applies
    assert time.monotonic() - started < 10
    assert "train made no progress" in str(raised.value) and "--stall-timeout 0.5" in str(raised.value)


def test_a_start_that_takes_too_long_fails_naming_what_it_waits_for():
    waiting = "2 training workers need 2 GPUs and the cluster has 0 (GPU nodes still pending from the autoscaler"
    with stop_handlers(), pytest.raises(JobError) as raised:
        with Watchdog(
            600, "train", "no worker finished a training step", startup_timeout=1, waiting_for=lambda: waiting
        ):
            time.sleep(30)
    message = str(raised.value)
    assert message.startswith("train did not start within 1 s: " + waiting), message
    assert "--startup-timeout 1" in message and "--stall-timeout" not in message
