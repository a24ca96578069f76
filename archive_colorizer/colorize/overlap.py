"""A colorize task's storage requests kept in flight together: inputs read ahead, outputs written behind.

On an object store every request waits a round trip before its first byte (S3: 10-100 ms for a
``GET`` or ``PUT``, more across regions). A task that reads, decodes, predicts, encodes and writes
its batch one input after another waits that long two or three times per input, while its
core idles: with the tiny generator a 1.7 MP scan is about 12 ms of CPU, so a GPU node's cores
would spend most of their time waiting on the bucket. :class:`Requests` runs a task's reads (and
the existence checks of a re-run) ahead of the input being worked on, and its writes behind it,
on a small thread pool (the requests wait on the network and release the GIL), so that the
waits overlap each other and the CPU work.

Order, failures and memory stay as in a task that works one input after another:

- :meth:`Requests.ahead` hands the inputs back in their order; a read's error is raised where the
  task asks for that input's bytes, so it fails that input alone.
- :meth:`Requests.behind` reports each write's outcome (``done``) on the task's own thread, in
  the order of submission, and :meth:`Requests.drain` waits for all of them: a row is final (and
  reaches the manifest) only after its output exists.
- Bytes read but not yet worked on, and encoded outputs not yet written, stay under
  ``max_bytes`` (:data:`MAX_BYTES`): a read starts only while the bytes held plus the reads in
  flight (each counted at the largest input seen so far) fit, and a write waits for older ones
  while the outputs in flight exceed it. One request is always allowed, however large.

With ``concurrency`` 1 nothing runs on another thread: each request runs where it is needed, one
after another. The jobs choose 1 on the local file system (:func:`concurrency_for`), where a read
from the page cache costs less than handing it to a thread.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from archive_colorizer import storage

T = TypeVar("T")

CONCURRENT_REQUESTS = 8
"""Storage requests a colorize task keeps in flight by default (``--concurrent-requests``)."""
MAX_CONCURRENT_REQUESTS = 64
"""The most ``--concurrent-requests`` may ask for (:data:`archive_colorizer.s3.S3_POOL_CONNECTIONS` connections)."""
MAX_BYTES = 256 * 2**20
"""Bytes a task holds read ahead or waiting to be written (256 MiB); one request is always allowed."""
FIRST_READS = 2
"""Reads in flight before the first one has finished (the inputs' sizes are not known yet)."""


def concurrency_for(urls: Iterable[str | None], concurrent_requests: int, storage_options: dict[str, Any]) -> int:
    """How many requests a task keeps in flight: ``concurrent_requests`` when any of ``urls`` (an
    input's, the output folder's) is not on the local file system, else 1.

    Raises:
        ValueError: ``concurrent_requests`` is below 1.
    """
    if concurrent_requests < 1:
        raise ValueError(f"concurrent_requests must be at least 1, got {concurrent_requests}")
    for url in urls:
        if url and not storage.is_local(storage.open_url(url, storage_options)[0]):
            return concurrent_requests
    return 1


class _Write:
    """One write in flight: its future, its size and its callback."""

    def __init__(self, future: Future[None], size: int, done: Callable[[BaseException | None], None]) -> None:
        self.future, self.size, self.done = future, size, done


class Requests(Generic[T]):
    """A task's reads ahead and writes behind, on at most ``concurrency`` threads (none when 1).

    Use it as a context manager: leaving it waits for every write (:meth:`drain`) and stops the
    threads; an error leaving the block still waits for the writes, and their ``done`` callbacks
    still run.

    Args:
        concurrency: requests in flight at once (reads and writes together share the threads).
        max_bytes: bytes held read ahead or waiting to be written (see the module's docstring).

    Raises:
        ValueError: ``concurrency`` below 1 or ``max_bytes`` below 0.
    """

    def __init__(self, concurrency: int, max_bytes: int = MAX_BYTES) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.concurrency = concurrency
        self.max_bytes = max_bytes
        self._pool = ThreadPoolExecutor(concurrency, "storage") if concurrency > 1 else None
        self._writes: collections.deque[_Write] = collections.deque()
        self._written_bytes = 0

    @classmethod
    def for_urls(
        cls, urls: Iterable[str | None], concurrent_requests: int, storage_options: dict[str, Any]
    ) -> Requests[T]:
        """Requests with the concurrency :func:`concurrency_for` gives ``urls`` (an input's, OUTPUT)."""
        return cls(concurrency_for(urls, concurrent_requests, storage_options))

    def __enter__(self) -> Requests[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def ahead(
        self, items: Iterable[T], read: Callable[[T], bytes | None]
    ) -> Iterator[tuple[T, Callable[[], bytes | None]]]:
        """``(item, get)`` for each of ``items`` in order, its ``read`` started ahead of time.

        ``get()`` returns what ``read(item)`` returned (the input's bytes, or None when there is
        nothing to read), or raises what it raised. Later items' reads start while the caller
        works on this one, within the limits above; with ``concurrency`` 1, ``get`` calls
        ``read`` itself. Bytes an item's read returned count as held until the caller asks for
        the next item.
        """
        if self._pool is None:
            for item in items:
                yield item, functools.partial(read, item)
            return
        waiting: collections.deque[tuple[T, Future[bytes | None]]] = collections.deque()
        source = iter(items)
        upcoming = next(source, _END)
        held = largest = 0
        while waiting or upcoming is not _END:
            while upcoming is not _END and self._may_read(len(waiting), held, largest):
                waiting.append((upcoming, self._pool.submit(read, upcoming)))
                upcoming = next(source, _END)
            item, future = waiting.popleft()
            size = _size(future)  # waits for this item's read
            largest, held = max(largest, size), held + size
            yield item, future.result
            held -= size

    def _may_read(self, in_flight: int, held: int, largest: int) -> bool:
        """Whether another read may start with ``in_flight`` reads running and ``held`` bytes read."""
        if in_flight == 0:
            return True
        if in_flight >= self.concurrency or (largest == 0 and in_flight >= FIRST_READS):
            return False
        return held + (in_flight + 1) * largest <= self.max_bytes

    def behind(self, write: Callable[[], None], size: int, done: Callable[[BaseException | None], None]) -> None:
        """Run ``write`` (``size`` bytes) behind the caller; ``done(error or None)`` runs on the caller's thread.

        With ``concurrency`` 1, ``write`` and ``done`` run at once. Otherwise the oldest writes
        finish first (their ``done`` called) while ``concurrency`` writes are in flight or the
        bytes waiting to be written would pass ``max_bytes``; the rest finish in :meth:`drain`.
        ``done`` gets any :class:`Exception` ``write`` raised (others propagate).
        """
        if self._pool is None:
            done(_outcome(write))
            return
        while self._writes and (len(self._writes) >= self.concurrency or self._written_bytes + size > self.max_bytes):
            self._finish_oldest()
        self._writes.append(_Write(self._pool.submit(write), size, done))
        self._written_bytes += size

    def drain(self) -> None:
        """Wait for every write submitted, calling their ``done`` callbacks in order."""
        while self._writes:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        write = self._writes.popleft()
        self._written_bytes -= write.size
        error = write.future.exception()
        if error is not None and not isinstance(error, Exception):
            raise error
        write.done(error)


_END: Any = object()


def _size(future: Future[bytes | None]) -> int:
    """Bytes the finished read holds (0 for an error or None)."""
    if future.exception() is not None:
        return 0
    result = future.result()
    return len(result) if result is not None else 0


def _outcome(write: Callable[[], None]) -> Exception | None:
    try:
        write()
    except Exception as exc:  # handed to ``done``, as a write behind would be
        return exc
    return None
