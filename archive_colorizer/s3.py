"""S3 through s3fs with retry defaults and a count of retried requests.

Object stores throttle (``503 SlowDown``), fail now and then (``500``) and drop connections;
an archive job makes millions of requests, so some of them will. botocore retries such
requests itself when told how; :func:`with_retries` tells it, unless the user already did:

- ``mode="standard"``: retries throttling errors (503 SlowDown, 429), 500/502/503/504 answers,
  connection errors and timeouts, with exponential backoff and jitter (``rand(0, 1) *
  2**(attempt - 1)`` seconds, at most 20 s), within botocore's retry quota;
- ``total_max_attempts=10``: ten attempts in total (botocore's own default is 3 in standard
  mode, 5 in legacy mode).

On top of that s3fs tries a call up to 5 times when botocore gives up on SlowDown or a broken
connection, and aiohttp re-sends a request once when the server closed a kept-alive
connection. Users choose their own settings with the standard ``AWS_RETRY_MODE`` and
``AWS_MAX_ATTEMPTS`` variables or with the storage option ``config_kwargs: {retries: {...}}``
(botocore's ``Config(retries=...)``, in a YAML config file).

Every filesystem :func:`archive_colorizer.storage.open_url` makes for ``s3://`` is a
:class:`CountingS3FileSystem`: s3fs itself, plus a botocore ``after-call`` event handler that
adds each call's ``RetryAttempts`` to the process's count
(:func:`archive_colorizer.retries.retried_requests`, re-exported by :mod:`archive_colorizer.storage`).
This module does not import :mod:`archive_colorizer.storage`: storage imports it.

Listing speed. botocore parses every timestamp of a response with ``dateutil``, ~50 us each: a
``ListObjectsV2`` page of 1,000 keys has 1,000 ``LastModified``, ~50 ms of CPU, more than the
rest of the page's parsing. :class:`CountingS3FileSystem` gives its session's parser factory
:func:`parse_timestamp` (botocore's public ``response_parser_factory`` component,
``set_parser_defaults(timestamp_parser=...)``): the ISO 8601 form S3's XML uses through
:meth:`datetime.datetime.fromisoformat` (~1 us), anything else (HTTP dates in headers, epoch
numbers) through botocore's own parser, so the values are the same datetimes as before.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping
from typing import Any

from botocore.utils import parse_timestamp as _botocore_parse_timestamp
from fsspec.asyn import sync_wrapper
from s3fs import S3FileSystem

from archive_colorizer.retries import count_retries

logger = logging.getLogger(__name__)

S3_RETRIES = {"mode": "standard", "total_max_attempts": 10}
"""botocore retry settings for ``s3://`` URLs where the user set none (see the module docstring)."""
S3_POOL_CONNECTIONS = 64
"""botocore's connection pool per client where the user set none (botocore's default is 10): a
colorize task keeps up to ``--concurrent-requests`` (at most 64) requests in flight on one client;
connections open only when used."""


def with_retries(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` for s3fs with :data:`S3_RETRIES` filled in where the user set nothing,
    and ``max_pool_connections`` (:data:`S3_POOL_CONNECTIONS`) likewise.

    A retry mode or attempt count in ``config_kwargs["retries"]`` or in ``AWS_RETRY_MODE`` /
    ``AWS_MAX_ATTEMPTS`` wins (botocore would otherwise let the client config override the
    variables).

    Raises:
        ValueError: ``config_kwargs`` or its ``retries`` is not a mapping (e.g. typed as a
            ``--storage-option`` string); :func:`~archive_colorizer.storage.open_url` turns it
            into a :class:`~archive_colorizer.errors.StorageError`.
    """
    options = dict(storage_options or {})
    config = options.get("config_kwargs") or {}
    retries = config.get("retries") or {} if isinstance(config, Mapping) else None
    if not isinstance(retries, Mapping):
        raise ValueError(
            "storage option config_kwargs (and its retries) must be a mapping: set it in a --config YAML file"
        )
    config, retries = dict(config), dict(retries)
    if "mode" not in retries and not os.environ.get("AWS_RETRY_MODE"):
        retries["mode"] = S3_RETRIES["mode"]
    if not {"max_attempts", "total_max_attempts"} & retries.keys() and not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["total_max_attempts"] = S3_RETRIES["total_max_attempts"]
    config.setdefault("max_pool_connections", S3_POOL_CONNECTIONS)
    if retries:
        config["retries"] = retries
    options["config_kwargs"] = config
    return options


def _count_retries(parsed: Any = None, **_: Any) -> None:
    """botocore ``after-call`` handler: add the call's ``RetryAttempts`` to the process's count."""
    attempts = (parsed or {}).get("ResponseMetadata", {}).get("RetryAttempts") or 0
    if attempts:
        count_retries(attempts)
        logger.debug("an S3 request succeeded after %d retries", attempts)


def parse_timestamp(value: Any) -> _dt.datetime:
    """A response's timestamp as botocore's parser gives it (an aware datetime), faster for ISO 8601.

    ``2026-01-01T00:00:00.000Z`` (S3's XML) -> ``datetime(2026, 1, 1, tzinfo=UTC)``; other forms
    (``Thu, 01 Jan 2026 00:00:00 GMT``, epoch seconds, ISO 8601 without a time zone) go to
    :func:`botocore.utils.parse_timestamp`.

    Raises:
        ValueError: ``value`` is no timestamp (botocore's error).
    """
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return _botocore_parse_timestamp(value)


def use_fast_timestamps(session: Any) -> None:
    """Make every client of a botocore/aiobotocore ``session`` parse timestamps with :func:`parse_timestamp`.

    Clients already made pick it up too: their endpoint makes a parser from the session's factory
    for each response.
    """
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)


class CountingS3FileSystem(S3FileSystem):
    """s3fs, with the retries of every botocore client it creates counted (:func:`_count_retries`)
    and timestamps parsed fast (:func:`use_fast_timestamps`)."""

    async def set_session(self, refresh: bool = False, kwargs: dict | None = None):
        client = await super().set_session(refresh=refresh, kwargs=kwargs or {})
        if self.session is not None:
            use_fast_timestamps(self.session)
        if not getattr(client, "_archive_colorizer_counts_retries", False):
            client.meta.events.register("after-call.s3", _count_retries)
            client._archive_colorizer_counts_retries = True
        return client

    connect = sync_wrapper(set_session)
