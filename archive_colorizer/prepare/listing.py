"""Listing a photo collection: which inputs there are, named by their path inside the collection.

Runs in the driver and yields small :class:`InputRef` records one at a time, so the driver never
holds image bytes nor (for folders and tars) the whole listing. Bytes are read later, in the shard
tasks (:mod:`archive_colorizer.prepare.reader`).

Collections (INPUT):

- a folder or prefix, walked recursively one folder at a time (:func:`folders.iter_files`);
  ``.zip``, ``.tar`` and ``.parquet`` files found in it are opened and their images listed too,
  under ``<archive path>/<member>``;
- a ``.zip`` archive: the driver reads its central directory (zipfile over an fsspec file, so
  ``s3://`` works without downloading the archive);
- a ``.tar`` archive (uncompressed): tar has no index, so the driver reads the member headers once,
  seeking over the data, and records each member's data offset and size for range reads;
- a Parquet file with a Hugging Face ``image`` column (``struct<bytes, path>``): one input per row.

Every input has a path relative to the collection root (``/``-separated), the same whether the
photos sit in a folder, a zip, a tar or a bucket; it becomes ``image.path`` and decides the split.
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Literal

import fsspec
import pyarrow.parquet as pq

from archive_colorizer import folders, storage
from archive_colorizer.errors import ConfigError, JobError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".parquet")
"""Container files that a folder walk opens and lists instead of treating them as images."""

COMPRESSED_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")


@dataclass(frozen=True)
class InputRef:
    """One input image, as the driver lists it (no bytes).

    Attributes:
        kind: ``file`` (an image file), ``zip`` or ``tar`` (an archive member), ``parquet`` (a row).
        container: the file to read, as a path inside the input filesystem (the image itself, the
            archive, or the Parquet file).
        path: the image's path relative to the collection root (``a/b.jpg``); for a Parquet row,
            the file's own relative path (empty for a single file): the row's ``image.path``,
            read with its bytes, names the image, and ``<path>/row-<index>`` when it has none.
        member: the member name inside a zip or tar archive.
        offset: tar: byte offset of the member's data; parquet: row index in the file.
        size: tar: the member's size in bytes.
    """

    kind: Literal["file", "zip", "tar", "parquet"]
    container: str
    path: str
    member: str | None = None
    offset: int = 0
    size: int = 0


def normalise_member(name: str) -> str:
    """An archive member name as a relative ``/`` path: ``./a//b.jpg`` -> ``a/b.jpg``."""
    name = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
    return "" if name == "." else name


def is_hidden(path: str) -> bool:
    """Whether a relative path is skipped like :func:`folders.iter_files` skips files.

    Hidden files or folders (``.name``, e.g. macOS ``._x.jpg``) and ``_``-prefixed folders
    (``__MACOSX``, ``_manifest``) are not inputs, in archives as in folders.
    """
    *folders, name = path.split("/")
    return name.startswith(".") or any(part.startswith((".", "_")) for part in folders)


def _matches(name: str, extensions: tuple[str, ...]) -> bool:
    return name.lower().endswith(extensions) and not is_hidden(name)


def iter_inputs(fs: fsspec.AbstractFileSystem, root: str, extensions: Iterable[str]) -> Iterator[InputRef]:
    """Yield every input of the collection at ``root``, lazily, in a stable order.

    Args:
        fs, root: the input filesystem and the collection's path in it (see :func:`storage.open_url`).
        extensions: lower-case image suffixes with the dot; files and members not matching are
            not inputs (and are not counted).

    Raises:
        ConfigError: ``root`` does not exist, or is a file of a kind that cannot be read.
        JobError: an archive or Parquet file cannot be listed (names the URL).
    """
    extensions = tuple(extensions)
    if folders.is_folder(fs, root):
        root = root.rstrip("/")
        for path in folders.iter_files(fs, root, extensions + ARCHIVE_SUFFIXES):
            yield from _iter_file(fs, path, posixpath.relpath(path, root), extensions)
        return
    if not fs.isfile(root):
        raise ConfigError(f"INPUT {storage.to_url(fs, root)!r} does not exist")
    name = posixpath.basename(root)
    if not name.lower().endswith(extensions + ARCHIVE_SUFFIXES):
        raise ConfigError(
            f"INPUT {storage.to_url(fs, root)!r} is a file but not a folder, .zip, .tar, .parquet or image "
            f"({', '.join(extensions)}); compressed tars ({', '.join(COMPRESSED_TAR_SUFFIXES)}) must be unpacked "
            "to .tar"
        )
    # A single archive is the collection root itself: its members keep their own names.
    yield from _iter_file(fs, root, "" if name.lower().endswith(ARCHIVE_SUFFIXES) else name, extensions)


