"""Listing inputs, mirroring them under OUTPUT, and refusing what could escape it."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive_colorizer.colorize import listing, manifest
from archive_colorizer.errors import ConfigError


def _roots(tmp_path, output="out"):
    return listing.Roots.resolve(str(tmp_path / "in"), str(tmp_path / output), None)


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
    fmt = listing.output_format(relative, requested)
    assert listing.output_relative_path(relative, fmt) == expected


def test_listing_mirrors_relative_paths_under_output(tmp_path):
    _touch(tmp_path / "in", "x/a.jpg", "x/y/b.png", "c.gif", "notes.txt", ".hidden.jpg")
    rows = list(listing.iter_listed(_roots(tmp_path), (".jpg", ".png", ".gif"), "auto"))
    assert [
        (
            os.path.relpath(r["input_url"], tmp_path / "in"),
            os.path.relpath(r["output_url"], tmp_path / "out"),
            r["output_format"],
        )
        for r in rows
    ] == [("c.gif", "c.gif.png", "PNG"), ("x/a.jpg", "x/a.jpg", "JPEG"), ("x/y/b.png", "x/y/b.png", "PNG")]
    assert all(r["status"] == manifest.PENDING for r in rows)


@pytest.mark.parametrize("output", ["in", "in/out", "in/sub/out"])
def test_output_equal_to_or_inside_input_is_refused(tmp_path, output):
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError, match="OUTPUT outside INPUT"):
        _roots(tmp_path, output)


def test_input_inside_output_is_refused(tmp_path):
    (tmp_path / "out" / "in").mkdir(parents=True)
    with pytest.raises(ConfigError, match="inside the output"):
        listing.Roots.resolve(str(tmp_path / "out" / "in"), str(tmp_path / "out"), None)


@pytest.mark.parametrize("relative", ["../x.jpg", "a/../../x.jpg", "a/./b.jpg", "a//b.jpg", "/etc/x.jpg", ""])
def test_paths_that_could_escape_output_are_named(relative):
    assert listing.check_relative_path(relative) is not None
    assert listing.check_relative_path("a/b..c/d.jpg") is None


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
    (tmp_path / "list.txt").write_text("\n".join(entries) + "\n")
    rows = list(listing.iter_from_list(_roots(tmp_path), str(tmp_path / "list.txt"), "auto", None))
    assert [r["status"] for r in rows] == [manifest.PENDING, manifest.PENDING, manifest.FAILED, manifest.FAILED]
    assert rows[1]["output_url"] == str(tmp_path / "out" / "b" / "c.png")
    assert [r["reason"] for r in rows[2:]] == ["unsafe_path", "unsafe_path"]
    assert "not inside INPUT" in rows[2]["error"]
    assert "not inside INPUT" in rows[3]["error"] or "could escape OUTPUT" in rows[3]["error"]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_input_list_tables_use_the_url_column(tmp_path, kind):
    _touch(tmp_path / "in", "a.jpg", "b.jpg")
    table = pa.table({"id": [1, 2], "url": [str(tmp_path / "in" / "a.jpg"), "b.jpg"]})
    path = tmp_path / f"list.{kind}"
    if kind == "csv":
        path.write_text(
            "id,url\n" + "\n".join(f"{i},{u}" for i, u in zip(*table.to_pydict().values(), strict=True)) + "\n"
        )
    else:
        pq.write_table(table, path)
    rows = list(listing.iter_from_list(_roots(tmp_path), str(path), "auto", None))
    assert [r["input_url"] for r in rows] == [str(tmp_path / "in" / "a.jpg"), str(tmp_path / "in" / "b.jpg")]


def test_missing_input_or_list_is_a_config_error(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError, match="does not exist"):
        list(listing.iter_from_list(_roots(tmp_path), str(tmp_path / "nope.txt"), "auto", None))


def test_symlink_to_a_file_outside_input_is_refused(tmp_path):
    _touch(tmp_path, "secret/key.jpg")
    _touch(tmp_path / "in", "real.jpg")
    os.symlink(tmp_path / "secret" / "key.jpg", tmp_path / "in" / "link.jpg")
    rows = {os.path.basename(r["input_url"]): r for r in listing.iter_listed(_roots(tmp_path), (".jpg",), "auto")}
    assert rows["real.jpg"]["status"] == manifest.PENDING
    assert rows["link.jpg"]["status"] == manifest.FAILED and "outside INPUT" in rows["link.jpg"]["error"]
