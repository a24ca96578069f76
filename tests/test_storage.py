"""fsspec helpers on local paths, memory:// and a real S3 API (moto server)."""

from __future__ import annotations

import os

import pytest

from archive_colorizer import storage


def test_write_bytes_is_atomic_and_leaves_no_temporary_files(tmp_path):
    fs, path = storage.open_url(str(tmp_path / "a" / "b.bin"))
    storage.write_bytes(fs, path, b"first")
    storage.write_bytes(fs, path, b"second")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"second"
    assert os.listdir(tmp_path / "a") == ["b.bin"]


def test_write_failure_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    fs, path = storage.open_url(str(blocker / "child.bin"))
    with pytest.raises(storage.StorageError, match="child.bin"):
        storage.write_bytes(fs, path, b"data")


def test_iter_files_recurses_filters_and_skips_hidden(tmp_path):
    for rel in ["b.jpg", "a/c.PNG", "a/d.txt", ".hidden.jpg", "_manifest/x.jpg", "a/.cache/e.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    fs, root = storage.open_url(str(tmp_path))
    found = [os.path.relpath(p, tmp_path) for p in storage.iter_files(fs, root, (".jpg", ".png"))]
    assert found == ["b.jpg", "a/c.PNG"]


def test_is_same_or_inside(tmp_path):
    assert storage.is_same_or_inside(str(tmp_path / "in" / "out"), str(tmp_path / "in"))
    assert storage.is_same_or_inside(str(tmp_path / "in"), str(tmp_path / "in/"))
    assert not storage.is_same_or_inside(str(tmp_path / "input2"), str(tmp_path / "input"))
    assert storage.is_same_or_inside("s3://b/photos/out", "s3://b/photos")
    assert not storage.is_same_or_inside("s3://b/photos-out", "s3://b/photos")


def test_s3_write_read_and_list_through_a_real_s3_api(s3_bucket):
    bucket, options = s3_bucket
    fs, root = storage.open_url(bucket, options)
    storage.write_bytes(fs, f"{root}/photos/one.jpg", b"1")
    storage.write_bytes(fs, f"{root}/photos/sub/two.jpg", b"22")
    assert storage.read_bytes(fs, f"{root}/photos/sub/two.jpg") == b"22"
    assert [storage.to_url(fs, p) for p in storage.iter_files(fs, f"{root}/photos")] == [
        f"{bucket}/photos/one.jpg",
        f"{bucket}/photos/sub/two.jpg",
    ]
    assert storage.is_empty_or_missing(f"{bucket}/nothing", options)
    assert not storage.is_empty_or_missing(f"{bucket}/photos", options)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        storage.read_bytes(fs, f"{root}/missing.jpg")


def test_s3_credentials_come_from_the_standard_aws_variables(s3_bucket):
    # No storage options at all: endpoint and keys come from AWS_ENDPOINT_URL and friends.
    bucket, _ = s3_bucket
    fs, root = storage.open_url(bucket)
    storage.write_bytes(fs, f"{root}/x.bin", b"env")
    assert storage.read_bytes(fs, f"{root}/x.bin") == b"env"


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(storage.StorageError, match="nosuchproto://x"):
        storage.open_url("nosuchproto://x")
