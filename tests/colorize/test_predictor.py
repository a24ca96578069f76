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
    grays = np.stack(
        [decode.small_gray(Image.fromarray(photos[name]).convert("L"), 32) for name in ("coffee", "rocket")]
    )
    rows = [
        manifest.new_row("a.jpg", gray_small=grays[0].tobytes(), seconds=0.5),
        manifest.new_row("bad.jpg", status=manifest.FAILED, reason="empty"),
        manifest.new_row("b.jpg", gray_small=grays[1].tobytes()),
    ]
    out = predictor(manifest.to_table(rows)).to_pylist()
    assert out[1] == {**rows[1], "seconds": 0.0}
    # The same prediction made by hand: L of the gray, the generator, chroma of (L, ab).
    generator = load_generator(tiny_model).generator
    with torch.inference_mode():
        l_norm = color.gray_to_l(torch.from_numpy(grays)[:, None].float() / 255.0)
        ab = generator(l_norm)
    for position, row in ((0, out[0]), (1, out[2])):
        chroma = np.frombuffer(row["chroma"], np.float32).reshape(2, 32, 32)
        np.testing.assert_allclose(chroma, color.predicted_chroma(l_norm[position], ab[position]), atol=1e-3)
        assert row["gray_small"] is None and np.abs(chroma).max() <= 127.5
    assert out[0]["seconds"] > 0.5


def test_an_actor_refuses_a_generator_that_changed_since_the_job_started(tiny_model):
    with pytest.raises(ArtifactError, match="changed during the job"):
        Predictor(tiny_model, "0" * 64, model_size=32)
