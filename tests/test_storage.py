"""fsspec helpers on local paths, memory:// and a real S3 API (moto server)."""

from __future__ import annotations

import os

import pytest

from archive_colorizer import folders, storage


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
    found = [os.path.relpath(p, tmp_path) for p in folders.iter_files(fs, root, (".jpg", ".png"))]
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
    assert [storage.to_url(fs, p) for p in folders.iter_files(fs, f"{root}/photos")] == [
        f"{bucket}/photos/one.jpg",
        f"{bucket}/photos/sub/two.jpg",
    ]
    assert folders.is_empty_or_missing(f"{bucket}/nothing", options)
    assert not folders.is_empty_or_missing(f"{bucket}/photos", options)
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


def _walked(fs, root):
    """``{folder: sorted file names}`` as ``fs.walk`` sees them (the reference listing; s3fs's walk lists a
    folder's marker object ``folder/`` as a file named ``""``, which the pages leave out)."""
    return {folder.rstrip("/"): sorted(f for f in files if f) for folder, _, files in fs.walk(root, detail=False)}


def _paged(fs, root, page_names, recursive=True):
    pages = list(folders.iter_folder_pages(fs, root, recursive, page_names))
    by_folder: dict[str, list[str]] = {}
    for folder, names, last in pages:
        assert len(names) <= page_names and names == sorted(names)
        assert (folder not in by_folder or not by_folder[folder] or names[0] > by_folder[folder][-1]) if names else last
        by_folder.setdefault(folder, []).extend(names)
    lasts = [folder for folder, _, last in pages if last]
    assert sorted(lasts) == sorted(by_folder)  # one last page per folder, after its other pages
    return by_folder, pages


def test_folder_pages_list_a_local_tree_a_page_at_a_time_like_walk(tmp_path):
    names = [f"scan_{i:03d}.tif" for i in range(25)] + ["Z.jpg", "a b.png", ".hidden.jpg"]
    for relative in [*names, "sub/one.jpg", "sub/deeper/two.jpg", "empty/.keep", "other/x.jpg"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    (tmp_path / "empty" / ".keep").unlink()
    os.symlink(tmp_path / "sub", tmp_path / "link-to-sub")  # listed as a file, as fs.walk lists it, never followed
    fs, root = storage.open_url(str(tmp_path))
    by_folder, pages = _paged(fs, root, page_names=10)
    assert by_folder == {f: n for f, n in _walked(fs, root).items()}
    assert [len(n) for f, n, _ in pages if f == root] == [10, 10, 9]  # 25 scans, Z, a b, .hidden, the link
    assert "link-to-sub" in by_folder[root] and f"{root}/link-to-sub" not in by_folder
    assert by_folder[f"{root}/empty"] == []
    flat, _ = _paged(fs, root, page_names=10, recursive=False)
    assert flat == {root: by_folder[root]}


def test_folder_pages_of_an_s3_prefix_follow_the_list_pages(s3_bucket):
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    bucket, options = s3_bucket
    client = boto3.client("s3", endpoint_url=options["endpoint_url"])
    name = bucket.removeprefix("s3://")
    keys = [f"flat/img_{i:05d}.jpg" for i in range(1203)]  # more than one ListObjectsV2 page of 1000
    keys += ["flat/sub/a.jpg", "flat/sub/deep/b.jpg", "flat/zz/c.jpg", "flat/", "flat/sub/"]  # with folder markers
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=name, Key=key, Body=b"x"), keys))
    fs, root = storage.open_url(f"{bucket}/flat", options)
    by_folder, pages = _paged(fs, root, page_names=500)
    assert by_folder == _walked(fs, root)
    assert len(by_folder[root]) == 1203 and by_folder[f"{root}/sub/deep"] == ["b.jpg"]
    # A page holds at most 500 entries of the listing, the sub-prefixes and the marker among them.
    flat = [(len(n), last) for f, n, last in pages if f == root]
    assert len(flat) == 3 and [last for _, last in flat] == [False, False, True] and min(n for n, _ in flat) > 200
    assert [(f.removeprefix(root), last) for f, _, last in pages if f != root] == [
        ("/sub", True),
        ("/sub/deep", True),
        ("/zz", True),
    ]
    assert folders.list_subfolders(fs, root) is None  # 1206 entries: not read whole to find 3 folders
    assert folders.list_subfolders(fs, f"{root}/sub") == [f"{root}/sub/deep"]
    assert folders.list_subfolders(fs, root, limit=2000) == [f"{root}/sub", f"{root}/zz"]


def test_list_subfolders_reads_at_most_one_page_of_a_local_folder(tmp_path):
    for relative in ["a.jpg", "b.jpg", "c/d.jpg", "e/f.jpg"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    fs, root = storage.open_url(str(tmp_path))
    assert folders.list_subfolders(fs, root) == [f"{root}/c", f"{root}/e"]
    assert folders.list_subfolders(fs, root, limit=3) is None
