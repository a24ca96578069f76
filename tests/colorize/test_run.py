"""Systemic problems stop the job before any work, with a message naming the setting or URL."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from archive_colorizer import cli
from archive_colorizer.colorize import run
from archive_colorizer.config import ColorizeConfig
from archive_colorizer.errors import ArtifactError, ConfigError, JobError
from tests.colorize.conftest import encode


@pytest.fixture
def archive(photos, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(encode(Image.fromarray(photos["coffee"]).convert("L"), "JPEG"))
    return tmp_path


def test_missing_or_corrupt_model_is_refused_before_anything_is_written(archive, tiny_model, tmp_path_factory):
    with pytest.raises(ArtifactError, match="nowhere"):
        run(ColorizeConfig(input=str(archive / "in"), output=str(archive / "out"), model=str(archive / "nowhere")))
    corrupt = tmp_path_factory.mktemp("corrupt") / "generator"
    shutil.copytree(tiny_model, corrupt)
    with open(corrupt / "generator.safetensors", "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00" * 16)
    with pytest.raises(ArtifactError, match="sha256"):
        run(ColorizeConfig(input=str(archive / "in"), output=str(archive / "out"), model=str(corrupt)))
    assert not (archive / "out").exists()


def test_unwritable_output_is_a_job_error(archive, tiny_model):
    (archive / "blocker").write_bytes(b"a file where OUTPUT's parent should be")
    with pytest.raises(JobError, match="not writable"):
        run(ColorizeConfig(input=str(archive / "in"), output=str(archive / "blocker" / "out"), model=tiny_model))


def test_model_size_must_fit_the_generator(archive, tiny_model):
    with pytest.raises(ConfigError, match="divisible by 2\\*\\*num_downs = 32"):
        run(ColorizeConfig(input=str(archive / "in"), output=str(archive / "out"), model=tiny_model, model_size=48))


def test_command_line_exit_codes_name_the_problem(archive, tiny_model, capsys):
    assert cli.main(["colorize", str(archive / "in"), str(archive / "in" / "out"), "--model", tiny_model]) == 2
    assert "OUTPUT outside INPUT" in capsys.readouterr().err
    assert cli.main(["colorize", str(archive / "in"), str(archive / "out"), "--model", str(archive / "gone")]) == 1
    assert "gone" in capsys.readouterr().err
    assert (
        cli.main(["colorize", str(archive / "in"), str(archive / "out"), "--model", tiny_model, "--actors", "3", "1"])
        == 2
    )
    assert "actors" in capsys.readouterr().err


@pytest.mark.usefixtures("ray_local")
def test_stage_settings_that_do_not_fit_are_refused_or_flagged(archive, tiny_model, capsys):
    assert (
        cli.main(
            ["colorize", str(archive / "in"), str(archive / "out"), "--model", tiny_model, "--stages", "fused", "--gpu"]
        )
        == 2
    )
    assert "stages" in capsys.readouterr().err
    # --actors without --gpu: the stages are fused, so the job runs and says the setting has no effect
    assert (
        cli.main(
            [
                "colorize",
                str(archive / "in"),
                str(archive / "out"),
                "--model",
                tiny_model,
                "--no-progress",
                "--actors",
                "2",
            ]
        )
        == 0
    )
    assert "--actors applies to split stages" in capsys.readouterr().err
    assert (archive / "out" / "a.jpg").is_file()
