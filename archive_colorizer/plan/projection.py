"""Project a colorize job onto a cluster shape: images per second, wall time, node-hours, cost, bottleneck.

Pure arithmetic on measured per-image costs (:class:`Workload`) and a :class:`ClusterShape`;
no I/O. The model follows how the colorize job runs:

- ``fused`` (colorize's default without ``--gpu``): one Ray task per CPU, each running the
  whole per-image path, the generator on one torch thread, with reads and writes in between.
  Seconds per image of one task: ``codec + model_cpu + io`` (``io = requests * request_seconds``)
  with its requests one after another (local folders, ``--concurrent-requests 1``), else
  ``max(codec + model_cpu, io / k)`` with ``k`` requests in flight (``--concurrent-requests``
  on an object store: reads ahead, writes behind); with ``--cpus-per-task c < 1``, ``1 / c``
  tasks share a core: see :func:`core_seconds_per_image`.
  CPU capacity = ``sum(cpus * share) * efficiency / that``; GPUs, if any, stay idle.
- ``split`` (``colorize --gpu``): one predictor actor per GPU, each reserving
  ``cpus_per_actor`` CPUs of its node; decode and merge tasks of 0.5 CPU (two per core) on
  the other CPUs, so a task waiting on storage leaves its core to the other:
  seconds per core per image = ``max(codec, task seconds * 0.5)``, a task's seconds as above.
  GPU capacity = ``gpus / model_gpu``.
- network: every node that runs work moves ``bytes_per_image`` (input and output) at
  ``bandwidth`` bytes/s: capacity = ``nodes * bandwidth / bytes_per_image``.

Throughput is the smallest capacity (the bottleneck); wall time = ``fixed_seconds +
images / throughput`` (Ray and worker start-up, the listing); every node is held for the
whole wall time (node-hours), priced per node-hour where a price is given. ``share`` =
``cpus / (cpus + background_load)``: the part of each core a job gets beside other work. Where no
node type is a head without CPUs (this machine, ``--cpus/--nodes``), the driver and Ray's own
processes run beside the tasks on the first node: ``driver_cpus`` fewer CPUs there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from archive_colorizer.colorize.overlap import MAX_CONCURRENT_REQUESTS
from archive_colorizer.plan.cluster import ClusterShape

DEFAULT_CPUS_PER_TASK = {"fused": 1.0, "split": 0.5}
"""CPUs a task reserves by default in colorize's fused and split stages (``--cpus-per-task``)."""


@dataclass(frozen=True)
class Workload:
    """Per-image costs of the whole archive (means over its inputs) and the job's fixed cost.

    Attributes:
        images: inputs of the archive.
        codec_seconds: CPU seconds per image on one core for everything but the generator and
            storage: decodes, colour check, merge, encode (scaled to the archive's mean size).
        model_cpu_seconds: the generator per image on one CPU core (one torch thread).
        model_gpu_seconds: the generator per image on one GPU.
        requests_per_image: storage requests per image (input GET, output PUT, manifest parts).
        request_seconds: time of one request (latency and transfer of one image).
        bytes_per_image: bytes moved per image, input and output together.
        fixed_seconds: start-up and listing, paid once per run.
    """

    images: int
    codec_seconds: float
    model_cpu_seconds: float
    model_gpu_seconds: float
    requests_per_image: float
    request_seconds: float
    bytes_per_image: float
    fixed_seconds: float

    @property
    def io_seconds(self) -> float:
        """Storage wait per image: requests times their duration."""
        return self.requests_per_image * self.request_seconds


@dataclass(frozen=True)
class Assumptions:
    """Settable assumptions of a projection (see :class:`~archive_colorizer.config.PlanConfig`)."""

    bandwidth_mb_per_s: float = 1000.0
    efficiency: float = 0.9
    background_load: float = 0.0
    cpus_per_actor: float = 1.0
    driver_cpus: float = 0.5
    cpus_per_task: float | None = None
    """colorize's ``--cpus-per-task``; None: its default for the stages (:data:`DEFAULT_CPUS_PER_TASK`)."""
    concurrent_requests: int = 1
    """Storage requests a task keeps in flight: colorize's ``--concurrent-requests`` where INPUT or OUTPUT
    is an object store, 1 on local folders (one request after another)."""

    def tasks_cpus(self, stages: str) -> float:
        """CPUs one task reserves with these stages."""
        return self.cpus_per_task or DEFAULT_CPUS_PER_TASK[stages]


