"""fsspec helpers: every path in the project is a URL.

A bare path is local; ``s3://`` goes through s3fs (endpoint and credentials from the standard
AWS variables such as ``AWS_ENDPOINT_URL`` or from storage options); any other protocol works
where its fsspec driver is installed. Nothing here hard-codes an endpoint or a credential.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from archive_colorizer.errors import StorageError

__all__ = [
    "StorageError",
    "iter_files",
    "is_empty_or_missing",
    "is_local",
    "is_same_or_inside",
    "join",
    "open_url",
    "read_bytes",
    "to_url",
    "write_bytes",
]


def open_url(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """Resolve ``url`` to ``(filesystem, path)``.

    Args:
        url: a local path (relative or absolute) or an fsspec URL such as ``s3://bucket/prefix``.
        storage_options: keyword arguments for the filesystem (e.g. ``{"endpoint_url": ...}``
            for s3fs); ``None`` means the driver's defaults and the environment.

    Returns:
        The fsspec filesystem and the path inside it (no protocol; absolute for local paths).

    Raises:
        StorageError: the protocol has no installed driver.
    """
    try:
        fs, path = url_to_fs(url, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise StorageError(f"cannot open {url!r}: {exc}") from exc
    return fs, path


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


def write_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file.

    Local files are written under a temporary name in the same folder and renamed into place
    (``os.replace`` is atomic on POSIX). Object stores (s3, gcs, az, memory) store an object
    whole or not at all, so they are written directly.

    Raises:
        StorageError: the write failed; the message names the path.
    """
    try:
        if is_local(fs):
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        else:
            fs.pipe_file(path, data)
    except OSError as exc:
        raise StorageError(f"cannot write {to_url(fs, path)!r}: {exc}") from exc


def read_bytes(fs: fsspec.AbstractFileSystem, path: str) -> bytes:
    """Read a whole file.

    Raises:
        FileNotFoundError: the file does not exist (message names the URL).
        StorageError: any other read failure.
    """
    try:
        return fs.cat_file(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no such file: {to_url(fs, path)!r}") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {to_url(fs, path)!r}: {exc}") from exc


def iter_files(fs: fsspec.AbstractFileSystem, root: str, extensions: tuple[str, ...] | None = None) -> Iterator[str]:
    """Yield the paths of the files below ``root``, recursively, in sorted order per folder.

    Walks one folder at a time (``fs.walk``), so memory holds one folder's listing, not the
    whole tree. Hidden files and folders (name starting with ``.``) and ``_``-prefixed
    bookkeeping folders such as ``_manifest`` are skipped. Symbolic links on a local
    filesystem are not followed.

    Args:
        extensions: lower-case suffixes with the dot (``(".jpg", ".png")``); ``None`` keeps all.
    """
    for folder, dirs, files in fs.walk(root, detail=False, topdown=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        if is_local(fs):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in sorted(files):
            if name.startswith("."):
                continue
            if extensions is not None and not name.lower().endswith(extensions):
                continue
            yield posixpath.join(folder, name)


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
