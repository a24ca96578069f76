"""The generator artifact: the inference-only output of training.

A folder (any fsspec URL) holding two files:

- ``generator.safetensors``: the generator's ``state_dict`` (weights and BatchNorm buffers) in
  the safetensors format, which is parsed, never unpickled.
- ``generator.json``: the generator ``kind`` (``unet`` or ``resnet18_unet``) and its architecture
  (:class:`GeneratorSpec` or :class:`ResNetUNetSpec`), the colour normalisation, the working
  size, the weights' size and sha256, and free-form provenance (run, epoch, data). A
  ``generator.json`` without ``kind`` (written before the second kind existed) is a U-Net.

The JSON is written last and acts as the completion marker. Loading checks, in order: the JSON
parses and describes a known architecture; the weights file has the recorded size and sha256;
the tensors match the architecture exactly.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import safetensors.torch
import torch
from pydantic import ValidationError

from archive_colorizer import __version__
from archive_colorizer.color import AB_SCALE, L_SCALE
from archive_colorizer.errors import ArtifactError, ConfigError, StorageError
from archive_colorizer.models.catalog import ARCHITECTURES, check_side
from archive_colorizer.models.kinds import AnyGenerator, AnyGeneratorSpec, generator_spec
from archive_colorizer.storage import join, open_url, read_bytes, to_url, write_bytes

WEIGHTS_NAME = "generator.safetensors"
METADATA_NAME = "generator.json"
FORMAT = "archive-colorizer/generator"
FORMAT_VERSION = 1
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")


@dataclass
class GeneratorArtifact:
    """A loaded generator with its metadata.

    Attributes:
        generator: the network in eval mode on the requested device.
        spec: its architecture; ``spec.kind`` is the generator kind.
        working_size: side in pixels of the square images the model was trained on.
        sha256: hex digest of ``generator.safetensors``.
        metadata: the whole parsed ``generator.json``.
        url: the artifact folder it was loaded from.
    """

    generator: AnyGenerator
    spec: AnyGeneratorSpec
    working_size: int
    sha256: str
    metadata: dict[str, Any] = field(repr=False)
    url: str = ""

    def model_size(self, requested: int | None = None) -> int:
        """The side in pixels of the gray image the generator sees in colorize, plan and evaluate.

        Args:
            requested: the job's ``--model-size``; ``None``: the artifact's ``working_size``.

        Raises:
            ConfigError: the side is not divisible by ``2**spec.num_downs`` (names the artifact).
        """
        side = requested or self.working_size
        try:
            check_side(side, self.spec.num_downs, self.spec.kind, "model_size", f" of the generator at {self.url!r}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return side


def check_format(document: Mapping[str, Any], expected: str, newest_version: int) -> None:
    """Check the ``format`` and ``format_version`` entries of a JSON document this tool wrote.

    Raises:
        ValueError: another format, or a version newer than ``newest_version`` (callers turn it
            into an :class:`ArtifactError` naming the file).
    """
    if document.get("format") != expected:
        raise ValueError(f"format is {document.get('format')!r}, expected {expected!r}")
    if int(document.get("format_version", 0)) > newest_version:
        raise ValueError(f"format_version {document['format_version']} is newer than this tool's {newest_version}")


def save_generator(
    generator: torch.nn.Module,
    url: str,
    *,
    spec: AnyGeneratorSpec,
    working_size: int,
    provenance: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``generator.safetensors`` and ``generator.json`` into the folder ``url``.

    Args:
        generator: the network (unwrapped from DDP) built from ``spec``, of either kind.
        url: destination folder, any fsspec URL; created if missing, files replaced if present.
        spec: the generator's architecture.
        working_size: the square side (pixels) the generator was trained at, e.g. 256.
        provenance: JSON-serialisable facts about its origin (run, epoch, data, ...).
        storage_options: fsspec options for ``url``.

    Returns:
        The metadata written to ``generator.json``.

    Raises:
        StorageError: a file could not be written.
        ValueError: ``working_size`` is not a multiple of ``2**spec.num_downs``.
    """
    check_side(working_size, spec.num_downs, spec.kind, "working_size")
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in generator.state_dict().items()}
    weights = safetensors.torch.save(state, metadata={"format": FORMAT})
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": spec.kind,
        "architecture": ARCHITECTURES[spec.kind],
        "spec": spec.model_dump(),
        "num_parameters": sum(p.numel() for p in generator.parameters()),
        "color": {
            "space": "CIE Lab, D65 (kornia)",
            "input": "L / 50 - 1, shape (B, 1, H, W), in [-1, 1]",
            "output": "ab / 110, shape (B, 2, H, W), tanh, in [-1, 1]",
            "l_scale": L_SCALE,
            "ab_scale": AB_SCALE,
        },
        "working_size": working_size,
        "weights_file": WEIGHTS_NAME,
        "weights_bytes": len(weights),
        "sha256": hashlib.sha256(weights).hexdigest(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "archive_colorizer_version": __version__,
        "provenance": dict(provenance or {}),
    }
    fs, folder = open_url(url, storage_options)
    fs.makedirs(folder, exist_ok=True)
    write_bytes(fs, join(folder, WEIGHTS_NAME), weights)
    write_bytes(fs, join(folder, METADATA_NAME), json.dumps(metadata, indent=2).encode())
    return metadata


