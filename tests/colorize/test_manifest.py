"""Manifest parts, final rows across runs, the resume index and the run history."""

from __future__ import annotations

import datetime as dt

from archive_colorizer.colorize import manifest

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


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


def test_a_rewritten_part_replaces_its_rows(tmp_path):
    run = manifest.RunInfo("r1", T0, "aa" * 32, "0.1.0")
    name = manifest.part_name(run, ["/in/a.jpg", "/in/b.jpg"])
    assert name == manifest.part_name(run, ["/in/a.jpg", "/in/b.jpg"]) != manifest.part_name(run, ["/in/a.jpg"])
    manifest.write_part(str(tmp_path), name, _rows("r1", 0, {"a": "colorized", "b": "colorized"}), None)
    manifest.write_part(str(tmp_path), name, _rows("r1", 1, {"a": "colorized", "b": "failed"}), None)
    table = manifest.read_manifest(str(tmp_path))
    assert table.num_rows == 2 and table.column("status").to_pylist() == ["colorized", "failed"]
    assert table.schema == manifest.MANIFEST_SCHEMA
    assert [p.name for p in (tmp_path / "_manifest").iterdir()] == [name]  # no temporary files left


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
    index = manifest.ResumeIndex.from_manifest(manifest.to_table(rows, manifest.MANIFEST_SCHEMA))
    assert len(index) == 1
    assert index.lookup("/in/a.jpg", "/out/a.jpg") == "11" * 32
    assert index.lookup("/in/b.jpg", "/out/b.jpg") is None  # its latest row failed
    assert index.lookup("/in/a.jpg", "/out/a.jpg.png") is None  # another output (format) is not finished
    assert (
        manifest.ResumeIndex.from_manifest(manifest.MANIFEST_SCHEMA.empty_table()).lookup("/in/a.jpg", "/out/a.jpg")
        is None
    )


def _write_run(folder, run: manifest.RunInfo, minutes: int, statuses: dict[str, str]) -> list[dict]:
    rows = _rows(run.run_id, minutes, statuses)
    for row in rows:  # one part per input, as tasks would write them
        manifest.write_part(str(folder), manifest.part_name(run, [row["input_url"]]), [row], None)
    return rows


def test_run_history_counts_each_run(tmp_path):
    _write_run(tmp_path, manifest.RunInfo("r1", T0, "aa" * 32, "0.1.0"), 0, {"a": "colorized", "b": "failed"})
    _write_run(
        tmp_path,
        manifest.RunInfo("r2", T0 + dt.timedelta(minutes=9), "aa" * 32, "0.1.0"),
        9,
        {"a": "skipped_existing", "b": "colorized"},
    )
    history = manifest.run_history(manifest.read_manifest(str(tmp_path)))
    assert [run["run_id"] for run in history] == ["r1", "r2"]
    assert history[0]["counts"] == {"colorized": 1, "skipped_existing": 0, "skipped_color": 0, "failed": 1}
    assert history[1]["counts"]["skipped_existing"] == 1
    assert manifest.read_manifest(str(tmp_path / "nothing")).num_rows == 0


def test_a_committed_run_file_replaces_the_runs_parts_and_an_aborted_one_leaves_them(tmp_path):
    first, second = manifest.RunInfo("r1", T0, "aa" * 32, "0.1.0"), manifest.RunInfo("r2", T0, "aa" * 32, "0.1.0")
    rows = _write_run(tmp_path, first, 0, {"a": "colorized", "b": "failed"})
    _write_run(tmp_path, second, 5, {"a": "skipped_existing"})
    committed = manifest.RunManifest(str(tmp_path), first)
    committed.write(manifest.to_table(rows, manifest.MANIFEST_SCHEMA))
    committed.commit()
    aborted = manifest.RunManifest(str(tmp_path), second)
    aborted.write(manifest.to_table(_rows("r2", 5, {"a": "skipped_existing"}), manifest.MANIFEST_SCHEMA))
    aborted.abort()
    names = sorted(p.name for p in (tmp_path / "_manifest").iterdir())
    assert (
        len(names) == 2
        and names[1] == manifest.run_file_name(first)
        and names[0].startswith("part-20260101T000000-r2-")
    )
    table = manifest.read_manifest(str(tmp_path))
    assert sorted(zip(table.column("run_id").to_pylist(), table.column("input_url").to_pylist(), strict=True)) == [
        ("r1", "/in/a.jpg"),
        ("r1", "/in/b.jpg"),
        ("r2", "/in/a.jpg"),
    ]
