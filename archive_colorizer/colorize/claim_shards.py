"""The claims of an input list's entries held in Ray actors: :class:`ClaimShard`, one per shard of keys.

The listing tasks of an input list (:func:`.listing_tasks.list_dataset`) claim each entry's input
here: an entry whose input another entry already holds is a ``duplicate``. The claim table itself
(:class:`.claims.ClaimTable`, 16 bytes per input, logged) is pure and tested alone; this module
puts its shards in actors that survive a restart with their log.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from archive_colorizer import gates
from archive_colorizer.colorize import claims, manifest


class ClaimShard:
    """Ray actor: one shard of an input list's claims (:class:`.claims.ClaimTable`), logged on its node.

    Created with ``max_restarts=-1`` and ``max_task_retries=-1``: a shard whose process dies is
    started again with the same log (its claims read back) and the calls it had not answered are
    sent again.
    """

    def __init__(self, log_path: str, shard: int) -> None:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self.table = claims.ClaimTable(log_path)
        self.shard = shard

    def claim(self, keys: np.ndarray, positions: np.ndarray, chunk: int) -> np.ndarray:
        """:meth:`.claims.ClaimTable.claim`; hold point ``colorize.claim`` (key ``<shard>:<chunk>``) after
        the claims are logged, before the answer leaves."""
        holds = self.table.claim(keys, positions)
        gates.hold("colorize.claim", f"{self.shard}:{chunk}")
        return holds

    def info(self) -> dict[str, int]:
        """``pid``, ``inputs`` (distinct inputs claimed) and ``bytes`` (their size in memory)."""
        return {"pid": os.getpid(), "inputs": len(self.table), "bytes": self.table.nbytes()}

    def close(self) -> None:
        """Remove the shard's log, and the run's folder of logs once it is empty (its run has ended)."""
        if self.table.log_path and os.path.exists(self.table.log_path):
            os.remove(self.table.log_path)
            try:
                os.rmdir(os.path.dirname(self.table.log_path))
            except OSError:
                pass  # another shard's log is still there: the last shard removes the folder


@dataclass(frozen=True)
class ListClaims:
    """The :class:`ClaimShard` actors of one run's input list (picklable: goes to the listing tasks).

    Attributes:
        shards: the actors' handles; key ``k`` is shard ``k % len(shards)``'s.
    """

    shards: tuple[Any, ...]

    def mark_duplicates(self, rows: list[dict[str, Any]], positions: list[int], chunk: int) -> int:
        """Claim the rows' inputs at ``positions``; mark ``duplicate`` those another entry holds. Returns how many."""
        import ray

        if not rows:
            return 0
        keys = np.array([claims.input_key(row["input_url"]) for row in rows], dtype=np.uint64)
        where = np.asarray(positions, dtype=np.uint64)
        shard_of = keys % np.uint64(len(self.shards))
        parts = [np.flatnonzero(shard_of == shard) for shard in range(len(self.shards))]
        pending = [
            (part, self.shards[shard].claim.remote(keys[part], where[part], chunk))
            for shard, part in enumerate(parts)
            if len(part)
        ]
        repeated = 0
        for part, answer in pending:
            for i in part[~ray.get(answer)]:
                rows[i]["status"] = manifest.DUPLICATE
                repeated += 1
        return repeated

    def info(self) -> list[dict[str, int]]:
        """Each shard's :meth:`ClaimShard.info`."""
        import ray

        return ray.get([shard.info.remote() for shard in self.shards])

    def close(self) -> None:
        """Remove the shards' logs and end the actors."""
        import ray

        try:
            ray.get([shard.close.remote() for shard in self.shards], timeout=30)
        except (ray.exceptions.RayError, TimeoutError):
            pass  # a log left in the temporary folder is all that is lost
        for shard in self.shards:
            ray.kill(shard)


def start_claims(run: str, shards: int) -> ListClaims:
    """``shards`` new :class:`ClaimShard` actors for run ``run`` on the driver's node, logs in its temporary folder."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    folder = os.path.join(tempfile.gettempdir(), "archive-colorizer-claims", f"{run}-{uuid.uuid4().hex[:8]}")
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, scheduling_strategy=here)(ClaimShard)  # type: ignore[call-overload]
    return ListClaims(tuple(actor.remote(os.path.join(folder, f"shard-{i}.bin"), i) for i in range(shards)))