def _iter_file(
    fs: fsspec.AbstractFileSystem, path: str, relative: str, extensions: tuple[str, ...]
) -> Iterator[InputRef]:
    """Inputs of one file met in the listing: itself, or the members/rows it contains."""
    lower = path.lower()
    if lower.endswith(".zip"):
        yield from _guarded(fs, path, iter_zip(fs, path, relative, extensions))
    elif lower.endswith(".tar"):
        yield from _guarded(fs, path, iter_tar(fs, path, relative, extensions))
    elif lower.endswith(".parquet"):
        yield from _guarded(fs, path, iter_parquet(fs, path, relative))
    else:
        yield InputRef("file", path, relative)


def _guarded(fs: fsspec.AbstractFileSystem, path: str, refs: Iterator[InputRef]) -> Iterator[InputRef]:
    try:
        yield from refs
    except (OSError, zipfile.BadZipFile, tarfile.TarError, ValueError) as exc:
        raise JobError(f"cannot list {storage.to_url(fs, path)!r}: {type(exc).__name__}: {exc}") from exc


def iter_zip(fs: fsspec.AbstractFileSystem, path: str, prefix: str, extensions: tuple[str, ...]) -> Iterator[InputRef]:
    """Members of a zip archive, from its central directory (the only part read here).

    ``prefix`` is the archive's own relative path inside a folder ("" for the root archive).
    """
    with fs.open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            name = normalise_member(info.filename)
            if not info.is_dir() and _matches(name, extensions):
                yield InputRef("zip", path, posixpath.join(prefix, name), member=info.filename)


def iter_tar(fs: fsspec.AbstractFileSystem, path: str, prefix: str, extensions: tuple[str, ...]) -> Iterator[InputRef]:
    """Regular-file members of an uncompressed tar, with the offset and size of their data.

    Only the 512-byte headers are read: :mod:`tarfile` seeks over each member's data. The list
    of members tarfile keeps is cleared as we go, so memory stays flat for millions of members.
    """
    with fs.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r:") as archive:
        while (info := archive.next()) is not None:
            archive.members.clear()  # type: ignore[attr-defined]  # tarfile's list of read members; not in typeshed
            name = normalise_member(info.name)
            if info.isreg() and _matches(name, extensions):
                yield InputRef(
                    "tar", path, posixpath.join(prefix, name), member=info.name, offset=info.offset_data, size=info.size
                )


def iter_parquet(fs: fsspec.AbstractFileSystem, path: str, prefix: str) -> Iterator[InputRef]:
    """One input per row of a Parquet file with a Hugging Face ``image`` column.

    Only the footer is read here; the row's ``image.path`` is read with its bytes by the task.

    Raises:
        JobError: the file has no ``image`` column of ``struct<bytes: binary, ...>``.
    """
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        schema = parquet.schema_arrow
        num_rows = parquet.metadata.num_rows
    field = schema.field("image") if "image" in schema.names else None
    if field is None or not hasattr(field.type, "get_field_index") or field.type.get_field_index("bytes") < 0:
        raise JobError(
            f"{storage.to_url(fs, path)!r} has no Hugging Face image column: expected 'image: struct<bytes: binary, "
            f"path: string>', found {schema.names}"
        )
    for row in range(num_rows):
        yield InputRef("parquet", path, prefix, offset=row)


def batched(refs: Iterable[InputRef], size: int) -> Iterator[list[InputRef]]:
    """Group inputs into lists of ``size`` (the last one shorter): one list per shard task."""
    iterator = iter(refs)
    while batch := list(islice(iterator, size)):
        yield batch
