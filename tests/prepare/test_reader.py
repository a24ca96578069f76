"""Reading listed inputs: files, zip members, tar byte ranges and Parquet rows give the same bytes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.config import IMAGE_EXTENSIONS
from archive_colorizer.prepare.listing import iter_inputs
from archive_colorizer.prepare.reader import read_inputs
from tests.prepare.conftest import INPUTS, write_tar, write_zip


def _read(url: str) -> list:
    fs, root = storage.open_url(url)
    return list(read_inputs(fs, list(iter_inputs(fs, root, IMAGE_EXTENSIONS)), threads=3))


def test_every_container_gives_each_inputs_exact_bytes(collection, collection_folder, tmp_path):
    for url in (
        str(collection_folder),
        str(write_zip(tmp_path / "p.zip", collection)),
        str(write_tar(tmp_path / "p.tar", collection)),
    ):
        raws = _read(url)
        assert len(raws) == INPUTS
        for raw in raws:
            assert raw.error is None and raw.data == collection[raw.path]


def test_sources_are_urls_fsspec_can_open(collection, tmp_path):
    import fsspec

    for url in (str(write_zip(tmp_path / "p.zip", collection)), str(write_tar(tmp_path / "p.tar", collection))):
        raw = next(r for r in _read(url) if r.path == "coffee.jpg")
        with fsspec.open(raw.source, "rb") as handle:
            assert handle.read() == collection["coffee.jpg"]


def test_a_file_gone_since_listing_is_reported_not_raised(collection_folder, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((collection_folder / "coffee.jpg").read_bytes())
    (folder / "b.jpg").write_bytes(b"x")
    fs, root = storage.open_url(str(folder))
    refs = list(iter_inputs(fs, root, IMAGE_EXTENSIONS))
    (folder / "a.jpg").unlink()
    raws = list(read_inputs(fs, refs))
    assert raws[0].data is None and "a.jpg" in raws[0].error
    assert raws[1].data == b"x"


def test_parquet_rows_keep_their_image_path_and_read_only_their_row_groups(collection, tmp_path):
    images = [
        {"bytes": collection["coffee.jpg"], "path": "coffee.jpg"},
        {"bytes": collection["astronaut.jpg"], "path": None},
        {"bytes": None, "path": "lost.jpg"},
    ]
    pq.write_table(pa.table({"image": images, "label": [1, 2, 3]}), tmp_path / "d.parquet", row_group_size=1)
    fs, root = storage.open_url(str(tmp_path / "d.parquet"))
    refs = list(iter_inputs(fs, root, IMAGE_EXTENSIONS))
    raws = list(read_inputs(fs, refs[1:]))  # rows 1 and 2 only
    assert [(r.path, r.data) for r in raws] == [("row-1", collection["astronaut.jpg"]), ("lost.jpg", b"")]
    assert raws[0].source.endswith("d.parquet#row=1")


def test_zip_and_tar_in_a_bucket_are_read_in_place(collection, tmp_path, s3_bucket):
    bucket, options = s3_bucket
    fs, root = storage.open_url(bucket, options)
    for archive in (write_zip(tmp_path / "p.zip", collection), write_tar(tmp_path / "p.tar", collection)):
        storage.write_bytes(fs, f"{root}/{archive.name}", archive.read_bytes())
        refs = list(iter_inputs(fs, f"{root}/{archive.name}", IMAGE_EXTENSIONS))
        raws = list(read_inputs(fs, refs, threads=4))
        assert len(raws) == INPUTS and all(raw.data == collection[raw.path] for raw in raws)
        assert raws[0].source.endswith(f"::{bucket}/{archive.name}")


def test_image_files_in_a_bucket_are_read_with_one_request_each(collection, s3_bucket, flaky_s3):
    bucket, _ = s3_bucket
    fs, root = storage.open_url(bucket, {"endpoint_url": flaky_s3.endpoint_url})
    for path, data in collection.items():
        storage.write_bytes(fs, f"{root}/photos/{path}", data)
    refs = list(iter_inputs(fs, f"{root}/photos", IMAGE_EXTENSIONS))
    flaky_s3.reset(fault_rate=0.0)
    raws = list(read_inputs(fs, refs, threads=4))
    assert len(raws) == INPUTS and all(raw.data == collection[raw.path] for raw in raws)
    assert flaky_s3.counts["requests"] == INPUTS  # one GET each, no HEAD before it
