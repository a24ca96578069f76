"""What to colorize: list the inputs, map each to its output, refuse what could escape OUTPUT.

The functions here are pure listing logic, run inside Ray tasks (:mod:`.listing_tasks` makes the
datasets): a listing *unit* is a folder walked recursively or one folder level's files
(:func:`plan_units` splits INPUT into units), and each folder's files become rows
(:func:`paged_folder_rows`). Every file with one of the extensions gets a row, hidden and
``_``-prefixed ones too: outputs never lie inside INPUT, so nothing there is bookkeeping.

An output mirrors its input's path relative to INPUT under OUTPUT. It keeps the input's name
when the output format matches the name's suffix (``a/b.jpg`` -> ``a/b.jpg``) and otherwise
appends the output format's suffix (``a/b.gif`` -> ``a/b.gif.png``). That appended name can be
another input's name (an input called ``a/b.gif.png``): the input whose name was extended then
gets a ``failed`` row (reason ``output_clash``) naming the other, and the one that keeps its
name is colorized; nothing is overwritten. Folder listings see both names together; for
input lists the duplicate check of :mod:`.listing_tasks` does the same by output URL.
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from archive_colorizer import folders, gates, storage
from archive_colorizer.colorize import input_lists, manifest
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


@dataclass(frozen=True)
class Roots:
    """INPUT and OUTPUT resolved once: filesystems and paths (no protocol)."""

    input_url: str
    output_url: str
    input_fs: Any
    input_path: str
    output_fs: Any
    output_path: str
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Per-key URL building without a filesystem call per key (a listing makes two per key).
        local_in = storage.is_local(self.input_fs)
        in_base = "" if local_in else storage.to_url(self.input_fs, "_").removesuffix("_")
        object.__setattr__(self, "local_input", local_in)
        object.__setattr__(self, "_input_base", in_base)
        object.__setattr__(self, "_output_base", storage.to_url(self.output_fs, storage.join(self.output_path, "")))

    local_input: bool = field(init=False, repr=False)
    _input_base: str = field(init=False, repr=False)
    _output_base: str = field(init=False, repr=False)

    def input_url_of(self, path: str) -> str:
        """The URL of ``path`` inside INPUT's filesystem (a plain path on a local disk, ``s3://bucket/key`` on S3)."""
        return path if self.local_input or path.startswith(self._input_base) else f"{self._input_base}{path}"

    def output_url_of(self, relative: str) -> str:
        """The URL of ``relative`` (a path relative to OUTPUT) under OUTPUT."""
        return self._output_base + relative

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
        return cls(
            input_url,
            output_url,
            input_fs,
            input_path.rstrip("/"),
            output_fs,
            output_path.rstrip("/"),
            dict(storage_options or {}),
        )


def output_format(relative_path: str, requested: str) -> str:
    """The output format of an input: ``requested`` (jpeg|png|tiff) or, for ``auto``, the one its suffix names.

    Suffixes other than JPEG, PNG and TIFF ones (GIF, BMP, WebP, ...) give PNG.
    """
    return _formats(posixpath.splitext(relative_path)[1], requested)[0]


def output_relative_path(relative_path: str, fmt: str) -> str:
    """The output's path relative to OUTPUT: the input's, with ``fmt``'s suffix appended if it differs."""
    if FORMAT_BY_SUFFIX.get(posixpath.splitext(relative_path)[1].lower()) == fmt:
        return relative_path
    return relative_path + SUFFIX_BY_FORMAT[fmt]


@functools.lru_cache(maxsize=256)
def _formats(suffix: str, requested: str) -> tuple[str, str]:
    """``(output format, suffix to append or "")`` of an input with ``suffix`` (a listing has few)."""
    fmt = requested.upper() if requested != "auto" else FORMAT_BY_SUFFIX.get(suffix.lower(), "PNG")
    return fmt, "" if FORMAT_BY_SUFFIX.get(suffix.lower()) == fmt else SUFFIX_BY_FORMAT[fmt]


def check_relative_path(relative_path: str) -> str | None:
    """Why ``relative_path`` cannot be mirrored under OUTPUT (``..``, ``.``, empty parts), or None if it can."""
    if not relative_path or relative_path.startswith("/"):
        return f"path {relative_path!r} is not relative to INPUT"
    parts = relative_path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"path {relative_path!r} has '.', '..' or empty parts and could escape OUTPUT"
    return None


