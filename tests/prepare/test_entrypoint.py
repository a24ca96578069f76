"""``jobs/prepare.py`` through ``ray job submit`` against a real Ray head."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.conftest import submit_job
from tests.prepare.conftest import PHOTO_FILES, write_folder


@pytest.mark.slow
def test_ray_job_submit_prepares_shards(ray_head, collection, tmp_path):
    photos = write_folder(tmp_path / "photos", {path: collection[path] for path in [*PHOTO_FILES, "bad/empty.jpg"]})
    output = tmp_path / "shards"
    completed = submit_job(
        ray_head, "jobs/prepare.py", str(photos), str(output), "--size", "48", "--rows-per-shard", "3", "--no-progress"
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"prepare: {len(PHOTO_FILES) + 1} inputs -> {len(PHOTO_FILES)} written" in completed.stdout
    stats = json.loads((output / "_stats.json").read_text())
    assert stats["counts"]["written"] == len(PHOTO_FILES) and stats["counts"]["dropped_corrupt"] == 1
    table = pq.read_table(output)
    assert sorted(table.column("image").combine_chunks().field("path").to_pylist()) == sorted(PHOTO_FILES)
    assert (
        min(
            min(w, h)
            for w, h in zip(table.column("width").to_pylist(), table.column("height").to_pylist(), strict=True)
        )
        == 48
    )
