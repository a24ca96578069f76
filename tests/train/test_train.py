"""The train job end to end on real Ray: DDP on two CPU workers, S3, resume, ray job submit.

Each Ray Train run costs startup time on a 2-core machine, so the runs are module fixtures
shared by the tests that inspect them: one two-worker run submitted with
``ray job submit -- python jobs/train.py`` whose run directory is on S3 (moto) behind a flaky
proxy that fails a tenth of the requests, with credentials passed as storage options; one run
on the session's local Ray with ``max_failures=1`` that loses a worker after its first
checkpoint, recovers, and is then submitted again with more epochs; one in-process run
(``workers=0``) that must overfit four photos.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
import torch
from PIL import Image

from archive_colorizer.errors import ConfigError
from archive_colorizer.models.artifact import load_generator
from archive_colorizer.storage import join, open_url, read_bytes
from archive_colorizer.train import run as train
from archive_colorizer.train.checkpoint import CheckpointContents, read_checkpoint
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.metrics import TRAIN_LOSSES, VAL_METRICS
from tests.conftest import Gates, submit_job
from tests.flaky_s3 import FAULTS, credential_options, find_secrets
from tests.train.conftest import make_shards

TINY = {"image_size": 32, "ngf": 8, "num_downs": 5, "ndf": 8, "n_layers": 2, "batch_size": 2, "cpus_per_worker": 0.5}
EPOCHS = 3


@pytest.fixture(scope="module", autouse=True)
def quick_controller():
    """Ray Train's controller polls its workers every 2 s by default; 0.2 s ends runs sooner."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
        yield


@pytest.fixture(scope="module")
def shards(ray_local, tmp_path_factory, photos) -> str:
    """6 photos: 4 for training (twice each: 8 rows, 2 steps per epoch on 2 workers x 2), 2 for val."""
    return make_shards(tmp_path_factory.mktemp("shards"), photos, val=("rocket", "motorcycle"), repeat=2)


def _config(shards: str, run: str, **overrides) -> TrainConfig:
    return TrainConfig(
        data=shards, run=run, **{"workers": 2, "epochs": EPOCHS, "keep_checkpoints": 2, **TINY, **overrides}
    )


def _read(url: str, storage_options=None) -> bytes:
    fs, path = open_url(url, storage_options)
    return read_bytes(fs, path)


def _metrics(run: str, storage_options=None) -> list[dict]:
    return [json.loads(line) for line in _read(join(run, "metrics.jsonl"), storage_options).splitlines()]


def _read_checkpoint(fs, path: str, local: Path) -> CheckpointContents:
    """Download a checkpoint folder and read it (every file checked against its recorded sha256)."""
    fs.get(path, str(local), recursive=True)
    return read_checkpoint(local)


def _options(config: dict) -> list[str]:
    return [arg for key, value in config.items() for arg in (f"--{key.replace('_', '-')}", str(value))]


@pytest.fixture(scope="module")
def s3_job(ray_head, moto_server, flaky_s3, shards, tmp_path_factory):
    """``ray job submit ... jobs/train.py``: 2 workers x 3 epochs, run directory on a flaky S3.

    The job reaches S3 through :class:`tests.flaky_s3.FlakyS3Proxy` failing 10 % of the
    requests, with the fake credentials as storage options in a ``--config`` file (a command
    line is no place for secrets: Ray prints the entrypoint); the tests read the results
    directly from moto. Returns (run URL, storage options, job output, proxy counts).
    """
    import boto3
    import yaml

    bucket = f"runs-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/experiments/uninterrupted"
    secrets = tmp_path_factory.mktemp("secrets") / "storage.yaml"
    secrets.write_text(yaml.safe_dump({"storage_options": credential_options(flaky_s3.endpoint_url)}))
    flaky_s3.reset(fault_rate=0.1, seed=8)
    try:
        completed = submit_job(
            ray_head,
            "jobs/train.py",
            "--data",
            shards,
            "--run",
            url,
            "--config",
            str(secrets),
            *_options({"workers": 2, "epochs": EPOCHS, "keep_checkpoints": 2, **TINY}),
        )
        faults = dict(flaky_s3.counts)
    finally:
        flaky_s3.reset(fault_rate=0.0)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return url, {"endpoint_url": moto_server}, completed.stdout + completed.stderr, faults


