"""``archive-colorizer`` command line: one subcommand per job.

Each subcommand's options are generated from its config class (:mod:`archive_colorizer.config`):
a field ``max_pixels`` becomes ``--max-pixels``, a bool ``gpu`` becomes ``--gpu/--no-gpu``, a
``Literal`` becomes a choice, a mapping becomes a repeatable ``--name KEY=VALUE``. Options not
given on the command line keep the value from ``--config FILE.yaml`` or the field's default.
``jobs/*.py`` call :func:`main` with their job's name, so both take the same options.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic.fields import FieldInfo

from archive_colorizer import __version__
from archive_colorizer.config import ConfigT, JobConfig, redact
from archive_colorizer.errors import ArchiveColorizerError, ConfigError, JobStopped
from archive_colorizer.stopping import stop_handlers, stopped_message


@dataclass(frozen=True)
class Command:
    """A subcommand: ``archive_colorizer.<name>.config`` holds its config class, ``<name>.job`` its ``run(config)``.

    Every job has the same shape, so the registry needs only the name: ``colorize`` ->
    ``archive_colorizer.colorize.config:ColorizeConfig`` and ``archive_colorizer.colorize.job:run``
    (CONTRIBUTING.md, "Layout"). Both are imported only when the subcommand runs or
    its options are built, so ``--help`` stays fast (``<name>/job.py`` imports Ray and torch).
    """

    name: str
    help: str
    config: str = ""
    """``module:attribute`` of the config class; default ``archive_colorizer.<name>.config:<Name>Config``."""
    run: str = ""
    """``module:attribute`` of the job's ``run(config) -> Result``; default ``archive_colorizer.<name>.job:run``."""

    def __post_init__(self) -> None:
        if not self.config:
            object.__setattr__(self, "config", f"archive_colorizer.{self.name}.config:{self.name.capitalize()}Config")
        if not self.run:
            object.__setattr__(self, "run", f"archive_colorizer.{self.name}.job:run")

    def load(self) -> tuple[type[JobConfig], Callable[[Any], Any]]:
        return _import(self.config), _import(self.run)


def _import(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


COMMANDS: list[Command] = [
    Command(
        "prepare",
        "photo collections (folder, bucket, zip, tar, Parquet) -> Parquet training shards",
    ),
    Command(
        "train",
        "train a pix2pix colorization model with Ray Train (resumes a run directory)",
    ),
    Command(
        "export",
        "export a training checkpoint as a generator artifact",
    ),
    Command(
        "colorize",
        "colorize an archive at full resolution with a generator artifact (Ray Data: fused CPU tasks, or "
        "predictor actors with --gpu), with a manifest and resume",
    ),
    Command(
        "evaluate",
        "score a generator on held-out colour photos against the gray baseline (PSNR, SSIM, colorfulness, CIEDE2000)",
    ),
    Command(
        "demo",
        "the whole flow on real photographs on one machine: prepare, train, colorize (make demo)",
    ),
    Command(
        "plan",
        "before colorizing: list an archive, time colorize's stages on a sample here, and project wall time, "
        "node-hours, cost and the bottleneck onto a cluster (cluster.yaml or --cpus/--gpus/--nodes)",
    ),
    Command(
        "verify",
        "check the C2PA manifests of colorized files (paths, folders or URLs): valid, trusted, invalid (with the "
        "validation codes) or unsigned; exit 1 if any is invalid",
    ),
]
"""Registered subcommands, in the order ``--help`` lists them."""


def _is_positional(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("cli") == "positional"


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def parse_key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value); the value is read as a YAML scalar (``true`` -> True)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    parsed = yaml.safe_load(value) if value else ""
    # Credentials and endpoints stay strings even when they look like numbers.
    if not isinstance(parsed, (bool, int, float)) or any(s in key.lower() for s in ("key", "secret", "token", "url")):
        parsed = value
    return key, parsed


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, bool):
        return "yes" if default else "no"
    if default in (None, {}, []):
        return "none"
    if isinstance(default, (list, tuple)):  # as typed on the command line: --extensions .jpg .png
        return " ".join(str(item) for item in default)
    return str(default)


def option_name(field_name: str, field: FieldInfo | None = None) -> str:
    """The command-line option of a config field: ``max_pixels`` -> ``--max-pixels``.

    A field may choose another name with ``json_schema_extra={"cli_name": "storage-option"}``.
    """
    extra = field.json_schema_extra if field is not None else None
    if isinstance(extra, dict) and extra.get("cli_name"):
        return "--" + str(extra["cli_name"])
    return "--" + field_name.replace("_", "-")


PRINT_CONFIG = "--print-config"
"""The option that prints a job's effective config instead of running it."""


def add_config_arguments(
    parser: argparse.ArgumentParser, config_cls: type[JobConfig], optional_positionals: bool = False
) -> None:
    """Add one argument per field of ``config_cls`` (plus ``--config`` and ``--print-config``) to ``parser``.

    Options default to ``argparse.SUPPRESS`` so that only what the user typed overrides the
    YAML file and the field defaults. ``optional_positionals``: INPUT, OUTPUT etc. may be left
    out (for ``--print-config``, which shows them as missing).
    """
    for name, field in config_cls.model_fields.items():
        help_text = f"{field.description or ''} (default: {_default_text(field)})"
        if _is_positional(field):
            many = typing.get_origin(_unwrap_optional(field.annotation)) in (list, tuple)
            optional: dict[str, Any] = {"nargs": "?", "default": argparse.SUPPRESS} if optional_positionals else {}
            if many:
                optional["nargs"] = "*" if optional_positionals else "+"
            parser.add_argument(name, metavar=name.upper(), help=field.description, **optional)
            continue
        annotation = _unwrap_optional(field.annotation)
        origin = typing.get_origin(annotation)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": name}
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            kwargs["choices"] = [str(choice) for choice in typing.get_args(annotation)]
        elif origin is dict or annotation is dict:
            kwargs.update(action="append", type=parse_key_value, metavar="KEY=VALUE")
        elif origin in (list, tuple):
            kwargs.update(nargs="+", metavar="VALUE")
        else:
            kwargs["metavar"] = name.upper()
        parser.add_argument(option_name(name, field), **kwargs)
    parser.add_argument(
        "--config", metavar="FILE.yaml", default=None, help="YAML file of settings; options given here override it"
    )
    parser.add_argument(
        PRINT_CONFIG,
        action="store_true",
        help="print the effective settings (defaults, then --config FILE.yaml, then the options given) as YAML, "
        "secrets redacted and missing required ones named, and exit without running the job",
    )


