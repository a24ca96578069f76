"""Per-image rules on real photographs and planted bad files; the split hash."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from archive_colorizer.imageio import mean_chroma
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
