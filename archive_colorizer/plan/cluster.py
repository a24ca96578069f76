"""The cluster a plan is made for: node groups with CPUs, GPUs, a count and a price per node-hour.

Three sources, one shape:

- a Ray cluster launcher YAML (``--cluster cluster.yaml``): every node type at its
  ``max_workers`` (all worker types together at most the file's ``max_workers``), the head
  once. A type's CPUs and GPUs come from its ``resources`` field when set (``{"CPU": 0}`` on the
  head: it runs no tasks), else from its ``node_config.InstanceType`` in
  :data:`INSTANCE_TYPES` (what Ray detects on such a node: vCPUs and GPUs);
- ``--cpus/--gpus/--nodes``: that many identical nodes;
- neither: this machine (its CPUs and CUDA devices).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from archive_colorizer import storage
from archive_colorizer.errors import ConfigError, StorageError

INSTANCE_TYPES: dict[str, tuple[int, int]] = {
    "m6i.large": (2, 0),
    "m6i.xlarge": (4, 0),
    "m6i.2xlarge": (8, 0),
    "m6i.4xlarge": (16, 0),
    "m6i.8xlarge": (32, 0),
    "m6i.16xlarge": (64, 0),
    "c6i.xlarge": (4, 0),
    "c6i.2xlarge": (8, 0),
    "c6i.4xlarge": (16, 0),
    "c6i.8xlarge": (32, 0),
    "c6i.16xlarge": (64, 0),
    "g4dn.xlarge": (4, 1),
    "g4dn.2xlarge": (8, 1),
    "g5.xlarge": (4, 1),
    "g5.2xlarge": (8, 1),
    "g5.4xlarge": (16, 1),
    "g5.12xlarge": (48, 4),
    "g6.xlarge": (4, 1),
    "g6.2xlarge": (8, 1),
    "p3.2xlarge": (8, 1),
}
"""AWS instance type -> (vCPUs, GPUs), the CPU and GPU resources Ray detects on it (AWS's published sizes)."""
THIS_MACHINE = "this machine"


@dataclass(frozen=True)
class NodeGroup:
    """``count`` identical nodes.

    Attributes:
        name: node type name (``gpu_worker``) or ``node`` / ``this machine``.
        count: nodes of the group in the planned cluster.
        cpus, gpus: Ray's logical CPU and GPU resources per node (0 CPUs: runs no tasks).
        instance_type: the cloud instance type, if known.
        price_per_hour: price of one node-hour, None when not given.
    """

    name: str
    count: int
    cpus: int
    gpus: int
    instance_type: str | None = None
    price_per_hour: float | None = None


@dataclass(frozen=True)
class ClusterShape:
    """The planned cluster: its node groups and where the shape came from."""

    groups: tuple[NodeGroup, ...]
    source: str

    @property
    def cpus(self) -> int:
        return sum(g.count * g.cpus for g in self.groups)

    @property
    def gpus(self) -> int:
        return sum(g.count * g.gpus for g in self.groups)

    @property
    def nodes(self) -> int:
        return sum(g.count for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "groups": [asdict(g) for g in self.groups]}


def _resources(name: str, node_type: Mapping[str, Any], source: str) -> tuple[int, int, str | None]:
    """(CPUs, GPUs, instance type) of a node type: its ``resources``, else its instance type's size."""
    resources = node_type.get("resources") or {}
    instance = (node_type.get("node_config") or {}).get("InstanceType")
    known = INSTANCE_TYPES.get(instance) if instance else None
    cpus = resources.get("CPU", known[0] if known else None)
    if cpus is None:
        raise ConfigError(
            f"{source}: node type {name!r} has instance type {instance!r}, whose CPUs and GPUs this tool does not "
            f'know; add resources: {{"CPU": N, "GPU": G}} to it in the YAML, or plan with --cpus/--gpus/--nodes'
        )
    return int(cpus), int(resources.get("GPU", known[1] if known else 0)), instance


def _price(name: str, prices: Mapping[str, float], default: float | None) -> float | None:
    return float(prices[name]) if name in prices else default


def shape_from_yaml(
    url: str,
    prices: Mapping[str, float] | None = None,
    default_price: float | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ClusterShape:
    """The cluster of a Ray cluster launcher YAML at full size (see the module docstring).

    Args:
        url: the YAML file (path or fsspec URL).
        prices: price per node-hour by node type name; ``default_price`` for the others.

    Raises:
        ConfigError: the file is missing or not a launcher config, a price names an unknown
            node type, or a node type's size is unknown (the message says what to add).
    """
    try:
        fs, path = storage.open_url(url, storage_options)
        document = yaml.safe_load(storage.read_bytes(fs, path))
    except (FileNotFoundError, StorageError) as exc:
        raise ConfigError(f"cluster file {url!r} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"cluster file {url!r} is not valid YAML: {exc}") from exc
    node_types = document.get("available_node_types") if isinstance(document, dict) else None
    if not isinstance(node_types, dict) or not node_types:
        raise ConfigError(f"cluster file {url!r} has no available_node_types: not a Ray cluster launcher config")
    prices = dict(prices or {})
    unknown = sorted(set(prices) - set(node_types))
    if unknown:
        raise ConfigError(f"--node-price names node types not in {url!r}: {', '.join(unknown)}")
    head = document.get("head_node_type")
    room = int(document.get("max_workers", sum(int(t.get("max_workers", 0)) for t in node_types.values())))
    groups = []
    for name, node_type in node_types.items():
        cpus, gpus, instance = _resources(name, node_type, url)
        if name == head:
            count = 1
        else:
            count = min(int(node_type.get("max_workers", room)), room)
            room -= count
        if count:
            groups.append(NodeGroup(name, count, cpus, gpus, instance, _price(name, prices, default_price)))
    return ClusterShape(tuple(groups), url)


def shape_from_flags(cpus: int | None, gpus: int | None, nodes: int | None, price: float | None) -> ClusterShape:
    """``nodes`` identical nodes of ``cpus`` CPUs (default: this machine's) and ``gpus`` GPUs (default 0)."""
    group = NodeGroup("node", nodes or 1, cpus or os.cpu_count() or 1, gpus or 0, None, price)
    return ClusterShape((group,), "--cpus/--gpus/--nodes")


def this_machine(price: float | None = None) -> ClusterShape:
    """This machine: its CPUs (``os.cpu_count``) and CUDA devices."""
    import torch

    group = NodeGroup(THIS_MACHINE, 1, os.cpu_count() or 1, torch.cuda.device_count(), None, price)
    return ClusterShape((group,), THIS_MACHINE)


def resolve_shape(config: Any) -> ClusterShape:
    """The shape a :class:`~archive_colorizer.config.PlanConfig` asks for (cluster YAML, flags, or this machine).

    Raises:
        ConfigError: see :func:`shape_from_yaml`; ``--node-price`` without ``--cluster``.
    """
    if config.cluster:
        return shape_from_yaml(config.cluster, config.node_prices, config.price_per_node_hour, config.storage_options)
    if config.node_prices:
        raise ConfigError("--node-price prices node types of a --cluster file; use --price-per-node-hour here")
    if config.cpus or config.gpus is not None or config.nodes:
        return shape_from_flags(config.cpus, config.gpus, config.nodes, config.price_per_node_hour)
    return this_machine(config.price_per_node_hour)
