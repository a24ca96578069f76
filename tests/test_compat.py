"""archive_colorizer.compat: each private Ray and s3fs API still exists and still does what the product relies on.

These tests fail when an installed Ray or s3fs changes one of them (renamed, moved, other
arguments, other behaviour): the place to look is then archive_colorizer/compat.py.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from archive_colorizer import compat, storage
from tests.conftest import REPO_ROOT


def _tables(batch):
    """Ray Data batch function: one unit -> three tables of 40 rows (a listing task's yields)."""
    for part in range(3):
        yield pa.table({"n": [int(batch["unit"][0]) * 1000 + part * 40 + i for i in range(40)]})


def _listing(fused: bool):
    import ray.data

    from archive_colorizer.colorize.listing_tasks import LISTING_REMOTE_ARGS

    dataset = ray.data.from_items([{"unit": 1}, {"unit": 2}], override_num_blocks=2)
    dataset = dataset.map_batches(_tables, batch_size=1, batch_format="numpy", num_cpus=0.25)
    dataset = dataset.repartition(target_num_rows_per_block=16)
    return compat.fuse_with_previous(dataset, LISTING_REMOTE_ARGS) if fused else dataset


@pytest.mark.usefixtures("ray_local")
def test_the_logical_plan_edit_fuses_the_listing_and_its_cut_into_one_task():
    fused = _listing(True).materialize()
    operators = [line for line in fused.stats().splitlines() if line.startswith("Operator ")]
    assert len(operators) == 2, operators  # FromItems, then the listing and its cut as one
    assert "MapBatches(_tables)->StreamingRepartition[num_rows_per_block=16" in operators[1]
    assert sorted(row["n"] for row in fused.take_all()) == sorted(
        u * 1000 + i for u in (1, 2) for i in range(120)
    )  # every row, once
    assert fused.num_blocks() == 16  # 120 rows per task cut into 7 blocks of 16 and one of 8
    apart = _listing(False).materialize()  # the control: without the edit Ray Data keeps them apart
    assert sum(line.startswith("Operator ") for line in apart.stats().splitlines()) == 3


@pytest.mark.usefixtures("ray_local")
def test_the_logical_plan_edit_fuses_a_listing_limited_to_some_tasks_at_once():
    import ray.data

    from archive_colorizer.colorize.listing_tasks import LISTING_REMOTE_ARGS

    compute = ray.data.TaskPoolStrategy(size=1)
    dataset = ray.data.from_items([{"unit": 1}, {"unit": 2}], override_num_blocks=2)
    dataset = dataset.map_batches(_tables, batch_size=1, batch_format="numpy", num_cpus=0.25, compute=compute)
    fused = compat.fuse_with_previous(dataset.repartition(target_num_rows_per_block=16), LISTING_REMOTE_ARGS, compute)
    operators = [line for line in fused.materialize().stats().splitlines() if line.startswith("Operator ")]
    assert len(operators) == 2 and "MapBatches(_tables)->StreamingRepartition" in operators[1], operators
    apart = dataset.repartition(target_num_rows_per_block=16)  # the control: sizes differ, kept apart
    apart = compat.fuse_with_previous(apart, LISTING_REMOTE_ARGS)
    assert sum(line.startswith("Operator ") for line in apart.materialize().stats().splitlines()) == 3


def test_the_logical_plan_edit_refuses_a_plan_it_does_not_know():
    with pytest.raises(RuntimeError, match="compat.fuse_with_previous"):
        compat.fuse_with_previous(object(), {"num_cpus": 0.25})


def test_ray_accepts_the_streaming_generator_buffer_task_option_and_ray_data_passes_it_on():
    from ray._common.ray_option_utils import task_options
    from ray.data._internal.execution.operators import task_pool_map_operator

    option = compat.STREAMING_GENERATOR_BUFFER_OPTION
    task_options[option].validate(option, 512)  # raises on an unknown option or a refused value
    with pytest.raises(ValueError):
        task_options[option].validate(option, 0)
    # Ray Data keeps an operator's own value (it sets its default only where none is given).
    assert f'"{option}" not in dynamic_ray_remote_args' in inspect.getsource(task_pool_map_operator)


@pytest.mark.usefixtures("ray_local")
def test_the_internal_key_value_store_round_trips_a_heartbeat():
    key = f"archive-colorizer/test/{uuid.uuid4().hex}"
    assert compat.kv_get(key) is None
    compat.kv_put(key, "3:1700000000.5")
    compat.kv_put(key, "4:1700000001.5")  # overwrites
    assert compat.kv_get(key) == b"4:1700000001.5"


@pytest.mark.usefixtures("ray_local")
def test_max_cluster_resources_is_read_from_ray_and_empty_without_an_autoscaler():
    from ray._private.state import state

    assert inspect.signature(state.get_max_resources_from_cluster_config).parameters == {}
    assert compat.max_cluster_resources() == {}  # a local Ray has no autoscaler config


def test_the_ray_address_file_is_where_ray_start_records_it(monkeypatch, tmp_path):
    from ray._common.utils import get_ray_address_file

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    assert compat.ray_address_file() == get_ray_address_file(None) == str(tmp_path / "ray" / "ray_current_cluster")


def test_the_ray_init_logger_is_the_one_that_warns_about_sigterm():
    import ray._private.worker as worker

    assert worker.logger is logging.getLogger(compat.RAY_WORKER_LOGGER)
    source = inspect.getsource(worker)
    assert "SIGTERM handler is not set" in source  # the warning runtime.init_ray silences


def test_s3_iterdir_pages_one_prefix_level_with_retried_calls(s3_bucket):
    import boto3
    from fsspec.asyn import sync

    url, options = s3_bucket
    bucket = url.removeprefix("s3://")
    client = boto3.client("s3", endpoint_url=options["endpoint_url"])
    for key in ["top/a.jpg", "top/sub/b.jpg", *(f"top/many/{i:04d}.jpg" for i in range(1005))]:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    fs, _ = storage.open_url(url, options)
    assert "_call_s3" in inspect.getsource(type(fs)._list_pages)  # each page retried on its own

    async def collect(prefix):
        return [(item["name"], item["type"]) async for item in compat.s3_iterdir(fs, bucket, prefix)]

    top = sync(fs.loop, collect, "top/")
    assert sorted(top) == [
        (f"{bucket}/top/a.jpg", "file"),
        (f"{bucket}/top/many", "directory"),
        (f"{bucket}/top/sub", "directory"),
    ]
    many = sync(fs.loop, collect, "top/many/")
    assert [name for name, _ in many] == [f"{bucket}/top/many/{i:04d}.jpg" for i in range(1005)]  # two pages


def test_the_dependency_bounds_admit_the_installed_versions():
    import ray
    import s3fs
    from packaging.requirements import Requirement

    text = (REPO_ROOT / "pyproject.toml").read_text()
    bounds = {}
    for line in text.splitlines():
        line = line.strip().strip(",").strip('"')
        if line.startswith(("ray[", "s3fs>")):
            requirement = Requirement(line)
            bounds[requirement.name] = requirement.specifier
    assert bounds["ray"].contains(ray.__version__) and "<" in str(bounds["ray"])
    assert bounds["s3fs"].contains(s3fs.__version__) and "<" in str(bounds["s3fs"])


def test_no_private_ray_or_s3fs_api_is_used_outside_compat():
    package = Path(compat.__file__).parent
    private = re.compile(
        r"\bray\._|\._private|internal_kv|\._logical_plan|\._iterdir|_generator_backpressure|\._call_s3|\._connect\b"
    )
    found = []
    for path in package.rglob("*.py"):
        if path.name == "compat.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if private.search(line):
                found.append(f"{path.relative_to(package)}:{number}: {line.strip()}")
    assert found == []
    assert os.path.exists(package / "compat.py")
