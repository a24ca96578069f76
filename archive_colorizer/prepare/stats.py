"""Counting outcomes: per shard (written by its task) and for the whole job (``_stats.json``).

Every input ends in exactly one outcome of :data:`~archive_colorizer.prepare.process.OUTCOMES`,
so the counts add up to the number of inputs. Each shard task writes ``_stats/shard-NNNNNN.json``
with its counts and one record per dropped input (path, source, outcome, error); the driver
sums the shards' counts into :class:`PrepareResult` and writes ``_stats.json`` last, so its
presence marks a finished run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from archive_colorizer.prepare.process import OUTCOMES, SPLITS, Processed


def _ordered(counts: Counter, keys: tuple[str, ...]) -> dict[str, int]:
    return {key: int(counts.get(key, 0)) for key in keys}


@dataclass
class ShardStats:
    """Outcomes of one shard task.

    Attributes:
        index: the shard's number (listing order).
        file: name of the shard's Parquet file, ``None`` when no input was written.
        counts: inputs per outcome.
        splits: written rows per split.
        labels: written rows per label (the image's folder, "" for the collection root): the
            shard's category mix.
        dropped: one ``{"path", "source", "outcome", "error"}`` record per input not written.
        storage_retries: object-store requests the task retried (reported to the driver, not
            in the shard's JSON, which is written before the count is final).
    """

    index: int
    file: str | None = None
    counts: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    dropped: list[dict[str, str]] = field(default_factory=list)
    storage_retries: int = 0

    @property
    def inputs(self) -> int:
        return sum(self.counts.values())

    def add(
        self, path: str, source: str, processed: Processed, split: str | None = None, label: str | None = None
    ) -> None:
        """Count one input's outcome (``split`` and ``label`` are the written row's)."""
        self.counts[processed.outcome] += 1
        if split is not None:
            self.splits[split] += 1
            self.labels[label or ""] += 1
        if processed.outcome != "written":
            self.dropped.append(
                {"path": path, "source": source, "outcome": processed.outcome, "error": processed.error or ""}
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``_stats/shard-NNNNNN.json``."""
        return {
            "shard": self.file,
            "inputs": self.inputs,
            "counts": _ordered(self.counts, OUTCOMES),
            "splits": _ordered(self.splits, SPLITS),
            "labels": dict(sorted(self.labels.items())),
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, index: int, record: dict[str, Any]) -> ShardStats:
        """The stats of a finished shard from its ``_stats/shard-NNNNNN.json`` (dropped records left out).

        Raises:
            KeyError, TypeError: the record is not one :meth:`to_dict` wrote.
        """
        return cls(
            index,
            file=record["shard"],
            counts=Counter({key: int(value) for key, value in record["counts"].items() if value}),
            splits=Counter({key: int(value) for key, value in record["splits"].items() if value}),
            labels=Counter({key: int(value) for key, value in record.get("labels", {}).items()}),
        )

    @property
    def majority_share(self) -> float | None:
        """Share of the shard's written rows in its most frequent label; ``None`` for an empty shard."""
        written = sum(self.labels.values())
        return max(self.labels.values()) / written if written else None


@dataclass
class PrepareResult:
    """What a prepare run did; the CLI uses :attr:`exit_code`.

    Attributes:
        input, output: the collection and shard URLs.
        counts: inputs per outcome (sums to :attr:`inputs`).
        splits: written rows per split.
        shards: number of Parquet shards written.
        resumed_shards: shards an earlier, interrupted run of the same command had finished
            (counted from their ``_stats`` files, not redone).
        labels: written rows per label over all shards.
        majority_shares: per written shard, the share of its most frequent label (the category
            mix: 1/number of categories when perfectly mixed, 1.0 for a single-category shard).
        seconds: wall time of the run.
        storage_retries: object-store requests that botocore retried (shard tasks and driver).
    """

    input: str
    output: str
    counts: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    shards: int = 0
    resumed_shards: int = 0
    labels: Counter = field(default_factory=Counter)
    majority_shares: list[float] = field(default_factory=list)
    seconds: float = 0.0
    storage_retries: int = 0

    @property
    def inputs(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """0 when at least one image was written, else 1 (nothing to train on)."""
        return 0 if self.counts.get("written", 0) else 1

    def add(self, shard: ShardStats, resumed: bool = False) -> None:
        """Add one finished shard's counts (``resumed``: finished by an earlier run)."""
        self.counts.update(shard.counts)
        self.splits.update(shard.splits)
        self.labels.update(shard.labels)
        if shard.majority_share is not None:
            self.majority_shares.append(shard.majority_share)
        self.shards += shard.file is not None
        self.resumed_shards += resumed
        self.storage_retries += shard.storage_retries

    def label_mix(self) -> dict[str, Any]:
        """The category mix of the shards, for ``_stats.json``.

        ``labels``: distinct labels written; ``majority_share_mean``/``_max``: the share of each
        shard's most frequent label, averaged / at worst; ``uniform_share``: the most frequent
        label's share of all written rows, what a perfect mix would give every shard.
        """
        shares = self.majority_shares
        return {
            "labels": len(self.labels),
            "majority_share_mean": round(sum(shares) / len(shares), 4) if shares else None,
            "majority_share_max": round(max(shares), 4) if shares else None,
            "uniform_share": round(max(self.labels.values()) / sum(self.labels.values()), 4) if self.labels else None,
        }

    def to_dict(self, config: dict[str, Any]) -> dict[str, Any]:
        """The record of ``_stats.json``: totals, rate and the resolved (redacted) ``config``."""
        return {
            "input": self.input,
            "output": self.output,
            "inputs": self.inputs,
            "counts": _ordered(self.counts, OUTCOMES),
            "splits": _ordered(self.splits, SPLITS),
            "shards": self.shards,
            "resumed_shards": self.resumed_shards,
            "label_mix": self.label_mix(),
            "seconds": round(self.seconds, 3),
            "inputs_per_second": round(self.inputs / self.seconds, 2) if self.seconds else None,
            "storage_retries": self.storage_retries,
            "config": config,
        }

    def summary(self) -> str:
        """One line for the end of the run."""
        dropped = ", ".join(
            f"{self.counts.get(o, 0):,} {o.removeprefix('dropped_').replace('_', ' ')}" for o in OUTCOMES[1:]
        )
        rate = self.inputs / self.seconds if self.seconds else 0.0
        retried = f"; {self.storage_retries:,} object-store requests retried" if self.storage_retries else ""
        retried += f"; {self.resumed_shards:,} shards finished by an earlier run" if self.resumed_shards else ""
        return (
            f"prepare: {self.inputs:,} inputs -> {self.counts.get('written', 0):,} written "
            f"({self.splits.get('train', 0):,} train, {self.splits.get('val', 0):,} val) in {self.shards:,} shards; "
            f"dropped {dropped}{retried}; {self.seconds:.1f} s ({rate:.1f} inputs/s) -> {self.output}"
        )
