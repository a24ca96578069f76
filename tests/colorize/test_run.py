"""Systemic problems stop the job before any work, with a message naming the setting or URL."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from archive_colorizer import cli
from archive_colorizer.colorize import run
from archive_colorizer.colorize.config import ColorizeConfig
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


def test_counts_that_do_not_add_up_to_the_inputs_listed_fail_the_run_with_both_counts():
    from collections import Counter

    from archive_colorizer.colorize import job, pipeline

    config = ColorizeConfig(input="in", output="out", model="m")
    state = pipeline.Progress(Counter(colorized=7, failed=1, duplicate=2), listed=10, listing_done=True)
    assert job._accounting(config, state) == (8, None)  # 7 + 1 distinct inputs, 2 repeated entries
    state.listed = 12
    total, mismatch = job._accounting(config, state)
    assert total == 8 and "12 inputs listed but 10 rows came back" in mismatch and "colorized 7" in mismatch


@pytest.mark.usefixtures("ray_local")
def test_a_different_model_redoes_what_another_one_finished_unless_kept(archive, tiny_model, tmp_path, capsys):
    import torch

    from archive_colorizer.colorize import manifest
    from archive_colorizer.models import GeneratorSpec
    from archive_colorizer.models.artifact import save_generator

    torch.manual_seed(1)
    spec = GeneratorSpec(ngf=8, num_downs=5)
    other = str(tmp_path / "other-generator")
    save_generator(spec.build(), other, spec=spec, working_size=32)
    (archive / "in" / "b.jpg").write_bytes((archive / "in" / "a.jpg").read_bytes())
    common = {"input": str(archive / "in"), "output": str(archive / "out"), "progress": False}
    first = run(ColorizeConfig(model=tiny_model, **common))
    capsys.readouterr()
    second = run(ColorizeConfig(model=other, **common))
    assert second.counts["colorized"] == 2 and second.summary["redone_other_model"] == 2
    assert "2 inputs finished by another generator were colorized again" in capsys.readouterr().err
    kept = run(ColorizeConfig(model=tiny_model, keep_other_models=True, **common))
    assert kept.counts["skipped_existing"] == 2 and kept.summary["redone_other_model"] == 0
    final = manifest.latest_rows(manifest.read_manifest(str(archive / "out"))).to_pylist()
    assert {row["model_sha256"] for row in final} == {second.model_sha256} != {first.model_sha256}


@pytest.mark.usefixtures("ray_local")
def test_runs_of_one_driver_share_its_listing_progress_actor_and_a_dead_one_is_replaced(archive, tiny_model, tmp_path):
    import ray

    from archive_colorizer.colorize import listing_progress

    for name in ("b.jpg", "c.jpg"):
        (archive / "in" / name).write_bytes((archive / "in" / "a.jpg").read_bytes())

    def colorize(output: str):
        result = run(ColorizeConfig(input=str(archive / "in"), output=str(tmp_path / output), model=tiny_model))
        assert (result.exit_code, result.summary["listed"], result.counts["colorized"]) == (0, 3, 3)
        return listing_progress._progress_actor().actor

    actor = colorize("first")
    held = ray.get(actor.runs.remote())  # runs of other tests that made listings without a job
    assert colorize("second") is actor  # no new actor process for the second job
    assert ray.get(actor.runs.remote()) == held  # the run's counts went when it ended
    ray.kill(actor)
    with pytest.raises(ray.exceptions.RayActorError):
        for _ in range(100):
            ray.get(actor.runs.remote(), timeout=10)
    assert colorize("third") is not actor
