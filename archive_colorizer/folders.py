"""Listing folders and prefixes page by page: the one route every job lists its inputs by.

colorize, plan, prepare, train and evaluate all list through :func:`iter_folder_entries`: a
folder or prefix of millions of files streams a page (at most :data:`LIST_PAGE_NAMES` names) at
a time, one S3 ``ListObjectsV2`` page as the store returns it, so no job holds a flat prefix's
whole listing. :func:`iter_files` and :func:`iter_files_with_sizes` are its file-path views;
:func:`list_subfolders` finds the subfolders of a small folder without reading a big one.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from typing import Any

import fsspec

from archive_colorizer import gates
from archive_colorizer.errors import StorageError
from archive_colorizer.storage import is_local, open_url, to_url


def iter_files(
    fs: fsspec.AbstractFileSystem,
    root: str,
    extensions: tuple[str, ...] | None = None,
    *,
    skip_bookkeeping: bool = True,
) -> Iterator[str]:
    """Yield the paths of the files below ``root``, recursively, in sorted order per folder.

    Lists through :func:`iter_folder_entries`, the route every job lists by: a folder of
    millions of files streams a page at a time. Symbolic links to folders are not followed.

    Args:
        extensions: lower-case suffixes with the dot (``(".jpg", ".png")``), matched
            case-insensitively; ``None`` keeps all.
        skip_bookkeeping: skip hidden files and folders (name starting with ``.``) and
            ``_``-prefixed folders such as ``_manifest``: what prepare, train and evaluate want
            when they read a job's output folder. The colorize job lists an archive without:
            there every file is an input and gets a manifest row.
    """
    for folder, entries, _ in iter_folder_entries(fs, root, skip_bookkeeping=skip_bookkeeping):
        for name, _size in entries:
            if extensions is None or name.lower().endswith(extensions):
                yield posixpath.join(folder, name)


def iter_files_with_sizes(
    fs: fsspec.AbstractFileSystem, root: str, extensions: tuple[str, ...] | None = None
) -> Iterator[tuple[str, int | None]]:
    """Every file below ``root`` with its size, as colorize lists an archive: yields ``(path, bytes)``.

    The files of :func:`iter_folder_pages` (hidden and ``_``-prefixed ones too: each file of an
    archive is an input), in the same order, filtered by ``extensions`` (lower-case suffixes,
    matched case-insensitively). On S3 the sizes come with the listing (the ``Size`` of each
    key of a ``ListObjectsV2`` page), so no request per file is made; a local disk answers one
    ``stat`` per file; ``size`` is None where a filesystem reports none.
    """
    for folder, entries, _ in iter_folder_entries(fs, root, sizes=True):
        for name, size in entries:
            if extensions is None or name.lower().endswith(extensions):
                yield posixpath.join(folder, name), size


LIST_PAGE_NAMES = 1000
"""File names per page of :func:`iter_folder_pages` (an S3 ``ListObjectsV2`` page holds up to 1000 keys)."""

Entries = list[tuple[str, int | None]]
"""One page of a folder's files: ``(name, size in bytes or None)``; sizes are None unless asked for."""


def iter_folder_pages(
    fs: fsspec.AbstractFileSystem, root: str, recursive: bool = True, page_names: int = LIST_PAGE_NAMES
) -> Iterator[tuple[str, list[str], bool]]:
    """Yield ``(folder, file names, last)``: :func:`iter_folder_entries` without sizes."""
    for folder, entries, last in iter_folder_entries(fs, root, recursive, page_names):
        yield folder, [name for name, _ in entries], last


def iter_folder_entries(
    fs: fsspec.AbstractFileSystem,
    root: str,
    recursive: bool = True,
    page_names: int = LIST_PAGE_NAMES,
    *,
    sizes: bool = False,
    skip_bookkeeping: bool = False,
) -> Iterator[tuple[str, Entries, bool]]:
    """The one listing route of every job: yield ``(folder, entries, last)``, the files of ``root``
    (and, when ``recursive``, of every folder below it, depth first in sorted order) a page of at
    most ``page_names`` at a time.

    A folder of millions of files streams: on S3 one ``ListObjectsV2`` page at a time, as the
    store returns them (each page in the store's order, which S3 defines as sorted); on a local
    disk from one ``os.scandir`` of names (no ``stat`` per file unless ``sizes``), sorted, then
    cut into pages. Within a folder the names of later pages sort after those of earlier ones.
    ``last`` is True on the folder's last page (a folder without files yields one empty last
    page). Other filesystems are listed one folder at a time (``fs.ls``) and cut into pages.
    Symbolic links to folders are listed as files and never followed. Before handing on page
    ``k > 0`` of a folder the hold point ``storage.list`` (key ``<folder>#<k>``) is passed
    (:mod:`archive_colorizer.gates`).

    A folder that does not exist (or no longer does) yields nothing on a local disk and one empty
    page on S3 (where a prefix without keys is no folder).

    Args:
        sizes: give each file's size in bytes (free on S3; one ``stat`` per file on a local disk).
        skip_bookkeeping: leave out hidden files, and hidden and ``_``-prefixed folders.

    Raises:
        StorageError: an object store returned a folder's keys out of order.
        OSError: a folder cannot be listed.
    """
    if is_local(fs):
        pages = _local_pages(root, recursive, page_names, sizes, skip_bookkeeping)
    elif is_s3(fs):
        pages = _s3_pages(fs, root, recursive, page_names, skip_bookkeeping)
    else:
        pages = _listed_pages(fs, root, recursive, page_names, skip_bookkeeping)
    number: dict[str, int] = {}
    for folder, entries, last in pages:
        page = number[folder] = number.get(folder, -1) + 1
        if page and gates.active():
            gates.hold("storage.list", f"{folder}#{page}")
        yield folder, entries, last


