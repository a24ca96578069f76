"""A task's storage requests in flight together: reads ahead, writes behind, in order, bounded."""

from __future__ import annotations

import datetime as dt
import io
import threading

import numpy as np
import pytest
from PIL import Image

from archive_colorizer import storage
from archive_colorizer.colorize import fused, input_rows, manifest, overlap
from archive_colorizer.errors import StorageError
from tests.colorize.conftest import GRAY_PHOTOS, encode, settings_for

WAIT_S = 60
"""Longest a test waits for requests that must be in flight together (they arrive in milliseconds)."""


def test_reads_run_ahead_of_the_input_being_worked_on_and_come_back_in_order():
    # Items 1, 2 and 3 each wait at a barrier of three: their reads return only if all three are
    # in flight at once (one read after another would break the barrier after WAIT_S).
    barrier = threading.Barrier(3, timeout=WAIT_S)

    def read(item: int) -> bytes:
        if item in (1, 2, 3):
            barrier.wait()
        return bytes([item]) * 10

    with overlap.Requests[int](4) as requests:
        got = [(item, get()) for item, get in requests.ahead(range(6), read)]
    assert got == [(item, bytes([item]) * 10) for item in range(6)]


def test_the_first_reads_wait_for_a_size_then_the_bytes_held_ahead_stay_under_the_limit():
    lock, started, finished = threading.Lock(), [], []
    held_at_start = []

    def read(item: int) -> bytes:
        with lock:
            started.append(item)
            held_at_start.append(len(started) - len(finished))  # reads started and not yet worked on
        return b"x" * 100

    with overlap.Requests[int](8, max_bytes=350) as requests:
        for item, get in requests.ahead(range(20), read):
            assert get() == b"x" * 100
            with lock:
                finished.append(item)
    assert finished == list(range(20))
    # Before any read ended: FIRST_READS; after: the held (the one worked on) plus those in flight,
    # each counted at 100 bytes, within 350 bytes: at most 3 at once.
    assert max(held_at_start[: overlap.FIRST_READS]) <= overlap.FIRST_READS
    assert max(held_at_start) <= 3


def test_a_failed_read_fails_its_own_item_and_no_other():
    def read(item: int) -> bytes | None:
        if item == 2:
            raise FileNotFoundError("no such file: 's3://bucket/2.jpg'")
        return None if item == 4 else b"%d" % item

    outcomes = []
    with overlap.Requests[int](3) as requests:
        for _item, get in requests.ahead(range(6), read):
            try:
                outcomes.append(get())
            except FileNotFoundError as exc:
                outcomes.append(str(exc))
    assert outcomes == [b"0", b"1", "no such file: 's3://bucket/2.jpg'", b"3", None, b"5"]


def test_writes_behind_end_in_order_on_the_callers_thread_and_all_before_the_block_ends():
    barrier = threading.Barrier(3, timeout=WAIT_S)  # writes 0-2 end only if they are in flight together
    ended: list[tuple[int, str | None, int]] = []

    def write(item: int) -> None:
        if item < 3:
            barrier.wait()
        if item == 4:
            raise StorageError("cannot write 's3://bucket/out/4.jpg': SlowDown")

    caller = threading.get_ident()
    with overlap.Requests[int](3) as requests:
        for item in range(6):
            requests.behind(
                lambda item=item: write(item),
                1000,
                lambda error, item=item: ended.append((item, error and str(error), threading.get_ident())),
            )
    assert ended == [
        (0, None, caller),
        (1, None, caller),
        (2, None, caller),
        (3, None, caller),
        (4, "cannot write 's3://bucket/out/4.jpg': SlowDown", caller),
        (5, None, caller),
    ]


def test_writes_wait_for_older_ones_while_their_bytes_pass_the_limit():
    lock, running, most = threading.Lock(), [0], [0]

    def write() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        with lock:
            running[0] -= 1

    ended = []
    with overlap.Requests[int](8, max_bytes=250) as requests:
        for item in range(10):
            requests.behind(write, 100, lambda error, item=item: ended.append((item, error)))
            assert len(requests._writes) <= 2  # 100-byte writes within 250 bytes
    assert ended == [(item, None) for item in range(10)] and most[0] <= 2


