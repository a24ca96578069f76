"""The manifest: parts of at most N rows written by the driver, final rows across runs, resume, run history."""

from __future__ import annotations

import datetime as dt

import pyarrow.dataset as pads

from archive_colorizer.colorize import listing_tasks, manifest, manifest_writer, resume

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
RUN = manifest.RunInfo("r1", T0, "aa" * 32, "0.1.0")


def _rows(run_id: str, minutes: int, statuses: dict[str, str], sha: str = "aa" * 32) -> list[dict]:
    return [
        manifest.new_row(
            f"/in/{name}.jpg",
            output_url=f"/out/{name}.jpg",
            status=status,
            run_id=run_id,
            recorded_at=T0 + dt.timedelta(minutes=minutes),
            model_sha256=sha,
        )
        for name, status in statuses.items()
    ]


def _table(count: int, status: str = "colorized", first: int = 0):
    rows = _rows("r1", 0, {f"{i:05d}": status for i in range(first, first + count)})
    return manifest.to_table(rows, manifest.RESULT_SCHEMA)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_writer_makes_one_part_per_n_rows_and_rewrites_only_the_open_one(tmp_path):
    clock = FakeClock()
    writer = manifest_writer.ManifestWriter(str(tmp_path), RUN, rows_per_part=100, flush_seconds=30, clock=clock)
    for start in range(0, 250, 25):  # 250 rows in batches of 25, 10 s apart
        writer.write(_table(25, first=start))
        clock.now += 10
    folder = tmp_path / manifest.MANIFEST_DIR
    # part 0 full at 30 s; part 1 flushed with 75 rows at 60 s (30 s later), rewritten full at 70 s;
    # the last 50 rows wait (20 s < 30 s)
    assert sorted(p.name for p in folder.iterdir()) == [manifest_writer.part_name(RUN, i) for i in range(2)]
    assert writer.parts_written == 3
    clock.now += 15  # 35 s since the last write: the next batch, even an empty one, flushes the open part
    writer.write(_table(0))
    assert pads.dataset(folder / manifest_writer.part_name(RUN, 2)).count_rows() == 50 and writer.parts_written == 4
    writer.close()
    assert writer.parts_written == 4  # nothing new since the flush: no rewrite
    table = manifest.read_manifest(str(tmp_path))
    assert table.num_rows == 250 and sorted(table.column("input_url").to_pylist()) == [
        f"/in/{i:05d}.jpg" for i in range(250)
    ]
    assert [pads.dataset(p).count_rows() for p in sorted(folder.iterdir())] == [100, 100, 50]
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no temporary files left


def test_duplicates_are_counted_but_never_written(tmp_path):
    writer = manifest_writer.ManifestWriter(str(tmp_path), RUN)
    rows = _rows("r1", 0, {"a": "colorized", "b": "failed"}) + _rows("r1", 0, {"a": manifest.DUPLICATE})
    writer.write(manifest.to_table(rows, manifest.RESULT_SCHEMA))
    writer.close()
    assert writer.counts == {"colorized": 1, "failed": 1, manifest.DUPLICATE: 1}
    assert sorted(manifest.read_manifest(str(tmp_path)).column("status").to_pylist()) == ["colorized", "failed"]
    (record,) = manifest_writer.read_run_history(str(tmp_path))
    assert record["duplicates"] == 1 and record["counts"]["failed"] == 1 and record["finished"]


def test_the_manifest_is_one_parquet_dataset_for_pyarrow_and_duckdb(tmp_path):
    import duckdb

    writer = manifest_writer.ManifestWriter(str(tmp_path), RUN, rows_per_part=2)
    writer.write(manifest.to_table(_rows("r1", 0, {"a": "colorized", "b": "failed", "c": "failed"})))
    writer.close()
    folder = tmp_path / manifest.MANIFEST_DIR
    assert pads.dataset(folder, format="parquet").to_table().num_rows == 3
    failed = duckdb.sql(
        f"SELECT input_url FROM read_parquet('{folder}/*.parquet') WHERE run_id = 'r1' AND status = 'failed' "
        "ORDER BY input_url"
    ).fetchall()
    assert failed == [("/in/b.jpg",), ("/in/c.jpg",)]


