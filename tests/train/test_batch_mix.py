"""Training batches mix categories: prepare's mixed shards, the per-epoch file order and the
workers' shuffle buffer together give batches whose majority category is as rare as under a
uniform shuffle of the whole split."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from archive_colorizer.prepare import run as prepare
from archive_colorizer.prepare.config import PrepareConfig
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.data import Shards
from tests.prepare.conftest import write_category_collection

BATCH = 16


def _majority_shares(labels: list[str]) -> list[float]:
    """Share of each full batch of ``BATCH`` consecutive labels taken by its most frequent one."""
    batches = [labels[i : i + BATCH] for i in range(0, len(labels) - BATCH + 1, BATCH)]
    return [max(Counter(batch).values()) / BATCH for batch in batches]


def _training_order(url: str, buffer: int) -> list[str]:
    """Labels in the order a training worker sees the train split: files shuffled, then the buffer."""
    from ray.data.expressions import col, lit

    dataset = Shards.find(url).read(shuffle_files=True).filter(expr=col("split") == lit("train"))
    labels = []
    for batch in dataset.select_columns(["label"]).iter_batches(
        batch_size=BATCH, local_shuffle_buffer_size=buffer or None, batch_format="pyarrow"
    ):
        labels += batch.column("label").to_pylist()
    return labels


@pytest.mark.usefixtures("ray_local")
def test_majority_category_share_in_batches_is_that_of_a_uniform_shuffle(photos, tmp_path):
    source = write_category_collection(tmp_path / "places", photos)
    common = dict(size=32, min_size=32, val_fraction=0.05, rows_per_shard=100, progress=False, max_tasks=2)
    prepare(PrepareConfig(input=str(source), output=str(tmp_path / "mixed"), **common))
    prepare(PrepareConfig(input=str(source), output=str(tmp_path / "in-order"), mix_window_shards=1, **common))
    default_buffer = TrainConfig.model_fields["shuffle_buffer"].default

    mixed = _training_order(str(tmp_path / "mixed"), default_buffer)
    # Uniform: the same labels in 200 random orders, the majority share of each batch of 16.
    rng = np.random.default_rng(0)
    uniform = np.mean([np.mean(_majority_shares(list(rng.permutation(mixed)))) for _ in range(200)])
    assert 0.15 < uniform < 0.21  # 20 equal categories: usually 2-3 of 16 share the commonest one
    assert abs(np.mean(_majority_shares(mixed)) - uniform) < 0.03
    # Shards of two categories each (listing order, as before mixing) without a buffer: every
    # batch within a file holds at most two, so its commonest takes half or more (measured 0.55).
    assert np.mean(_majority_shares(_training_order(str(tmp_path / "in-order"), 0))) > max(0.45, 2 * uniform)
