"""Milliseconds per image of the chroma limit near black and white, by route and prediction strength; prints JSON.

The limit (:mod:`archive_colorizer.gamut`) keeps every chroma sample of a colorized output
inside the RGB gamut for the gray values it colours. Its cost depends on the prediction: a
strong one puts many samples within reach of 0 or 255. This measures, on scikit-image's
photographs (astronaut, coffee, chelsea, rocket, camera, immunohistochemistry) made gray and
scaled to about ``--megapixels``:

- ``planes_420``: :func:`archive_colorizer.chroma420.chroma_planes_420` (the upsampling to half
  size and the limit per 2 x 2 block: JPEG outputs' default route);
- ``merge_444``: :func:`archive_colorizer.color.merge_full_resolution` (the upsampling to full
  size, the limit per pixel and Pillow's YCbCr image: PNG and TIFF outputs, ``--chroma 444``);
- ``merge_16bit``: :func:`archive_colorizer.color.merge_full_resolution_16bit` on the scan made
  16-bit (x 257): the upsampling in float32, the limit per pixel and the 16-bit RGB pixels of 16-bit
  PNG and TIFF outputs;

for predictions of mean absolute chroma offset ``--amplitudes`` levels (a smooth random field at
the demo's 128 px: the demo's trained generator predicts about 25 on these scans; 0 is the
untrained benchmark generator's case), plus ``first_call_seconds``: loading (or, on a machine
without numba's cache of the kernels, compiling) the compiled kernels in this process.

Usage::

    .venv/bin/python bench/chroma_limit.py [--megapixels 1.7] [--amplitudes 0 10 25 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_report  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")


def gray_scans(megapixels: float) -> list[Image.Image]:
    """scikit-image's photographs made gray and scaled to about ``megapixels`` (Pillow's LANCZOS)."""
    import skimage.data

    scans = []
    for name in PHOTOS:
        gray = Image.fromarray(getattr(skimage.data, name)()).convert("L")
        scale = (megapixels * 1e6 / (gray.width * gray.height)) ** 0.5
        scans.append(gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.LANCZOS))
    return scans


def prediction(amplitude: float, seed: int, size: int = 128) -> np.ndarray:
    """A (2, size, size) float32 chroma prediction: a smooth random field (8 x 8 noise, bilinear)
    whose mean absolute value is ``amplitude`` levels."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, (2, 8, 8)).astype(np.float32)
    field = np.stack([cv2.resize(plane, (size, size), interpolation=cv2.INTER_LINEAR) for plane in coarse])
    mean = float(np.abs(field).mean())
    return (field * (amplitude / mean if mean else 0.0)).astype(np.float32)


def per_image_ms(run, scans: list, chromas: list[np.ndarray], repeats: int) -> float:
    """The best of ``repeats`` passes over the scans, in ms per image."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for scan, chroma in zip(scans, chromas, strict=True):
            run(scan, chroma)
        best = min(best, time.perf_counter() - start)
    return round(1000 * best / len(scans), 3)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=1.7)
    parser.add_argument("--amplitudes", type=float, nargs="+", default=[0.0, 10.0, 25.0, 60.0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args(argv)

    from archive_colorizer import chroma420, color, gamut, images

    scans = gray_scans(options.megapixels)
    scans_16bit = [np.asarray(scan, np.uint16) * 257 for scan in scans]
    start = time.perf_counter()
    gamut.warm()
    report: dict = {
        "images": len(scans),
        "mean_megapixels": round(float(np.mean([s.width * s.height for s in scans])) / 1e6, 3),
        "load_average_before": round(os.getloadavg()[0], 2),
        "first_call_seconds": round(time.perf_counter() - start, 3),
        "ms_per_image": {},
    }
    for amplitude in options.amplitudes:
        chromas = [prediction(amplitude, seed) for seed in range(len(scans))]
        report["ms_per_image"][f"amplitude_{amplitude:g}"] = {
            "planes_420": per_image_ms(
                lambda scan, chroma: chroma420.chroma_planes_420(images.gray_array(scan), chroma),
                scans,
                chromas,
                options.repeats,
            ),
            "merge_444": per_image_ms(color.merge_full_resolution, scans, chromas, options.repeats),
            "merge_16bit": per_image_ms(color.merge_full_resolution_16bit, scans_16bit, chromas, options.repeats),
        }
    return print_report(report)


if __name__ == "__main__":
    main()
