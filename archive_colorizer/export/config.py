"""Settings of ``archive-colorizer export``: a training checkpoint -> generator artifact."""

from __future__ import annotations

from pydantic import Field

from archive_colorizer.config import StorageOptions


class ExportConfig(StorageOptions):
    """Settings of ``archive-colorizer export``: a training checkpoint -> generator artifact."""

    checkpoint: str = Field(
        description="a checkpoint folder of a run directory (checkpoint_epoch_NNNN)",
        json_schema_extra={"cli": "positional"},
    )
    out: str = Field(
        description="artifact folder to write (generator.safetensors + generator.json)",
        json_schema_extra={"cli": "positional"},
    )
