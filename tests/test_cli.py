"""Command line generated from the configs: options, booleans, key=value, files, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archive_colorizer import __version__, cli
from tests.test_config import ExampleConfig

RESULTS: list[ExampleConfig] = []


def _run_example(config: ExampleConfig) -> None:
    RESULTS.append(config)


@pytest.fixture
def example_command(monkeypatch):
    command = cli.Command("example", "an example job", "tests.test_config:ExampleConfig", "tests.test_cli:_run_example")
    monkeypatch.setattr(cli, "COMMANDS", [command])
    RESULTS.clear()
    return command


def test_options_are_generated_from_the_config(example_command):
    code = cli.main(
        [
            "example",
            "photos/",
            "--size",
            "300",
            "--gpu",
            "--gan-mode",
            "lsgan",
            "--storage-option",
            "endpoint_url=http://127.0.0.1:9000",
            "--storage-option",
            "anon=true",
        ]
    )
    assert code == 0
    config = RESULTS[-1]
    assert (config.input, config.size, config.gpu, config.gan_mode) == ("photos/", 300, True, "lsgan")
    assert config.storage_options == {"endpoint_url": "http://127.0.0.1:9000", "anon": True}


def test_command_line_overrides_the_config_file(example_command, tmp_path):
    (tmp_path / "job.yaml").write_text("size: 400\ngpu: true\n")
    assert cli.main(["example", "photos/", "--config", str(tmp_path / "job.yaml"), "--no-gpu"]) == 0
    assert (RESULTS[-1].size, RESULTS[-1].gpu) == (400, False)


def test_invalid_value_exits_2_naming_the_setting(example_command, capsys):
    assert cli.main(["example", "photos/", "--size", "3"]) == 2
    assert "size" in capsys.readouterr().err


def test_help_lists_every_field_with_its_default(example_command):
    help_text = cli.build_parser().format_help()
    assert "example" in help_text
    sub_help = cli.build_parser()._subparsers._group_actions[0].choices["example"].format_help()
    for option in ("--size", "--val-fraction", "--gpu", "--no-gpu", "--gan-mode", "--storage-option", "--config"):
        assert option in sub_help
    assert "(default: 286)" in sub_help


def test_console_script_prints_its_version():
    completed = subprocess.run(
        [sys.executable, "-m", "archive_colorizer.cli", "--version"], capture_output=True, text=True
    )
    assert completed.returncode == 0
    assert __version__ in completed.stdout


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_print_config_works_for_every_job_with_no_other_argument(command, capsys):
    import yaml

    assert cli.main([command, "--print-config"]) == 0
    out = capsys.readouterr().out
    config_cls, _ = next(c for c in cli.COMMANDS if c.name == command).load()
    printed = yaml.safe_load(out)
    assert list(printed) == list(config_cls.model_fields)  # every setting, in the config's order
    required = [name for name, field in config_cls.model_fields.items() if field.is_required()]
    if required:
        assert out.splitlines()[0] == f"# missing required settings: {', '.join(required)}"
        assert all(printed[name] is None for name in required)
    for name, field in config_cls.model_fields.items():
        if not field.is_required() and name != "storage_options":
            default = field.get_default(call_default_factory=True)
            assert printed[name] == (list(default) if isinstance(default, tuple) else default), name


def test_print_config_shows_defaults_then_the_file_then_options_with_secrets_redacted(
    example_command, tmp_path, capsys
):
    import yaml

    (tmp_path / "job.yaml").write_text("size: 400\ngpu: true\ngan_mode: lsgan\n")
    args = ["example", "photos/", "--config", str(tmp_path / "job.yaml"), "--no-gpu", "--print-config"]
    args += ["--storage-option", "secret=s3cr3t-value", "--storage-option", "endpoint_url=http://127.0.0.1:9000"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert RESULTS == []  # printed, not run
    printed = yaml.safe_load(out)
    assert (printed["input"], printed["size"], printed["gpu"], printed["gan_mode"]) == ("photos/", 400, False, "lsgan")
    assert printed["storage_options"] == {"secret": "***", "endpoint_url": "http://127.0.0.1:9000"}
    assert "s3cr3t-value" not in out
    # What it prints is a valid --config file: the same settings again.
    (tmp_path / "printed.yaml").write_text(out)
    assert cli.main(["example", "--config", str(tmp_path / "printed.yaml")]) == 0
    assert (RESULTS[-1].input, RESULTS[-1].size, RESULTS[-1].gpu) == ("photos/", 400, False)


def test_print_config_refuses_an_invalid_value_naming_it(example_command, capsys):
    assert cli.main(["example", "photos/", "--size", "3", "--print-config"]) == 2
    assert "size" in capsys.readouterr().err
