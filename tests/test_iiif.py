"""IIIF manifests in (v2, v3, a collection, served over loopback HTTP) and out (a Choice per canvas)."""

# ruff: noqa: F811  (the iiif_server fixture is imported, then named as a test argument)
from __future__ import annotations

import http.server
import io
import json
import threading
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import iiif, storage
from archive_colorizer.errors import StorageError
from tests.iiif_fixtures import iiif_server  # noqa: F401  # the fixture


def test_a_collection_gives_every_canvas_of_both_versions_with_its_full_size_image(iiif_server, photos):
    canvases = list(iiif.read_canvases(f"{iiif_server}/collection.json"))
    assert [(c.canvas_id.rsplit("/", 1)[-1], c.label, c.error) for c in canvases] == [
        ("1", "Astronaut", None),
        ("2", "Coffee", None),
        ("3", "Interview", "not_an_image"),
        ("4", "Lost plate", None),
        ("a", "Chelsea", None),
        ("b", "Empty page", "no_image"),
    ]
    assert canvases[0].image_url == f"{iiif_server}/image3/astronaut/full/max/0/default.jpg"  # Image API 3
    assert canvases[1].image_url == f"{iiif_server}/static/coffee.jpg"  # no service: the static image
    assert canvases[4].image_url == f"{iiif_server}/image2/chelsea/full/full/0/default.jpg"  # Image API 2
    assert canvases[4].manifest_id == f"{iiif_server}/v2.json" and (canvases[4].width, canvases[4].height) == (451, 300)
    assert canvases[3].image_url == f"{iiif_server}/image3/lost/full/max/0/default.jpg"
    for canvas, name in zip((canvases[0], canvases[1], canvases[4]), ("astronaut", "coffee", "chelsea"), strict=True):
        fs, path = storage.open_url(canvas.image_url)
        image = Image.open(io.BytesIO(storage.read_bytes(fs, path)))
        assert image.size == photos[name].shape[1::-1]
        gray = np.asarray(Image.fromarray(photos[name]).convert("L"), np.float64)
        assert np.abs(np.asarray(image, np.float64) - gray).mean() < 2.0  # the photograph, through HTTP


def test_a_document_that_is_no_manifest_is_refused_by_name(iiif_server, tmp_path):
    (tmp_path / "annotation.json").write_text(json.dumps({"id": "urn:x", "type": "AnnotationPage"}))
    with pytest.raises(ValueError, match="not a IIIF manifest: type AnnotationPage in urn:x"):
        list(iiif.read_canvases(str(tmp_path / "annotation.json")))


def test_the_output_manifest_paints_a_choice_of_original_and_colorized_on_each_canvas(iiif_server):
    sources = [c for c in iiif.read_canvases(f"{iiif_server}/v3.json") if c.error is None][:2]
    out = "https://example.org/colorized"
    entries = [
        iiif.ColorizedCanvas(source, f"{out}/{i}.jpg", 512, 512, c2pa="signed") for i, source in enumerate(sources)
    ]
    manifest = json.loads(
        json.dumps(
            iiif.choice_manifest(
                f"{out}/v3.json", "Expedition photographs", entries, "ab" * 32, "archive-colorizer 0.test"
            )
        )
    )
    assert manifest["@context"] == iiif.PRESENTATION_3_CONTEXT and manifest["type"] == "Manifest"
    assert manifest["label"] == {"en": ["Expedition photographs (AI-colorized)"]}
    assert [s["id"] for s in manifest["seeAlso"]] == [f"{iiif_server}/v3.json"]
    assert len(manifest["items"]) == 2
    for canvas, entry in zip(manifest["items"], entries, strict=True):
        (page,) = canvas["items"]
        (annotation,) = page["items"]
        assert (annotation["motivation"], annotation["target"]) == ("painting", canvas["id"])
        original, colorized = annotation["body"]["items"]
        assert annotation["body"]["type"] == "Choice"
        assert (original["id"], colorized["id"]) == (entry.source.image_url, entry.colorized_url)
        assert (
            colorized["label"]["en"][0]
            == "AI-colorized by archive-colorizer 0.test (generator sha256 abababababab); C2PA: signed"
        )
        assert canvas["metadata"][0]["value"] == {"none": [entry.source.canvas_id]}
    # Our own reader takes it back: one canvas each, the original (the Choice's first item) as its image.
    again = iiif.manifest_canvases(manifest)
    assert [(c.canvas_id, c.image_url, c.label) for c in again] == [
        (f"{out}/v3.json/canvas/{i}", s.image_url, s.label) for i, s in enumerate(sources, start=1)
    ]


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers each path's first ``failures[path]`` GETs with 503, then the image; unknown paths 404."""

    images: dict[str, bytes] = {}
    failures: dict[str, int] = {}
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        self.requests.append(self.path)
        if self.path not in self.images:
            self.send_error(404)
        elif self.failures.get(self.path, 0) > 0:
            self.failures[self.path] -= 1
            self.send_error(503)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.images[self.path])))
            self.end_headers()
            self.wfile.write(self.images[self.path])

    def log_message(self, *args) -> None:
        pass


def test_image_requests_are_retried_on_server_errors_but_not_on_404(photos):
    buffer = io.BytesIO()
    Image.fromarray(photos["rocket"]).convert("L").save(buffer, format="JPEG", quality=90)
    _Flaky.images = {"/busy/full/max/0/default.jpg": buffer.getvalue(), "/down/full/max/0/default.jpg": b""}
    _Flaky.failures = {"/busy/full/max/0/default.jpg": 2, "/down/full/max/0/default.jpg": 10}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        before = storage.retried_requests()
        fs, path = storage.open_url(f"{base}/busy/full/max/0/default.jpg")
        assert storage.read_bytes(fs, path) == buffer.getvalue()  # two 503s, then the image
        assert storage.retried_requests() - before == 2
        with pytest.raises(FileNotFoundError, match="no such file"):
            storage.read_bytes(*storage.open_url(f"{base}/lost/full/max/0/default.jpg"))
        with pytest.raises(StorageError, match="503"):
            storage.read_bytes(*storage.open_url(f"{base}/down/full/max/0/default.jpg"))
    finally:
        server.shutdown()
        server.server_close()
    assert Counter(_Flaky.requests) == {
        "/busy/full/max/0/default.jpg": 3,
        "/lost/full/max/0/default.jpg": 1,  # a 404 is final
        "/down/full/max/0/default.jpg": storage.HTTP_ATTEMPTS,
    }
