"""The colorize job under faults, on the session's real local Ray: killed workers, a killed driver.

Killing: the test finds this session's Ray processes among its own descendants (psutil) by
the titles Ray 2.60 gives them while they work: ``ray::MapWorker(MapBatches(Predictor)).submit``
(a predictor actor running a batch), ``ray::MapBatches(finish_batch)`` (a merge/encode/write
task). The driver is a separate ``python -m archive_colorizer colorize`` process connected
to the session's Ray.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from archive_colorizer import cli, images
from archive_colorizer.colorize import manifest, review, run
from archive_colorizer.colorize.config import ColorizeConfig
from archive_colorizer.colorize.decode import prepare_row
from archive_colorizer.colorize.encode import Provenance
from archive_colorizer.colorize.merge import render
from archive_colorizer.colorize.predictor import Predictor
from archive_colorizer.colorize.stage_settings import StageSettings
from tests.colorize.conftest import encode
from tests.flaky_s3 import FAKE_KEY_ID, FAKE_SECRET, find_secrets

pytestmark = pytest.mark.usefixtures("ray_local")

PREDICTOR_BUSY = "ray::MapWorker(MapBatches(Predictor)).submit"
MERGE_TASK_BUSY = "ray::MapBatches(finish_batch)"
FUSED_TASK_BUSY = "ray::MapBatches(colorize_batch)"
SMALL_BATCHES = {"task_batch_size": 4, "batch_size": 4}


def _gray_archive(folder: Path, photos, count: int) -> list[Path]:
    """``count`` different gray JPEGs (160x120 crops of real photographs) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(photos)
    paths = []
    for index in range(count):
        photo = Image.fromarray(photos[names[index % len(names)]]).convert("L")
        left, top = (index * 7) % (photo.width - 160), (index * 5) % (photo.height - 120)
        path = folder / f"scan-{index:03d}.jpg"
        path.write_bytes(encode(photo.crop((left, top, left + 160, top + 120)), "JPEG", quality=90))
        paths.append(path)
    return paths


def _manifest_parts(output: Path) -> list[str]:
    folder = output / manifest.MANIFEST_DIR
    return [n for n in os.listdir(folder) if n.startswith("part-")] if folder.is_dir() else []


def _kill_held(gates, holds: list[tuple[str, str]], killed: list[tuple[str, int]], errors: list[BaseException]) -> None:
    """For each (point, pattern) in turn: hold the point (the first is held before the job starts),
    SIGKILL the process that waits there, release it."""
    try:
        for index, (point, pattern) in enumerate(holds):
            if index:
                gates.hold(point, pattern)
            _, pid = gates.wait_reached(point)[0]
            title = psutil.Process(pid).cmdline()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append((title, pid))
            gates.release(point)
    except BaseException as exc:  # handed to the test; the job must not stay held
        errors.append(exc)
    finally:
        gates.release_all()


def _clean_output(input_path: Path, model: str, sha256: str, predictor: Predictor) -> np.ndarray:
    """The output of ``input_path`` from the job's own stages, one image at a time, without Ray: (H, W, 3) uint8."""
    settings = StageSettings(
        output_url=str(input_path.parent),
        model_size=32,
        max_pixels=images.DEFAULT_MAX_PIXELS,
        on_color="skip",
        color_threshold=4.0,
        overwrite=True,
        jpeg_quality=95,
        run=manifest.RunInfo("clean", None, sha256, "test"),
    )
    row = manifest.new_row(str(input_path), output_url="unused", output_format="JPEG")
    gray = prepare_row(row, settings)
    chroma = predictor.predict(gray[None].copy())[0]
    decoded = images.decode(row["data"], source=str(input_path))
    data = render(decoded, chroma, "JPEG", Provenance("test", sha256), 95)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


# Each victim is the process that waits at a hold point, so it is certainly busy with that
# input when it is killed; the split route's write is held only after the predictor was killed
# (both held at once could leave no CPU for the decode tasks the predictor waits on).
@pytest.mark.parametrize(
    ("stages", "holds", "victims"),
    [
        (
            "split",
            [("colorize.predict", "*/scan-012.jpg"), ("colorize.write", "*")],
            [PREDICTOR_BUSY, MERGE_TASK_BUSY],
        ),
        ("fused", [("colorize.read", "*/scan-020.jpg")], [FUSED_TASK_BUSY]),
    ],
    ids=["split-actor-and-merge-task", "fused-task"],
)
def test_killed_predictor_actor_and_merge_task_lose_nothing(
    photos, tiny_model, tmp_path, gates, stages, holds, victims
):
    inputs = _gray_archive(tmp_path / "in", photos, 40)
    out = tmp_path / "out"
    killed: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    gates.hold(*holds[0])
    killer = threading.Thread(target=_kill_held, args=(gates, holds, killed, errors), daemon=True)
    killer.start()
    try:
        pool = {"actors": [1]} if stages == "split" else {}
        result = run(
            ColorizeConfig(
                input=str(tmp_path / "in"),
                output=str(out),
                model=tiny_model,
                progress=False,
                stages=stages,
                **pool,
                **SMALL_BATCHES,
            )
        )
    finally:
        killer.join(timeout=60)
        gates.release_all()
    assert not errors, errors
    assert [title for title, _ in killed] == victims, killed
    assert result.counts["colorized"] == len(inputs) and result.exit_code == 0
    rows = manifest.read_manifest(str(out))
    assert sorted(rows.column("input_url").to_pylist()) == [str(p) for p in inputs]  # each exactly once
    # Nothing else in OUTPUT: one manifest part (40 rows), the run record, no temporary file of a killed write.
    run_files = os.listdir(out / manifest.MANIFEST_DIR)
    assert len(run_files) == 1 and run_files[0].startswith("part-") and result.run_id in run_files[0]
    records = os.listdir(out / manifest.RUNS_DIR)
    assert len(records) == 1 and result.run_id in records[0]
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and review.REVIEW_DIR not in p.parts}
    assert files == {p.name for p in inputs} | {
        manifest.SUMMARY_NAME,
        manifest.CONFIG_NAME,
        f"{manifest.MANIFEST_DIR}/{run_files[0]}",
        f"{manifest.RUNS_DIR}/{records[0]}",
    }
    assert (out / review.REVIEW_DIR / review.PAGE_NAME).is_file()  # the review page, beside the outputs
    predictor = Predictor(tiny_model, result.model_sha256, 32)
    for path in inputs:
        with Image.open(out / path.name) as output:
            output.load()  # decodes: no partial file
            pixels = np.asarray(output.convert("RGB"), dtype=np.int16)
        clean = _clean_output(path, tiny_model, result.model_sha256, predictor)
        # The generator runs in eval mode, so an image's colour does not depend on its batch;
        # only float rounding may, where a retried batch was composed differently.
        assert np.abs(pixels - clean).max() <= 2, path.name


