"""Input lists read in chunks (txt, CSV, Parquet, S3 Inventory), duplicates done once, clashes by one rule."""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
import time
from urllib.parse import quote_plus

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from archive_colorizer.colorize import claims, input_lists, input_rows, listing_tasks, manifest
from archive_colorizer.errors import ConfigError
from tests.colorize.conftest import encode

ENTRIES = [f"box-{i // 100:02d}/IMG_{i:05d}.jpg" for i in range(1000)]


def _context(input_url, output_url, extensions, **extra):
    return listing_tasks.ListingContext(
        input_url=input_url,
        output_url=output_url,
        extensions=extensions,
        requested_format="auto",
        model_sha256="aa" * 32,
        **extra,
    )


def _entries(list_url, storage_options=None, **sizes):
    plan = input_lists.plan_chunks(list_url, storage_options, **sizes)
    return plan, [e for chunk in plan.chunks for batch in input_lists.read_chunk(chunk, storage_options) for e in batch]


@pytest.mark.parametrize("chunk_bytes", [1, 7, 23, 64, 1000, 10**6])
def test_text_and_csv_lists_cut_at_any_byte_give_every_entry_once_in_order(tmp_path, chunk_bytes):
    text = tmp_path / "list.txt"
    text.write_text("# scans of 1968\n" + "\r\n".join(ENTRIES[:300]) + "\n\n")
    plan, entries = _entries(str(text), chunk_bytes=chunk_bytes)
    assert entries == ENTRIES[:300]
    assert len(plan.chunks) == -(-text.stat().st_size // chunk_bytes)
    table = tmp_path / "list.csv"
    table.write_text('id,"url",note\n' + "".join(f'{i},"{e}","a, b"\n' for i, e in enumerate(ENTRIES[:300])))
    plan, entries = _entries(str(table), chunk_bytes=chunk_bytes)
    assert entries == ENTRIES[:300]
    assert {chunk.column for chunk in plan.chunks} == {"url"}


def test_parquet_lists_are_cut_into_groups_of_row_groups(tmp_path):
    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({"id": range(1000), "path": ENTRIES}), path, row_group_size=64)
    plan, entries = _entries(str(path), chunk_rows=200)
    assert entries == ENTRIES and plan.estimated_entries == 1000
    # 16 row groups of 64 rows (the last 40): chunks of 4 groups (256 rows >= 200)
    assert [chunk.row_groups for chunk in plan.chunks] == [tuple(range(g, min(g + 4, 16))) for g in range(0, 16, 4)]


def test_a_list_that_cannot_be_read_is_named(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ConfigError, match="empty.csv.*no columns"):
        input_lists.plan_chunks(str(tmp_path / "empty.csv"), None)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ConfigError, match="bad.parquet"):
        input_lists.plan_chunks(str(tmp_path / "bad.parquet"), None)
    (tmp_path / "bad.txt").write_bytes(b"a.jpg\n\xff\xfe.jpg\n")
    plan = input_lists.plan_chunks(str(tmp_path / "bad.txt"), None)
    with pytest.raises(ConfigError, match=r"bad.txt.*bytes 0-"):
        list(input_lists.read_chunk(plan.chunks[0], None))


def test_claims_hold_each_key_once_and_a_retry_keeps_its_own(tmp_path):
    table = claims.ClaimTable(str(tmp_path / "shard.bin"))
    keys = np.array([5, 9, 5, 7], dtype=np.uint64)
    assert table.claim(keys, [30, 10, 20, 40]).tolist() == [False, True, True, True]  # 5: the lower position
    assert table.claim([5, 9, 11], [20, 99, 50]).tolist() == [True, False, True]  # a retry of position 20: its own
    table.claim([3, 1], [70, 80])  # the log is sorted per call, not as a whole
    reloaded = claims.ClaimTable(str(tmp_path / "shard.bin"))  # a restarted shard reads its log back
    assert len(reloaded) == 6 and reloaded.nbytes() == 6 * 16
    assert reloaded.claim([5, 9, 7, 11, 12, 1], [30, 10, 40, 51, 60, 1]).tolist() == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    with open(tmp_path / "shard.bin", "ab") as handle:
        handle.write(b"\x01\x02\x03")  # a write cut short by a kill
    assert len(claims.ClaimTable(str(tmp_path / "shard.bin"))) == 7


