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

- ``resnet18_unet``: the same forward and train-step figures for the ResNet-18 U-Net generator;
- ``tflops``: each forward figure's achieved TFLOP/s (the generator's FLOPs per image counted
  by torch's ``FlopCounterMode``, a multiply-add as two) and its share of the device's peak
  dense tensor rate in that precision (:data:`PEAK_TFLOPS`, NVIDIA's datasheets; ``--peak-tflops``
  for a device not in the table);
- ``colorize``: colorize's per-image work in one process with the ``tiny`` and the ``demo``
  generator: the CPU milliseconds per image of the work that feeds the GPU (reduced decode and
  squeeze to the model's size, full decode, merge and encode of a ~1.7 MP gray JPEG), the
  GPU milliseconds per image of the predictor at batch 16, the end-to-end img/s of one process
  doing both, and ``cpu_cores_per_gpu``: the cores that keep one GPU busy (CPU ms / GPU ms).

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
COLORIZE_MODELS: dict[str, tuple[dict[str, int], int]] = {
    "tiny": ({"ngf": 8, "num_downs": 5}, 32),
    "demo": ({"ngf": 32, "num_downs": 6}, 128),
}
"""Generators of :func:`measure_colorize`: (U-Net spec, working size), as bench/colorize_throughput.py's."""
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 67.0, "fp16": 989.0, "bf16": 989.0},
    "H100": {"fp32": 67.0, "fp16": 989.0, "bf16": 989.0},
    "A100": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
    "L4": {"fp32": 30.3, "fp16": 121.0, "bf16": 121.0},
    "A10G": {"fp32": 31.2, "fp16": 70.0, "bf16": 70.0},
    "A10": {"fp32": 31.2, "fp16": 125.0, "bf16": 125.0},
    "T4": {"fp32": 8.1, "fp16": 65.0},
    "V100": {"fp32": 15.7, "fp16": 125.0},
}
"""Peak dense TFLOP/s by device name (the first key the CUDA device's name contains), per precision:
fp32 as plain FP32 (cuDNN convolutions may use TF32 tensor cores, which torch allows by default, so
an fp32 share can exceed what plain FP32 gives), fp16/bf16 as dense tensor-core rates without
sparsity; from NVIDIA's datasheets (H100/H200 SXM, A100 SXM, L4, A10, T4, V100 SXM2) and AWS's G5
page (A10G). The order matters: "A10G" before "A10"."""


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
        discriminator = DiscriminatorSpec(ndf=max(8, getattr(spec, "ngf", 64))).build().to(device).train()
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


def peak_tflops(device_name: str, precision: str, override: float | None = None) -> float | None:
    """The device's peak dense TFLOP/s in ``precision`` (:data:`PEAK_TFLOPS`), ``override`` if given, else None."""
    if override:
        return override
    for name, peaks in PEAK_TFLOPS.items():
        if name in device_name:
            return peaks.get(precision)
    return None


def forward_flops_of(generator, size: int) -> float:
    """FLOPs of one forward pass on one (1, 1, size, size) input (torch's count, on the CPU)."""
    from archive_colorizer.plan.measure import forward_flops

    return forward_flops(generator.cpu(), size)


def add_tflops(rows: list[dict], flops_per_image: float, device_name: str, override: float | None) -> None:
    """Add ``achieved_tflops`` and ``share_of_peak`` to forward rows (img/s x FLOPs per image)."""
    for row in rows:
        achieved = row["images_per_second"] * flops_per_image / 1e12
        peak = peak_tflops(device_name, row["precision"], override)
        row["achieved_tflops"] = round(achieved, 4)
        row["share_of_peak"] = round(achieved / peak, 4) if peak else None


