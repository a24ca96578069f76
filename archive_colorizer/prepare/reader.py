"""Reading the bytes of listed inputs, inside a shard task.

Consecutive inputs from the same container are read together: an archive or Parquet file is
opened once per shard, image files and tar members are fetched by a few threads at a time
(object stores answer each request after tens of milliseconds; threads hide that latency).
A read that fails is reported with the input, never raised: the shard goes on.
"""

from __future__ import annotations

import itertools
import posixpath
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import fsspec
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.prepare.listing import InputRef, normalise_member


@dataclass
class RawInput:
    """An input's bytes, or why they could not be read.

    Attributes:
        ref: the listed input.
        path: the image's path relative to the collection root (for Parquet rows: the row's
            ``image.path``, or ``<file path>/row-<index>`` when the row has none).
        source: a URL of the original: the file, ``zip://member::archive``,
            ``tar://member::archive`` (both openable with ``fsspec.open``) or ``file.parquet#row=N``.
        data: the encoded image bytes (empty when the input has none); ``None`` if unreadable.
        error: why the read failed, naming the source; ``None`` on success.
    """

    ref: InputRef
    path: str
    source: str
    data: bytes | None
    error: str | None = None


def source_url(fs: fsspec.AbstractFileSystem, ref: InputRef) -> str:
    """The URL naming an input's original (see :class:`RawInput`)."""
    container = storage.to_url(fs, ref.container)
    if ref.kind in ("zip", "tar"):
        return f"{ref.kind}://{ref.member}::{container}"
    if ref.kind == "parquet":
        return f"{container}#row={ref.offset}"
    return container


def read_inputs(fs: fsspec.AbstractFileSystem, refs: Sequence[InputRef], threads: int = 8) -> Iterator[RawInput]:
    """Yield the bytes of ``refs`` in order, one :class:`RawInput` per input.

    Args:
        fs: the input filesystem (the one ``refs`` were listed from).
        refs: one shard's inputs.
        threads: concurrent reads of image files and tar members.
    """
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for (kind, container), members in itertools.groupby(refs, key=_group_key):
            group = list(members)
            if kind == "zip":
                yield from _read_zip(fs, container, group)
            elif kind == "parquet":
                yield from _read_parquet(fs, container, group)
            else:
                yield from _read_ranges(fs, group, pool, threads)


def _group_key(ref: InputRef) -> tuple[str, str]:
    # Zip and Parquet inputs are read through their opened container; image files and tar
    # members are independent reads, so a run of them forms one group for the threads.
    return ref.kind, ref.container if ref.kind in ("zip", "parquet") else ""


def _read_ranges(
    fs: fsspec.AbstractFileSystem, refs: list[InputRef], pool: ThreadPoolExecutor, threads: int
) -> Iterator[RawInput]:
    """Whole image files, or tar members as byte ranges, ``2 * threads`` in memory at a time."""
    for start in range(0, len(refs), 2 * threads):
        chunk = refs[start : start + 2 * threads]
        yield from pool.map(lambda ref: _read_one(fs, ref), chunk)


def _read_one(fs: fsspec.AbstractFileSystem, ref: InputRef) -> RawInput:
    source = source_url(fs, ref)
    try:
        if ref.kind == "tar":
            data = fs.cat_file(ref.container, start=ref.offset, end=ref.offset + ref.size) if ref.size else b""
        else:
            data = storage.read_bytes(fs, ref.container)  # on S3 one GET (s3fs's cat_file asks HEAD first)
    except (OSError, ValueError) as exc:
        return RawInput(ref, ref.path, source, None, f"{source}: cannot read: {type(exc).__name__}: {exc}")
    return RawInput(ref, ref.path, source, data)


def _read_zip(fs: fsspec.AbstractFileSystem, container: str, refs: list[InputRef]) -> Iterator[RawInput]:
    """Members of one zip archive, opened once (its central directory is read again here)."""
    try:
        handle = fs.open(container, "rb")
        archive = zipfile.ZipFile(handle)
    except (OSError, zipfile.BadZipFile) as exc:
        for ref in refs:
            source = source_url(fs, ref)
            yield RawInput(ref, ref.path, source, None, f"{source}: cannot open archive: {type(exc).__name__}: {exc}")
        return
    with handle, archive:
        for ref in refs:
            source = source_url(fs, ref)
            try:
                data = archive.read(ref.member or "")  # zip refs always name their member
            except (OSError, KeyError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
                # A damaged member (bad CRC, unsupported compression) is the member's problem only.
                yield RawInput(
                    ref, ref.path, source, None, f"{source}: cannot read member: {type(exc).__name__}: {exc}"
                )
                continue
            yield RawInput(ref, ref.path, source, data)


def _read_parquet(fs: fsspec.AbstractFileSystem, container: str, refs: list[InputRef]) -> Iterator[RawInput]:
    """Rows of one Parquet file; a file that cannot be read fails each of its rows."""
    try:
        images, error = _parquet_images(fs, container, {ref.offset for ref in refs}), None
    except (OSError, ValueError) as exc:
        images, error = {}, f"{storage.to_url(fs, container)}: cannot read Parquet rows: {type(exc).__name__}: {exc}"
    for ref in refs:
        image = images.get(ref.offset) or {}
        # The row's own image.path already names the image in its collection (re-sharding keeps
        # it, and so the split); only a row without one is named after its file and position.
        path = normalise_member(image.get("path") or "") or posixpath.join(ref.path, f"row-{ref.offset}")
        data = None if error else (image.get("bytes") or b"")
        yield RawInput(ref, path, source_url(fs, ref), data, error)


def _parquet_images(fs: fsspec.AbstractFileSystem, container: str, wanted: set[int]) -> dict[int, dict]:
    """``{row index: {"bytes": ..., "path": ...}}`` for the ``wanted`` rows, reading only their row groups."""
    images: dict[int, dict] = {}
    with fs.open(container, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        first = 0
        for group in range(parquet.num_row_groups):
            count = parquet.metadata.row_group(group).num_rows
            if any(first <= row < first + count for row in wanted):
                column = parquet.read_row_group(group, columns=["image"]).column("image").to_pylist()
                images.update({first + i: image for i, image in enumerate(column) if first + i in wanted})
            first += count
    return images
