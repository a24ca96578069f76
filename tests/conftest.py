"""Shared fixtures: real photographs, one local Ray per session, a local S3 API (moto server).

- ``photos``: scikit-image's bundled colour photographs as (H, W, 3) uint8 arrays.
- ``moto_server``: a real S3 API on 127.0.0.1 (moto's server mode, as s3fs's own tests use);
  it sets the standard AWS variables, so every process started afterwards (Ray workers, jobs)
  reaches it through s3fs/botocore's usual configuration.
- ``s3_bucket``: a fresh bucket per test: ``(url, storage_options)``.
- ``ray_local``: one ``ray.init(address="local", num_cpus=2)`` for the whole session.
- ``ray_head``: a ``ray start --head --block`` in its own process group, for ``ray job submit``
  tests; stopped by killing that group (never ``ray stop``, which would stop every Ray on the
  machine).
- ``flaky_s3``: a proxy in front of the moto server that fails a chosen fraction of the
  requests (503 SlowDown, 500, dropped connections).
- ``gates``: the job's hold points (:mod:`archive_colorizer.gates`): a test that signals, kills
  or watches a job "in the middle" holds the job there until it has acted, never relies on
  the job still running by then.

The suite leaves the machine as it found it: ``ray_head`` keeps its files (and its
``ray_current_cluster`` record) in its own ``--temp-dir``, removed afterwards, and at the end
of the session :func:`pytest_sessionfinish` fails the run if the record of this machine's
``ray start`` changed or a process of a Ray the suite started is still running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from archive_colorizer.gates import GATES_ENV
from tests.flaky_s3 import FlakyS3Proxy

REPO_ROOT = Path(__file__).resolve().parent.parent
# Hold points (archive_colorizer.gates) for every process of the session: set before any Ray
# starts, so its workers, nodes and the jobs the tests start all inherit it.
GATES_DIR = tempfile.mkdtemp(prefix="gates-")
os.environ[GATES_ENV] = GATES_DIR
RAY_SESSIONS: list[str] = []
"""Folders of the Rays this session started; no process may name one when the session ends."""
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle")


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real colour photographs bundled with scikit-image: name -> (H, W, 3) uint8 RGB."""
    return {name: np.ascontiguousarray(_load_photo(name)) for name in PHOTO_NAMES}


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` different unused TCP ports (all bound at once, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing-access-key",
        AWS_SECRET_ACCESS_KEY="testing-secret-key",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(moto_server: str) -> tuple[str, dict[str, str]]:
    """A new empty bucket: ``("s3://bucket-…", storage_options)``."""
    import boto3

    name = f"bucket-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=name)
    return f"s3://{name}", {"endpoint_url": moto_server}


@pytest.fixture(scope="session")
def ray_local(moto_server: str) -> Iterator[None]:
    """One local Ray with 2 CPUs for the whole test session (after moto, so workers see its env)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            logging_level="WARNING",
            configure_logging=True,
            # RAY_API_SERVER_ADDRESS: this Ray has no dashboard, so Ray Train's placement-group
            # cleaner must not look for one: left alone, the state API picks the newest Ray on
            # the machine (another test session's), finds no Train controller of ours there,
            # and removes our workers' placement group mid-run. Pointing it at a closed port
            # makes every query fail fast, which the cleaner tolerates.
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "RAY_API_SERVER_ADDRESS": "http://127.0.0.1:9"}},
        )
        RAY_SESSIONS.append(ray._private.worker._global_node.get_session_dir_path())
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _ray_key_value_store_kept() -> Iterator[None]:
    """Give the session's Ray its key-value client back after a test that used ``Cluster``.

    ``ray.cluster_utils.Cluster.shutdown()`` resets the process-wide client of Ray's internal
    key-value store, though the session's own Ray (``ray_local``) is still connected; the
    driver's heartbeat reads (and ``tests/test_compat.py``) would then fail. No job does this:
    only the tests that build a Cluster in the test process.
    """
    yield
    import ray

    if ray.is_initialized():
        from ray.experimental import internal_kv

        if not internal_kv._internal_kv_initialized():
            internal_kv._initialize_internal_kv(ray._private.worker.global_worker.gcs_client)


@pytest.fixture(scope="session")
def ray_head(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A ``ray start --head`` cluster for ``ray job submit`` tests.

    Yields the environment to run ``ray job submit`` with (``RAY_ADDRESS`` set to the
    dashboard). The head is started with ``RAY_AUTH_MODE=disabled`` so that submission works
    whether or not the machine has token authentication configured.
    """
    # Every port the head opens is chosen here: Ray's fixed defaults (agent HTTP 52365, client
    # server 10001, ...) collide with any other Ray head on the machine, and a head whose job
    # agent could not bind refuses every submission ("No available agent to submit job").
    ports = free_ports(7)
    dashboard_port, gcs_port, agent_http, agent_grpc, runtime_env_agent, metrics, client_server = ports
    # RAY_ADDRESS in the head's environment (inherited by its workers) makes Ray's state API,
    # which Ray Train's placement-group cleaner queries, ask this cluster rather than the
    # newest Ray on the machine.
    # PATH: the venv's bin first (as if activated), so a job's ``python`` is this interpreter.
    # No graceful drain on SIGTERM: the whole group is stopped at once, so the drain could only
    # wait out its 30 s for a GCS that is already gone.
    env = dict(
        os.environ,
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ADDRESS=f"127.0.0.1:{gcs_port}",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
    )
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    # Its own temp dir: its session files and its ray_current_cluster record stay there (the
    # machine's record is left as it was; a killed head must not leave a stale one behind).
    # Short, as Ray's socket paths below it must fit in 107 characters.
    temp_dir = tempfile.mkdtemp(prefix="rh", dir=os.environ.get("RAY_TMPDIR") or "/tmp")
    RAY_SESSIONS.append(temp_dir)
    ray_bin = str(Path(sys.executable).with_name("ray"))
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [
                ray_bin,
                "start",
                "--head",
                "--block",
                f"--port={gcs_port}",
                f"--dashboard-port={dashboard_port}",
                "--dashboard-host=127.0.0.1",
                "--num-cpus=2",
                "--disable-usage-stats",
                f"--dashboard-agent-listen-port={agent_http}",
                f"--dashboard-agent-grpc-port={agent_grpc}",
                f"--runtime-env-agent-port={runtime_env_agent}",
                f"--metrics-export-port={metrics}",
                f"--ray-client-server-port={client_server}",
                f"--temp-dir={temp_dir}",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{dashboard_port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", dashboard_port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"ray start --head exited early:\n{log.read_text()}") from None
            time.sleep(0.5)
    else:
        raise RuntimeError(f"Ray dashboard did not come up on {address}:\n{log.read_text()}")
    yield dict(env, RAY_ADDRESS=address)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        # `ray start --block` takes about 35 s to exit after SIGTERM; its group is ours to kill.
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    _wait_for_exit(temp_dir, timeout=30)
    shutil.rmtree(temp_dir, ignore_errors=True)


def ray_processes_of(folders: list[str]) -> list[str]:
    """Running processes whose command line names one of ``folders`` (a Ray's session or temp dir)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if any(folder in line for folder in folders):
            found.append(f"{process.info['pid']}: {line[:160]}")
    return found


def _wait_for_exit(folder: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while ray_processes_of([folder]) and time.monotonic() < deadline:
        time.sleep(0.5)


def _ray_record() -> str | None:
    from archive_colorizer.runtime import recorded_address

    return recorded_address()


_RECORD_AT_START = _ray_record()


class Gates:
    """Arms, watches and releases the job's hold points (:mod:`archive_colorizer.gates`).

    A test holds a point for a key pattern before it starts the job, waits until the job has
    reached it (:meth:`wait_reached`: the job is then certainly in the middle), acts (a signal,
    a kill, a removed node), and releases it. Every point is released when the test ends.
    """

    def __init__(self, folder: str = GATES_DIR) -> None:
        self.folder = Path(folder)

    def hold(self, point: str, pattern: str) -> None:
        """Make every ``hold(point, key)`` whose key matches ``pattern`` (fnmatch) wait."""
        (self.folder / f"{point}.reached").unlink(missing_ok=True)
        (self.folder / f"{point}.hold").write_text(pattern, encoding="utf-8")

    def reached(self, point: str) -> list[tuple[str, int]]:
        """``(key, process id)`` of every call that has waited at ``point`` since it was held."""
        try:
            lines = (self.folder / f"{point}.reached").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [(key, int(pid)) for key, pid in (line.rsplit("\t", 1) for line in lines if line)]

    def wait_reached(
        self, point: str, count: int = 1, process: subprocess.Popen | None = None, timeout: float = 300
    ) -> list[tuple[str, int]]:
        """Until ``count`` calls wait at ``point``; fails when ``process`` ends first or after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while len(found := self.reached(point)) < count:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the job ended (exit {process.returncode}) before it reached {point}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the job did not reach {point} in {timeout} s (reached: {found})")
            time.sleep(0.02)
        return found

    def release(self, point: str) -> None:
        """Let every call waiting at ``point`` go on (and later ones pass)."""
        (self.folder / f"{point}.hold").unlink(missing_ok=True)

    def release_all(self) -> None:
        for path in self.folder.glob("*.hold"):
            path.unlink(missing_ok=True)


@pytest.fixture
def gates() -> Iterator[Gates]:
    """The job's hold points for one test; all released when it ends."""
    holds = Gates()
    holds.release_all()
    try:
        yield holds
    finally:
        holds.release_all()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if it changed this machine's Ray record or left Ray processes running."""
    Gates().release_all()
    problems = []
    shutil.rmtree(GATES_DIR, ignore_errors=True)
    if _ray_record() != _RECORD_AT_START:
        problems.append(f"the Ray record changed: {_RECORD_AT_START!r} -> {_ray_record()!r}")
    deadline = time.monotonic() + 30  # ray.shutdown stops its processes asynchronously
    while (left := ray_processes_of(RAY_SESSIONS)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        problems.append("Ray processes left running:\n  " + "\n  ".join(left))
    if problems:
        session.config.get_terminal_writer().line("machine not left as found: " + "; ".join(problems), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def submit_job(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``ray job submit --working-dir <repo> -- python <args>`` against ``ray_head``'s cluster.

    The dashboard answers before the head's job agent has registered (on a busy machine that
    can take longer than the dashboard's own 10 s wait); such a refused submission created no
    job, so it is retried for up to two minutes.
    """
    ray_bin = str(Path(sys.executable).with_name("ray"))
    deadline = time.monotonic() + 120
    while True:
        completed = subprocess.run(
            [ray_bin, "job", "submit", "--working-dir", str(REPO_ROOT), "--", "python", *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        # A fresh head answers on the dashboard port before its job agent has registered.
        if "No available agent to submit job" not in completed.stderr or time.monotonic() > deadline:
            return completed
        time.sleep(2)


def ray_session_logs() -> Path:
    """The log folder of the session's local Ray (``ray_local``): every worker's output, Ray Data's logs."""
    import ray

    return Path(ray._private.worker._global_node.get_logs_dir_path())


@pytest.fixture(scope="session")
def flaky_s3(moto_server: str) -> Iterator[FlakyS3Proxy]:
    """An HTTP proxy on 127.0.0.1 in front of the moto server that fails a fraction of the requests.

    Faultless until a test calls ``flaky_s3.reset(fault_rate)``; see :mod:`tests.flaky_s3`.
    """
    proxy = FlakyS3Proxy(moto_server).start()
    yield proxy
    proxy.stop()
