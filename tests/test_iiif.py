"""IIIF manifests in (v2, v3, a collection, served over loopback HTTP) and out (a Choice per canvas)."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import iiif, storage


@pytest.fixture(scope="module")
def iiif_server(photos, tmp_path_factory) -> Iterator[str]:
    """A loopback HTTP server of two manifests, a collection of both, and real images behind them."""
    root = tmp_path_factory.mktemp("iiif")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    )
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def put_image(relative: str, name: str) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photos[name]).convert("L").save(root / relative, format="JPEG", quality=90)

    put_image("image3/astronaut/full/max/0/default.jpg", "astronaut")
    put_image("static/coffee.jpg", "coffee")
    put_image("image2/chelsea/full/full/0/default.jpg", "chelsea")
    v3 = {
        "@context": iiif.PRESENTATION_3_CONTEXT,
        "id": f"{base}/v3.json",
        "type": "Manifest",
        "label": {"en": ["Expedition photographs"]},
        "items": [
            _canvas3(
                f"{base}/v3/canvas/1",
                "Astronaut",
                {
                    "id": f"{base}/image3/astronaut/full/max/0/default.jpg",
                    "type": "Image",
                    "format": "image/jpeg",
                    "service": [{"id": f"{base}/image3/astronaut", "type": "ImageService3", "profile": "level1"}],
                },
            ),
            _canvas3(
                f"{base}/v3/canvas/2",
                "Coffee",
                {"id": f"{base}/static/coffee.jpg", "type": "Image", "format": "image/jpeg"},
            ),
            _canvas3(
                f"{base}/v3/canvas/3", "Interview", {"id": f"{base}/audio.mp3", "type": "Sound", "format": "audio/mpeg"}
            ),
        ],
    }
    v2 = {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": f"{base}/v2.json",
        "@type": "sc:Manifest",
        "label": [{"@value": "Cat studies", "@language": "en"}],
        "sequences": [
            {
                "@type": "sc:Sequence",
                "canvases": [
                    {
                        "@id": f"{base}/v2/canvas/a",
                        "@type": "sc:Canvas",
                        "label": "Chelsea",
                        "width": 451,
                        "height": 300,
                        "images": [
                            {
                                "@type": "oa:Annotation",
                                "motivation": "sc:painting",
                                "on": f"{base}/v2/canvas/a",
                                "resource": {
                                    "@id": f"{base}/image2/chelsea/full/full/0/default.jpg",
                                    "@type": "dctypes:Image",
                                    "service": {
                                        "@context": "http://iiif.io/api/image/2/context.json",
                                        "@id": f"{base}/image2/chelsea",
                                        "profile": "http://iiif.io/api/image/2/level1.json",
                                    },
                                },
                            }
                        ],
                    },
                    {
                        "@id": f"{base}/v2/canvas/b",
                        "@type": "sc:Canvas",
                        "label": "Empty page",
                        "width": 10,
                        "height": 10,
                        "images": [],
                    },
                ],
            }
        ],
    }
    collection = {
        "@context": iiif.PRESENTATION_3_CONTEXT,
        "id": f"{base}/collection.json",
        "type": "Collection",
        "label": {"en": ["All"]},
        "items": [{"id": f"{base}/v3.json", "type": "Manifest"}, {"id": f"{base}/v2.json", "type": "Manifest"}],
    }
    for name, document in (("v3.json", v3), ("v2.json", v2), ("collection.json", collection)):
        (root / name).write_text(json.dumps(document))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()


def _canvas3(canvas_id: str, label: str, body: dict) -> dict:
    return {
        "id": canvas_id,
        "type": "Canvas",
        "label": {"en": [label]},
        "width": 512,
        "height": 512,
        "items": [
            {
                "id": f"{canvas_id}/page",
                "type": "AnnotationPage",
                "items": [
                    {
                        "id": f"{canvas_id}/page/a",
                        "type": "Annotation",
                        "motivation": "painting",
                        "body": body,
                        "target": canvas_id,
                    }
                ],
            }
        ],
    }


def test_a_collection_gives_every_canvas_of_both_versions_with_its_full_size_image(iiif_server, photos):
    canvases = list(iiif.read_canvases(f"{iiif_server}/collection.json"))
    assert [(c.canvas_id.rsplit("/", 1)[-1], c.label, c.error) for c in canvases] == [
        ("1", "Astronaut", None),
        ("2", "Coffee", None),
        ("3", "Interview", "not_an_image"),
        ("a", "Chelsea", None),
        ("b", "Empty page", "no_image"),
    ]
    assert canvases[0].image_url == f"{iiif_server}/image3/astronaut/full/max/0/default.jpg"  # Image API 3
    assert canvases[1].image_url == f"{iiif_server}/static/coffee.jpg"  # no service: the static image
    assert canvases[3].image_url == f"{iiif_server}/image2/chelsea/full/full/0/default.jpg"  # Image API 2
    assert canvases[3].manifest_id == f"{iiif_server}/v2.json" and (canvases[3].width, canvases[3].height) == (451, 300)
    for canvas, name in zip((canvases[0], canvases[1], canvases[3]), ("astronaut", "coffee", "chelsea"), strict=True):
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
    sources = [c for c in iiif.read_canvases(f"{iiif_server}/v3.json") if c.error is None]
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
