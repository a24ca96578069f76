"""The colorize manifest: one row per input, written as Parquet parts under ``OUTPUT/_manifest/``.

Row fields (DESIGN.md): ``input_url``, ``output_url``, ``status`` (``colorized``,
``skipped_existing``, ``skipped_color``, ``failed``), ``reason`` (short class of a failure:
``truncated``, ``not_an_image``, ``empty``, ``too_large``, ``unreadable``, ``unsafe_path``,
``write_failed``, ... or ``color`` for ``skipped_color``), ``error`` (exception class and
message), ``width`` and ``height`` (after EXIF orientation), ``input_mode`` and
``input_format`` (Pillow's), ``mean_chroma`` (the colour measure, 8-bit levels),
``model_sha256`` (of the generator that made the output), ``seconds`` (work spent on the input,
summed over the stages), ``run_id``, ``recorded_at`` and ``output_bits`` (bits per sample of the output: 8, or 16 for
16-bit PNG and TIFF outputs of 16-bit inputs).

How parts are written (so that a killed task, actor or driver loses nothing):

- The merge/encode/write task of a batch writes the batch's part *before* writing any output
  (rows about to be written say ``colorized``), then writes the outputs, then rewrites the
  same part with the final rows. Parts are written whole (temporary name + rename, or one
  object on S3). So no output ever exists without a row saying ``colorized``; a row saying
  ``colorized`` whose output is missing (the task died in between) is redone by the next run.
- A part's name is derived from the run and the batch's inputs, so a retried task replaces
  its own part instead of adding rows twice.
- At the end of a run the driver, which received every final row, writes them as one
  ``run-<time>-<id>.parquet`` and removes the run's parts (:class:`RunManifest`); readers use
  the run file where there is one and the parts otherwise.
- An input may have rows from several runs; its final row is the one recorded last
  (:func:`latest_rows`). Resume (:class:`ResumeIndex`) skips an input whose final row says
  ``colorized`` or ``skipped_existing`` for the same output URL, once its output is confirmed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.errors import StorageError

COLORIZED = "colorized"
SKIPPED_EXISTING = "skipped_existing"
SKIPPED_COLOR = "skipped_color"
FAILED = "failed"
STATUSES = (COLORIZED, SKIPPED_EXISTING, SKIPPED_COLOR, FAILED)
PENDING = "pending"
"""Status of a row still on its way through the pipeline; never written to the manifest."""
DONE_STATUSES = (COLORIZED, SKIPPED_EXISTING)

MANIFEST_DIR = "_manifest"
SUMMARY_NAME = "_summary.json"
CONFIG_NAME = "_config.yaml"

MANIFEST_SCHEMA = pa.schema(
    [
        ("input_url", pa.string()),
        ("output_url", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("input_mode", pa.string()),
        ("input_format", pa.string()),
        ("mean_chroma", pa.float32()),
        ("model_sha256", pa.string()),
        ("seconds", pa.float64()),
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("output_bits", pa.int8()),  # bits per sample of the output: 8, or 16 (16-bit PNG and TIFF)
    ]
)
ROW_SCHEMA = pa.schema(
    list(MANIFEST_SCHEMA)
    + [
        pa.field("output_format", pa.string()),
        pa.field("previous_sha256", pa.string()),
        pa.field("data", pa.large_binary()),
        pa.field("gray_small", pa.binary()),
        pa.field("chroma", pa.binary()),
        pa.field("storage_retries", pa.int32()),
    ]
)
"""Rows between the stages: the manifest fields plus work fields that never reach the manifest:
``output_format`` (JPEG|PNG|TIFF), ``previous_sha256`` (set when a previous run finished the
input), ``data`` (the input's bytes), ``gray_small`` ((S, S) uint8 gray squeezed to the model's
size) and ``chroma`` ((2, S, S) float32 predicted Cb/Cr offsets), the last two as C-order bytes,
and ``storage_retries`` (object-store requests retried while working on the input)."""
RESULT_SCHEMA = MANIFEST_SCHEMA.append(pa.field("storage_retries", pa.int32()))
"""What the last stage hands the driver: manifest rows plus ``storage_retries`` (summed into
``_summary.json``, not written to the manifest)."""


@dataclass(frozen=True)
class RunInfo:
    """Identity of one run of the job, stamped on its manifest rows.

    Attributes:
        run_id: random hex id of the run.
        started: UTC start time.
        model_sha256: sha256 of the generator's weights.
        tool_version: archive-colorizer's version.
    """

    run_id: str
    started: _dt.datetime
    model_sha256: str
    tool_version: str


def new_row(input_url: str, **values: Any) -> dict[str, Any]:
    """A row with every field of :data:`ROW_SCHEMA` (unset ones None), pending unless ``status`` is given."""
    row = dict.fromkeys(ROW_SCHEMA.names)
    row.update(input_url=input_url, status=PENDING, seconds=0.0)
    row.update(values)
    return row


def fail(row: dict[str, Any], reason: str, exc: BaseException | str) -> dict[str, Any]:
    """Mark ``row`` failed: ``reason`` (short class) and the error as ``Class: message``; drops work data."""
    error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    row.update(status=FAILED, reason=reason, error=error, output_url=None, data=None, gray_small=None, chroma=None)
    return row


def to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema = ROW_SCHEMA) -> pa.Table:
    """Rows (dicts) as an Arrow table with ``schema`` (fields missing from a row are null)."""
    return pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema=schema)


def manifest_url(output_url: str) -> str:
    """``OUTPUT/_manifest``."""
    return storage.join(output_url, MANIFEST_DIR)


def part_name(run: RunInfo, input_urls: Iterable[str]) -> str:
    """Deterministic part file name for a batch of one run: a retried task rewrites its own part."""
    digest = hashlib.sha1("\n".join(input_urls).encode()).hexdigest()[:16]
    return f"part-{run.started:%Y%m%dT%H%M%S}-{run.run_id}-{digest}.parquet"


def write_part(
    output_url: str, name: str, rows: Sequence[Mapping[str, Any]], storage_options: Mapping[str, Any] | None
) -> None:
    """Write manifest rows as ``OUTPUT/_manifest/<name>`` in one piece (temporary name + rename / one object).

    Raises:
        StorageError: the part could not be written (a systemic failure: the job stops).
    """
    buffer = io.BytesIO()
    pq.write_table(to_table(rows, MANIFEST_SCHEMA), buffer, compression="zstd")
    fs, folder = storage.open_url(manifest_url(output_url), storage_options)
    storage.write_bytes(fs, storage.join(folder, name), buffer.getvalue())


def run_file_name(run: RunInfo) -> str:
    """Name of the file holding all of one finished run's rows."""
    return f"run-{run.started:%Y%m%dT%H%M%S}-{run.run_id}.parquet"


