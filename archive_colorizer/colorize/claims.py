"""Repeated input-list entries done once: a claim table sharded by key, compact, that survives its loss.

An input list may name an input more than once. The first listing task to *claim* an input's
64-bit key (BLAKE2b of its URL, :func:`input_key`) gives it its row; a later entry of the same
input finds the key claimed by another entry and is marked ``duplicate`` (counted, never
written). Which of two entries of the same input gives the row does not matter: both name the
same input and output. (Output clashes between *different* inputs are decided by a rule that
does not depend on the order at all: :func:`.input_rows.list_entry_rows`.)

- **Sharded**: key ``k`` belongs to shard ``k % shards``; each shard is its own actor
  (:class:`ClaimShard` in :mod:`.listing_tasks`), about :data:`ENTRIES_PER_SHARD` entries each, so no
  process holds the whole list's keys.
- **Compact**: a shard keeps sorted NumPy runs of (key, position), 16 bytes per distinct input,
  merged as they grow (a log-structured merge: at most ~log2(n) runs, each looked up with
  ``searchsorted``; merges in linear time); a merge briefly needs about twice the runs it merges.
- **Idempotent**: a claim carries the entry's *position* in the list (chunk and entry number,
  :func:`.input_lists.position`). A retried listing task claims its entries again with the same
  positions and gets the same answer, so a task lost with its node is redone without its inputs
  turning into duplicates.
- **Durable**: a shard appends every new claim to a log file before it answers, and a
  restarted shard (Ray restarts the actor after its process dies) reads the log back first, so
  duplicates are still done once after the shard itself is lost. The shards and their logs
  live on the driver's node: that node lost ends the job anyway (Ray's head).

Pure NumPy; no Ray.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ENTRIES_PER_SHARD = 10_000_000
"""Distinct inputs a shard is sized for (160 MB of claims; a merge briefly twice that)."""
MAX_SHARDS = 16
"""Most shards of one list (processes: a shard of a 1B-entry list then holds ~1 GB)."""
RECORD = np.dtype([("key", "<u8"), ("position", "<u8")])
"""A claim as stored in a shard's log: 16 bytes, little-endian."""


def input_key(input_url: str) -> int:
    """64-bit key of an input URL (BLAKE2b, little-endian)."""
    return int.from_bytes(hashlib.blake2b(input_url.encode(), digest_size=8).digest(), "little")


def shard_count(estimated_entries: int) -> int:
    """Shards for a list of about ``estimated_entries`` entries: one per :data:`ENTRIES_PER_SHARD`, at most
    :data:`MAX_SHARDS`."""
    return max(1, min(MAX_SHARDS, -(-estimated_entries // ENTRIES_PER_SHARD)))


@dataclass
class ClaimTable:
    """One shard's claims: which position first claimed each key; optionally logged to ``log_path``.

    Attributes:
        log_path: the shard's append-only log (:data:`RECORD` records), read back on creation;
            None keeps the claims in memory only.
    """

    log_path: str | None = None
    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, "rb") as handle:
                data = handle.read()
            whole = len(data) // RECORD.itemsize * RECORD.itemsize  # a write cut short by a kill: dropped
            records = np.frombuffer(data[:whole], dtype=RECORD)
            if len(records):  # each call's claims are sorted, the log as a whole is not
                order = np.argsort(records["key"], kind="stable")
                self._add(records["key"][order].astype(np.uint64), records["position"][order].astype(np.uint64))

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self.runs)

    def nbytes(self) -> int:
        """Bytes the claims take in memory."""
        return sum(keys.nbytes + positions.nbytes for keys, positions in self.runs)

    def claim(self, keys: Sequence[int] | np.ndarray, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Claim ``keys`` for ``positions``; returns, per entry, whether it holds its key (True) or repeats one.

        A key already claimed is held by the position that claimed it (that position asking again
        gets True: a retry); an unclaimed key repeated within the call goes to its lowest position.
        New claims are logged before this returns.

        Args:
            keys: (N,) uint64 input keys (:func:`input_key`).
            positions: (N,) uint64 positions of the entries (:func:`.input_lists.position`).
        """
        keys = np.asarray(keys, dtype=np.uint64)
        positions = np.asarray(positions, dtype=np.uint64)
        order = np.lexsort((positions, keys))  # by key, then position: lookups of sorted keys are ~7x faster
        sorted_keys, sorted_positions = keys[order], positions[order]
        holder = sorted_positions.copy()
        known = np.zeros(len(keys), dtype=bool)
        for run_keys, run_positions in self.runs:
            at = np.minimum(np.searchsorted(run_keys, sorted_keys), max(len(run_keys) - 1, 0))
            found = run_keys[at] == sorted_keys if len(run_keys) else known & False
            holder[found] = run_positions[at[found]]
            known |= found
        first = np.ones(len(keys), dtype=bool)  # an unclaimed key repeated here: its lowest position
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))
        holder[~known] = sorted_positions[group_start[~known]]
        new = ~known & first
        if new.any():
            self._log(sorted_keys[new], sorted_positions[new])
            self._add(sorted_keys[new], sorted_positions[new])
        holds = np.empty(len(keys), dtype=bool)
        holds[order] = holder == sorted_positions
        return holds

    def _log(self, keys: np.ndarray, positions: np.ndarray) -> None:
        if not self.log_path:
            return
        records = np.empty(len(keys), dtype=RECORD)
        records["key"], records["position"] = keys, positions
        with open(self.log_path, "ab") as handle:
            handle.write(records.tobytes())
            handle.flush()

    def _add(self, keys: np.ndarray, positions: np.ndarray) -> None:
        """Add a run sorted by key; merge the newest runs while the newest is at least half the one before."""
        self.runs.append((keys, positions))  # sorted by :meth:`claim`
        while len(self.runs) > 1 and 2 * len(self.runs[-1][0]) >= len(self.runs[-2][0]):
            newer, older = self.runs.pop(), self.runs.pop()
            self.runs.append(_merge(older, newer))


def _merge(older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs of (keys, positions) as one, in linear time (each newer key after the equal older ones)."""
    (keys_a, positions_a), (keys_b, positions_b) = older, newer
    at_b = np.searchsorted(keys_a, keys_b, side="right") + np.arange(len(keys_b))
    from_a = np.ones(len(keys_a) + len(keys_b), dtype=bool)
    from_a[at_b] = False
    keys = np.empty(len(from_a), dtype=np.uint64)
    positions = np.empty(len(from_a), dtype=np.uint64)
    keys[at_b], positions[at_b] = keys_b, positions_b
    keys[from_a], positions[from_a] = keys_a, positions_a
    return keys, positions
