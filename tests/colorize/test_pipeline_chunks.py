"""Listing chunks: small first (parallel start), growing for huge archives, resume marks set."""

from __future__ import annotations

from itertools import islice

from archive_colorizer.colorize import manifest, pipeline


def test_chunks_start_small_and_grow_to_a_cap():
    sizes = list(islice(pipeline.chunk_sizes(16, 128, per_size=2), 12))
    assert sizes == [16, 16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128]


def test_listing_chunks_keep_every_row_once_and_mark_finished_inputs():
    rows = [manifest.new_row(f"/in/{i}.jpg", output_url=f"/out/{i}.jpg") for i in range(1000)]
    rows[3] = manifest.new_row("/in/3.jpg", status=manifest.FAILED, reason="unsafe_path")
    done = manifest.to_table(
        [dict(rows[5], status=manifest.COLORIZED, model_sha256="ab" * 32, recorded_at=None)], manifest.MANIFEST_SCHEMA
    )
    tables = list(pipeline.listing_chunks(rows, manifest.ResumeIndex.from_manifest(done), 16))
    assert [t.num_rows for t in tables][:9] == [16] * 8 + [32]
    listed = [row for table in tables for row in table.to_pylist()]
    assert [row["input_url"] for row in listed] == [f"/in/{i}.jpg" for i in range(1000)]
    assert [i for i, row in enumerate(listed) if row["previous_sha256"]] == [5]
    assert listed[5]["previous_sha256"] == "ab" * 32 and listed[3]["status"] == manifest.FAILED
