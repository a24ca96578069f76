"""Listing inputs, mirroring them under OUTPUT, and refusing what could escape it."""

from __future__ import annotations

import io
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive_colorizer import folders
from archive_colorizer.colorize import input_rows, key_ranges, listing_progress, listing_tasks, manifest
from archive_colorizer.errors import ConfigError


def _roots(tmp_path, output="out"):
    return input_rows.Roots.resolve(str(tmp_path / "in"), str(tmp_path / output), None)


def _listed(roots, extensions, fmt="auto"):
    """Every row of INPUT the way the listing tasks make them (units planned, each walked), without Ray."""
    rows = []
    for folder, recursive in input_rows.plan_units(roots, target=2):
        for chunk in input_rows.iter_unit_rows(roots, folder, recursive, extensions, fmt):
            rows += chunk
    return sorted(rows, key=lambda r: r["input_url"])


def _entries_dataset(roots, list_path):
    context = listing_tasks.ListingContext(
        input_url=roots.input_url,
        output_url=roots.output_url,
        extensions=(".jpg", ".png"),
        requested_format="auto",
        model_sha256="aa" * 32,
    )
    dataset, _, _ = listing_tasks.list_dataset(str(list_path), context)
    return sorted(dataset.take_all(), key=lambda r: r["input_url"])


def _touch(folder, *relatives):
    for relative in relatives:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(b"x")


@pytest.mark.parametrize(
    ("relative", "requested", "expected"),
    [
        ("a/b.jpg", "auto", "a/b.jpg"),
        ("a/b.JPEG", "auto", "a/b.JPEG"),
        ("b.tiff", "auto", "b.tiff"),
        ("b.png", "auto", "b.png"),
        ("scan.gif", "auto", "scan.gif.png"),
        ("scan.bmp", "auto", "scan.bmp.png"),
        ("b.jpg", "png", "b.jpg.png"),
        ("b.png", "tiff", "b.png.tif"),
    ],
)
def test_outputs_mirror_inputs_and_a_changed_format_appends_its_suffix(relative, requested, expected):
    fmt = input_rows.output_format(relative, requested)
    assert input_rows.output_relative_path(relative, fmt) == expected


def test_listing_mirrors_relative_paths_under_output(tmp_path):
    _touch(tmp_path / "in", "x/a.jpg", "x/y/b.png", "c.gif", "notes.txt")
    rows = _listed(_roots(tmp_path), (".jpg", ".png", ".gif"))
    assert [
        (
            os.path.relpath(r["input_url"], tmp_path / "in"),
            os.path.relpath(r["output_url"], tmp_path / "out"),
            r["output_format"],
        )
        for r in rows
    ] == [("c.gif", "c.gif.png", "PNG"), ("x/a.jpg", "x/a.jpg", "JPEG"), ("x/y/b.png", "x/y/b.png", "PNG")]
    assert all(r["status"] == manifest.PENDING for r in rows)


def test_every_input_file_gets_a_row_in_underscore_and_hidden_folders_too(tmp_path):
    _touch(tmp_path / "in", "_scans/a.jpg", "_manifest/b.jpg", "x/_old/.c.jpg", ".hidden/d.jpg", "e.jpg", "f.txt")
    rows = _listed(_roots(tmp_path), (".jpg",))
    assert [os.path.relpath(r["input_url"], tmp_path / "in") for r in rows] == [
        ".hidden/d.jpg",
        "_manifest/b.jpg",
        "_scans/a.jpg",
        "e.jpg",
        "x/_old/.c.jpg",
    ]
    assert {r["status"] for r in rows} == {manifest.PENDING}


def test_train_and_evaluate_listing_still_skips_bookkeeping_folders(tmp_path):
    import fsspec

    _touch(tmp_path / "in", "_manifest/b.parquet", ".cache/c.parquet", "shard-0.parquet")
    found = list(folders.iter_files(fsspec.filesystem("file"), str(tmp_path / "in"), (".parquet",)))
    assert [os.path.basename(p) for p in found] == ["shard-0.parquet"]


