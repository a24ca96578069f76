"""colorize --input-iiif on a real local Ray: a IIIF v3 manifest of N canvases in, N rows out, a Choice manifest."""

# ruff: noqa: F811  (the fixtures are imported, then named as test arguments)
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import cli, iiif, signing
from archive_colorizer.colorize import manifest
from tests.c2pa_certs import c2pa_credentials  # noqa: F401  # the fixture
from tests.colorize.conftest import reference_gray
from tests.iiif_fixtures import iiif_server  # noqa: F401  # the fixture

pytestmark = pytest.mark.usefixtures("ray_local")


def test_every_canvas_gets_one_row_and_the_output_manifest_paints_a_choice_per_canvas(
    iiif_server, photos, tiny_model, c2pa_credentials, tmp_path
):
    out = tmp_path / "out"
    base = "https://archive.example.org/colorized"
    code = cli.main(
        [
            "colorize",
            f"{iiif_server}/v3.json",
            str(out),
            "--input-iiif",
            "--iiif-base-url",
            base,
            "--model",
            tiny_model,
            "--no-progress",
            "--c2pa-sign",
            "--c2pa-cert",
            str(c2pa_credentials.chain_path),
            "--c2pa-key",
            str(c2pa_credentials.key_path),
            "--max-failure-rate",
            "0.5",
        ]
    )
    assert code == 0
    rows = manifest.latest_rows(manifest.read_manifest(str(out))).to_pylist()
    by_canvas = {row["canvas_id"].rsplit("/", 1)[-1]: row for row in rows}
    # Four canvases, four rows: two images colorized; the Sound canvas and the missing image failed, with reasons.
    assert {k: (r["status"], r["reason"]) for k, r in by_canvas.items()} == {
        "1": ("colorized", None),
        "2": ("colorized", None),
        "3": ("failed", "not_an_image"),
        "4": ("failed", "unreadable"),
    }
    lost = f"{iiif_server}/image3/lost/full/max/0/default.jpg"  # the server answered 404
    assert by_canvas["4"]["error"] == f"FileNotFoundError: no such file: {lost!r}"
    assert by_canvas["1"]["input_url"] == f"{iiif_server}/image3/astronaut/full/max/0/default.jpg"
    assert by_canvas["1"]["output_url"] == str(out / "v3" / "0001.jpg")
    for key, name in (("1", "astronaut"), ("2", "coffee")):
        output = Path(by_canvas[key]["output_url"])
        gray = np.asarray(Image.fromarray(photos[name]).convert("L"), np.float64)
        assert np.abs(reference_gray(output) - gray).mean() < 2.5  # the canvas's photograph, colorized
        assert signing.verify_bytes(output.read_bytes()).state == "valid"
    # The output manifest: one canvas per colorized canvas, a Choice of original and colorized.
    document = json.loads((out / "_iiif" / "v3.json").read_text())
    assert document["id"] == f"{base}/_iiif/v3.json"
    assert document["label"] == {"en": ["Expedition photographs (AI-colorized)"]}
    assert len(document["items"]) == 2
    for canvas, key in zip(document["items"], ("1", "2"), strict=True):
        body = canvas["items"][0]["items"][0]["body"]
        assert body["type"] == "Choice"
        original, colorized = body["items"]
        assert original["id"] == by_canvas[key]["input_url"]
        assert colorized["id"] == f"{base}/v3/000{key}.jpg"
        assert "AI-colorized" in colorized["label"]["en"][0] and "C2PA: signed" in colorized["label"]["en"][0]
        assert (colorized["width"], colorized["height"]) == (by_canvas[key]["width"], by_canvas[key]["height"])
        assert canvas["metadata"][0]["value"]["none"] == [by_canvas[key]["canvas_id"]]
    assert len(iiif.manifest_canvases(document)) == 2  # our own reader takes it back
    # The review page links it.
    page = (out / "_review" / "index.html").read_text()
    assert '<a class="mono" href="../_iiif/v3.json">' in page
    assert manifest.read_summary(str(out))["iiif_manifests"] == [str(out / "_iiif" / "v3.json")]
