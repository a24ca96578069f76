"""Colorize's CPU path on a GPU node: a worker node on cores of its own, the head on the others; prints JSON.

On a cluster the driver, the GCS and Ray Data's executor run on the head node; a GPU node's cores
hold its raylet, its object store and the colorize tasks. ``bench/colorize_throughput.py`` runs
them all on the same cores, so its rates carry the head's work and the way the cores slow each
other down. Here a ``ray.cluster_utils.Cluster`` puts the head (0 CPUs, with this process, the
driver) on the first cores of the machine and one worker node of ``--node-cores`` CPUs on the last
ones, each held there by CPU affinity (``os.sched_setaffinity``, inherited by every process a node
starts), the way a GPU node and its head are two machines.

Measured on the node's cores, over the same ``--marginal`` M images, in this order:

- ``floor``: the codec floor of ``colorize_throughput`` (read, decode, encode a colour JPEG of the
  image's size) in ``node_cores`` processes at once, the files dealt among them.
- ``floor_written``: the same, each output also written to a file (one plain ``open``/``write``):
  the job cannot avoid its write, and on a local disk its cost per file grows with the data written
  (the kernel's page cache), so it is measured here over the same number of files as the job.
- ``fused``: the fused stage's batch function (``fused_one_process`` of ``colorize_throughput``) in
  ``node_cores`` processes at once: the job's per-image work on the node's cores with no Ray.
- ``marginal``: the job (``archive_colorizer.colorize.run``, default flags but ``progress`` and
  ``--task-batch-size``) on a folder of the first ``--images`` N files, then on the first M; the
  extra M - N images over the M job's extra time against the N job just before it: the node's
  rate once start-up is paid. ``cpu_ms_per_image``: the CPU per marginal image, in the same pair
  of jobs, of the processes on the node's cores (``node``: the workers, the raylet, its agents)
  and on the head's (``head``: the driver, the GCS, the head's raylet and agents).

A cold N-image job starts the node's worker processes first. Then every phase runs in each of
``--rounds`` rounds, one after another in the order above, and each figure is the fastest of its
rounds (``seconds_per_round`` shows them all): a shared VM's cores run at a speed that drifts by
5-15 % from one minute to the next, so figures taken minutes apart are compared at their best.
Before each timed phase the page cache's dirty pages are written out (:func:`os.sync`).

``node_marginal_over_floor``, ``node_marginal_over_floor_written`` and ``node_marginal_over_fused``
are the marginal rate against each; ``fused_over_floor`` and ``fused_over_floor_written`` the job's
per-image work against the codecs on the same cores. Linux only (CPU affinity); needs at least
``--node-cores`` + 1 cores.

Usage::

    .venv/bin/python bench/colorize_node.py [--model tiny] [--images 200] [--marginal 2000]
        [--node-cores 1] [--megapixels 1.5] [--task-batch-size 16] [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import colorize_throughput as throughput  # noqa: E402
from common import print_report  # noqa: E402


@contextlib.contextmanager
def pinned(cores: set[int]) -> Iterator[None]:
    """Run the block (and every process it starts) on ``cores`` only; the affinity before is restored."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def head_and_node(head_cores: set[int], node_cores: set[int]) -> Iterator[Any]:
    """A Ray cluster of a head of 0 CPUs on ``head_cores`` and a worker node of ``len(node_cores)`` CPUs on
    ``node_cores``, this process connected to it (and kept on ``head_cores``); shut down after the block.

    Raises:
        RuntimeError: this process is already connected to a Ray.
    """
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        raise RuntimeError("colorize_node starts its own cluster: run it in a process without Ray")
    with pinned(head_cores):
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            with pinned(node_cores):
                cluster.add_node(num_cpus=len(node_cores))
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level=logging.WARNING)
            try:
                yield cluster
            finally:
                ray.shutdown()
        finally:
            cluster.shutdown()


def cpu_by_cores(node_cores: set[int]) -> dict[tuple[int, float], tuple[str, float]]:
    """:func:`colorize_throughput.process_cpu` by where each process runs: ``node`` when its CPU
    affinity is within ``node_cores``, else ``head``."""
    return throughput.process_cpu(lambda process: "node" if set(process.cpu_affinity()) <= node_cores else "head")


def on_node(node_cores: set[int], prepare: Callable[..., Callable[[], int]], parts: list[tuple]) -> dict[str, Any]:
    """``throughput.measure_parallel(prepare, parts)`` with its processes on ``node_cores``, the page cache's
    dirty pages written out first (:func:`os.sync`: an earlier phase's writes are not paid for by this one)."""
    os.sync()
    with pinned(node_cores):
        return throughput.measure_parallel(prepare, parts)


