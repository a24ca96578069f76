"""Shard assignment: seeded windows of the listing spread every category across shards."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from archive_colorizer.prepare.assign import mixed_shards
from archive_colorizer.prepare.listing import InputRef


def _listing(categories: int, per_category: int) -> list[InputRef]:
    """A sorted folder-per-category listing: ``cat00/000.jpg`` ... (as Places365 lists)."""
    return [
        InputRef("file", f"/data/cat{c:02d}/{i:03d}.jpg", f"cat{c:02d}/{i:03d}.jpg")
        for c in range(categories)
        for i in range(per_category)
    ]


def _majority_shares(shards) -> list[float]:
    return [max(Counter(r.path.split("/")[0] for r in refs).values()) / len(refs) for _, refs in shards]


def test_every_input_goes_to_exactly_one_shard_of_bounded_size():
    refs = _listing(20, 53)  # 1,060 inputs: two windows of 4 x 100, then 260 left over
    shards = list(mixed_shards(refs, rows_per_shard=100, window_shards=4, seed=3))
    assert [index for index, _ in shards] == list(range(11))
    assert [len(batch) for _, batch in shards] == [100] * 8 + [87, 87, 86]
    assert sorted(r.path for _, batch in shards for r in batch) == sorted(r.path for r in refs)


def test_categories_are_spread_like_a_uniform_shuffle():
    # 20 categories x 50 images, 10 shards of 100 from one window: a uniform shuffle gives each
    # shard a majority category near 1/20 (5 of 100; the max of 20 hypergeometric draws is ~9-10).
    shards = list(mixed_shards(_listing(20, 50), rows_per_shard=100, window_shards=10, seed=0))
    shares = _majority_shares(shards)
    assert max(shares) <= 0.12 and all(len({r.path.split("/")[0] for r in b}) >= 15 for _, b in shards)
    # Listing order (one-shard windows, the behaviour before mixing): every shard holds two categories.
    in_order = list(mixed_shards(_listing(20, 50), rows_per_shard=100, window_shards=1, seed=0))
    assert _majority_shares(in_order) == [0.5] * 10


def test_assignment_depends_on_the_seed_not_on_the_process():
    refs = _listing(5, 40)
    here = [[r.path for r in b] for _, b in mixed_shards(refs, 50, 4, seed=7)]
    code = (
        "from tests.prepare.test_assign import _listing; from archive_colorizer.prepare.assign import mixed_shards;"
        "print([[r.path for r in b] for _, b in mixed_shards(_listing(5, 40), 50, 4, seed=7)])"
    )
    elsewhere = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "99"}
    ).stdout.strip()
    assert elsewhere == str(here)
    other = [[r.path for r in b] for _, b in mixed_shards(refs, 50, 4, seed=8)]
    assert other != here and sorted(sum(other, [])) == sorted(sum(here, []))


def test_parquet_rows_of_one_file_are_told_apart():
    rows = [InputRef("parquet", "/d/x.parquet", "x.parquet", offset=i) for i in range(30)]
    dealt = [r.offset for _, b in mixed_shards(rows, 10, 3, seed=0) for r in b]
    assert sorted(dealt) == list(range(30)) and dealt != list(range(30))
