"""The prepare job end to end on a local Ray: the issue's acceptance tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from archive_colorizer import cli, storage
from archive_colorizer.errors import ConfigError, JobError
from archive_colorizer.prepare import run
from archive_colorizer.prepare.config import PrepareConfig
from archive_colorizer.prepare.writer import SHARD_SCHEMA
from tests.flaky_s3 import FAULTS, credential_options, find_secrets
from tests.prepare.conftest import (
    INPUTS,
    PHOTO_FILES,
    PLANTED,
    write_category_collection,
    write_folder,
    write_tar,
    write_zip,
)

SIZE = 64


def _config(input_url: str, output_url: str, **overrides) -> PrepareConfig:
    values = dict(input=input_url, output=output_url, size=SIZE, val_fraction=0.5, rows_per_shard=4, progress=False)
    return PrepareConfig(**(values | overrides))


def _rows(url: str, options=None) -> list[dict]:
    """All shard rows under ``url`` read with pyarrow, sorted by image path."""
    fs, root = storage.open_url(url, options)
    table = pq.read_table(root, filesystem=fs)
    return sorted(table.to_pylist(), key=lambda row: row["image"]["path"])


def _comparable(rows: list[dict]) -> list[tuple]:
    """Everything but ``source`` (which names where each copy of the photos lives)."""
    return [(r["image"]["path"], r["image"]["bytes"], r["width"], r["height"], r["split"]) for r in rows]


def _stats(url: str, options=None) -> dict:
    fs, root = storage.open_url(url, options)
    return json.loads(storage.read_bytes(fs, f"{root}/_stats.json"))


@pytest.fixture(scope="module")
def folder_run(ray_local, collection_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("shards") / "out"
    result = run(_config(str(collection_folder), str(output)))
    assert result.exit_code == 0
    return output


def test_folder_with_planted_files(folder_run, collection_folder):
    import ray

    rows = _rows(str(folder_run))
    assert [r["image"]["path"] for r in rows] == sorted(PHOTO_FILES)
    for row in rows:
        image = Image.open(io.BytesIO(row["image"]["bytes"]))
        image.load()
        assert image.mode == "RGB" and image.size == (row["width"], row["height"]) and min(image.size) == SIZE
        assert row["split"] in ("train", "val") and row["source"] == f"{collection_folder}/{row['image']['path']}"
    for shard in folder_run.glob("shard-*.parquet"):
        assert pq.read_schema(shard).equals(SHARD_SCHEMA)  # image: struct<bytes: binary, path: string>, ...
    dataset_rows = ray.data.read_parquet(str(folder_run)).take_all()  # skips _stats.json, _stats/, _config.yaml
    assert sorted(r["image"]["path"] for r in dataset_rows) == sorted(PHOTO_FILES)
    stats = _stats(str(folder_run))
    assert stats["inputs"] == INPUTS == sum(stats["counts"].values())
    assert stats["counts"] == {
        "written": 6,
        "dropped_corrupt": 3,
        "dropped_too_large": 0,
        "dropped_small": 1,
        "dropped_grayscale": 1,
        "dropped_low_color": 0,
        "dropped_unreadable": 0,
        "dropped_error": 0,
    }
    assert sum(stats["splits"].values()) == 6 and stats["shards"] == len(list(folder_run.glob("shard-*.parquet")))
    dropped = {
        d["path"]: d["outcome"]
        for f in sorted((folder_run / "_stats").glob("*.json"))
        for d in json.loads(f.read_text())["dropped"]
    }
    assert dropped == PLANTED
    assert stats["config"]["size"] == SIZE and (folder_run / "_config.yaml").exists()


def test_zip_and_tar_give_the_same_rows_as_the_folder(folder_run, collection, tmp_path):
    expected = _comparable(_rows(str(folder_run)))
    for archive in (write_zip(tmp_path / "photos.zip", collection), write_tar(tmp_path / "photos.tar", collection)):
        output = tmp_path / f"out-{archive.suffix[1:]}"
        run(_config(str(archive), str(output)))
        rows = _rows(str(output))
        assert _comparable(rows) == expected
        kind, member = ("tar", "./astronaut.jpg") if archive.suffix == ".tar" else ("zip", "astronaut.jpg")
        assert rows[0]["source"] == f"{kind}://{member}::{archive}"
        assert _stats(str(output))["counts"] == _stats(str(folder_run))["counts"]


def test_s3_input_and_output_through_a_flaky_s3_give_the_same_shards_as_the_local_run(
    folder_run, collection, s3_bucket, flaky_s3, capsys
):
    import ray

    bucket, options = s3_bucket
    fs, root = storage.open_url(bucket, options)
    for relative, data in collection.items():
        storage.write_bytes(fs, f"{root}/photos/{relative}", data)
    # The job reaches S3 through a proxy failing a fifth of the requests, with credentials as
    # storage options; the test reads the results directly.
    flaky_s3.reset(fault_rate=0.2, seed=2)
    try:
        result = run(
            _config(f"{bucket}/photos", f"{bucket}/shards", storage_options=credential_options(flaky_s3.endpoint_url))
        )
        faults = dict(flaky_s3.counts)
    finally:
        flaky_s3.reset(fault_rate=0.0)
    assert result.counts["written"] == 6
    rows = _rows(f"{bucket}/shards", options)
    assert _comparable(rows) == _comparable(_rows(str(folder_run)))
    assert rows[0]["source"] == f"{bucket}/photos/astronaut.jpg"
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.glob(f"{root}/shards/shard-*.parquet")) == sorted(
        p.name for p in folder_run.glob("shard-*.parquet")
    )
    stats = _stats(f"{bucket}/shards", options)
    assert stats["counts"] == _stats(str(folder_run))["counts"]
    assert faults["slow_down"] + faults["internal_error"] > 0, faults
    assert 0 < stats["storage_retries"] == result.storage_retries <= sum(faults[k] for k in FAULTS)
    captured = capsys.readouterr()
    assert f"{result.storage_retries} object-store requests retried" in captured.out
    config = storage.read_bytes(fs, f"{root}/shards/_config.yaml")
    assert find_secrets(json.dumps(stats), config, captured.out, captured.err) == []
    # How the train job reads them: Ray Data over the same fsspec filesystem, filtered on split.
    from ray.data.expressions import col

    train = ray.data.read_parquet(f"{root}/shards", filesystem=fs).filter(expr=col("split") == "train")
    assert train.count() == result.splits["train"] == sum(r["split"] == "train" for r in rows)


def test_second_run_gives_identical_splits_and_bytes(folder_run, collection_folder, tmp_path):
    run(_config(str(collection_folder), str(tmp_path / "again")))
    assert _comparable(_rows(str(tmp_path / "again"))) == _comparable(_rows(str(folder_run)))


def test_parquet_shards_are_input_again_for_a_smaller_size(folder_run, tmp_path):
    run(_config(str(folder_run), str(tmp_path / "small"), size=32, min_size=32))
    before, after = _rows(str(folder_run)), _rows(str(tmp_path / "small"))
    assert [(r["image"]["path"], r["split"]) for r in after] == [(r["image"]["path"], r["split"]) for r in before]
    assert all(min(r["width"], r["height"]) == 32 for r in after)
    assert all(r["source"].startswith(str(folder_run)) and "#row=" in r["source"] for r in after)


def test_refusals_name_the_urls(ray_local, collection_folder, tmp_path, capsys):
    inside = collection_folder / "shards"
    assert cli.main(["prepare", str(collection_folder), str(inside), "--size", "64"]) == 2
    assert str(inside) in capsys.readouterr().err and not inside.exists()
    taken = write_folder(tmp_path / "taken", {"notes.txt": b"mine"})
    assert cli.main(["prepare", str(collection_folder), str(taken)]) == 2
    err = capsys.readouterr().err
    assert str(taken) in err and "--overwrite" in err
    with pytest.raises(ConfigError, match="does not exist"):
        run(_config(str(tmp_path / "nowhere"), str(tmp_path / "out")))
    with pytest.raises(JobError, match=r"no input found in .*taken.*\.jpg"):
        run(_config(str(taken), str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_overwrite_replaces_an_earlier_run_and_keeps_other_files(ray_local, collection_folder, tmp_path, capsys):
    output = write_folder(
        tmp_path / "out", {"shard-000099.parquet": b"stale", "_stats/shard-000099.json": b"{}", "notes.txt": b"mine"}
    )
    code = cli.main(
        ["prepare", str(collection_folder), str(output), "--size", "64", "--rows-per-shard", "20", "--overwrite"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert (
        f"prepare: {INPUTS} inputs -> 6 written" in captured.out and f"{INPUTS}img" in captured.err
    )  # summary; progress bar
    assert sorted(p.name for p in output.iterdir()) == [
        "_config.yaml",
        "_stats",
        "_stats.json",
        "notes.txt",
        "shard-000000.parquet",
    ]
    assert [p.name for p in (output / "_stats").iterdir()] == ["shard-000000.json"]


@pytest.fixture(scope="module")
def category_folder(photos, tmp_path_factory) -> Path:
    """A folder-per-category collection, 20 categories x 50 JPEGs of 48 px (crops of real photos)."""
    return write_category_collection(tmp_path_factory.mktemp("categories") / "places", photos, quality=90)


def _category_config(input_url: str, output_url: str, **overrides) -> PrepareConfig:
    values = dict(size=32, min_size=32, val_fraction=0.1, rows_per_shard=100, max_tasks=2) | overrides
    return _config(input_url, output_url, **values)


def test_categories_are_mixed_across_shards_and_kept_as_label(ray_local, category_folder, tmp_path):
    result = run(_category_config(str(category_folder), str(tmp_path / "out")))
    assert result.shards == 10
    for shard in sorted((tmp_path / "out").glob("shard-*.parquet")):
        rows = pq.read_table(shard).to_pylist()
        assert all(r["label"] == r["image"]["path"].split("/")[0] for r in rows)
        labels = [r["label"] for r in rows]
        # In listing order a shard held 2 categories, 50 % each; mixed, about 1/20 each.
        assert len(set(labels)) >= 15 and max(labels.count(x) for x in set(labels)) / len(labels) <= 0.12
        recorded = json.loads((tmp_path / "out" / "_stats" / shard.name.replace(".parquet", ".json")).read_text())
        assert recorded["labels"] == {x: labels.count(x) for x in sorted(set(labels))}
    mix = _stats(str(tmp_path / "out"))["label_mix"]
    assert mix["labels"] == 20 and mix["majority_share_max"] <= 0.12 and 0.05 <= mix["uniform_share"] <= 0.06


def test_interrupted_run_resumes_to_the_same_shards_as_a_clean_run(ray_local, category_folder, tmp_path, monkeypatch):
    from archive_colorizer.prepare.stats import PrepareResult

    clean = run(_category_config(str(category_folder), str(tmp_path / "clean")))
    add = PrepareResult.add
    finished = []

    def crash_after_three(self, shard, resumed=False):
        if len(finished) == 3:
            raise KeyboardInterrupt  # the driver dies mid-run (Ctrl-C, a lost head node)
        finished.append(shard.index)
        add(self, shard, resumed)

    monkeypatch.setattr(PrepareResult, "add", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        run(_category_config(str(category_folder), str(tmp_path / "resumed")))
    monkeypatch.setattr(PrepareResult, "add", add)
    done_before = {p.name for p in (tmp_path / "resumed" / "_stats").glob("*.json")}
    assert len(done_before) >= 3 and not (tmp_path / "resumed" / "_stats.json").exists()

    resumed = run(_category_config(str(category_folder), str(tmp_path / "resumed")))
    assert resumed.resumed_shards == len(done_before) < 10
    names = sorted(p.name for p in (tmp_path / "clean").glob("shard-*.parquet"))
    assert sorted(p.name for p in (tmp_path / "resumed").glob("shard-*.parquet")) == names
    for name in names:  # the same inputs in every shard, the same bytes: nothing twice, nothing lost
        assert pq.read_table(tmp_path / "resumed" / name).equals(pq.read_table(tmp_path / "clean" / name))
    assert resumed.counts == clean.counts and resumed.splits == clean.splits and resumed.inputs == 1000
    again = run(_category_config(str(category_folder), str(tmp_path / "resumed")))  # all done: nothing redone
    assert again.resumed_shards == 10 and again.counts == clean.counts


def test_resume_refuses_other_settings(ray_local, category_folder, tmp_path):
    run(_category_config(str(category_folder), str(tmp_path / "out"), mix_window_shards=2))
    with pytest.raises(ConfigError, match=r"rows_per_shard: 100 there, 50 now.*--overwrite"):
        run(_category_config(str(category_folder), str(tmp_path / "out"), mix_window_shards=2, rows_per_shard=50))