def job(
    files: list[Path], workdir: Path, name: str, model_url: str, node_cores: set[int], task_batch_size: int
) -> dict[str, Any]:
    """The colorize job on a folder of exactly ``files`` (its output ``workdir/name``): its rate and the
    CPU seconds it took on the node's and the head's cores."""
    from archive_colorizer.colorize import run
    from archive_colorizer.colorize.config import ColorizeConfig

    output = workdir / name
    shutil.rmtree(output, ignore_errors=True)
    inputs = throughput.exact_folder(files, workdir / f"{name}-in")
    config = ColorizeConfig(
        input=str(inputs), output=str(output), model=model_url, progress=False, task_batch_size=task_batch_size
    )
    os.sync()  # as in on_node
    before = cpu_by_cores(node_cores)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the job's summary table; stdout carries the JSON
        result = run(config)
    seconds = time.perf_counter() - start
    if result.counts["colorized"] != len(files):
        raise RuntimeError(f"the job colorized {result.counts} of {len(files)} inputs")
    used = throughput.cpu_used(before, cpu_by_cores(node_cores), ("node", "head"))
    return throughput.rate(len(files), seconds) | {"cpu_seconds": used}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(throughput.MODELS), default="tiny")
    parser.add_argument("--images", type=int, default=200, help="the warm job's inputs (N)")
    parser.add_argument("--marginal", type=int, default=2000, help="the marginal job's inputs (M > N)")
    parser.add_argument("--node-cores", type=int, default=1, help="cores of the worker node (the head gets the rest)")
    parser.add_argument("--megapixels", type=float, default=1.5)
    parser.add_argument("--task-batch-size", type=int, default=16, help="the job's (and the fused loop's batches)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every phase; each figure is its fastest")
    parser.add_argument("--workdir", default=None, help="where inputs and outputs go (default: a temporary folder)")
    options = parser.parse_args(argv)
    if options.marginal <= options.images:
        parser.error("--marginal must be larger than --images")
    if options.rounds < 1 or options.node_cores < 1:
        parser.error("--rounds and --node-cores must be at least 1")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) <= options.node_cores:
        parser.error(
            f"--node-cores {options.node_cores} leaves no core for the head (this process may use {len(cores)})"
        )
    head_cores, node_cores = set(cores[: -options.node_cores]), set(cores[-options.node_cores :])

    from archive_colorizer.models import generator_spec
    from archive_colorizer.models.artifact import save_generator

    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="colorize-node-"))
    spec_args, working_size = throughput.MODELS[options.model]
    spec = generator_spec(spec_args)
    model_url = str(workdir / f"model-{options.model}")
    save_generator(spec.build(), model_url, spec=spec, working_size=working_size)
    files = throughput.existing_or_new_inputs(workdir / "in", options.marginal, options.megapixels)[: options.marginal]
    processes = len(node_cores)
    parts = throughput.split(files, processes)
    report: dict[str, Any] = {
        "images": options.images,
        "marginal_images": options.marginal,
        "head_cores": sorted(head_cores),
        "node_cores": sorted(node_cores),
        "task_batch_size": options.task_batch_size,
        "load_average_before": round(os.getloadavg()[0], 2),
        "model": f"untrained {type(spec).__name__}({spec_args}), working size {working_size} ({options.model})",
    }
    floors = [(part,) for part in parts]
    floors_written = [(part, True, "420", workdir / f"out-floor-{index}") for index, part in enumerate(parts)]
    fused = [
        (
            throughput.exact_folder(part, workdir / f"in-fused-{index}"),
            model_url,
            workdir / f"out-fused-{index}",
            options.task_batch_size,
            "420",
        )
        for index, part in enumerate(parts)
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ("floor", "floor_written", "fused", "warm", "more")}
    batch = options.task_batch_size
    with head_and_node(head_cores, node_cores):
        job(files[: options.images], workdir, "out-warm", model_url, node_cores, batch)  # cold: workers start
        for _ in range(options.rounds):
            runs["floor"].append(on_node(node_cores, throughput.prepare_floor, floors))
            runs["floor_written"].append(on_node(node_cores, throughput.prepare_floor, floors_written))
            runs["fused"].append(on_node(node_cores, throughput.prepare_fused, fused))
            runs["warm"].append(job(files[: options.images], workdir, "out-warm", model_url, node_cores, batch))
            runs["more"].append(job(files, workdir, "out-marginal", model_url, node_cores, batch))
    fastest = {
        name: min(runs[name], key=lambda figure: figure["seconds"])
        for name in ("floor", "floor_written", "fused", "warm")
    }
    for name in ("floor", "floor_written", "fused"):
        report[name] = fastest[name] | {"seconds_per_round": [figure["seconds"] for figure in runs[name]]}
    report["warm"] = {key: value for key, value in fastest["warm"].items() if key != "cpu_seconds"}
    extra = options.marginal - options.images
    # Each round's marginal time: its M job's less its own N job's (the two ran back to back).
    pairs = list(zip(runs["warm"], runs["more"], strict=True))
    marginal_seconds = [more["seconds"] - warm["seconds"] for warm, more in pairs]
    best = marginal_seconds.index(min(marginal_seconds))
    report["marginal"] = throughput.rate(extra, marginal_seconds[best])
    report["marginal"]["seconds_per_round"] = [round(seconds, 3) for seconds in marginal_seconds]
    # CPU per marginal image in that round: its M job's less its N job's.
    warm, more = pairs[best]
    report["cpu_ms_per_image"] = {
        where: round(1000 * (more["cpu_seconds"][where] - warm["cpu_seconds"][where]) / extra, 3)
        for where in ("node", "head")
    }
    rates = {name: report[name]["images_per_second"] for name in ("floor", "floor_written", "fused", "marginal")}
    for name in ("floor", "floor_written", "fused"):
        report[f"node_marginal_over_{name}"] = round(rates["marginal"] / rates[name], 4)
    for name in ("floor", "floor_written"):
        report[f"fused_over_{name}"] = round(rates["fused"] / rates[name], 4)
    return print_report(report)


if __name__ == "__main__":
    main()