@dataclass
class Projection:
    """The projected job on one cluster shape with one kind of stages.

    Attributes:
        stages: ``fused`` or ``split``.
        images_per_second: projected throughput.
        wall_seconds: start-up and listing plus the images at that throughput.
        node_hours: nodes times wall hours (every node held for the whole run).
        cost: node-hours times their prices; None when a node group has no price.
        capacity: images/s each resource could sustain alone (``cpu``, ``gpu``, ``network``).
        utilisation: throughput / capacity per resource (1.0: the bottleneck).
        bottleneck: the resource with the smallest capacity.
        advice: what would help, in one sentence.
    """

    stages: str
    images_per_second: float
    wall_seconds: float
    node_hours: float
    cost: float | None
    capacity: dict[str, float]
    utilisation: dict[str, float]
    bottleneck: str
    advice: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


def _share(cpus: int, background_load: float) -> float:
    return cpus / (cpus + background_load) if cpus else 0.0


def core_seconds_per_image(workload: Workload, assumptions: Assumptions, stages: str) -> float:
    """Seconds of one core per image: ``max(compute, task * c)``, where ``task`` is one task's seconds
    per image (:func:`task_seconds_per_image`) and ``1 / c`` tasks of ``c < 1`` CPUs share a core
    (one computing while others wait)."""
    compute = workload.codec_seconds + (workload.model_cpu_seconds if stages == "fused" else 0.0)
    task = task_seconds_per_image(compute, workload.io_seconds, assumptions.concurrent_requests)
    return max(compute, task * min(1.0, assumptions.tasks_cpus(stages)))


def task_seconds_per_image(compute: float, io: float, concurrent_requests: int) -> float:
    """One task's wall seconds per image: ``compute + io`` with one request at a time; with ``k > 1``
    requests in flight (reads ahead, writes behind) ``max(compute, io / k)``: the requests overlap
    each other and the compute, and ``k`` of them finish every ``io / requests`` seconds."""
    if concurrent_requests <= 1:
        return compute + io
    return max(compute, io / concurrent_requests)


def cpu_capacity(workload: Workload, shape: ClusterShape, assumptions: Assumptions, stages: str) -> float:
    """Images per second the CPUs sustain (see the module docstring for both kinds of stages)."""
    cores = 0.0
    for group in shape.groups:
        share = _share(group.cpus, assumptions.background_load)
        usable = group.cpus if stages == "fused" else max(0.0, group.cpus - group.gpus * assumptions.cpus_per_actor)
        cores += group.count * usable * share
    if shape.groups and all(group.cpus for group in shape.groups):  # no CPU-less head: the driver shares a node
        cores -= min(assumptions.driver_cpus, shape.groups[0].cpus) * _share(
            shape.groups[0].cpus, assumptions.background_load
        )
    per_image = core_seconds_per_image(workload, assumptions, stages)
    return cores * assumptions.efficiency / per_image if per_image > 0 else math.inf


def network_capacity(workload: Workload, shape: ClusterShape, assumptions: Assumptions) -> float:
    """Images per second the nodes' object-store bandwidth sustains (nodes with CPUs or GPUs for tasks)."""
    nodes = sum(g.count for g in shape.groups if g.cpus or g.gpus)
    if workload.bytes_per_image <= 0:
        return math.inf
    return nodes * assumptions.bandwidth_mb_per_s * 1e6 / workload.bytes_per_image


def project(workload: Workload, shape: ClusterShape, assumptions: Assumptions, stages: str) -> Projection:
    """Throughput, wall time, node-hours, cost and bottleneck of ``workload`` on ``shape``.

    Args:
        stages: ``fused`` (CPU tasks run the generator) or ``split`` (one predictor actor per GPU).

    Raises:
        ValueError: ``split`` on a shape without GPUs, or a shape without CPUs for tasks.
    """
    if stages == "split" and not shape.gpus:
        raise ValueError("split stages need GPUs: the cluster has none")
    capacity = {
        "cpu": cpu_capacity(workload, shape, assumptions, stages),
        "gpu": shape.gpus / workload.model_gpu_seconds if stages == "split" else math.inf,
        "network": network_capacity(workload, shape, assumptions),
    }
    if capacity["cpu"] == 0:
        raise ValueError("the cluster has no CPUs for colorize's tasks")
    bottleneck = min(capacity, key=capacity.__getitem__)
    rate = capacity[bottleneck]
    wall = workload.fixed_seconds + workload.images / rate
    hours = wall / 3600
    priced = [(g.count, g.price_per_hour) for g in shape.groups if g.price_per_hour is not None]
    cost = sum(count * price * hours for count, price in priced) if len(priced) == len(shape.groups) else None
    utilisation = {name: rate / cap if cap and not math.isinf(cap) else 0.0 for name, cap in capacity.items()}
    if stages == "fused" and shape.gpus:
        utilisation["gpu"] = 0.0
    result = Projection(stages, rate, wall, shape.nodes * hours, cost, capacity, utilisation, bottleneck)
    result.advice = advise(result, workload, shape, assumptions)
    return result


