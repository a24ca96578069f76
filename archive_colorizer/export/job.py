"""Export: a training checkpoint -> the inference-only generator artifact.

``archive-colorizer export CHECKPOINT OUT`` and the end of every training run both go through
:func:`export_checkpoint`. Only ``state.json`` and ``generator.safetensors`` of the checkpoint
are read (checked against the sizes and sha256 recorded in ``state.json``); the artifact's
provenance names the run, the last epoch trained, the global step, the training data, the
parent generator a fine-tuning run started from (``{"url", "sha256"}``, else ``None``), the
checkpoint and the redacted training config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archive_colorizer.errors import ArtifactError, StorageError
from archive_colorizer.export.config import ExportConfig
from archive_colorizer.models import generator_spec
from archive_colorizer.models.artifact import save_generator
from archive_colorizer.storage import join, open_url, read_bytes, to_url
from archive_colorizer.train.checkpoint import GENERATOR_NAME, STATE_NAME, parse_state, verified_tensors


@dataclass
class ExportResult:
    """What ``export`` wrote: the artifact URL, its sha256 and the epoch it comes from."""

    checkpoint: str
    out: str
    sha256: str
    epoch: int
    exit_code: int = 0


def _read_state(fs, folder: str, url: str) -> dict[str, Any]:
    try:
        raw = read_bytes(fs, join(folder, STATE_NAME))
    except FileNotFoundError as exc:
        found = sorted(p.rsplit("/", 1)[-1] for p in fs.glob(join(folder, "checkpoint_epoch_*")))
        hint = f"; it holds the checkpoints {', '.join(found)}: pass one of them" if found else ""
        raise ArtifactError(f"{url!r} is not a training checkpoint ({STATE_NAME} is missing){hint}") from exc
    except StorageError as exc:
        raise ArtifactError(f"cannot read checkpoint {url!r}: {exc}") from exc
    return parse_state(raw, url)


def export_checkpoint(
    checkpoint_url: str,
    out_url: str,
    storage_options: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the generator of a checkpoint as an artifact (``generator.safetensors`` + ``.json``).

    Args:
        checkpoint_url: a checkpoint folder (``<run>/checkpoint_epoch_NNNN``), any fsspec URL.
        out_url: the artifact folder to write.
        storage_options: fsspec options for both URLs.
        provenance: entries that replace the recorded ones (e.g. ``{"checkpoint": None}`` for a
            temporary checkpoint).

    Returns:
        The artifact's metadata (``generator.json``).

    Raises:
        ArtifactError: not a checkpoint, or its generator weights are missing, truncated or do
            not fit the recorded architecture; the message names the URL.
        StorageError: the artifact could not be written.
    """
    fs, folder = open_url(checkpoint_url, storage_options)
    folder = folder.rstrip("/")
    shown = to_url(fs, folder)
    state = _read_state(fs, folder, shown)
    try:
        weights = verified_tensors(read_bytes(fs, join(folder, GENERATOR_NAME)), GENERATOR_NAME, state, shown)
    except FileNotFoundError as exc:
        raise ArtifactError(f"checkpoint {shown!r} has no {GENERATOR_NAME}") from exc
    try:
        spec = generator_spec(state["generator_spec"])  # a spec without kind (older checkpoints) is a U-Net
    except ValueError as exc:
        raise ArtifactError(f"checkpoint {shown!r} records an unknown generator: {exc}") from exc
    generator = spec.build()
    try:
        generator.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"generator weights in {shown!r} do not match the recorded architecture: {exc}") from exc
    history = state.get("history") or []
    recorded = {
        "run": state.get("run"),
        "epoch": int(state["epoch"]) - 1,
        "epochs_trained": int(state["epoch"]),
        "global_step": int(state["global_step"]),
        "data": state.get("data"),
        "parent": state.get("parent"),
        "checkpoint": shown,
        "metrics": history[-1] if history else None,
        "config": state.get("config"),
        **(provenance or {}),
    }
    return save_generator(
        generator,
        out_url,
        spec=spec,
        working_size=int(state["image_size"]),
        provenance=recorded,
        storage_options=storage_options,
    )


def run(config: ExportConfig) -> ExportResult:
    """``archive-colorizer export CHECKPOINT OUT``."""
    metadata = export_checkpoint(config.checkpoint, config.out, config.storage_options)
    print(
        f"exported epoch {metadata['provenance']['epoch']} of {config.checkpoint} to {config.out} (sha256 "
        f"{metadata['sha256']})"
    )
    return ExportResult(config.checkpoint, config.out, metadata["sha256"], metadata["provenance"]["epoch"])
