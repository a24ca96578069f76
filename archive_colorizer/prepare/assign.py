"""Which inputs go to which shard: seeded windows of the listing, so every category is spread out.

A folder-per-category collection (Places365: ``a/abbey/...``, 3,068-5,000 images per folder)
lists category after category; shards filled in listing order would each hold one or two
categories. Instead the listing is cut into windows of ``rows_per_shard * window_shards``
consecutive inputs (streamed: the driver holds one window of small :class:`InputRef` records,
about 300 bytes each, never image bytes). Inside a window the inputs are ordered by a seeded
BLAKE2b hash of their key (path, archive member, row) and dealt into ``window_shards`` shards of
``rows_per_shard``.

Guarantee: shard ``i`` always receives the same inputs for the same listing, ``rows_per_shard``,
``window_shards`` and ``seed`` (on any machine, in any process), so a resumed run rewrites
exactly the shards it did not finish and no input lands in two shards. Every shard holds
``rows_per_shard`` inputs except the last window's, which share its remainder evenly (sizes
differ by at most one). Within a window the assignment is a uniformly random permutation:
a category with ``c`` inputs in a window lands in each of its shards ``c / window_shards`` times
on average (hypergeometric spread). With the defaults (1,000 rows, 64 shards: windows of 64,000
inputs, ~20 MB of listing in the driver) a Places365 window holds at least 13 categories, so no
category makes more than about 8 % of a shard; a collection smaller than one window is shuffled
as a whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice

from archive_colorizer.prepare.listing import InputRef


def input_key(ref: InputRef) -> str:
    """A string naming ``ref`` uniquely within a collection: its path, archive member and row."""
    return f"{ref.path}\0{ref.member or ''}\0{ref.offset if ref.kind == 'parquet' else ''}"


def _rank(ref: InputRef, salt: bytes) -> bytes:
    return hashlib.blake2b(input_key(ref).encode("utf-8"), digest_size=8, salt=salt).digest()


def mixed_shards(
    refs: Iterable[InputRef], rows_per_shard: int, window_shards: int = 64, seed: int = 0
) -> Iterator[tuple[int, list[InputRef]]]:
    """Yield ``(shard index, inputs)`` for the listing ``refs``, as the module docstring describes.

    Args:
        refs: the listing, in its stable order (:func:`~.listing.iter_inputs`).
        rows_per_shard: inputs per shard, >= 1.
        window_shards: shards drawn together from one window of the listing, >= 1
            (1 keeps the listing order across shards, shuffling only inside each).
        seed: salt in [0, 2**63) of the hash; another seed deals other shards.

    Yields:
        Shard indices 0, 1, 2, ... in order, each with its list of inputs.
    """
    salt = seed.to_bytes(8, "little")
    iterator = iter(refs)
    index = 0
    while window := list(islice(iterator, rows_per_shard * window_shards)):
        window.sort(key=lambda ref: _rank(ref, salt))
        count = -(-len(window) // rows_per_shard)  # shards in this window (ceil)
        for part in range(count):
            yield index, window[part::count]
            index += 1
