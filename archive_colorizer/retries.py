"""This process's count of object-store requests that were retried.

:mod:`archive_colorizer.s3` adds to it (a botocore event handler on every S3 client);
:mod:`archive_colorizer.storage` re-exports :func:`retried_requests` for the jobs, which
report the difference over a run or a task. A module of its own, with no imports from the
package, so that neither of those two imports the other for it.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_retried = 0


def retried_requests() -> int:
    """Object-store requests retried in this process so far (each retry counts once)."""
    return _retried


def count_retries(attempts: int) -> None:
    """Add ``attempts`` retried requests to this process's count (thread-safe)."""
    global _retried
    with _lock:
        _retried += attempts
