"""Training checkpoints: a folder of safetensors and JSON files; nothing is ever pickled.

Layout of one checkpoint (Ray Train copies it to ``<run>/checkpoint_epoch_NNNN``):

- ``generator.safetensors``, ``discriminator.safetensors``: the unwrapped networks' state
  dicts (weights and BatchNorm buffers of rank 0);
- ``optimizer_g.safetensors``, ``optimizer_d.safetensors``: Adam's per-parameter tensors
  (``state.<index>.<name>``); the param groups (lr, betas, ...) are in ``state.json``;
- ``state.json``: format, ``epoch`` (epochs completed, i.e. the next epoch to run),
  ``global_step``, the resolved config (secrets redacted), architecture specs, the metrics
  history, and size + sha256 of each safetensors file;
- ``rng/rank_NNNNN.json``: the Python, NumPy and torch random states of each rank: the CPU
  generator's and the rank's own CUDA device's (``torch_cuda_device``), not every visible
  GPU's, so a checkpoint resumes on nodes with another number of GPUs.

Rank 0 writes everything; the other ranks write only their random state, and Ray Train merges
the ranks' folders into one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from archive_colorizer.errors import ArtifactError
from archive_colorizer.models.artifact import check_format

FORMAT = "archive-colorizer/train-checkpoint"
FORMAT_VERSION = 1
STATE_NAME = "state.json"
GENERATOR_NAME = "generator.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
OPTIMIZER_G_NAME = "optimizer_g.safetensors"
OPTIMIZER_D_NAME = "optimizer_d.safetensors"
RNG_FOLDER = "rng"


def checkpoint_dir_name(epochs_done: int) -> str:
    """Name of the checkpoint written after ``epochs_done`` epochs: ``checkpoint_epoch_0003``."""
    return f"checkpoint_epoch_{epochs_done:04d}"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer's state dict into safetensors-ready tensors and JSON param groups.

    Returns:
        ``({"state.<param index>.<name>": tensor}, param_groups)``; Adam's ``step``,
        ``exp_avg`` and ``exp_avg_sq`` are all tensors.

    Raises:
        TypeError: the optimizer keeps a non-tensor per-parameter value.
    """
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{name} is {type(value).__name__}, not a tensor")
            tensors[f"state.{index}.{name}"] = value.detach().to("cpu").contiguous()
    return tensors, state_dict["param_groups"]


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: list[dict[str, Any]]
) -> None:
    """Inverse of :func:`optimizer_tensors`: load the state into ``optimizer`` (same parameters)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def _b64(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.numpy().tobytes()).decode()


def _unb64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """This process's Python, NumPy and torch random states as JSON-compatible data.

    Args:
        device: the worker's training device; only a ``cuda`` one adds its CUDA generator's
            state. A CPU worker never touches CUDA here, even on a GPU node where CUDA is
            visible (asking would open a CUDA context on GPU 0 at every checkpoint).
    """
    version, mt_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt_state), gauss],
        # numpy types the state as the tuple or a dict; legacy (the default) is the tuple.
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],  # type: ignore[attr-defined]
        "torch": _b64(torch.get_rng_state()),
    }
    if device is not None and device.type == "cuda":  # this worker's own device only
        state["torch_cuda_device"] = _b64(torch.cuda.get_rng_state(device))
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore what :func:`rng_state` captured.

    The CUDA state goes to ``device`` when it is a ``cuda`` device (a CPU worker never touches
    CUDA); a state saved on a CPU worker leaves the device's generator as seeded. Checkpoints of earlier versions
    kept a list of every visible GPU's state (``torch_cuda``); its first entry, the worker's
    own device under Ray Train, is restored, whatever the number of GPUs now.
    """
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(_unb64(state["torch"]))
    device_state = state.get("torch_cuda_device") or (state.get("torch_cuda") or [None])[0]
    if device is not None and device.type == "cuda" and device_state is not None:
        torch.cuda.set_rng_state(_unb64(device_state), device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    data = safetensors.torch.save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    path.write_bytes(data)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_rng(folder: Path, rank: int, device: torch.device | None = None) -> None:
    """Write this rank's random state (and its CUDA device's, for a GPU worker) to ``folder/rng/rank_NNNNN.json``."""
    (folder / RNG_FOLDER).mkdir(parents=True, exist_ok=True)
    (folder / RNG_FOLDER / f"rank_{rank:05d}.json").write_text(json.dumps(rng_state(device)))


def grad_scaler_states(scalers: dict[str, torch.amp.GradScaler | None]) -> dict[str, dict[str, Any]]:
    """The state of each fp16 GradScaler (``{"G": ..., "D": ...}``) as JSON-compatible data.

    Saved in ``state.json`` under ``grad_scalers``, so an fp16 run resumes at the loss scale it
    had reached (its growth tracker included) instead of starting again at 65536 and skipping
    steps until the scale has come down (Micikevicius et al. 2018). Scalers that are ``None``
    (bf16, fp32) or not yet used (empty state) are left out.
    """
    return {name: dict(scaler.state_dict()) for name, scaler in scalers.items() if scaler and scaler.state_dict()}


def load_grad_scaler_states(scalers: dict[str, torch.amp.GradScaler | None], saved: dict[str, Any]) -> None:
    """Restore what :func:`grad_scaler_states` saved into this run's scalers (where both exist)."""
    for name, scaler in scalers.items():
        if scaler is not None and saved.get(name):
            scaler.load_state_dict(saved[name])


def write_checkpoint(
    folder: Path,
    *,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    optimizer_g: torch.optim.Optimizer,
    optimizer_d: torch.optim.Optimizer,
    state: dict[str, Any],
) -> None:
    """Write a full checkpoint (rank 0's part) into the local folder ``folder``.

    Args:
        generator, discriminator: unwrapped networks.
        state: JSON-compatible facts (``epoch``, ``global_step``, ``config``, ``history``, ...);
            the format, optimizer param groups and file digests are added here.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        GENERATOR_NAME: _save_tensors(folder / GENERATOR_NAME, generator.state_dict()),
        DISCRIMINATOR_NAME: _save_tensors(folder / DISCRIMINATOR_NAME, discriminator.state_dict()),
    }
    groups = {}
    for name, optimizer in ((OPTIMIZER_G_NAME, optimizer_g), (OPTIMIZER_D_NAME, optimizer_d)):
        tensors, groups[name] = optimizer_tensors(optimizer)
        files[name] = _save_tensors(folder / name, tensors)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state, "param_groups": groups, "files": files}
    # state.json last: a folder without it is not a checkpoint.
    (folder / STATE_NAME).write_text(json.dumps(payload, indent=1))


@dataclass
class CheckpointContents:
    """A checkpoint read back from a local folder (tensors on CPU)."""

    state: dict[str, Any]
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    optimizer_g: dict[str, torch.Tensor]
    optimizer_d: dict[str, torch.Tensor]
    rng: dict[int, dict[str, Any]] = field(default_factory=dict)


def parse_state(raw: bytes, where: str) -> dict[str, Any]:
    """Parse and check ``state.json``; raises :class:`ArtifactError` naming ``where``."""
    try:
        state = json.loads(raw)
        check_format(state, FORMAT, FORMAT_VERSION)
        int(state["epoch"]), int(state["global_step"]), dict(state["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"corrupt {STATE_NAME} in checkpoint {where}: {exc}") from exc
    return state


def verified_tensors(data: bytes, name: str, state: dict[str, Any], where: str) -> dict[str, torch.Tensor]:
    """Load one safetensors file of a checkpoint after checking its recorded size and sha256."""
    expected = state["files"].get(name, {})
    if len(data) != expected.get("bytes") or hashlib.sha256(data).hexdigest() != expected.get("sha256"):
        raise ArtifactError(f"{name} in checkpoint {where} is truncated or does not match {STATE_NAME}")
    return safetensors.torch.load(data)


def read_checkpoint(folder: Path) -> CheckpointContents:
    """Read a checkpoint from a local folder (e.g. ``Checkpoint.as_directory()``).

    Raises:
        ArtifactError: ``state.json`` is missing or corrupt, or a file does not match its digest.
    """
    if not (folder / STATE_NAME).exists():
        raise ArtifactError(f"{folder} is not a training checkpoint: {STATE_NAME} is missing")
    state = parse_state((folder / STATE_NAME).read_bytes(), str(folder))

    def tensors(name: str) -> dict[str, torch.Tensor]:
        return verified_tensors((folder / name).read_bytes(), name, state, str(folder))

    rng = {
        int(path.stem.split("_")[1]): json.loads(path.read_text())
        for path in sorted((folder / RNG_FOLDER).glob("rank_*.json"))
    }
    return CheckpointContents(
        state=state,
        generator=tensors(GENERATOR_NAME),
        discriminator=tensors(DISCRIMINATOR_NAME),
        optimizer_g=tensors(OPTIMIZER_G_NAME),
        optimizer_d=tensors(OPTIMIZER_D_NAME),
        rng=rng,
    )
