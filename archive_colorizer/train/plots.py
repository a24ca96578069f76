"""Training plots as PNG bytes: the loss curve and the per-epoch sample grid.

Drawn with :mod:`archive_colorizer.figures` (matplotlib's object API and Agg, no pyplot state),
so they can be made from any thread or Ray worker without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from archive_colorizer.color import l_ab_to_rgb
from archive_colorizer.figures import figure_png, image_grid_png
from archive_colorizer.train.metrics import TRAIN_LOSSES


def _series(history: Sequence[Mapping[str, Any]], name: str) -> tuple[list[int], list[float]]:
    points = [(int(row["epoch"]), float(row[name])) for row in history if row.get(name) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def loss_curve_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """PNG of the training losses and validation metrics per epoch.

    Args:
        history: ``metrics.jsonl`` rows (``epoch``, the train losses, ``val_L1_ab``,
            ``val_L1_ab_gray``, ``val_PSNR``, ``val_PSNR_gray``); missing values are skipped.
    """
    figure = Figure(figsize=(12, 4))
    losses, l1, psnr = figure.subplots(1, 3)
    for name in TRAIN_LOSSES:
        losses.plot(*_series(history, name), marker=".", label=name)
    losses.set(title="training losses", xlabel="epoch")
    for name, axes in (("val_L1_ab", l1), ("val_L1_ab_gray", l1), ("val_PSNR", psnr), ("val_PSNR_gray", psnr)):
        axes.plot(*_series(history, name), marker=".", label=name)
    train_l1 = _series(history, "loss_G_L1")
    l1.plot(*train_l1, marker=".", linestyle=":", label="loss_G_L1 (train)")
    l1.set(title="L1(ab/110)", xlabel="epoch")
    psnr.set(title="validation PSNR (dB, RGB 8-bit)", xlabel="epoch")
    for axes in (losses, l1, psnr):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)


def sample_grid_png(l_norm: torch.Tensor, predicted_ab: torch.Tensor, real_ab: torch.Tensor, title: str = "") -> bytes:
    """PNG grid, one row per image: gray input | prediction | ground truth.

    Args:
        l_norm: (N, 1, H, W) in [-1, 1].
        predicted_ab: (N, 2, H, W) ab/110 from the generator.
        real_ab: (N, 2, H, W) ab/110 ground truth.
        title: figure title, e.g. the run and epoch.
    """
    columns = {
        "gray input": l_ab_to_rgb(l_norm, torch.zeros_like(real_ab)),
        "prediction": l_ab_to_rgb(l_norm, predicted_ab.float()),
        "ground truth": l_ab_to_rgb(l_norm, real_ab.float()),
    }
    # (N, H, W, 3) in [0, 1] per column
    return image_grid_png({name: rgb.permute(0, 2, 3, 1).cpu().numpy() for name, rgb in columns.items()}, title=title)
