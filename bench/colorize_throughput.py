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
- ``floor_parallel``: the floor in ``cores`` processes at once (spawned before Ray starts), the
  files dealt evenly among them; each process imports and waits at a barrier before its clock
  starts, and the rate is all the images over the wall time from the earliest start to the
  latest end (``time.monotonic``, one clock for the machine). What the machine's cores do
  together on the codecs alone.
- ``model_only``: the generator's forward pass on pre-decoded batches of ``--batch-size``
  gray images at its working size, one torch thread. The compute floor.
- ``naive``: one process, no Ray: the job's per-image work in a plain loop (reduced decode,
  small gray, the generator on one image, full decode, merge, encode with metadata, write).
- ``fused_one_process``: the fused stage's batch function on batches of ``--task-batch-size``
  listing rows in one process without Ray: the job's per-image work as its tasks do it.
- ``fused_parallel``: ``fused_one_process`` in ``cores`` processes at once, as ``floor_parallel``,
  each on its own share of the files (its own input and output folder), the generator loaded
  before the barrier: the job's per-image work on every core with no pipeline around it.
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
- ``cpu_ms_per_image`` (with ``--marginal M``): CPU ms (user + system, psutil) per marginal image
  of every process of the job on this machine: this process and all below it, read before and
  after each warm job and the marginal job (outside their clocks, with one more warm job on the N
  images), the marginal job's less the least of the warm jobs' (a worker's first torch import
  lands in one job or another), over ``M - N``. By kind: ``workers`` (Ray's worker processes: ``default_worker.py``
  or a ``ray::`` title, Ray's agents aside), ``driver`` (this process; also the benchmark's own
  small work), ``ray_other`` (GCS, raylet, agents, monitor and log processes), and ``total``. A
  process that ends between two reads is missing (its CPU is lost). On a real cluster only
  ``workers`` run on the GPU nodes: the driver and the GCS sit on the head node.

- ``stages_ms_per_image`` (with ``--stages``): ms per image of decode, model, merge, encode
  and write in one process, for the 4:4:4 route (Pillow's merge and encode, the route before
  4:2:0) and the 4:2:0 route.

The ratios ``pipeline_over_naive``, ``pipeline_over_ideal`` and ``pipeline_over_cores_fused``
(the rate against ``cores x fused_one_process``: what Ray's own work costs; also for the warm
and marginal rates) are what the README reports.

``pipeline_marginal_over_ideal`` (nearly the marginal rate / (cores x ``floor``) when the forward
pass is a small part of ``ideal``, as with the tiny model) multiplies three things that these
ratios take apart; exactly, marginal / (cores x ``floor``) = ``fused_over_floor`` x
``fused_parallel_scaling`` x ``pipeline_marginal_over_fused_parallel`` (when processes = cores):

- ``fused_over_floor`` = ``fused_one_process`` / ``floor`` (one process each): the job's own
  per-image work against the codecs alone.
- ``parallel_scaling`` = ``floor_parallel`` / (processes x ``floor``): how the machine's cores
  scale on plain work run in as many processes (the machine's, not the job's).
  ``fused_parallel_scaling`` = ``fused_parallel`` / (processes x ``fused_one_process``) is the
  same for the job's per-image work (so ``pipeline_marginal_over_cores_fused`` =
  ``fused_parallel_scaling`` x ``pipeline_marginal_over_fused_parallel``).
- ``pipeline_marginal_over_fused_parallel`` (and ``pipeline_warm_over_fused_parallel``) = the rate
  / ``fused_parallel``: what the pipeline costs (Ray Data, the driver, the GCS, raylet and agents
  on the same cores) against the same per-image work in ``cores`` plain processes at once.
- ``node_efficiency`` = (``floor`` + ``model_only`` seconds per image) / (``cpu_ms_per_image``
  ``workers`` / 1000): the codec floor's and the forward pass's CPU over the CPU the worker
  processes spent per image, what a GPU node's cores would spend (with ``--marginal``).
  ``node_efficiency_parallel`` takes the floor's CPU per image from ``floor_parallel`` (processes /
  its rate: every core busy, as the workers' are) instead of from one process on an idle machine:
  CPU time per image grows when every core works (shared cache and memory bandwidth), for the
  codecs as for the job, so this compares like with like.

