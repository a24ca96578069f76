"""The colorize manifest's schema and rows: one row per input, Parquet files under ``OUTPUT/_manifest/``.

Row fields (DESIGN.md): ``input_url``, ``output_url``, ``status`` (``colorized``,
``skipped_existing``, ``skipped_color``, ``failed``), ``reason`` (short class of a failure:
``truncated``, ``not_an_image``, ``empty``, ``too_large``, ``unreadable``, ``unsafe_path``,
``output_clash``, ``write_failed``, ... or ``color`` for ``skipped_color``), ``error`` (exception
class and message), ``width`` and ``height`` (after EXIF orientation), ``input_mode`` and
``input_format`` (Pillow's), ``mean_chroma`` (the colour measure, 8-bit levels),
``model_sha256`` (of the generator that made the output), ``seconds`` (work spent on the input,
summed over the stages), ``run_id``, ``recorded_at`` and ``output_bits`` (bits per sample of the output: 8, or 16 for
16-bit PNG and TIFF outputs of 16-bit inputs) and ``c2pa`` (``signed`` when the output carries a signed
C2PA manifest, ``--c2pa-sign``; null otherwise; a failed signature fails the input with reason
``c2pa_failed``), ``canvas_id`` (the IIIF canvas an input paints, ``--input-iiif``; null for files).

The manifest is one Parquet dataset: every ``*.parquet`` file directly under ``_manifest/``
(``part-<start>-<run id>-<seq>.parquet``, at most 10,000 rows each, written by the driver:
:mod:`.manifest_writer`; ``run-<start>-<run id>.parquet`` from earlier versions). ``pyarrow.dataset``,
DuckDB (``read_parquet('OUTPUT/_manifest/*.parquet')``) and ``ray.data.read_parquet`` read it.
An input may have rows from several runs; its final row is the one recorded last
(:func:`latest_rows`). Resume is :mod:`.resume`'s.

This module holds no Ray code and imports nothing of the job: the stages (decode, merge) use it.
"""

from __future__ import annotations

import datetime as _dt
import json
import operator
import posixpath
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
DUPLICATE = "duplicate"
"""Status of a repeated entry of an input list: passes the stages untouched, is counted in the
summary (``duplicates``) and never written to the manifest (the first entry has the row)."""
DONE_STATUSES = (COLORIZED, SKIPPED_EXISTING)

MANIFEST_DIR = "_manifest"
RUNS_DIR = "_runs"
"""``OUTPUT/_runs/``: one small JSON record per run (:mod:`.manifest_writer`), the run history."""
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
        ("c2pa", pa.string()),  # "signed": the output carries a signed C2PA manifest; null: not signed
        ("canvas_id", pa.string()),  # the IIIF canvas of the input (--input-iiif); null for files
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
``output_format`` (JPEG|PNG|TIFF), ``previous_sha256`` (the job drops finished inputs at listing,
:mod:`.resume`; set, the decode stage skips the input if its output exists), ``data`` (the
input's bytes), ``gray_small`` ((S, S) uint8 gray squeezed to the model's size) and ``chroma``
((2, S, S) float32 predicted Cb/Cr offsets), the last two as C-order bytes,
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
    """Rows (dicts) as an Arrow table with ``schema`` (fields missing from a row are null).

    Built a column at a time; a column no row sets is one :func:`pyarrow.nulls` (a listing row sets
    5 of :data:`ROW_SCHEMA`'s 23 fields: a 1,000-row page takes ~2 ms instead of ~7).
    """
    try:  # rows of new_row have every field: one C-level pass per row
        values = list(zip(*map(operator.itemgetter(*schema.names), rows), strict=True)) if len(schema) > 1 else []
    except KeyError:
        values = []
    if len(values) != len(schema):
        values = [tuple(row.get(name) for row in rows) for name in schema.names]
    columns = [
        pa.nulls(len(rows), field.type) if column.count(None) == len(rows) else pa.array(column, field.type)
        for field, column in zip(schema, values, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def manifest_url(output_url: str) -> str:
    """``OUTPUT/_manifest``."""
    return storage.join(output_url, MANIFEST_DIR)


def _run_id_of(name: str) -> str | None:
    """The run id in a manifest file name (``run-<time>-<id>.parquet``, ``part-<time>-<id>-<batch>.parquet``)."""
    fields = name.removesuffix(".parquet").split("-")
    return fields[2] if len(fields) >= 3 else None


def run_id_of_part(path: str) -> str | None:
    """The run id in a manifest file's path or URL (``.../part-<time>-<id>-<seq>.parquet``), None if none."""
    return _run_id_of(posixpath.basename(path))


def manifest_files(fs: Any, folder: str) -> list[str]:
    """The manifest's files: every ``part-*``/``run-*`` Parquet file in ``folder``, plus, for runs of
    earlier versions that published a ``run-*`` file, only that file (their parts were copies)."""
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

    Loads the whole manifest into memory: for tests, tools and small archives. The job itself
    never calls it (resume: :mod:`.resume`; run history: :mod:`.manifest_writer`).

    Args:
        columns: fields to read (default all of :data:`MANIFEST_SCHEMA`).

    Raises:
        StorageError: a manifest file exists but cannot be read.
    """
    schema = MANIFEST_SCHEMA if columns is None else pa.schema([MANIFEST_SCHEMA.field(c) for c in columns])
    fs, folder = storage.open_url(manifest_url(output_url), storage_options)
    files = manifest_files(fs, folder)
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


def latest_rows(table: pa.Table) -> pa.Table:
    """The final row of each input: the one recorded last (needs ``input_url`` and ``recorded_at``)."""
    if table.num_rows == 0:
        return table
    ordered = table.sort_by([("input_url", "ascending"), ("recorded_at", "ascending")])
    keys = ordered.column("input_url")
    is_last = pc.not_equal(keys.slice(0, len(keys) - 1), keys.slice(1)).to_numpy(zero_copy_only=False)
    return ordered.filter(pa.array(np.append(is_last, True)))


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