def _run_id_of(name: str) -> str | None:
    """The run id in a manifest file name (``run-<time>-<id>.parquet``, ``part-<time>-<id>-<batch>.parquet``)."""
    fields = name.removesuffix(".parquet").split("-")
    return fields[2] if len(fields) >= 3 else None


def _manifest_files(fs: Any, folder: str) -> list[str]:
    """The files to read: one per finished run, plus the parts of runs that never finished."""
    try:
        names = sorted(posixpath.basename(p) for p in fs.ls(folder, detail=False)) if fs.isdir(folder) else []
    except FileNotFoundError:
        names = []
    names = [n for n in names if n.endswith(".parquet") and n.startswith(("run-", "part-"))]
    finished = {_run_id_of(n) for n in names if n.startswith("run-")}
    return [storage.join(folder, n) for n in names if n.startswith("run-") or _run_id_of(n) not in finished]


def read_manifest(
    output_url: str, storage_options: Mapping[str, Any] | None = None, columns: Sequence[str] | None = None
) -> pa.Table:
    """Every row of every run under ``OUTPUT/_manifest``; an empty table when there is none.

    Reads one file per finished run (:class:`RunManifest`) and the parts of runs that did
    not finish (killed drivers), several files at a time.

    Args:
        columns: fields to read (default all of :data:`MANIFEST_SCHEMA`).

    Raises:
        StorageError: a manifest file exists but cannot be read.
    """
    schema = MANIFEST_SCHEMA if columns is None else pa.schema([MANIFEST_SCHEMA.field(c) for c in columns])
    fs, folder = storage.open_url(manifest_url(output_url), storage_options)
    files = _manifest_files(fs, folder)
    if not files:
        return schema.empty_table()

    def read(path: str) -> pa.Table:
        with fs.open(path, "rb") as handle:
            return pq.read_table(handle, columns=schema.names, schema=MANIFEST_SCHEMA)

    try:
        with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
            tables = list(pool.map(read, files))
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read the manifest under {manifest_url(output_url)!r}: {exc}") from exc
    return pa.concat_tables(tables).select(schema.names)


