"""The demo's bundled photographs: crops of the training photos, the archive, written to any URL."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from archive_colorizer import folders, storage
from archive_colorizer.demo import photos as bundled


def test_grid_crops_cover_the_photo_from_edge_to_edge(photos):
    image = photos["coffee"]  # (400, 600, 3)
    crops = dict(bundled.grid_crops(image, 3))
    assert len(crops) == 1 + 4 + 9
    assert crops["1x1-0-0"].shape == image.shape
    assert crops["2x2-0-0"].shape == (240, 360, 3) and crops["3x3-2-2"].shape == (171, 257, 3)
    assert np.array_equal(crops["2x2-1-1"][-1, -1], image[-1, -1]) and np.array_equal(
        crops["3x3-0-0"][0, 0], image[0, 0]
    )


def test_the_archive_and_the_crops_go_to_a_bucket(s3_bucket):
    url, options = s3_bucket
    names = bundled.write_archive(f"{url}/archive", options)
    assert names == ["camera.png", "moon.png", "coins.png", "page.png", "text.png", "chelsea.jpg", "rocket.jpg"]
    fs, root = storage.open_url(f"{url}/archive", options)
    with Image.open(io.BytesIO(storage.read_bytes(fs, f"{root}/chelsea.jpg"))) as cat:
        assert cat.mode == "L" and cat.size == (451, 300) and cat.format == "JPEG"
    with Image.open(io.BytesIO(storage.read_bytes(fs, f"{root}/camera.png"))) as camera:
        assert np.array_equal(np.asarray(camera), bundled.GRAY_PHOTOS[0].load())
    written = bundled.write_crops(f"{url}/photos", bundled.HELD_OUT_PHOTOS, 2, options)
    assert written == 10 and len(list(folders.iter_files(fs, f"{url.removeprefix('s3://')}/photos"))) == 10
