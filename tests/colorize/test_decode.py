"""The decode stage: gray values of every mode, colour detection, statuses, the generator's input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.colorize import decode, manifest
from tests.colorize.conftest import encode, settings_for


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA", "CMYK"])
def test_gray_planes_take_pillows_luma_of_every_mode(photos, mode):
    rgb = Image.fromarray(photos["astronaut"])
    image = rgb.convert(mode)
    planes = decode.gray_planes(image)
    expected = image.convert("RGB").convert("L") if mode in ("CMYK", "P") else image.convert("L")
    assert planes.gray8.mode == "L" and planes.gray8.size == rgb.size
    assert np.array_equal(np.asarray(planes.gray8), np.asarray(expected))
    assert planes.gray16 is None and planes.alpha is None  # fully opaque alpha is dropped


def test_sixteen_bit_gray_keeps_all_bits_and_transparency_is_kept(photos):
    gray16 = (np.asarray(Image.fromarray(photos["coffee"]).convert("L"), dtype=np.uint16) * 257 + 128).astype(np.uint16)
    planes = decode.gray_planes(Image.fromarray(gray16))
    assert np.array_equal(planes.gray16, gray16)
    assert np.array_equal(np.asarray(planes.gray8), (gray16 >> 8).astype(np.uint8))
    rgba = Image.fromarray(photos["chelsea"]).convert("RGBA")
    rgba.putalpha(128)
    assert np.asarray(decode.gray_planes(rgba).alpha).max() == 128


def test_colour_measure_separates_colour_photos_from_gray_ones(photos):
    assert decode.colour_measure(Image.fromarray(photos["coffee"])) > 15
    assert decode.colour_measure(Image.fromarray(photos["coffee"]).convert("L").convert("RGB")) < 1
    assert decode.colour_measure(Image.fromarray(photos["coffee"]).convert("L")) == 0.0


def test_the_gray_is_squeezed_to_the_model_size_without_loading_torch(photos):
    import subprocess
    import sys

    gray = Image.fromarray(photos["rocket"]).convert("L")  # 640 x 427, squeezed to 32 x 32
    small = decode.small_gray(gray, 32)
    assert small.shape == (32, 32) and small.dtype == np.uint8
    expected = np.asarray(gray.resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    assert np.abs(small - expected).mean() < 3.0  # a faithful thumbnail of the photo
    probe = (
        "import sys, archive_colorizer.colorize.decode, archive_colorizer.colorize.merge; print('torch' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def _row(path, **values):
    return manifest.new_row(
        str(path), output_url=str(path.parent.parent / "out" / path.name), output_format="JPEG", **values
    )


def test_rows_get_their_status_from_what_the_file_is(photos, tmp_path):
    (tmp_path / "in").mkdir()
    gray, colour = tmp_path / "in" / "gray.jpg", tmp_path / "in" / "colour.jpg"
    gray.write_bytes(encode(Image.fromarray(photos["chelsea"]).convert("L"), "JPEG", quality=90))
    colour.write_bytes(encode(Image.fromarray(photos["chelsea"]), "JPEG", quality=90))
    settings = settings_for(tmp_path)

    pending = _row(gray)
    assert decode.prepare_row(pending, settings).shape == (32, 32)
    assert (pending["status"], pending["width"], pending["height"], pending["input_mode"]) == (
        manifest.PENDING,
        451,
        300,
        "L",
    )
    assert pending["data"] == gray.read_bytes()

    skipped = _row(colour)
    assert decode.prepare_row(skipped, settings) is None and skipped["status"] == manifest.SKIPPED_COLOR
    colorized = _row(colour)
    assert decode.prepare_row(colorized, settings_for(tmp_path, on_color="colorize")) is not None

    too_large = _row(gray)
    decode.prepare_row(too_large, settings_for(tmp_path, max_pixels=1000))
    assert (too_large["status"], too_large["reason"]) == (manifest.FAILED, "too_large")

    missing = _row(tmp_path / "in" / "gone.jpg")
    decode.prepare_row(missing, settings)
    assert (missing["status"], missing["reason"]) == (manifest.FAILED, "unreadable") and "gone.jpg" in missing["error"]


def test_finished_inputs_are_skipped_without_reading_them_unless_overwrite(photos, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "done.jpg").write_bytes(b"an earlier output")
    done = _row(tmp_path / "in" / "done.jpg", previous_sha256="cd" * 32)  # the input itself no longer exists
    decode.prepare_row(done, settings_for(tmp_path))
    assert (done["status"], done["model_sha256"]) == (manifest.SKIPPED_EXISTING, "cd" * 32)
    redo = _row(tmp_path / "in" / "done.jpg", previous_sha256="cd" * 32)
    decode.prepare_row(redo, settings_for(tmp_path, overwrite=True))
    assert redo["status"] == manifest.FAILED  # it was read (and is missing) instead of skipped


def test_prepare_batch_passes_final_rows_through_and_fills_the_small_gray(photos, tmp_path):
    (tmp_path / "in").mkdir()
    gray = tmp_path / "in" / "gray.png"
    gray.write_bytes(encode(Image.fromarray(photos["rocket"]).convert("L"), "PNG"))
    empty = tmp_path / "in" / "empty.png"
    empty.write_bytes(b"")
    listed_failure = manifest.new_row("s3://b/../x.jpg", status=manifest.FAILED, reason="unsafe_path", error="escapes")
    table = manifest.to_table([_row(gray), _row(empty), listed_failure])
    rows = decode.prepare_batch(table, settings_for(tmp_path)).to_pylist()
    assert [r["status"] for r in rows] == [manifest.PENDING, manifest.FAILED, manifest.FAILED]
    assert rows[1]["reason"] == "empty" and rows[2] == {**listed_failure, "seconds": 0.0}
    small = np.frombuffer(rows[0]["gray_small"], np.uint8)
    assert small.size == 32 * 32 and small.min() < small.max()
    assert rows[0]["seconds"] > 0 and rows[1]["gray_small"] is None


def test_the_fused_stage_decodes_each_input_once_within_its_pixel_budget(photos, tmp_path):
    """prepare_batch(keep=...) holds full-size decodes for the merge, up to keep_pixels; the merge's
    output from a kept image has the very pixels of the one it makes by decoding the file again."""
    from archive_colorizer.colorize import merge

    (tmp_path / "in").mkdir()
    paths = []
    for name in ("rocket", "coffee", "chelsea"):
        path = tmp_path / "in" / f"{name}.jpg"
        path.write_bytes(encode(Image.fromarray(photos[name]).convert("L"), "JPEG", quality=90))
        paths.append(path)
    settings = settings_for(tmp_path)
    table = manifest.to_table([_row(path) for path in paths])

    kept: dict[int, object] = {}
    # rocket is 640 x 427 = 273,280 pixels: a budget just above it keeps rocket and coffee only
    # (the budget is checked before each decode), chelsea is decoded small and again by the merge.
    rows = decode.prepare_batch(table, settings, keep=kept, keep_pixels=273_281).to_pylist()
    assert sorted(kept) == [0, 1] and [r["status"] for r in rows] == [manifest.PENDING] * 3
    assert kept[0].image.size == (640, 427) and kept[1].image.size == (600, 400)  # full size, not the draft
    reference = [decode.prepare_row(_row(path), settings) for path in paths]
    for row, small in zip(rows, reference, strict=True):
        squeezed = np.frombuffer(row["gray_small"], np.uint8).reshape(32, 32).astype(int)
        assert np.abs(squeezed - small.astype(int)).max() <= 8  # the same thumbnail, from full size or the draft

    chroma = np.zeros((2, 32, 32), np.float32)
    chroma[0], chroma[1] = -20.0, 25.0  # a warm tint, the same for both routes
    for row in rows:
        row["chroma"] = chroma.tobytes()
    from_kept = merge.finish_batch(manifest.to_table(rows), settings, dict(kept)).to_pylist()

    def pixels() -> dict[str, np.ndarray]:
        return {p.name: np.asarray(Image.open(p)) for p in (tmp_path / "out").iterdir()}

    written = pixels()
    again = merge.finish_batch(manifest.to_table(rows), settings_for(tmp_path, overwrite=True)).to_pylist()
    assert [r["status"] for r in from_kept] == [r["status"] for r in again] == [manifest.COLORIZED] * 3
    assert written.keys() == pixels().keys()
    print({n: (written[n].shape, p.shape, np.abs(written[n].astype(int) - p).max()) for n, p in pixels().items()})
    assert all(np.array_equal(written[name], pixel) for name, pixel in pixels().items())
    output = np.asarray(Image.open(tmp_path / "out" / "rocket.jpg").convert("YCbCr"), dtype=float)
    assert output[..., 2].mean() > 145 and output[..., 1].mean() < 118  # the tint is there
