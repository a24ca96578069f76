"""Input lists read in parallel chunks, streaming: ``.txt``, ``.csv``, Parquet and S3 Inventory reports.

An input list of 100M entries is one file of several GB (or, for an S3 Inventory, many files). The
job cuts it into *chunks* (:func:`plan_chunks`, a few requests in the driver: the file's size, a
Parquet footer, the inventory's ``manifest.json``) and the listing tasks read one chunk each
(:func:`read_chunk`), a batch of entries at a time, so no process holds more than a batch and the
first entries become rows while the rest of the list is still unread.

- ``.txt`` (one entry per line) and ``.csv`` (a header line, then rows): byte ranges of
  :data:`CHUNK_BYTES`. A chunk owns the lines that *start* inside its range: it skips the line
  that began before its first byte and reads on past its last byte to the end of its last line.
  CSV rows are parsed by pyarrow's CSV reader with the header's column names (a quoted field
  with a line break in it is not supported: no URL has one).
- Parquet: groups of row groups of about :data:`CHUNK_ROWS` rows, read with
  :meth:`pyarrow.parquet.ParquetFile.iter_batches` (a file of one row group is one chunk).
- S3 Inventory (``--input-list s3://.../manifest.json``, the format AWS writes,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html): one
  chunk per data file named in ``files`` (``key``, ``size``), in the ``destinationBucket``
  (``arn:aws:s3:::name``). ``fileFormat`` ``CSV``: gzip CSV without a header, columns as
  ``fileSchema`` names them (``Bucket, Key, VersionId, IsLatest, IsDeleteMarker, ...``), the key
  URL-encoded; ``Parquet``: the columns ``key``, ``is_latest``, ``is_delete_marker``. Delete
  markers, versions that are not the latest and folder markers (keys ending in ``/``) are left out;
  the entries are ``s3://<sourceBucket>/<key>`` URLs. ORC reports are refused (ask for CSV or Parquet).

An entry's *position* (:func:`position`: chunk number and the entry's number in its chunk) is the
same in every run and every retry of a chunk's task: the duplicate filter (:mod:`.claims`) tells a
repeated entry from a retried one by it.

No Ray here: :mod:`.listing_tasks` runs these functions in its listing tasks.
"""

from __future__ import annotations

import gzip
import json
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.errors import ConfigError

CHUNK_BYTES = 64 * 1024 * 1024
"""Bytes of a ``.txt``/``.csv`` list per chunk (about 1M entries of 60 bytes)."""
CHUNK_ROWS = 1_000_000
"""Rows of a Parquet list per chunk (whole row groups; a chunk has at least one)."""
BLOCK_BYTES = 4 * 1024 * 1024
"""Bytes of a text or CSV chunk read and parsed at once."""
BATCH_ROWS = 4096
"""Entries a chunk reader yields at a time."""
LIST_COLUMNS = ("url", "input_url", "path")
"""Columns of a CSV or Parquet input list looked for, in this order (else the first column)."""
KINDS = ("text", "csv", "parquet", "inventory_csv", "inventory_parquet")


@dataclass(frozen=True)
class ListChunk:
    """One chunk of an input list: what one listing task reads.

    Attributes:
        url: the file (the list itself, or one data file of an inventory).
        kind: one of :data:`KINDS`.
        index: the chunk's number in the list, from 0 (the high half of its entries' positions).
        start, end: byte range (``text``, ``csv``); ``end`` -1: to the end of the file.
        row_groups: Parquet row groups (``parquet``).
        column: the column holding the entries (``csv``, ``parquet``; ``Key``/``key`` of an inventory).
        column_names: a CSV list's header names, or an inventory CSV's ``fileSchema``.
        bucket: an inventory's source bucket (its entries are ``s3://<bucket>/<key>``).
    """

    url: str
    kind: str
    index: int
    start: int = 0
    end: int = -1
    row_groups: tuple[int, ...] = ()
    column: str = ""
    column_names: tuple[str, ...] = ()
    bucket: str = ""

    def to_json(self) -> str:
        """The chunk as a JSON string (a listing dataset's item)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ListChunk:
        """The chunk of :meth:`to_json`."""
        values = json.loads(text)
        values["row_groups"] = tuple(values["row_groups"])
        values["column_names"] = tuple(values["column_names"])
        return cls(**values)


@dataclass(frozen=True)
class ListPlan:
    """An input list cut into chunks.

    Attributes:
        chunks: in list order.
        estimated_entries: about how many entries the list has (exact for Parquet); sizes the
            duplicate filter (:mod:`.claims`).
        inventory: the list is an S3 Inventory report (entries are filtered by INPUT and extension).
    """

    chunks: list[ListChunk] = field(default_factory=list)
    estimated_entries: int = 0
    inventory: bool = False


def position(chunk_index: int, entry: int) -> int:
    """An entry's position in its list: chunk number in the high 32 bits, its number in the chunk below."""
    return (chunk_index << 32) | entry