def _gray_jpegs(megapixels: float, count: int) -> list[bytes]:
    """``count`` gray JPEGs (quality 90) of about ``megapixels``, as an archive's scans."""
    import io

    out = []
    for image in _gray_inputs(megapixels, count):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def measure_colorize(spec, size: int, megapixels: float, batch: int, repeats: int, device) -> dict:
    """Colorize's per-image work on ~``megapixels`` gray JPEGs in one process: CPU and GPU parts apart.

    CPU: reduced decode and squeeze to ``size`` (the decode stage), full decode, merge and 4:2:0
    encode with metadata (the merge stage). GPU (or CPU without CUDA): the predictor on the
    batch. Returns ms per image of each, the end-to-end rate of one process doing both in turn,
    and the CPU cores that keep one device busy.
    """
    from archive_colorizer import __version__, images
    from archive_colorizer.colorize import decode, encode, merge
    from archive_colorizer.colorize.predictor import Predictor
    from archive_colorizer.models.artifact import load_generator, save_generator

    jpegs = _gray_jpegs(megapixels, batch)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        model_url = str(Path(folder) / "generator")
        save_generator(spec.build(), model_url, spec=spec, working_size=size)
        sha256 = load_generator(model_url).sha256
        predictor = Predictor(model_url, sha256, size, use_gpu=device.type == "cuda", num_threads=1)
        provenance = encode.Provenance(__version__, sha256)
        smalls: list = []
        chroma: list = []

        def squeeze() -> None:
            smalls[:] = [
                decode.small_gray(decode.gray_planes(images.decode(data, draft_size=(256, 256)).image).gray8, size)
                for data in jpegs
            ]

        def predict() -> None:
            chroma[:] = list(predictor.predict(np.stack(smalls)))

        def finish() -> None:
            for data, planes in zip(jpegs, chroma, strict=True):
                merge.render(images.decode(data), planes, "JPEG", provenance, jpeg_chroma="420")

        squeeze_s = _timed(squeeze, repeats, device)
        predict()
        predict_s = _timed(predict, repeats, device)
        finish_s = _timed(finish, repeats, device)
    cpu_ms = (squeeze_s + finish_s) * 1000 / batch
    device_ms = predict_s * 1000 / batch
    return {
        "batch_size": batch,
        "input_megapixels": round(megapixels, 2),
        "cpu_ms_per_image": round(cpu_ms, 2),
        "cpu_ms_per_image_by_stage": {
            "decode_and_squeeze": round(squeeze_s * 1000 / batch, 2),
            "decode_merge_encode": round(finish_s * 1000 / batch, 2),
        },
        "device_ms_per_image": round(device_ms, 3),
        "one_process_images_per_second": round(1000 / (cpu_ms + device_ms), 2),
        "cpu_cores_per_gpu": round(cpu_ms / device_ms, 1) if device.type == "cuda" else None,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on any device (automatic without CUDA)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per figure (after 2 warm-up calls)")
    parser.add_argument("--max-batch", type=int, default=None, help="largest forward batch (default 64, tiny 4)")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's peak TFLOP/s, for a device not in PEAK_TFLOPS"
    )
    options = parser.parse_args(argv)

    import torch

    from archive_colorizer.models import GeneratorSpec, ResNetUNetSpec
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
    name = str(report["device"])
    add_tflops(report["generator_forward"], forward_flops_of(generator, sizes["size"]), name, options.peak_tflops)
    resnet_spec = ResNetUNetSpec()
    resnet = resnet_spec.build().to(device).eval()
    resnet_batches = batches[: max(1, len(batches) - 1)]  # 14.3 M parameters: one batch size fewer
    report["resnet18_unet"] = {
        "size": sizes["size"],
        "parameters": sum(p.numel() for p in resnet.parameters()),
        "generator_forward": measure_forward(resnet, sizes["size"], resnet_batches, options.repeats, device),
        "train_step": measure_train_step(
            resnet_spec, sizes["size"], min(16, resnet_batches[-1]), options.repeats, device
        ),
    }
    add_tflops(
        report["resnet18_unet"]["generator_forward"],
        forward_flops_of(resnet, sizes["size"]),
        name,
        options.peak_tflops,
    )
    report["colorize"] = {
        label: {"ngf": spec_args["ngf"], "num_downs": spec_args["num_downs"], "size": side}
        | measure_colorize(
            GeneratorSpec(**spec_args),
            side,
            sizes["megapixels"],
            min(16, batches[-1]),
            max(1, options.repeats // 2),
            device,
        )
        for label, (spec_args, side) in COLORIZE_MODELS.items()
    }
    rows = [
        *report["generator_forward"],
        *report["train_step"],
        report["predictor"],
        *report["resnet18_unet"]["generator_forward"],
        *report["resnet18_unet"]["train_step"],
    ]
    peaks = [row["peak_memory_mb"] for row in rows]
    report["peak_memory_mb"] = max(peaks) if cuda else None  # the largest of the figures' peaks (allocated)
    report["peak_reserved_mb"] = max(row["peak_reserved_mb"] for row in rows) if cuda else None
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


if __name__ == "__main__":
    main()
