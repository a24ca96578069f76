"""The demo's flow at a tiny scale: the same steps and jobs as ``make demo``, on the session's Ray.

One module-scoped run (a few photos, a 32 px generator, one L1 and one GAN epoch) is shared by
the tests that inspect what it left; the refusals are checked before any Ray work.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.colorize import manifest
from archive_colorizer.demo import photos as bundled
from archive_colorizer.demo import run as demo
from archive_colorizer.demo.config import DemoConfig
from archive_colorizer.errors import ConfigError
from archive_colorizer.models.artifact import load_generator

TINY = {"ngf": 8, "num_downs": 5, "ndf": 8, "n_layers": 2, "batch_size": 2, "sample_images": 2, "max_val_images": 4}


@pytest.fixture(scope="module")
def quick_controller():
    """Ray Train's controller polls its workers every 2 s by default; 0.2 s ends runs sooner."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
        yield


@pytest.fixture(scope="module")
def finished(ray_local, quick_controller, tmp_path_factory):
    """One tiny demo: the 6 whole training photos, 32 px, 1 pretraining + 1 GAN epoch on 2 workers."""
    output = tmp_path_factory.mktemp("demo") / "demo-output"
    config = DemoConfig(
        output=str(output),
        epochs=2,
        pretrain_epochs=1,
        image_size=32,
        crop_grid=1,
        train_options=TINY,
        figure_rows=3,
        progress=False,
    )
    return output, demo(config)


def test_every_archive_photo_is_colorized_at_its_own_size(finished):
    output, result = finished
    assert result.exit_code == 0
    archive = sorted(p.name for p in (output / "archive").iterdir())
    assert archive == sorted(
        ["camera.png", "moon.png", "coins.png", "page.png", "text.png", "chelsea.jpg", "rocket.jpg"]
    )
    for name in archive:
        with Image.open(output / "archive" / name) as before, Image.open(output / "colorized" / name) as after:
            assert after.size == before.size and after.mode == "RGB" and before.mode == "L", name
            # colour added, gray kept: the output's luma is the input within a level or two
            luma = np.asarray(after.convert("L"), dtype=np.int16)
            assert np.abs(luma - np.asarray(before, dtype=np.int16)).mean() < 2.0, name


def test_manifest_and_summary_account_for_every_input(finished):
    output, result = finished
    summary = json.loads((output / "colorized" / manifest.SUMMARY_NAME).read_text())
    assert summary["inputs"] == 7 and sum(summary["counts"].values()) == 7
    assert summary["counts"]["colorized"] == 7
    rows = manifest.latest_rows(manifest.read_manifest(str(output / "colorized")))
    assert rows.num_rows == 7 and set(rows.column("status").to_pylist()) == {"colorized"}
    assert result.results["colorize"].counts == summary["counts"]


def test_training_ran_both_phases_on_the_held_out_validation_split(finished):
    output, result = finished
    rows = [json.loads(line) for line in (output / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["phase"] for row in rows] == ["pretrain", "gan"]
    assert rows[-1]["workers"] == 2 and rows[-1]["val_images"] == 4
    # the 6 training photos train; the 2 held-out photos x 5 crops validate, none of them in training
    prepared = [json.loads((output / "shards" / split / "_stats.json").read_text()) for split in ("train", "val")]
    assert prepared[0]["splits"] == {"train": 6, "val": 0} and prepared[1]["splits"] == {"train": 0, "val": 10}
    assert (output / "run" / "loss_curve.png").is_file() and (output / "run" / "samples" / "epoch_0001.png").is_file()
    artifact = load_generator(str(output / "run" / "generator"))
    assert artifact.working_size == 32 and artifact.spec.ngf == 8


def test_the_figure_shows_the_held_out_photos_first(finished):
    output, result = finished
    with Image.open(output / "before-after.png") as figure:
        assert figure.mode == "P"  # palette PNG, small enough to commit
        from archive_colorizer.demo.figure import ROW_HEIGHT
        from archive_colorizer.figures import GAP, LABEL_HEIGHT

        assert figure.height == LABEL_HEIGHT + 3 * (ROW_HEIGHT + GAP) - GAP
        # three columns (the held-out photos bring their real colours), each about 1.5 rows wide
        assert figure.width > 3 * ROW_HEIGHT
    record = json.loads((output / "demo.json").read_text())
    assert record["status"] == "finished"
    assert list(record["found"]) == list(result.found)
    assert {"shards", "run directory", "generator", "colorized", "manifest", "summary", "before/after"} <= set(
        result.found
    )
    assert set(result.seconds) == {"photos", "prepare", "train", "archive", "colorize", "figure", "total"}


def test_a_second_demo_with_the_model_replaces_only_what_it_writes(finished, tmp_path):
    output, _ = finished
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(bundled.gray(bundled.HELD_OUT_PHOTOS[0].load())).save(scans / "cat.png")
    config = DemoConfig(output=str(output), model=str(output / "run" / "generator"), archive=str(scans), progress=False)
    result = demo(config)
    assert result.exit_code == 0 and set(result.seconds) == {"colorize", "figure", "total"}
    assert sorted(p.name for p in (output / "colorized").iterdir() if not p.name.startswith("_")) == ["cat.png"]
    assert (output / "run" / "metrics.jsonl").is_file() and (output / "archive" / "camera.png").is_file()


def test_a_folder_that_is_not_a_demo_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and holds no earlier demo"):
        demo(DemoConfig(output=str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_input_inside_a_folder_the_demo_replaces_is_refused(tmp_path):
    (tmp_path / "archive").mkdir()
    with pytest.raises(ConfigError, match="--archive"):
        demo(DemoConfig(output=str(tmp_path), archive=str(tmp_path / "run" / "scans")))
    with pytest.raises(ConfigError, match="train_options|ngf"):
        demo(DemoConfig(output=str(tmp_path / "new"), train_options={"ngf": 0}))