def config_from_args(config_cls: type[ConfigT], namespace: argparse.Namespace) -> ConfigT:
    """Build the job config from the YAML file named by ``--config`` and the parsed options.

    Raises:
        ConfigError: invalid file or value (names the setting).
    """
    return config_cls.load(namespace.config, _option_values(config_cls, namespace))


def _option_values(config_cls: type[JobConfig], namespace: argparse.Namespace) -> dict[str, Any]:
    """The settings typed on the command line, as field values."""
    values = {k: v for k, v in vars(namespace).items() if k in config_cls.model_fields}
    for name, value in list(values.items()):
        annotation = _unwrap_optional(config_cls.model_fields[name].annotation)
        if (typing.get_origin(annotation) is dict or annotation is dict) and isinstance(value, list):
            values[name] = dict(value)
        elif (
            isinstance(value, str)
            and value.lower() in ("none", "null")
            and not config_cls.model_fields[name].is_required()
        ):
            values[name] = None
    return values


def _needed(field: FieldInfo, values: dict[str, Any]) -> bool:
    """Whether a setting must be given: required, or required unless another one (``required_unless``) is set."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    unless = extra.get("required_unless")
    return field.is_required() or (isinstance(unless, str) and not values.get(unless))


def print_config(config_cls: type[JobConfig], namespace: argparse.Namespace) -> int:
    """Print the effective config as YAML (secrets redacted); returns the exit code.

    Like LightningCLI's ``--print_config``: defaults, then the ``--config`` file, then the
    options given. Required settings not given are listed in a comment and shown as ``null``;
    the output (with them filled in) is a valid ``--config`` file. A value that does not
    validate is an error (exit 2) naming the setting.
    """
    options = _option_values(config_cls, namespace)
    values, _ = config_cls.merged_values(namespace.config, options)
    fields = config_cls.model_fields
    missing = [name for name, field in fields.items() if name not in values and _needed(field, values)]
    if not missing:
        sys.stdout.write(config_cls.load(namespace.config, options).to_yaml())
        return 0
    merged: dict[str, Any] = {}
    for name, field in fields.items():
        if name in values:
            merged[name] = values[name]
        else:
            merged[name] = None if name in missing else field.get_default(call_default_factory=True)
    print(f"# missing required settings: {', '.join(missing)}")
    sys.stdout.write(yaml.safe_dump(redact(json.loads(json.dumps(merged, default=str))), sort_keys=False))
    return 0


def build_parser(
    commands: Sequence[Command] | None = None, optional_positionals: bool = False
) -> argparse.ArgumentParser:
    """The ``archive-colorizer`` parser with every registered subcommand.

    ``optional_positionals``: INPUT, OUTPUT etc. may come from ``--config FILE.yaml`` or be
    shown as missing by ``--print-config``; a required one given nowhere is then a config error.
    """
    parser = argparse.ArgumentParser(
        prog="archive-colorizer",
        description="Train pix2pix colorization models with Ray Train and colorize photo archives with Ray Data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands if commands is not None else COMMANDS:
        config_cls = _import(command.config)
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        add_config_arguments(sub, config_cls, optional_positionals=optional_positionals)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, build the config, run the job; returns the process exit code.

    Exit codes: 0 success, 1 the job failed (message on stderr, or the result's ``exit_code``),
    2 bad usage or config (also a :class:`ConfigError` the job raises, e.g. a refused OUTPUT),
    128 + N stopped by signal N (143 for SIGTERM from ``ray job stop`` or Kubernetes, 130 for
    Ctrl-C); what finished is kept and re-running the same command resumes.
    """
    try:
        with stop_handlers():  # SIGTERM/SIGINT raise JobStopped: the job keeps what finished and stops
            return _main(argv)
    except JobStopped as exc:
        print(stopped_message(sys.argv[1:] if argv is None else argv, exc), file=sys.stderr, flush=True)
        return 128 + exc.signal_number


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    from_file = any(a == "--config" or a.startswith("--config=") for a in arguments)
    parser = build_parser(optional_positionals=from_file or PRINT_CONFIG in arguments)
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return 2
    command = next(c for c in COMMANDS if c.name == args.command)
    config_cls, run = command.load()
    try:
        if args.print_config:
            return print_config(config_cls, args)
        config = config_from_args(config_cls, args)
    except ConfigError as exc:
        print(f"archive-colorizer {command.name}: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(config)
    except ConfigError as exc:  # a setting the job found unusable (e.g. OUTPUT inside INPUT)
        print(f"archive-colorizer {command.name}: {exc}", file=sys.stderr)
        return 2
    except ArchiveColorizerError as exc:
        print(f"archive-colorizer {command.name}: {exc}", file=sys.stderr)
        return 1
    return int(getattr(result, "exit_code", 0) or 0)


if __name__ == "__main__":  # pragma: no cover  (``python -m archive_colorizer`` also handles a signal during teardown)
    sys.exit(main())