def test_final_row_is_the_one_recorded_last():
    table = manifest.to_table(
        _rows("r2", 5, {"a": "skipped_existing", "b": "colorized"})
        + _rows("r1", 0, {"a": "colorized", "b": "failed", "c": "failed"}),
        manifest.MANIFEST_SCHEMA,
    )
    final = {row["input_url"]: (row["status"], row["run_id"]) for row in manifest.latest_rows(table).to_pylist()}
    assert final == {
        "/in/a.jpg": ("skipped_existing", "r2"),
        "/in/b.jpg": ("colorized", "r2"),
        "/in/c.jpg": ("failed", "r1"),
    }


def test_resume_index_knows_finished_pairs_and_their_model():
    rows = _rows("r1", 0, {"a": "colorized", "b": "colorized", "c": "failed", "d": "skipped_color"}, sha="11" * 32)
    rows += _rows("r2", 5, {"a": "skipped_existing", "b": "failed"}, sha="22" * 32)
    rows[4]["model_sha256"] = "11" * 32  # skipped_existing keeps the sha of the model that made the output
    index = resume.ResumeIndex.from_manifest(manifest.to_table(rows, manifest.MANIFEST_SCHEMA))
    assert len(index) == 1
    assert index.lookup("/in/a.jpg", "/out/a.jpg") == "11" * 32
    assert index.lookup("/in/b.jpg", "/out/b.jpg") is None  # its latest row failed
    assert index.lookup("/in/a.jpg", "/out/a.jpg.png") is None  # another output (format) is not finished
    empty = resume.ResumeIndex.from_manifest(manifest.MANIFEST_SCHEMA.empty_table())
    assert empty.lookup("/in/a.jpg", "/out/a.jpg") is None


def test_finished_inputs_are_dropped_at_listing_and_another_generators_redone_unless_kept(ray_local, tmp_path):
    import ray

    rows = _rows("r1", 0, {"a": "colorized"}, sha="11" * 32) + _rows("r1", 0, {"b": "colorized"}, sha="22" * 32)
    ref = ray.put(resume.ResumeIndex.from_manifest(manifest.to_table(rows, manifest.MANIFEST_SCHEMA)))
    index = resume.ShardedIndex([""], [ref], [])
    listed = [manifest.new_row(f"/in/{n}.jpg", output_url=f"/out/{n}.jpg") for n in "abc"]
    context = listing_tasks.ListingContext(
        input_url="/in",
        output_url="/out",
        extensions=(".jpg",),
        requested_format="auto",
        model_sha256="22" * 32,
        index=index,
    )
    kept, other, passed = listing_tasks.drop_finished(listed, context)
    # a: finished by generator 11, redone with 22; b: finished by 22, passed over (no row); c: new
    assert ([row["input_url"] for row in kept], other, passed) == (["/in/a.jpg", "/in/c.jpg"], 1, 1)
    keep = listing_tasks.ListingContext(
        input_url="/in",
        output_url="/out",
        extensions=(".jpg",),
        requested_format="auto",
        model_sha256="22" * 32,
        keep_other_models=True,
        index=index,
    )
    kept, other, passed = listing_tasks.drop_finished(listed, keep)
    assert ([row["input_url"] for row in kept], other, passed) == (["/in/c.jpg"], 0, 2)


