"""A GPU machine's figures for archive-colorizer, without Ray; prints JSON.

On CUDA (pix2pix's ``unet_256`` generator, 256 x 256):

- ``generator_forward``: generator forward img/s at batch sizes 1, 2, 4, ..., 64, in bf16
  (only where the GPU computes it natively), fp16 (autocast, as the predictor actors run it)
  and fp32, with the peak GPU memory of each;
- ``train_step``: one pix2pix GAN step (generator forward, discriminator step, generator
  step; :func:`archive_colorizer.train.step.gan_step`) img/s in what ``--precision auto``
  picks (bf16 where native, else fp16 + GradScaler), and its peak memory;
- ``predictor``: :class:`archive_colorizer.colorize.predictor.Predictor` img/s on batches of
  gray images of about 1.7 MP (their squeeze to the model's size included, as the decode stage
  does it), and its peak memory.

Without CUDA, or with ``--tiny``, everything runs at a tiny size on the CPU (ngf 8, 5 downs,
32 px, batches up to 4, 0.05 MP inputs), so that ``make test`` keeps the script working; the
figures are then only a smoke test.

Usage::

    .venv/bin/python bench/gpu_check.py [--tiny] [--repeats 10] [--max-batch 64]
"""

from __future__ import annotations

import argparse
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


def batch_sizes(most: int) -> list[int]:
    """1, 2, 4, ... up to ``most`` (``most`` itself included)."""
    sizes = [1]
    while sizes[-1] * 2 <= most:
        sizes.append(sizes[-1] * 2)
    return sizes if sizes[-1] == most else [*sizes, most]


def measure_forward(generator, size: int, batches: list[int], repeats: int, device) -> list[dict]:
    """Generator forward img/s and peak memory per batch size, in bf16 autocast and fp32."""
    import torch

    from archive_colorizer.devices import bf16_native

    rows = []
    # bf16 only where the GPU computes it natively (torch emulates it below compute capability 8.0).
    choices = [("bf16", torch.bfloat16)] if bf16_native(device) else []
    if device.type == "cuda":
        choices.append(("fp16", torch.float16))
    for precision, dtype in (*choices, ("fp32", None)):
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
                }
            )
    return rows


def measure_train_step(spec, size: int, batch: int, repeats: int, device) -> dict:
    """pix2pix GAN step (G forward, D step, G step) img/s in bf16 autocast on CUDA (fp32 on CPU)."""
    import torch

    from archive_colorizer.models import DiscriminatorSpec
    from archive_colorizer.train.step import build_pix2pix, gan_step

    generator = spec.build().to(device).train()
    discriminator = DiscriminatorSpec(ndf=max(8, spec.ngf)).build().to(device).train()
    from archive_colorizer.train.precision import resolve_precision

    precision = resolve_precision("auto", device)  # bf16 where native, fp16 + GradScaler on older GPUs, fp32 on CPU
    model = build_pix2pix(
        generator,
        discriminator,
        autocast_dtype=precision.autocast_dtype,
        grad_scaler=lambda: precision.grad_scaler(device),
    )
    l_norm = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    real_ab = (torch.rand(batch, 2, size, size, device=device) * 2 - 1) * 0.5
    _reset_peak(device)
    seconds = _timed(lambda: gan_step(model, l_norm, real_ab), repeats, device)
    return {
        "precision": precision.name,
        "batch_size": batch,
        "images_per_second": round(batch / seconds, 2),
        "peak_memory_mb": _peak_mb(device),
    }


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
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on any device (automatic without CUDA)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per figure (after 2 warm-up calls)")
    parser.add_argument("--max-batch", type=int, default=None, help="largest forward batch (default 64, tiny 4)")
    options = parser.parse_args(argv)

    import torch

    from archive_colorizer.models import GeneratorSpec

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
    peaks = [row["peak_memory_mb"] for row in [*report["generator_forward"], report["train_step"], report["predictor"]]]
    report["peak_memory_mb"] = max(peaks) if cuda else None  # the largest of the figures' peaks (allocated)
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


if __name__ == "__main__":
    main()
