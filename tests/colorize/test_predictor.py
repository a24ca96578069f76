"""The predictor actor's class, used directly: batched prediction, pass-through, model checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer import color
from archive_colorizer.colorize import decode, manifest
from archive_colorizer.colorize.predictor import Predictor
from archive_colorizer.errors import ArtifactError
from archive_colorizer.models.artifact import load_generator


def test_pending_rows_get_the_generators_chroma_and_others_pass_through(photos, tiny_model):
    sha = load_generator(tiny_model).sha256
    predictor = Predictor(tiny_model, sha, model_size=32)
    grays = [decode.small_gray(Image.fromarray(photos[name]).convert("L"), 32) for name in ("coffee", "rocket")]
    l_norm = decode.l_norm_batch(grays)
    rows = [manifest.new_row("a.jpg", l_norm=l_norm[0].tobytes(), seconds=0.5),
            manifest.new_row("bad.jpg", status=manifest.FAILED, reason="empty"),
            manifest.new_row("b.jpg", l_norm=l_norm[1].tobytes())]
    out = predictor(manifest.to_table(rows)).to_pylist()
    assert out[1] == {**rows[1], "seconds": 0.0}
    generator = load_generator(tiny_model).generator
    with torch.inference_mode():
        ab = generator(torch.from_numpy(l_norm))
    for position, row in ((0, out[0]), (1, out[2])):
        chroma = np.frombuffer(row["chroma"], np.float32).reshape(2, 32, 32)
        expected = color.predicted_chroma(torch.from_numpy(l_norm[position]), ab[position])
        np.testing.assert_allclose(chroma, expected, atol=1e-3)
        assert row["l_norm"] is None and np.abs(chroma).max() <= 127.5
    assert out[0]["seconds"] > 0.5


def test_an_actor_refuses_a_generator_that_changed_since_the_job_started(tiny_model):
    with pytest.raises(ArtifactError, match="changed during the job"):
        Predictor(tiny_model, "0" * 64, model_size=32)
