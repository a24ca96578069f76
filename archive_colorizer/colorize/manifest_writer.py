"""Writing the manifest while the job runs: rows buffered by the driver, flushed as parts of <= 10,000 rows.

Every final row reaches the driver (the last stage's output). :class:`ManifestWriter` keeps
them in a buffer of at most ``rows_per_part`` rows and writes ``_manifest/part-<start>-<run
id>-<seq>.parquet``:

- when the buffer is full (``rows_per_part``, 10,000 by default): part ``seq`` is written with
  those rows, for good, and the next rows go to part ``seq + 1``;
- every ``flush_seconds`` (30 s by default) in between: part ``seq`` is rewritten with the
  rows buffered so far (same name: on an object store one PUT replaces the object, on a local
  disk a temporary file is renamed over it);
- at the end of the run, on :meth:`close`, and on a stop (:class:`~archive_colorizer.errors.JobStopped`,
  ``KeyboardInterrupt``: the job calls :meth:`close` and re-raises).

So a run of N inputs leaves ``ceil(N / 10,000)`` part files and makes at most that many plus
one PUT per ``flush_seconds`` of run time; nothing is deleted. Each write is whole (temporary
name + rename, or one object), so a reader never sees half a part.

What a SIGKILL of the driver costs: the rows received since the last write (at most
``flush_seconds`` of work, and never more than ``rows_per_part`` rows), plus the rows of task
batches in flight. Their outputs exist without a row; the next run finds no row for them, so
it colorizes them again (overwriting the same output name with the same content) and records
each once. No output is ever left with a row that says something else, and no row says
``colorized`` for an output that does not exist: the row is written only after the output.

The run history is kept beside the manifest: ``OUTPUT/_runs/<start>-<run id>.json`` holds the
run's id, times and counts per status, rewritten at every flush and at the end
(:func:`write_run_record`, :func:`read_run_history`); a summary lists runs without reading the
manifest.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import posixpath
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.colorize import manifest
from archive_colorizer.errors import StorageError

ROWS_PER_PART = 10_000
FLUSH_SECONDS = 30.0


def part_name(run: manifest.RunInfo, seq: int) -> str:
    """``part-<start>-<run id>-<seq>.parquet``: sorts by run start, then by order of writing."""
    return f"part-{run.started:%Y%m%dT%H%M%S}-{run.run_id}-{seq:06d}.parquet"


class ManifestWriter:
    """One run's manifest rows, buffered in the driver and written as parts of at most ``rows_per_part`` rows.

    Args:
        output_url: OUTPUT.
        run: the run's identity (names the parts).
        rows_per_part: rows per part file (the buffer never holds more).
        flush_seconds: longest time a received row waits in the buffer before it is written.
        clock: seconds, monotonic (tests pass a fake one).

    Attributes:
        counts: rows written or buffered per status (duplicates included, though never written).
        storage_retries: the ``storage_retries`` column of the rows received, summed.
        parts_written: PUTs of part files so far (rewrites of the open part included).
    """

    def __init__(
        self,
        output_url: str,
        run: manifest.RunInfo,
        storage_options: Mapping[str, Any] | None = None,
        rows_per_part: int = ROWS_PER_PART,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Any = time.monotonic,
    ) -> None:
        self.output_url, self.run, self.options = output_url, run, storage_options
        self.fs, self.folder = storage.open_url(manifest.manifest_url(output_url), storage_options)
        self.fs.makedirs(self.folder, exist_ok=True)
        self.rows_per_part, self.flush_seconds, self.clock = rows_per_part, flush_seconds, clock
        self.seq, self.buffered = 0, 0
        self.buffer: list[pa.Table] = []
        self.last_write = clock()
        self.counts: Counter[str] = Counter()
        self.storage_retries = 0
        self.parts_written = 0
        self.dirty = False
        # The run is in the history from its start: a driver killed before its first flush still shows.
        write_run_record(output_url, run, self.counts, storage_options, finished=False)

    def write(self, table: pa.Table) -> None:
        """Take final rows (:data:`manifest.RESULT_SCHEMA` or :data:`manifest.MANIFEST_SCHEMA`).

        Raises:
            StorageError: a part could not be written.
        """
        for status, count in zip(*_value_counts(table.column("status")), strict=True):
            self.counts[status] += count
        if "storage_retries" in table.column_names:
            self.storage_retries += pc.sum(table.column("storage_retries")).as_py() or 0
        rows = table.filter(pc.not_equal(table.column("status"), manifest.DUPLICATE))
        rows = rows.select(manifest.MANIFEST_SCHEMA.names).cast(manifest.MANIFEST_SCHEMA)
        while rows.num_rows:
            room = self.rows_per_part - self.buffered
            self.buffer.append(rows.slice(0, room))
            self.buffered += min(room, rows.num_rows)
            rows = rows.slice(room)
            self.dirty = True
            if self.buffered >= self.rows_per_part:
                self._write_part()
                self.seq, self.buffer, self.buffered = self.seq + 1, [], 0
        if self.dirty and self.clock() - self.last_write >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the open part with what is buffered (and the run record), if anything new came."""
        if self.dirty and self.buffered:
            self._write_part()
        write_run_record(self.output_url, self.run, self.counts, self.options, finished=False)
        self.last_write = self.clock()

    def close(self, finished: bool = True) -> None:
        """Write what is buffered and the run record (``finished`` when the run ended normally)."""
        if self.dirty and self.buffered:
            self._write_part()
        write_run_record(self.output_url, self.run, self.counts, self.options, finished=finished)

    def _write_part(self) -> None:
        buffer = io.BytesIO()
        pq.write_table(pa.concat_tables(self.buffer), buffer, compression="zstd")
        storage.write_bytes(self.fs, storage.join(self.folder, part_name(self.run, self.seq)), buffer.getvalue())
        self.parts_written += 1
        self.dirty = False
        self.last_write = self.clock()


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


