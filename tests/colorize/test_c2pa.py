"""colorize --c2pa-sign on a real local Ray: every output signed and verifiable, the key in no file."""

# ruff: noqa: F811  (the c2pa_credentials fixture is imported, then named as a test argument)
from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from archive_colorizer import cli, signing
from archive_colorizer.colorize import manifest
from archive_colorizer.credentials import make_test_credentials
from archive_colorizer.errors import ConfigError
from tests.c2pa_certs import c2pa_credentials, key_material  # noqa: F401  # the fixture
from tests.colorize.conftest import write_mixed_archive
from tests.conftest import ray_session_logs

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def signed_run(photos, tiny_model, c2pa_credentials, tmp_path_factory):
    root = tmp_path_factory.mktemp("signed")
    expected = write_mixed_archive(root / "in", photos)
    args = [
        "colorize",
        str(root / "in"),
        str(root / "out"),
        "--model",
        tiny_model,
        "--no-progress",
        "--c2pa-sign",
        "--c2pa-cert",
        str(c2pa_credentials.chain_path),
        "--c2pa-key",
        str(c2pa_credentials.key_path),
        "--max-failure-rate",
        "0.5",
    ]
    code = cli.main(args)
    rows = manifest.latest_rows(manifest.read_manifest(str(root / "out"))).to_pylist()
    return SimpleNamespace(root=root, expected=expected, code=code, rows={r["input_url"]: r for r in rows})


def test_every_colorized_output_is_signed_and_verifies_trusted(signed_run, c2pa_credentials):
    assert signed_run.code == 0
    statuses = Counter(row["status"] for row in signed_run.rows.values())
    assert statuses == Counter(signed_run.expected.values())  # counts add up: 9 colorized, 1 colour, 3 broken
    colorized = [row for row in signed_run.rows.values() if row["status"] == manifest.COLORIZED]
    assert len(colorized) == 9 and all(row["c2pa"] == signing.SIGNED for row in colorized)
    assert all(row["c2pa"] is None for row in signed_run.rows.values() if row["status"] != manifest.COLORIZED)
    modes = set()
    for row in colorized:
        data = Path(row["output_url"]).read_bytes()
        result = signing.verify_bytes(data, trust_anchors=c2pa_credentials.root_pem)
        assert (result.state, result.failures) == ("trusted", ()), row["output_url"]
        assert result.generator_sha256 == row["model_sha256"]
        modes.add((Path(row["output_url"]).suffix, row["input_mode"], row["output_bits"]))
    # The held-out modes: 8-bit JPEG, 16-bit PNG and TIFF; and the GIF and the RGBA PNG as 8-bit PNG.
    assert {(".jpg", "L", 8), (".png", "I;16", 16), (".tif", "I;16", 16), (".png", "RGBA", 8)} <= modes
    assert any(row["output_url"].endswith("palette.gif.png") for row in colorized)


