"""``--workers 2`` with the default ``--cpus-per-worker`` on a 2-CPU Ray: trains (workers sized down), never waits."""

from __future__ import annotations

import time

import pytest

from archive_colorizer.errors import ConfigError
from archive_colorizer.train import run as train
from archive_colorizer.train.config import TrainConfig
from tests.train.conftest import make_shards

TINY = {"image_size": 32, "ngf": 8, "num_downs": 5, "ndf": 8, "n_layers": 2, "batch_size": 2}


@pytest.fixture(scope="module")
def shards(ray_local, tmp_path_factory, photos) -> str:
    return make_shards(tmp_path_factory.mktemp("shards"), photos, val=("rocket", "motorcycle"), repeat=2)


def test_two_default_workers_on_two_cpus_train_with_half_a_cpu_each(shards, tmp_path, capsys):
    config = TrainConfig(data=shards, run=str(tmp_path / "run"), workers=2, epochs=1, stall_timeout=300, **TINY)
    assert "cpus_per_worker" not in config.model_fields_set
    result = train(config)
    assert result.epochs == 1 and result.global_step == 2  # 8 rows, 2 workers x 2 images per step
    err = capsys.readouterr().err
    assert (
        "leaves the data pipeline less than 1 of the cluster's 2 CPUs" in err and "using --cpus-per-worker 0.5" in err
    )


def test_two_explicit_one_cpu_workers_on_two_cpus_fail_at_once(shards, tmp_path):
    config = TrainConfig(data=shards, run=str(tmp_path / "run"), workers=2, epochs=1, cpus_per_worker=1, **TINY)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"--workers 2 x --cpus-per-worker 1 .* 2 CPUs"):
        train(config)
    assert time.monotonic() - started < 10
