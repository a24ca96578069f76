"""``archive-colorizer plan`` on a folder, on a moto S3 bucket and on an input list; bad inputs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import folders
from archive_colorizer.cli import main
from archive_colorizer.plan import run
from archive_colorizer.plan.config import PlanConfig
from archive_colorizer.plan.survey import reservoir_sample
from tests.colorize.conftest import write_mixed_archive


def _gray_jpeg(photo: np.ndarray, scale: float) -> bytes:
    image = Image.fromarray(photo).convert("L")
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_plan_of_a_folder_counts_every_input_and_measures_colorize_stages(tmp_path, photos, tiny_model, capsys):
    archive = tmp_path / "archive"
    expected = write_mixed_archive(archive, photos)
    files = [archive / name for name in expected]
    readable = []
    for path in files:
        try:
            with Image.open(path) as image:
                readable.append(image.size[0] * image.size[1] / 1e6)
        except Exception:
            pass
    config = PlanConfig(
        input=str(archive), model=tiny_model, output=str(tmp_path / "out" / "plan.json"), measure=8, cpus=4, nodes=3
    )
    result = run(config)
    plan = result.plan
    assert plan["archive"]["inputs"] == len(expected) == 13
    assert plan["archive"]["total_bytes"] == sum(path.stat().st_size for path in files)
    sample = plan["sample"]
    assert (sample["sampled"], sample["readable"]) == (13, len(readable)) and sample["unreadable"] == 13 - len(
        readable
    ) == 2
    assert sample["megapixels_mean"] == pytest.approx(np.mean(readable))
    assert set(sample["formats"]) == {"JPEG", "PNG", "TIFF", "GIF"}
    measured = plan["measured"]
    assert measured["images"] == 8 and sum(measured["statuses"].values()) == 8
    assert measured["stage_seconds"]["decode"] > 0 and measured["stage_seconds"]["model"] > 0
    assert measured["stage_seconds"]["encode"] > 0  # the encoders are profiled as such, not counted as merge
    assert plan["cluster"]["groups"] == [
        {"name": "node", "count": 3, "cpus": 4, "gpus": 0, "instance_type": None, "price_per_hour": None}
    ]
    assert [p["stages"] for p in plan["projections"]] == ["fused"]  # no GPUs: nothing else to project
    written = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert written["format"] == "archive-colorizer/plan" and written["archive"] == plan["archive"]
    table = capsys.readouterr().out
    assert "13 inputs" in table and "fused" in table and "recommended: fused" in table


def test_plan_of_an_s3_bucket_lists_sizes_and_writes_plan_json_there(s3_bucket, photos, tiny_model):
    import s3fs

    url, options = s3_bucket
    fs = s3fs.S3FileSystem(**options)
    sizes = {}
    for index, name in enumerate(("astronaut", "coffee", "chelsea", "rocket", "motorcycle")):
        data = _gray_jpeg(photos[name], 0.5 + 0.1 * index)
        fs.pipe(f"{url}/scans/{index:03d}.jpg", data)
        sizes[index] = len(data)
    fs.pipe(f"{url}/scans/readme.txt", b"not an image, not listed")
    config = PlanConfig(
        input=f"{url}/scans",
        model=tiny_model,
        output=f"{url}/plans/plan.json",
        measure=3,
        cluster="cluster.yaml",
        node_prices={"gpu_worker": 1.0},
        price_per_node_hour=0.5,
        storage_options=options,
    )
    result = run(config)
    assert result.plan["archive"]["inputs"] == 5
    assert result.plan["archive"]["total_bytes"] == sum(sizes.values())
    assert result.plan["archive"]["bytes_estimated"] is False
    assert [p.stages for p in result.projections] == ["fused", "split"]  # cluster.yaml has GPUs
    fused, split = result.projections
    assert fused.advice.startswith("GPUs idle 100%")
    # 1 head and 16 CPU nodes at 0.5, 8 GPU nodes at 1.0 per node-hour, for the whole wall time
    assert split.cost == pytest.approx((17 * 0.5 + 8 * 1.0) * split.wall_seconds / 3600)
    stored = json.loads(fs.cat(f"{url}/plans/plan.json"))
    assert stored["projections"][1]["stages"] == "split" and stored["config"]["storage_options"]


def test_plan_of_an_input_list_estimates_the_bytes_from_the_sample(tmp_path, photos, tiny_model):
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        (archive / f"{name}.jpg").write_bytes(_gray_jpeg(photos[name], 0.5))
    listed = tmp_path / "inputs.txt"
    listed.write_text("astronaut.jpg\ncoffee.jpg\nchelsea.jpg\nastronaut.jpg\n")
    config = PlanConfig(input=str(archive), model=tiny_model, input_list=str(listed), output=str(tmp_path / "p.json"))
    plan = run(config).plan
    assert plan["archive"]["inputs"] == 4 and plan["archive"]["bytes_estimated"] is True
    sizes = [(archive / f"{n}.jpg").stat().st_size for n in ("astronaut", "coffee", "chelsea", "astronaut")]
    assert plan["archive"]["total_bytes"] == pytest.approx(np.mean(sizes) * 4, abs=4)


def test_reservoir_sample_is_uniform_and_keeps_everything_from_a_short_stream():
    import random

    assert reservoir_sample(range(3), 5, random.Random(0)) == ([0, 1, 2], 3)
    hits = np.zeros(10)
    for seed in range(2000):
        sample, count = reservoir_sample(range(10), 3, random.Random(seed))
        hits[sample] += 1
        assert count == 10
    assert np.allclose(hits / 2000, 0.3, atol=0.04)  # every item drawn with probability k / n


def test_bad_inputs_stop_the_plan_with_a_message_naming_them(tmp_path, tiny_model, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert main(["plan", str(empty), "--model", tiny_model, "--output", str(tmp_path / "p.json")]) == 2
    assert "no inputs found" in capsys.readouterr().err
    assert main(["plan", str(tmp_path / "missing"), "--model", tiny_model]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["plan", str(empty), "--model", str(tmp_path / "no-model")]) == 1
    assert "no generator artifact" in capsys.readouterr().err
    assert main(["plan", str(empty), "--model", tiny_model, "--sample", "5", "--measure", "9"]) == 2
    assert "measure 9 exceeds sample 5" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_listing_with_sizes_lists_every_file_colorize_lists_with_its_size(tmp_path):
    from archive_colorizer import storage

    for relative, data in {"a.jpg": b"12345", "sub/b.JPG": b"1", "_manifest/c.jpg": b"x", ".hidden.jpg": b"y"}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    fs, root = storage.open_url(str(tmp_path))
    listed = list(folders.iter_files_with_sizes(fs, root, (".jpg",)))
    expected = [f"{root}/{name}" for name in (".hidden.jpg", "_manifest/c.jpg", "a.jpg", "sub/b.JPG")]
    assert sorted(path for path, _ in listed) == sorted(expected)
    assert dict(listed) == dict(zip(expected, [1, 1, 5, 1], strict=True))


def test_assume_inputs_projects_a_bucket_from_a_sample_folder(tmp_path, photos, tiny_model):
    archive = tmp_path / "sample"
    archive.mkdir()
    for name in ("astronaut", "coffee"):
        (archive / f"{name}.jpg").write_bytes(_gray_jpeg(photos[name], 0.5))
    sizes = sum(path.stat().st_size for path in archive.iterdir())
    config = PlanConfig(
        input=str(archive),
        model=tiny_model,
        output=str(tmp_path / "p.json"),
        assume_inputs=2_000_000,
        request_latency_ms=40,
        startup_seconds=100,
    )
    plan = run(config).plan
    assert (plan["archive"]["inputs"], plan["archive"]["listed_inputs"]) == (2_000_000, 2)
    assert plan["archive"]["total_bytes"] == sizes * 1_000_000 and plan["archive"]["bytes_estimated"]
    # the listing of 2 M keys: 2000 requests of 40 ms after the start-up
    assert plan["workload"]["fixed_seconds"] == pytest.approx(100 + 2000 * 0.04)


def test_every_encoder_of_colorize_is_profiled_as_the_encode_stage():
    import inspect

    from archive_colorizer.colorize import encode
    from archive_colorizer.plan import measure

    encoders = {
        name
        for name, value in vars(encode).items()
        if name.startswith("encode_") and inspect.isfunction(value) and value.__module__ == encode.__name__
    }
    profiled = {name for (path, name), stage in measure._PROFILED.items() if stage == "encode"}
    assert encoders and encoders == profiled  # a new encoder left out would count as the merge stage
