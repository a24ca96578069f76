"""The shared figures: each image lands in its cell, at its place, with its own colours."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.figures import GAP, LABEL_HEIGHT, image_grid_png, labelled_grid_png

RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def _solid(colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_labelled_grid_puts_each_image_in_its_column_and_row_at_the_row_height():
    rows = [[_solid(RED, (80, 40)), _solid(BLUE, (40, 40)), None], [_solid(GREEN, (40, 80)), None, None]]
    grid = np.asarray(Image.open(io.BytesIO(labelled_grid_png(["a", "b", "c"], rows, ["", ""], 30))).convert("RGB"))
    # Column widths: the widest image at height 30 (80x40 -> 60x30; 40x40 -> 30x30); the empty column is dropped.
    assert grid.shape == (LABEL_HEIGHT + 2 * 30 + GAP, 60 + GAP + 30, 3)
    centre_of = {
        "red": grid[LABEL_HEIGHT + 5, 30],
        "blue": grid[LABEL_HEIGHT + 5, 60 + GAP + 15],
        "green": grid[LABEL_HEIGHT + 30 + GAP + 5, 7],  # 40x80 -> 15x30
        "blank": grid[LABEL_HEIGHT + 30 + GAP + 5, 60 + GAP + 15],
    }
    expected = {"red": RED, "blue": BLUE, "green": GREEN, "blank": (255, 255, 255)}
    for name, colour in expected.items():
        assert np.abs(centre_of[name].astype(int) - colour).max() <= 12, name  # palette quantization


def test_image_grid_has_one_cell_per_image_and_refuses_uneven_columns():
    red = np.zeros((2, 16, 16, 3), np.uint8) + np.array(RED, np.uint8)
    blue = np.zeros((2, 16, 16, 3), np.uint8) + np.array(BLUE, np.uint8)
    grid = np.asarray(
        Image.open(io.BytesIO(image_grid_png({"red": red, "blue": blue}, cell_inches=1.0))).convert("RGB")
    )
    height, width = grid.shape[:2]
    # Left half of the figure shows red cells, right half blue ones, top and bottom rows alike.
    for row in (0.3, 0.75):
        left = grid[int(row * height), int(0.27 * width)].astype(int)
        right = grid[int(row * height), int(0.73 * width)].astype(int)
        assert np.abs(left - RED).max() < 20 and np.abs(right - BLUE).max() < 20, row
    with pytest.raises(ValueError, match="same, non-zero number"):
        image_grid_png({"red": red, "blue": blue[:1]})