def test_an_output_name_another_input_has_fails_the_renamed_input_and_overwrites_nothing(tmp_path):
    _touch(tmp_path / "in", "a/scan.gif", "a/scan.gif.png", "b/scan.gif")
    rows = {os.path.relpath(r["input_url"], tmp_path / "in"): r for r in _listed(_roots(tmp_path), (".gif", ".png"))}
    assert rows["a/scan.gif.png"]["status"] == manifest.PENDING
    assert rows["a/scan.gif.png"]["output_url"] == str(tmp_path / "out" / "a" / "scan.gif.png")
    clash = rows["a/scan.gif"]
    assert clash["status"] == manifest.FAILED and clash["reason"] == "output_clash" and clash["output_url"] is None
    assert str(tmp_path / "in" / "a" / "scan.gif.png") in clash["error"]
    assert rows["b/scan.gif"]["output_url"] == str(tmp_path / "out" / "b" / "scan.gif.png")  # no clash there


@pytest.mark.parametrize("output", ["in", "in/out", "in/sub/out"])
def test_output_equal_to_or_inside_input_is_refused(tmp_path, output):
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError, match="OUTPUT outside INPUT"):
        _roots(tmp_path, output)


def test_input_inside_output_is_refused(tmp_path):
    (tmp_path / "out" / "in").mkdir(parents=True)
    with pytest.raises(ConfigError, match="inside the output"):
        input_rows.Roots.resolve(str(tmp_path / "out" / "in"), str(tmp_path / "out"), None)


@pytest.mark.parametrize("relative", ["../x.jpg", "a/../../x.jpg", "a/./b.jpg", "a//b.jpg", "/etc/x.jpg", ""])
def test_paths_that_could_escape_output_are_named(relative):
    assert input_rows.check_relative_path(relative) is not None
    assert input_rows.check_relative_path("a/b..c/d.jpg") is None


def test_input_list_entries_outside_input_or_escaping_fail_without_stopping(tmp_path):
    _touch(tmp_path / "in", "a.jpg", "b/c.png")
    _touch(tmp_path, "elsewhere/d.jpg")
    entries = [
        "a.jpg",
        str(tmp_path / "in" / "b" / "c.png"),
        str(tmp_path / "elsewhere" / "d.jpg"),
        "../elsewhere/d.jpg",
        "# comment",
        "",
    ]
    rows = input_rows.list_entry_rows(_roots(tmp_path), entries, "auto")
    assert [r["status"] for r in rows] == [manifest.PENDING, manifest.PENDING, manifest.FAILED, manifest.FAILED]
    assert rows[1]["output_url"] == str(tmp_path / "out" / "b" / "c.png")
    assert [r["reason"] for r in rows[2:]] == ["unsafe_path", "unsafe_path"]
    assert "not inside INPUT" in rows[2]["error"]
    assert "not inside INPUT" in rows[3]["error"] or "could escape OUTPUT" in rows[3]["error"]


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("kind", ["txt", "csv", "parquet"])
def test_input_lists_are_read_by_ray_data_with_duplicates_and_clashes_marked(tmp_path, kind):
    _touch(tmp_path / "in", "a.jpg", "b.jpg", "c.png")
    urls = [str(tmp_path / "in" / "a.jpg"), "b.jpg", "a.jpg", str(tmp_path / "in" / "c.png"), "b.jpg"]
    path = tmp_path / f"list.{kind}"
    if kind == "txt":
        path.write_text("# inputs\n" + "\n".join(urls) + "\n")
    elif kind == "csv":
        path.write_text("id,url\n" + "\n".join(f"{i},{u}" for i, u in enumerate(urls)) + "\n")
    else:
        pq.write_table(pa.table({"id": list(range(len(urls))), "url": urls}), path)
    rows = _entries_dataset(_roots(tmp_path), path)
    statuses = [(os.path.basename(r["input_url"]), r["status"]) for r in rows]
    assert sorted(statuses) == [
        ("a.jpg", manifest.DUPLICATE),
        ("a.jpg", manifest.PENDING),
        ("b.jpg", manifest.DUPLICATE),
        ("b.jpg", manifest.PENDING),
        ("c.png", manifest.PENDING),
    ]


def test_missing_input_or_list_is_a_config_error(tmp_path):
    (tmp_path / "in").mkdir()
    context = listing_tasks.ListingContext(
        input_url=str(tmp_path / "in"),
        output_url=str(tmp_path / "out"),
        extensions=(".jpg",),
        requested_format="auto",
        model_sha256="aa" * 32,
    )
    with pytest.raises(ConfigError, match="does not exist"):
        listing_tasks.list_dataset(str(tmp_path / "nope.txt"), context)
    with pytest.raises(ConfigError, match="does not exist"):
        input_rows.plan_units(input_rows.Roots.resolve(str(tmp_path / "gone"), str(tmp_path / "out"), None))