(``processes`` is ``cores``, or the number of images when there are fewer.)

On one machine the driver, the GCS and Ray Data's executor share the cores with the workers;
``bench/colorize_node.py`` measures the same job on a worker node with cores of its own and the
head on the others, as a GPU node and its head run on a cluster.

Usage::

    .venv/bin/python bench/colorize_throughput.py [--images 200] [--megapixels 1.5] [--model demo]
        [--marginal 600] [--workdir DIR] [--skip-naive] [--task-batch-size 16] [--batch-size 16]
        [--actors 1] [--cpus-per-actor C] [--cpus-per-task C] [--input-list] [--stages] [--skip-parallel]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import local_ray, print_report  # noqa: E402

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
    loop = prepare_floor(files, colour, chroma)
    start = time.perf_counter()
    done = loop()
    return rate(done, time.perf_counter() - start)


def prepare_floor(
    files: list[Path], colour: bool = True, chroma: str = "420", output: Path | None = None
) -> Callable[[], int]:
    """:func:`measure_floor`'s timed part, its imports done: a callable that runs the loop on ``files``
    and returns how many it did (for :func:`measure_parallel`, which starts it in several processes).

    With ``output`` (a folder, made here), each encoded JPEG is also written there under its input's
    name, one plain ``open``/``write`` (the output write the job cannot avoid; the folder is emptied first).
    """
    import simplejpeg  # noqa: F401  (imported here, outside the clock)

    import archive_colorizer.colorize.encode  # noqa: F401

    if output is not None:
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
    return functools.partial(_floor_loop, files, colour, chroma, output)


def _floor_loop(files: list[Path], colour: bool, chroma: str, output: Path | None = None) -> int:
    """The floor's loop (see :func:`measure_floor` and :func:`prepare_floor`); returns the number of files done."""
    import simplejpeg

    from archive_colorizer.colorize.encode import _luma_with_margin

    for path in files:
        image: Image.Image = Image.open(io.BytesIO(path.read_bytes()))
        image.load()
        if colour and chroma == "420":
            # libjpeg-turbo reads up to 16 rows and columns past the plane (encode._luma_with_margin):
            # without the margin the job pays for too, the read may leave the array's memory (a crash).
            luma = _luma_with_margin(np.asarray(image))
            half = ((luma.shape[0] + 1) // 2, (luma.shape[1] + 1) // 2)
            encoded: Any = simplejpeg.encode_jpeg_yuv_planes(
                luma, np.full(half, 118, np.uint8), np.full(half, 140, np.uint8), 95
            )
        else:
            if colour:
                image = Image.merge("YCbCr", (image, Image.new("L", image.size, 118), Image.new("L", image.size, 140)))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=95, subsampling=0 if colour else -1)
            encoded = buffer.getbuffer()  # no copy: the floor's timing is as before when nothing is written
        if output is not None:
            (output / path.name).write_bytes(encoded)
    return len(files)


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
    generator, merge, encode, write, manifest rows). The generator and the chroma limit's compiled
    kernels are loaded before the clock."""
    run = prepare_fused(inputs, model_url, output, batch_size, chroma)
    start = time.perf_counter()
    done = run()
    return rate(done, time.perf_counter() - start)


def prepare_fused(inputs: Path, model_url: str, output: Path, batch_size: int, chroma: str) -> Callable[[], int]:
    """:func:`measure_fused_one_process`'s set-up (one torch thread, the generator loaded, the listing rows
    of ``inputs`` in batches): returns a callable that runs the timed part, the batch function on every
    batch, and returns the number of rows done."""
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
    fused.warm(predictor_args)  # the generator and the chroma limit's kernels, as the job's prewarm loads them
    tables = [manifest.to_table(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    return lambda: sum(fused.colorize_batch(table, settings, predictor_args).num_rows for table in tables)


_BARRIER: Any = None
"""In a process of :func:`measure_parallel`'s pool: the barrier its processes wait on before their clocks start."""


