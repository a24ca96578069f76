"""The train job end to end on real Ray: DDP on two CPU workers, S3, resume, ray job submit.

Each Ray Train run costs startup time on a 2-core machine, so the runs are module fixtures
shared by the tests that inspect them: one uninterrupted two-worker run submitted with
``ray job submit -- python jobs/train.py`` whose run directory is on S3 (moto); one run on the
session's local Ray that loses a worker after its first checkpoint and is started again with
the same config; one in-process run (``workers=0``) that must overfit four photos.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import uuid
from pathlib import Path

import psutil
import pytest
import torch
from PIL import Image

from archive_colorizer.config import TrainConfig
from archive_colorizer.errors import ConfigError, JobError
from archive_colorizer.models.artifact import load_generator
from archive_colorizer.storage import join, open_url, read_bytes
from archive_colorizer.train import run as train
from archive_colorizer.train.metrics import TRAIN_LOSSES, VAL_METRICS
from tests.conftest import submit_job
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
    return TrainConfig(data=shards, run=run, workers=2, epochs=EPOCHS, keep_checkpoints=2, **{**TINY, **overrides})


def _read(url: str, storage_options=None) -> bytes:
    fs, path = open_url(url, storage_options)
    return read_bytes(fs, path)


def _metrics(run: str, storage_options=None) -> list[dict]:
    return [json.loads(line) for line in _read(join(run, "metrics.jsonl"), storage_options).splitlines()]


def _options(config: dict) -> list[str]:
    return [arg for key, value in config.items() for arg in (f"--{key.replace('_', '-')}", str(value))]


@pytest.fixture(scope="module")
def s3_job(ray_head, moto_server, shards):
    """``ray job submit ... jobs/train.py``: 2 workers x 3 epochs, uninterrupted, run directory on S3."""
    import boto3

    bucket = f"runs-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/experiments/uninterrupted"
    completed = submit_job(
        ray_head, "jobs/train.py", "--data", shards, "--run", url, "--storage-option", f"endpoint_url={moto_server}",
        *_options({"workers": 2, "epochs": EPOCHS, "keep_checkpoints": 2, **TINY}),
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return url, {"endpoint_url": moto_server}, completed.stdout


def _kill_a_worker_after_the_first_checkpoint(run: Path, stop: threading.Event) -> None:
    """SIGKILL one Ray Train worker of this test session once epoch 0 is checkpointed.

    Waits until Ray Train has registered ``checkpoint_epoch_0001`` (its snapshot file in the run
    directory names it) and rank 0 has written the epoch's metrics row.
    """
    snapshot, metrics = run / "checkpoint_manager_snapshot.json", run / "metrics.jsonl"
    while not stop.wait(0.05):
        if not (metrics.exists() and snapshot.exists() and "checkpoint_epoch_0001" in snapshot.read_text()):
            continue
        for process in psutil.Process().children(recursive=True):  # only this session's Ray
            try:
                if "RayTrainWorker" in " ".join(process.cmdline()[:1]):
                    os.kill(process.pid, signal.SIGKILL)
                    return
            except psutil.Error:
                continue


@pytest.fixture(scope="module")
def resumed_run(ray_local, shards, tmp_path_factory):
    """The same config twice: the first run loses a worker after epoch 0, the second resumes."""
    run = tmp_path_factory.mktemp("resume") / "run"
    config = _config(shards, str(run))
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_worker_after_the_first_checkpoint, args=(run, stop), daemon=True)
    killer.start()
    try:
        with pytest.raises(JobError, match="training failed"):
            train(config)
    finally:
        stop.set()
        killer.join()
    rows_before = (run / "metrics.jsonl").read_text().splitlines()
    return train(config), run, rows_before


@pytest.mark.slow
def test_two_workers_hold_identical_generator_weights_after_every_epoch(s3_job):
    url, options, _ = s3_job
    digests = [row["generator_param_sha256"] for row in _metrics(url, options)]
    assert all(len(d) == 2 and d[0] == d[1] for d in digests), digests  # DDP keeps the ranks in sync
    assert len({d[0] for d in digests}) == EPOCHS  # ... while the weights change every epoch


@pytest.mark.slow
def test_metrics_jsonl_has_every_field_for_every_epoch(s3_job):
    url, options, _ = s3_job
    rows = _metrics(url, options)
    assert [row["epoch"] for row in rows] == list(range(EPOCHS))
    for row in rows:
        for name in (*TRAIN_LOSSES, *VAL_METRICS, "images_per_sec", "images_per_sec_per_worker"):
            assert isinstance(row[name], float) and row[name] == row[name], (name, row)
        assert (row["workers"], row["train_images"], row["val_images"]) == (2, 8, 2)
    assert [row["global_step"] for row in rows] == [2, 4, 6]  # 4 rows per worker, batches of 2


@pytest.mark.slow
def test_job_leaves_checkpoints_plots_and_a_generator_on_s3_that_loads_back(s3_job, shards):
    url, options, stdout = s3_job
    fs, root = open_url(url, options)
    names = {path.rsplit("/", 1)[-1] for path in fs.ls(root, detail=False)}
    assert {"checkpoint_epoch_0002", "checkpoint_epoch_0003", "config.yaml", "metrics.jsonl", "loss_curve.png",
            "samples", "generator"} <= names
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
def test_resubmitted_run_continues_from_its_last_checkpoint(resumed_run, s3_job):
    result, run, rows_before = resumed_run
    uninterrupted = _metrics(s3_job[0], s3_job[1])
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == list(range(EPOCHS))  # each epoch exactly once
    assert rows[0] == rows_before[0]  # epoch 0 was not trained again
    assert result.global_step == json.loads(rows[-1])["global_step"] == uninterrupted[-1]["global_step"]
    assert result.epochs == EPOCHS
    assert load_generator(result.generator).metadata["provenance"]["epoch"] == EPOCHS - 1


def test_in_process_run_overfits_four_photos_below_half_the_gray_baseline(ray_local, photos, tmp_path):
    """workers=0 (the loop in this process): trained on 4 photos, validated on the same 4."""
    four = {name: photos[name] for name in ("astronaut", "coffee", "chelsea", "rocket")}
    shards = make_shards(tmp_path / "shards", four, val_also_train=True, repeat=70, rows_per_shard=40)
    config = TrainConfig(data=shards, run=str(tmp_path / "run"), workers=0, epochs=3, pretrain_epochs=1, lr=1e-3,
                         **{**TINY, "batch_size": 4})
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
