"""Listing folders, zip and tar archives and Parquet files: the same relative paths everywhere."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive_colorizer import storage
from archive_colorizer.config import IMAGE_EXTENSIONS
from archive_colorizer.errors import ConfigError, JobError
from archive_colorizer.prepare.listing import batched, iter_inputs
from tests.prepare.conftest import INPUTS, PHOTO_FILES, PLANTED, write_tar, write_zip


def _list(url: str, options=None):
    fs, root = storage.open_url(url, options)
    return list(iter_inputs(fs, root, IMAGE_EXTENSIONS))


def test_folder_zip_and_tar_list_the_same_relative_paths(collection, collection_folder, tmp_path):
    expected = sorted([*PHOTO_FILES, *PLANTED])
    folder = _list(str(collection_folder))
    archive = _list(str(write_zip(tmp_path / "photos.zip", collection)))
    tarball = _list(str(write_tar(tmp_path / "photos.tar", collection)))
    assert len(folder) == len(archive) == len(tarball) == INPUTS
    for refs in (folder, archive, tarball):
        assert sorted(ref.path for ref in refs) == expected  # no .txt, no hidden file, no __MACOSX
    assert {ref.kind for ref in archive} == {"zip"} and {ref.kind for ref in tarball} == {"tar"}


def test_tar_listing_records_where_each_members_data_lies(collection, tmp_path):
    path = write_tar(tmp_path / "photos.tar", collection)
    data = path.read_bytes()
    for ref in _list(str(path)):
        assert ref.member == f"./{ref.path}"
        assert data[ref.offset : ref.offset + ref.size] == collection[ref.path]


def test_archives_inside_a_folder_are_listed_under_their_own_path(collection, tmp_path):
    (tmp_path / "in" / "coco").mkdir(parents=True)
    write_zip(tmp_path / "in" / "coco" / "train.zip", {"a/x.jpg": collection["coffee.jpg"]})
    write_tar(tmp_path / "in" / "places.tar", {"y.jpg": collection["coffee.jpg"]})
    (tmp_path / "in" / "z.jpg").write_bytes(collection["coffee.jpg"])
    assert sorted(ref.path for ref in _list(str(tmp_path / "in"))) == [
        "coco/train.zip/a/x.jpg",
        "places.tar/y.jpg",
        "z.jpg",
    ]


def test_parquet_listing_reads_the_footer_and_refuses_files_without_an_image_column(tmp_path):
    images = pa.array([{"bytes": b"1", "path": "a.jpg"}, {"bytes": b"2", "path": None}])
    pq.write_table(pa.table({"image": images}), tmp_path / "data.parquet", row_group_size=1)
    refs = _list(str(tmp_path / "data.parquet"))
    assert [(ref.kind, ref.offset) for ref in refs] == [("parquet", 0), ("parquet", 1)]
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "text.parquet")
    with pytest.raises(JobError, match=r"text.parquet.*image"):
        _list(str(tmp_path / "text.parquet"))


def test_missing_or_unreadable_input_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="nowhere"):
        _list(str(tmp_path / "nowhere"))
    (tmp_path / "photos.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ConfigError, match=r"photos.tar.gz.*unpacked"):
        _list(str(tmp_path / "photos.tar.gz"))
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(JobError, match="broken.zip"):
        _list(str(tmp_path / "broken.zip"))


def test_s3_prefix_lists_like_the_folder(collection, s3_bucket):
    bucket, options = s3_bucket
    fs, root = storage.open_url(bucket, options)
    for relative, data in collection.items():
        storage.write_bytes(fs, f"{root}/photos/{relative}", data)
    assert sorted(ref.path for ref in _list(f"{bucket}/photos", options)) == sorted([*PHOTO_FILES, *PLANTED])


def test_batched_groups_in_order():
    assert [len(batch) for batch in batched(range(11), 4)] == [4, 4, 3]
    assert [x for batch in batched(range(11), 4) for x in batch] == list(range(11))
