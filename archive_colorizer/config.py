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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from archive_colorizer.errors import ConfigError
from archive_colorizer.imageio import DEFAULT_MAX_PIXELS, GRAY_CHROMA_THRESHOLD
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


# --- prepare ---

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
"""Image file suffixes ``prepare`` reads by default (compared case-insensitively)."""


class PrepareConfig(JobConfig):
    """Settings of ``archive-colorizer prepare INPUT OUTPUT``: photo collections -> Parquet shards.

    See :func:`archive_colorizer.prepare.run` for what the job does with them.
    """

    input: str = Field(
        description="photo collection: a folder or prefix of images (recursive; .zip, .tar and .parquet files in it "
        "are read too), a .zip or .tar archive, or a Parquet file with a Hugging Face image column; any fsspec URL",
        json_schema_extra={"cli": "positional"},
    )
    output: str = Field(
        description="folder or prefix for the Parquet shards, _stats.json and _config.yaml; must be empty or missing "
        "(see --overwrite) and not inside INPUT",
        json_schema_extra={"cli": "positional"},
    )
    size: int = Field(286, ge=16, description="shorter side of the stored images in pixels, aspect ratio kept (286 leaves room for a 256 random crop)")
    min_size: int = Field(
        128, ge=1,
        description="drop images whose shorter side (after EXIF orientation) is below this many pixels (dropped_small); "
        "larger ones below --size are upscaled",
    )
    gray_threshold: float = Field(
        GRAY_CHROMA_THRESHOLD, ge=0,
        description="drop images whose mean chroma is below this (dropped_grayscale): the mean distance of (Cb, Cr) "
        "from neutral gray in 8-bit BT.601 levels on a thumbnail of at most 256 px; gray scans score 0-2, colour "
        "photographs about 15-55",
    )
    val_fraction: float = Field(
        0.02, ge=0, le=1,
        description="fraction of images put in the 'val' split, chosen by a stable hash of each image's path relative "
        "to INPUT (the same photo gets the same split on every run and from a folder, zip, tar or bucket alike)",
    )
    seed: int = Field(0, ge=0, lt=2**63, description="salt of the split hash: another seed draws another validation set")
    rows_per_shard: int = Field(1000, ge=1, description="inputs per shard task; a shard holds this many rows less the dropped images")
    extensions: list[str] = Field(
        default_factory=lambda: list(IMAGE_EXTENSIONS),
        description="image file suffixes to read (case-insensitive), in folders and inside archives",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of the stored images (4:4:4 chroma at 90 and above)")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="drop images with more pixels than this before decoding them (dropped_too_large)")
    overwrite: bool = Field(
        False,
        description="replace what an earlier prepare wrote in OUTPUT (shard-*.parquet, _stats*, _config.yaml); other files are left alone",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec option for INPUT (and OUTPUT unless --output-storage-option is given), e.g. endpoint_url=http://host:9000",
        json_schema_extra={"cli_name": "storage-option"},
    )
    output_storage_options: dict[str, Any] | None = Field(
        None,
        description="fsspec option for OUTPUT when it needs other ones than INPUT, e.g. anon=false",
        json_schema_extra={"cli_name": "output-storage-option"},
    )
    read_threads: int = Field(8, ge=1, le=256, description="threads per shard task reading input files (hides object-store latency)")
    max_tasks: int | None = Field(None, ge=1, description="shard tasks in flight at once; none means twice the cluster's CPUs")
    progress: bool = Field(True, description="show a progress bar on stderr")
    ray_address: str | None = Field(
        None,
        description="Ray cluster address (host:port, ray://host:10001, or local for a new local Ray); none means RAY_ADDRESS if set, else the cluster a `ray start` on this machine started last, else a new local Ray",
    )

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        cleaned = [ext.strip().lower() for ext in value if ext.strip()]
        if not cleaned:
            raise ValueError("at least one extension is needed, e.g. .jpg")
        return [ext if ext.startswith(".") else "." + ext for ext in cleaned]

    @property
    def output_options(self) -> dict[str, Any]:
        """The fsspec options for OUTPUT: ``output_storage_options`` if given, else ``storage_options``."""
        return dict(self.storage_options if self.output_storage_options is None else self.output_storage_options)
