"""The actor stage: one generator per actor predicts ab for batches of small gray images.

The Ray Data batch-inference pattern: a callable class loads the model once in ``__init__``
and maps batches in ``__call__``. The squeezed gray images become the generator's input
``L/50 - 1`` (:func:`color.gray_to_l`) on the actor's device; on CUDA the forward pass runs
under bf16 autocast where the GPU computes bf16 natively, else fp16
(:func:`archive_colorizer.devices.inference_autocast_dtype`); the prediction is turned into
BT.601 chroma at the model's size (:func:`color.predicted_chroma`), which is all the merge
stage needs. Rows that are not
pending pass through untouched. The actors are the only processes of the job that load torch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from archive_colorizer import color, gates
from archive_colorizer.colorize import manifest
from archive_colorizer.devices import inference_autocast_dtype
from archive_colorizer.errors import ArtifactError, JobError
from archive_colorizer.models.artifact import load_generator


class Predictor:
    """Ray Data actor: predicts Cb/Cr chroma for the pending rows of a batch.

    Args:
        model_url: generator artifact folder.
        expected_sha256: sha256 the driver saw; an actor that loads other weights refuses to
            start (the artifact was replaced during the job).
        model_size: side S of the square input, divisible by ``2**num_downs``.
        use_gpu: run on ``cuda`` under bf16 autocast where native, else fp16 (the actor is given one GPU).
        num_threads: torch CPU threads when not on a GPU.
        storage_options: fsspec options for ``model_url``.

    Raises:
        ArtifactError: the artifact cannot be loaded or changed since the driver checked it.
        JobError: ``use_gpu`` but this actor sees no CUDA device.
    """

    def __init__(
        self,
        model_url: str,
        expected_sha256: str,
        model_size: int,
        use_gpu: bool = False,
        num_threads: int = 1,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if use_gpu and not torch.cuda.is_available():
            raise JobError("--gpu was given but this predictor actor sees no CUDA device")
        self.device = torch.device("cuda" if use_gpu else "cpu")
        if not use_gpu:
            torch.set_num_threads(max(1, num_threads))
        artifact = load_generator(model_url, device=self.device, storage_options=storage_options)
        if artifact.sha256 != expected_sha256:
            raise ArtifactError(
                f"the generator at {artifact.url!r} changed during the job: sha256 {artifact.sha256}, "
                f"the job started with {expected_sha256}"
            )
        self.generator = artifact.generator
        self.model_size = model_size
        self.autocast_dtype = inference_autocast_dtype(self.device)  # None on a CPU

    def predict(self, gray: np.ndarray) -> np.ndarray:
        """Chroma for a batch of squeezed gray images.

        The batch crosses to the device and back once (pinned host memory and ``non_blocking``
        copies on CUDA), not once per image.

        Args:
            gray: (N, S, S) uint8 gray values.

        Returns:
            (N, 2, S, S) float32 chroma: BT.601 Cb/Cr offsets from neutral in 8-bit levels.
        """
        cuda = self.device.type == "cuda"
        with torch.inference_mode():
            # torch.from_numpy wants memory it may write: a read-only batch is copied (small: (N, S, S) uint8).
            host_gray = torch.from_numpy(gray if gray.flags.writeable else gray.copy())
            if cuda:
                host_gray = host_gray.pin_memory()
            gray_tensor = host_gray.to(self.device, non_blocking=cuda)[:, None].float() / 255.0  # (N, 1, S, S)
            l_norm = color.gray_to_l(gray_tensor)  # (N, 1, S, S) in [-1, 1]
            with torch.autocast("cuda", dtype=self.autocast_dtype or torch.float32, enabled=cuda):
                ab_norm = self.generator(l_norm)  # (N, 2, S, S)
            chroma = color.predicted_chroma_batch(l_norm, ab_norm.float())  # (N, 2, S, S) on the device
            if not cuda:
                return chroma.numpy()
            host = torch.empty(chroma.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(chroma, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()  # the copy has landed before numpy reads it
            return host.numpy()

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Ray Data batch function: pending rows of ``batch`` get ``chroma`` ((2, S, S) float32 bytes),
        their share of the call's seconds, and lose ``gray_small``; other rows pass untouched."""
        start = time.perf_counter()
        pending = pc.equal(batch.column("status"), manifest.PENDING).to_numpy(zero_copy_only=False)
        if not pending.any():
            return batch
        indices = np.flatnonzero(pending)
        gray_bytes = batch.column("gray_small").take(pa.array(indices)).to_pylist()
        urls = batch.column("input_url").take(pa.array(indices)).to_pylist() if gates.active() else []
        chroma = self._predict_bytes(gray_bytes, urls)
        share = (time.perf_counter() - start) / len(indices)
        chroma_column: list[bytes | None] = [None] * batch.num_rows
        seconds = batch.column("seconds").to_numpy(zero_copy_only=False).copy()
        for position, index in enumerate(indices):
            chroma_column[index] = chroma[position].tobytes()
            seconds[index] += share
        batch = batch.set_column(batch.schema.get_field_index("chroma"), "chroma", pa.array(chroma_column, pa.binary()))
        batch = batch.set_column(batch.schema.get_field_index("seconds"), "seconds", pa.array(seconds, pa.float64()))
        return batch.set_column(
            batch.schema.get_field_index("gray_small"), "gray_small", pa.nulls(batch.num_rows, pa.binary())
        )

    def predict_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`__call__` on a batch's rows as dicts (the fused stage), updated in place and returned."""
        start = time.perf_counter()
        pending = [row for row in rows if row["status"] == manifest.PENDING]
        if not pending:
            return rows
        urls = [row["input_url"] for row in pending] if gates.active() else []
        chroma = self._predict_bytes([row["gray_small"] for row in pending], urls)
        share = (time.perf_counter() - start) / len(pending)
        for row, prediction in zip(pending, chroma, strict=True):
            row.update(chroma=prediction.tobytes(), gray_small=None, seconds=row["seconds"] + share)
        return rows

    def _predict_bytes(self, gray_bytes: list[bytes], urls: list[str]) -> np.ndarray:
        """:meth:`predict` on (S, S) uint8 images given as bytes; holds at the test gate of each of ``urls``."""
        for url in urls:  # tests only: hold this call for a chosen input
            gates.hold("colorize.predict", url)
        size = self.model_size
        return self.predict(np.stack([np.frombuffer(data, np.uint8).reshape(size, size) for data in gray_bytes]))