def test_resume_index_is_built_on_the_cluster_kept_and_compacted_across_runs(ray_local, tmp_path):
    import ray

    writer = manifest_writer.ManifestWriter(str(tmp_path), RUN, rows_per_part=3)
    writer.write(_table(10))
    writer.write(manifest.to_table(_rows("r1", 9, {"00004": "failed"}), manifest.RESULT_SCHEMA))
    writer.close()
    assert resume.plan_index(str(tmp_path / "nothing"), "run2", None) is None
    plan = resume.plan_index(str(tmp_path), "run2", None)
    assert plan is not None and plan.bounds is None and len(plan.new_parts) == 4  # 11 rows in parts of 3
    # Two shards: inputs up to /in/00004.jpg, and the rest.
    index = plan.build(["", "/in/00004.jpg"])
    shards = ray.get(index.refs)
    assert [len(shard) for shard in shards] == [4, 5]  # 10 colorized, then 00004 failed later
    assert index.lookup("/in/00003.jpg", "/out/00003.jpg") == "aa" * 32
    assert index.lookup("/in/00004.jpg", "/out/00004.jpg") is None
    assert index.lookup("/in/00009.jpg", "/out/00009.jpg") == "aa" * 32
    assert all(shard.nbytes == 10 * len(shard) for shard in shards)  # 10 bytes per finished input
    index.commit()
    # The next run reads the kept shards and no manifest part of the runs they cover.
    again = resume.plan_index(str(tmp_path), "run3", None)
    assert again is not None and again.bounds == ["", "/in/00004.jpg"] and again.new_parts == []
    assert again.split_points() == ["/in/00004.jpg"]
    kept = again.build([""])  # a kept index keeps its own bounds
    assert kept.bounds == ["", "/in/00004.jpg"]
    assert [len(shard) for shard in ray.get(kept.refs)] == [4, 5]
    assert ray.get(kept.files) == ray.get(index.files)  # nothing new: no shard rewritten


def test_to_table_is_pyarrows_from_pylist_of_the_same_rows():
    import pyarrow as pa

    full = [
        manifest.new_row(f"s3://a/in/{i}.jpg", output_url=f"s3://a/out/{i}.jpg", output_format="JPEG") for i in range(5)
    ]
    full[2].update(width=7, height=9, mean_chroma=1.5, data=b"xy")
    partial = [{"input_url": "a", "status": "failed"}, {"input_url": "b", "width": 3, "unknown": 1}]
    for rows in (full, partial, [], full + partial):
        expected = pa.Table.from_pylist(
            [{n: r.get(n) for n in manifest.ROW_SCHEMA.names} for r in rows], schema=manifest.ROW_SCHEMA
        )
        assert manifest.to_table(rows).equals(expected)
    assert manifest.to_table(full).column("width").to_pylist() == [None, None, 7, None, None]


def test_listing_rows_build_the_urls_storage_builds():
    from archive_colorizer import storage
    from archive_colorizer.colorize import input_rows

    options = {"endpoint_url": "http://127.0.0.1:1", "key": "k", "secret": "s"}
    roots = input_rows.Roots.resolve("s3://archive/scans", "s3://archive/out", options)
    for path in ["archive/scans/a.jpg", "archive/scans/odd://name.gif", "s3://archive/scans/b.png"]:
        assert roots.input_url_of(path) == storage.to_url(roots.input_fs, path)
    row = input_rows.input_row(roots, "archive/scans/d/b.gif", "d/b.gif", "auto")
    assert (row["input_url"], row["output_url"], row["output_format"]) == (
        "s3://archive/scans/d/b.gif",
        "s3://archive/out/d/b.gif.png",
        "PNG",
    )
    clash = input_rows.input_row(roots, "archive/scans/d/b.gif", "d/b.gif", "auto", frozenset({"b.gif.png"}))
    assert clash["reason"] == "output_clash"
    kept = input_rows.input_row(roots, "archive/scans/d/c.JPG", "d/c.JPG", "auto", frozenset({"c.JPG.jpg"}))
    assert kept["output_url"] == "s3://archive/out/d/c.JPG" and kept["output_format"] == "JPEG"
    assert (
        input_rows.input_row(roots, "archive/scans/c.jpg", "c.jpg", "png")["output_url"] == "s3://archive/out/c.jpg.png"
    )