def input_row(
    roots: Roots,
    input_path: str,
    relative_path: str | None,
    requested_format: str,
    siblings: frozenset[str] | set[str] = frozenset(),
    walked: bool = False,
) -> dict[str, Any]:
    """One listing row: pending with its output URL, or failed with the reason it cannot be mirrored.

    Args:
        siblings: names of the other inputs in the same folder (to find output name clashes).
        walked: the path comes from walking INPUT, which follows no folder link, so only the
            file itself can be a link (one ``lstat`` instead of resolving the whole path).
    """
    input_url = roots.input_url_of(input_path)
    problem = "not inside INPUT" if relative_path is None else check_relative_path(relative_path)
    if problem is None and roots.local_input and (not walked or os.path.islink(input_path)):
        if not _resolves_inside(input_path, roots.input_path):
            problem = "a symbolic link to a file outside INPUT"
    if problem is not None or relative_path is None:  # no relative path always has a problem
        return manifest.new_row(
            input_url, status=manifest.FAILED, reason="unsafe_path", error=f"{input_url}: {problem}"
        )
    fmt, appended = _formats(posixpath.splitext(relative_path)[1], requested_format)
    out_relative = relative_path + appended
    out_url = roots.output_url_of(out_relative)
    if appended and posixpath.basename(out_relative) in siblings:
        other = storage.to_url(
            roots.input_fs, posixpath.join(posixpath.dirname(input_path), posixpath.basename(out_relative))
        )
        return manifest.new_row(
            input_url, status=manifest.FAILED, reason="output_clash", error=clash_error(input_url, out_url, other)
        )
    return manifest.new_row(input_url, output_url=out_url, output_format=fmt)


def clash_error(input_url: str, output_url: str, other_input: str) -> str:
    """The error of an input whose output name another input also maps to."""
    return (
        f"{input_url}: its output {output_url} is also the output of the input {other_input}; "
        "that one keeps its name, rename this one (or choose --format) to colorize it"
    )


def _resolves_inside(path: str, root: str) -> bool:
    """Whether a local ``path``, symbolic links resolved, still lies below ``root``."""
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def _relative_to_input(roots: Roots, path: str) -> str | None:
    """``path``'s position below INPUT, or None when it is not below INPUT."""
    prefix = roots.input_path + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def clash_name(name: str, requested_format: str) -> str | None:
    """The name ``name``'s output gets when it is not ``name`` itself (``b.gif`` -> ``b.gif.png``), else None.

    An input of that name in the same folder keeps it; this one's row fails (``output_clash``).
    """
    out_name = output_relative_path(name, output_format(name, requested_format))
    return None if out_name == name else out_name


def paged_folder_rows(
    roots: Roots,
    pages: Iterator[tuple[str, list[str], bool]] | list[tuple[str, list[str], bool]],
    extensions: tuple[str, ...],
    requested_format: str,
) -> Iterator[list[dict[str, Any]]]:
    """Listing rows for pages of folder listings (:func:`archive_colorizer.folders.iter_folder_pages`),
    one list of rows per page.

    An input whose output name is another name (``b.gif`` -> ``b.gif.png``) fails when a file of
    that name is an input of the same folder. That name sorts after the input's own, so a row is
    made once the folder's pages have reached it (or the folder has ended); until then it waits
    for the next page (a page's last names, usually one or two).
    """
    waiting: list[str] = []
    for folder, names, last in pages:
        inputs = waiting + [name for name in names if name.lower().endswith(extensions)]
        reached = names[-1] if names else ""
        siblings = set(inputs)
        ready: list[str] = []
        waiting = []
        for name in inputs:
            other = clash_name(name, requested_format)
            (waiting if not last and other is not None and other > reached else ready).append(name)
        rows = []
        for name in ready:
            path = posixpath.join(folder, name)
            rows.append(
                input_row(roots, path, _relative_to_input(roots, path), requested_format, siblings, walked=True)
            )
        yield rows


def plan_units(roots: Roots, target: int = 64, max_depth: int = 3) -> list[tuple[str, bool]]:
    """Split INPUT into listing units: ``(folder, recursive)``, at least ``target`` when the tree allows.

    Expands folders breadth first (one ``LIST`` page per expanded folder) until there are
    ``target`` recursive units or ``max_depth`` levels; each expanded folder's own files make a
    non-recursive unit. A folder with more entries than one page
    (:data:`~archive_colorizer.folders.LIST_PAGE_NAMES`) is not expanded: it becomes one recursive
    unit, which its listing task reads a page at a time (planning never reads a folder of millions
    of files whole). Runs in a Ray task (:mod:`.listing_tasks`).

    Raises:
        ConfigError: INPUT does not exist or is not a folder.
        StorageError: INPUT cannot be listed.
    """
    fs = roots.input_fs
    try:
        if not folders.is_folder(fs, roots.input_path):
            raise ConfigError(f"input {roots.input_url!r} does not exist or is not a folder")
        units: list[tuple[str, bool]] = []
        frontier = [roots.input_path]
        for _ in range(max_depth):
            if len(frontier) >= target:
                break
            expanded = []
            for folder in frontier:
                subfolders = folders.list_subfolders(fs, folder)
                if subfolders is None:
                    units.append((folder, True))
                    continue
                units.append((folder, False))
                expanded += subfolders
            frontier = expanded
        return units + [(folder, True) for folder in frontier]
    except FileNotFoundError as exc:
        raise ConfigError(f"input {roots.input_url!r} does not exist") from exc
    except OSError as exc:
        raise StorageError(f"cannot list input {roots.input_url!r}: {exc}") from exc


