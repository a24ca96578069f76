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
