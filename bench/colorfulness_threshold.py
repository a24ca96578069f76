"""The colourfulness distribution behind prepare's ``--color-threshold``: prints one JSON object.

Scores Hasler & Suesstrunk's colourfulness M (as prepare tests it: on a <= 256 px thumbnail) of
real colour photographs (scikit-image's and scikit-learn's, each whole and as four quadrant
crops) and of low-colour versions of them: 50 % / 20 % / 10 % saturation, faded prints (half
saturation, 60 % towards paper white), sepia-toned prints (the classic sepia matrix), gray prints
with a warm cast, and plain gray. Reports min, percentiles, max and how many fall below a few
thresholds for each.

    .venv/bin/python bench/colorfulness_threshold.py
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance

from archive_colorizer.prepare.process import thumbnail_colorfulness

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "hubble_deep_field")
SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
PAPER = np.array([235.0, 225.0, 205.0])
THRESHOLDS = (8.0, 10.0, 12.0, 15.0)


def photographs(crops: bool = True) -> dict[str, np.ndarray]:
    """Name -> (H, W, 3) uint8 colour photograph; with ``crops`` also each one's four quadrants."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    photos.update(zip(("china", "flower"), load_sample_images().images, strict=True))
    if not crops:
        return photos
    result = {}
    for name, array in photos.items():
        height, width = array.shape[:2]
        result[name] = array
        for index, (top, left) in enumerate([(0, 0), (0, width // 2), (height // 2, 0), (height // 2, width // 2)]):
            result[f"{name}-{index}"] = np.ascontiguousarray(array[top : top + height // 2, left : left + width // 2])
    return result


def _array(image: Image.Image | np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)) if isinstance(image, np.ndarray) else image


VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "original": lambda im: im,
    "saturation_0.5": lambda im: ImageEnhance.Color(im).enhance(0.5),
    "saturation_0.2": lambda im: ImageEnhance.Color(im).enhance(0.2),
    "saturation_0.1": lambda im: ImageEnhance.Color(im).enhance(0.1),
    "faded": lambda im: _array(0.4 * np.asarray(ImageEnhance.Color(im).enhance(0.5), np.float64) + 0.6 * PAPER),
    "sepia": lambda im: _array(np.asarray(im, np.float64) @ SEPIA.T),
    "warm_gray": lambda im: _array(np.asarray(im.convert("L"), np.float64)[..., None] * np.array([1.0, 0.95, 0.85])),
    "gray": lambda im: im.convert("L").convert("RGB"),
}


def distribution(values: list[float]) -> dict[str, float | int]:
    """Min, 5/25/50/75 percentiles, max, and the count below each of :data:`THRESHOLDS`."""
    p5, p25, p50, p75 = np.percentile(values, [5, 25, 50, 75])
    summary = {"count": len(values), "min": min(values), "p5": p5, "p25": p25, "median": p50, "p75": p75}
    summary["max"] = max(values)
    summary = {key: round(float(value), 2) if key != "count" else value for key, value in summary.items()}
    summary.update({f"below_{t:g}": int(sum(v < t for v in values)) for t in THRESHOLDS})
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-crops", action="store_true", help="score the whole photographs only")
    args = parser.parse_args(argv)
    photos = [Image.fromarray(a) for a in photographs(crops=not args.no_crops).values()]
    report = {
        name: distribution([thumbnail_colorfulness(variant(photo).convert("RGB")) for photo in photos])
        for name, variant in VARIANTS.items()
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
