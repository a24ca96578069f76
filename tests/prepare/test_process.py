"""Per-image rules on real photographs and planted bad files; the split hash."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import images
from archive_colorizer.images import mean_chroma
from archive_colorizer.prepare.process import ProcessSettings, assign_split, process_image
from tests.prepare.conftest import PLANTED, encode

SETTINGS = ProcessSettings(size=64)


def test_photo_is_resized_to_the_shorter_side_keeping_aspect_and_colour(photos):
    coffee = photos["coffee"]  # (400, 600, 3)
    result = process_image(encode(coffee, "JPEG", quality=90), SETTINGS, source="coffee.jpg")
    assert result.outcome == "written" and result.error is None
    stored = Image.open(io.BytesIO(result.jpeg))
    assert (stored.format, stored.mode) == ("JPEG", "RGB")
    assert stored.size == (result.width, result.height) == (96, 64)
    # The colour survives: the stored image's chroma is within 10 % of the original's.
    assert abs(mean_chroma(stored) - mean_chroma(Image.fromarray(coffee))) < 0.1 * mean_chroma(Image.fromarray(coffee))


def test_exif_orientation_is_applied_before_resizing(photos):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    data = encode(photos["coffee"], "JPEG", quality=90, exif=exif.tobytes())
    result = process_image(data, SETTINGS)
    assert (result.width, result.height) == (64, 96)


def test_planted_files_get_their_outcome_and_a_message_naming_them(collection):
    for path, outcome in PLANTED.items():
        result = process_image(collection[path], SETTINGS, source=path)
        assert (path, result.outcome) == (path, outcome)
        assert result.jpeg is None and path in result.error


def test_gray_photograph_stored_as_rgb_is_grayscale_and_toned_one_is_not(photos):
    gray = np.asarray(Image.fromarray(photos["astronaut"]).convert("L").convert("RGB"))
    assert process_image(encode(gray, "JPEG", quality=90), SETTINGS).outcome == "dropped_grayscale"
    # A sepia print has real chroma: kept, as the threshold's documentation says.
    luminance = gray[..., :1].astype(np.float32) / 255
    sepia = np.clip(luminance * np.array([255, 220, 170]), 0, 255).astype(np.uint8)
    assert process_image(encode(sepia, "JPEG", quality=90), SETTINGS).outcome == "written"


def test_pixel_limit_drops_before_decoding(photos):
    result = process_image(encode(photos["coffee"], "PNG"), ProcessSettings(size=64, max_pixels=400 * 599))
    assert result.outcome == "dropped_too_large" and "max_pixels" in result.error


def test_small_side_threshold_is_inclusive(photos):
    chelsea = encode(photos["chelsea"], "PNG")  # (300, 451)
    assert process_image(chelsea, ProcessSettings(size=64, min_size=300)).outcome == "written"
    assert process_image(chelsea, ProcessSettings(size=64, min_size=301)).outcome == "dropped_small"


def test_processing_is_deterministic(photos):
    data = encode(photos["rocket"], "PNG")
    assert process_image(data, SETTINGS).jpeg == process_image(data, SETTINGS).jpeg


def test_split_fraction_matches_and_grows_monotonically():
    paths = [f"places/{i:06d}.jpg" for i in range(20_000)]
    small = {p for p in paths if assign_split(p, 0.1) == "val"}
    large = {p for p in paths if assign_split(p, 0.3) == "val"}
    assert abs(len(small) / len(paths) - 0.1) < 0.01
    assert abs(len(large) / len(paths) - 0.3) < 0.015
    assert small <= large  # raising val_fraction only moves images from train to val
    assert {assign_split(p, 0.0) for p in paths} == {"train"} and {assign_split(p, 1.0) for p in paths} == {"val"}


def test_split_depends_on_the_seed_but_not_on_the_process():
    paths = [f"coco/{i}.jpg" for i in range(2_000)]
    here = [assign_split(p, 0.5, seed=7) for p in paths]
    code = (
        "from archive_colorizer.prepare.process import assign_split;"
        f"print(''.join(assign_split(f'coco/{{i}}.jpg', 0.5, seed=7)[0] for i in range({len(paths)})))"
    )
    elsewhere = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}
    ).stdout.strip()
    assert elsewhere == "".join(split[0] for split in here)
    other_seed = [assign_split(p, 0.5, seed=8) for p in paths]
    assert 0.4 < np.mean([a != b for a, b in zip(here, other_seed, strict=True)]) < 0.6


def test_desaturated_photograph_is_low_color_and_the_original_is_kept(photos):
    from PIL import ImageEnhance

    # coffee at 10 % of its saturation: mean chroma 4.9 passes the gray test, colourfulness 7.6 does not.
    faded = np.asarray(ImageEnhance.Color(Image.fromarray(photos["coffee"])).enhance(0.1))
    assert mean_chroma(Image.fromarray(faded)) > SETTINGS.gray_threshold
    dropped = process_image(encode(faded, "PNG"), SETTINGS, source="faded.png")
    assert dropped.outcome == "dropped_low_color" and dropped.jpeg is None
    assert dropped.error.startswith("faded.png: colourfulness ") and "below color_threshold 10.0" in dropped.error
    assert process_image(encode(photos["coffee"], "PNG"), SETTINGS).outcome == "written"
    no_test = ProcessSettings(size=64, color_threshold=0)
    assert process_image(encode(faded, "PNG"), no_test).outcome == "written"


def test_prepare_and_evaluate_share_one_colorfulness(photos):
    from archive_colorizer import colorfulness as shared
    from archive_colorizer.evaluate import metrics
    from archive_colorizer.prepare import process

    assert metrics.colorfulness is shared.colorfulness is process.colorfulness
    # Hasler & Suesstrunk on a hand-checkable image: half pure red, half pure blue.
    # rg = 255 | 0, yb = 127.5 | -255 -> sd(rg) 127.5, sd(yb) 191.25, mean(rg) 127.5, mean(yb) -63.75.
    halves = np.zeros((2, 2, 3), np.uint8)
    halves[0, :, 0] = 255
    halves[1, :, 2] = 255
    expected = np.hypot(127.5, 191.25) + 0.3 * np.hypot(127.5, -63.75)
    assert shared.colorfulness(halves) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("target", "stage", "error"),
    [
        ("to_rgb", "filter", ValueError("conversion from CMYK;I16 not supported")),
        ("resize_shorter_side", "resize", MemoryError("cannot allocate")),
        ("jpeg_bytes", "encode", OSError("encoder error -2")),
        ("decode", "decode", struct.error("unpack requires a buffer of 4 bytes")),
    ],
)
def test_any_error_for_one_image_is_a_recorded_drop(photos, monkeypatch, target, stage, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(images, target, broken)
    result = process_image(encode(photos["coffee"], "PNG"), SETTINGS, source="coffee.png")
    assert result.outcome == "dropped_error" and result.jpeg is None
    assert result.error == f"coffee.png: {stage}: {type(error).__name__}: {error}"