def test_symlink_to_a_file_outside_input_is_refused(tmp_path):
    _touch(tmp_path, "secret/key.jpg")
    _touch(tmp_path / "in", "real.jpg")
    os.symlink(tmp_path / "secret" / "key.jpg", tmp_path / "in" / "link.jpg")
    rows = {os.path.basename(r["input_url"]): r for r in _listed(_roots(tmp_path), (".jpg",))}
    assert rows["real.jpg"]["status"] == manifest.PENDING
    assert rows["link.jpg"]["status"] == manifest.FAILED and "outside INPUT" in rows["link.jpg"]["error"]


@pytest.mark.parametrize("page_names", [1, 2, 3, 1000])
def test_output_clashes_are_found_across_the_pages_of_a_folder(tmp_path, page_names):
    # scan.gif's output name scan.gif.png sorts after it, with scan.gif-2.gif between: on pages of one
    # or two names the clashing name is on a later page than the input it clashes with.
    names = ["scan.gif", "scan.gif-2.gif", "scan.gif.png", "scan.gif.png.png", "z.gif"]
    _touch(tmp_path / "in", *names)
    roots = _roots(tmp_path)
    chunks = list(input_rows.iter_unit_rows(roots, roots.input_path, False, (".gif", ".png"), "auto", page_names))
    rows = {os.path.basename(r["input_url"]): r for chunk in chunks for r in chunk}
    assert sorted(rows) == names and (len(chunks) > 1) == (page_names < len(names))
    failed = {name for name, row in rows.items() if row["status"] == manifest.FAILED}
    assert failed == {"scan.gif"} and rows["scan.gif"]["reason"] == "output_clash"
    assert rows["scan.gif.png"]["output_url"] == str(tmp_path / "out" / "scan.gif.png")
    assert rows["scan.gif-2.gif"]["output_url"] == str(tmp_path / "out" / "scan.gif-2.gif.png")


def test_a_folder_of_many_files_is_listed_a_page_at_a_time_and_planned_as_one_unit(tmp_path):
    _touch(tmp_path / "in", *(f"flat/scan_{i:05d}.jpg" for i in range(2500)), "flat/sub/deep.jpg", "small/a.jpg")
    roots = _roots(tmp_path)
    flat = f"{roots.input_path}/flat"
    # flat/ has more entries than one listing page: it is one recursive unit, not expanded (its
    # subfolder is walked by that unit's task), and its first rows come after one page.
    assert input_rows.plan_units(roots) == [
        (roots.input_path, False),
        (flat, True),
        (f"{roots.input_path}/small", False),
    ]
    chunks = input_rows.iter_unit_rows(roots, flat, True, (".jpg",), "auto")
    assert len(next(chunks)) == 1000
    assert sum(map(len, chunks)) == 1501  # the other 1500 and sub/deep.jpg
    assert len(_listed(roots, (".jpg",))) == 2502