def test_a_shard_per_10m_entries_of_a_list():
    assert [claims.shard_count(n) for n in (0, 1, 10_000_000, 10_000_001, 100_000_000, 10**10)] == [1, 1, 1, 2, 10, 16]


def test_claims_of_many_batches_agree_with_a_set(tmp_path):
    rng = np.random.default_rng(0)
    table, seen = claims.ClaimTable(), set()
    for batch in range(40):
        keys = rng.integers(0, 3000, 500).astype(np.uint64)
        holds = table.claim(keys, np.arange(batch * 500, batch * 500 + 500, dtype=np.uint64))
        expected = []
        for key in keys.tolist():
            expected.append(key not in seen)
            seen.add(key)
        assert holds.tolist() == expected
    assert len(table) == len(seen) and len(table.runs) <= 12


def _photo_archive(tmp_path, photos, names):
    gray = encode(Image.fromarray(photos["coffee"]).convert("L"), "JPEG")
    for name in names:
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(gray)


def _listed(tmp_path, list_path, extensions=(".jpg", ".png", ".gif"), run_id="run"):
    context = _context(str(tmp_path / "in"), str(tmp_path / "out"), extensions, run_id=run_id)
    dataset, progress, _ = listing_tasks.list_dataset(str(list_path), context)
    try:
        return [
            (os.path.relpath(r["input_url"], tmp_path / "in"), r["status"], r["reason"]) for r in dataset.take_all()
        ]
    finally:
        progress.close()


@pytest.mark.usefixtures("ray_local")
def test_an_output_clash_is_decided_by_the_names_not_by_the_order_of_the_list(tmp_path, photos, monkeypatch):
    _photo_archive(tmp_path, photos, ["a/scan.gif", "a/scan.gif.png", "b/scan.gif", "c/solo.gif"])
    # c/solo.gif.png is no input but exists in INPUT: it keeps its name there too.
    (tmp_path / "in" / "c" / "solo.gif.png").write_bytes(b"x")
    expected = sorted(
        [
            ("a/scan.gif", manifest.FAILED, "output_clash"),
            ("a/scan.gif.png", manifest.PENDING, None),
            ("b/scan.gif", manifest.PENDING, None),
            ("c/solo.gif", manifest.FAILED, "output_clash"),
        ]
    )
    monkeypatch.setattr(input_lists, "CHUNK_BYTES", 11)  # each entry in a chunk of its own (and one empty chunk)
    for order in (["a/scan.gif", "a/scan.gif.png"], ["a/scan.gif.png", "a/scan.gif"]):
        path = tmp_path / "list.txt"
        path.write_text("\n".join([*order, "b/scan.gif", "c/solo.gif"]) + "\n")
        assert len(input_lists.plan_chunks(str(path), None).chunks) == 5
        assert sorted(_listed(tmp_path, path)) == expected