def _kill_a_worker_after_the_first_checkpoint(run: Path, gates: Gates, killed: dict) -> None:
    """SIGKILL one Ray Train worker of this test session while it waits before epoch 1.

    Both workers are held at the ``train.epoch`` point for epoch 1 (held by the caller before
    the run starts), after ``ray.train.report`` of epoch 0's checkpoint returned. Once Ray Train
    has registered ``checkpoint_epoch_0001`` (its snapshot file in the run directory names it),
    one held worker is killed and the point released. Records the process id and the metrics
    rows at that moment in ``killed`` (``error`` when it could not).
    """
    snapshot, metrics = run / "checkpoint_manager_snapshot.json", run / "metrics.jsonl"
    try:
        (_, pid), *_ = gates.wait_reached("train.epoch", count=2)
        deadline = time.monotonic() + 300
        while not (metrics.exists() and snapshot.exists() and "checkpoint_epoch_0001" in snapshot.read_text()):
            if time.monotonic() > deadline:
                raise AssertionError("checkpoint_epoch_0001 was never registered")
            time.sleep(0.05)
        assert "RayTrainWorker" in psutil.Process(pid).cmdline()[0]
        rows = metrics.read_text().splitlines()
        os.kill(pid, signal.SIGKILL)
        killed.update(pid=pid, rows=rows)
    except BaseException as exc:  # the run must not stay held
        killed["error"] = exc
    finally:
        gates.release("train.epoch")


@pytest.fixture(scope="module")
def resumed_run(ray_local, shards, tmp_path_factory):
    """A run of 2 epochs that loses a worker in epoch 1 and recovers (``max_failures=1``), then
    the same command with ``epochs=3`` submitted again, which continues from its checkpoint.

    Returns (first result, rows after it, kill record, second result, run directory).
    """
    run = tmp_path_factory.mktemp("resume") / "run"
    gates, killed = Gates(), {}
    gates.hold("train.epoch", "1")
    killer = threading.Thread(target=_kill_a_worker_after_the_first_checkpoint, args=(run, gates, killed), daemon=True)
    killer.start()
    try:
        first = train(_config(shards, str(run), epochs=EPOCHS - 1, max_failures=1))
    finally:
        killer.join(timeout=60)
        gates.release("train.epoch")
    assert "error" not in killed, killed
    rows_after_first = (run / "metrics.jsonl").read_text().splitlines()
    return first, rows_after_first, killed, train(_config(shards, str(run))), run


@pytest.mark.slow
def test_two_workers_hold_identical_generator_weights_after_every_epoch(s3_job):
    url, options, _, _ = s3_job
    digests = [row["generator_param_sha256"] for row in _metrics(url, options)]
    assert all(len(d) == 2 and d[0] == d[1] for d in digests), digests  # DDP keeps the ranks in sync
    assert len({d[0] for d in digests}) == EPOCHS  # ... while the weights change every epoch


@pytest.mark.slow
def test_metrics_jsonl_has_every_field_for_every_epoch(s3_job):
    url, options, _, _ = s3_job
    rows = _metrics(url, options)
    assert [row["epoch"] for row in rows] == list(range(EPOCHS))
    for row in rows:
        for name in (*TRAIN_LOSSES, *VAL_METRICS, "images_per_sec", "images_per_sec_per_worker"):
            assert isinstance(row[name], float) and row[name] == row[name], (name, row)
        assert (row["workers"], row["train_images"], row["val_images"]) == (2, 8, 2)
    assert [row["global_step"] for row in rows] == [2, 4, 6]  # 4 rows per worker, batches of 2