def _folder_of_empty_scans(tmp_path, count: int, run_id: str):
    """A folder of ``count`` empty ``.jpg`` files and the listing context of a job on it: (folder, context)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(count):
        (folder / f"scan_{i:05d}.jpg").touch()
    context = listing_tasks.ListingContext(
        input_url=str(folder),
        output_url=str(tmp_path / "out"),
        extensions=(".jpg",),
        requested_format="auto",
        model_sha256="aa" * 32,
        run_id=run_id,
    )
    return folder, context


@pytest.mark.usefixtures("ray_local")
def test_the_first_blocks_of_a_big_folder_leave_its_listing_task_while_it_lists(tmp_path, gates):
    import ray

    folder, context = _folder_of_empty_scans(tmp_path, 20000, "big")
    # The listing task waits before it hands on its second page: it is certainly still listing
    # when the first block arrives (however fast the listing becomes).
    gates.hold("colorize.list", f"{folder}#1")
    dataset, progress, _ = listing_tasks.tree_dataset(context)
    batches = iter(dataset.iter_batches(batch_format="pyarrow", batch_size=None))
    first = next(batches)
    at_first = ray.get(progress.state())
    gates.release("colorize.list")
    # Read to the end rather than stop the execution mid-listing: a Ray shut down (the session's
    # end) while a listing task still streams can take the test process down with it. As the job's
    # driver does, tell the listing what came back: it pauses 4,096 rows ahead of that.
    rest, receipts = 0, listing_progress.Receipts(progress, first.num_rows)
    for batch in batches:
        rest += batch.num_rows
        receipts.add(batch.num_rows)
    assert first.num_rows + rest == 20000  # every file listed once
    # Ray Data's default block size would hold all 20,000 rows in the task until its listing ended.
    assert first.num_rows == 16 and not at_first["done"] and at_first["listed"] < 20000
    progress.close()


@pytest.mark.usefixtures("ray_local")
def test_a_listing_task_that_is_still_listing_reserves_no_cpu(tmp_path, gates):
    # A tree's listing lives as long as the job: a CPU reservation, however small, kept one of two
    # 1-CPU colorize tasks from starting beside it on a 2-CPU machine.
    import ray

    folder, context = _folder_of_empty_scans(tmp_path, 2000, "no-cpu")
    gates.hold("colorize.list", f"{folder}#1")  # the task waits, alive, before its second page
    dataset, progress, _ = listing_tasks.tree_dataset(context)
    batches = iter(dataset.iter_batches(batch_format="pyarrow", batch_size=None))
    first = next(batches)
    gates.wait_reached("colorize.list", timeout=60)
    total = ray.cluster_resources()["CPU"]
    free = [ray.available_resources().get("CPU", 0.0)]
    deadline = time.monotonic() + 10  # Ray's view of free resources lags the task's start a little
    while free[-1] != total and time.monotonic() < deadline:
        time.sleep(0.1)
        free.append(ray.available_resources().get("CPU", 0.0))
    gates.release("colorize.list")
    rest, receipts = 0, listing_progress.Receipts(progress, first.num_rows)
    for batch in batches:
        rest += batch.num_rows
        receipts.add(batch.num_rows)
    assert first.num_rows + rest == 2000
    assert free[-1] == total, f"a live listing task left {free[-1]} of {total} CPUs free"
    progress.close()


def test_the_listing_runs_ahead_of_the_driver_by_a_bound_that_follows_the_cluster_not_the_inputs():
    assert listing_progress.run_ahead_rows(2, 1, 16) == 4096  # the floor: 256 blocks of 16 rows
    assert listing_progress.run_ahead_rows(2, 4, 16) == 8448  # twice 4 x (1,024 held + 2 x 16)
    assert listing_progress.run_ahead_rows(64, 4, 16) == 16384  # 64 CPUs: 256 rows each
    actor = listing_progress.ListingProgress()
    actor.start("r", 1, run_ahead=100)
    actor.report("r", "u", 100, 0, 0, False)
    assert actor.room("r")
    actor.report("r", "u", 150, 0, 0, False)  # a unit's count is set, not added
    assert not actor.room("r") and actor.state("r")["listed"] == 150
    actor.received("r", 50, run_ahead=100)
    assert actor.room("r")


@pytest.mark.usefixtures("ray_local")
def test_the_listing_pauses_while_the_driver_has_its_bound_of_rows_on_the_way(tmp_path, tiny_model, gates, monkeypatch):
    """The listing waits once the rows it handed on, less those the driver has received, pass the bound
    (the hold point makes the wait certain); released, the job ends with every input one row."""
    import threading

    import ray
    import skimage.data
    from PIL import Image

    from archive_colorizer.colorize import run
    from archive_colorizer.colorize.config import ColorizeConfig

    folder = tmp_path / "in"
    folder.mkdir()
    small = io.BytesIO()
    Image.fromarray(skimage.data.camera()).resize((48, 48)).save(small, "JPEG", quality=90)
    for i in range(6000):
        (folder / f"scan_{i:05d}.jpg").write_bytes(small.getvalue())
    # The bound is set by the driver (this process): twice 1 listing task x (1,024 + 2 x 16) rows.
    monkeypatch.setattr(listing_progress, "RUN_AHEAD_MIN_ROWS", 0)
    monkeypatch.setattr(listing_progress, "RUN_AHEAD_ROWS_PER_CPU", 0)
    gates.hold("colorize.run_ahead", "*")
    config = ColorizeConfig(input=str(folder), output=str(tmp_path / "out"), model=tiny_model, listing_tasks=1)
    seen: list = []

    def watch() -> None:  # the job runs in this test's main thread, as in a driver process
        try:
            (run_id, _), *_ = gates.wait_reached("colorize.run_ahead", timeout=120)  # the listing waits for room
            seen.append(ray.get(listing_progress._progress_actor().actor.counts_of.remote(run_id)))
        finally:
            gates.release("colorize.run_ahead")

    watcher = threading.Thread(target=watch)
    watcher.start()
    results = [run(config)]
    watcher.join()
    (counts,) = seen
    # On the way: more than the bound, less than the bound, a page (1,000) and a look (256) more.
    assert counts["run_ahead"] == 2112 and counts["listed"] < 6000
    assert 2112 < counts["listed"] - counts["received"] <= 2112 + 1000 + listing_progress.ROOM_CHECK_ROWS
    (result,) = results
    assert (result.exit_code, result.summary["listed"], result.counts["colorized"]) == (0, 6000, 6000)


# Key ranges of an S3 prefix -------------------------------------------------------------------


def _sim_first_after(space, probes):
    def first_after(positions):
        probes.append(len(positions))
        found = [space.lower_bound(position + "\0") for position in positions]
        return [space.key(i) if i < space.n else None for i in found]

    return first_after


@pytest.mark.parametrize("layout", ["flat", "wide"])
def test_split_points_of_100m_keys_are_sampled_without_knowing_the_names(layout):
    import sys

    from tests.conftest import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import s3sim

    space, probes = s3sim.KeySpace(layout, 100_000_000), []
    points = key_ranges.sample_split_points(_sim_first_after(space, probes), "scans/", 63)
    positions = [space.index(point) for point in points]
    assert len(points) == 63 and None not in positions and positions == sorted(set(positions))
    sizes = [b - a for a, b in zip([0, *positions], [*positions, space.n], strict=True)]
    assert sum(sizes) == space.n
    assert max(sizes) <= 4 * space.n / 64  # no range more than 4x the mean
    assert len(probes) <= 12 and sum(probes) <= 1000  # rounds of LIST probes, all of a round at once


def test_key_ranges_cover_every_key_once():
    ranges = key_ranges.ranges_from_points(["b", "d"])
    keys = ["a", "b", "c", "d", "e"]
    inside = [[k for k in keys if (r.after is None or k > r.after) and (r.last is None or k <= r.last)] for r in ranges]
    assert inside == [["a", "b"], ["c", "d"], ["e"]]


def _put_keys(s3_bucket, prefix, names):
    import boto3

    url, options = s3_bucket
    client = boto3.client("s3", endpoint_url=options["endpoint_url"])
    bucket = url.removeprefix("s3://")
    for name in names:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=b"x")
    return input_rows.Roots.resolve(f"{url}/{prefix}", f"{url}/out", options)


@pytest.mark.parametrize("cut", ["a/scan.gif", "a/scan.gif-2.gif", "a/scan.gif.png", None])
def test_output_clashes_are_found_across_key_ranges(s3_bucket, cut):
    names = ["a/scan.gif", "a/scan.gif-2.gif", "a/scan.gif.png", "a/z.jpg", "b/scan.gif", "c.jpg", "notes.txt"]
    roots = _put_keys(s3_bucket, "in", names)
    # A range ends between scan.gif and its output name scan.gif.png (two pages of one key later):
    # the first range reads on past its end to decide, and no key gets two rows.
    points = (
        [f"in/{cut}"]
        if cut
        else key_ranges.sample_split_points(lambda positions: storage_first_after(roots, positions), "in/", 3)
    )
    rows = []
    for key_range in key_ranges.ranges_from_points(points):
        for chunk in key_ranges.iter_range_rows(roots, key_range, (".gif", ".png", ".jpg"), "auto", page_names=1):
            rows += chunk
    by_name = {r["input_url"].split("/in/", 1)[1]: r for r in rows}
    assert sorted(r["input_url"].split("/in/", 1)[1] for r in rows) == sorted(names[:-1])  # each input once
    failed = {name for name, row in by_name.items() if row["status"] == manifest.FAILED}
    assert failed == {"a/scan.gif"} and by_name["a/scan.gif"]["reason"] == "output_clash"
    assert by_name["a/scan.gif.png"]["output_url"] == f"{s3_bucket[0]}/out/a/scan.gif.png"
    assert by_name["b/scan.gif"]["output_url"] == f"{s3_bucket[0]}/out/b/scan.gif.png"


def storage_first_after(roots, positions):
    from archive_colorizer import folders

    bucket, prefix = key_ranges.s3_location(roots)
    return folders.first_s3_keys_after(roots.input_fs, bucket, prefix, positions)


@pytest.mark.usefixtures("ray_local")
def test_an_s3_prefix_is_listed_in_key_ranges_by_parallel_tasks_each_input_once(s3_bucket):
    import ray

    names = [f"IMG_{i:04d}.jpg" for i in range(60)] + ["sub/deep.jpg", "x.gif", "x.gif.png"]
    roots = _put_keys(s3_bucket, "flat", names)
    url, options = s3_bucket
    context = listing_tasks.ListingContext(
        input_url=roots.input_url,
        output_url=roots.output_url,
        extensions=(".jpg", ".gif", ".png"),
        requested_format="auto",
        model_sha256="aa" * 32,
        storage_options=options,
        run_id="ranges",
        listing_tasks=3,
        page_names=4,
    )
    units = listing_tasks.plan_units(context)
    assert len(units) > 3 and all(unit["ranged"] for unit in units)  # 4 ranges per task, about
    dataset, progress, index = listing_tasks.tree_dataset(context)
    rows = dataset.take_all()
    listed = sorted(r["input_url"].rsplit("/flat/", 1)[1] for r in rows)
    assert listed == sorted(names) and index is None
    assert [r["reason"] for r in rows if r["status"] == manifest.FAILED] == ["output_clash"]
    state = ray.get(progress.state())
    assert (state["listed"], state["done"], state["passed_over"]) == (len(names), True, 0)
    progress.close()


_RANGE_DRIVER = """
import json, sys
import ray
from archive_colorizer.colorize import listing_tasks

