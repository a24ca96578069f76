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
DEGRADED_COLOURINGS = ("model_degraded", "gray_degraded")
"""With ``--degrade``, also: the prediction from the degraded gray image (merged with it as luma),
and that degraded gray image itself (its gray baseline)."""
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
    def of(cls, name: str, truth: np.ndarray, colourings: Mapping[str, np.ndarray]) -> ScoredImage:
        """Score each colouring (``{"model": prediction, "gray": gray, ...}``, (S, S, 3) uint8) of one truth."""
        truth_cf = colorfulness(truth)
        return cls(
            name, truth_cf, {colouring: score(truth, image, truth_cf) for colouring, image in colourings.items()}
        )

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
        ``{"model": {metric: mean}, "gray": {...}, ["model_degraded": ..., "gray_degraded": ...,]
        "truth": {"colorfulness": mean}}``.
    """
    result: dict[str, Any] = {
        colouring: _rounded(
            {name: float(np.mean([image.scores[colouring][name] for image in images])) for name in METRICS}
        )
        for colouring in images[0].scores
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
    """The printed summary: one line per metric, model next to the gray baseline (and the truth's colourfulness).

    With degraded inputs two more columns follow: the model and the gray baseline on them.
    """
    colourings = [c for c in (*COLOURINGS, *DEGRADED_COLOURINGS) if c in mean]
    headers = {"model": "model", "gray": "gray", "model_degraded": "model dgr", "gray_degraded": "gray dgr"}
    lines = [
        title,
        f"  {'mean over ' + str(images) + ' images':<28}"
        + "".join(f"{headers[c]:>10}" for c in colourings)
        + f"{'truth':>10}",
    ]
    for name, label, form in TABLE_ROWS:
        truth = form.format(mean["truth"]["colorfulness"]) if name == "colorfulness" else ""
        values = "".join(f"{form.format(mean[c][name]):>10}" for c in colourings)
        lines.append(f"  {label:<28}{values}{truth:>10}")
    return "\n".join(lines)


def contact_sheet_png(rows: Sequence[tuple[ScoredImage, Mapping[str, np.ndarray], np.ndarray]], title: str) -> bytes:
    """PNG contact sheet: one row per image, gray baseline | prediction [| degraded gray | prediction on
    it] | ground truth, labelled.

    Each colouring is labelled with its chroma PSNR (``psnr_ab``), CIEDE2000 and colourfulness;
    the truth with its colourfulness.

    Args:
        rows: ``(scored, {colouring: image}, truth)`` with (S, S, 3) uint8 images, colourings as
            in ``scored.scores``.
        title: figure title (model and data).
    """

    def label(values: Mapping[str, float]) -> str:
        return f"PSNR ab {values['psnr_ab']:.1f} dB  dE00 {values['ciede2000']:.1f}  CF {values['colorfulness']:.0f}"

    headers = {
        "gray": "gray (baseline, ab = 0)",
        "model": "prediction",
        "gray_degraded": "degraded gray (baseline)",
        "model_degraded": "prediction on the degraded",
    }
    order = [c for c in ("gray", "model", "gray_degraded", "model_degraded") if c in rows[0][1]]
    columns = {headers[c]: [images[c] for _, images, _ in rows] for c in order}
    columns["ground truth"] = [truth for *_, truth in rows]
    cell_labels = [(*(label(s.scores[c]) for c in order), f"CF {s.truth_colorfulness:.0f}") for s, *_ in rows]
    names = [s.name if len(s.name) <= 28 else "..." + s.name[-25:] for s, *_ in rows]
    return image_grid_png(columns, row_labels=names, cell_labels=cell_labels, title=title, cell_inches=2.56)
