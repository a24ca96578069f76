"""Time colorize's own per-image stages on a few sampled inputs, here, without Ray.

The measured inputs go through exactly what a fused colorize task runs
(:func:`archive_colorizer.colorize.fused.colorize_batch`): listing rows from
:func:`~archive_colorizer.colorize.input_rows.iter_from_list`, then
:func:`~archive_colorizer.colorize.decode.prepare_batch` (read, reduced decode, colour check,
small gray), a :class:`~archive_colorizer.colorize.predictor.Predictor` with one torch thread
(the generator), and :func:`~archive_colorizer.colorize.merge.finish_batch` (full decode,
merge, encode, write, manifest parts), in batches of ``task_batch_size``, outputs written to a
temporary folder. Each batch function is timed in CPU seconds of the calling thread (what a
Ray task would keep a core busy for, unaffected by other work on a shared machine) and in wall
seconds. A second pass under :mod:`cProfile` splits those totals into read, decode, model,
merge, encode and write. With a CUDA device, the generator is timed on it as well (bf16, the
split stages' predictor actor).
"""

from __future__ import annotations

import cProfile
import datetime as _dt
import os
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from archive_colorizer import __version__, folders, storage
from archive_colorizer.colorize import input_rows, manifest
from archive_colorizer.colorize.decode import prepare_batch
from archive_colorizer.colorize.merge import finish_batch
from archive_colorizer.colorize.stage_settings import StageSettings

STAGES = ("read", "decode", "classify", "model", "merge", "encode", "write")
"""The per-image stages reported: bytes in; Pillow decodes (reduced and full); colour check and small
gray; the generator; full-size chroma merge; the encoder; output and manifest writes."""

_PROFILED = {  # (module path ending, function name) -> stage; cumulative times
    ("archive_colorizer/storage.py", "read_bytes"): "read",
    ("archive_colorizer/storage.py", "write_bytes"): "write",
    ("archive_colorizer/images.py", "decode"): "decode",
    ("archive_colorizer/colorize/encode.py", "encode_jpeg"): "encode",
    ("archive_colorizer/colorize/encode.py", "encode_jpeg_planes"): "encode",
    ("archive_colorizer/colorize/encode.py", "encode_png16"): "encode",
    ("archive_colorizer/colorize/encode.py", "encode_png"): "encode",
    ("archive_colorizer/colorize/encode.py", "encode_tiff"): "encode",
    ("archive_colorizer/colorize/encode.py", "encode_tiff16"): "encode",
}


@dataclass
class StageTimes:
    """Measured cost of colorize's per-image path on ``images`` inputs.

    Attributes:
        images: inputs measured.
        statuses: their manifest statuses (colorized, skipped_color, failed).
        megapixels: pixels of the measured inputs that decoded, in millions.
        input_bytes, output_bytes: bytes read and written (outputs only).
        cpu_seconds: CPU seconds of the calling thread per batch function: ``prepare``
            (decode stage), ``model`` (the predictor) and ``finish`` (merge stage).
        wall_seconds: the same in wall time.
        stage_seconds: the CPU total split into :data:`STAGES` by the profiled pass.
        io_wall_seconds: wall time inside ``read_bytes`` and ``write_bytes``.
        requests: reads and writes made (input GETs, output PUTs, manifest part PUTs).
        model_load_seconds: loading and checking the generator once (a worker's start).
        model_flops: floating-point operations of one forward pass on one image (torch's
            ``FlopCounterMode``: 2 per multiply-add).
        gpu_model_seconds: the generator on one CUDA device for all images, None without one.
        gpu_name: that device's name.
    """

    images: int
    statuses: dict[str, int]
    megapixels: float
    input_bytes: int
    output_bytes: int
    cpu_seconds: dict[str, float]
    wall_seconds: dict[str, float]
    stage_seconds: dict[str, float]
    io_wall_seconds: float
    requests: int
    model_load_seconds: float
    model_flops: float = 0.0
    gpu_model_seconds: float | None = None
    gpu_name: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timed(function: Callable[..., pa.Table], *args: Any) -> tuple[pa.Table, float, float]:
    """(result, wall seconds, CPU seconds of this thread)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.thread_time() - cpu


def _chunks(rows: list[dict[str, Any]], size: int) -> list[pa.Table]:
    return [manifest.to_table(rows[i : i + size]) for i in range(0, len(rows), size)]


def _settings(config: Any, output: str, model_size: int, sha256: str) -> StageSettings:
    run = manifest.RunInfo("plan-measure", _dt.datetime.now(_dt.timezone.utc), sha256, __version__)
    return StageSettings(
        output_url=output,
        model_size=model_size,
        max_pixels=config.max_pixels,
        on_color=config.on_color,
        color_threshold=config.color_threshold,
        overwrite=True,  # overwrite: never look for earlier outputs
        jpeg_quality=config.jpeg_quality,
        run=run,
        storage_options=dict(config.storage_options),
        concurrent_requests=1,  # one request at a time, on this thread: each is timed (the projection overlaps them)
    )


def _profiled(profile: cProfile.Profile) -> dict[str, float]:
    """Cumulative seconds inside the functions of :data:`_PROFILED`, per stage."""
    found: dict[str, float] = {}
    # Stats.stats (per (file, line, function): calls, times, callers) is public but missing from typeshed.
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in stats.items():
        for (ending, function), stage in _PROFILED.items():
            if name == function and filename.replace(os.sep, "/").endswith(ending):
                found[stage] = found.get(stage, 0.0) + cumulative
    return found


def _profile_split(
    tables: list[pa.Table], settings: StageSettings, predictor: Any, cpu_seconds: dict[str, float]
) -> tuple[dict[str, float], float]:
    """Run the batches again under cProfile, one profile per batch function.

    Returns:
        The CPU seconds of each batch function (``cpu_seconds``) split into :data:`STAGES` in
        the proportions profiled (decode stage: read, decode, the rest is ``classify``;
        merge stage: decode, encode, write, the rest is ``merge``), and the wall seconds spent
        in reads and writes.
    """
    profiles = {name: cProfile.Profile() for name in ("prepare", "finish")}
    totals = {"prepare": 0.0, "finish": 0.0}
    for table in tables:
        for name, function in (("prepare", prepare_batch), ("finish", finish_batch)):
            start = time.perf_counter()
            profiles[name].enable()
            table = function(table, settings)
            profiles[name].disable()
            totals[name] += time.perf_counter() - start
            if name == "prepare":
                table = predictor(table)
    split = dict.fromkeys(STAGES, 0.0)
    split["model"] = cpu_seconds["model"]
    io_wall = 0.0
    for name, rest_stage in (("prepare", "classify"), ("finish", "merge")):
        found = _profiled(profiles[name])
        io_wall += found.get("read", 0.0) + found.get("write", 0.0)
        scale = cpu_seconds[name] / max(totals[name], 1e-9)  # profiled wall -> unprofiled CPU seconds
        for stage, seconds in found.items():
            split[stage] += seconds * scale
        split[rest_stage] += max(0.0, totals[name] - sum(found.values())) * scale
    return split, io_wall


def _gpu_seconds(config: Any, artifact_sha: str, model_size: int, prepared: list[pa.Table]) -> tuple[float, str]:
    """The generator on the first CUDA device over the prepared batches (after one warm-up batch)."""
    import torch

    from archive_colorizer.colorize.predictor import Predictor

    predictor = Predictor(config.model, artifact_sha, model_size, True, 1, config.storage_options)
    predictor(prepared[0])
    torch.cuda.synchronize()
    start = time.perf_counter()
    for table in prepared:
        predictor(table)
    torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.get_device_name(0)


def forward_flops(generator: Any, model_size: int) -> float:
    """FLOPs of one forward pass of ``generator`` on one (1, 1, S, S) input, counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        generator(torch.zeros(1, 1, model_size, model_size))
    return float(counter.get_total_flops())


