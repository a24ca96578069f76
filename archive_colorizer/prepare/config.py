"""Settings of ``archive-colorizer prepare``: photo collections -> Parquet shards (see its ``job``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from archive_colorizer.colorfulness import LOW_COLOR_THRESHOLD
from archive_colorizer.config import IMAGE_EXTENSIONS, RayOptions, StorageOptions
from archive_colorizer.images import DEFAULT_MAX_PIXELS, GRAY_CHROMA_THRESHOLD


class PrepareConfig(StorageOptions, RayOptions):
    """Settings of ``archive-colorizer prepare INPUT OUTPUT``: photo collections -> Parquet shards.

    See :func:`archive_colorizer.prepare.run` for what the job does with them.
    """

    input: str = Field(
        description="photo collection: a folder or prefix of images (recursive; .zip, .tar and .parquet files in it "
        "are read too), a .zip or .tar archive, or a Parquet file with a Hugging Face image column; any fsspec URL",
        json_schema_extra={"cli": "positional"},
    )
    output: str = Field(
        description="folder or prefix for the Parquet shards, _stats.json and _config.yaml; must be empty or missing "
        "(see --overwrite) and not inside INPUT",
        json_schema_extra={"cli": "positional"},
    )
    size: int = Field(
        286,
        ge=16,
        description="shorter side of the stored images in pixels, aspect ratio kept (286 leaves room for a 256 "
        "random crop)",
    )
    min_size: int = Field(
        128,
        ge=1,
        description="drop images whose shorter side (after EXIF orientation) is below this many pixels "
        "(dropped_small); larger ones below --size are upscaled",
    )
    gray_threshold: float = Field(
        GRAY_CHROMA_THRESHOLD,
        ge=0,
        description="drop images whose mean chroma is below this (dropped_grayscale): the mean distance of (Cb, Cr) "
        "from neutral gray in 8-bit BT.601 levels on a thumbnail of at most 256 px; gray scans score 0-2, colour "
        "photographs about 15-55",
    )
    color_threshold: float = Field(
        LOW_COLOR_THRESHOLD,
        ge=0,
        description="drop images whose Hasler-Suesstrunk colourfulness (on a thumbnail of at most 256 px) is below "
        "this (dropped_low_color): colour photos measured 10.5-100, their 10 %-saturation versions 1.4-9.9; 0 turns "
        "the test off",
    )
    val_fraction: float = Field(
        0.02,
        ge=0,
        le=1,
        description="fraction of images put in the 'val' split, chosen by a stable hash of each image's path relative "
        "to INPUT (the same photo gets the same split on every run and from a folder, zip, tar or bucket alike)",
    )
    seed: int = Field(
        0, ge=0, lt=2**63, description="salt of the split hash: another seed draws another validation set"
    )
    rows_per_shard: int = Field(
        1000, ge=1, description="inputs per shard task; a shard holds this many rows less the dropped images"
    )
    mix_window_shards: int = Field(
        64,
        ge=1,
        description="shards dealt together from one window of rows-per-shard x this many listed inputs, in a seeded "
        "random order, so the categories of a folder-per-category tree are spread across shards (the driver holds "
        "one window of the listing, ~300 bytes an input); 1 keeps the listing order",
    )
    extensions: list[str] = Field(
        default_factory=lambda: list(IMAGE_EXTENSIONS),
        description="image file suffixes to read (case-insensitive), in folders and inside archives",
    )
    jpeg_quality: int = Field(
        95, ge=1, le=100, description="JPEG quality of the stored images (4:4:4 chroma at 90 and above)"
    )
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="drop images with more pixels than this before decoding them (dropped_too_large)",
    )
    overwrite: bool = Field(
        False,
        description="replace what an earlier prepare wrote in OUTPUT (shard-*.parquet, _stats*, _config.yaml); "
        "other files are left alone",
    )
    output_storage_options: dict[str, Any] | None = Field(
        None,
        description="fsspec option for OUTPUT when it needs other ones than INPUT (--storage-option), e.g. anon=false",
        json_schema_extra={"cli_name": "output-storage-option"},
    )
    read_threads: int = Field(
        8, ge=1, le=256, description="threads per shard task reading input files (hides object-store latency)"
    )
    max_tasks: int | None = Field(
        None, ge=1, description="shard tasks in flight at once; none means twice the cluster's CPUs"
    )
    progress: bool = Field(True, description="show a progress bar on stderr")

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        cleaned = [ext.strip().lower() for ext in value if ext.strip()]
        if not cleaned:
            raise ValueError("at least one extension is needed, e.g. .jpg")
        return [ext if ext.startswith(".") else "." + ext for ext in cleaned]

    @property
    def output_options(self) -> dict[str, Any]:
        """The fsspec options for OUTPUT: ``output_storage_options`` if given, else ``storage_options``."""
        return dict(self.storage_options if self.output_storage_options is None else self.output_storage_options)
