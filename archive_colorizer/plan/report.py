"""The plan as a readable table (stdout) and as ``plan.json`` (any fsspec URL)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from archive_colorizer import storage
from archive_colorizer.plan.measure import STAGES

FORMAT = "archive-colorizer/plan"
FORMAT_VERSION = 1


def duration(seconds: float) -> str:
    """``seconds`` as ``42 s``, ``12.5 min``, ``3.2 h`` or ``4.1 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size_text(count: float) -> str:
    """Bytes as ``850 kB``, ``12.3 MB``, ``4.56 GB`` or ``7.89 TB`` (powers of 1000)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count / 1e3:.3g} kB"


def _share(counts: Mapping[str, int]) -> str:
    total = sum(counts.values()) or 1
    return ", ".join(f"{name} {count / total:.0%}" for name, count in list(counts.items())[:4])


def _stage_lines(plan: Mapping[str, Any]) -> list[str]:
    measured = plan["measured"]
    images, megapixels = measured["images"], measured["megapixels"] or 1e-9
    lines = [
        f"measured here on {images} inputs ({megapixels:.2f} MP in all; CPU seconds, one thread): "
        + ", ".join(f"{k} {v}" for k, v in measured["statuses"].items()),
        f"  {'stage':<10}{'ms/image':>10}{'ms/MP':>10}",
    ]
    for stage in STAGES:
        seconds = measured["stage_seconds"][stage]
        lines.append(f"  {stage:<10}{1000 * seconds / images:>10.1f}{1000 * seconds / megapixels:>10.1f}")
    total = sum(measured["stage_seconds"].values())
    lines.append(f"  {'total':<10}{1000 * total / images:>10.1f}{1000 * total / megapixels:>10.1f}")
    if measured.get("gpu_model_seconds") is not None:
        lines.append(
            f"  model on {measured['gpu_name']}: {1000 * measured['gpu_model_seconds'] / images:.2f} ms/image (bf16)"
        )
    return lines


def _projection_lines(plan: Mapping[str, Any]) -> list[str]:
    lines = [f"  {'stages':<16}{'images/s':>10}{'wall':>12}{'node-hours':>12}{'cost':>12}  bottleneck"]
    for item in plan["projections"]:
        cost = "-" if item["cost"] is None else f"{item['cost']:,.2f}"
        name = "split (--gpu)" if item["stages"] == "split" else "fused"
        lines.append(
            f"  {name:<16}{item['images_per_second']:>10.1f}{duration(item['wall_seconds']):>12}"
            f"{item['node_hours']:>12,.1f}{cost:>12}  {item['bottleneck']}"
        )
    return lines


def format_plan(plan: Mapping[str, Any]) -> str:
    """The plan as a table: archive, sample, measured stages, cluster, projections, advice, assumptions."""
    archive, sample, cluster = plan["archive"], plan["sample"], plan["cluster"]
    size = size_text(archive["total_bytes"]) + (" (estimated)" if archive["bytes_estimated"] else "")
    if archive.get("listed_inputs") != archive["inputs"]:
        size += f", projected from the {archive['listed_inputs']:,} listed (--assume-inputs)"
    lines = [
        f"plan for {archive['input']}: {archive['inputs']:,} inputs, {size}, "
        f"listed in {archive['listing_seconds']:.1f} s",
        f"sample of {sample['sampled']} headers: {sample['megapixels_mean']:.2f} MP mean (median "
        f"{sample['megapixels_median']:.2f}, p95 {sample['megapixels_p95']:.2f}, max {sample['megapixels_max']:.2f}), "
        f"{size_text(sample['bytes_mean'])} mean; formats {_share(sample['formats'])}; modes {_share(sample['modes'])}"
        + (f"; {sample['unreadable']} unreadable" if sample["unreadable"] else ""),
        *_stage_lines(plan),
        f"cluster ({cluster['source']}): "
        + ", ".join(
            f"{g['count']} x {g['name']} ({g['cpus']} CPU{', ' + str(g['gpus']) + ' GPU' if g['gpus'] else ''})"
            for g in cluster["groups"]
        ),
        f"fixed cost of a run: {plan['assumptions']['startup_seconds']:.0f} s start-up + "
        f"{plan['workload']['fixed_seconds'] - plan['assumptions']['startup_seconds']:.0f} s listing",
        *_projection_lines(plan),
        f"recommended: {plan['recommended']['stages']}: {plan['recommended']['advice']}",
        "assumptions: " + ", ".join(f"{k}={v}" for k, v in plan["assumptions"].items()),
    ]
    return "\n".join(lines)


def write_plan(url: str, plan: Mapping[str, Any], storage_options: Mapping[str, Any] | None = None) -> str:
    """Write ``plan`` as indented JSON to ``url`` (whole or not at all); returns the URL written.

    Raises:
        StorageError: the file cannot be written.
    """
    fs, path = storage.open_url(url, storage_options)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent and storage.is_local(fs):
        fs.makedirs(parent, exist_ok=True)
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, **plan}
    storage.write_bytes(fs, path, json.dumps(document, indent=2, default=str).encode())
    return storage.to_url(fs, path)
