"""Throughput of ``prepare`` on real photographs: prints one JSON object.

Builds a folder of COUNT distinct JPEG files cut from scikit-image's colour photographs (random
crops of 60-100 % of each side, so no two files are alike; a few hundred pixels a side, like
COCO), then runs the prepare job on a local Ray with CPUS CPUs and reports images per second.

    .venv/bin/python bench/prepare_throughput.py --count 600 --cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import local_ray  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")


def _photos() -> list[np.ndarray]:
    import skimage.data

    arrays = [getattr(skimage.data, name)() for name in PHOTOS] + [skimage.data.stereo_motorcycle()[0]]
    return [np.asarray(Image.fromarray(a).reduce(2)) if max(a.shape) > 1000 else a for a in arrays]


def build_collection(folder: Path, count: int, seed: int = 0) -> int:
    """Write ``count`` JPEG crops of the photos below ``folder`` (100 per subfolder); returns bytes written."""
    rng = np.random.default_rng(seed)
    photos, total = _photos(), 0
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        crop_h, crop_w = int(height * rng.uniform(0.6, 1.0)), int(width * rng.uniform(0.6, 1.0))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        path = folder / f"{index // 100:03d}" / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[top : top + crop_h, left : left + crop_w]).save(path, quality=90)
        total += path.stat().st_size
    return total


def _serial_milliseconds(collection: Path, size: int, count: int = 100) -> float:
    """Mean time of decode/filter/resize/encode for one photo, in this process (no Ray, no I/O)."""
    from archive_colorizer.prepare.process import ProcessSettings, process_image

    files = [p.read_bytes() for p in sorted(collection.rglob("*.jpg"))[:count]]
    start = time.perf_counter()
    for data in files:
        process_image(data, ProcessSettings(size=size))
    return round(1000 * (time.perf_counter() - start) / len(files), 2)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600, help="number of photos")
    parser.add_argument("--size", type=int, default=286, help="--size of prepare")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    parser.add_argument("--rows-per-shard", type=int, default=100)
    args = parser.parse_args(argv)

    from archive_colorizer.prepare import run
    from archive_colorizer.prepare.config import PrepareConfig

    with tempfile.TemporaryDirectory() as tmp:
        collection = Path(tmp) / "photos"
        size_bytes = build_collection(collection, args.count)
        serial_ms = _serial_milliseconds(collection, args.size)
        with local_ray(args.cpus, logging_level="ERROR"):
            start = time.monotonic()
            config = PrepareConfig(
                input=str(collection),
                output=f"{tmp}/shards",
                size=args.size,
                rows_per_shard=args.rows_per_shard,
                progress=False,
            )
            result = run(config)
            wall = time.monotonic() - start
        shard_bytes = sum(p.stat().st_size for p in Path(tmp, "shards").glob("shard-*.parquet"))
    report = {
        "benchmark": "prepare_throughput",
        "photos": args.count,
        "input_megabytes": round(size_bytes / 1e6, 1),
        "size": args.size,
        "ray_cpus": args.cpus,
        "rows_per_shard": args.rows_per_shard,
        "written": result.counts["written"],
        "shards": result.shards,
        "output_megabytes": round(shard_bytes / 1e6, 1),
        "seconds": round(wall, 2),
        "images_per_second": round(args.count / wall, 1),
        "images_per_second_per_cpu": round(args.count / wall / args.cpus, 1),
        "process_image_ms_one_core": serial_ms,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
