"""A small photo collection with planted bad files, as a folder, a zip and a tar."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Planted files and the outcome each must get.
PLANTED = {
    "bad/truncated.jpg": "dropped_corrupt",
    "bad/empty.jpg": "dropped_corrupt",
    "bad/not-an-image.jpg": "dropped_corrupt",
    "bad/gray.png": "dropped_grayscale",
    "bad/tiny.png": "dropped_small",
}
PHOTO_FILES = {
    "astronaut.jpg": "astronaut",
    "coffee.jpg": "coffee",
    "chelsea.png": "chelsea",
    "rocket.tif": "rocket",
    "sub/immunohistochemistry.jpg": "immunohistochemistry",
    "sub/deeper/motorcycle.webp": "motorcycle",
}


def encode(array: np.ndarray, fmt: str, **params) -> bytes:
    """A real image file's bytes (Pillow) from an (H, W[, 3]) uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _photo_bytes(name: str, array: np.ndarray) -> bytes:
    suffix = name.rsplit(".", 1)[-1]
    if suffix == "jpg":
        return encode(array, "JPEG", quality=90)
    if suffix == "webp":
        return encode(array, "WEBP", lossless=True)
    return encode(array, {"png": "PNG", "tif": "TIFF"}[suffix])


@pytest.fixture(scope="session")
def collection(photos) -> dict[str, bytes]:
    """Relative path -> file bytes: six real photographs (JPEG, PNG, TIFF, WebP) and the planted
    bad files of :data:`PLANTED`, plus files that are not inputs (a .txt, a hidden .jpg)."""
    files = {path: _photo_bytes(path, photos[name]) for path, name in PHOTO_FILES.items()}
    whole = files["astronaut.jpg"]
    files["bad/truncated.jpg"] = whole[: len(whole) // 2]
    files["bad/empty.jpg"] = b""
    files["bad/not-an-image.jpg"] = b"these are notes, not a photograph\n"
    gray = np.asarray(Image.fromarray(photos["coffee"]).convert("L"))
    files["bad/gray.png"] = encode(gray, "PNG")
    files["bad/tiny.png"] = encode(np.ascontiguousarray(photos["coffee"][200:210, 300:310]), "PNG")
    files["notes.txt"] = b"not an input"
    files["sub/.hidden.jpg"] = whole
    return files


INPUTS = len(PHOTO_FILES) + len(PLANTED)
"""Inputs of :func:`collection` (the .txt and the hidden file are not inputs)."""


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__MACOSX/._astronaut.jpg", b"AppleDouble junk")  # never an input
        for relative, data in files.items():
            archive.writestr(relative, data)
    return path


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    # Members named "./a.jpg", as `tar -C folder -cf x.tar .` writes them.
    with tarfile.open(path, "w") as archive:
        for relative, data in files.items():
            info = tarfile.TarInfo(f"./{relative}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def collection_folder(collection, tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("collection") / "photos", collection)


def write_category_collection(root: Path, photos: dict[str, np.ndarray], **jpeg_params) -> Path:
    """A folder-per-category collection under ``root``: 20 categories x 50 JPEGs of 48 px.

    Each JPEG is a seeded random crop of a real photograph (astronaut, coffee, chelsea, motorcycle),
    named ``catCC/III.jpg`` so a sorted listing holds each category contiguously (Places365's layout).
    """
    rng = np.random.default_rng(0)
    arrays = [photos[name] for name in ("astronaut", "coffee", "chelsea", "motorcycle")]
    files = {}
    for category in range(20):
        for item in range(50):
            array = arrays[(category + item) % len(arrays)]
            top, left = rng.integers(0, array.shape[0] - 48), rng.integers(0, array.shape[1] - 48)
            crop = np.ascontiguousarray(array[top : top + 48, left : left + 48])
            files[f"cat{category:02d}/{item:03d}.jpg"] = encode(crop, "JPEG", **jpeg_params)
    return write_folder(root, files)
