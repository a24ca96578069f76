"""What every job's typed configuration shares: the base class, YAML loading, secret redaction, option mixins.

Every job has one config class deriving from :class:`JobConfig`, in its own package
(``archive_colorizer/<job>/config.py``: ``prepare``, ``train``, ``export``, ``colorize``,
``plan``, ``evaluate``, ``verify``, ``demo``). Values come, lowest priority first, from the field defaults, a YAML file
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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from archive_colorizer.errors import ConfigError
from archive_colorizer.lazy import moved
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
            k: (
                REDACTED
                if (_SECRET_KEY.search(str(k)) or str(k).lower() in ("key", "secret")) and v is not None
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def dotted_suffixes(value: list[str]) -> list[str]:
    """File name suffixes as lower-case ``.ext`` (``JPG`` -> ``.jpg``).

    Raises:
        ValueError: the list is empty.
    """
    if not value:
        raise ValueError("at least one extension is needed")
    return [("." + ext.lstrip(".")).lower() for ext in value]


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
        values, source = cls.merged_values(path, overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid {cls.__name__} ({source}): {problems}") from exc

    @classmethod
    def merged_values(
        cls, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], str]:
        """The settings of an optional YAML file updated by ``overrides``, not yet validated.

        Returns:
            ``(values by field name, where they came from)`` for messages.

        Raises:
            ConfigError: the file is missing, not YAML, or not a mapping; the message names it.
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
        return values, source

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


# --- Options several jobs share: each is declared once, here, and inherited (pydantic puts inherited fields
# first, so they lead a job's --help and option table) ---


class StorageOptions(JobConfig):
    """The ``--storage-option KEY=VALUE`` setting: fsspec options for every URL a job opens."""

    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec option for the job's URLs (inputs, outputs, model, lists), e.g. "
        "endpoint_url=http://host:9000 (repeatable)",
        json_schema_extra={"cli_name": "storage-option"},
    )


class RayOptions(JobConfig):
    """How a job on Ray connects to its cluster (see :mod:`archive_colorizer.runtime`) and when it gives up."""

    ray_address: str | None = Field(
        None,
        description="Ray cluster address (host:port, ray://host:10001, or local for a new local Ray); none: "
        "RAY_ADDRESS if set, else the cluster a `ray start` on this machine recorded if it answers (a record of a "
        "dead head is reported and skipped), else a new local Ray",
    )
    ray_connect_timeout: float = Field(
        30.0,
        gt=0,
        description="seconds a given Ray address (--ray-address or RAY_ADDRESS) may take to answer before the job "
        "fails with an error naming it",
    )
    stall_timeout: float = Field(
        600.0,
        ge=0,
        description="fail with a message when the job makes no progress (no shard task, training step or batch of "
        "inputs finished) for this many seconds, e.g. the cluster lacks the CPUs or GPUs the tasks ask for; 0: wait "
        "forever",
    )


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
"""Image file suffixes ``prepare`` and ``evaluate`` read by default (compared case-insensitively)."""


_MOVED = {
    "PrepareConfig": "archive_colorizer.prepare.config",
    "TrainConfig": "archive_colorizer.train.config",
    "ExportConfig": "archive_colorizer.export.config",
    "ColorizeConfig": "archive_colorizer.colorize.config",
    "COLORIZE_EXTENSIONS": "archive_colorizer.colorize.config",
    "VerifyConfig": "archive_colorizer.verify.config",
    "EvaluateConfig": "archive_colorizer.evaluate.config",
    "DemoConfig": "archive_colorizer.demo.config",
    "DEMO_TRAIN_SETTINGS": "archive_colorizer.demo.config",
    "PlanConfig": "archive_colorizer.plan.config",
}
"""Job configs that lived here before each job had its own ``config.py``: still importable from
here for one release, with a ``DeprecationWarning`` naming the new place."""


__getattr__ = moved(__name__, _MOVED)
