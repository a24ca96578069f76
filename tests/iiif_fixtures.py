"""A loopback IIIF server for the tests: v2 and v3 manifests, a collection, real images behind them."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from PIL import Image

from archive_colorizer import iiif


@pytest.fixture(scope="session")
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
            _canvas3(  # an image service that answers 404
                f"{base}/v3/canvas/4",
                "Lost plate",
                {"type": "Image", "service": [{"id": f"{base}/image3/lost", "type": "ImageService3"}]},
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
