"""An S3 prefix of any layout cut into key ranges, each listed by its own task: split keys, ranges, their rows.

A prefix (a tree, 100k prefixes or one flat prefix of 100M keys alike) is one key space listed
without a delimiter and cut into ranges ``(after, last]`` at real keys, sampled with one-key
``LIST`` probes (``StartAfter``) at evenly spaced positions, needing no knowledge of the names
(:func:`plan_ranges`, :func:`sample_split_points`); a resumed run cuts at its resume index's split
keys instead. :func:`iter_range_rows` lists one range a page at a time, and reads on past its end
while an input's clashing name (its key plus a suffix, which sorts after it) may still follow.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archive_colorizer import folders, gates, storage
from archive_colorizer.colorize import input_rows
from archive_colorizer.errors import StorageError

RANGE_FANOUT = 16
"""Positions probed per interval and round when sampling split points (:func:`sample_split_points`)."""
_FIRST_CHAR, _DIGITS = 0x20, 95
"""Split positions are written in printable ASCII (`` `` to ``~``, 95 digits): valid in any request."""


@dataclass(frozen=True)
class KeyRange:
    """Keys ``k`` of an object-store prefix with ``after < k <= last`` (None: unbounded on that side).

    A prefix cut at real keys ``p1 < p2 < ... < pn`` gives ranges ``(None, p1], (p1, p2], ...,
    (pn, None)``: each key lies in exactly one, whatever the keys are.
    """

    after: str | None
    last: str | None

    def label(self, prefix: str) -> str:
        """The range's name: its prefix and bounds (the progress actor's unit, the hold point's key)."""
        return f"{prefix}({self.after or ''},{self.last or ''}]"


