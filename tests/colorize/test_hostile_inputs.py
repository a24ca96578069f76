"""Hostile and odd inputs through the colorize job on a real local Ray.

A corpus of more than 25 files, written here: truncated JPEG/PNG/TIFF at several offsets,
empty files, random bytes with image suffixes, a PNG whose header claims 50000 x 50000 pixels
(a decompression bomb), a JPEG with a corrupt EXIF block and one with a garbage ICC profile, a
TIFF whose first IFD offset points past the end, an animated GIF, a 1 x 1 image, a 1 x 2000
strip, 16-bit TIFF, CMYK JPEG, LA and transparent palette PNGs, names with spaces, unicode,
``#``, ``?``, ``%``, ``::``, a newline and leading dashes, a folder ten levels deep, a folder
named like an image, and symbolic links out of INPUT (to a file and to a folder) and within it.

The job must not crash, give every listed input exactly one row (``colorized``, or ``failed``
with a reason), keep its counts adding up, never follow a link out of INPUT, and keep memory
bounded: the bomb is refused from its header, and no worker's memory grows anywhere near what
its pixels would take (2.5 GB).
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
from PIL import Image

from archive_colorizer.colorize import manifest, run
from archive_colorizer.colorize.config import ColorizeConfig
from tests.colorize.conftest import encode

pytestmark = pytest.mark.usefixtures("ray_local")

COLORIZED, FAILED = {"colorized"}, {"failed"}
ANY_DECODE_FAILURE = {"truncated", "corrupt", "not_an_image"}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a (width x height) gray image with almost no pixel data."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + _png_chunk(b"IEND", b"")


def _jpeg_with_app_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """``jpeg`` with one more APPn segment right after SOI."""
    return jpeg[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + jpeg[2:]


def write_hostile_corpus(root: Path, photos) -> dict[str, tuple[set[str], set[str] | None]]:
    """Write the corpus under ``root/in`` (and a decoy folder ``root/outside``).

    Returns:
        relative path -> (allowed statuses, allowed failure reasons or None) for every file
        the job should list.
    """
    inputs, outside = root / "in", root / "outside"
    expected: dict[str, tuple[set[str], set[str] | None]] = {}
    gray = Image.fromarray(photos["astronaut"]).convert("L").resize((120, 90))
    jpeg, png, tiff = encode(gray, "JPEG", quality=90), encode(gray, "PNG"), encode(gray, "TIFF")

    def put(relative: str, data: bytes, statuses: set[str], reasons: set[str] | None = None) -> None:
        (inputs / relative).parent.mkdir(parents=True, exist_ok=True)
        (inputs / relative).write_bytes(data)
        expected[relative] = (statuses, reasons)

    for fraction in (0.02, 0.3, 0.7):
        put(f"truncated/jpeg-{fraction}.jpg", jpeg[: int(len(jpeg) * fraction)], FAILED, ANY_DECODE_FAILURE)
    put("truncated/jpeg-no-eoi.jpg", jpeg[:-2], COLORIZED | FAILED, ANY_DECODE_FAILURE)  # libjpeg may accept it
    put("truncated/png-header-only.png", png[:33], FAILED, ANY_DECODE_FAILURE)
    put("truncated/png-half.png", png[: len(png) // 2], FAILED, ANY_DECODE_FAILURE)
    put("truncated/tiff-half.tif", tiff[: len(tiff) // 2], FAILED, ANY_DECODE_FAILURE)
    put("empty/zero.jpg", b"", FAILED, {"empty"})
    put("empty/zero.png", b"", FAILED, {"empty"})
    noise = np.random.default_rng(0).bytes(4096)
    for suffix in ("jpg", "png", "tif", "gif"):
        put(f"random/noise.{suffix}", noise, FAILED, {"not_an_image"})
    put("random/png-signature-only.png", b"\x89PNG\r\n\x1a\n", FAILED, ANY_DECODE_FAILURE)
    put("bomb/claims-50000x50000.png", _png_claiming(50000, 50000), FAILED, {"too_large"})
    put(
        "bomb/gif-claims-65535x65535.gif",
        b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b"\x3b",
        FAILED,
        {"too_large"} | ANY_DECODE_FAILURE,
    )
    corrupt_exif = b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0" + noise[:64]
    put("metadata/corrupt-exif.jpg", _jpeg_with_app_segment(jpeg, 0xE1, corrupt_exif), COLORIZED)
    put(
        "metadata/garbage-icc.jpg",
        _jpeg_with_app_segment(jpeg, 0xE2, b"ICC_PROFILE\x00\x01\x01" + noise[:200]),
        COLORIZED,
    )
    exif = Image.Exif()
    exif[0x0112] = 9  # an orientation that does not exist
    put("metadata/orientation-9.jpg", encode(gray, "JPEG", quality=90, exif=exif.tobytes()), COLORIZED)
    bad_ifd = bytearray(tiff)
    bad_ifd[4:8] = struct.pack("<I", 0x7FFFFFF0)  # first IFD far past the end of the file
    put("tiff/bad-ifd-offset.tif", bytes(bad_ifd), FAILED, ANY_DECODE_FAILURE)
    frames = [gray, gray.rotate(90), gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    put(
        "modes/animated.gif",
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0),
        COLORIZED,
    )
    put("modes/one-pixel.png", encode(Image.new("L", (1, 1), 128), "PNG"), COLORIZED)
    put("modes/strip-1x2000.png", encode(gray.resize((1, 2000)), "PNG"), COLORIZED)
    put("modes/gray16.tif", encode(Image.fromarray(np.asarray(gray, np.uint16) * 257), "TIFF"), COLORIZED)
    put("modes/cmyk.jpg", encode(gray.convert("CMYK"), "JPEG", quality=90), COLORIZED)
    put(
        "modes/la.png",
        encode(Image.merge("LA", (gray, Image.linear_gradient("L").resize(gray.size))), "PNG"),
        COLORIZED,
    )
    put("modes/palette-transparent.png", encode(gray.convert("P"), "PNG", transparency=0), COLORIZED)
    for name in (
        "with space.jpg",
        "ünïcødé 写真.jpg",
        "hash#1.jpg",
        "what?.jpg",
        "100%.jpg",
        "double::colon.jpg",
        "line\nbreak.jpg",
        "-leading-dash.jpg",
        "--help.jpg",
        "UPPER.JPG",
    ):
        put(f"names/{name}", jpeg, COLORIZED)
    put("/".join(f"level{i}" for i in range(10)) + "/deep.jpg", jpeg, COLORIZED)
    put("folder.jpg/inside-a-folder-named-like-an-image.jpg", jpeg, COLORIZED)
    (inputs / "names" / "notes.txt").write_bytes(b"not an image suffix: not listed")
    put("names/.hidden.jpg", jpeg, COLORIZED)  # a hidden name is an input too: every file gets a row
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg)
    (inputs / "links").mkdir()
    os.symlink(outside / "secret.jpg", inputs / "links" / "to-outside.jpg")
    expected["links/to-outside.jpg"] = (FAILED, {"unsafe_path"})
    os.symlink(outside, inputs / "links" / "folder-outside")  # a linked folder is not walked
    os.symlink(inputs / "names" / "UPPER.JPG", inputs / "links" / "to-inside.jpg")
    expected["links/to-inside.jpg"] = (COLORIZED, None)
    return expected


def _peak_worker_rss(stop: threading.Event, peak: dict[str, int]) -> None:
    """Sample the resident memory of this session's Ray worker processes until ``stop``."""
    while not stop.wait(0.02):
        for process in psutil.Process().children(recursive=True):
            try:
                if process.cmdline()[0].startswith("ray::"):
                    peak["rss"] = max(peak.get("rss", 0), process.memory_info().rss)
            except (psutil.Error, IndexError):
                continue