def _keep_barrier(barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier


def _timed_part(task: tuple[Callable[..., Callable[[], int]], tuple]) -> tuple[float, float, int]:
    """In a pool process: prepare ``task`` (a ``prepare_*`` function and its arguments), wait for every
    other process to be ready, run the timed part. Returns (start, end, images), the times by
    ``time.monotonic`` (CLOCK_MONOTONIC: one clock for every process of the machine)."""
    prepare, args = task
    try:
        run = prepare(*args)
    except BaseException:
        _BARRIER.abort()  # the other processes stop waiting
        raise
    _BARRIER.wait(timeout=600)
    start = time.monotonic()
    done = run()
    return start, time.monotonic(), done


def measure_parallel(prepare: Callable[..., Callable[[], int]], parts: list[tuple]) -> dict:
    """``prepare(*args)``'s timed part in one new process per ``args`` of ``parts``, all at once.

    The processes are spawned (not forked: a Ray may be running in this one) and each imports and
    prepares its part before a barrier, so interpreter start-up, imports and model loads are not
    timed. The rate is every process's images over the wall time from the earliest start of a timed
    part to the latest end; ``seconds_each`` is each process's own time (a straggler shows there).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(parts))
    with context.Pool(len(parts), initializer=_keep_barrier, initargs=(barrier,)) as pool:
        # One task per process: a process that took its part waits at the barrier, so it cannot take another.
        results = pool.map(_timed_part, [(prepare, args) for args in parts], chunksize=1)
    starts, ends, done = zip(*results, strict=True)
    each = [round(end - start, 3) for start, end in zip(starts, ends, strict=True)]
    return rate(sum(done), max(ends) - min(starts)) | {"processes": len(parts), "seconds_each": each}


def split(files: list[Path], parts: int) -> list[list[Path]]:
    """``files`` dealt into ``parts`` lists (every ``parts``-th file each), as even as the count allows."""
    return [files[index::parts] for index in range(parts)]


def measure_floor_parallel(files: list[Path], processes: int, chroma: str) -> dict:
    """``floor_parallel``: :func:`measure_floor` on an even share of ``files`` in each of ``processes``
    processes at once: what the machine's cores do together on the codecs alone."""
    return measure_parallel(prepare_floor, [(part, True, chroma) for part in split(files, processes)])


def measure_fused_parallel(
    files: list[Path], processes: int, workdir: Path, model_url: str, batch_size: int, chroma: str
) -> dict:
    """``fused_parallel``: :func:`measure_fused_one_process` in each of ``processes`` processes at once,
    each on its own share of ``files`` (its own input folder and output folder under ``workdir``)."""
    parts = [
        (
            exact_folder(part, workdir / f"in-fused-{index}"),
            model_url,
            workdir / f"out-fused-{index}",
            batch_size,
            chroma,
        )
        for index, part in enumerate(split(files, processes))
    ]
    return measure_parallel(prepare_fused, parts)


CPU_KINDS = ("workers", "driver", "ray_other")


def job_cpu() -> dict[tuple[int, float], tuple[str, float]]:
    """CPU seconds (user + system) so far of this process (the driver) and every process below it
    (a local Ray's GCS, raylet, agents and workers), by (pid, start time): (kind, seconds).

    The kinds: ``driver`` this process; ``workers`` Ray's worker processes (``default_worker.py`` in
    their command line, or a ``ray::`` process title: ``ray::IDLE``, a task's or an actor's name) but
    Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``: a ``ray::`` title ending in
    ``Agent``); ``ray_other`` every other one (GCS, raylet, the agents, the monitor and log processes).
    """
    me = os.getpid()

    def kind(process: Any) -> str:
        name, cmdline = process.name(), " ".join(process.cmdline())
        if process.pid == me:
            return "driver"
        if "default_worker.py" in cmdline or (
            (name.startswith("ray::") or cmdline.startswith("ray::")) and not cmdline.rstrip().endswith("Agent")
        ):
            return "workers"
        return "ray_other"

    return process_cpu(kind)


def process_cpu(kind: Callable[[Any], str]) -> dict[tuple[int, float], tuple[str, float]]:
    """CPU seconds (user + system) so far of this process and every process below it, by (pid, start
    time): (``kind(process)``, seconds), ``kind`` called on each ``psutil.Process`` (in its ``oneshot``).
    A process that ends meanwhile is left out."""
    import psutil

    me = psutil.Process()
    snapshot = {}
    for process in [me, *me.children(recursive=True)]:
        try:
            with process.oneshot():
                key, times = (process.pid, process.create_time()), process.cpu_times()
                snapshot[key] = (kind(process), times.user + times.system)
        except psutil.Error:  # ended meanwhile
            continue
    return snapshot


def cpu_used(before: dict, after: dict, kinds: tuple[str, ...] = CPU_KINDS) -> dict[str, float]:
    """CPU seconds by kind (each of ``kinds``) between two :func:`process_cpu` snapshots; a process only
    in ``after`` counts from 0 (one that ended in between is missing: its CPU is lost)."""
    used = dict.fromkeys(kinds, 0.0)
    for key, (kind, seconds) in after.items():
        used[kind] += seconds - before.get(key, (kind, 0.0))[1]
    return used


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
    }
    return print_report(report)


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
    from archive_colorizer import __version__, gamut
    from archive_colorizer.colorize import encode
    from archive_colorizer.colorize.predictor import Predictor
    from archive_colorizer.models.artifact import load_generator

    gamut.warm()  # the chroma limit's compiled kernels loaded before any clock, as the job's prewarm does
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
    inputs: Path, files: list[Path], output: Path, model_url: str, options: argparse.Namespace, cpu: bool = False
) -> dict:
    """The whole job on ``files`` on a local Ray with every core of this machine.

    The files are INPUT, a folder holding exactly them (hard links), or with ``--input-list``
    the lines of an input list (which adds the duplicate-finding actor's start to the job).
    With ``cpu``, also ``cpu_seconds``: the CPU the job took by kind of process (:func:`cpu_used`).
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
    before = job_cpu() if cpu else {}
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the job's summary table; stdout carries the JSON
        result = run(config)
    seconds = time.perf_counter() - start
    figure = rate(result.inputs, seconds) | {"counts": result.counts, "settings": values}
    if cpu:
        figure["cpu_seconds"] = cpu_used(before, job_cpu())
    return figure


def measure_marginal(
    inputs: Path, all_files: list[Path], workdir: Path, model_url: str, options: argparse.Namespace, warm: list[dict]
) -> tuple[dict, dict]:
    """``pipeline_marginal`` and ``cpu_ms_per_image``, on the warm Ray: a job on the first ``--marginal``
    files, its rate taken past the fastest of ``warm`` (the warm jobs on the first ``--images`` files,
    measured with ``cpu``), then one more warm job on those files.

    The CPU of the driver and every process below it is read before and after each job (outside
    their clocks); the marginal job's less that of the warm job that took the least CPU in all, over
    the extra images, is the CPU per marginal image by kind (see :func:`job_cpu`) and in total. The
    least, not the last: a worker process that loads torch and the generator for the first time
    (the job's pre-warm tasks land where Ray puts them) adds 1-3 s of CPU to whichever job it falls
    in, which over a few hundred images would swamp the figure. ``warm_jobs_cpu_seconds`` and
    ``marginal_job_cpu_seconds`` are the jobs' totals, to see that spread.
    """
    more = measure_pipeline(inputs, all_files[: options.marginal], workdir / "out-marginal", model_url, options, True)
    extra_images = options.marginal - options.images
    marginal = rate(extra_images, more["seconds"] - min(run["seconds"] for run in warm))
    again = measure_pipeline(inputs, all_files[: options.images], workdir / "out-warm", model_url, options, True)
    warm_cpu = [run["cpu_seconds"] for run in [*warm, again]]
    least = min(warm_cpu, key=lambda cpu: sum(cpu.values()))
    per_image = {kind: 1000 * (more["cpu_seconds"][kind] - least[kind]) / extra_images for kind in CPU_KINDS}
    per_image["total"] = sum(per_image.values())
    return marginal, {name: round(value, 3) for name, value in per_image.items()} | {
        "images": extra_images,
        "warm_jobs_cpu_seconds": [round(sum(cpu.values()), 2) for cpu in warm_cpu],
        "marginal_job_cpu_seconds": round(sum(more["cpu_seconds"].values()), 2),
    }


def factors(report: dict) -> dict[str, float]:
    """The ratios that split ``pipeline_marginal_over_ideal`` into the job's per-image work, the machine's
    parallel scaling and the pipeline's cost (see the module's docstring), those the report's figures allow."""
    ips = {
        name: figure["images_per_second"]
        for name, figure in report.items()
        if isinstance(figure, dict) and "images_per_second" in figure
    }
    ratios = {"fused_over_floor": ips["fused_one_process"] / ips["floor"]}
    if "floor_parallel" in report:
        ratios["parallel_scaling"] = ips["floor_parallel"] / (report["floor_parallel"]["processes"] * ips["floor"])
    if "fused_parallel" in report:
        processes = report["fused_parallel"]["processes"]
        ratios["fused_parallel_scaling"] = ips["fused_parallel"] / (processes * ips["fused_one_process"])
    workers_ms = report.get("cpu_ms_per_image", {}).get("workers", 0)
    if workers_ms > 0:
        ratios["node_efficiency"] = (1 / ips["floor"] + 1 / ips["model_only"]) / (workers_ms / 1000)
        if "floor_parallel" in report:
            floor_cpu = report["floor_parallel"]["processes"] / ips["floor_parallel"]  # CPU s per image, cores busy
            ratios["node_efficiency_parallel"] = (floor_cpu + 1 / ips["model_only"]) / (workers_ms / 1000)
    return {name: round(value, 4) for name, value in ratios.items()}


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
    parser.add_argument("--skip-parallel", action="store_true", help="skip floor_parallel and fused_parallel")
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
    processes = min(cores, len(files))
    if not options.skip_parallel:
        report["floor_parallel"] = measure_floor_parallel(files, processes, options.chroma)
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
    if not options.skip_parallel:
        report["fused_parallel"] = measure_fused_parallel(
            files, processes, workdir, model_url, options.task_batch_size, options.chroma
        )
    with local_ray(cores, logging_level="WARNING"):
        report["pipeline"] = measure_pipeline(inputs, files, workdir / "out-pipeline", model_url, options)
        marginal = options.marginal > options.images
        warm = [measure_pipeline(inputs, files, workdir / "out-warm", model_url, options, marginal) for _ in range(2)]
        report["pipeline_warm"] = min(warm, key=lambda run: run["seconds"])
        if marginal:
            report["pipeline_marginal"], report["cpu_ms_per_image"] = measure_marginal(
                inputs, all_files, workdir, model_url, options, warm
            )
        report["pipeline_warm"].pop("cpu_seconds", None)  # measure_marginal's
    for name in ("pipeline", "pipeline_warm", "pipeline_marginal"):
        if name not in report:
            continue
        ips = report[name]["images_per_second"]
        if "naive" in report:
            report[f"{name}_over_naive"] = round(ips / report["naive"]["images_per_second"], 4)
        report[f"{name}_over_ideal"] = round(ips / report["ideal"]["images_per_second"], 4)
        fused_ips = report["fused_one_process"]["images_per_second"]
        report[f"{name}_over_cores_fused"] = round(ips / (cores * fused_ips), 4)
        if name != "pipeline" and "fused_parallel" in report:
            report[f"{name}_over_fused_parallel"] = round(ips / report["fused_parallel"]["images_per_second"], 4)
    report.update(factors(report))
    return print_report(report)


if __name__ == "__main__":
    main()
