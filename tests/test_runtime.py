"""How a job finds its Ray: a live record is joined, a dead one skipped in seconds, a dead address refused in time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive_colorizer.errors import JobError
from archive_colorizer.runtime import address_file, choose_address, host_port
from tests.conftest import REPO_ROOT, free_port

CLI = str(Path(sys.executable).with_name("archive-colorizer"))


@pytest.fixture
def ray_tmpdir(monkeypatch) -> Iterator[Path]:
    """A RAY_TMPDIR of the test's own (short: Ray's socket paths below it must stay under 107 characters)."""
    folder = Path(tempfile.mkdtemp(prefix="rt", dir=os.environ.get("RAY_TMPDIR") or "/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _record(address: str) -> None:
    Path(address_file()).parent.mkdir(parents=True, exist_ok=True)
    Path(address_file()).write_text(address)


def test_addresses_are_split_into_host_and_port():
    assert host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_port("ray://head.example:10001") == ("head.example", 10001)
    assert host_port("http://127.0.0.1:8265") == ("127.0.0.1", 8265)
    assert host_port("head.example") is None


def test_record_of_a_dead_head_is_reported_in_one_line_and_a_local_ray_chosen_within_seconds(ray_tmpdir, capsys):
    port = free_port()  # nothing listens there: a head that was killed
    _record(f"127.0.0.1:{port}")
    started = time.monotonic()
    assert choose_address(None) == "local"
    seconds = time.monotonic() - started
    assert seconds < 3, seconds
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "starting a local Ray" in lines[0], lines


def test_record_of_a_live_head_is_joined(ray_tmpdir, capsys):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        _record(address)
        assert choose_address(None) == address
    assert capsys.readouterr().err == ""


def test_no_record_starts_a_local_ray_silently(ray_tmpdir, capsys):
    assert choose_address(None) == "local"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("source", ["--ray-address", "RAY_ADDRESS"])
def test_given_address_that_does_not_answer_fails_in_bounded_time_naming_it(ray_tmpdir, monkeypatch, source):
    address = f"127.0.0.1:{free_port()}"
    if source == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    started = time.monotonic()
    with pytest.raises(JobError) as raised:
        choose_address(address if source == "--ray-address" else None, connect_timeout=2)
    seconds = time.monotonic() - started
    assert 2 <= seconds < 5, seconds
    message = str(raised.value)
    assert address in message and source in message and "did not answer within 2 s" in message, message


def _run_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    completed = subprocess.run([CLI, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    return completed, time.monotonic() - started


def test_prepare_with_a_dead_given_address_exits_with_the_error_in_bounded_time(ray_tmpdir, photos, tmp_path):
    from PIL import Image

    (tmp_path / "photos").mkdir()
    Image.fromarray(photos["coffee"]).save(tmp_path / "photos" / "coffee.jpg")
    address = f"127.0.0.1:{free_port()}"
    args = ["prepare", str(tmp_path / "photos"), str(tmp_path / "shards"), "--no-progress"]
    completed, seconds = _run_cli([*args, "--ray-address", address, "--ray-connect-timeout", "3"], dict(os.environ))
    assert completed.returncode == 1, completed.stderr
    assert f"the Ray cluster at '{address}' (from --ray-address) did not answer within 3 s" in completed.stderr
    assert seconds < 60, seconds  # 3 s of probing plus the interpreter's start on a busy machine
    assert not (tmp_path / "shards").exists()


@pytest.mark.slow
def test_prepare_with_a_stale_record_runs_on_a_local_ray(ray_tmpdir, photos, tmp_path):
    from PIL import Image

    (tmp_path / "photos").mkdir()
    for name in ("coffee", "chelsea", "astronaut"):
        Image.fromarray(photos[name]).save(tmp_path / "photos" / f"{name}.jpg")
    stale = f"127.0.0.1:{free_port()}"
    _record(stale)
    args = ["prepare", str(tmp_path / "photos"), str(tmp_path / "shards"), "--no-progress", "--size", "64"]
    completed, seconds = _run_cli(args, dict(os.environ))
    assert completed.returncode == 0, completed.stderr
    assert "3 inputs -> 3 written" in completed.stdout, completed.stdout
    assert completed.stderr.count(stale) == 1, completed.stderr
    assert seconds < 240, seconds
