"""Degradations of the gray channel on real photographs: each operation's effect, seeds, recipes."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from archive_colorizer.degrade import OPERATIONS, RECIPES, Degradation, image_seed
from archive_colorizer.errors import ConfigError
from archive_colorizer.train.data import crop_square


@pytest.fixture(scope="module")
def grays(photos) -> dict[str, np.ndarray]:
    """256 x 256 gray (BT.601 luma) crops of real photographs."""
    return {
        name: np.asarray(Image.fromarray(crop_square(Image.fromarray(photos[name]), 256, None)).convert("L"))
        for name in ("astronaut", "coffee", "chelsea")
    }


def _named(recipe: str) -> Degradation:
    found = Degradation.named(recipe)
    assert found is not None
    return found


def _alone(name: str, **settings) -> Degradation:
    return Degradation({name: {"p": 1.0, **settings}}, name)


def _sharpness(gray: np.ndarray) -> float:
    """Mean squared difference of horizontal neighbours: falls when an image is blurred."""
    return float(np.mean(np.diff(gray.astype(np.float64), axis=1) ** 2))


def test_the_same_seed_gives_the_same_damage_and_another_seed_another(grays):
    recipe = _named("old-photo")
    for gray in grays.values():
        first = recipe(gray, 7)
        assert np.array_equal(recipe(gray, 7), first) and first.shape == gray.shape and first.dtype == np.uint8
        assert any(not np.array_equal(recipe(gray, seed), first) for seed in (8, 9, 10))
    assert image_seed(0, "a.jpg") == image_seed(0, "a.jpg") != image_seed(1, "a.jpg")


def test_probability_zero_leaves_every_image_untouched(grays):
    nothing = Degradation({name: {"p": 0.0} for name in OPERATIONS}, "none")
    for gray in grays.values():
        assert np.array_equal(nothing(gray, 3), gray)


def test_each_operation_does_what_its_name_says(grays):
    for gray in grays.values():
        blurred = _alone("blur", sigma=(2.0, 2.0))(gray, 1)
        assert _sharpness(blurred) < 0.5 * _sharpness(gray)
        low = _alone("downscale", scale=(0.25, 0.25))(gray, 1)
        assert _sharpness(low) < 0.7 * _sharpness(gray)
        faded = _alone("fading", contrast=(0.5, 0.5), lift=(0.0, 0.0))(gray, 1).astype(np.float64)
        assert faded.std() == pytest.approx(0.5 * gray.std(), rel=0.05)  # half the contrast gone
        noisy = _alone("noise", std=(0.05, 0.05))(gray, 1).astype(np.float64) - gray
        inside = (gray > 30) & (gray < 225)  # away from clipping
        assert noisy[inside].std() == pytest.approx(0.05 * 255, rel=0.1)
        specks = _alone("salt_pepper", amount=(0.02, 0.02))(gray, 1)
        changed = specks != gray
        assert 0.01 < changed.mean() < 0.025 and set(np.unique(specks[changed])) <= {0, 255}
        scratched = _alone("scratches", count=(3, 3), dust=(20, 20))(gray, 1)
        assert 0.001 < (scratched != gray).mean() < 0.05  # thin strokes and spots, not a veil
        screened = _alone("halftone", cell=(4.0, 4.0))(gray, 1).astype(np.float32)

        # Seen from afar (blurred over the screen's period) the dots keep the tone; up close they
        # differ from it by about twice as much (measured: 7.9-10.8 against 16.3-18.3 levels).
        def afar(image: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(image.astype(np.float32), (0, 0), 4)

        assert np.abs(afar(screened) - afar(gray)).mean() < 12 < 15 < np.abs(screened - gray).mean()
        errors = []
        for quality in (90, 15):  # the same artefacts as Pillow's (libjpeg) encoder at that quality
            compressed = _alone("jpeg", quality=(quality, quality))(gray, 1).astype(np.float64)
            buffer = io.BytesIO()
            Image.fromarray(gray).save(buffer, format="JPEG", quality=quality)
            assert np.abs(compressed - np.asarray(Image.open(buffer))).mean() < 0.5
            errors.append(np.abs(compressed - gray).mean())
        assert 0.3 < errors[0] < errors[1] / 2


def test_named_recipes_and_yaml_files_and_refusals(tmp_path):
    assert set(_named("old-photo").operations) == set(OPERATIONS)
    assert set(_named("scan").operations) == set(RECIPES["scan"])
    assert Degradation.named(None) is None and Degradation.named("none") is None
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("jpeg: {p: 1, quality: [20, 40]}\nscratches: {p: 0.5}\n")
    loaded = _named(str(recipe))
    assert loaded.describe()["operations"]["jpeg"] == {"p": 1.0, "quality": [20, 40]}
    assert list(loaded.operations) == ["scratches", "jpeg"]  # applied in the fixed order
    with pytest.raises(ConfigError, match="unknown operation.*mold"):
        Degradation({"mold": {"p": 1}})
    with pytest.raises(ConfigError, match="neither a built-in recipe"):
        Degradation.named(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="recipe 'bad'"):
        Degradation({"blur": {"p": 2}}, "bad")
