"""The split stages keep the inputs' bytes out of the predictor actors (often on GPU nodes)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from PIL import Image

from archive_colorizer.colorize import manifest
from archive_colorizer.colorize.decode import prepare_batch
from archive_colorizer.colorize.merge import finish_batch
from archive_colorizer.colorize.pipeline import SPLIT_PREPARE_KWARGS
from archive_colorizer.colorize.predictor import Predictor
from archive_colorizer.colorize.stage_settings import StageSettings
from archive_colorizer.models.artifact import load_generator
from tests.colorize.conftest import encode


def _settings(out, sha256: str) -> StageSettings:
    return StageSettings(
        output_url=str(out),
        model_size=32,
        max_pixels=10_000_000,
        on_color="skip",
        color_threshold=4.0,
        overwrite=False,
        jpeg_quality=95,
        run=manifest.RunInfo("split", dt.datetime.now(dt.timezone.utc), sha256, "0.1.0"),
    )


def _inputs(folder, photos) -> list[dict]:
    folder.mkdir()
    rows = []
    for name, fmt in (("coffee", "JPEG"), ("astronaut", "PNG"), ("rocket", "TIFF")):
        path = folder / f"{name}.{fmt.lower()}"
        path.write_bytes(encode(Image.fromarray(photos[name]).convert("L"), fmt))
        rows.append(manifest.new_row(str(path), output_format=fmt))
    return rows


def test_no_input_bytes_pass_through_the_predictor_and_the_outputs_are_the_same(photos, tiny_model, tmp_path):
    sha256 = load_generator(tiny_model).sha256
    predictor = Predictor(tiny_model, sha256, model_size=32)
    rows = _inputs(tmp_path / "in", photos)
    input_bytes = sum(len(open(row["input_url"], "rb").read()) for row in rows)
    outputs = {}
    for route, kwargs in (("split", SPLIT_PREPARE_KWARGS), ("bytes carried", {})):
        settings = _settings(tmp_path / route, sha256)
        listed = [dict(row, output_url=str(tmp_path / route / row["input_url"].rsplit("/", 1)[1])) for row in rows]
        prepared = prepare_batch(manifest.to_table(listed), settings, **kwargs)
        assert prepared.column("status").to_pylist() == [manifest.PENDING] * 3
        predicted = predictor(prepared)
        if route == "split":
            # What reaches the predictor and what leaves it: no input's bytes, only the small grays
            # in and the chroma out (3 x 32 x 32 bytes, 3 x 2 x 32 x 32 float32).
            assert prepared.column("data").null_count == 3 and predicted.column("data").null_count == 3
            assert sum(len(g) for g in prepared.column("gray_small").to_pylist()) == 3 * 32 * 32
            assert sum(len(c) for c in predicted.column("chroma").to_pylist()) == 3 * 2 * 32 * 32 * 4
            assert prepared.nbytes < input_bytes / 10 and predicted.nbytes < input_bytes / 10
        else:
            assert sum(len(d) for d in prepared.column("data").to_pylist()) == input_bytes
        finished = finish_batch(predicted, settings).to_pylist()
        assert [row["status"] for row in finished] == [manifest.COLORIZED] * 3
        outputs[route] = {row["output_url"].rsplit("/", 1)[1]: open(row["output_url"], "rb").read() for row in finished}
    # The merge re-read each input: the same outputs as from the bytes carried along.
    assert outputs["split"] == outputs["bytes carried"]
    assert sorted(outputs["split"]) == ["astronaut.png", "coffee.jpeg", "rocket.tiff"]
    first = np.asarray(Image.open(tmp_path / "split" / "coffee.jpeg"))
    assert first.shape == (*photos["coffee"].shape[:2], 3)


def test_an_input_gone_before_the_merge_fails_as_unreadable(photos, tiny_model, tmp_path):
    sha256 = load_generator(tiny_model).sha256
    settings = _settings(tmp_path / "out", sha256)
    rows = [
        dict(row, output_url=str(tmp_path / "out" / f"{i}.out"))
        for i, row in enumerate(_inputs(tmp_path / "in", photos))
    ]
    prepared = prepare_batch(manifest.to_table(rows), settings, **SPLIT_PREPARE_KWARGS)
    predicted = Predictor(tiny_model, sha256, model_size=32)(prepared)
    (tmp_path / "in" / "astronaut.png").unlink()
    finished = {row["input_url"].rsplit("/", 1)[1]: row for row in finish_batch(predicted, settings).to_pylist()}
    assert finished["astronaut.png"]["status"] == manifest.FAILED
    assert finished["astronaut.png"]["reason"] == "unreadable"
    assert finished["coffee.jpeg"]["status"] == finished["rocket.tiff"]["status"] == manifest.COLORIZED