class RunManifest:
    """One run's manifest rows, streamed by the driver into ``_manifest/run-<time>-<id>.parquet``.

    The file appears whole when :meth:`commit` is called (a temporary name renamed on local
    disks; on object stores the upload completes only then); the run's part files are then
    removed, since the run file holds the same final rows. Until then, and for ever if the
    driver dies, the parts are the record.

    Attributes:
        storage_retries: the ``storage_retries`` of the rows written so far, summed (when the
            tables have that column, :data:`RESULT_SCHEMA`).
    """

    def __init__(self, output_url: str, run: RunInfo, storage_options: Mapping[str, Any] | None = None) -> None:
        self.fs, self.folder = storage.open_url(manifest_url(output_url), storage_options)
        self.run = run
        self.path = storage.join(self.folder, run_file_name(run))
        self.fs.makedirs(self.folder, exist_ok=True)
        # Local: an unnamed file until commit (a killed driver leaves nothing); object stores:
        # the upload completes only when the handle is closed.
        self.local = storage.LocalAtomicFile(self.path) if storage.is_local(self.fs) else None
        self.handle = self.local.file if self.local else self.fs.open(self.path, "wb")
        self.writer = pq.ParquetWriter(self.handle, MANIFEST_SCHEMA, compression="zstd")
        self.storage_retries = 0

    def write(self, table: pa.Table) -> None:
        """Append manifest rows (a table with :data:`MANIFEST_SCHEMA`, or :data:`RESULT_SCHEMA`)."""
        self.writer.write_table(table.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA))
        if "storage_retries" in table.column_names:
            self.storage_retries += pc.sum(table.column("storage_retries")).as_py() or 0

    def commit(self) -> None:
        """Publish the run file and remove the run's parts.

        Raises:
            StorageError: the file could not be written.
        """
        try:
            self.writer.close()
            if self.local:
                self.local.commit()
            else:
                self.handle.close()
            parts = [
                p
                for p in self.fs.ls(self.folder, detail=False)
                if posixpath.basename(p).startswith("part-") and _run_id_of(posixpath.basename(p)) == self.run.run_id
            ]
            if parts:
                self.fs.rm(parts)
        except OSError as exc:
            raise StorageError(f"cannot write the manifest {storage.to_url(self.fs, self.path)!r}: {exc}") from exc

    def abort(self) -> None:
        """Drop the run file (the parts stay the record); never raises."""
        try:
            self.writer.close()
            if self.local:
                self.local.abort()
            else:
                self.handle.close()
                self.fs.rm(self.path)
        except Exception:  # cleaning up after another failure: that failure is the one to report
            pass


def latest_rows(table: pa.Table) -> pa.Table:
    """The final row of each input: the one recorded last (needs ``input_url`` and ``recorded_at``)."""
    if table.num_rows == 0:
        return table
    ordered = table.sort_by([("input_url", "ascending"), ("recorded_at", "ascending")])
    keys = ordered.column("input_url")
    is_last = pc.not_equal(keys.slice(0, len(keys) - 1), keys.slice(1)).to_numpy(zero_copy_only=False)
    return ordered.filter(pa.array(np.append(is_last, True)))


