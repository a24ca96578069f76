"""IIIF Presentation manifests: the canvases' images of a v2 or v3 manifest (or collection), and a
v3 manifest that paints a Choice of original and colorized image on each canvas.

Archives, libraries and museums serve collections as IIIF: Presentation manifests whose
canvases are painted by images, usually through an Image API service. This module is the
part of IIIF support that needs no Ray:

- :func:`read_canvases` walks a manifest (Presentation 2.1 or 3.0) or a collection of them and
  yields one :class:`Canvas` per canvas, with the URL of its image at full size: through its
  Image API service (``{service}/full/max/0/default.jpg`` for Image API 3,
  ``{service}/full/full/0/default.jpg`` for 2), else its static image. A canvas without an
  image (no painting annotation, a body that is not an image) has ``error`` set instead.
- :func:`choice_manifest` builds the IIIF v3 manifest of colorized outputs: each canvas painted
  by a ``Choice`` of [original, colorized] (IIIF Cookbook recipe 0033, "Choice of Alternative
  Images"), the colorized image labelled as AI-colorized with the generator and its C2PA status.

colorize uses both with ``--input-iiif`` (:func:`archive_colorizer.colorize.iiif_in.iiif_rows`)
and ``--iiif-base-url`` (:mod:`archive_colorizer.colorize.iiif_out`); see docs/iiif.md. A small
reader of the JSON, not iiif-prezi3 (its 3.1.1 pins Pillow <= 12.0.0).

Reference: IIIF Presentation API 3.0 and 2.1 (https://iiif.io/api/presentation/), Image API
3.0 and 2.1 (https://iiif.io/api/image/), Cookbook recipe 0033.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from archive_colorizer import storage

PRESENTATION_3_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
COLORIZED_NOTE = "AI-colorized"


@dataclass(frozen=True)
class Canvas:
    """One canvas of a manifest and the image that paints it.

    Attributes:
        manifest_id: the manifest's ``id`` (v3) or ``@id`` (v2).
        canvas_id: the canvas's id, kept as the source's identity of the input.
        label: the canvas's label (first value), or None.
        image_url: the image at full size (an Image API request or a static image), or None.
        width, height: the canvas's size in its own units (pixels for most), or None.
        error: why there is no image (``no_image``: no painting annotation or image body;
            ``not_an_image``: the body is of another type), or None.
    """

    manifest_id: str
    canvas_id: str
    label: str | None
    image_url: str | None
    width: int | None = None
    height: int | None = None
    error: str | None = None


def _id(node: Mapping[str, Any]) -> str:
    return str(node.get("id") or node.get("@id") or "")


def _type(node: Mapping[str, Any]) -> str:
    return str(node.get("type") or node.get("@type") or "")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def label_text(label: Any) -> str | None:
    """The first value of a label: a v3 language map, a v2 string, or v2 ``{"@value": ...}`` values."""
    if isinstance(label, str):
        return label
    if isinstance(label, Mapping):
        if "@value" in label:
            return str(label["@value"])
        for values in label.values():
            if _listed(values):
                return str(_listed(values)[0])
    if isinstance(label, list) and label:
        return label_text(label[0])
    return None


def image_request(service: Mapping[str, Any]) -> str:
    """The full-size JPEG request of an Image API service: ``full/max`` for Image API 3, ``full/full`` for 2."""
    kind, context = _type(service), str(service.get("@context", ""))
    profile = " ".join(str(p) for p in _listed(service.get("profile")))
    version_2 = kind == "ImageService2" or "image/2" in context or "image/2" in profile
    return f"{_id(service).rstrip('/')}/full/{'full' if version_2 else 'max'}/0/default.jpg"


def _image_of(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(image URL, error) of a painting annotation's body (v3) or resource (v2)."""
    if _type(body) in ("Choice", "oa:Choice"):
        options = _listed(body.get("items")) or [body.get("default"), *_listed(body.get("item"))]
        options = [o for o in options if isinstance(o, Mapping)]
        return _image_of(options[0]) if options else (None, "no_image")
    if _type(body) not in ("Image", "dctypes:Image") and not str(body.get("format", "")).startswith("image/"):
        return None, "not_an_image"
    services = [s for s in _listed(body.get("service")) if isinstance(s, Mapping) and _id(s)]
    if services:
        return image_request(services[0]), None
    return (_id(body), None) if _id(body) else (None, "no_image")


def _size(node: Mapping[str, Any]) -> tuple[int | None, int | None]:
    width, height = node.get("width"), node.get("height")
    return (int(width) if width else None), (int(height) if height else None)


def _canvas_v3(manifest_id: str, canvas: Mapping[str, Any]) -> Canvas:
    bodies = [
        annotation.get("body")
        for page in _listed(canvas.get("items"))
        for annotation in _listed(page.get("items"))
        if annotation.get("motivation", "painting") == "painting"
    ]
    image_url, error = _image_of(bodies[0]) if bodies and isinstance(bodies[0], Mapping) else (None, "no_image")
    return Canvas(manifest_id, _id(canvas), label_text(canvas.get("label")), image_url, *_size(canvas), error=error)


def _canvas_v2(manifest_id: str, canvas: Mapping[str, Any]) -> Canvas:
    resources = [image.get("resource") for image in _listed(canvas.get("images"))]
    image_url, error = (
        _image_of(resources[0]) if resources and isinstance(resources[0], Mapping) else (None, "no_image")
    )
    return Canvas(manifest_id, _id(canvas), label_text(canvas.get("label")), image_url, *_size(canvas), error=error)


