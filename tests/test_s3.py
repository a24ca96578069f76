"""S3 retry defaults and retry counting, against a real S3 API (moto) behind a flaky proxy."""

from __future__ import annotations

import datetime as dt

import pytest

from archive_colorizer import s3, storage


def test_s3_urls_get_standard_retries_with_ten_attempts(moto_server, monkeypatch):
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    fs, path = storage.open_url("s3://bucket-a/photos", {"endpoint_url": moto_server})
    assert isinstance(fs, s3.CountingS3FileSystem) and path == "bucket-a/photos"
    assert fs.config_kwargs["retries"] == {"mode": "standard", "total_max_attempts": 10}
    assert fs.config_kwargs["max_pool_connections"] == 64  # a task's requests in flight never wait for a connection
    assert fs.endpoint_url == moto_server


def test_retry_settings_chosen_by_the_user_win(monkeypatch):
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    chosen = s3.with_retries({"config_kwargs": {"retries": {"mode": "adaptive"}, "read_timeout": 30}})
    # botocore lets a client config override the variables: so the count is left to AWS_MAX_ATTEMPTS.
    assert chosen["config_kwargs"] == {"retries": {"mode": "adaptive"}, "read_timeout": 30, "max_pool_connections": 64}
    assert s3.with_retries({"config_kwargs": {"max_pool_connections": 5}})["config_kwargs"]["max_pool_connections"] == 5
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    assert s3.with_retries({"config_kwargs": {"retries": {"max_attempts": 2}}})["config_kwargs"]["retries"] == {
        "max_attempts": 2,
        "mode": "standard",
    }
    assert not isinstance(storage.open_url("/tmp/x")[0], s3.CountingS3FileSystem)  # local paths are left alone
    with pytest.raises(storage.StorageError, match="config_kwargs .* must be a mapping"):
        storage.open_url("s3://bucket-a/x", {"config_kwargs": "{retries: {max_attempts: 3}}"})  # typed as a string


def test_timestamps_parse_as_botocores_parser_parses_them():
    from botocore.utils import parse_timestamp

    values = [
        "2026-01-01T00:00:00.000Z",  # S3's XML (LastModified of a listing)
        "2026-03-04T05:06:07.891Z",
        "2026-03-04T05:06:07+02:00",
        "2026-03-04T05:06:07",  # no time zone: botocore's local time
        "Wed, 04 Mar 2026 05:06:07 GMT",  # HTTP headers (HeadObject's Last-Modified)
        "1767225600",
        1767225600,
    ]
    for value in values:
        ours, theirs = s3.parse_timestamp(value), parse_timestamp(value)
        assert ours == theirs and ours.utcoffset() == theirs.utcoffset(), value
    with pytest.raises(ValueError):
        s3.parse_timestamp("2026-13-45T00:00:00Z")


def test_listings_parse_their_timestamps_with_the_fast_parser(s3_bucket, monkeypatch):
    import botocore.parsers
    from botocore.utils import parse_timestamp

    bucket, options = s3_bucket
    ours, slow, default = [], [], []
    fast = s3.parse_timestamp
    monkeypatch.setattr(s3, "parse_timestamp", lambda value: ours.append(value) or fast(value))
    monkeypatch.setattr(s3, "_botocore_parse_timestamp", lambda value: slow.append(value) or parse_timestamp(value))
    monkeypatch.setattr(botocore.parsers, "DEFAULT_TIMESTAMP_PARSER", lambda value: default.append(value))
    fs, root = storage.open_url(bucket, {**options, "skip_instance_cache": True})
    fs.pipe_file(f"{root}/a.jpg", b"x")
    answer = fs.call_s3("list_objects_v2", Bucket=root, Prefix="")
    modified = answer["Contents"][0]["LastModified"]
    assert ours and not slow and not default  # ISO 8601 through fromisoformat: never botocore's parser
    assert modified == parse_timestamp(ours[-1]) and modified.utcoffset() == dt.timedelta(0)


def test_reads_and_writes_through_a_flaky_endpoint_lose_nothing_and_count_their_retries(s3_bucket, flaky_s3):
    bucket, _ = s3_bucket
    flaky_s3.reset(fault_rate=0.3, seed=3)
    assert flaky_s3.endpoint_url.startswith("http://127.0.0.1:")
    fs, root = storage.open_url(bucket, {"endpoint_url": flaky_s3.endpoint_url})
    before = storage.retried_requests()
    payloads = {f"{root}/object-{i}.bin": bytes([i]) * (1000 + i) for i in range(8)}
    for path, data in payloads.items():
        storage.write_bytes(fs, path, data)
    assert {path: storage.read_bytes(fs, path) for path in payloads} == payloads
    retried = storage.retried_requests() - before
    # Every 503/500 the proxy sent was retried by botocore; a dropped kept-alive connection
    # may be re-sent by aiohttp instead, unseen by botocore.
    answered_with_errors = flaky_s3.counts["slow_down"] + flaky_s3.counts["internal_error"]
    assert answered_with_errors > 0
    assert answered_with_errors <= retried <= flaky_s3.faults


def test_reading_an_object_whole_is_one_get_and_no_head(s3_bucket, flaky_s3):
    """s3fs asks for the size (HEAD) before a whole-object read unless told to read in one GET."""
    bucket, _ = s3_bucket
    flaky_s3.reset(fault_rate=0.0)
    fs, root = storage.open_url(bucket, {"endpoint_url": flaky_s3.endpoint_url})
    storage.write_bytes(fs, f"{root}/scan.jpg", b"\xff\xd8" + bytes(range(256)) * 40)
    flaky_s3.reset(fault_rate=0.0)
    assert storage.read_bytes(fs, f"{root}/scan.jpg") == b"\xff\xd8" + bytes(range(256)) * 40
    assert flaky_s3.counts["requests"] == 1


def test_the_flaky_proxy_forwards_only_to_this_machine():
    from tests.flaky_s3 import FlakyS3Proxy

    with pytest.raises(ValueError, match="127.0.0.1"):
        FlakyS3Proxy("http://s3.amazonaws.com")
