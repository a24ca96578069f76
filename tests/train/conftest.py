"""Training shards for the train tests, written by the prepare job itself.

``make_shards`` lays real photographs out as a small collection and runs
:func:`archive_colorizer.prepare.run` on it, once for the training photos (``val_fraction=0``)
and once for the validation photos (``val_fraction=1``), into two sub-folders of the shards
folder; train reads every ``*.parquet`` below the URL it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from archive_colorizer.images import resize_shorter_side
from archive_colorizer.prepare import run as prepare
from archive_colorizer.prepare.config import PrepareConfig


def _collection(folder: Path, photos: Mapping[str, np.ndarray], names: Iterable[str], copies: int, size: int) -> Path:
    """Write ``copies`` JPEG copies of each named photo (``copy-NNN/<name>.jpg``) at shorter side ``size``."""
    for name in names:
        image = resize_shorter_side(Image.fromarray(photos[name]).convert("RGB"), size)
        for copy in range(copies):
            path = folder / f"copy-{copy:03d}" / f"{name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, quality=95)
    return folder


def make_shards(
    folder: Path,
    photos: Mapping[str, np.ndarray],
    *,
    size: int = 40,
    val: Iterable[str] = (),
    repeat: int = 1,
    val_also_train: bool = False,
    rows_per_shard: int = 4,
) -> str:
    """Prepare shards of ``photos`` in ``folder`` with the prepare job; returns the shards URL.

    Photos named in ``val`` go to the ``val`` split, the others to ``train``, each training
    photo ``repeat`` times (as separate files). With ``val_also_train`` every photo is one val
    row plus ``repeat`` training rows (to measure how well a model fits what it was trained on).
    Needs a connected Ray (the ``ray_local`` fixture).
    """
    val = set(val)
    train_names = [name for name in photos if name not in val]
    val_names = list(photos) if val_also_train else [name for name in photos if name in val]
    shards = folder / "shards"
    for split, names, copies, fraction in (("train", train_names, repeat, 0.0), ("val", val_names, 1, 1.0)):
        if not names:
            continue
        collection = _collection(folder / f"photos-{split}", photos, names, copies, size)
        result = prepare(
            PrepareConfig(
                input=str(collection),
                output=str(shards / split),
                size=size,
                min_size=16,
                val_fraction=fraction,
                rows_per_shard=rows_per_shard,
                progress=False,
            )
        )
        assert result.counts["written"] == len(names) * copies, result.counts
    return str(shards)
