"""A GPU machine's figures for archive-colorizer, without Ray; prints JSON.

On CUDA (pix2pix's ``unet_256`` generator, 256 x 256):

- ``generator_forward``: generator forward img/s at batch sizes 1, 2, 4, ..., 64, in every
  precision the GPU runs (:func:`precisions`: fp32, fp16 autocast, and bf16 autocast only where
  it is native, compute capability >= 8.0), with the peak GPU memory of each;
- ``train_step``: one pix2pix GAN step (generator forward, discriminator step, generator
  step; :func:`archive_colorizer.train.step.gan_step`) img/s in the same precisions (fp16
  with a GradScaler per optimizer, as ``--precision fp16`` trains), and its peak memory;
- ``predictor``: :class:`archive_colorizer.colorize.predictor.Predictor` img/s on batches of
  gray images of about 1.7 MP (their squeeze to the model's size included, as the decode stage
  does it), and its peak memory.

Each figure's peak memory is given twice: ``peak_memory_mb`` (tensors, ``max_memory_allocated``)
and ``peak_reserved_mb`` (what the caching allocator held, ``max_memory_reserved``: what the
GPU must have free for that batch size).

Without CUDA, or with ``--tiny``, everything runs at a tiny size on the CPU (ngf 8, 5 downs,
32 px, batches up to 4, 0.05 MP inputs), so that ``make test`` keeps the script working; the
figures are then only a smoke test.

Usage::

    .venv/bin/python bench/gpu_check.py [--tiny] [--repeats 10] [--max-batch 64]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FULL: dict[str, Any] = {"spec": {"ngf": 64, "num_downs": 8}, "size": 256, "megapixels": 1.7, "max_batch": 64}
TINY: dict[str, Any] = {"spec": {"ngf": 8, "num_downs": 5}, "size": 32, "megapixels": 0.05, "max_batch": 4}


def _timed(step: Callable[[], object], repeats: int, device) -> float:
    """Seconds per call of ``step`` after two warm-up calls (CUDA synchronised)."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync()
    return (time.perf_counter() - start) / repeats


def _peak_reserved_mb(device) -> float | None:
    """The most GPU memory the caching allocator held since the last reset (MB): what the
    device must have free, larger than the tensors' own peak (``peak_memory_mb``)."""
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_reserved(device) / 2**20, 1)