def _balance_cpu_nodes(result: Projection, shape: ClusterShape, assumptions: Assumptions, workload: Workload) -> str:
    """How many more CPU-only nodes (of the largest CPU-only group) would feed the GPUs."""
    cpu_groups = [g for g in shape.groups if g.cpus and not g.gpus]
    if not cpu_groups:
        return ""
    group = max(cpu_groups, key=lambda g: g.cpus)
    single = ClusterShape((group.__class__(group.name, 1, group.cpus, 0),), "one node")
    per_node = cpu_capacity(workload, single, assumptions, result.stages)
    missing = result.capacity["gpu"] - result.capacity["cpu"]
    return f" (about {math.ceil(missing / per_node)} more {group.name} nodes)" if per_node > 0 else ""


def _storage_wait_advice(workload: Workload, assumptions: Assumptions, stages: str) -> str:
    """Advice to run more tasks per core when storage waits, not compute, fill the cores' time."""
    compute = workload.codec_seconds + (workload.model_cpu_seconds if stages == "fused" else 0.0)
    cpus, k = assumptions.tasks_cpus(stages), assumptions.concurrent_requests
    task = task_seconds_per_image(compute, workload.io_seconds, k)
    if task * cpus <= compute * 1.1:
        return ""
    idle = 1 - compute / (task * cpus)
    waiting = (
        f"cores wait on storage {idle:.0%} of the time ({workload.io_seconds * 1000:.0f} ms of requests per image)"
    )
    if k > 1:  # an object store: more requests in flight per task
        needed = math.ceil(workload.io_seconds * min(1.0, cpus) / compute)
        if needed <= MAX_CONCURRENT_REQUESTS:
            return f"{waiting}: colorize with --concurrent-requests {needed} keeps enough requests in flight to hide it"
        return (
            f"{waiting}: even --concurrent-requests {MAX_CONCURRENT_REQUESTS} leaves the cores waiting; "
            "the requests are slow for this archive (a bucket in another region?)"
        )
    better = max(0.05, math.floor(20 * compute / (compute + workload.io_seconds)) / 20)
    return f"{waiting}: colorize with --cpus-per-task {better:g} runs enough tasks per core to hide it"


def advise(result: Projection, workload: Workload, shape: ClusterShape, assumptions: Assumptions) -> str:
    """One sentence: what bounds the job and which change would help."""
    util = result.utilisation
    if result.bottleneck == "network":
        return (
            f"object-store bandwidth bound ({assumptions.bandwidth_mb_per_s:.0f} MB/s per node assumed), CPUs idle "
            f"{1 - util['cpu']:.0%}: more nodes add bandwidth; larger CPU nodes would not help"
        )
    waits = _storage_wait_advice(workload, assumptions, result.stages)
    if result.stages == "fused":
        model_share = workload.model_cpu_seconds / (
            workload.codec_seconds + workload.model_cpu_seconds + workload.io_seconds
        )
        if shape.gpus:
            return "GPUs idle 100%: colorize with --gpu (split stages) or leave the GPU nodes out"
        if waits:
            return waits
        return (
            f"CPU bound: throughput grows with CPUs (add nodes); the generator is {model_share:.0%} of each "
            "image's CPU time, the share a GPU (--gpu) would take off the CPUs"
        )
    if result.bottleneck == "cpu" and waits:
        return waits + f"; GPUs idle {1 - util['gpu']:.0%}"
    if result.bottleneck == "cpu":
        needed = math.ceil(shape.gpus * util["gpu"]) or 1
        more = _balance_cpu_nodes(result, shape, assumptions, workload)
        return (
            f"GPUs idle {1 - util['gpu']:.0%}: add CPU workers{more}"
            f" or use --gpu on fewer GPU nodes ({needed} GPUs would keep up)"
        )
    return f"GPU bound, CPUs idle {1 - util['cpu']:.0%}: add GPU nodes, or drop CPU workers to save cost"
