"""The demo's bundled photographs: real pictures that ship with scikit-image and scikit-learn.

Nothing is downloaded: every image here is inside the two wheels. The training collection is
six colour photographs; two more colour photographs are held out (validation during
training, and gray versions of them in the archive, so the colorized result can be compared
with the real colours); the archive's other images are scikit-image's gray photographs.
scikit-image's microscopy, retina and synthetic images are left out: they would teach colours
that ordinary photographs do not have; so is the Hubble deep field, whose crops are nearly black
and which prepare drops as grayscale.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from archive_colorizer import storage
from archive_colorizer.errors import ConfigError


@dataclass(frozen=True)
class BundledPhoto:
    """One bundled image: where it comes from and how to load it.

    Attributes:
        name: file stem used in the demo's folders (``chelsea`` -> ``chelsea.jpg``).
        source: the call that returns it (for the README and the demo's printout).
        load: returns (H, W, 3) uint8 RGB for colour photographs, (H, W) uint8 for gray ones.
    """

    name: str
    source: str
    load: Callable[[], np.ndarray]


def skimage_photo(name: str, index: int | None = None) -> Callable[[], np.ndarray]:
    """A loader of ``skimage.data.<name>()`` (item ``index`` of what it returns, if given): (H, W[, 3]) uint8."""

    def load() -> np.ndarray:
        data = _import("skimage.data")
        image = getattr(data, name)()
        return np.ascontiguousarray(image if index is None else image[index])

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return np.ascontiguousarray(_import("sklearn.datasets").load_sample_image(filename))

    return load


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the demo's bundled photographs need scikit-image and scikit-learn ({module} is missing): "
            "pip install -e '.[demo]', or give --photos and --archive"
        ) from exc


TRAINING_PHOTOS = (
    BundledPhoto("astronaut", "skimage.data.astronaut()", skimage_photo("astronaut")),
    BundledPhoto("coffee", "skimage.data.coffee()", skimage_photo("coffee")),
    BundledPhoto("motorcycle-left", "skimage.data.stereo_motorcycle()[0]", skimage_photo("stereo_motorcycle", 0)),
    BundledPhoto("motorcycle-right", "skimage.data.stereo_motorcycle()[1]", skimage_photo("stereo_motorcycle", 1)),
    BundledPhoto("china", "sklearn.datasets.load_sample_image('china.jpg')", _sklearn("china.jpg")),
    BundledPhoto("flower", "sklearn.datasets.load_sample_image('flower.jpg')", _sklearn("flower.jpg")),
)
"""Colour photographs the demo trains on."""

HELD_OUT_PHOTOS = (
    BundledPhoto("chelsea", "skimage.data.chelsea()", skimage_photo("chelsea")),
    BundledPhoto("rocket", "skimage.data.rocket()", skimage_photo("rocket")),
)
"""Colour photographs never trained on: the validation split, and gray versions in the archive."""

GRAY_PHOTOS = (
    BundledPhoto("camera", "skimage.data.camera()", skimage_photo("camera")),
    BundledPhoto("moon", "skimage.data.moon()", skimage_photo("moon")),
    BundledPhoto("coins", "skimage.data.coins()", skimage_photo("coins")),
    BundledPhoto("page", "skimage.data.page()", skimage_photo("page")),
    BundledPhoto("text", "skimage.data.text()", skimage_photo("text")),
)
"""Real black-and-white photographs and scans for the archive."""


def grid_crops(image: np.ndarray, levels: int) -> Iterator[tuple[str, np.ndarray]]:
    """Overlapping crops of a photo on 1x1, 2x2, ... ``levels`` x ``levels`` grids.

    Level k cuts k x k crops, each ``1.5 / (k + 0.5)`` of the photo's width and height (1, 0.6,
    0.43, 0.33, ...), spread evenly from edge to edge, so neighbours overlap and the smallest
    crops still show a recognisable part of the scene. The aspect ratio is the photo's.

    Args:
        image: (H, W, 3) uint8 RGB.
        levels: the largest grid (1: only the whole photo).

    Yields:
        (``"kxk-r-c"`` name, (h, w, 3) uint8 view of ``image``) for 1 + 4 + ... + levels**2 crops.
    """
    height, width = image.shape[:2]
    for k in range(1, levels + 1):
        scale = min(1.0, 1.5 / (k + 0.5))
        crop_h, crop_w = round(height * scale), round(width * scale)
        tops = np.linspace(0, height - crop_h, k).round().astype(int)
        lefts = np.linspace(0, width - crop_w, k).round().astype(int)
        for row, top in enumerate(tops):
            for column, left in enumerate(lefts):
                yield f"{k}x{k}-{row}-{column}", image[top : top + crop_h, left : left + crop_w]


def write_image(url: str, image: np.ndarray, storage_options: Mapping[str, Any], format: str) -> None:
    """Write ``image`` ((H, W[, 3]) uint8) to ``url`` as ``format`` (``JPEG`` at quality 95, ``PNG``).

    Raises:
        StorageError: the file cannot be written.
    """
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format, **({"quality": 95} if format == "JPEG" else {}))
    fs, path = storage.open_url(url, storage_options)
    storage.write_bytes(fs, path, buffer.getvalue())


def write_crops(folder: str, photos: tuple[BundledPhoto, ...], levels: int, storage_options: Mapping[str, Any]) -> int:
    """Write :func:`grid_crops` of each photo as ``<folder>/<name>/<kxk-r-c>.jpg`` (quality 95).

    Returns:
        The number of images written.
    """
    written = 0
    for photo in photos:
        for crop_name, crop in grid_crops(photo.load(), levels):
            write_image(storage.join(folder, photo.name, f"{crop_name}.jpg"), crop, storage_options, "JPEG")
            written += 1
    return written


def gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 gray with Pillow's ITU-R 601-2 luma (``convert("L")``)."""
    return np.asarray(Image.fromarray(image).convert("L"))


def write_archive(folder: str, storage_options: Mapping[str, Any]) -> list[str]:
    """Write the demo's black-and-white archive: a scan-like mix of formats.

    The gray photographs keep scikit-image's PNG; the held-out colour photographs become gray
    JPEGs (quality 95), as a scanned print would be.

    Returns:
        The file names written, in order.
    """
    names = []
    for photo in GRAY_PHOTOS:
        names.append(f"{photo.name}.png")
        write_image(storage.join(folder, names[-1]), photo.load(), storage_options, "PNG")
    for photo in HELD_OUT_PHOTOS:
        names.append(f"{photo.name}.jpg")
        write_image(storage.join(folder, names[-1]), gray(photo.load()), storage_options, "JPEG")
    return names


def originals() -> dict[str, np.ndarray]:
    """The held-out photos' real colours, keyed by their archive file name (``chelsea.jpg``)."""
    return {f"{photo.name}.jpg": photo.load() for photo in HELD_OUT_PHOTOS}