@pytest.mark.usefixtures("ray_local")
def test_duplicates_in_different_chunks_get_one_row(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    monkeypatch.setattr(input_lists, "CHUNK_BYTES", 64)  # 7 entries a chunk: repeats land in other chunks
    path = tmp_path / "list.txt"
    names = [f"p{i:03d}.jpg" for i in range(40)]
    path.write_text("\n".join(names + names[::-1] + names[:5]) + "\n")
    assert len(input_lists.plan_chunks(str(path), None).chunks) == 12
    rows = _listed(tmp_path, path)
    assert len(rows) == 85
    pending = sorted(name for name, status, _ in rows if status == manifest.PENDING)
    assert pending == names and sum(status == manifest.DUPLICATE for _, status, _ in rows) == 45


@pytest.mark.usefixtures("ray_local")
def test_duplicates_stay_done_once_when_the_claim_shard_is_killed_between_claims(tmp_path, monkeypatch, gates):
    import ray

    (tmp_path / "in").mkdir()
    monkeypatch.setattr(input_lists, "CHUNK_BYTES", 18)  # three chunks of three entries
    path = tmp_path / "list.txt"
    path.write_text("\n".join(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "a.jpg", "e.jpg", "b.jpg", "f.jpg", "a.jpg"]) + "\n")
    context = _context(str(tmp_path / "in"), str(tmp_path / "out"), (".jpg",))
    # Chunk 2 (b, f, a) waits before it is read until chunks 0 and 1 have claimed theirs and the
    # shard that holds those claims has been killed: its restarted process must still know them.
    gates.hold("colorize.list", f"{path}#2")
    dataset, progress, _ = listing_tasks.list_dataset(str(path), context)
    results: list = []
    reader = threading.Thread(target=lambda: results.extend(dataset.take_all()))
    reader.start()
    gates.wait_reached("colorize.list")
    deadline = time.monotonic() + 300
    while ray.get(progress.state())["listed"] < 6:
        assert time.monotonic() < deadline, "chunks 0 and 1 were not listed"
        time.sleep(0.05)
    [before] = progress.claims.info()
    os.kill(before["pid"], signal.SIGKILL)
    gates.release("colorize.list")
    reader.join(timeout=300)
    [after] = progress.claims.info()
    progress.close()
    assert not reader.is_alive() and before["inputs"] == 5 and after["pid"] != before["pid"]
    statuses = sorted((os.path.basename(r["input_url"]), r["status"]) for r in results)
    assert [s for s in statuses if s[1] == manifest.PENDING] == [(f"{n}.jpg", manifest.PENDING) for n in "abcdef"]
    assert sum(s[1] == manifest.DUPLICATE for s in statuses) == 3 and len(statuses) == 9


@pytest.mark.usefixtures("ray_local")
def test_duplicates_stay_done_once_when_the_claim_shard_is_killed_while_it_answers(tmp_path, monkeypatch, gates):
    import ray

    (tmp_path / "in").mkdir()
    monkeypatch.setattr(input_lists, "CHUNK_BYTES", 18)  # three chunks of three entries
    path = tmp_path / "list.txt"
    path.write_text("\n".join(["a.jpg", "b.jpg", "c.jpg", "a.jpg", "d.jpg", "e.jpg", "b.jpg", "f.jpg", "a.jpg"]) + "\n")
    assert len(input_lists.plan_chunks(str(path), None).chunks) == 3
    context = _context(str(tmp_path / "in"), str(tmp_path / "out"), (".jpg",))
    # The shard holds its answer to chunk 0 (a, b, c claimed and logged); whatever order the
    # other chunks reach it, their calls wait behind this one, in the process that is killed.
    gates.hold("colorize.claim", "0:0")
    dataset, progress, _ = listing_tasks.list_dataset(str(path), context)
    results: list = []
    reader = threading.Thread(target=lambda: results.extend(dataset.take_all()))
    reader.start()
    (_, pid), *_ = gates.wait_reached("colorize.claim")
    os.kill(pid, signal.SIGKILL)
    gates.release("colorize.claim")
    reader.join(timeout=300)
    [info] = progress.claims.info()
    state = ray.get(progress.state())
    progress.close()
    assert not reader.is_alive() and info["pid"] != pid  # Ray restarted the shard; it answered the rest
    statuses = sorted((os.path.basename(r["input_url"]), r["status"]) for r in results)
    assert [s for s in statuses if s[1] == manifest.PENDING] == [(f"{n}.jpg", manifest.PENDING) for n in "abcdef"]
    assert sum(s[1] == manifest.DUPLICATE for s in statuses) == 3 and len(statuses) == 9
    assert info["inputs"] == 6
    assert state["listed"] == 9 and state["done"]


