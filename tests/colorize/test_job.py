"""``ray job submit -- python jobs/colorize.py ...`` against a real ``ray start --head`` cluster."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.colorize.conftest import GRAY_PHOTOS, encode
from tests.conftest import submit_job


@pytest.mark.slow
def test_ray_job_submit_runs_the_colorize_entrypoint(ray_head, photos, tiny_model, tmp_path):
    for name in GRAY_PHOTOS:
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{name}.jpg").write_bytes(
            encode(Image.fromarray(photos[name]).convert("L"), "JPEG", quality=90)
        )
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    completed = submit_job(
        ray_head,
        "jobs/colorize.py",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        "--model",
        tiny_model,
        "--max-failure-rate",
        "0.25",
        "--no-progress",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "succeeded" in completed.stdout
    summary = json.loads((tmp_path / "out" / "_summary.json").read_text())
    assert summary["counts"] == {"colorized": 4, "skipped_existing": 0, "skipped_color": 0, "failed": 1}
    for name in GRAY_PHOTOS:
        assert Image.open(tmp_path / "out" / f"{name}.jpg").size == Image.open(tmp_path / "in" / f"{name}.jpg").size
