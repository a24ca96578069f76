"""A second small collection for fine-tuning the demo's generator: scikit-image's medical colour images.

    python scripts/second_collection.py OUT [--levels 5] [--held-out 0.33]

The demo trains on six everyday photographs (:mod:`archive_colorizer.demo.photos`) and leaves
out scikit-image's microscopy and retina images. Those two are a collection of another domain,
installed with scikit-image and never seen by the demo's generator:

- ``ihc``: ``skimage.data.immunohistochemistry()``, 512 x 512, a tissue section stained brown
  (DAB) and blue (haematoxylin), seen through a microscope;
- ``retina``: ``skimage.data.retina()``, 1411 x 1411, a fundus photograph (orange-red retina,
  dark vessels, yellow optic disc, black surround).

There is one image of each, so the held-out images cannot be other photographs of the same
kind: each image is cut in two along a vertical line, and the strip on the right
(``--held-out``, a third of the width) is never trained on. The rest, the left part, gives the
training crops (the demo's overlapping multi-scale :func:`~archive_colorizer.demo.photos.grid_crops`,
``--levels``); the held-out strip gives square tiles, one strip-width wide, overlapping by about half.
Written as JPEG (quality 95), ready for prepare::

    OUT/train/<name>/<kxk-r-c>.jpg      prepare OUT/train SHARDS/train --val-fraction 0
    OUT/val/<name>/tile-<i>.jpg         prepare OUT/val   SHARDS/val   --val-fraction 1

Train and evaluate read ``SHARDS`` as one dataset; no training crop holds a pixel of the
held-out strip. It prints what it wrote as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

import numpy as np

from archive_colorizer import storage
from archive_colorizer.demo.photos import BundledPhoto, grid_crops, skimage_photo, write_image

COLLECTION = (
    BundledPhoto("ihc", "skimage.data.immunohistochemistry()", skimage_photo("immunohistochemistry")),
    BundledPhoto("retina", "skimage.data.retina()", skimage_photo("retina")),
)
"""The second collection: scikit-image's colour images of another domain than the demo's."""


def split_columns(image: np.ndarray, held_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``image`` along a vertical line: (left part to train on, right strip held out).

    Args:
        image: (H, W, 3) array.
        held_out: share of the width in the right strip, in (0, 1).

    Returns:
        Two views of ``image`` that share no column; together they are the whole image.
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be in (0, 1), got {held_out}")
    width = image.shape[1]
    cut = width - max(1, round(width * held_out))
    if cut < 1:
        raise ValueError(f"an image {width} px wide leaves nothing to train on with held_out={held_out}")
    return image[:, :cut], image[:, cut:]


def square_tiles(strip: np.ndarray) -> Iterator[np.ndarray]:
    """Square tiles of a tall strip, the strip's width wide, spread evenly from top to bottom.

    Neighbours overlap by about half a tile: ``round((H - side) / (side / 2)) + 1`` tiles, the
    first at the top edge, the last at the bottom edge. A strip wider than tall gives one tile
    of its height, at its left edge.
    """
    height, width = strip.shape[:2]
    side = min(height, width)
    count = round((height - side) / (side / 2)) + 1
    for top in np.linspace(0, height - side, count).round().astype(int):
        yield strip[top : top + side, :side]


def write_collection(
    out: str, levels: int = 5, held_out: float = 1 / 3, photos: tuple[BundledPhoto, ...] = COLLECTION
) -> dict[str, dict[str, int]]:
    """Write the training crops and the held-out tiles of ``photos`` below ``out`` (any fsspec URL).

    Returns:
        ``{name: {"train": crops, "val": tiles}}``.
    """
    written: dict[str, dict[str, int]] = {}
    for photo in photos:
        train_part, held_out_part = split_columns(photo.load(), held_out)
        counts = written[photo.name] = {"train": 0, "val": 0}
        for crop_name, crop in grid_crops(train_part, levels):
            write_image(storage.join(out, "train", photo.name, f"{crop_name}.jpg"), crop, {}, "JPEG")
            counts["train"] += 1
        for index, tile in enumerate(square_tiles(held_out_part)):
            write_image(storage.join(out, "val", photo.name, f"tile-{index}.jpg"), tile, {}, "JPEG")
            counts["val"] += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder (any fsspec URL) for train/ and val/")
    parser.add_argument("--levels", type=int, default=5, help="grids of training crops: 1x1 ... NxN (default 5)")
    parser.add_argument("--held-out", type=float, default=1 / 3, help="share of each image's width held out")
    args = parser.parse_args(argv)
    written = write_collection(args.out, args.levels, args.held_out)
    print(json.dumps({"out": args.out, "sources": {p.name: p.source for p in COLLECTION}, "written": written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
