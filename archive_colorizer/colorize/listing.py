"""What to colorize: list the inputs, map each to its output, refuse what could escape OUTPUT.

Inputs come from listing INPUT recursively (:func:`archive_colorizer.storage.iter_files`, one
folder at a time) or from an input list (txt, CSV or Parquet, read in batches). Each input
becomes one row of a listing table; the rows are handed to Ray Data in chunks, so the driver
holds the paths and nothing else.

An output mirrors its input's path relative to INPUT under OUTPUT. It keeps the input's name
when the output format matches the name's suffix (``a/b.jpg`` -> ``a/b.jpg``) and otherwise
appends the output format's suffix (``a/b.gif`` -> ``a/b.gif.png``), so that two inputs never
map to one output.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.colorize import manifest
from archive_colorizer.errors import ConfigError, StorageError

FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
SUFFIX_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif"}
LIST_COLUMNS = ("url", "input_url", "path")
"""Columns of a CSV or Parquet input list looked for, in this order (else the first column)."""


@dataclass(frozen=True)
class Roots:
    """INPUT and OUTPUT resolved once: filesystems and paths (no protocol)."""

    input_url: str
    output_url: str
    input_fs: Any
    input_path: str
    output_fs: Any
    output_path: str

    @classmethod
    def resolve(cls, input_url: str, output_url: str, storage_options: Mapping[str, Any] | None) -> Roots:
        """Resolve and check INPUT and OUTPUT.

        Raises:
            ConfigError: OUTPUT is INPUT, lies inside it, or contains it (outputs could then
                overwrite inputs).
        """
        if storage.is_same_or_inside(output_url, input_url, storage_options):
            raise ConfigError(
                f"output {output_url!r} is the input {input_url!r} or inside it; choose an OUTPUT outside INPUT"
            )
        if storage.is_same_or_inside(input_url, output_url, storage_options):
            raise ConfigError(
                f"input {input_url!r} lies inside the output {output_url!r}; outputs could overwrite inputs"
            )
        input_fs, input_path = storage.open_url(input_url, storage_options)
        output_fs, output_path = storage.open_url(output_url, storage_options)
        return cls(input_url, output_url, input_fs, input_path.rstrip("/"), output_fs, output_path.rstrip("/"))


def output_format(relative_path: str, requested: str) -> str:
    """The output format of an input: ``requested`` (jpeg|png|tiff) or, for ``auto``, the one its suffix names.

    Suffixes other than JPEG, PNG and TIFF ones (GIF, BMP, WebP, ...) give PNG.
    """
    if requested != "auto":
        return requested.upper()
    return FORMAT_BY_SUFFIX.get(posixpath.splitext(relative_path)[1].lower(), "PNG")


def output_relative_path(relative_path: str, fmt: str) -> str:
    """The output's path relative to OUTPUT: the input's, with ``fmt``'s suffix appended if it differs."""
    if FORMAT_BY_SUFFIX.get(posixpath.splitext(relative_path)[1].lower()) == fmt:
        return relative_path
    return relative_path + SUFFIX_BY_FORMAT[fmt]


def check_relative_path(relative_path: str) -> str | None:
    """Why ``relative_path`` cannot be mirrored under OUTPUT (``..``, ``.``, empty parts), or None if it can."""
    if not relative_path or relative_path.startswith("/"):
        return f"path {relative_path!r} is not relative to INPUT"
    parts = relative_path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"path {relative_path!r} has '.', '..' or empty parts and could escape OUTPUT"
    return None


def _row(roots: Roots, input_path: str, relative_path: str | None, requested_format: str) -> dict[str, Any]:
    """One listing row: pending with its output URL, or failed with the reason it cannot be mirrored."""
    input_url = storage.to_url(roots.input_fs, input_path)
    problem = "not inside INPUT" if relative_path is None else check_relative_path(relative_path)
    if problem is None and storage.is_local(roots.input_fs) and not _resolves_inside(input_path, roots.input_path):
        problem = "a symbolic link to a file outside INPUT"
    if problem is not None or relative_path is None:
        return manifest.new_row(
            input_url, status=manifest.FAILED, reason="unsafe_path", error=f"{input_url}: {problem}"
        )
    fmt = output_format(relative_path, requested_format)
    out_path = storage.join(roots.output_path, output_relative_path(relative_path, fmt))
    return manifest.new_row(input_url, output_url=storage.to_url(roots.output_fs, out_path), output_format=fmt)


def _resolves_inside(path: str, root: str) -> bool:
    """Whether a local ``path``, symbolic links resolved, still lies below ``root``."""
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def _relative_to_input(roots: Roots, path: str) -> str | None:
    """``path``'s position below INPUT, or None when it is not below INPUT."""
    prefix = roots.input_path + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def iter_listed(roots: Roots, extensions: tuple[str, ...], requested_format: str) -> Iterator[dict[str, Any]]:
    """Listing rows for every file below INPUT with one of ``extensions`` (walked folder by folder)."""
    try:
        for path in storage.iter_files(roots.input_fs, roots.input_path, extensions):
            yield _row(roots, path, _relative_to_input(roots, path), requested_format)
    except FileNotFoundError as exc:
        raise ConfigError(f"input {roots.input_url!r} does not exist") from exc
    except OSError as exc:
        raise StorageError(f"cannot list input {roots.input_url!r}: {exc}") from exc


def _iter_list_entries(list_url: str, storage_options: Mapping[str, Any] | None) -> Iterator[str]:
    """The entries of an input list file, streamed in batches (txt, CSV or Parquet)."""
    fs, path = storage.open_url(list_url, storage_options)
    suffix = posixpath.splitext(path)[1].lower()
    try:
        with fs.open(path, "rb") as handle:
            if suffix == ".parquet":
                parquet = pq.ParquetFile(handle)
                column = _pick_column(parquet.schema_arrow.names, list_url)
                for batch in parquet.iter_batches(columns=[column], batch_size=10_000):
                    yield from (str(v) for v in batch.column(0).to_pylist() if v)
            elif suffix == ".csv":
                reader = pyarrow.csv.open_csv(handle)
                column = _pick_column(reader.schema.names, list_url)
                for batch in reader:
                    yield from (str(v) for v in batch.column(column).to_pylist() if v)
            else:
                for line in io.TextIOWrapper(handle, encoding="utf-8"):
                    line = line.strip()
                    if line and not line.startswith("#"):
                        yield line
    except FileNotFoundError as exc:
        raise ConfigError(f"input list {list_url!r} does not exist") from exc
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read input list {list_url!r}: {exc}") from exc


def _pick_column(names: list[str], list_url: str) -> str:
    for name in LIST_COLUMNS:
        if name in names:
            return name
    if not names:
        raise ConfigError(f"input list {list_url!r} has no columns")
    return names[0]


def iter_from_list(
    roots: Roots, list_url: str, requested_format: str, storage_options: Mapping[str, Any] | None
) -> Iterator[dict[str, Any]]:
    """Listing rows for the entries of an input list: URLs below INPUT or paths relative to it.

    An entry outside INPUT (or with ``..`` in it) becomes a failed row: its output could not
    mirror it under OUTPUT.
    """
    for entry in _iter_list_entries(list_url, storage_options):
        is_url = "://" in entry or os.path.isabs(entry)
        fs, path = storage.open_url(entry if is_url else storage.join(roots.input_url, entry), storage_options)
        relative = _relative_to_input(roots, path.rstrip("/")) if type(fs) is type(roots.input_fs) else None
        yield _row(roots, path, relative, requested_format)
