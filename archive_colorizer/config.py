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