def is_s3(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether ``fs`` is s3fs's filesystem."""
    from s3fs import S3FileSystem

    return isinstance(fs, S3FileSystem)


def is_folder(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """Whether ``path`` is a folder: on S3 a prefix with at least one key below it (a bucket's root:
    any key), found with one ``ListObjectsV2`` of one key; elsewhere ``fs.isdir``.

    s3fs's ``isdir`` lists the whole prefix (every key of a flat prefix of 100M keys, in the caller's
    memory) before it answers; this asks S3 for one key.

    Raises:
        OSError: the request failed (a missing bucket answers False).
    """
    if not is_s3(fs):
        return bool(fs.isdir(path))
    bucket, key, _ = fs.split_path(path)
    key = key.strip("/")
    try:
        answer = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=f"{key}/" if key else "", MaxKeys=1)
    except FileNotFoundError:  # no such bucket
        return False
    return bool(answer.get("KeyCount") or answer.get("Contents") or answer.get("CommonPrefixes"))


def is_empty_or_missing(url: str, storage_options: Any = None) -> bool:
    """Whether nothing exists at ``url``, or it is a folder (prefix) with no entries: a file is not empty.

    Two requests on S3 at most, whatever the prefix holds (:func:`is_folder`).

    Raises:
        OSError: a request failed.
    """
    fs, path = open_url(url, storage_options)
    if not is_folder(fs, path):
        return not fs.exists(path)
    if is_s3(fs):
        return False  # a prefix is a folder only while a key lies below it
    if is_local(fs):
        with os.scandir(path) as entries:
            return next(entries, None) is None
    return not fs.ls(path, detail=False)


def _hidden(name: str, skip_bookkeeping: bool, folder: bool) -> bool:
    return skip_bookkeeping and name.startswith((".", "_") if folder else ".")


def _cut(folder: str, entries: Entries, page_names: int) -> Iterator[tuple[str, Entries, bool]]:
    if not entries:
        yield folder, [], True
    for start in range(0, len(entries), page_names):
        yield folder, entries[start : start + page_names], start + page_names >= len(entries)


def _local_pages(
    root: str, recursive: bool, page_names: int, sizes: bool, skip_bookkeeping: bool
) -> Iterator[tuple[str, Entries, bool]]:
    folders = [root.rstrip("/") or "/"]
    while folders:
        folder = folders.pop()
        files: Entries = []
        dirs: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if not _hidden(entry.name, skip_bookkeeping, folder=True):
                            dirs.append(entry.name)
                    elif not _hidden(entry.name, skip_bookkeeping, folder=False):
                        files.append((entry.name, entry.stat(follow_symlinks=False).st_size if sizes else None))
        except FileNotFoundError:  # gone since it was found (fs.walk omits it too)
            continue
        yield from _cut(folder, sorted(files), page_names)
        if recursive:
            folders += [posixpath.join(folder, name) for name in sorted(dirs, reverse=True)]


def _listed_pages(
    fs: fsspec.AbstractFileSystem, root: str, recursive: bool, page_names: int, skip_bookkeeping: bool
) -> Iterator[tuple[str, Entries, bool]]:
    folders = [root.rstrip("/")]
    while folders:
        folder = folders.pop()
        try:
            listed = fs.ls(folder, detail=True)
        except FileNotFoundError:
            continue
        files: Entries = []
        dirs: list[str] = []
        for item in listed:
            name = item["name"].rstrip("/").rsplit("/", 1)[-1]
            if item.get("type") == "directory":
                if not _hidden(name, skip_bookkeeping, folder=True):
                    dirs.append(name)
            elif not _hidden(name, skip_bookkeeping, folder=False):
                size = item.get("size")
                files.append((name, None if size is None else int(size)))
        yield from _cut(folder, sorted(files), page_names)
        if recursive:
            folders += [posixpath.join(folder, name) for name in sorted(dirs, reverse=True)]


def _s3_takes(fs: Any, bucket: str, prefix: str, page_names: int) -> Iterator[list[dict[str, Any]]]:
    """s3fs's paginated, retried listing of one prefix level (``ListObjectsV2`` with ``Delimiter="/"``,
    :func:`archive_colorizer.compat.s3_iterdir`), ``page_names`` entries (keys and sub-prefixes) at a time."""
    from fsspec.asyn import sync

    from archive_colorizer.compat import s3_iterdir

    items = s3_iterdir(fs, bucket, f"{prefix}/" if prefix else "")

    async def take() -> list[dict[str, Any]]:
        taken = []
        async for item in items:
            taken.append(item)
            if len(taken) >= page_names:
                break
        return taken

    while taken := sync(fs.loop, take):
        yield taken


def _s3_pages(
    fs: Any, root: str, recursive: bool, page_names: int, skip_bookkeeping: bool
) -> Iterator[tuple[str, Entries, bool]]:
    bucket, key, _ = fs.split_path(root)
    prefixes = [key.strip("/")]
    while prefixes:
        prefix = prefixes.pop()
        folder = posixpath.join(bucket, prefix) if prefix else bucket
        dirs: list[str] = []
        held: Entries | None = None  # a page is yielded once the next one shows whether it was the last
        for taken in _s3_takes(fs, bucket, prefix, page_names):
            entries: Entries = []
            for item in taken:
                name = item["name"].rstrip("/").rsplit("/", 1)[-1]
                if item["type"] == "directory":
                    if not _hidden(name, skip_bookkeeping, folder=True):
                        dirs.append(name)
                elif item["name"].rstrip("/") != folder and not _hidden(name, skip_bookkeeping, folder=False):
                    size = item.get("size")  # not the folder's own marker object
                    entries.append((name, None if size is None else int(size)))
            if not entries:
                continue
            entries.sort()
            if held and entries[0][0] < held[-1][0]:
                raise StorageError(
                    f"the object store listed {to_url(fs, folder)!r} out of order "
                    f"({entries[0][0]!r} after {held[-1][0]!r})"
                )
            if held is not None:
                yield folder, held, False
            held = entries
        yield folder, held or [], True
        if recursive:
            prefixes += [f"{prefix}/{name}" if prefix else name for name in sorted(dirs, reverse=True)]


def iter_s3_keys(
    fs: Any, bucket: str, prefix: str, start_after: str | None, page_names: int = LIST_PAGE_NAMES
) -> Iterator[list[str]]:
    """The keys below ``prefix`` (any depth: no delimiter) after ``start_after``, one ``ListObjectsV2``
    page of at most ``page_names`` keys at a time, in S3's (sorted) order.

    Each page is one request through s3fs's retried ``call_s3`` and starts after the last key of the
    one before (``StartAfter``), so a retried page, or a range re-listed from its start, asks
    exactly the same question.

    Raises:
        OSError: a page cannot be listed.
    """
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_names}
        if start_after:
            kwargs["StartAfter"] = start_after
        answer = fs.call_s3("list_objects_v2", **kwargs)
        keys = [item["Key"] for item in answer.get("Contents", [])]
        if keys:
            yield keys
        if not keys or not answer.get("IsTruncated"):
            return
        start_after = keys[-1]