def test_one_request_at_a_time_runs_each_where_it_is_needed():
    calls = []
    requests = overlap.Requests[int](1)
    with requests:
        for item, get in requests.ahead(range(3), lambda item: calls.append(("read", item)) or b"-"):
            calls.append(("asked", item))
            get()
        requests.behind(lambda: calls.append(("write", 9)), 10, lambda error: calls.append(("ended", error)))
        calls.append(("after", None))
    assert calls == [
        *(step for item in range(3) for step in (("asked", item), ("read", item))),
        ("write", 9),
        ("ended", None),
        ("after", None),
    ]
    assert requests._pool is None  # no thread at all


def test_only_remote_storage_gets_requests_in_flight_together(tmp_path):
    local = str(tmp_path / "out")
    assert overlap.concurrency_for([str(tmp_path / "in.jpg"), local], 8, {}) == 1
    assert overlap.concurrency_for(["s3://bucket/in.jpg", local], 8, {}) == 8
    assert overlap.concurrency_for([str(tmp_path / "in.jpg"), "memory://out"], 5, {}) == 5
    with pytest.raises(ValueError, match="concurrent_requests must be at least 1, got 0"):
        overlap.concurrency_for([local], 0, {})
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        overlap.Requests(0)


def test_a_fused_task_on_s3_keeps_its_reads_and_writes_in_flight_together(
    photos, tiny_model, s3_bucket, gates, tmp_path
):
    """The fused stage's batch function on moto: held reads and writes show the requests in flight at
    once; an input deleted while the first reads are held fails alone; every other output is right."""
    from archive_colorizer import __version__
    from archive_colorizer.models.artifact import load_generator

    bucket, options = s3_bucket
    fs, _ = storage.open_url(bucket, options)
    scans = {}
    for index in range(8):
        gray = Image.fromarray(photos[GRAY_PHOTOS[index % len(GRAY_PHOTOS)]]).convert("L").resize((120 + index, 90))
        data = encode(gray, "JPEG", quality=90)
        fs.pipe_file(f"{bucket}/in/scan-{index}.jpg", data)
        scans[f"{bucket}/in/scan-{index}.jpg"] = np.asarray(Image.open(io.BytesIO(data)), dtype=int)  # as decoded
    roots = input_rows.Roots.resolve(f"{bucket}/in", f"{bucket}/out", options)
    rows = [
        row for chunk in input_rows.iter_unit_rows(roots, roots.input_path, True, (".jpg",), "auto") for row in chunk
    ]
    artifact = load_generator(tiny_model)
    settings = settings_for(
        tmp_path,
        output_url=f"{bucket}/out",
        run=manifest.RunInfo("overlap", dt.datetime.now(dt.timezone.utc), artifact.sha256, __version__),
        storage_options=options,
        concurrent_requests=3,
    )
    predictor = {"model_url": tiny_model, "expected_sha256": artifact.sha256, "model_size": 32, "num_threads": 1}
    fused.warm(predictor)
    gates.hold("colorize.read", "*")
    gates.hold("colorize.write", "*")
    result = {}
    task = threading.Thread(
        target=lambda: result.update(table=fused.colorize_batch(manifest.to_table(rows), settings, predictor))
    )
    task.start()
    try:
        # No read has ended, so no size is known yet: FIRST_READS reads wait at the gate together.
        reads = gates.wait_reached("colorize.read", count=overlap.FIRST_READS, timeout=WAIT_S)
        assert sorted(key for key, _ in reads) == sorted(row["input_url"] for row in rows[:2])
        fs.rm_file(f"{bucket}/in/scan-5.jpg")  # not read yet: its read fails when its turn comes
        gates.release("colorize.read")
        # The writes behind: three in flight at once (concurrent_requests), one task, one process.
        writes = gates.wait_reached("colorize.write", count=3, timeout=WAIT_S)
        assert len({key for key, _ in writes}) == 3 and len({pid for _, pid in writes}) == 1
    finally:
        gates.release_all()
        task.join(timeout=WAIT_S)
    final = {row["input_url"]: row for row in result["table"].to_pylist()}
    assert {url: row["status"] for url, row in final.items()} == {
        url: "failed" if url.endswith("scan-5.jpg") else "colorized" for url in scans
    }
    assert final[f"{bucket}/in/scan-5.jpg"]["reason"] == "unreadable"
    for url, gray in scans.items():
        if url.endswith("scan-5.jpg"):
            assert not fs.exists(url.replace("/in/", "/out/"))
            continue
        with Image.open(fs.open(final[url]["output_url"])) as output:
            luma = np.asarray(output.convert("YCbCr"))[..., 0].astype(int)
        assert output.size == gray.shape[::-1] and np.abs(luma - gray).mean() < 1.5, url