def run_record_url(output_url: str, run: manifest.RunInfo) -> str:
    """``OUTPUT/_runs/<start>-<run id>.json``."""
    return storage.join(output_url, manifest.RUNS_DIR, f"{run.started:%Y%m%dT%H%M%S}-{run.run_id}.json")


def write_run_record(
    output_url: str,
    run: manifest.RunInfo,
    counts: Mapping[str, int],
    storage_options: Mapping[str, Any] | None,
    finished: bool,
) -> None:
    """Write the run's record (id, start, last update, rows per status, finished or not), whole.

    Raises:
        StorageError: OUTPUT is not writable.
    """
    record = {
        "run_id": run.run_id,
        "started": run.started.isoformat(timespec="seconds"),
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model_sha256": run.model_sha256,
        "finished": finished,
        "counts": {status: int(counts.get(status, 0)) for status in manifest.STATUSES},
        "duplicates": int(counts.get(manifest.DUPLICATE, 0)),
    }
    fs, path = storage.open_url(run_record_url(output_url, run), storage_options)
    storage.write_bytes(fs, path, (json.dumps(record, indent=1) + "\n").encode())


def read_run_history(output_url: str, storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The records of every run in OUTPUT, oldest first (one small file per run: no manifest read).

    Raises:
        StorageError: a record exists but cannot be read.
    """
    fs, folder = storage.open_url(storage.join(output_url, manifest.RUNS_DIR), storage_options)
    try:
        names = sorted(posixpath.basename(p) for p in fs.ls(folder, detail=False)) if fs.isdir(folder) else []
    except FileNotFoundError:
        names = []
    records = []
    for name in (n for n in names if n.endswith(".json")):
        try:
            records.append(json.loads(storage.read_bytes(fs, storage.join(folder, name))))
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the run record {name!r} under {output_url!r}: {exc}") from exc
    return records