def _key(input_url: str, output_url: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{input_url}\0{output_url}".encode(), digest_size=8).digest(), "little")


@dataclass
class ResumeIndex:
    """Which (input, output) pairs earlier runs finished, and with which model.

    Kept as sorted 64-bit hashes plus a small index into the distinct model sha256s, so that
    a manifest of millions of rows costs about 9 bytes per finished input on the driver.
    """

    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    model_index: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    models: list[str] = field(default_factory=list)

    @classmethod
    def from_manifest(cls, table: pa.Table) -> ResumeIndex:
        """Build from manifest rows (any number of runs): final rows saying colorized or skipped_existing."""
        if table.num_rows == 0:
            return cls()
        final = latest_rows(table.select(["input_url", "output_url", "status", "model_sha256", "recorded_at"]))
        done = final.filter(
            pc.and_(pc.is_in(final.column("status"), pa.array(DONE_STATUSES)), pc.is_valid(final.column("output_url")))
        )
        keys = np.fromiter(
            (_key(i, o) for i, o in zip(done.column("input_url").to_pylist(), done.column("output_url").to_pylist())),
            dtype=np.uint64,
            count=done.num_rows,
        )
        encoded = pc.dictionary_encode(pc.fill_null(done.column("model_sha256"), "")).combine_chunks()
        order = np.argsort(keys)
        return cls(keys[order], encoded.indices.to_numpy()[order].astype(np.int32), encoded.dictionary.to_pylist())

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, input_url: str, output_url: str) -> str | None:
        """The model sha256 recorded for a finished pair ("" if unknown), or None if not finished."""
        if not len(self.keys):
            return None
        key = np.uint64(_key(input_url, output_url))
        position = int(np.searchsorted(self.keys, key))
        if position < len(self.keys) and self.keys[position] == key:
            return self.models[self.model_index[position]]
        return None


def run_history(table: pa.Table) -> list[dict[str, Any]]:
    """Per run found in the manifest: id, first and last row time, rows per status (oldest run first)."""
    if table.num_rows == 0:
        return []
    grouped = table.group_by(["run_id", "status"]).aggregate(
        [("input_url", "count"), ("recorded_at", "min"), ("recorded_at", "max")]
    )
    runs: dict[str, dict[str, Any]] = {}
    for row in grouped.to_pylist():
        run = runs.setdefault(
            row["run_id"],
            {
                "run_id": row["run_id"],
                "first_row": row["recorded_at_min"],
                "last_row": row["recorded_at_max"],
                "counts": dict.fromkeys(STATUSES, 0),
            },
        )
        run["counts"][row["status"]] = row["input_url_count"]
        run["first_row"] = min(run["first_row"], row["recorded_at_min"])
        run["last_row"] = max(run["last_row"], row["recorded_at_max"])
    ordered = sorted(runs.values(), key=lambda r: r["first_row"])
    for run in ordered:
        run["first_row"], run["last_row"] = run["first_row"].isoformat(), run["last_row"].isoformat()
    return ordered


def write_summary(output_url: str, summary: Mapping[str, Any], storage_options: Mapping[str, Any] | None) -> str:
    """Write ``OUTPUT/_summary.json`` (whole); returns its URL."""
    url = storage.join(output_url, SUMMARY_NAME)
    fs, path = storage.open_url(url, storage_options)
    storage.write_bytes(fs, path, (json.dumps(summary, indent=2, default=str) + "\n").encode())
    return url


def read_summary(output_url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parsed ``OUTPUT/_summary.json``.

    Raises:
        FileNotFoundError: no run has finished in OUTPUT yet.
    """
    fs, path = storage.open_url(storage.join(output_url, SUMMARY_NAME), storage_options)
    return json.loads(storage.read_bytes(fs, path))
