"""The one listing route (archive_colorizer.folders): plan and prepare list a flat folder a page at a time."""

from __future__ import annotations

import queue
import sys
import threading
from types import SimpleNamespace

import fsspec
import pytest

from archive_colorizer import folders, storage
from archive_colorizer.plan import survey
from archive_colorizer.prepare.listing import iter_inputs
from tests.conftest import REPO_ROOT

if str(REPO_ROOT / "bench") not in sys.path:
    sys.path.append(str(REPO_ROOT / "bench"))
import s3sim  # noqa: E402  # bench/ is not a package

FILES = 20000


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory):
    """One folder of 20,000 scans (sizes 0-6 bytes, so a listing with sizes can be checked) and a hidden file."""
    folder = tmp_path_factory.mktemp("flat")
    for i in range(FILES):
        (folder / f"scan_{i:05d}.jpg").write_bytes(b"x" * (i % 7))
    (folder / ".DS_Store").write_bytes(b"")
    return folder


def _paths(job: str, folder) -> tuple[object, list[int]]:
    """The job's own listing of ``folder`` as a stream of file names, and the sizes counter (plan)."""
    counter = [0]
    if job == "prepare":
        stream = (ref.path for ref in iter_inputs(fsspec.filesystem("file"), str(folder), (".jpg",)))
    else:
        config = SimpleNamespace(input=str(folder), input_list=None, extensions=[".jpg"], storage_options={})
        stream = (url.rsplit("/", 1)[-1] for url, _ in survey._listed(config, counter))
    return stream, counter


@pytest.mark.parametrize("job", ["prepare", "plan"])
def test_plan_and_prepare_list_a_flat_folder_of_20000_files_a_page_at_a_time(flat_folder, gates, job):
    # The listing waits before it hands on the folder's second page: whatever the job has
    # received by then came from the first page alone, so the folder is not read whole first.
    gates.hold("storage.list", f"{flat_folder}#1")
    stream, counter = _paths(job, flat_folder)
    received: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=lambda: [received.put(name) for name in stream] and received.put(None))
    reader.start()
    gates.wait_reached("storage.list", 1, timeout=120)
    # Exactly the first page, nothing beyond it yet. Plan lists as colorize does (every file of an
    # archive counts), so .DS_Store takes a place on its first page before the suffix filter drops it.
    assert received.qsize() == folders.LIST_PAGE_NAMES - (job == "plan")
    gates.release("storage.list")
    reader.join(timeout=120)
    names = []
    while (name := received.get_nowait()) is not None:
        names.append(name)
    assert names == [f"scan_{i:05d}.jpg" for i in range(FILES)]  # every file once, in order, .DS_Store left out
    if job == "plan":
        assert counter[0] == sum(i % 7 for i in range(FILES))  # the sizes came with the listing


def test_every_listing_view_skips_bookkeeping_only_where_asked(tmp_path):
    for name in ("a.jpg", ".hidden.jpg", "_manifest/part.jpg", "sub/b.JPG", ".git/c.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"abc")
    fs, root = fsspec.filesystem("file"), str(tmp_path)
    relative = [p[len(root) + 1 :] for p in folders.iter_files(fs, root, (".jpg",))]
    assert relative == ["a.jpg", "sub/b.JPG"]
    everything = [p[len(root) + 1 :] for p in folders.iter_files(fs, root, (".jpg",), skip_bookkeeping=False)]
    assert everything == [".hidden.jpg", "a.jpg", ".git/c.jpg", "_manifest/part.jpg", "sub/b.JPG"]
    sized = [(p[len(root) + 1 :], size) for p, size in folders.iter_files_with_sizes(fs, root, (".jpg",))]
    assert sized == [(name, 3) for name in everything]


def test_is_folder_and_is_empty_or_missing_answer_as_s3_holds_the_keys(s3_bucket):
    """moto: a prefix is a folder while a key lies below it; a key is a file, not a folder."""
    bucket, options = s3_bucket
    fs, root = storage.open_url(bucket, options)
    fs.pipe_file(f"{root}/scans/box-1/IMG_0001.jpg", b"1")
    assert folders.is_folder(fs, root)  # the bucket's root
    assert folders.is_folder(fs, f"{root}/scans")
    assert folders.is_folder(fs, f"{root}/scans/box-1/")
    assert not folders.is_folder(fs, f"{root}/scans/box-1/IMG_0001.jpg")
    assert not folders.is_folder(fs, f"{root}/scans/box")  # a prefix of a name, not a folder
    assert not folders.is_folder(fs, "no-such-bucket-0123/scans")
    assert folders.is_empty_or_missing(f"{bucket}/nothing", options)
    assert not folders.is_empty_or_missing(f"{bucket}/scans", options)
    assert not folders.is_empty_or_missing(f"{bucket}/scans/box-1/IMG_0001.jpg", options)


def test_is_folder_asks_s3_for_one_key_of_a_100m_key_prefix():
    """s3fs's isdir lists the whole prefix: 100,000 LIST pages for 100M keys, in the caller's memory.
    Colorize's input check and listing plan and prepare's listing call is_folder instead: one LIST."""
    import s3fs

    from archive_colorizer.colorize import input_rows, job
    from archive_colorizer.colorize.config import ColorizeConfig

    with s3sim.S3Sim("flat", 100_000_000, latency={"LIST": 0.0}) as sim:
        options = {"endpoint_url": sim.endpoint, "key": "k", "secret": "s", "skip_instance_cache": True}
        fs = s3fs.S3FileSystem(**options)
        assert folders.is_folder(fs, sim.url)
        assert not folders.is_empty_or_missing(sim.url, options)
        config = ColorizeConfig(input=sim.url, output="s3://archive/out", model="unused", storage_options=options)
        job._check_input(config, input_rows.Roots.resolve(config.input, config.output, options))
        assert sim.stats()["requests"] == {"LIST": 3}
