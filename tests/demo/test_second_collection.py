"""scripts/second_collection.py: the held-out strip never reaches a training crop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.demo.photos import BundledPhoto
from scripts import second_collection as collection


def test_split_columns_cuts_the_image_in_two_without_overlap():
    image = np.arange(4 * 90 * 3).reshape(4, 90, 3)
    left, right = collection.split_columns(image, 1 / 3)
    assert left.shape == (4, 60, 3) and right.shape == (4, 30, 3)
    assert np.array_equal(np.concatenate([left, right], axis=1), image)
    with pytest.raises(ValueError, match="held_out"):
        collection.split_columns(image, 1.0)


def test_square_tiles_run_from_top_to_bottom_overlapping_by_about_half():
    strip = np.arange(512 * 171).reshape(512, 171)  # the ihc strip's size
    tiles = list(collection.square_tiles(strip))
    assert [tile.shape for tile in tiles] == [(171, 171)] * 5
    tops = [int(tile[0, 0]) // 171 for tile in tiles]
    assert tops == [0, 85, 170, 256, 341]  # first at the top edge, last at the bottom edge
    assert np.array_equal(tiles[-1][-1], strip[-1])
    wide = list(collection.square_tiles(np.zeros((50, 80))))
    assert [tile.shape for tile in wide] == [(50, 50)]


def _two_colours() -> np.ndarray:
    image = np.zeros((120, 180, 3), np.uint8)
    image[:, :120] = (220, 30, 30)  # the part to train on: red
    image[:, 120:] = (30, 30, 220)  # the held-out third: blue
    return image


def test_training_crops_hold_no_pixel_of_the_held_out_strip(tmp_path):
    photo = BundledPhoto("two", "test", _two_colours)
    written = collection.write_collection(str(tmp_path), levels=3, held_out=1 / 3, photos=(photo,))
    assert written == {"two": {"train": 1 + 4 + 9, "val": 3}}  # a 120 x 60 strip: tiles at 0, 30, 60
    train = sorted((tmp_path / "train" / "two").glob("*.jpg"))
    val = sorted((tmp_path / "val" / "two").glob("*.jpg"))
    assert len(train) == 14 and [path.name for path in val] == ["tile-0.jpg", "tile-1.jpg", "tile-2.jpg"]
    for path in train:
        pixels = np.asarray(Image.open(path)).reshape(-1, 3).astype(int)
        assert (pixels[:, 2] < 80).all() and (pixels[:, 0] > 170).all(), path.name  # red only, JPEG aside
    for path in val:
        with Image.open(path) as tile:
            assert tile.size == (60, 60) and (np.asarray(tile)[..., 2] > 170).all()


def test_the_script_writes_the_bundled_collection(tmp_path, capsys):
    pytest.importorskip("skimage")
    assert collection.main([str(tmp_path), "--levels", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["written"] == {"ihc": {"train": 5, "val": 5}, "retina": {"train": 5, "val": 5}}
    with Image.open(Path(tmp_path, "val", "retina", "tile-0.jpg")) as tile:
        assert tile.size == (470, 470)  # a third of retina's 1411 px
    with Image.open(Path(tmp_path, "train", "ihc", "1x1-0-0.jpg")) as whole:
        assert whole.size == (341, 512)  # the two thirds on the left of the 512 px image
