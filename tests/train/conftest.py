"""Training shards for the train tests, in the layout of DESIGN.md.

``make_shards`` stands in for the prepare job until it lands: Parquet files with
``image: struct<bytes, path>`` (JPEG, shorter side ``size``), ``width``, ``height``, ``split``,
``source``, plus a ``_stats.json`` beside them. Swap its body for
``archive_colorizer.prepare.run`` once prepare is merged; the tests only need the URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from archive_colorizer.imageio import encode_jpeg, resize_shorter_side


def make_shards(
    folder: Path,
    photos: Mapping[str, np.ndarray],
    *,
    size: int = 40,
    val: Iterable[str] = (),
    repeat: int = 1,
    val_also_train: bool = False,
    files: int = 2,
) -> str:
    """Write ``photos`` as JPEG rows of ``files`` Parquet shards in ``folder``; returns its path.

    Photos named in ``val`` get ``split="val"``, the others ``"train"``, each training photo
    ``repeat`` times. With ``val_also_train`` every photo is one val row plus ``repeat``
    training rows (to measure how well a model fits the images it was trained on).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows, train_rows = [], []
    for name, pixels in photos.items():
        image = resize_shorter_side(Image.fromarray(pixels).convert("RGB"), size)
        row = {"image": {"bytes": encode_jpeg(image), "path": f"{name}.jpg"}, "width": image.width,
               "height": image.height, "source": f"photos/{name}.jpg"}
        if name in val or val_also_train:
            rows.append({**row, "split": "val"})
        if name not in val:
            train_rows.append({**row, "split": "train"})
    rows += train_rows * repeat  # photo after photo, as in a real collection, not runs of one photo
    for index in range(files):
        part = rows[index * len(rows) // files:(index + 1) * len(rows) // files]
        if part:
            pq.write_table(pa.Table.from_pylist(part), folder / f"shard-{index:05d}.parquet")
    (folder / "_stats.json").write_text(json.dumps({"rows": len(rows)}))
    return str(folder)
