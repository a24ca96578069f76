"""Fixtures of the colorize tests: an untrained tiny generator and a folder of real, odd and broken files."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.colorize import manifest
from archive_colorizer.colorize.stage_settings import StageSettings
from archive_colorizer.models import GeneratorSpec
from archive_colorizer.models.artifact import save_generator

GRAY_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An untrained pix2pix generator (ngf 8, 5 downsamplings) saved as an artifact with working size 32."""
    import torch

    torch.manual_seed(0)
    spec = GeneratorSpec(ngf=8, num_downs=5)
    url = str(tmp_path_factory.mktemp("model") / "generator")
    save_generator(spec.build(), url, spec=spec, working_size=32, provenance={"run": "untrained test generator"})
    return url


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def write_mixed_archive(folder: Path, photos: dict[str, np.ndarray]) -> dict[str, str]:
    """Write real photographs made gray plus odd and broken files under ``folder``.

    Returns:
        relative path -> expected manifest status.
    """
    expected: dict[str, str] = {}

    def put(relative: str, data: bytes, status: str) -> None:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
        expected[relative] = status

    exif = Image.Exif()
    exif[0x0132] = "1968:07:20 10:56:00"  # DateTime
    for name in GRAY_PHOTOS:
        gray = Image.fromarray(photos[name]).convert("L")
        put(f"scans/{name}.jpg", encode(gray, "JPEG", quality=90, dpi=(300, 300), exif=exif.tobytes()), "colorized")
    rotated = Image.Exif()
    rotated[0x0112] = 6  # displayed rotated 90 degrees clockwise
    chelsea = Image.fromarray(photos["chelsea"]).convert("L")
    put("odd/rotated.jpg", encode(chelsea, "JPEG", quality=90, exif=rotated.tobytes()), "colorized")
    gray16 = (np.asarray(Image.fromarray(photos["coffee"]).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    put("odd/sixteen.png", encode(Image.fromarray(gray16), "PNG"), "colorized")
    put("odd/sixteen.tif", encode(Image.fromarray(gray16[::2, ::2].copy()), "TIFF", dpi=(600, 600)), "colorized")
    rocket = Image.fromarray(photos["rocket"]).convert("L")
    put("odd/palette.gif", encode(rocket.convert("P"), "GIF"), "colorized")
    rgba = Image.fromarray(photos["astronaut"]).convert("L").convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    put("odd/transparent.png", encode(rgba, "PNG"), "colorized")
    put("colour/coffee.jpg", encode(Image.fromarray(photos["coffee"]), "JPEG", quality=90), "skipped_color")
    whole = encode(Image.fromarray(photos["astronaut"]).convert("L"), "JPEG", quality=90)
    put("bad/truncated.jpg", whole[: len(whole) // 2], "failed")
    put("bad/empty.jpg", b"", "failed")
    put("bad/notes.jpg", b"These are notes about the scans, not a JPEG.\n" * 20, "failed")
    return expected


def reference_gray(path: Path) -> np.ndarray:
    """The gray values a person would read from an input or output file: (H, W) float in 8-bit levels.

    EXIF orientation applied; 16-bit values scaled by 1/257; colour and palettes through Pillow's
    ``convert("L")`` (alpha ignored).
    """
    from PIL import ImageOps

    if path.suffix == ".tif":
        import tifffile

        raw = tifffile.imread(path)
        array = raw.astype(np.float64) / (257.0 if raw.dtype == np.uint16 else 1.0)
        if array.ndim == 3:
            array = array[..., 0] * 0.299 + array[..., 1] * 0.587 + array[..., 2] * 0.114
        return array
    image = ImageOps.exif_transpose(Image.open(path))
    if image.mode.startswith("I"):
        return np.asarray(image, dtype=np.float64) / 257.0
    return np.asarray(image.convert("L"), dtype=np.float64)


def settings_for(tmp_path, **values) -> StageSettings:
    """Stage settings of a test run writing to ``tmp_path / "out"`` (tiny model size 32); ``values`` override."""
    run = manifest.RunInfo("testrun", dt.datetime.now(dt.timezone.utc), "ab" * 32, "0.1.0")
    base = {
        "output_url": str(tmp_path / "out"),
        "model_size": 32,
        "max_pixels": 10_000_000,
        "on_color": "skip",
        "color_threshold": 4.0,
        "overwrite": False,
        "jpeg_quality": 95,
        "run": run,
    }
    return StageSettings(**{**base, **values})