def manifest_canvases(document: Mapping[str, Any]) -> list[Canvas]:
    """The canvases of one manifest, Presentation 3.0 (``items``) or 2.1 (``sequences[].canvases``).

    Raises:
        ValueError: ``document`` is not a manifest.
    """
    kind = _type(document)
    if kind == "Manifest":
        return [_canvas_v3(_id(document), c) for c in _listed(document.get("items")) if _type(c) == "Canvas"]
    if kind == "sc:Manifest":
        canvases = [c for sequence in _listed(document.get("sequences")) for c in _listed(sequence.get("canvases"))]
        return [_canvas_v2(_id(document), c) for c in canvases]
    raise ValueError(f"not a IIIF manifest: type {kind or 'missing'} in {_id(document) or 'a document without id'}")


def read_json(url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON document from any fsspec URL (``https://`` through fsspec's HTTP filesystem).

    Raises:
        StorageError: the URL cannot be read; ValueError: it is not JSON.
    """
    fs, path = storage.open_url(url, storage_options)
    return json.loads(storage.read_bytes(fs, path))


def read_canvases(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    fetch: Callable[[str], Mapping[str, Any]] | None = None,
    max_depth: int = 4,
    labels: dict[str, str] | None = None,
) -> Iterator[Canvas]:
    """Every canvas of the manifest at ``url``, or of every manifest of the collection at ``url``.

    Collections are followed (v3 ``items`` of type Manifest or Collection, v2 ``manifests`` and
    ``collections``) up to ``max_depth`` levels; each manifest is read once.

    Args:
        fetch: reads a URL as JSON (default :func:`read_json` with ``storage_options``).
        labels: filled with manifest id -> the manifest's label, when given.

    Raises:
        StorageError: a manifest or collection cannot be read.
        ValueError: a document is neither a manifest nor a collection.
    """
    read = fetch or (lambda address: read_json(address, storage_options))
    seen: set[str] = set()

    def walk(address: str, depth: int) -> Iterator[Canvas]:
        if address in seen:
            return
        seen.add(address)
        document = read(address)
        kind = _type(document)
        if kind in ("Collection", "sc:Collection"):
            if depth >= max_depth:
                raise ValueError(f"IIIF collections nested deeper than {max_depth} levels at {address}")
            members = [*_listed(document.get("items")), *_listed(document.get("manifests"))]
            members += _listed(document.get("collections"))
            for member in members:
                yield from walk(_id(member), depth + 1)
            return
        if labels is not None:
            labels[_id(document)] = label_text(document.get("label")) or _id(document)
        yield from manifest_canvases(document)

    yield from walk(url, 0)


@dataclass(frozen=True)
class ColorizedCanvas:
    """One canvas of the output manifest: the source canvas, its original image and its colorized output.

    Attributes:
        source: the input manifest's :class:`Canvas`.
        colorized_url: where the colorized output is served (under the output's base URL).
        width, height: the output's size in pixels (the original's).
        c2pa: the output's C2PA status (``signed``) or None.
        format: the output's MIME type.
    """

    source: Canvas
    colorized_url: str
    width: int
    height: int
    c2pa: str | None = None
    format: str = "image/jpeg"


def _language(text: str) -> dict[str, list[str]]:
    return {"en": [text]}


def choice_manifest(
    manifest_url: str, label: str, canvases: list[ColorizedCanvas], model_sha256: str, tool: str
) -> dict[str, Any]:
    """A IIIF Presentation 3.0 manifest whose canvases each paint a Choice of [original, colorized].

    Args:
        manifest_url: the output manifest's own URL (its ``id``; canvases are numbered below it).
        label: the source manifest's label.
        canvases: one entry per source canvas that has a colorized output, in the source's order.
        model_sha256: the generator's sha256, named on each colorized image.
        tool: ``archive-colorizer <version>``.

    Returns:
        The manifest as JSON-ready data (IIIF Cookbook recipe 0033: the viewer shows the first
        item, the original, and offers the colorized one).
    """
    items = []
    for number, entry in enumerate(canvases, start=1):
        canvas_id = f"{manifest_url}/canvas/{number}"
        original: dict[str, Any] = {"id": entry.source.image_url, "type": "Image", "format": "image/jpeg"}
        original.update(width=entry.width, height=entry.height, label=_language("Original"))
        note = f"{COLORIZED_NOTE} by {tool} (generator sha256 {model_sha256[:12]}); C2PA: {entry.c2pa or 'unsigned'}"
        colorized: dict[str, Any] = {"id": entry.colorized_url, "type": "Image", "format": entry.format}
        colorized.update(width=entry.width, height=entry.height, label=_language(note))
        annotation = {
            "id": f"{canvas_id}/page/1/annotation/1",
            "type": "Annotation",
            "motivation": "painting",
            "body": {"type": "Choice", "items": [original, colorized]},
            "target": canvas_id,
        }
        items.append(
            {
                "id": canvas_id,
                "type": "Canvas",
                "label": _language(entry.source.label or f"Canvas {number}"),
                "width": entry.width,
                "height": entry.height,
                "metadata": [{"label": _language("Source canvas"), "value": {"none": [entry.source.canvas_id]}}],
                "items": [{"id": f"{canvas_id}/page/1", "type": "AnnotationPage", "items": [annotation]}],
            }
        )
    return {
        "@context": PRESENTATION_3_CONTEXT,
        "id": manifest_url,
        "type": "Manifest",
        "label": _language(f"{label} ({COLORIZED_NOTE})"),
        "summary": _language(
            f"Each image offers the original and a version colorized by {tool}: gray values of the original kept, "
            "colour predicted by a trained model (IPTC compositeWithTrainedAlgorithmicMedia)."
        ),
        "seeAlso": [
            {
                "id": manifest_id,
                "type": "Dataset",
                "format": "application/ld+json",
                "label": _language("Source manifest"),
            }
            for manifest_id in dict.fromkeys(entry.source.manifest_id for entry in canvases)
        ],
        "items": items,
    }