def _artifact_folder(url: str) -> str:
    """Accept the folder, or either of its two files; refuse pickled checkpoints by name."""
    stripped = url.rstrip("/")
    lower = stripped.lower()
    if lower.endswith(_PICKLE_SUFFIXES):
        raise ArtifactError(
            f"{url!r} looks like a pickled PyTorch file; archive-colorizer never unpickles models. "
            "Pass a generator artifact folder (generator.safetensors + generator.json), e.g. one "
            "written by 'archive-colorizer export'."
        )
    for name in (WEIGHTS_NAME, METADATA_NAME):
        if stripped.endswith("/" + name) or stripped == name:
            return stripped[: -len(name)].rstrip("/") or "."
    return stripped


def _read_metadata(fs, folder: str, url: str) -> tuple[dict[str, Any], AnyGeneratorSpec]:
    path = join(folder, METADATA_NAME)
    try:
        raw = read_bytes(fs, path)
    except FileNotFoundError as exc:
        raise ArtifactError(f"no generator artifact at {url!r}: {METADATA_NAME} is missing") from exc
    except StorageError as exc:
        raise ArtifactError(f"cannot read the generator artifact at {url!r}: {exc}") from exc
    try:
        metadata = json.loads(raw)
        check_format(metadata, FORMAT, FORMAT_VERSION)
        spec = generator_spec(metadata["spec"], metadata.get("kind"))
        int(metadata["working_size"]), str(metadata["sha256"]), int(metadata["weights_bytes"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ArtifactError(f"corrupt {METADATA_NAME} in {url!r}: {exc}") from exc
    return metadata, spec


def load_generator(
    url: str, *, device: str | torch.device = "cpu", storage_options: Mapping[str, Any] | None = None
) -> GeneratorArtifact:
    """Load a generator artifact from any fsspec URL, without unpickling anything.

    Args:
        url: the artifact folder, or the path of its ``generator.json``/``generator.safetensors``.
        device: where to put the generator.
        storage_options: fsspec options for ``url``.

    Returns:
        A :class:`GeneratorArtifact` whose generator is in eval mode on ``device``.

    Raises:
        ArtifactError: the URL is a pickled checkpoint (by its suffix) or any other single
            file instead of a folder, a file is missing or unreadable, the
            weights are truncated or do not match the recorded sha256, or the tensors do not
            match the architecture in ``generator.json``. The message names the URL.
    """
    folder_url = _artifact_folder(url)
    fs, folder = open_url(folder_url, storage_options)
    folder = folder.rstrip("/")
    shown = to_url(fs, folder)
    if fs.isfile(folder):
        raise ArtifactError(
            f"{shown!r} is a file, not a generator artifact folder; archive-colorizer never unpickles models. "
            f"Pass a folder holding {WEIGHTS_NAME} + {METADATA_NAME}, e.g. one written by 'archive-colorizer export'."
        )
    metadata, spec = _read_metadata(fs, folder, shown)
    weights_path = join(folder, WEIGHTS_NAME)
    try:
        weights = read_bytes(fs, weights_path)
    except (FileNotFoundError, StorageError) as exc:
        raise ArtifactError(f"generator artifact at {shown!r} has no readable {WEIGHTS_NAME}: {exc}") from exc
    if len(weights) != metadata["weights_bytes"]:
        raise ArtifactError(
            f"{WEIGHTS_NAME} in {shown!r} is truncated or replaced: {len(weights)} bytes, "
            f"{METADATA_NAME} records {metadata['weights_bytes']}"
        )
    digest = hashlib.sha256(weights).hexdigest()
    if digest != metadata["sha256"]:
        raise ArtifactError(
            f"{WEIGHTS_NAME} in {shown!r} does not match its sha256: file {digest}, {METADATA_NAME} "
            f"{metadata['sha256']}"
        )
    try:
        state = safetensors.torch.load(weights)
    except Exception as exc:  # safetensors raises its own SafetensorError for malformed files
        raise ArtifactError(f"corrupt {WEIGHTS_NAME} in {shown!r}: {exc}") from exc
    generator = spec.build()
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"weights in {shown!r} do not match the architecture in {METADATA_NAME}: {exc}") from exc
    generator.to(device).eval()
    return GeneratorArtifact(
        generator=generator,
        spec=spec,
        working_size=int(metadata["working_size"]),
        sha256=digest,
        metadata=metadata,
        url=shown,
    )