@pytest.mark.slow
def test_job_leaves_checkpoints_plots_and_a_generator_on_s3_that_loads_back(s3_job, shards):
    url, options, stdout, _ = s3_job
    fs, root = open_url(url, options)
    names = {path.rsplit("/", 1)[-1] for path in fs.ls(root, detail=False)}
    assert {
        "checkpoint_epoch_0002",
        "checkpoint_epoch_0003",
        "config.yaml",
        "metrics.jsonl",
        "loss_curve.png",
        "samples",
        "generator",
    } <= names
    assert "checkpoint_epoch_0001" not in names  # keep_checkpoints=2
    assert f"generator exported to {url}/generator" in stdout
    for png in ("loss_curve.png", *(f"samples/epoch_{e:04d}.png" for e in range(EPOCHS))):
        with Image.open(io.BytesIO(_read(join(url, png), options))) as image:
            image.load()
            assert image.format == "PNG" and min(image.size) > 100
    artifact = load_generator(join(url, "generator"), storage_options=options)
    provenance = artifact.metadata["provenance"]
    assert (provenance["run"], provenance["epoch"], provenance["data"]) == (url, EPOCHS - 1, shards)
    assert provenance["checkpoint"] == join(url, "checkpoint_epoch_0003")
    assert artifact.working_size == 32
    with torch.no_grad():
        assert artifact.generator(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_is_replaced_and_training_restores_from_the_last_checkpoint(resumed_run):
    first, rows, killed, _, _ = resumed_run
    assert killed.get("pid") and not psutil.pid_exists(killed["pid"]), killed  # a worker really died in epoch 1
    assert len(killed["rows"]) == 1  # ... after epoch 0's row, before epoch 1's
    # The same fit finished (max_failures=1): the replaced workers restored checkpoint_epoch_0001.
    assert first.epochs == EPOCHS - 1 and first.global_step == 2 * (EPOCHS - 1)
    assert [json.loads(row)["epoch"] for row in rows] == list(range(EPOCHS - 1))  # each epoch once
    assert rows[0] == killed["rows"][0]  # epoch 0 was restored, not trained again


@pytest.mark.slow
def test_resubmitted_run_continues_from_its_last_checkpoint(resumed_run, s3_job):
    _, rows_before, _, result, run = resumed_run
    uninterrupted = _metrics(s3_job[0], s3_job[1])
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == list(range(EPOCHS))  # each epoch exactly once
    assert rows[: EPOCHS - 1] == rows_before  # epochs 0 and 1 were not trained again
    assert result.global_step == json.loads(rows[-1])["global_step"] == uninterrupted[-1]["global_step"]
    assert result.epochs == EPOCHS
    assert load_generator(result.generator).metadata["provenance"]["epoch"] == EPOCHS - 1


@pytest.mark.slow
def test_checkpoints_on_a_flaky_s3_lose_nothing_and_the_retries_are_reported(s3_job, tmp_path):
    url, options, output, faults = s3_job
    assert faults["slow_down"] + faults["internal_error"] > 0, faults
    rows = _metrics(url, options)
    reported = sum(row["storage_retries"] for row in rows)
    driver = re.search(r"object-store requests retried by the driver: (\d+)", output)
    reported += int(driver.group(1)) if driver else 0
    assert 0 < reported <= sum(faults[k] for k in FAULTS), (reported, faults)
    fs, root = open_url(url, options)
    for name in ("checkpoint_epoch_0002", "checkpoint_epoch_0003"):
        contents = _read_checkpoint(fs, join(root, name), tmp_path / name)
        assert contents.state["epoch"] == int(name[-4:])  # every file present and matching its sha256


def _head_session_logs(env: dict[str, str]) -> Path:
    """The log folder of the ``ray_head`` cluster (found from its processes' command lines)."""
    port = env["RAY_ADDRESS"].rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        if f"--dashboard-port={port}" in (process.info["cmdline"] or []):
            for child in process.children(recursive=True):
                for arg in child.cmdline():
                    if arg.startswith("--session-dir="):
                        return Path(arg.split("=", 1)[1]) / "logs"
    raise AssertionError("the ray_head cluster's session folder was not found")


@pytest.mark.slow
def test_credentials_given_as_storage_options_appear_in_no_log_or_file_of_the_run(s3_job, ray_head, tmp_path):
    url, options, output, _ = s3_job
    fs, root = open_url(url, options)
    fs.get(root, str(tmp_path / "run"), recursive=True)
    assert (tmp_path / "run" / "config.yaml").read_text().count("'***'") == 2  # key and secret, redacted
    # The job's output, every file of the run (config, metrics, checkpoints' state.json, the
    # generator's JSON), and every log of the cluster the job ran on.
    assert find_secrets(output, tmp_path / "run", _head_session_logs(ray_head)) == []


def test_in_process_run_overfits_four_photos_below_half_the_gray_baseline(ray_local, photos, tmp_path):
    """workers=0 (the loop in this process): trained on 4 photos, validated on the same 4."""
    four = {name: photos[name] for name in ("astronaut", "coffee", "chelsea", "rocket")}
    shards = make_shards(tmp_path / "shards", four, val_also_train=True, repeat=70, rows_per_shard=40)
    config = TrainConfig(
        data=shards,
        run=str(tmp_path / "run"),
        workers=0,
        epochs=3,
        pretrain_epochs=1,
        lr=1e-3,
        **{**TINY, "batch_size": 4},
    )
    result = train(config)
    rows = _metrics(str(tmp_path / "run"))
    assert [row["phase"] for row in rows] == ["pretrain", "gan", "gan"]
    assert rows[0]["loss_G_GAN"] is None and rows[1]["loss_G_GAN"] is not None
    last = rows[-1]
    assert last["val_images"] == 4 and result.global_step == 3 * 70
    assert last["val_L1_ab"] < 0.5 * last["val_L1_ab_gray"], last
    assert last["val_PSNR"] > last["val_PSNR_gray"]


def test_refuses_to_continue_a_run_directory_of_another_model(ray_local, shards, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(_config(shards, str(run)).to_yaml())
    with pytest.raises(ConfigError, match="ngf: 8 -> 16"):
        train(_config(shards, str(run), ngf=16))


def test_refuses_shards_with_fewer_images_than_one_batch_per_worker(ray_local, shards, tmp_path):
    with pytest.raises(ConfigError, match="8 training images.*at least 10"):
        train(_config(shards, str(tmp_path / "run"), batch_size=5))
