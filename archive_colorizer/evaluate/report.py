"""What an evaluation reports: per-image scores, their means, the printed table, the contact sheet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archive_colorizer.evaluate.metrics import METRICS, colorfulness, score
from archive_colorizer.figures import image_grid_png

COLOURINGS = ("model", "gray")
"""The colourings scored against the truth: the generator's prediction and the gray baseline (ab = 0)."""
DIGITS = 4
"""Decimals kept in ``evaluation.json``."""


@dataclass
class ScoredImage:
    """One held-out image scored.

    Attributes:
        name: where the image came from.
        truth_colorfulness: Hasler & Suesstrunk colourfulness of the ground truth.
        scores: ``{"model": {metric: value}, "gray": {...}}`` (see :mod:`.metrics`).
    """

    name: str
    truth_colorfulness: float
    scores: dict[str, dict[str, float]]

    @classmethod
    def of(cls, name: str, truth: np.ndarray, prediction: np.ndarray, gray: np.ndarray) -> ScoredImage:
        """Score the prediction and the gray baseline of one (S, S, 3) uint8 ground truth."""
        truth_cf = colorfulness(truth)
        return cls(name, truth_cf, {"model": score(truth, prediction, truth_cf), "gray": score(truth, gray, truth_cf)})

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "truth_colorfulness": round(self.truth_colorfulness, DIGITS),
            **{colouring: _rounded(values) for colouring, values in self.scores.items()},
        }


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {name: round(float(value), DIGITS) for name, value in values.items()}


def means(images: Sequence[ScoredImage]) -> dict[str, Any]:
    """Mean of every metric over the images, per colouring, plus the truth's mean colourfulness.

    Returns:
        ``{"model": {metric: mean}, "gray": {...}, "truth": {"colorfulness": mean}}``.
    """
    result: dict[str, Any] = {
        colouring: _rounded(
            {name: float(np.mean([image.scores[colouring][name] for image in images])) for name in METRICS}
        )
        for colouring in COLOURINGS
    }
    result["truth"] = {"colorfulness": round(float(np.mean([image.truth_colorfulness for image in images])), DIGITS)}
    return result


TABLE_ROWS = (
    ("psnr", "PSNR (dB, RGB 8-bit)", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("psnr_ab", "PSNR on ab (dB, chroma)", "{:.2f}"),
    ("ssim_ab", "SSIM on ab (chroma)", "{:.4f}"),
    ("colorfulness", "colorfulness", "{:.2f}"),
    ("delta_colorfulness", "dCF = CF(x) - CF(truth)", "{:+.2f}"),
    ("abs_delta_colorfulness", "|dCF|", "{:.2f}"),
    ("ciede2000", "CIEDE2000 (mean)", "{:.2f}"),
)


def format_table(mean: Mapping[str, Any], images: int, title: str) -> str:
    """The printed summary: one line per metric, model next to the gray baseline (and the truth's colourfulness)."""
    lines = [title, f"  {'mean over ' + str(images) + ' images':<28}{'model':>10}{'gray':>10}{'truth':>10}"]
    for name, label, form in TABLE_ROWS:
        truth = form.format(mean["truth"]["colorfulness"]) if name == "colorfulness" else ""
        lines.append(
            f"  {label:<28}{form.format(mean['model'][name]):>10}{form.format(mean['gray'][name]):>10}{truth:>10}"
        )
    return "\n".join(lines)


def contact_sheet_png(rows: Sequence[tuple[ScoredImage, np.ndarray, np.ndarray, np.ndarray]], title: str) -> bytes:
    """PNG contact sheet: one row per image, gray baseline | prediction | ground truth, labelled.

    Each colouring is labelled with its chroma PSNR (``psnr_ab``), CIEDE2000 and colourfulness;
    the truth with its colourfulness.

    Args:
        rows: ``(scored, gray, prediction, truth)`` with (S, S, 3) uint8 images.
        title: figure title (model and data).
    """

    def label(values: Mapping[str, float]) -> str:
        return f"PSNR ab {values['psnr_ab']:.1f} dB  dE00 {values['ciede2000']:.1f}  CF {values['colorfulness']:.0f}"

    columns = {
        "gray (baseline, ab = 0)": [r[1] for r in rows],
        "prediction": [r[2] for r in rows],
        "ground truth": [r[3] for r in rows],
    }
    cell_labels = [
        (label(s.scores["gray"]), label(s.scores["model"]), f"CF {s.truth_colorfulness:.0f}") for s, *_ in rows
    ]
    names = [s.name if len(s.name) <= 28 else "..." + s.name[-25:] for s, *_ in rows]
    return image_grid_png(columns, row_labels=names, cell_labels=cell_labels, title=title, cell_inches=2.56)
