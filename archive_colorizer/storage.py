"""fsspec helpers: every path in the project is a URL.

A bare path is local; ``s3://`` goes through s3fs (endpoint and credentials from the standard
AWS variables such as ``AWS_ENDPOINT_URL`` or from storage options); any other protocol works
where its fsspec driver is installed. Nothing here hard-codes an endpoint or a credential.

Object stores throttle and fail now and then; ``s3://`` URLs therefore get botocore's
``standard`` retry mode with ten attempts in total unless the user chose retry settings (see
:mod:`archive_colorizer.s3`). Each process counts the S3 requests that botocore retried
(:func:`retried_requests`), so jobs can report them.
"""

from __future__ import annotations

import os
import posixpath
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec
from fsspec.core import split_protocol

from archive_colorizer.errors import StorageError
from archive_colorizer.retries import count_retries, retried_requests

__all__ = [
    "StorageError",
    "iter_files",
    "iter_files_with_sizes",
    "iter_folder_pages",
    "iter_folders",
    "list_subfolders",
    "is_empty_or_missing",
    "is_local",
    "is_same_or_inside",
    "join",
    "LocalAtomicFile",
    "open_url",
    "read_bytes",
    "count_retries",
    "retried_requests",
    "to_url",
    "write_bytes",
]


S3_PROTOCOLS = ("s3", "s3a")