def measure_stages(config: Any, urls: list[str], megapixels: float, model_size: int, sha256: str) -> StageTimes:
    """Run colorize's stages on ``urls`` here and time them (see the module docstring).

    Args:
        config: a :class:`~archive_colorizer.config.PlanConfig`.
        urls: the inputs to measure (URLs below INPUT).
        megapixels: their pixels in millions (from their headers), for per-megapixel figures.
        model_size: the generator's input side in pixels.
        sha256: the generator's sha256 (checked again when the predictor loads it).

    Raises:
        ArtifactError: the generator cannot be loaded.
    """
    import torch

    from archive_colorizer.colorize.predictor import Predictor

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="archive-colorizer-plan-") as work:
        output = os.path.join(work, "out")
        list_file = os.path.join(work, "inputs.txt")
        with open(list_file, "w", encoding="utf-8") as handle:
            handle.writelines(f"{url}\n" for url in urls)
        roots = input_rows.Roots.resolve(config.input, output, config.storage_options)
        rows = list(input_rows.iter_from_list(roots, list_file, config.format))
        settings = _settings(config, output, model_size, sha256)
        start = time.perf_counter()
        predictor = Predictor(config.model, sha256, model_size, False, 1, config.storage_options)
        predictor.predict(np.zeros((1, model_size, model_size), np.uint8))  # allocator and kernels warmed
        load_seconds = time.perf_counter() - start
        try:
            times = _measure(config, rows, settings, predictor, megapixels, output)
            times.model_load_seconds = load_seconds
            times.model_flops = forward_flops(predictor.generator, model_size)
            if torch.cuda.is_available():
                prepared = [prepare_batch(t, settings) for t in _chunks(rows, config.batch_size)]
                times.gpu_model_seconds, times.gpu_name = _gpu_seconds(config, sha256, model_size, prepared)
        finally:
            torch.set_num_threads(threads)  # the Predictor set one thread for this process
    return times


def _measure(
    config: Any, rows: list[dict[str, Any]], settings: StageSettings, predictor: Any, megapixels: float, output: str
) -> StageTimes:
    tables = _chunks(rows, config.task_batch_size)
    cpu = {"prepare": 0.0, "model": 0.0, "finish": 0.0}
    wall = dict(cpu)
    statuses: Counter[str] = Counter()
    input_bytes = 0
    for table in tables:
        prepared, wall_s, cpu_s = _timed(prepare_batch, table, settings)
        cpu["prepare"] += cpu_s
        wall["prepare"] += wall_s
        input_bytes += sum(len(d) for d in prepared.column("data").to_pylist() if d)
        predicted, wall_s, cpu_s = _timed(predictor, prepared)
        cpu["model"] += cpu_s
        wall["model"] += wall_s
        finished, wall_s, cpu_s = _timed(finish_batch, predicted, settings)
        cpu["finish"] += cpu_s
        wall["finish"] += wall_s
        statuses.update(finished.column("status").to_pylist())
    fs, path = storage.open_url(output)
    output_bytes = sum(size or 0 for _, size in folders.iter_files_with_sizes(fs, path))
    stage_seconds, io_wall = _profile_split(tables, settings, predictor, cpu)
    requests = len(rows) + statuses[manifest.COLORIZED] + 2 * len(tables)
    return StageTimes(
        images=len(rows),
        statuses=dict(statuses),
        megapixels=megapixels,
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        cpu_seconds=cpu,
        wall_seconds=wall,
        stage_seconds=stage_seconds,
        io_wall_seconds=io_wall,
        requests=requests,
        model_load_seconds=0.0,
    )