def _inventory(bucket_url, storage_options, fmt, rows):
    """An S3 Inventory report as AWS writes it: manifest.json and one data file (CSV gzip or Parquet)."""
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": storage_options["endpoint_url"]})
    bucket = bucket_url.removeprefix("s3://")
    base = f"{bucket}/inventory/{bucket}/daily/2026-12-01T01-00Z"
    data_key = f"inventory/{bucket}/daily/data/part-0.{'csv.gz' if fmt == 'CSV' else 'parquet'}"
    if fmt == "CSV":
        lines = [
            f'"{bucket}","{quote_plus(key)}","v1","{str(latest).lower()}","{str(marker).lower()}","123"'
            for key, latest, marker in rows
        ]
        data = gzip.compress(("\n".join(lines) + "\n").encode())
        schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"
    else:
        sink = pa.BufferOutputStream()
        columns = {
            "bucket": [bucket] * len(rows),
            "key": [k for k, _, _ in rows],
            "is_latest": [latest for _, latest, _ in rows],
            "is_delete_marker": [marker for _, _, marker in rows],
        }
        pq.write_table(pa.table(columns), sink)
        data = sink.getvalue().to_pybytes()
        schema = "message s3.inventory { required binary bucket (STRING); required binary key (STRING); }"
    fs.pipe(f"{bucket}/{data_key}", data)
    report = {
        "sourceBucket": bucket,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1764550800000",
        "fileFormat": fmt,
        "fileSchema": schema,
        "files": [{"key": data_key, "size": len(data), "MD5checksum": "0" * 32}],
    }
    fs.pipe(f"{base}/manifest.json", json.dumps(report).encode())
    return f"s3://{base}/manifest.json"


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("fmt", ["CSV", "Parquet"])
def test_an_s3_inventory_is_an_input_list_of_the_latest_images_below_input(s3_bucket, fmt):
    bucket_url, options = s3_bucket
    rows = [
        ("scans/a b+c.jpg", True, False),  # URL-encoded in CSV: a+b%2Bc.jpg
        ("scans/old.jpg", False, False),  # an older version
        ("scans/gone.jpg", True, True),  # a delete marker
        ("scans/sub/", True, False),  # a folder marker
        ("scans/notes.txt", True, False),  # not an image
        ("other/x.jpg", True, False),  # outside INPUT
        ("scans/sub/ünïcode.png", True, False),
    ]
    manifest_url = _inventory(bucket_url, options, fmt, rows)
    plan = input_lists.plan_chunks(manifest_url, options)
    assert plan.inventory and len(plan.chunks) == 1
    context = _context(f"{bucket_url}/scans", f"{bucket_url}/out", (".jpg", ".png"), storage_options=options)
    dataset, progress, _ = listing_tasks.list_dataset(manifest_url, context)
    listed = sorted((r["input_url"], r["output_url"], r["status"]) for r in dataset.take_all())
    progress.close()
    assert listed == [
        (f"{bucket_url}/scans/a b+c.jpg", f"{bucket_url}/out/a b+c.jpg", manifest.PENDING),
        (f"{bucket_url}/scans/sub/ünïcode.png", f"{bucket_url}/out/sub/ünïcode.png", manifest.PENDING),
    ]
    elsewhere = _context("s3://another-bucket/scans", f"{bucket_url}/out", (".jpg",))
    with pytest.raises(ConfigError, match="lists bucket"):
        listing_tasks.list_dataset(manifest_url, elsewhere)


def test_an_inventory_of_another_format_or_not_an_inventory_is_refused(tmp_path, s3_bucket):
    import s3fs

    bucket_url, options = s3_bucket
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": options["endpoint_url"]})
    report = {"sourceBucket": "b", "destinationBucket": "arn:aws:s3:::b", "fileFormat": "ORC", "files": []}
    fs.pipe(f"{bucket_url}/orc/manifest.json", json.dumps(report).encode())
    with pytest.raises(ConfigError, match="ORC format.*CSV or Parquet"):
        input_lists.plan_chunks(f"{bucket_url}/orc/manifest.json", options)
    fs.pipe(f"{bucket_url}/other/manifest.json", b'{"entries": []}')
    with pytest.raises(ConfigError, match="not an S3 Inventory manifest.json"):
        input_lists.plan_chunks(f"{bucket_url}/other/manifest.json", options)


def test_the_plan_job_reads_lists_the_same_way(tmp_path):
    (tmp_path / "in").mkdir()
    path = tmp_path / "list.csv"
    path.write_text("url\n" + "\n".join(ENTRIES[:50]) + "\n")
    roots = input_rows.Roots.resolve(str(tmp_path / "in"), str(tmp_path / "out"), None)
    rows = list(input_rows.iter_from_list(roots, str(path), "auto"))
    assert [r["input_url"] for r in rows] == [str(tmp_path / "in" / e) for e in ENTRIES[:50]]


