"""Typed job configurations: pydantic models, a YAML file, command-line overrides.

Every job (prepare, train, colorize, export, evaluate) has one config class deriving from
:class:`JobConfig`. Values come, lowest priority first, from the field defaults, a YAML file
(``--config FILE.yaml``) and the command line; pydantic validates the result, so a bad value
is refused with the setting's name. The resolved config is saved next to every output, with
secrets (storage-option keys, tokens, passwords) replaced by ``"***"``.

The command line is generated from the fields (see :mod:`archive_colorizer.cli`): a field's
``description`` is its help text and the README's option tables are checked against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from archive_colorizer.errors import ConfigError
from archive_colorizer.storage import open_url, write_bytes

_SECRET_KEY = re.compile(r"(secret|token|password|passwd|credential|session|access_key|key_id|private)", re.I)
REDACTED = "***"

ConfigT = TypeVar("ConfigT", bound="JobConfig")


def redact(value: Any) -> Any:
    """Copy of ``value`` with every mapping entry whose key names a secret replaced by ``***``.

    Keys matching ``secret``, ``token``, ``password``, ``key_id``, ``access_key``, ``session``,
    ``credential`` or ``private`` (any case) are redacted, at any depth; ``key``/``secret``
    (s3fs's own names) as well.
    """
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if (_SECRET_KEY.search(str(k)) or str(k).lower() in ("key", "secret")) and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class JobConfig(BaseModel):
    """Base of the job configs: strict fields, YAML loading, redacted saving."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @classmethod
    def load(cls: type[ConfigT], path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> ConfigT:
        """Build a config from an optional YAML file and overrides (which win).

        Args:
            path: a YAML file whose top level is a mapping of field names (``-`` or ``_``).
            overrides: field values, e.g. from the command line.

        Raises:
            ConfigError: the file is missing or not a mapping, a key is unknown, or a value is
                invalid; the message names the file and setting.
        """
        values: dict[str, Any] = {}
        source = "command line"
        if path is not None:
            source = str(path)
            try:
                loaded = yaml.safe_load(Path(path).read_text())
            except FileNotFoundError as exc:
                raise ConfigError(f"config file {path} does not exist") from exc
            except yaml.YAMLError as exc:
                raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, Mapping):
                raise ConfigError(f"config file {path} must hold a mapping of settings, got {type(loaded).__name__}")
            values.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
            source = f"{path} / command line"
        values.update(overrides or {})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid {cls.__name__} ({source}): {problems}") from exc

    def public_dict(self) -> dict[str, Any]:
        """The config as JSON-compatible data with secrets redacted (safe for logs and outputs)."""
        return redact(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        """The redacted config as YAML, loadable again with :meth:`load` (secrets excepted)."""
        return yaml.safe_dump(self.public_dict(), sort_keys=False)

    def to_json(self) -> str:
        """The redacted config as indented JSON."""
        return json.dumps(self.public_dict(), indent=2)

    def save(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write the redacted config as YAML to ``url`` (any fsspec URL)."""
        fs, path = open_url(url, storage_options)
        write_bytes(fs, path, self.to_yaml().encode())


# --- colorize ---

from typing import Literal  # noqa: E402  (kept next to the section that needs it)

from pydantic import Field, field_validator  # noqa: E402

from archive_colorizer.imageio import DEFAULT_MAX_PIXELS, GRAY_CHROMA_THRESHOLD  # noqa: E402

COLORIZE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp")


class ColorizeConfig(JobConfig):
    """Settings of ``archive-colorizer colorize``: batch-colorize an archive with Ray Data actors."""

    input: str = Field(
        description="folder or prefix holding the archive (a local path, s3://bucket/prefix or any fsspec URL); "
        "listed recursively, or the root that --input-list entries are relative to",
        json_schema_extra={"cli": "positional"},
    )
    output: str = Field(
        description="folder or prefix for the colorized images, mirroring the input's relative paths, with "
        "_manifest/*.parquet and _summary.json; must not be INPUT, lie inside it or contain it",
        json_schema_extra={"cli": "positional"},
    )
    model: str = Field(description="generator artifact folder (generator.safetensors + generator.json), any fsspec URL")
    input_list: str | None = Field(
        None,
        description="file of inputs instead of listing INPUT: .txt (one per line), .csv or .parquet (column "
        "'url', 'input_url' or 'path', else the first); entries are URLs below INPUT or paths relative to it",
    )
    extensions: list[str] = Field(
        default_factory=lambda: list(COLORIZE_EXTENSIONS),
        description="file name suffixes colorized when listing INPUT (case-insensitive)",
    )
    format: Literal["auto", "jpeg", "png", "tiff"] = Field(
        "auto",
        description="output format; auto keeps JPEG, PNG and TIFF (16-bit TIFF stays 16-bit) and writes other "
        "formats as PNG; a changed format appends its suffix (scan.gif -> scan.gif.png)",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of JPEG outputs (4:4:4 chroma at 90 and above)")
    on_color: Literal["skip", "colorize"] = Field(
        "skip", description="what to do with inputs that are already colour: skip (recorded as skipped_color) or colorize their gray"
    )
    color_threshold: float = Field(
        GRAY_CHROMA_THRESHOLD,
        ge=0,
        description="an input counts as colour when its mean chroma reaches this: the mean distance of BT.601 "
        "(Cb, Cr) from neutral in 8-bit levels on a 256-pixel thumbnail (gray scans about 0-2, colour photos 15-55)",
    )
    model_size: int | None = Field(
        None, ge=16, description="side in pixels of the square gray image the generator sees; default: the artifact's working size"
    )
    batch_size: int = Field(16, ge=1, description="images per generator forward pass in an actor")
    task_batch_size: int = Field(
        16, ge=1, description="images per CPU task batch (decode; merge, encode and write) and per manifest part"
    )
    actors: list[int] | None = Field(
        None,
        description="predictor actor pool: N for a fixed pool or MIN MAX to autoscale; default 1 to the number of "
        "GPUs with --gpu, else 1 to half the CPUs",
    )
    cpus_per_task: float = Field(
        0.5, gt=0, description="CPUs reserved by each decode and merge/encode task; 0.5 runs two per core, "
        "which keeps every core busy while tasks wait on storage"
    )
    cpus_per_actor: float = Field(
        1.0, gt=0, description="CPUs reserved by each predictor actor: its torch threads on CPU, the thread that "
        "feeds its GPU with --gpu (when equal to --cpus-per-task, Ray runs the decode stage inside the actors)"
    )
    gpu: bool = Field(False, description="run each predictor actor on one GPU (bf16 autocast)")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="inputs with more pixels fail without being decoded (decompression-bomb guard)")
    max_failure_rate: float = Field(
        0.05, ge=0, le=1, description="exit non-zero when more than this fraction of the inputs failed"
    )
    overwrite: bool = Field(False, description="colorize again inputs that a previous run already colorized")
    progress: bool = Field(True, description="show a progress bar while the job runs")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for INPUT, OUTPUT, the model and the input list, e.g. endpoint_url=http://host:9000",
        json_schema_extra={"cli_name": "storage-option"},
    )
    ray_address: str | None = Field(None, description="Ray cluster address; default RAY_ADDRESS or a local Ray")

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one extension is needed")
        return [("." + ext.lstrip(".")).lower() for ext in value]

    @field_validator("actors")
    @classmethod
    def _check_actors(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(value) not in (1, 2) or min(value) < 1 or value[0] > value[-1]:
            raise ValueError(f"expected N or MIN MAX with 1 <= MIN <= MAX, got {value}")
        return value
