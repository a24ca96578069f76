"""C2PA signing and verification of colorized outputs on real photographs (no Ray, no network)."""

# ruff: noqa: F811  (the c2pa_credentials fixture is imported, then named as a test argument)
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from archive_colorizer import cli, images, signing
from archive_colorizer.colorize import encode, merge
from archive_colorizer.colorize.config import ColorizeConfig
from archive_colorizer.credentials import make_test_credentials
from archive_colorizer.errors import ConfigError
from tests.c2pa_certs import c2pa_credentials  # noqa: F401  # the fixture

GENERATOR_SHA = "ab" * 32
# (output format, 16-bit input): every output kind colorize writes.
OUTPUT_KINDS = [("JPEG", False), ("PNG", False), ("PNG", True), ("TIFF", False), ("TIFF", True)]


def _input(photo: np.ndarray, sixteen: bool) -> bytes:
    """A gray scan of ``photo`` as colorize reads it: 8-bit JPEG with EXIF, or 16-bit PNG."""
    gray = Image.fromarray(photo).convert("L")
    buffer = io.BytesIO()
    if sixteen:
        Image.fromarray(np.asarray(gray, np.uint16) * 257).save(buffer, format="PNG")
    else:
        exif = Image.Exif()
        exif[0x013B] = "A. Photographer"  # Artist
        gray.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _output(photo: np.ndarray, original: bytes, fmt: str) -> bytes:
    """The colorized output colorize writes for ``original``, its chroma taken from the colour ``photo``."""
    decoded = images.decode(original)
    ycbcr = np.asarray(Image.fromarray(photo).convert("YCbCr").resize((64, 64), Image.Resampling.BILINEAR), np.float32)
    chroma = np.ascontiguousarray(ycbcr[..., 1:].transpose(2, 0, 1) - 128.0)  # (2, 64, 64) Cb/Cr offsets
    return merge.render(decoded, chroma, fmt, encode.Provenance("0.test", GENERATOR_SHA))


@pytest.fixture(scope="module")
def signer(c2pa_credentials) -> signing.Signer:
    return signing.Signer(c2pa_credentials.chain_pem, c2pa_credentials.key_pem)


@pytest.mark.parametrize(("fmt", "sixteen"), OUTPUT_KINDS)
def test_signed_outputs_verify_keep_their_pixels_and_metadata(photos, signer, c2pa_credentials, fmt, sixteen):
    original = _input(photos["astronaut"], sixteen)
    output = _output(photos["astronaut"], original, fmt)
    signed = signer.sign(output, fmt, original, "PNG" if sixteen else "JPEG", f"astronaut.{fmt.lower()}", GENERATOR_SHA)

    result = signing.verify_bytes(signed)  # no trust anchors: valid, its signer unknown
    assert (result.state, result.failures) == ("valid", ("signingCredential.untrusted",))
    assert result.digital_source_type == signing.DIGITAL_SOURCE_TYPE
    assert result.generator_sha256 == GENERATOR_SHA
    assert result.signer == "Test colorizer signer (issuer Test Archive)"
    trusted = signing.verify_bytes(signed, trust_anchors=c2pa_credentials.root_pem)
    assert (trusted.state, trusted.failures) == ("trusted", ())
    # The pixels are the unsigned output's, bit for bit (16 bits stay 16 bits).
    if fmt == "TIFF":
        before, after = tifffile.imread(io.BytesIO(output)), tifffile.imread(io.BytesIO(signed))
        assert after.dtype == (np.uint16 if sixteen else np.uint8)
        xmp = tifffile.TiffFile(io.BytesIO(signed)).pages[0].tags[700].value
        assert b"compositeWithTrainedAlgorithmicMedia" in bytes(xmp)
    else:
        import cv2

        before, after = (cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_UNCHANGED) for d in (output, signed))
        assert after.dtype == (np.uint16 if sixteen else np.uint8)
        reopened = Image.open(io.BytesIO(signed))
        assert b"compositeWithTrainedAlgorithmicMedia" in _xmp(reopened)
        assert reopened.getexif()[encode.TAG_SOFTWARE] == "archive-colorizer 0.test"
        if not sixteen:
            assert reopened.getexif()[0x013B] == "A. Photographer"  # the input's EXIF, carried
    assert np.array_equal(before, after)


def _xmp(image: Image.Image) -> bytes:
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    return xmp.encode() if isinstance(xmp, str) else xmp