def ranges_from_points(points: list[str]) -> list[KeyRange]:
    """The ranges that sorted, distinct split keys ``points`` cut a prefix into (``len(points) + 1`` ranges)."""
    bounds: list[str | None] = [None, *points, None]
    return [KeyRange(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _position_digits(text: str, start: int, width: int) -> int:
    """``text[start:start + width]`` as a base-95 number (characters clamped to printable ASCII, padded)."""
    value = 0
    for i in range(width):
        code = ord(text[start + i]) - _FIRST_CHAR if start + i < len(text) else 0
        value = value * _DIGITS + min(max(code, 0), _DIGITS - 1)
    return value


def _positions_between(low: str, high: str | None, prefix: str, count: int) -> list[str]:
    """Up to ``count - 1`` strings evenly spaced (in byte order) strictly between ``low`` and ``high``.

    ``high`` None is the end of ``prefix``. The strings share ``low``'s and ``high``'s common prefix;
    past it they are base-95 numbers of printable ASCII, as fine as needed to fit ``count`` apart.
    """
    common = os.path.commonprefix([low, high]) if high is not None else prefix
    for width in (8, 16, 32, 64):
        lower = _position_digits(low, len(common), width)
        upper = _DIGITS**width if high is None else _position_digits(high, len(common), width)
        if upper - lower > count:
            break
    else:
        return []
    out = []
    for i in range(1, count):
        value, chars = lower + (upper - lower) * i // count, []
        for _ in range(width):
            value, digit = divmod(value, _DIGITS)
            chars.append(chr(_FIRST_CHAR + digit))
        position = common + "".join(reversed(chars))
        if position > low and (high is None or position < high):
            out.append(position)
    return out


def sample_split_points(
    first_after: Any, prefix: str, count: int, fanout: int = RANGE_FANOUT, max_rounds: int = 48
) -> list[str]:
    """Up to ``count`` real keys below ``prefix``, spread over its keys, found with no knowledge of the names.

    Round by round, every interval of the key space known to hold keys is cut at ``fanout``
    evenly spaced positions and each position probed: ``first_after(positions)`` answers, for
    each, the first key after it (one ``LIST`` of one key with ``StartAfter``; all of a round's
    probes at once). A probe whose key lies before the next position shows that part holds keys:
    the key is a split point and the part ``(key, next position)`` is cut in the next round.
    Parts without keys are dropped, so the rounds close in on where the keys are (about two
    rounds per character the keys share) and then spread over them.

    Args:
        first_after: ``list[str] -> list[str | None]``, the first key ``> position`` below ``prefix``
            for each position (None: none).
        prefix: every key starts with it.
        count: split points wanted (``count + 1`` ranges).

    Returns:
        Sorted distinct keys (fewer when the prefix holds fewer keys or ``max_rounds`` ran out).
    """
    frontier: list[tuple[str, str | None]] = [(prefix, None)]
    points: set[str] = set()
    for _ in range(max_rounds):
        if not frontier or len(points) >= count:
            break
        cuts = [[low, *_positions_between(low, high, prefix, fanout)] for low, high in frontier]
        answers = iter(first_after([position for bounds in cuts for position in bounds]))
        found: list[tuple[str, str | None]] = []
        for bounds, (low, high) in zip(cuts, frontier, strict=True):
            for upper in [*bounds[1:], high]:  # the part from each probed position to the next
                key = next(answers)
                if key is not None and key > low and (upper is None or key < upper):
                    points.add(key)
                    found.append((key, upper))
        # Keep the probes of a round bounded: a spread of intervals serves as well as all of them.
        step = max(1, len(found) // max(1, 4 * count // fanout))
        frontier = found[::step]
    chosen = sorted(points)
    if len(chosen) > count:
        chosen = [chosen[(i * len(chosen)) // count] for i in range(count)]
    return chosen


def _is_input_key(key: str, extensions: tuple[str, ...]) -> bool:
    return not key.endswith("/") and key.lower().endswith(extensions)


def range_rows(
    roots: input_rows.Roots,
    bucket: str,
    prefix: str,
    pages: Any,
    key_range: KeyRange,
    extensions: tuple[str, ...],
    requested_format: str,
) -> Iterator[list[dict[str, Any]]]:
    """Listing rows of one key range, a page at a time, from ``pages`` of sorted keys that start
    after ``key_range.after`` (an object store's listing without delimiter, :func:`iter_range_rows`).

    Output clashes (``b.gif`` -> ``b.gif.png``) are found across pages and across ranges: the
    clashing name is ``b.gif`` plus a suffix, so it sorts after it; an input waits until the
    pages have passed that name, and a range whose last inputs still wait reads on past its end
    (those pages' keys belong to the next range and get no row here) until they are decided.
    The input that keeps its name is colorized wherever it lies; the other fails ``output_clash``.
    """
    waiting: list[str] = []
    last = key_range.last
    for keys in pages:
        if not keys:
            continue
        seen = {key for key in keys if _is_input_key(key, extensions)}
        mine = [key for key in keys if (last is None or key <= last) and key in seen]
        reached, decided, still = keys[-1], [], []
        for key in waiting + mine:
            other = _clash_key(key, requested_format)
            if other is not None and other not in seen and other > reached:
                still.append(key)
            else:
                decided.append((key, other is not None and other in seen))
        waiting = still
        yield [_key_row(roots, bucket, prefix, key, clash, requested_format) for key, clash in decided]
        if last is not None and reached > last and not waiting:
            return
    yield [_key_row(roots, bucket, prefix, key, False, requested_format) for key in waiting]


def _clash_key(key: str, requested_format: str) -> str | None:
    folder, _, name = key.rpartition("/")
    other = input_rows.clash_name(name, requested_format)
    return None if other is None else (f"{folder}/{other}" if folder or key.startswith("/") else other)


def _key_row(
    roots: input_rows.Roots, bucket: str, prefix: str, key: str, clash: bool, requested_format: str
) -> dict[str, Any]:
    relative = key[len(prefix) :]
    other_name = input_rows.clash_name(posixpath.basename(key), requested_format) if clash else None
    siblings = frozenset([other_name]) if other_name else frozenset()
    return input_rows.input_row(roots, f"{bucket}/{key}", relative, requested_format, siblings, walked=True)


def s3_location(roots: input_rows.Roots) -> tuple[str, str]:
    """INPUT on S3 as ``(bucket, key prefix ending in "/")`` (``("", "")``-free: INPUT is a folder)."""
    bucket, key, _ = roots.input_fs.split_path(roots.input_path)
    key = key.strip("/")
    return bucket, f"{key}/" if key else ""


def plan_ranges(roots: input_rows.Roots, target: int, page_names: int = folders.LIST_PAGE_NAMES) -> list[KeyRange]:
    """Cut INPUT on S3 into about ``target`` key ranges (all keys below it, any depth, no delimiter).

    One ``LIST`` page first: a prefix that fits in one page is one range. Otherwise split points
    are sampled (:func:`sample_split_points`, ``LIST`` probes of one key, 16 at a time), which
    needs nothing known of the names and costs about two rounds per character the keys share
    plus one per doubling of the ranges (a few hundred probes for a 100M-key prefix).

    Raises:
        StorageError: INPUT cannot be listed.
    """
    bucket, prefix = s3_location(roots)
    try:
        first = next(folders.iter_s3_keys(roots.input_fs, bucket, prefix, None, page_names), [])
        if target <= 1 or len(first) < page_names:
            return [KeyRange(None, None)]

        def first_after(positions: list[str]) -> list[str | None]:
            return folders.first_s3_keys_after(roots.input_fs, bucket, prefix, positions)

        return ranges_from_points(sample_split_points(first_after, prefix, target - 1))
    except OSError as exc:
        raise StorageError(f"cannot list input {roots.input_url!r}: {exc}") from exc


def iter_range_rows(
    roots: input_rows.Roots,
    key_range: KeyRange,
    extensions: tuple[str, ...],
    requested_format: str,
    page_names: int = folders.LIST_PAGE_NAMES,
) -> Iterator[list[dict[str, Any]]]:
    """The rows of one key range of INPUT on S3, a ``LIST`` page (``StartAfter``, no delimiter) at a time.

    Hold point ``colorize.list`` with key ``<range label>#<page>`` before each page's rows leave.

    Raises:
        StorageError: the range cannot be listed (a systemic failure: the job stops).
    """
    bucket, prefix = s3_location(roots)
    pages = folders.iter_s3_keys(roots.input_fs, bucket, prefix, key_range.after, page_names)
    label = key_range.label(storage.to_url(roots.input_fs, f"{bucket}/{prefix}"))
    try:
        for page, rows in enumerate(range_rows(roots, bucket, prefix, pages, key_range, extensions, requested_format)):
            gates.hold("colorize.list", f"{label}#{page}")
            if rows:
                yield rows
    except OSError as exc:
        raise StorageError(f"cannot list {label!r}: {exc}") from exc