def iter_unit_rows(
    roots: Roots,
    folder: str,
    recursive: bool,
    extensions: tuple[str, ...],
    requested_format: str,
    page_names: int = folders.LIST_PAGE_NAMES,
) -> Iterator[list[dict[str, Any]]]:
    """The rows of one listing unit, a page of a folder's listing at a time (at most ``page_names``
    names: the first rows of a folder of millions of files come after one page, not the whole folder).

    Raises:
        StorageError: the folder cannot be listed (a systemic failure: the job stops).
    """
    pages = folders.iter_folder_pages(roots.input_fs, folder, recursive, page_names)
    try:
        for page, rows in enumerate(paged_folder_rows(roots, pages, extensions, requested_format)):
            gates.hold("colorize.list", f"{folder}#{page}")
            if rows:
                yield rows
    except OSError as exc:
        raise StorageError(f"cannot list {storage.to_url(roots.input_fs, folder)!r}: {exc}") from exc


def list_entry_rows(
    roots: Roots, entries: list[Any], requested_format: str, extensions: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Listing rows for entries of an input list: URLs below INPUT or paths relative to it.

    Empty entries and ``#`` comments are dropped. An entry outside INPUT (or with ``..`` in it)
    becomes a failed row: its output could not mirror it under OUTPUT.

    Output clashes follow one rule, whatever the order of the list and in every run: an input
    whose output name is not its own name (``b.gif`` -> ``b.gif.png``) fails (``output_clash``)
    when a file of that name exists in INPUT (with one of ``extensions``; None: any), listed or
    not: that file keeps the name, as in a folder listing. One existence check (a ``HEAD`` on S3)
    per such input; inputs that keep their names cost nothing.
    """
    rows = []
    for value in entries:
        entry = str(value).strip() if value is not None else ""
        if not entry or entry.startswith("#"):
            continue
        is_url = "://" in entry or os.path.isabs(entry)
        fs, path = storage.open_url(entry if is_url else storage.join(roots.input_url, entry), roots.storage_options)
        relative = _relative_to_input(roots, path.rstrip("/")) if type(fs) is type(roots.input_fs) else None
        row = input_row(roots, path, relative, requested_format)
        if row["status"] == manifest.PENDING and relative is not None:
            _fail_if_name_taken(roots, row, relative, requested_format, extensions)
        rows.append(row)
    return rows


def _fail_if_name_taken(
    roots: Roots, row: dict[str, Any], relative: str, requested_format: str, extensions: tuple[str, ...] | None
) -> None:
    """Fail ``row`` (``output_clash``) when its output name is another file's name in INPUT."""
    other_name = clash_name(posixpath.basename(relative), requested_format)
    if other_name is None or (extensions is not None and not other_name.lower().endswith(extensions)):
        return
    other_path = storage.join(roots.input_path, posixpath.join(posixpath.dirname(relative), other_name))
    try:
        taken = roots.input_fs.isfile(other_path)
    except OSError as exc:
        raise StorageError(f"cannot check {storage.to_url(roots.input_fs, other_path)!r}: {exc}") from exc
    if taken:
        other = storage.to_url(roots.input_fs, other_path)
        manifest.fail(row, "output_clash", clash_error(row["input_url"], row["output_url"], other))


def iter_list_entries(
    list_url: str,
    storage_options: Mapping[str, Any] | None,
    input_url: str = "",
    extensions: tuple[str, ...] | None = None,
) -> Iterator[str]:
    """The entries of an input list (txt, CSV, Parquet or an S3 Inventory), streamed in one process.

    The colorize job reads lists in chunks on the cluster
    (:func:`archive_colorizer.colorize.listing_tasks.list_dataset`); this reader serves what runs in one
    process over a list (``archive-colorizer plan``), reading the same chunks one after another
    (:mod:`.input_lists`), a batch at a time.

    Raises:
        ConfigError: the list does not exist or cannot be read.
    """
    yield from input_lists.iter_entries(list_url, storage_options, input_url.rstrip("/") + "/", extensions)


def iter_from_list(
    roots: Roots, list_url: str, requested_format: str, extensions: tuple[str, ...] | None = None
) -> Iterator[dict[str, Any]]:
    """Listing rows (see :func:`list_entry_rows`) for every entry of an input list, streamed in batches
    (an S3 Inventory's keys below INPUT with one of ``extensions``)."""
    batch: list[str] = []
    for entry in iter_list_entries(list_url, roots.storage_options, roots.input_url, extensions):
        batch.append(entry)
        if len(batch) == 10_000:
            yield from list_entry_rows(roots, batch, requested_format)
            batch = []
    yield from list_entry_rows(roots, batch, requested_format)


# Key ranges: an object store's prefix listed in parallel ----------------------------------------