def test_the_manifest_names_the_gray_input_the_edit_and_the_generator(photos, signer):
    import c2pa

    original = _input(photos["coffee"], False)
    signed = signer.sign(
        _output(photos["coffee"], original, "JPEG"), "JPEG", original, "JPEG", "coffee.jpg", GENERATOR_SHA
    )
    with c2pa.Reader("image/jpeg", io.BytesIO(signed)) as reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    (ingredient,) = active["ingredients"]
    assert (ingredient["relationship"], ingredient["format"]) == ("parentOf", "image/jpeg")
    actions = {a["label"]: a["data"] for a in active["assertions"]}["c2pa.actions.v2"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    edited = actions[1]
    assert edited["digitalSourceType"] == signing.DIGITAL_SOURCE_TYPE
    assert edited["softwareAgent"]["name"] == "archive-colorizer"
    assert edited["parameters"]["dev.archive-colorizer.generator_sha256"] == GENERATOR_SHA
    ours = {a["label"]: a["data"] for a in active["assertions"]}[signing.ASSERTION_LABEL]
    assert ours["input_sha256"] == hashlib.sha256(original).hexdigest()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_one_changed_byte_makes_the_file_invalid(photos, signer, c2pa_credentials, fmt):
    original = _input(photos["chelsea"], False)
    signed = bytearray(
        signer.sign(_output(photos["chelsea"], original, fmt), fmt, original, "JPEG", "c", GENERATOR_SHA)
    )
    signed[len(signed) * 3 // 4] ^= 0x01  # a byte of the image data, far from the manifest
    result = signing.verify_bytes(bytes(signed), trust_anchors=c2pa_credentials.root_pem)
    assert result.state == "invalid"
    assert "assertion.dataHash.mismatch" in result.failures


def test_unsigned_files_and_non_images_are_told_apart(photos):
    original = _input(photos["rocket"], False)
    assert signing.verify_bytes(original).state == "unsigned"
    assert signing.verify_bytes(b"notes, not an image").state == "invalid"


def test_a_signature_from_another_ca_is_valid_but_not_trusted(photos, tmp_path, c2pa_credentials):
    other = make_test_credentials(tmp_path / "other", "Someone else")
    original = _input(photos["rocket"], False)
    output = _output(photos["rocket"], original, "PNG")
    signed = signing.Signer(other.chain_pem, other.key_pem).sign(output, "PNG", original, "JPEG", "r", GENERATOR_SHA)
    assert signing.verify_bytes(signed, trust_anchors=c2pa_credentials.root_pem).state == "valid"
    assert signing.verify_bytes(signed, trust_anchors=other.root_pem).state == "trusted"


def test_credentials_are_read_from_files_or_environment_and_checked(c2pa_credentials, tmp_path, monkeypatch):
    from_files = signing.SigningSettings(str(c2pa_credentials.chain_path), str(c2pa_credentials.key_path))
    assert signing.check_credentials(from_files).state == "valid"
    monkeypatch.setenv("TEST_C2PA_CERT", c2pa_credentials.chain_pem.decode())
    monkeypatch.setenv("TEST_C2PA_KEY", c2pa_credentials.key_pem.decode())
    assert (
        signing.check_credentials(signing.SigningSettings("env:TEST_C2PA_CERT", "env:TEST_C2PA_KEY")).state == "valid"
    )
    # Another key than the certificate's: refused before any work, the codes named, the key not.
    other = make_test_credentials(tmp_path / "other")
    wrong = signing.SigningSettings(str(c2pa_credentials.chain_path), str(other.key_path))
    with pytest.raises(signing.CredentialError, match="do not sign: .*signature does not match") as caught:
        signing.check_credentials(wrong)
    assert other.key_pem.decode().splitlines()[1] not in str(caught.value)
    with pytest.raises(signing.CredentialError, match="TEST_C2PA_MISSING is not set"):
        signing.check_credentials(signing.SigningSettings("env:TEST_C2PA_CERT", "env:TEST_C2PA_MISSING"))
    with pytest.raises(signing.CredentialError, match="--c2pa-key: cannot read"):
        signing.load_signer(signing.SigningSettings(str(c2pa_credentials.chain_path), str(tmp_path / "none.key")))


def test_the_config_takes_references_never_the_key_itself(c2pa_credentials, tmp_path):
    key_text = c2pa_credentials.key_pem.decode()
    with pytest.raises(ConfigError, match="--c2pa-key takes a path, URL or env:NAME, not the PEM itself") as caught:
        ColorizeConfig.load(overrides={"input": "in", "output": "out", "model": "m", "c2pa_key": key_text})
    assert not any(line in str(caught.value) for line in key_text.splitlines()[1:-1])
    config = ColorizeConfig(
        input="in", output="out", model="m", c2pa_sign=True, c2pa_key=str(c2pa_credentials.key_path)
    )
    assert config.public_dict()["c2pa_key"] == str(c2pa_credentials.key_path)
    assert ColorizeConfig(input="in", output="out", model="m").c2pa_key == "env:ARCHIVE_COLORIZER_C2PA_KEY"


def test_verify_command_reports_each_file_and_fails_on_a_tampered_one(
    photos, signer, c2pa_credentials, tmp_path, capsys
):
    folder = tmp_path / "outputs"
    folder.mkdir()
    for name in ("astronaut", "coffee"):
        original = _input(photos[name], False)
        data = signer.sign(_output(photos[name], original, "JPEG"), "JPEG", original, "JPEG", name, GENERATOR_SHA)
        (folder / f"{name}.jpg").write_bytes(data)
    (folder / "plain.png").write_bytes(_output(photos["rocket"], _input(photos["rocket"], False), "PNG"))
    anchors = ["--trust-anchors", str(c2pa_credentials.root_path)]
    assert cli.main(["verify", str(folder), *anchors]) == 0
    out = capsys.readouterr().out
    assert f"trusted   {folder / 'astronaut.jpg'}" in out and f"unsigned  {folder / 'plain.png'}" in out
    assert "3 files: trusted 2, valid 0, invalid 0, unsigned 1" in out

    tampered = bytearray((folder / "coffee.jpg").read_bytes())
    tampered[-2000] ^= 0x10
    (folder / "coffee.jpg").write_bytes(bytes(tampered))
    assert cli.main(["verify", str(folder / "coffee.jpg"), str(folder / "astronaut.jpg"), "--json-output"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(line["url"]).name, line["state"]) for line in lines] == [
        ("coffee.jpg", "invalid"),
        ("astronaut.jpg", "valid"),
    ]
    assert "assertion.dataHash.mismatch" in lines[0]["failures"]