def open_url(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """Resolve ``url`` to ``(filesystem, path)``.

    Args:
        url: a local path (relative or absolute) or an fsspec URL such as ``s3://bucket/prefix``.
        storage_options: keyword arguments for the filesystem (e.g. ``{"endpoint_url": ...}``
            for s3fs); ``None`` means the driver's defaults and the environment.

    Returns:
        The fsspec filesystem and the path inside it (no protocol; absolute for local paths).

    ``s3://`` URLs get :data:`archive_colorizer.s3.S3_RETRIES` unless the options or the
    environment choose retry settings, and their retries are counted (:func:`retried_requests`).
    ``::`` is part of a name here, not fsspec's URL chaining: a file called ``a::b.jpg`` is that
    file (archives are read by the jobs themselves).

    Raises:
        StorageError: the protocol has no installed driver.
    """
    options = dict(storage_options or {})
    protocol = split_protocol(url)[0] or "file"
    try:
        if protocol in S3_PROTOCOLS:
            from archive_colorizer import s3 as s3_support  # imports s3fs only where S3 is used

            cls, options = s3_support.CountingS3FileSystem, s3_support.with_retries(options)
        else:
            cls = fsspec.get_filesystem_class(protocol)
        fs = cls(**{**cls._get_kwargs_from_urls(url), **options})
    except (ImportError, ValueError) as exc:
        raise StorageError(f"cannot open {url!r}: {exc}") from exc
    return fs, cls._strip_protocol(url)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local filesystem."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def to_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Turn a path inside ``fs`` back into a URL (``s3://bucket/key``; plain path when local)."""
    if is_local(fs):
        return path
    return fs.unstrip_protocol(path)


def join(url: str, *parts: str) -> str:
    """Join a URL or path with parts using ``/``, keeping the protocol (``s3://b/p`` + ``x`` -> ``s3://b/p/x``)."""
    return posixpath.join(url, *parts)


class LocalAtomicFile:
    """A local file that appears at ``path`` whole or not at all, even if the process is killed.

    On Linux the bytes go to an unnamed file in the target folder (``O_TMPFILE``), which the
    kernel frees if the process dies; :meth:`commit` links it under a temporary name and renames
    that over ``path``, so a name exists only for that instant. Where ``O_TMPFILE`` is missing
    (other systems, some network filesystems) a named ``.<name>.<hex>.tmp`` file in the same
    folder is written and renamed instead; that one stays behind if the process is killed while
    writing (hidden: listings skip it). ``os.replace`` is atomic on POSIX.

    Attributes:
        file: the binary file object to write to.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        self._named: str | None = None
        try:
            if not os.path.isdir("/proc/self/fd"):
                raise OSError("no /proc/self/fd to link an unnamed file from")
            descriptor = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
        except (AttributeError, OSError):
            self._named = self._temporary_name()
            descriptor = os.open(self._named, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.file = os.fdopen(descriptor, "wb")

    def _temporary_name(self) -> str:
        return os.path.join(os.path.dirname(self.path), f".{os.path.basename(self.path)}.{uuid.uuid4().hex}.tmp")

    def commit(self) -> None:
        """Publish the written bytes at ``path`` (replacing what was there)."""
        self.file.flush()
        named = self._named
        if named is None:
            named = self._temporary_name()
            # os.link calls linkat(..., AT_SYMLINK_FOLLOW) only when given a directory fd.
            folder = os.open(os.path.dirname(named) or ".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(f"/proc/self/fd/{self.file.fileno()}", os.path.basename(named), dst_dir_fd=folder)
            finally:
                os.close(folder)
        self.file.close()
        try:
            os.replace(named, self.path)
        finally:
            if os.path.exists(named):
                os.remove(named)

    def abort(self) -> None:
        """Drop the bytes; ``path`` is left as it was."""
        self.file.close()
        if self._named is not None and os.path.exists(self._named):
            os.remove(self._named)


def write_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file.

    Local files go through :class:`LocalAtomicFile` (an unnamed file renamed into place: a
    process killed while writing leaves nothing behind). Object stores (s3, gcs, az, memory)
    store an object whole or not at all, so they are written directly.

    Raises:
        StorageError: the write failed; the message names the path.
    """
    try:
        if is_local(fs):
            target = LocalAtomicFile(path)
            try:
                target.file.write(data)
            except BaseException:
                target.abort()
                raise
            target.commit()
        else:
            fs.pipe_file(path, data)
    except OSError as exc:
        raise StorageError(f"cannot write {to_url(fs, path)!r}: {exc}") from exc


HTTP_ATTEMPTS = 4
"""Tries of an HTTP(S) GET (IIIF images and manifests) before its error counts: S3 gets botocore's retries."""
HTTP_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try (timeouts, throttling, a server or gateway error); a 404 is final."""


def _http_retry_delay(error: BaseException) -> float | None:
    """Seconds to wait before trying an HTTP GET again after ``error``, or None when it is final."""
    import aiohttp

    if isinstance(error, aiohttp.ClientResponseError):
        return 0.5 if error.status in HTTP_RETRY_STATUSES else None
    return 0.5 if isinstance(error, (aiohttp.ClientConnectionError, TimeoutError)) else None


def read_bytes(fs: fsspec.AbstractFileSystem, path: str) -> bytes:
    """Read a whole file; HTTP(S) GETs are tried up to :data:`HTTP_ATTEMPTS` times on transient errors.

    An HTTP retry waits 0.5, 1, 2 s and counts in :func:`retried_requests`, as S3's do.

    Raises:
        FileNotFoundError: the file does not exist (message names the URL; an HTTP 404).
        StorageError: any other read failure (an HTTP status or connection error after its tries).
    """
    http = "http" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,))
    for attempt in range(1, HTTP_ATTEMPTS + 1):
        try:
            return fs.cat_file(path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"no such file: {to_url(fs, path)!r}") from exc
        except Exception as exc:
            delay = _http_retry_delay(exc) if http else None
            if delay is not None and attempt < HTTP_ATTEMPTS:
                count_retries(1)
                time.sleep(delay * 2 ** (attempt - 1))
                continue
            if http:
                raise StorageError(f"cannot read {to_url(fs, path)!r}: {type(exc).__name__}: {exc}") from exc
            if isinstance(exc, OSError):
                raise StorageError(f"cannot read {to_url(fs, path)!r}: {exc}") from exc
            raise
    raise AssertionError("unreachable")  # every attempt returns, retries or raises


def iter_files(
    fs: fsspec.AbstractFileSystem,
    root: str,
    extensions: tuple[str, ...] | None = None,
    *,
    skip_bookkeeping: bool = True,
) -> Iterator[str]:
    """Yield the paths of the files below ``root``, recursively, in sorted order per folder.

    Walks one folder at a time (``fs.walk``), so memory holds one folder's listing, not the
    whole tree. Symbolic links to folders on a local filesystem are not followed.

    Args:
        extensions: lower-case suffixes with the dot (``(".jpg", ".png")``); ``None`` keeps all.
        skip_bookkeeping: skip hidden files and folders (name starting with ``.``) and
            ``_``-prefixed folders such as ``_manifest``: what train and evaluate want when
            they read a job's output folder. The colorize job lists an archive with ``False``:
            there every file is an input and gets a manifest row.
    """
    for folder, dirs, files in fs.walk(root, detail=False, topdown=True):
        dirs[:] = sorted(d for d in dirs if not (skip_bookkeeping and d.startswith((".", "_"))))
        if is_local(fs):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in sorted(files):
            if skip_bookkeeping and name.startswith("."):
                continue
            if extensions is not None and not name.lower().endswith(extensions):
                continue
            yield posixpath.join(folder, name)


def iter_files_with_sizes(
    fs: fsspec.AbstractFileSystem, root: str, extensions: tuple[str, ...] | None = None
) -> Iterator[tuple[str, int | None]]:
    """Every file below ``root`` with its size, as colorize lists an archive: yields ``(path, bytes)``.

    The same files as :func:`iter_folders` (hidden and ``_``-prefixed ones too: each file of an
    archive is an input), in sorted order, filtered by ``extensions`` (lower-case suffixes,
    matched case-insensitively). The sizes come with the listing (``fs.walk(detail=True)``:
    ``ls`` of each folder on local disks, the ``Size`` of each key of an S3 ``ListObjectsV2``
    page), so no request per file is made; ``size`` is None where a filesystem reports none.
    Symbolic links to folders on a local filesystem are not followed.
    """
    for folder, dirs, files in fs.walk(root, detail=True, topdown=True):
        keep = sorted(dirs)
        if is_local(fs):
            keep = [d for d in keep if not os.path.islink(os.path.join(folder, d))]
        for name in list(dirs):  # walk(detail=True) descends into what stays in the dict
            if name not in keep:
                del dirs[name]
        for name in sorted(files):
            if extensions is not None and not name.lower().endswith(extensions):
                continue
            size = files[name].get("size")
            yield posixpath.join(folder, name), None if size is None else int(size)


def iter_folders(fs: fsspec.AbstractFileSystem, root: str, recursive: bool = True) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(folder, sorted file names)`` for ``root`` and, when ``recursive``, every folder below it.

    Every file counts, hidden and ``_``-prefixed ones too (an archive listing: each file is an
    input). One folder's listing at a time is held (one ``LIST`` per folder or prefix level on an
    object store, paged by the store's client). Symbolic links to folders on a local filesystem
    are not followed.

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    for folder, dirs, files in fs.walk(root, detail=False, topdown=True, maxdepth=None if recursive else 1):
        dirs[:] = sorted(dirs) if recursive else []
        if is_local(fs):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        yield folder, sorted(files)


LIST_PAGE_NAMES = 1000
"""File names per page of :func:`iter_folder_pages` (an S3 ``ListObjectsV2`` page holds up to 1000 keys)."""


def iter_folder_pages(
    fs: fsspec.AbstractFileSystem, root: str, recursive: bool = True, page_names: int = LIST_PAGE_NAMES
) -> Iterator[tuple[str, list[str], bool]]:
    """Yield ``(folder, file names, last)``: the file names of ``root`` (and, when ``recursive``,
    of every folder below it, depth first in sorted order) a page of at most ``page_names`` at a time.

    The same files as :func:`iter_folders`, but a folder of millions of files streams: on S3 one
    ``ListObjectsV2`` page at a time, as the store returns them (each page in the store's order,
    which S3 defines as sorted); on a local disk from one ``os.scandir`` of names (no ``stat``
    per file), sorted, then cut into pages. Within a folder the names of later pages sort after
    those of earlier ones. ``last`` is True on the folder's last page (a folder without files
    yields one empty last page). Other filesystems are walked with ``fs.walk`` (one folder's
    whole listing at a time) and cut into pages. Symbolic links to folders are listed as files
    and never followed (as ``fs.walk`` lists them).

    A folder that does not exist (or no longer does) yields nothing on a local disk and one empty
    page on S3 (where a prefix without keys is no folder).

    Raises:
        StorageError: an object store returned a folder's keys out of order.
        OSError: a folder cannot be listed.
    """
    if is_local(fs):
        return _local_pages(root, recursive, page_names)
    if _is_s3(fs):
        return _s3_pages(fs, root, recursive, page_names)
    return _walked_pages(fs, root, recursive, page_names)


def _is_s3(fs: fsspec.AbstractFileSystem) -> bool:
    from s3fs import S3FileSystem

    return isinstance(fs, S3FileSystem)


def _cut(folder: str, names: list[str], page_names: int) -> Iterator[tuple[str, list[str], bool]]:
    if not names:
        yield folder, [], True
    for start in range(0, len(names), page_names):
        yield folder, names[start : start + page_names], start + page_names >= len(names)


def _local_pages(root: str, recursive: bool, page_names: int) -> Iterator[tuple[str, list[str], bool]]:
    folders = [root.rstrip("/") or "/"]
    while folders:
        folder = folders.pop()
        files: list[str] = []
        dirs: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
        except FileNotFoundError:  # gone since it was found (fs.walk omits it too)
            continue
        yield from _cut(folder, sorted(files), page_names)
        if recursive:
            folders += [posixpath.join(folder, name) for name in sorted(dirs, reverse=True)]


def _walked_pages(
    fs: fsspec.AbstractFileSystem, root: str, recursive: bool, page_names: int
) -> Iterator[tuple[str, list[str], bool]]:
    for folder, names in iter_folders(fs, root, recursive):
        yield from _cut(folder, names, page_names)


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


def _s3_pages(fs: Any, root: str, recursive: bool, page_names: int) -> Iterator[tuple[str, list[str], bool]]:
    bucket, key, _ = fs.split_path(root)
    prefixes = [key.strip("/")]
    while prefixes:
        prefix = prefixes.pop()
        folder = posixpath.join(bucket, prefix) if prefix else bucket
        dirs: list[str] = []
        held: list[str] | None = None  # a page is yielded once the next one shows whether it was the last
        for taken in _s3_takes(fs, bucket, prefix, page_names):
            names = []
            for item in taken:
                name = item["name"].rstrip("/").rsplit("/", 1)[-1]
                if item["type"] == "directory":
                    dirs.append(name)
                elif item["name"].rstrip("/") != folder:  # not the folder's own marker object
                    names.append(name)
            if not names:
                continue
            names.sort()
            if held and names[0] < held[-1]:
                raise StorageError(
                    f"the object store listed {to_url(fs, folder)!r} out of order ({names[0]!r} after {held[-1]!r})"
                )
            if held is not None:
                yield folder, held, False
            held = names
        yield folder, held or [], True
        if recursive:
            prefixes += [f"{prefix}/{name}" if prefix else name for name in sorted(dirs, reverse=True)]


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
    if _is_s3(fs):
        bucket, key, _ = fs.split_path(folder)
        taken = next(_s3_takes(fs, bucket, key.strip("/"), limit + 1), [])
        if len(taken) > limit:
            return None
        return sorted(item["name"].rstrip("/") for item in taken if item["type"] == "directory")
    entries = fs.ls(folder, detail=True)
    if len(entries) > limit:
        return None
    return sorted(e["name"].rstrip("/") for e in entries if e.get("type") == "directory")


def is_same_or_inside(inner_url: str, outer_url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``inner_url`` is ``outer_url`` or lies below it (same filesystem, resolved paths)."""
    inner_fs, inner = open_url(inner_url, storage_options)
    outer_fs, outer = open_url(outer_url, storage_options)
    if type(inner_fs) is not type(outer_fs):
        return False
    if is_local(inner_fs):
        inner, outer = os.path.realpath(inner), os.path.realpath(outer)
    inner, outer = inner.rstrip("/"), outer.rstrip("/")
    return inner == outer or inner.startswith(outer + "/")


def is_empty_or_missing(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether nothing exists at ``url`` or it is a folder/prefix with no entries."""
    fs, path = open_url(url, storage_options)
    if not fs.exists(path):
        return True
    if not fs.isdir(path):
        return False
    return len(fs.ls(path, detail=False)) == 0
