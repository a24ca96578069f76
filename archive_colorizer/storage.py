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
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.core import split_protocol

from archive_colorizer.errors import StorageError
from archive_colorizer.lazy import moved
from archive_colorizer.retries import count_retries, retried_requests

__all__ = [
    "StorageError",
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
    """Read a whole file (on S3 with one ``GET``, no ``HEAD``); HTTP(S) GETs are tried up to
    :data:`HTTP_ATTEMPTS` times on transient errors.

    An HTTP retry waits 0.5, 1, 2 s and counts in :func:`retried_requests`, as S3's do.

    Raises:
        FileNotFoundError: the file does not exist (message names the URL; an HTTP 404).
        StorageError: any other read failure (an HTTP status or connection error after its tries).
    """
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    http = "http" in protocols
    # s3fs asks for the size (a HEAD) before every whole-object read, to fetch large objects in
    # concurrent ranges: one more round trip per input. One GET instead; a task reads several
    # inputs at once (colorize.overlap), so a node's connections stay busy without ranges.
    options = {"max_concurrency": 1} if any(p in S3_PROTOCOLS for p in protocols) else {}
    for attempt in range(1, HTTP_ATTEMPTS + 1):
        try:
            return fs.cat_file(path, **options)
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


__getattr__ = moved(
    __name__,
    {
        name: "archive_colorizer.folders"
        for name in (
            "iter_files",
            "iter_files_with_sizes",
            "iter_folder_pages",
            "list_subfolders",
            "LIST_PAGE_NAMES",
            "is_empty_or_missing",
        )
    },
)
"""The listing functions moved to :mod:`archive_colorizer.folders`: importable from here for one release."""