@pytest.fixture(scope="module")
def hostile_run(photos, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    expected = write_hostile_corpus(root, photos)
    outside_before = sorted(os.listdir(root / "outside"))
    stop, peak = threading.Event(), {}
    sampler = threading.Thread(target=_peak_worker_rss, args=(stop, peak), daemon=True)
    sampler.start()
    try:
        result = run(
            ColorizeConfig(
                input=str(root / "in"), output=str(root / "out"), model=tiny_model, progress=False, max_failure_rate=1.0
            )
        )
    finally:
        stop.set()
        sampler.join()
    rows = {row["input_url"]: row for row in manifest.read_manifest(str(root / "out")).to_pylist()}
    return SimpleNamespace(
        root=root,
        expected=expected,
        result=result,
        rows=rows,
        peak_rss=peak.get("rss", 0),
        outside_before=outside_before,
    )


def test_the_corpus_has_more_than_25_hostile_inputs(hostile_run):
    assert len(hostile_run.expected) >= 25


def test_every_listed_input_has_exactly_one_row_with_an_allowed_status_and_reason(hostile_run):
    root = hostile_run.root / "in"
    assert sorted(hostile_run.rows) == sorted(str(root / relative) for relative in hostile_run.expected)
    assert manifest.read_manifest(str(hostile_run.root / "out")).num_rows == len(hostile_run.expected)
    for relative, (statuses, reasons) in hostile_run.expected.items():
        row = hostile_run.rows[str(root / relative)]
        assert row["status"] in statuses, (relative, row["status"], row["error"])
        if row["status"] == "failed":
            assert reasons is None or row["reason"] in reasons, (relative, row["reason"], row["error"])
            assert row["error"] and row["output_url"] is None, relative


def test_counts_add_up_and_the_job_ends_normally(hostile_run):
    result = hostile_run.result
    assert result.exit_code == 0 and sum(result.counts.values()) == result.inputs == len(hostile_run.expected)
    statuses = [row["status"] for row in hostile_run.rows.values()]
    assert result.counts == {status: statuses.count(status) for status in manifest.STATUSES}


def test_the_bomb_is_refused_from_its_header_and_memory_stays_bounded(hostile_run):
    row = hostile_run.rows[str(hostile_run.root / "in" / "bomb/claims-50000x50000.png")]
    assert row["reason"] == "too_large" and "max_pixels 250,000,000" in row["error"] and "2500000000" in row["error"]
    # Its pixels would take 2.5 GB; every worker stayed far below (the actors hold torch).
    assert 0 < hostile_run.peak_rss < 1.5 * 2**30, hostile_run.peak_rss


def test_links_out_of_input_are_refused_and_never_followed(hostile_run):
    root, out = hostile_run.root, hostile_run.root / "out"
    assert hostile_run.rows[str(root / "in/links/to-outside.jpg")]["error"].endswith(
        "a symbolic link to a file outside INPUT"
    )
    assert not any("folder-outside" in url or "outside/" in url for url in hostile_run.rows)
    assert sorted(os.listdir(root / "outside")) == hostile_run.outside_before
    assert not (out / "links" / "to-outside.jpg").exists() and not (out / "links" / "folder-outside").exists()


def test_every_output_decodes_with_the_size_of_its_input(hostile_run):
    colorized = [row for row in hostile_run.rows.values() if row["status"] == "colorized"]
    assert len(colorized) >= sum(statuses == COLORIZED for statuses, _ in hostile_run.expected.values()) == 24
    for row in colorized:
        assert row["output_url"].startswith(str(hostile_run.root / "out") + "/")
        with Image.open(row["output_url"]) as output:
            output.load()
            assert output.size == (row["width"], row["height"]), row["input_url"]