def _wait_for_progress(output: Path, driver: subprocess.Popen, timeout: float = 240) -> None:
    """Until the job has written some outputs and a manifest part (it cannot finish: an input is held)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.poll() is not None:
            raise AssertionError(f"the driver ended (exit code {driver.returncode}) before it could be killed")
        if _manifest_parts(output) and len(list(output.glob("scan-*.jpg"))) >= 4:
            return
        time.sleep(0.02)
    raise AssertionError(f"no progress in {timeout} s")


def _wait_for_exit(pid: int, timeout: float = 120) -> None:
    """Until process ``pid`` is gone (Ray kills a dead driver's workers)."""
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass


def test_killed_driver_then_the_same_command_redoes_only_outputs_without_a_row(
    photos, tiny_model, tmp_path, capfd, gates
):
    import ray

    inputs = _gray_archive(tmp_path / "in", photos, 40)
    out = tmp_path / "out"
    arguments = [
        "colorize",
        str(tmp_path / "in"),
        str(out),
        "--model",
        tiny_model,
        "--no-progress",
        "--task-batch-size",
        "4",
        "--batch-size",
        "4",
        "--manifest-flush-seconds",
        "0.2",
        "--ray-address",
        ray.get_runtime_context().gcs_address,
    ]
    command = [sys.executable, "-m", "archive_colorizer", *arguments]
    # Credentials in the driver's environment must not show up in anything it writes or prints.
    env = dict(os.environ, AWS_ACCESS_KEY_ID=FAKE_KEY_ID, AWS_SECRET_ACCESS_KEY=FAKE_SECRET)
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        gates.hold("colorize.read", "*/scan-039.jpg")  # the job cannot finish before it is killed
        try:
            (_, held), *_ = gates.wait_reached("colorize.read", process=first)
            _wait_for_progress(out, first)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=60)
            # The killed driver's tasks die with it (the held one among them) before the same
            # command runs again; none of them writes anything after this.
            _wait_for_exit(held)
        finally:
            gates.release("colorize.read")
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
    killed_run_rows = manifest.read_manifest(str(out))
    recorded = {row["input_url"] for row in killed_run_rows.to_pylist() if row["status"] == "colorized"}
    assert 0 < len(recorded) < len(inputs), "the killed run must have been in the middle"
    for url in recorded:  # no row says colorized for an output that does not exist
        assert (out / Path(url).name).is_file()
    with_row = {Path(url).name: (out / Path(url).name).stat().st_mtime_ns for url in recorded}

    capfd.readouterr()
    # The same command again, here in the test's process (already connected to the same Ray).
    assert cli.main(arguments) == 0
    second = capfd.readouterr()
    summary = manifest.read_summary(str(out))
    counts = summary["counts"]
    assert summary["inputs"] == len(inputs) and counts["failed"] == 0
    # Every output that had a row was skipped, untouched; every other input was colorized, once.
    assert counts["skipped_existing"] == len(recorded)
    assert counts["colorized"] == len(inputs) - len(recorded)
    assert {name: (out / name).stat().st_mtime_ns for name in with_row} == with_row
    final = manifest.latest_rows(manifest.read_manifest(str(out)))
    assert sorted(final.column("input_url").to_pylist()) == [str(p) for p in inputs]
    assert set(final.column("status").to_pylist()) <= {"colorized", "skipped_existing"}
    assert {row["run_id"] for row in killed_run_rows.to_pylist()} == {summary["runs"][0]["run_id"]}
    assert not summary["runs"][0]["finished"] and summary["runs"][1]["finished"]
    assert [run["run_id"] for run in summary["runs"]][1] == summary["run_id"] and len(summary["runs"]) == 2
    assert "runs recorded in the manifest: 2" in second.out
    assert summary["passed_over"] == len(recorded)
    assert f"passed over as listed (no request, no new row): {len(recorded)}" in second.out
    for path in inputs:
        with Image.open(out / path.name) as output:
            output.load()
    leftovers = [p.name for p in out.rglob(".*")]
    assert leftovers == []  # the killed driver's unfinished part writes left nothing behind
    assert find_secrets((tmp_path / "first.log").read_bytes(), out) == []
