"""Throughput of the colorize job against its floors, in one run on one machine; prints JSON.

Makes N gray JPEGs of about ``--megapixels`` from scikit-image's photographs (resized, with a
little film grain so that they compress like scans), saves an untrained generator of the
chosen size (``--model``: ``tiny`` ngf 8 / 5 downs / 32 px, ``demo`` the demo's ngf 32 / 6
downs / 128 px, ``unet_256`` pix2pix's default at 256 px), then measures on the same files:

- ``floor``: one process, the codecs alone: decode each JPEG and encode a colour image of its
  size as the job does (``--chroma 420``: 4:2:0 from the planes by libjpeg-turbo, the gray plane
  with the 16-pixel margin libjpeg-turbo reads past it; 444: Pillow from YCbCr; quality 95).
  The I/O and codec floor.
  (``floor_gray`` re-encodes gray instead, for reference.)
- ``model_only``: the generator's forward pass on pre-decoded batches of ``--batch-size``
  gray images at its working size, one torch thread. The compute floor.
- ``naive``: one process, no Ray: the job's per-image work in a plain loop (reduced decode,
  small gray, the generator on one image, full decode, merge, encode with metadata, write).
- ``fused_one_process``: the fused stage's batch function on batches of ``--task-batch-size``
  listing rows in one process without Ray: the job's per-image work as its tasks do it.
- ``pipeline``: the real job, ``archive_colorizer.colorize.run``, on a folder of the N files, on
  a local Ray of every core started before the clock starts: listing, model check, the
  workers' torch import and model load, manifest, summary and review page included. The first
  job on that Ray (``--input-list``: the files as an input list instead).
- ``pipeline_warm``: the same job again on the same Ray (its worker processes already
  running), best of two.
- ``pipeline_marginal`` (with ``--marginal M``): a warm job on M images; the extra ``M - N``
  images over the extra time against ``pipeline_warm``: the rate once start-up is paid.
- ``ideal`` = cores / (seconds per image of ``floor`` + of ``model_only``): the rate if every
  core did nothing but the codec's and the model's work.

- ``stages_ms_per_image`` (with ``--stages``): ms per image of decode, model, merge, encode
  and write in one process, for the 4:4:4 route (Pillow's merge and encode, the route before
  4:2:0) and the 4:2:0 route.

The ratios ``pipeline_over_naive``, ``pipeline_over_ideal`` and ``pipeline_over_cores_fused``
(the rate against ``cores x fused_one_process``: what Ray's own work costs; also for the warm
and marginal rates) are what the README reports.

Usage::

    .venv/bin/python bench/colorize_throughput.py [--images 200] [--megapixels 1.5] [--model demo]
        [--marginal 600] [--workdir DIR] [--skip-naive] [--task-batch-size 16] [--batch-size 16]
        [--actors 1] [--cpus-per-actor C] [--cpus-per-task C] [--input-list] [--stages]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import local_ray  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera")


def make_inputs(folder: Path, count: int, megapixels: float, seed: int = 0) -> float:
    """Write ``count`` gray JPEGs (quality 90) of about ``megapixels`` each; returns their mean megapixels."""
    import skimage.data

    rng = np.random.default_rng(seed)
    sources = [np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("L")) for name in PHOTOS]
    folder.mkdir(parents=True, exist_ok=True)
    sizes = []
    for index in range(count):
        source = sources[index % len(sources)]
        height, width = source.shape
        scale = (megapixels * 1e6 / (height * width)) ** 0.5 * rng.uniform(1.0, 1.15)
        image = Image.fromarray(source).resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)
        if index % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        grain = rng.normal(0, 3.0, (image.height, image.width))
        image = Image.fromarray(np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8))
        image.save(folder / f"scan_{index:05d}.jpg", quality=90, dpi=(300, 300))
        sizes.append(image.width * image.height / 1e6)
    return float(np.mean(sizes))


def existing_or_new_inputs(folder: Path, count: int, megapixels: float) -> list[Path]:
    """The JPEGs in ``folder``, made anew unless there are at least ``count``."""
    if len(list(folder.glob("*.jpg"))) < count:
        shutil.rmtree(folder, ignore_errors=True)
        make_inputs(folder, count, megapixels)
    return sorted(folder.glob("*.jpg"))


MODELS: dict[str, tuple[dict[str, Any], int]] = {
    "tiny": ({"ngf": 8, "num_downs": 5}, 32),
    "demo": ({"ngf": 32, "num_downs": 6}, 128),
    "unet_256": ({"ngf": 64, "num_downs": 8}, 256),
    "resnet18_unet": ({"kind": "resnet18_unet"}, 128),
    "resnet18_unet_256": ({"kind": "resnet18_unet"}, 256),
}
"""Generators to measure with: spec keywords (``kind`` picks the generator kind, default the U-Net) and
working size in pixels (``resnet18_unet`` at the demo's 128, ``resnet18_unet_256`` at 256)."""


def rate(images: int, seconds: float) -> dict:
    """The JSON figure of ``images`` done in ``seconds``."""
    return {"images": images, "seconds": round(seconds, 3), "images_per_second": round(images / seconds, 3)}


def measure_floor(files: list[Path], colour: bool = True, chroma: str = "420") -> dict:
    """Decode + encode at quality 95 in one process: a colour JPEG as the job writes it, or gray.

    ``chroma`` 420: libjpeg-turbo (simplejpeg) from the gray as Y and constant half-size Cb, Cr
    planes; 444: Pillow from a full-size YCbCr image.
    """
    import simplejpeg

    from archive_colorizer.colorize.encode import _luma_with_margin

    start = time.perf_counter()
    for path in files:
        image: Image.Image = Image.open(io.BytesIO(path.read_bytes()))
        image.load()
        if colour and chroma == "420":
            # libjpeg-turbo reads up to 16 rows and columns past the plane (encode._luma_with_margin):
            # without the margin the job pays for too, the read may leave the array's memory (a crash).
            luma = _luma_with_margin(np.asarray(image))
            half = ((luma.shape[0] + 1) // 2, (luma.shape[1] + 1) // 2)
            simplejpeg.encode_jpeg_yuv_planes(luma, np.full(half, 118, np.uint8), np.full(half, 140, np.uint8), 95)
            continue
        if colour:
            image = Image.merge("YCbCr", (image, Image.new("L", image.size, 118), Image.new("L", image.size, 140)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95, subsampling=0 if colour else -1)
    return rate(len(files), time.perf_counter() - start)


def measure_stages(files: list[Path], model_url: str, output: Path, chroma: str, once: bool = False) -> dict:
    """Milliseconds per image of each stage of the per-image path, one process, one torch thread.

    decode: full decode of the input; model: reduced decode, squeeze, generator, chroma (with
    ``once``, as the fused stage does: no reduced decode, the squeeze from the full decode);
    merge: the chroma joined with the gray (half-size planes for 420, a full YCbCr image for
    444); encode: the JPEG with its metadata; write: the file written.
    """
    from archive_colorizer import chroma420, color, images
    from archive_colorizer.colorize import decode, encode

    predictor, working_size, provenance = load_predictor(model_url)
    output.mkdir(parents=True, exist_ok=True)
    spent = dict.fromkeys(("decode", "model", "merge", "encode", "write"), 0.0)
    for path in files:
        data = path.read_bytes()
        clock = time.perf_counter()
        if once:
            decoded = images.decode(data)
            gray = decode.gray_planes(decoded.image).gray8
            clock, spent["decode"] = time.perf_counter(), spent["decode"] + time.perf_counter() - clock
            chroma_small = predictor.predict(decode.small_gray(gray, working_size)[None])[0]
            clock, spent["model"] = time.perf_counter(), spent["model"] + time.perf_counter() - clock
        else:
            small = images.decode(data, draft_size=(256, 256))
            small_gray = decode.small_gray(decode.gray_planes(small.image).gray8, working_size)
            chroma_small = predictor.predict(small_gray[None])[0]
            clock, spent["model"] = time.perf_counter(), spent["model"] + time.perf_counter() - clock
            decoded = images.decode(data)
            gray = decode.gray_planes(decoded.image).gray8
            clock, spent["decode"] = time.perf_counter(), spent["decode"] + time.perf_counter() - clock
        meta = encode.OutputMetadata.from_input(decoded.info, decoded.image.size, provenance)
        if chroma == "420":
            luma = np.asarray(gray)
            cb, cr = chroma420.chroma_planes_420(luma, chroma_small)
            clock, spent["merge"] = time.perf_counter(), spent["merge"] + time.perf_counter() - clock
            out = encode.encode_jpeg_planes(luma, cb, cr, meta, 95)
        else:
            ycbcr = color.merge_full_resolution(gray, chroma_small)
            clock, spent["merge"] = time.perf_counter(), spent["merge"] + time.perf_counter() - clock
            out = encode.encode_jpeg(ycbcr, meta, 95)
        clock, spent["encode"] = time.perf_counter(), spent["encode"] + time.perf_counter() - clock
        (output / path.name).write_bytes(out)
        spent["write"] += time.perf_counter() - clock
    return {name: round(1000 * seconds / len(files), 2) for name, seconds in spent.items()}


def exact_folder(files: list[Path], folder: Path) -> Path:
    """``folder`` made anew holding exactly ``files`` (hard links, copies where links fail)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in files:
        try:
            os.link(path, folder / path.name)
        except OSError:  # a file system without hard links
            shutil.copy2(path, folder / path.name)
    return folder


def measure_fused_one_process(inputs: Path, model_url: str, output: Path, batch_size: int, chroma: str) -> dict:
    """The fused stage's own batch function (:func:`archive_colorizer.colorize.fused.colorize_batch`) on
    batches of ``batch_size`` listing rows, in this process, one torch thread, no Ray: the job's
    per-image work as the pipeline's tasks do it (read, decode once, colour check, squeeze, batched
    generator, merge, encode, write, manifest rows). The generator is loaded before the clock."""
    import datetime as dt

    import torch

    from archive_colorizer import __version__
    from archive_colorizer.colorize import fused, input_rows, manifest
    from archive_colorizer.colorize.stage_settings import StageSettings
    from archive_colorizer.models.artifact import load_generator

    torch.set_num_threads(1)
    shutil.rmtree(output, ignore_errors=True)
    artifact = load_generator(model_url)
    roots = input_rows.Roots.resolve(str(inputs), str(output), {})
    rows = [r for chunk in input_rows.iter_unit_rows(roots, roots.input_path, True, (".jpg",), "auto") for r in chunk]
    run = manifest.RunInfo("bench", dt.datetime.now(dt.timezone.utc), artifact.sha256, __version__)
    settings = StageSettings(
        output_url=str(output),
        model_size=artifact.working_size,
        max_pixels=10**9,
        on_color="skip",
        color_threshold=4.0,
        overwrite=False,
        jpeg_quality=95,
        run=run,
        jpeg_chroma=chroma,
    )
    predictor_args = {
        "model_url": model_url,
        "expected_sha256": artifact.sha256,
        "model_size": artifact.working_size,
        "num_threads": 1,
    }
    fused.cached_predictor(predictor_args)
    tables = [manifest.to_table(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    start = time.perf_counter()
    done = sum(fused.colorize_batch(table, settings, predictor_args).num_rows for table in tables)
    return rate(done, time.perf_counter() - start)


def measure_model_only(model_url: str, images: int, batch_size: int) -> dict:
    """The generator's forward pass on pre-decoded gray batches at its working size, one torch thread."""
    import torch

    from archive_colorizer.models.artifact import load_generator

    torch.set_num_threads(1)
    artifact = load_generator(model_url)
    size = artifact.working_size
    batch = torch.rand(batch_size, 1, size, size) * 2 - 1  # L/50 - 1
    with torch.inference_mode():
        artifact.generator(batch[:1])  # allocator and kernels warmed
        start = time.perf_counter()
        done = 0
        while done < images:
            count = min(batch_size, images - done)
            artifact.generator(batch[:count])
            done += count
        seconds = time.perf_counter() - start
    return rate(images, seconds) | {"batch_size": batch_size, "threads": 1}


def _model_only_report(spec, spec_args: dict, working_size: int, model_url: str, options) -> dict:
    """``--model-only``: the generator's size and its model_only rate, as JSON on stdout."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            spec.build().eval()(torch.zeros(1, 1, working_size, working_size))
    report = {
        "model": f"untrained {type(spec).__name__}({spec_args}), working size {working_size} ({options.model})",
        "parameters": sum(p.numel() for p in spec.build().parameters()),
        "gflop_per_image": round(counter.get_total_flops() / 1e9, 3),
        "load_average_before": round(os.getloadavg()[0], 2),
        "model_only": measure_model_only(model_url, options.images, options.batch_size),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


def colorize_one(data: bytes, predictor, working_size: int, provenance, jpeg_chroma: str = "420") -> bytes:
    """The job's per-image work on one gray JPEG, without Ray: reduced decode, small gray, the
    generator on one image, full decode, merge, encode with metadata. Returns the output JPEG."""
    from archive_colorizer import images
    from archive_colorizer.colorize import decode, merge

    small = images.decode(data, draft_size=(256, 256))
    gray = decode.small_gray(decode.gray_planes(small.image).gray8, working_size)
    del small
    chroma = predictor.predict(gray[None])[0]
    return merge.render(images.decode(data), chroma, "JPEG", provenance, jpeg_chroma=jpeg_chroma)


def load_predictor(model_url: str):
    """(predictor with one torch thread, working size, provenance label) for :func:`colorize_one`."""
    from archive_colorizer import __version__
    from archive_colorizer.colorize import encode
    from archive_colorizer.colorize.predictor import Predictor
    from archive_colorizer.models.artifact import load_generator

    artifact = load_generator(model_url)
    predictor = Predictor(model_url, artifact.sha256, artifact.working_size, num_threads=1)
    return predictor, artifact.working_size, encode.Provenance(__version__, artifact.sha256)


def measure_naive(files: list[Path], model_url: str, output: Path, chroma: str = "420") -> dict:
    """The job's per-image work in one process, one image at a time, no Ray."""
    predictor, working_size, provenance = load_predictor(model_url)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for path in files:
        out = colorize_one(path.read_bytes(), predictor, working_size, provenance, chroma)
        (output / path.name).write_bytes(out)
    return rate(len(files), time.perf_counter() - start)


def measure_pipeline(
    inputs: Path, files: list[Path], output: Path, model_url: str, options: argparse.Namespace
) -> dict:
    """The whole job on ``files`` on a local Ray with every core of this machine.

    The files are INPUT, a folder holding exactly them (hard links), or with ``--input-list``
    the lines of an input list (which adds the duplicate-finding actor's start to the job).
    """
    from archive_colorizer.colorize import run
    from archive_colorizer.colorize.config import ColorizeConfig

    shutil.rmtree(output, ignore_errors=True)
    listing = None
    if options.input_list:
        listing = output.with_suffix(".txt")
        listing.write_text("".join(f"{path.name}\n" for path in files))
    else:  # a folder of exactly these files, as a user's archive folder
        inputs = exact_folder(files, output.with_name(output.name + "-in"))
    values = {"task_batch_size": options.task_batch_size, "batch_size": options.batch_size, "chroma": options.chroma}
    for name in ("actors", "cpus_per_actor", "cpus_per_task"):
        if getattr(options, name) is not None:
            values[name] = getattr(options, name)
    config = ColorizeConfig(
        input=str(inputs),
        output=str(output),
        model=model_url,
        input_list=str(listing) if listing else None,
        progress=False,
        **values,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the job's summary table; stdout carries the JSON
        result = run(config)
    return rate(result.inputs, time.perf_counter() - start) | {"counts": result.counts, "settings": values}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--marginal", type=int, default=0, help="also run a warm job on this many images (> --images)")
    parser.add_argument("--megapixels", type=float, default=1.5)
    parser.add_argument("--model", choices=sorted(MODELS), default="demo", help="generator size (default: the demo's)")
    parser.add_argument("--workdir", default=None, help="where inputs and outputs go (default: a temporary folder)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--model-only", action="store_true", help="measure only model_only (e.g. to compare generator kinds)"
    )
    parser.add_argument("--task-batch-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--actors", type=int, nargs="+", default=None)
    parser.add_argument("--cpus-per-actor", type=float, default=None, help="default: the job's")
    parser.add_argument("--cpus-per-task", type=float, default=None, help="default: the job's")
    parser.add_argument("--chroma", choices=["420", "444"], default="420", help="JPEG chroma of the outputs")
    parser.add_argument(
        "--input-list", action="store_true", help="give the pipeline its inputs as an input list, not a folder"
    )
    parser.add_argument("--stages", action="store_true", help="also report ms per image of each stage, both chromas")
    options = parser.parse_args(argv)

    from archive_colorizer.models import generator_spec
    from archive_colorizer.models.artifact import save_generator

    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="colorize-bench-"))
    spec_args, working_size = MODELS[options.model]
    spec = generator_spec(spec_args)
    model_url = str(workdir / f"model-{options.model}")
    save_generator(spec.build(), model_url, spec=spec, working_size=working_size)
    if options.model_only:
        return _model_only_report(spec, spec_args, working_size, model_url, options)
    inputs = workdir / "in"
    all_files = existing_or_new_inputs(inputs, max(options.images, options.marginal), options.megapixels)
    files = all_files[: options.images]
    megapixels = float(np.mean([np.prod(Image.open(p).size) / 1e6 for p in files]))
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {
        "images": len(files),
        "mean_megapixels": round(megapixels, 3),
        "cores": cores,
        "load_average_before": round(os.getloadavg()[0], 2),
        "model": f"untrained {type(spec).__name__}({spec_args}), working size {working_size} ({options.model})",
        "floor": measure_floor(files, chroma=options.chroma),
        "floor_gray": measure_floor(files, colour=False),
        "model_only": measure_model_only(model_url, len(files), options.batch_size),
    }
    per_image = 1 / report["floor"]["images_per_second"] + 1 / report["model_only"]["images_per_second"]
    report["ideal"] = {
        "images_per_second": round(cores / per_image, 3),
        "formula": "cores / (floor + model_only seconds per image)",
    }
    if not options.skip_naive:
        report["naive"] = measure_naive(files, model_url, workdir / "out-naive", options.chroma)
    if options.stages:
        report["stages_ms_per_image"] = {
            chroma: measure_stages(files, model_url, workdir / f"out-stages-{chroma}", chroma)
            for chroma in ("444", "420")
        }
        report["stages_ms_per_image"]["420_decoded_once"] = measure_stages(
            files, model_url, workdir / "out-stages-once", "420", once=True
        )
    report["fused_one_process"] = measure_fused_one_process(
        exact_folder(files, workdir / "in-fused"),
        model_url,
        workdir / "out-fused",
        options.task_batch_size,
        options.chroma,
    )
    with local_ray(cores, logging_level="WARNING"):
        report["pipeline"] = measure_pipeline(inputs, files, workdir / "out-pipeline", model_url, options)
        warm = [measure_pipeline(inputs, files, workdir / "out-warm", model_url, options) for _ in range(2)]
        report["pipeline_warm"] = min(warm, key=lambda run: run["seconds"])
        if options.marginal > options.images:
            more = measure_pipeline(inputs, all_files[: options.marginal], workdir / "out-marginal", model_url, options)
            extra_seconds = more["seconds"] - report["pipeline_warm"]["seconds"]
            report["pipeline_marginal"] = rate(options.marginal - options.images, extra_seconds)
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    for name in ("pipeline", "pipeline_warm", "pipeline_marginal"):
        if name not in report:
            continue
        ips = report[name]["images_per_second"]
        if "naive" in report:
            report[f"{name}_over_naive"] = round(ips / report["naive"]["images_per_second"], 4)
        report[f"{name}_over_ideal"] = round(ips / report["ideal"]["images_per_second"], 4)
        fused_ips = report["fused_one_process"]["images_per_second"]
        report[f"{name}_over_cores_fused"] = round(ips / (cores * fused_ips), 4)
    json.dump(report, sys.stdout, indent=2)
    print()
    return report


if __name__ == "__main__":
    main()