def first_s3_keys_after(fs: Any, bucket: str, prefix: str, positions: list[str], threads: int = 16) -> list[str | None]:
    """For each position, the first key below ``prefix`` that sorts after it (None: none): one
    ``ListObjectsV2`` of one key with ``StartAfter`` each, ``threads`` at a time.

    Raises:
        OSError: a request failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    def first(position: str) -> str | None:
        answer = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, StartAfter=position, MaxKeys=1)
        contents = answer.get("Contents", [])
        return contents[0]["Key"] if contents else None

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(positions)))) as pool:
        return list(pool.map(first, positions))


def list_subfolders(fs: fsspec.AbstractFileSystem, folder: str, limit: int = LIST_PAGE_NAMES) -> list[str] | None:
    """The sorted paths of ``folder``'s subfolders, or None when ``folder`` holds more than ``limit``
    entries (files and folders): a folder that large is not read whole just to find its subfolders.

    Local disks and S3 read at most ``limit + 1`` entries (one ``os.scandir``, one ``LIST`` page);
    other filesystems list the folder (``fs.ls``). Symbolic links to folders are not subfolders.

    Raises:
        FileNotFoundError: ``folder`` does not exist (local disks).
        OSError: it cannot be listed.
    """
    found: list[str] = []
    if is_local(fs):
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= limit:
                    return None
                if entry.is_dir(follow_symlinks=False):
                    found.append(posixpath.join(folder, entry.name))
        return sorted(found)
    if is_s3(fs):
        bucket, key, _ = fs.split_path(folder)
        taken = next(_s3_takes(fs, bucket, key.strip("/"), limit + 1), [])
        if len(taken) > limit:
            return None
        return sorted(item["name"].rstrip("/") for item in taken if item["type"] == "directory")
    entries = fs.ls(folder, detail=True)
    if len(entries) > limit:
        return None
    return sorted(e["name"].rstrip("/") for e in entries if e.get("type") == "directory")