def test_a_tampered_output_fails_verify(signed_run, c2pa_credentials, capsys):
    output = Path(signed_run.rows[str(signed_run.root / "in" / "scans" / "coffee.jpg")]["output_url"])
    tampered = output.with_name("tampered.jpg")
    data = bytearray(output.read_bytes())
    data[len(data) // 2] ^= 0x04
    tampered.write_bytes(bytes(data))
    code = cli.main(["verify", str(output), str(tampered), "--trust-anchors", str(c2pa_credentials.root_path)])
    out = capsys.readouterr().out
    tampered.unlink()
    assert code == 1
    assert f"trusted   {output}" in out
    assert f"invalid   {tampered}  [assertion.dataHash.mismatch" in out


def test_the_key_is_in_no_file_the_job_wrote(signed_run, c2pa_credentials, capfd):
    config = (signed_run.root / "out" / manifest.CONFIG_NAME).read_text()
    assert f"c2pa_key: {c2pa_credentials.key_path}" in config
    secrets = key_material(c2pa_credentials.key_pem)
    logs = capfd.readouterr()
    written = [p for folder in (signed_run.root / "out", ray_session_logs()) for p in folder.rglob("*") if p.is_file()]
    assert len(written) > 13
    leaks = [str(p) for p in written if any(secret in p.read_bytes() for secret in secrets)]
    assert leaks == []
    assert not any(secret.decode("latin-1") in logs.out + logs.err for secret in secrets)


def test_credentials_that_do_not_sign_stop_the_job_before_any_work(photos, tiny_model, c2pa_credentials, tmp_path):
    other = make_test_credentials(tmp_path / "other")
    write_mixed_archive(tmp_path / "in", photos)
    code = cli.main(
        [
            "colorize",
            str(tmp_path / "in"),
            str(tmp_path / "out"),
            "--model",
            tiny_model,
            "--c2pa-sign",
            "--c2pa-cert",
            str(c2pa_credentials.chain_path),
            "--c2pa-key",
            str(other.key_path),
        ]
    )
    assert code == 2
    assert not (tmp_path / "out").exists()  # checked before OUTPUT is written
    with pytest.raises(ConfigError, match="ARCHIVE_COLORIZER_C2PA_KEY is not set"):
        signing.check_credentials(signing.SigningSettings(str(c2pa_credentials.chain_path)))


def test_an_output_that_cannot_be_signed_is_a_failed_input_and_nothing_is_written(photos, c2pa_credentials, tmp_path):
    """The merge stage's own path: a timestamp authority that does not answer makes every signature fail."""
    import datetime as _dt

    import numpy as np

    from archive_colorizer.colorize import merge
    from archive_colorizer.colorize.stage_settings import StageSettings
    from tests.colorize.conftest import encode

    run_info = manifest.RunInfo("c2parun00001", _dt.datetime.now(_dt.timezone.utc), "cd" * 32, "0.test")
    unreachable = signing.SigningSettings(
        str(c2pa_credentials.chain_path), str(c2pa_credentials.key_path), tsa_url="http://127.0.0.1:9/tsa"
    )
    settings = StageSettings(
        output_url=str(tmp_path / "out"),
        model_size=32,
        max_pixels=10**8,
        on_color="skip",
        color_threshold=10.0,
        overwrite=False,
        jpeg_quality=95,
        run=run_info,
        c2pa=unreachable,
    )
    rows = [
        manifest.new_row(
            str(tmp_path / f"{name}.jpg"),
            output_url=str(tmp_path / "out" / f"{name}.jpg"),
            output_format="JPEG",
            input_format="JPEG",
            data=encode(Image.fromarray(photos[name]).convert("L"), "JPEG", quality=90),
            chroma=np.zeros((2, 32, 32), np.float32).tobytes(),
        )
        for name in ("astronaut", "coffee")
    ]
    rows.append(manifest.new_row(str(tmp_path / "bad.jpg"), status=manifest.FAILED, reason="empty"))
    final = merge.finish_batch(manifest.to_table(rows), settings).to_pylist()
    assert [(row["status"], row["reason"], row["c2pa"]) for row in final] == [
        ("failed", "c2pa_failed", None),
        ("failed", "c2pa_failed", None),
        ("failed", "empty", None),
    ]
    assert "127.0.0.1:9/tsa" in final[0]["error"] and final[0]["output_url"] is None
    assert not (tmp_path / "out").exists()


def test_split_stages_sign_in_the_merge_tasks_too(photos, tiny_model, c2pa_credentials, tmp_path):
    """--stages split (the GPU layout): the merge tasks, not the actors, read the key and sign."""
    from tests.colorize.conftest import encode

    for name in ("astronaut", "rocket"):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{name}.png").write_bytes(encode(Image.fromarray(photos[name]).convert("L"), "PNG"))
    args = ["colorize", str(tmp_path / "in"), str(tmp_path / "out"), "--model", tiny_model, "--no-progress"]
    args += ["--stages", "split", "--actors", "1", "--c2pa-sign"]
    args += ["--c2pa-cert", str(c2pa_credentials.chain_path), "--c2pa-key", str(c2pa_credentials.key_path)]
    assert cli.main(args) == 0
    rows = manifest.read_manifest(str(tmp_path / "out")).to_pylist()
    assert [(Path(r["output_url"]).name, r["c2pa"]) for r in sorted(rows, key=lambda r: r["output_url"])] == [
        ("astronaut.png", "signed"),
        ("rocket.png", "signed"),
    ]
    for row in rows:
        result = signing.verify_bytes(Path(row["output_url"]).read_bytes(), trust_anchors=c2pa_credentials.root_pem)
        assert result.state == "trusted"