def pick_column(names: list[str], list_url: str) -> str:
    """The column of a CSV or Parquet input list that holds the inputs (:data:`LIST_COLUMNS`, else the first).

    Raises:
        ConfigError: the list has no columns.
    """
    for name in LIST_COLUMNS:
        if name in names:
            return name
    if not names:
        raise ConfigError(f"input list {list_url!r} has no columns")
    return names[0]


def is_inventory(list_url: str) -> bool:
    """Whether ``list_url`` names an S3 Inventory report (its ``manifest.json``, or any ``.json`` file)."""
    return posixpath.basename(list_url.split("?")[0]).lower().endswith(".json")


def plan_chunks(
    list_url: str,
    storage_options: Mapping[str, Any] | None,
    chunk_bytes: int | None = None,
    chunk_rows: int | None = None,
) -> ListPlan:
    """Cut the input list at ``list_url`` into chunks (one or two requests; no entry is read).

    Args:
        chunk_bytes, chunk_rows: chunk sizes (default :data:`CHUNK_BYTES`, :data:`CHUNK_ROWS`).

    Raises:
        ConfigError: the list does not exist, cannot be read, or is not a list this job reads
            (an inventory of another format than CSV or Parquet, a Parquet file without columns).
    """
    chunk_bytes, chunk_rows = chunk_bytes or CHUNK_BYTES, chunk_rows or CHUNK_ROWS
    fs, path = storage.open_url(list_url, storage_options)
    try:
        if is_inventory(path):
            return _plan_inventory(list_url, fs, path)
        size = fs.size(path)
        suffix = posixpath.splitext(path)[1].lower()
        if suffix == ".parquet":
            return _plan_parquet(list_url, fs, path, chunk_rows)
        if suffix == ".csv":
            with fs.open(path, "rb") as handle:
                header = handle.readline()
            names = _csv_header(header, list_url)
            column = pick_column(names, list_url)
            chunks = _byte_chunks(list_url, "csv", len(header), size, chunk_bytes, column, tuple(names))
            return ListPlan(chunks, max(1, size // 40))
        return ListPlan(_byte_chunks(list_url, "text", 0, size, chunk_bytes), max(1, size // 40))
    except FileNotFoundError as exc:
        raise ConfigError(f"input list {list_url!r} does not exist") from exc
    except (OSError, pa.ArrowInvalid, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read input list {list_url!r}: {exc}") from exc


def _csv_header(line: bytes, list_url: str) -> list[str]:
    """The column names of a CSV list's header line (parsed by pyarrow: quoted names keep their commas)."""
    options = pyarrow.csv.ReadOptions(autogenerate_column_names=True)
    table = (
        pyarrow.csv.read_csv(pa.py_buffer(line.rstrip(b"\r\n") + b"\n"), read_options=options) if line.strip() else None
    )
    names = [str(table.column(i)[0]).strip() for i in range(table.num_columns)] if table is not None else []
    if not [name for name in names if name]:
        raise ConfigError(f"input list {list_url!r} has no columns (its first line is the CSV header)")
    return names


def _byte_chunks(
    url: str, kind: str, start: int, size: int, chunk_bytes: int, column: str = "", names: tuple[str, ...] = ()
) -> list[ListChunk]:
    starts = list(range(start, size, chunk_bytes)) or [start]
    return [
        ListChunk(url, kind, i, begin, min(begin + chunk_bytes, size), column=column, column_names=names)
        for i, begin in enumerate(starts)
    ]


def _plan_parquet(list_url: str, fs: Any, path: str, chunk_rows: int) -> ListPlan:
    with fs.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
        column = pick_column(metadata.schema.to_arrow_schema().names, list_url)
    chunks: list[ListChunk] = []
    groups: list[int] = []
    rows = 0
    for group in range(metadata.num_row_groups):
        groups.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= chunk_rows or group == metadata.num_row_groups - 1:
            chunks.append(ListChunk(list_url, "parquet", len(chunks), row_groups=tuple(groups), column=column))
            groups, rows = [], 0
    return ListPlan(chunks, metadata.num_rows)


def _plan_inventory(list_url: str, fs: Any, path: str) -> ListPlan:
    """The chunks of an S3 Inventory report: one per data file of its ``manifest.json``."""
    with fs.open(path, "rb") as handle:
        report = json.load(handle)
    if not isinstance(report, dict) or "files" not in report or "fileFormat" not in report:
        raise ConfigError(
            f"input list {list_url!r} is not an S3 Inventory manifest.json (no 'files' or 'fileFormat'); "
            "a .json input list must be one"
        )
    file_format = str(report["fileFormat"]).lower()
    destination = str(report.get("destinationBucket", "")).removeprefix("arn:aws:s3:::")
    source = str(report.get("sourceBucket", ""))
    if not destination or not source:
        raise ConfigError(f"S3 Inventory {list_url!r}: manifest.json names no sourceBucket or destinationBucket")
    if file_format == "csv":
        names = tuple(name.strip() for name in str(report.get("fileSchema", "")).split(","))
        if "Key" not in names:
            raise ConfigError(
                f"S3 Inventory {list_url!r}: its fileSchema has no Key column: {report.get('fileSchema')!r}"
            )
        kind, column = "inventory_csv", "Key"
    elif file_format == "parquet":
        kind, column, names = "inventory_parquet", "key", ()
    else:
        raise ConfigError(
            f"S3 Inventory {list_url!r} is in {report['fileFormat']} format; archive-colorizer reads CSV or "
            "Parquet inventories (choose one of them in the inventory configuration)"
        )
    protocol = "s3://" if list_url.startswith("s3://") else ""
    if not protocol:
        raise ConfigError(f"S3 Inventory {list_url!r}: read the manifest.json from its s3:// location")
    chunks = [
        ListChunk(f"s3://{destination}/{entry['key']}", kind, i, column=column, column_names=names, bucket=source)
        for i, entry in enumerate(report["files"])
    ]
    # Compressed bytes per key: ~2.6 for the benchmark's regular names and three columns, 20-40
    # for a real inventory's; 4 errs towards more shards (claims.MAX_SHARDS bounds them).
    estimate = sum(int(entry.get("size", 0)) for entry in report["files"]) // 4
    return ListPlan(chunks, max(1, estimate), inventory=True)


def read_chunk(
    chunk: ListChunk, storage_options: Mapping[str, Any] | None, batch_rows: int = BATCH_ROWS
) -> Iterator[list[str]]:
    """The entries of one chunk, ``batch_rows`` or fewer at a time, in list order.

    Empty entries and ``#`` comment lines are left out (they have no position). Inventory entries
    are ``s3://<bucket>/<key>`` URLs of the latest versions that are not delete markers or folders.

    Raises:
        ConfigError: the file is gone or cannot be parsed (named with the chunk's byte range or row groups).
    """
    fs, path = storage.open_url(chunk.url, storage_options)
    readers = {
        "text": _text_entries,
        "csv": _csv_entries,
        "parquet": _parquet_entries,
        "inventory_csv": _inventory_csv_entries,
        "inventory_parquet": _inventory_parquet_entries,
    }
    batch: list[str] = []
    try:
        with fs.open(path, "rb") as handle:
            for values in readers[chunk.kind](handle, chunk):
                for value in values:
                    entry = value.strip() if value is not None else ""
                    if entry and not entry.startswith("#"):
                        batch.append(entry)
                while len(batch) >= batch_rows:  # an inventory's CSV batch is ~40,000 keys: cut it
                    yield batch[:batch_rows]
                    batch = batch[batch_rows:]
    except FileNotFoundError as exc:
        raise ConfigError(f"input list file {chunk.url!r} does not exist (it was there when the job began)") from exc
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError, EOFError, KeyError) as exc:
        where = f"bytes {chunk.start}-{chunk.end}" if chunk.kind in ("text", "csv") else f"chunk {chunk.index}"
        raise ConfigError(f"cannot read input list {chunk.url!r} ({where}): {exc}") from exc
    if batch:
        yield batch


def _line_blocks(handle: Any, start: int, end: int) -> Iterator[bytes]:
    """Blocks of whole lines of the lines that start in ``[start, end)``."""
    if start > 0:
        handle.seek(start - 1)
        handle.readline()  # the rest of the line that began before ``start`` (just b"\n" if none did)
    at = handle.tell()
    while at < end:
        data = handle.read(min(BLOCK_BYTES, end - at))
        if not data:
            return
        if not data.endswith(b"\n"):
            data += handle.readline()  # finish the last line, even past ``end``
        at = handle.tell()
        yield data


def _text_entries(handle: Any, chunk: ListChunk) -> Iterator[list[str]]:
    for block in _line_blocks(handle, chunk.start, chunk.end):
        yield block.decode("utf-8").splitlines()


def _csv_entries(handle: Any, chunk: ListChunk) -> Iterator[list[str]]:
    options = pyarrow.csv.ConvertOptions(include_columns=[chunk.column], column_types={chunk.column: pa.string()})
    names = pyarrow.csv.ReadOptions(column_names=list(chunk.column_names))
    for block in _line_blocks(handle, chunk.start, chunk.end):
        table = pyarrow.csv.read_csv(pa.py_buffer(block), read_options=names, convert_options=options)
        yield table.column(0).to_pylist()


def _parquet_entries(handle: Any, chunk: ListChunk) -> Iterator[list[str]]:
    parquet = pq.ParquetFile(handle)
    for batch in parquet.iter_batches(BATCH_ROWS, row_groups=list(chunk.row_groups), columns=[chunk.column]):
        yield [str(value) if value is not None else "" for value in batch.column(0).to_pylist()]


def _latest_keys(table: pa.Table, key: str, is_latest: str, is_delete_marker: str) -> list[str]:
    """Keys of rows that are their object's latest version and not a delete marker (columns optional)."""
    keep = [True] * table.num_rows
    for column, wanted in ((is_latest, "true"), (is_delete_marker, "false")):
        if column in table.column_names:
            values = table.column(column).to_pylist()
            keep = [k and (v is None or str(v).lower() == wanted) for k, v in zip(keep, values, strict=True)]
    return [k for k, kept in zip(table.column(key).to_pylist(), keep, strict=True) if kept and k is not None]


def _inventory_csv_entries(handle: Any, chunk: ListChunk) -> Iterator[list[str]]:
    wanted = [name for name in (chunk.column, "IsLatest", "IsDeleteMarker") if name in chunk.column_names]
    reader = pyarrow.csv.open_csv(
        pa.PythonFile(gzip.GzipFile(fileobj=handle), mode="r"),
        read_options=pyarrow.csv.ReadOptions(column_names=list(chunk.column_names), block_size=BLOCK_BYTES),
        convert_options=pyarrow.csv.ConvertOptions(
            include_columns=wanted, column_types=dict.fromkeys(wanted, pa.string())
        ),
    )
    for batch in reader:
        keys = _latest_keys(pa.Table.from_batches([batch]), chunk.column, "IsLatest", "IsDeleteMarker")
        yield [_inventory_url(chunk.bucket, unquote_plus(key)) for key in keys]


def _inventory_parquet_entries(handle: Any, chunk: ListChunk) -> Iterator[list[str]]:
    parquet = pq.ParquetFile(handle)
    columns = [name for name in (chunk.column, "is_latest", "is_delete_marker") if name in parquet.schema_arrow.names]
    for batch in parquet.iter_batches(BATCH_ROWS, columns=columns):
        keys = _latest_keys(pa.Table.from_batches([batch]), chunk.column, "is_latest", "is_delete_marker")
        yield [_inventory_url(chunk.bucket, key) for key in keys]


def _inventory_url(bucket: str, key: str) -> str:
    return "" if key.endswith("/") else f"s3://{bucket}/{key}"


def inventory_entry_wanted(entry: str, input_prefix: str, extensions: tuple[str, ...]) -> bool:
    """Whether an inventory entry is an input: below INPUT (``s3://bucket/prefix/``) with one of the extensions.

    An inventory lists the whole bucket; unlike an input list's entries, the others are not the
    user's choice and get no row.
    """
    return entry.startswith(input_prefix) and entry.lower().endswith(extensions)


def iter_entries(
    list_url: str,
    storage_options: Mapping[str, Any] | None,
    input_prefix: str = "",
    extensions: tuple[str, ...] | None = None,
) -> Iterator[str]:
    """Every entry of an input list in order, chunk after chunk, in one process (``archive-colorizer plan``).

    Args:
        input_prefix: INPUT's URL with a trailing ``/``, and ``extensions``: an inventory's entries
            outside INPUT or without one of the extensions (None: any) are left out
            (:func:`inventory_entry_wanted`); an input list's entries are all kept.

    Raises:
        ConfigError: the list does not exist or cannot be read.
    """
    plan = plan_chunks(list_url, storage_options)
    for chunk in plan.chunks:
        for batch in read_chunk(chunk, storage_options):
            if plan.inventory:
                batch = [e for e in batch if inventory_entry_wanted(e, input_prefix, extensions or ("",))]
            yield from batch
