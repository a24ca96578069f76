"""Training throughput: the Ray Data + Ray Train path against a plain loop, in one run.

Both paths train the same networks with the same batch size, the same number of torch threads
and the same step function (:func:`archive_colorizer.train.step.gan_step`):

- plain: the images are decoded, jittered and converted to Lab once, up front; the loop only
  slices batches out of the in-memory tensors and steps;
- ray: ``archive_colorizer.train.run`` on a local Ray: Ray Data decodes, jitters and converts in
  CPU tasks while the training workers step, streaming through ``iter_torch_batches``.

The ray figure is ``images_per_sec_per_worker`` of ``metrics.jsonl`` (training time only,
validation and checkpoints excluded), averaged over the epochs after the first (which includes
the pipeline's start-up). Prints one JSON object; the ``ratio`` is ray / plain.

Usage (the defaults take about two minutes on 2 cores):

    .venv/bin/python bench/train_throughput.py --images 960 --epochs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import local_ray  # noqa: E402

from archive_colorizer.images import jpeg_bytes, resize_shorter_side  # noqa: E402
from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec  # noqa: E402
from archive_colorizer.train.checkpoint import seed_everything  # noqa: E402
from archive_colorizer.train.config import TrainConfig  # noqa: E402
from archive_colorizer.train.data import to_lab_batch  # noqa: E402
from archive_colorizer.train.step import build_pix2pix, gan_step  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def write_shards(folder: Path, images: int, shorter_side: int) -> pa.Table:
    """``images`` rows in the prepare layout (JPEG at ``shorter_side``), 4 shards + 8 val rows."""
    import skimage.data

    pictures = [
        resize_shorter_side(Image.fromarray(getattr(skimage.data, n)()).convert("RGB"), shorter_side) for n in PHOTOS
    ]
    rows = []
    for index in range(images + 8):
        picture = pictures[index % len(pictures)]
        if (index // len(pictures)) % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        rows.append(
            {
                "image": {"bytes": jpeg_bytes(picture), "path": f"{index}.jpg"},
                "width": picture.width,
                "height": picture.height,
                "split": "val" if index >= images else "train",
                "source": f"{index}.jpg",
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(4):
        pq.write_table(pa.Table.from_pylist(rows[shard::4]), folder / f"shard-{shard:05d}.parquet")
    return pa.Table.from_pylist(rows[:images])


def plain_loop(table: pa.Table, config: TrainConfig, steps: int) -> dict:
    """Pre-decode everything, then time ``steps`` GAN steps over the in-memory tensors."""
    torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    decoded = to_lab_batch(table, config.image_size, jitter=True)
    l_all, ab_all = torch.from_numpy(decoded["l"]), torch.from_numpy(decoded["ab"])
    seed_everything(config.seed)
    model = build_pix2pix(
        GeneratorSpec(ngf=config.ngf, num_downs=config.num_downs).build(),
        DiscriminatorSpec(ndf=config.ndf, n_layers=config.n_layers).build(),
        lr=config.lr,
    )
    batch = config.batch_size
    per_epoch = len(l_all) // batch
    gan_step(model, l_all[:batch], ab_all[:batch])  # warm-up: allocator, kernels
    started = time.perf_counter()
    for step in range(steps):
        index = (step % per_epoch) * batch
        gan_step(model, l_all[index : index + batch], ab_all[index : index + batch])
    seconds = time.perf_counter() - started
    return {
        "images_per_sec": steps * batch / seconds,
        "steps": steps,
        "seconds": round(seconds, 3),
        "torch_threads": torch.get_num_threads(),
    }


def ray_path(shards: str, run: str, config: TrainConfig) -> dict:
    from archive_colorizer.train import run as train

    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON result
        train(config.model_copy(update={"data": shards, "run": run}))
    total = time.perf_counter() - started
    rows = [json.loads(line) for line in Path(run, "metrics.jsonl").read_text().splitlines()]
    steady = rows[1:] or rows
    # Throughput once the epoch's pipeline has started: images after the first batch over the time after it.
    streaming = [
        (r["train_images"] / r["workers"] - config.batch_size) / (r["seconds"] - r["first_batch_seconds"])
        for r in steady
    ]
    return {
        "images_per_sec_per_worker": statistics.mean(r["images_per_sec_per_worker"] for r in steady),
        "after_first_batch_images_per_sec_per_worker": statistics.mean(streaming),
        "first_batch_seconds": [r["first_batch_seconds"] for r in rows],
        "per_epoch": [round(r["images_per_sec_per_worker"], 2) for r in rows],
        "data_wait_fraction": [round(r["data_wait_seconds"] / r["seconds"], 3) for r in rows],
        "steps": rows[-1]["global_step"],
        "wall_seconds": round(total, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=960, help="training images in the shards")
    parser.add_argument(
        "--shorter-side", type=int, default=286, help="shorter side of the shard JPEGs (prepare's default)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--num-downs", type=int, default=7)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument(
        "--shuffle-buffer",
        type=int,
        default=TrainConfig.model_fields["shuffle_buffer"].default,
        help="train's --shuffle-buffer (images each worker draws batches from; filled at each epoch's start)",
    )
    args = parser.parse_args(argv)

    import ray

    # No dashboard; RAY_API_SERVER_ADDRESS keeps Ray Train's placement-group cleaner from
    # querying another Ray on a shared machine (see tests/conftest.py).
    with (
        local_ray(
            args.num_cpus,
            logging_level="ERROR",
            runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": "http://127.0.0.1:9"}},
        ),
        tempfile.TemporaryDirectory() as tmp,
    ):
        ray.data.DataContext.get_current().enable_progress_bars = False
        config = TrainConfig(
            data=tmp,
            run=tmp,
            workers=args.workers,
            cpus_per_worker=args.cpus_per_worker,
            epochs=args.epochs,
            batch_size=args.batch_size,
            image_size=args.image_size,
            ngf=args.ngf,
            num_downs=args.num_downs,
            ndf=args.ndf,
            max_val_images=8,
            keep_checkpoints=1,
            shuffle_buffer=args.shuffle_buffer,
        )
        table = write_shards(Path(tmp, "shards"), args.images, args.shorter_side)
        ray_result = ray_path(str(Path(tmp, "shards")), str(Path(tmp, "run")), config)
        plain = plain_loop(table, config, steps=max(ray_result["steps"] // args.epochs, 10))
    report = {
        "config": {k: v for k, v in vars(args).items()},
        "plain_images_per_sec": round(plain["images_per_sec"], 2),
        "ray_images_per_sec_per_worker": round(ray_result["images_per_sec_per_worker"], 2),
        "ratio": round(ray_result["images_per_sec_per_worker"] / plain["images_per_sec"], 3),
        "ratio_after_first_batch": round(
            ray_result["after_first_batch_images_per_sec_per_worker"] / plain["images_per_sec"], 3
        ),
        "plain": plain,
        "ray": ray_result,
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