def _peak_mb(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def precisions(device) -> list[str]:
    """The precisions measured on ``device``: ``fp32``, plus ``fp16`` on CUDA and ``bf16`` where native.

    Emulated bf16 (a GPU below compute capability 8.0) is not measured: ``--precision auto``
    and the predictor never choose it (:mod:`archive_colorizer.train.precision`).
    """
    from archive_colorizer.devices import bf16_native as native_bf16

    if device.type != "cuda":
        return ["fp32"]
    return ["fp32", "fp16", *(["bf16"] if native_bf16(device) else [])]


def batch_sizes(most: int) -> list[int]:
    """1, 2, 4, ... up to ``most`` (``most`` itself included)."""
    sizes = [1]
    while sizes[-1] * 2 <= most:
        sizes.append(sizes[-1] * 2)
    return sizes if sizes[-1] == most else [*sizes, most]


def measure_forward(generator, size: int, batches: list[int], repeats: int, device) -> list[dict]:
    """Generator forward img/s and peak memory per batch size, in each of :func:`precisions`."""
    import torch

    from archive_colorizer.train.precision import resolve_precision

    rows = []
    for precision in precisions(device):
        dtype = resolve_precision(precision, device, bf16_supported=True).autocast_dtype
        for batch in batches:
            l_norm = torch.rand(batch, 1, size, size, device=device) * 2 - 1  # L/50 - 1
            _reset_peak(device)

            def forward(l_norm=l_norm, dtype=dtype) -> object:
                with (
                    torch.inference_mode(),
                    torch.autocast(device.type, dtype=dtype or torch.float32, enabled=bool(dtype)),
                ):
                    return generator(l_norm)

            seconds = _timed(forward, repeats, device)
            rows.append(
                {
                    "precision": precision,
                    "batch_size": batch,
                    "images_per_second": round(batch / seconds, 2),
                    "peak_memory_mb": _peak_mb(device),
                    "peak_reserved_mb": _peak_reserved_mb(device),
                }
            )
    return rows


def measure_train_step(spec, size: int, batch: int, repeats: int, device) -> list[dict]:
    """pix2pix GAN step (G forward, D step, G step) img/s and peak memory in each of :func:`precisions`."""
    import torch

    from archive_colorizer.models import DiscriminatorSpec
    from archive_colorizer.train.precision import resolve_precision
    from archive_colorizer.train.step import build_pix2pix, gan_step

    rows = []
    for name in precisions(device):
        precision = resolve_precision(name, device, bf16_supported=True)
        generator = spec.build().to(device).train()
        discriminator = DiscriminatorSpec(ndf=max(8, spec.ngf)).build().to(device).train()
        model = build_pix2pix(
            generator,
            discriminator,
            autocast_dtype=precision.autocast_dtype,
            grad_scaler=functools.partial(precision.grad_scaler, device),
        )
        l_norm = torch.rand(batch, 1, size, size, device=device) * 2 - 1
        real_ab = (torch.rand(batch, 2, size, size, device=device) * 2 - 1) * 0.5
        _reset_peak(device)
        seconds = _timed(functools.partial(gan_step, model, l_norm, real_ab), repeats, device)
        rows.append(
            {
                "precision": name,
                "batch_size": batch,
                "images_per_second": round(batch / seconds, 2),
                "peak_memory_mb": _peak_mb(device),
                "peak_reserved_mb": _peak_reserved_mb(device),
            }
        )
    return rows


def _gray_inputs(megapixels: float, count: int) -> list:
    """``count`` gray PIL images of about ``megapixels`` from scikit-image's ``camera``."""
    import skimage.data
    from PIL import Image

    camera = Image.fromarray(skimage.data.camera())
    side = round((megapixels * 1e6) ** 0.5)
    return [camera.resize((side + index, side), Image.Resampling.BILINEAR) for index in range(count)]


def measure_predictor(spec, size: int, megapixels: float, batch: int, repeats: int, device) -> dict:
    """The predictor actor's img/s on batches of ~``megapixels`` gray inputs, squeeze included."""
    from archive_colorizer.colorize.decode import small_gray
    from archive_colorizer.colorize.predictor import Predictor
    from archive_colorizer.models.artifact import load_generator, save_generator

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        model_url = str(Path(folder) / "generator")
        save_generator(spec.build(), model_url, spec=spec, working_size=size)
        sha256 = load_generator(model_url).sha256
        predictor = Predictor(model_url, sha256, size, use_gpu=device.type == "cuda")
        grays = _gray_inputs(megapixels, batch)
        _reset_peak(device)

        def step() -> object:
            return predictor.predict(np.stack([small_gray(gray, size) for gray in grays]))

        seconds = _timed(step, repeats, device)
    return {
        "batch_size": batch,
        "input_megapixels": round(grays[0].width * grays[0].height / 1e6, 3),
        "images_per_second": round(batch / seconds, 2),
        "peak_memory_mb": _peak_mb(device),
        "peak_reserved_mb": _peak_reserved_mb(device),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on any device (automatic without CUDA)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per figure (after 2 warm-up calls)")
    parser.add_argument("--max-batch", type=int, default=None, help="largest forward batch (default 64, tiny 4)")
    options = parser.parse_args(argv)

    import torch

    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.train.precision import resolve_precision

    cuda = torch.cuda.is_available()
    sizes = TINY if options.tiny or not cuda else FULL
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)
    spec = GeneratorSpec(**sizes["spec"])
    generator = spec.build().to(device).eval()
    batches = batch_sizes(options.max_batch or sizes["max_batch"])
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "tiny": sizes is TINY,
        "torch": torch.__version__,
        "generator": {
            **sizes["spec"],
            "size": sizes["size"],
            "parameters": sum(p.numel() for p in generator.parameters()),
        },
        "generator_forward": measure_forward(generator, sizes["size"], batches, options.repeats, device),
        "train_step": measure_train_step(spec, sizes["size"], min(16, batches[-1]), options.repeats, device),
        "predictor": measure_predictor(
            spec, sizes["size"], sizes["megapixels"], min(16, batches[-1]), options.repeats, device
        ),
    }
    report["predictor"]["precision"] = resolve_precision("auto", device).name  # the predictor's autocast rule
    rows = [*report["generator_forward"], *report["train_step"], report["predictor"]]
    peaks = [row["peak_memory_mb"] for row in rows]
    report["peak_memory_mb"] = max(peaks) if cuda else None  # the largest of the figures' peaks (allocated)
    report["peak_reserved_mb"] = max(row["peak_reserved_mb"] for row in rows) if cuda else None
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


if __name__ == "__main__":
    main()
