"""Training and validation metrics: pure functions on tensors, summed per rank, reduced over ranks.

Validation compares three colourings of the same L channel against the ground truth:

- ``val_L1_ab``: mean absolute error of the predicted ab, in network units (ab/110);
- ``val_L1_ab_gray``: the same for the gray baseline (ab = 0), i.e. mean |ab/110|;
- ``val_PSNR`` / ``val_PSNR_gray``: PSNR in dB of the RGB image (8-bit, ``20*log10(255/RMSE)``)
  of the prediction / the gray baseline against the ground-truth RGB, averaged over images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from archive_colorizer.color import l_ab_to_rgb

TRAIN_LOSSES = ("loss_G_GAN", "loss_G_L1", "loss_D_real", "loss_D_fake")
VAL_METRICS = ("val_L1_ab", "val_L1_ab_gray", "val_PSNR", "val_PSNR_gray")


class Accumulator:
    """Sums and counts of named metrics, reducible over ranks as one float64 vector.

    ``add(name, total, count)`` adds ``total`` (a sum over ``count`` items); the mean of a name
    is its sum over its count, ``None`` when nothing was added (e.g. GAN losses during the
    L1-only pretraining).
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self.sums = dict.fromkeys(self.names, 0.0)
        self.counts = dict.fromkeys(self.names, 0.0)

    def add(self, name: str, total: float | None, count: float = 1) -> None:
        if total is None:
            return
        self.sums[name] += float(total)
        self.counts[name] += count

    def to_tensor(self) -> torch.Tensor:
        """(2 * len(names),) float64: the sums, then the counts."""
        return torch.tensor(
            [self.sums[n] for n in self.names] + [self.counts[n] for n in self.names], dtype=torch.float64
        )

    @classmethod
    def from_tensor(cls, names: Iterable[str], values: torch.Tensor) -> Accumulator:
        """Inverse of :meth:`to_tensor` (e.g. after ``all_reduce(SUM)``)."""
        accumulator = cls(names)
        numbers = values.tolist()
        size = len(accumulator.names)
        for index, name in enumerate(accumulator.names):
            accumulator.sums[name] = numbers[index]
            accumulator.counts[name] = numbers[size + index]
        return accumulator

    def means(self) -> dict[str, float | None]:
        return {n: (self.sums[n] / self.counts[n] if self.counts[n] else None) for n in self.names}


def to_8bit(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float RGB in [0, 1] -> float tensor of the 8-bit values (0..255, integral)."""
    return (rgb.float() * 255.0).round().clamp(0.0, 255.0)


def psnr_8bit(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of 8-bit RGB images: ``20 * log10(255 / RMSE)``.

    Args:
        prediction, target: (B, 3, H, W) float tensors holding 8-bit values (see :func:`to_8bit`).

    Returns:
        (B,) float32; identical images give a large finite value (RMSE floored at 1e-4).
    """
    mse = ((prediction.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    return 20.0 * torch.log10(255.0 / mse.sqrt().clamp_min(1e-4))


@torch.no_grad()
def validation_sums(l_norm: torch.Tensor, predicted_ab: torch.Tensor, real_ab: torch.Tensor) -> dict[str, float]:
    """Sums over a batch of the per-image validation metrics (see the module docstring).

    Args:
        l_norm: (B, 1, H, W) in [-1, 1].
        predicted_ab: (B, 2, H, W) the generator's output, ab/110.
        real_ab: (B, 2, H, W) ground truth, ab/110.

    Returns:
        ``{name: sum over the B images}`` for every name in :data:`VAL_METRICS`; divide by B
        (or add to an :class:`Accumulator` with ``count=B``) for means.
    """
    predicted_ab, real_ab = predicted_ab.float(), real_ab.float()
    truth = to_8bit(l_ab_to_rgb(l_norm, real_ab))
    predicted = to_8bit(l_ab_to_rgb(l_norm, predicted_ab))
    gray = to_8bit(l_ab_to_rgb(l_norm, torch.zeros_like(real_ab)))
    return {
        "val_L1_ab": (predicted_ab - real_ab).abs().mean(dim=(1, 2, 3)).sum().item(),
        "val_L1_ab_gray": real_ab.abs().mean(dim=(1, 2, 3)).sum().item(),
        "val_PSNR": psnr_8bit(predicted, truth).sum().item(),
        "val_PSNR_gray": psnr_8bit(gray, truth).sum().item(),
    }


def epoch_row(
    epoch: int,
    global_step: int,
    phase: str,
    train: Accumulator,
    val: Accumulator,
    world_size: int,
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The ``metrics.jsonl`` row of one epoch from the rank-reduced accumulators.

    ``train`` holds the :data:`TRAIN_LOSSES` plus ``images`` (count), ``seconds``,
    ``data_wait_seconds`` (time spent waiting for batches, the first one included) and
    ``first_batch_seconds`` summed over ranks; ``val`` holds :data:`VAL_METRICS`. Times are
    reported as the mean over ranks.
    """
    means = train.means()
    seconds = train.sums["seconds"] / world_size  # mean wall time of the ranks' training loops
    images = int(train.sums["images"])
    row: dict[str, object] = {"epoch": epoch, "global_step": global_step, "phase": phase}
    row.update({name: means[name] for name in TRAIN_LOSSES})
    row.update(val.means())
    row.update(
        train_images=images,
        val_images=int(val.counts["val_L1_ab"]),
        seconds=round(seconds, 3),
        data_wait_seconds=round(train.sums["data_wait_seconds"] / world_size, 3),
        first_batch_seconds=round(train.sums["first_batch_seconds"] / world_size, 3),
        images_per_sec=images / seconds if seconds > 0 else None,
        images_per_sec_per_worker=images / seconds / world_size if seconds > 0 else None,
        workers=world_size,
    )
    row.update(extra or {})
    return row