@pytest.mark.usefixtures("ray_local")
def test_a_colorize_run_from_a_list_gives_each_input_one_row_and_counts_that_add_up(tmp_path, photos, tiny_model):
    from archive_colorizer.colorize import run
    from archive_colorizer.colorize.config import ColorizeConfig

    _photo_archive(tmp_path, photos, ["a.jpg", "b/c.jpg", "scan.gif.png"])
    (tmp_path / "in" / "scan.gif").write_bytes(encode(Image.fromarray(photos["rocket"]).convert("L"), "GIF"))
    path = tmp_path / "list.parquet"
    entries = ["scan.gif", "a.jpg", "b/c.jpg", str(tmp_path / "in" / "a.jpg"), "scan.gif.png", "missing.jpg", "a.jpg"]
    pq.write_table(pa.table({"path": entries}), path)
    config = ColorizeConfig(
        input=str(tmp_path / "in"), output=str(tmp_path / "out"), model=tiny_model, input_list=str(path), progress=False
    )
    result = run(config)
    assert result.counts == {"colorized": 3, "skipped_existing": 0, "skipped_color": 0, "failed": 2}
    assert result.inputs == 5 and result.summary["duplicates"] == 2 and result.summary["listed"] == 7
    rows = manifest.read_manifest(str(tmp_path / "out")).to_pylist()
    reasons = {os.path.relpath(r["input_url"], tmp_path / "in"): r["reason"] for r in rows}
    assert len(rows) == 5 and reasons["scan.gif"] == "output_clash" and reasons["missing.jpg"] == "unreadable"
    assert (tmp_path / "out" / "scan.gif.png").exists() and (tmp_path / "out" / "b" / "c.jpg").exists()


def test_a_list_leaves_most_cpus_to_the_colorize_tasks():
    # 100 chunks on 2 CPUs: 2 listing tasks (0.5 CPU), not 8 tasks taking both CPUs while they wait
    assert listing_tasks.list_tasks(100, 2.0) == 2 and listing_tasks.list_tasks(100, 64.0) == 64
    assert listing_tasks.list_tasks(3, 64.0) == 3 and listing_tasks.list_tasks(100, 0.5) == 1


@pytest.mark.usefixtures("ray_local")
def test_a_listing_task_killed_mid_list_is_redone_without_a_row_twice(tmp_path, monkeypatch, gates):
    (tmp_path / "in").mkdir()
    monkeypatch.setattr(input_lists, "CHUNK_BYTES", 18)  # three chunks of three entries; 2 CPUs: 2 tasks
    path = tmp_path / "list.txt"
    path.write_text("\n".join(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "a.jpg", "e.jpg", "b.jpg", "f.jpg", "a.jpg"]) + "\n")
    context = _context(str(tmp_path / "in"), str(tmp_path / "out"), (".jpg",))
    # The task reading chunks 0 and 2 has handed on chunk 0's rows and claims; it is killed before
    # chunk 2. Its retry lists chunk 0 again: the same positions get the same answers, and the
    # rows it had already handed on are not handed on twice.
    gates.hold("colorize.list", f"{path}#2")
    dataset, progress, _ = listing_tasks.list_dataset(str(path), context)
    results: list = []
    reader = threading.Thread(target=lambda: results.extend(dataset.take_all()))
    reader.start()
    (_, pid), *_ = gates.wait_reached("colorize.list")
    os.kill(pid, signal.SIGKILL)
    gates.release("colorize.list")
    reader.join(timeout=300)
    progress.close()
    assert not reader.is_alive()
    statuses = sorted((os.path.basename(r["input_url"]), r["status"]) for r in results)
    assert [s for s in statuses if s[1] == manifest.PENDING] == [(f"{n}.jpg", manifest.PENDING) for n in "abcdef"]
    assert sum(s[1] == manifest.DUPLICATE for s in statuses) == 3 and len(statuses) == 9