address, input_url, output_url, endpoint, result = sys.argv[1:]
ray.init(address=address, logging_level="ERROR")
ray.data.DataContext.get_current().enable_progress_bars = False
context = listing_tasks.ListingContext(
    input_url=input_url, output_url=output_url, extensions=(".jpg",), requested_format="auto",
    model_sha256="aa" * 32, storage_options={"endpoint_url": endpoint},
    run_id="lost", listing_tasks=2, page_names=5,
)
dataset, progress, _ = listing_tasks.tree_dataset(context)
listed = [row["input_url"] for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None)
          for row in batch.select(["input_url"]).to_pylist()]
state = ray.get(progress.state())
json.dump({"listed": listed, "state": state}, open(result, "w"))
"""


@pytest.mark.slow
def test_a_lost_listing_node_has_its_ranges_listed_again_and_nothing_counted_twice(s3_bucket, gates, tmp_path):
    """Head without CPUs, one worker node lists; it is removed while a range's task waits at its second page."""
    import json
    import subprocess
    import sys

    from ray.cluster_utils import Cluster

    from tests.conftest import REPO_ROOT

    names = [f"IMG_{i:04d}.jpg" for i in range(80)]
    roots = _put_keys(s3_bucket, "lost", names)
    url, options = s3_bucket
    (tmp_path / "driver.py").write_text(_RANGE_DRIVER)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    try:
        first = cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        gates.hold("colorize.list", "*#1")  # every range's task waits before its second page leaves
        command = [sys.executable, str(tmp_path / "driver.py"), cluster.address, roots.input_url]
        command += [roots.output_url, options["endpoint_url"], str(tmp_path / "result.json")]
        env = {**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)}
        with open(tmp_path / "driver.log", "wb") as log:
            driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                held = gates.wait_reached("colorize.list", process=driver)
                cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
                cluster.wait_for_nodes()
                cluster.remove_node(first, allow_graceful=False)  # the only node the held tasks can be on
            finally:
                gates.release("colorize.list")
            assert driver.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        cluster.shutdown()
    result = json.loads((tmp_path / "result.json").read_text())
    held_ranges = {key.rsplit("#", 1)[0] for key, _ in held}
    assert held_ranges and all(key.endswith("#1") for key, _ in held)
    # Every input once, though the held ranges' first pages had left their tasks before the node went.
    assert sorted(u.rsplit("/", 1)[1] for u in result["listed"]) == names
    assert (result["state"]["listed"], result["state"]["done"]) == (len(names), True)
