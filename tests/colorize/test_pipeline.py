"""The colorize job end to end on a real local Ray: mixed folder, S3, resume, metadata, provenance."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import cli, storage
from archive_colorizer.colorize import encode, manifest, run
from archive_colorizer.colorize.config import ColorizeConfig
from tests.colorize.conftest import GRAY_PHOTOS, reference_gray, write_mixed_archive
from tests.colorize.conftest import encode as encode_image
from tests.conftest import ray_session_logs
from tests.flaky_s3 import FAULTS, credential_options, find_secrets

pytestmark = pytest.mark.usefixtures("ray_local")


def _config(input_url, output_url, model: str, **values) -> ColorizeConfig:
    return ColorizeConfig(input=str(input_url), output=str(output_url), model=model, progress=False, **values)


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _final_rows(output_url: str, storage_options=None) -> dict[str, dict]:
    rows = manifest.latest_rows(manifest.read_manifest(output_url, storage_options)).to_pylist()
    return {row["input_url"]: row for row in rows}


@pytest.fixture(scope="module")
def mixed_run(photos, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    expected = write_mixed_archive(root / "in", photos)
    before = _checksums(root / "in")
    result = run(_config(root / "in", root / "out", tiny_model))
    return SimpleNamespace(
        root=root, expected=expected, before=before, result=result, rows=_final_rows(str(root / "out"))
    )


def test_every_input_has_one_final_row_with_the_expected_status(mixed_run):
    inputs = {str(mixed_run.root / "in" / rel): status for rel, status in mixed_run.expected.items()}
    assert {url: row["status"] for url, row in mixed_run.rows.items()} == inputs
    assert mixed_run.result.counts == {s: Counter(inputs.values())[s] for s in manifest.STATUSES}
    assert sum(mixed_run.result.counts.values()) == mixed_run.result.inputs == len(inputs) == 13
    # Every row of this single run is final: one row per input, none written twice.
    assert manifest.read_manifest(str(mixed_run.root / "out")).num_rows == 13


def test_bad_files_fail_with_their_reason_and_the_job_reports_the_failure_rate(mixed_run):
    reasons = {
        Path(url).name: (row["reason"], row["error"])
        for url, row in mixed_run.rows.items()
        if row["status"] == "failed"
    }
    assert {name: reason for name, (reason, _) in reasons.items()} == {
        "truncated.jpg": "truncated",
        "empty.jpg": "empty",
        "notes.jpg": "not_an_image",
    }
    assert all(error.startswith("ImageDecodeError: ") and name in error for name, (_, error) in reasons.items())
    # 3 of 13 failed: more than the default 5 %.
    assert mixed_run.result.exit_code == 1
    assert "3 of 13 inputs failed" in mixed_run.result.message and "max-failure-rate" in mixed_run.result.message
    summary = manifest.read_summary(str(mixed_run.root / "out"))
    assert summary["counts"] == mixed_run.result.counts and summary["exit_code"] == 1
    assert summary["model"]["sha256"] == mixed_run.result.model_sha256


def test_outputs_keep_size_and_gray_values(mixed_run):
    colorized = {url: row for url, row in mixed_run.rows.items() if row["status"] == "colorized"}
    assert len(colorized) == 9
    for input_url, row in colorized.items():
        source, output = reference_gray(Path(input_url)), reference_gray(Path(row["output_url"]))
        assert output.shape == source.shape == (row["height"], row["width"]), input_url
        assert np.abs(output - source).mean() < 1.5, input_url
    out = mixed_run.root / "out"
    assert Image.open(out / "odd/rotated.jpg").size == (300, 451)  # orientation 6 applied
    assert Image.open(out / "odd/palette.gif.png").format == "PNG"  # other formats become PNG
    transparent_in, transparent_out = (
        Image.open(mixed_run.root / "in/odd/transparent.png"),
        Image.open(out / "odd/transparent.png"),
    )
    assert transparent_out.mode == "RGBA"
    assert np.array_equal(np.asarray(transparent_out.getchannel("A")), np.asarray(transparent_in.getchannel("A")))
    import tifffile

    assert tifffile.imread(out / "odd/sixteen.tif").dtype == np.uint16  # 16-bit TIFF stays 16-bit


def test_the_input_folder_is_unchanged(mixed_run):
    assert _checksums(mixed_run.root / "in") == mixed_run.before


def test_dpi_datetime_and_provenance_are_carried(mixed_run):
    sha = mixed_run.result.model_sha256
    for relative, dpi in (("scans/astronaut.jpg", 300), ("odd/sixteen.tif", 600)):
        output = Image.open(mixed_run.root / "out" / relative)
        assert output.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
        exif = output.getexif()
        assert exif[0x0131].startswith("archive-colorizer ")
        assert sha in exif[0x010E]
        description = ET.fromstring(output.info["xmp"]).find(
            ".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"
        )
        assert (
            description.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType")
            == encode.DIGITAL_SOURCE_TYPE
        )
        assert description.get(f"{{{encode.XMP_NAMESPACE}}}GeneratorSha256") == sha
    assert Image.open(mixed_run.root / "out/scans/astronaut.jpg").getexif()[0x0132] == "1968:07:20 10:56:00"


ODD_NAMES = (
    "with space.jpg",
    "hash#1.jpg",
    "what?.jpg",
    "ünïcødé 写真.jpg",
    "-leading-dash.jpg",
    "100%.jpg",
    "a::b.jpg",
)


def test_same_run_on_a_flaky_s3_through_the_command_line(photos, tiny_model, s3_bucket, flaky_s3, tmp_path, capfd):
    """S3 through a proxy failing a fifth of the requests; credentials as storage options; odd key names."""
    bucket, options = s3_bucket
    expected = write_mixed_archive(tmp_path / "in", photos)
    gray = encode_image(Image.fromarray(photos["coffee"]).convert("L"), "JPEG", quality=90)
    for name in ODD_NAMES:
        (tmp_path / "in" / "names").mkdir(exist_ok=True)
        (tmp_path / "in" / "names" / name).write_bytes(gray)
        expected[f"names/{name}"] = "colorized"
    fs, _ = storage.open_url(bucket, options)
    for relative in expected:
        fs.put_file(str(tmp_path / "in" / relative), f"{bucket}/archive/{relative}")
    flaky = [
        arg
        for key, value in credential_options(flaky_s3.endpoint_url).items()
        for arg in ("--storage-option", f"{key}={value}")
    ]
    flaky_s3.reset(fault_rate=0.2, seed=5)
    try:
        code = cli.main(
            [
                "colorize",
                f"{bucket}/archive",
                f"{bucket}/colorized",
                "--model",
                tiny_model,
                "--no-progress",
                "--max-failure-rate",
                "0.5",
                *flaky,
            ]
        )
        faults = dict(flaky_s3.counts)
    finally:
        flaky_s3.reset(fault_rate=0.0)
    logs = capfd.readouterr()
    assert code == 0, logs.err[-3000:]
    # Nothing lost: every input has its expected final row; outputs read back directly from moto.
    rows = _final_rows(f"{bucket}/colorized", options)
    assert {url: row["status"] for url, row in rows.items()} == {
        f"{bucket}/archive/{rel}": s for rel, s in expected.items()
    }
    for relative in ("scans/coffee.jpg", "odd/sixteen.png", "odd/palette.gif", *(f"names/{n}" for n in ODD_NAMES)):
        row = rows[f"{bucket}/archive/{relative}"]
        local = tmp_path / "fetched" / Path(row["output_url"]).name
        local.parent.mkdir(exist_ok=True)
        fs.get_file(row["output_url"], str(local))
        assert np.abs(reference_gray(local) - reference_gray(tmp_path / "in" / relative)).mean() < 1.5, relative
    summary = manifest.read_summary(f"{bucket}/colorized", options)
    assert summary["counts"]["colorized"] == 9 + len(ODD_NAMES)
    # Retried requests are counted in the summary and the printed table; the proxy's count is the
    # truth (a dropped kept-alive connection that aiohttp re-sent on its own is not seen by botocore).
    assert faults["slow_down"] + faults["internal_error"] > 0, faults
    assert 0 < summary["storage_retries"] <= sum(faults[k] for k in FAULTS)
    assert f"object-store requests retried: {summary['storage_retries']}" in logs.out
    # The credentials are in no output, manifest, summary, config, log of the job or of the session's Ray.
    fs.get(f"{bucket}/colorized", str(tmp_path / "colorized"), recursive=True)
    assert summary["config"]["storage_options"]["secret"] == "***"
    assert find_secrets(logs.out, logs.err, tmp_path / "colorized", ray_session_logs()) == []


def test_a_rerun_passes_over_finished_inputs_without_a_row_and_overwrite_redoes_them(photos, tiny_model, tmp_path):
    for name in GRAY_PHOTOS + ("immunohistochemistry", "motorcycle"):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{name}.jpg").write_bytes(
            encode_image(Image.fromarray(photos[name]).convert("L"), "JPEG", quality=90)
        )
    config = _config(tmp_path / "in", tmp_path / "out", tiny_model)
    assert run(config).counts["colorized"] == 6
    outputs = sorted((tmp_path / "out").glob("*.jpg"))
    deleted, kept = outputs[::2], outputs[1::2]
    for path in deleted:
        path.unlink()
    kept_times = {path: path.stat().st_mtime_ns for path in kept}

    # A finished input costs a re-run nothing: no output check, no read, no new manifest row. So an
    # output deleted after its run stays deleted (the manifest says it was made): --overwrite redoes it.
    again = run(config)
    assert (again.counts["colorized"], again.counts["skipped_existing"], again.inputs) == (0, 6, 6)
    assert again.summary["passed_over"] == 6
    assert manifest.read_manifest(str(tmp_path / "out")).num_rows == 6
    assert not any(path.exists() for path in deleted)
    assert {path: path.stat().st_mtime_ns for path in kept} == kept_times
    assert len(again.summary["runs"]) == 2

    forced = run(_config(tmp_path / "in", tmp_path / "out", tiny_model, overwrite=True))
    assert forced.counts["colorized"] == 6 and forced.summary["passed_over"] == 0
    assert all(path.exists() for path in deleted)
    assert os.path.getsize(tmp_path / "out" / "astronaut.jpg") > 0
    third = run(config)  # the kept index, merged with the forced run's rows
    assert (third.counts["colorized"], third.summary["passed_over"]) == (0, 6)
    assert manifest.read_manifest(str(tmp_path / "out")).num_rows == 12
