"""Shard files: the Hugging Face image layout, atomic writes, what an earlier run left."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from archive_colorizer import storage
from archive_colorizer.prepare.writer import SHARD_SCHEMA, ShardRows, previous_outputs, shard_name, write_shard
from tests.prepare.conftest import encode


def test_shard_has_the_hugging_face_image_layout(photos, tmp_path):
    jpeg = encode(photos["chelsea"], "JPEG", quality=95)
    rows = ShardRows()
    rows.append(jpeg, "cats/chelsea.jpg", 451, 300, "train", "/data/cats/chelsea.jpg")
    fs, root = storage.open_url(str(tmp_path))
    write_shard(fs, f"{root}/{shard_name(3)}", rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000003.parquet"]  # no temporary file left
    table = pq.read_table(tmp_path / "shard-000003.parquet")
    schema = table.schema
    assert schema.field("image").type == pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    assert [(f.name, f.type) for f in schema][1:] == [
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("split", pa.string()),
        ("source", pa.string()),
        ("label", pa.string()),
    ]
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"}
    row = table.to_pylist()[0]
    assert row["label"] == "cats"  # the image's folder, the category of a folder-per-category tree
    assert row["image"]["path"] == "cats/chelsea.jpg" and Image.open(io.BytesIO(row["image"]["bytes"])).size == (
        451,
        300,
    )
    assert table.schema.equals(SHARD_SCHEMA, check_metadata=True)


def test_previous_outputs_are_only_what_prepare_writes(tmp_path):
    for name in [
        "shard-000000.parquet",
        "shard-000007.parquet",
        "_stats.json",
        "_config.yaml",
        "_stats/shard-000000.json",
        "notes.txt",
        "other.parquet",
    ]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    fs, root = storage.open_url(str(tmp_path))
    found = [p.rsplit("/", 1)[-1] for p in previous_outputs(fs, root)]
    assert found == ["_config.yaml", "_stats", "_stats.json", "shard-000000.parquet", "shard-000007.parquet"]
