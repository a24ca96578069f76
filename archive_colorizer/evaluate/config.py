"""Settings of ``archive-colorizer evaluate``: score a generator on held-out colour photographs."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from archive_colorizer.config import IMAGE_EXTENSIONS, RayOptions, StorageOptions, dotted_suffixes
from archive_colorizer.images import DEFAULT_MAX_PIXELS, GRAY_CHROMA_THRESHOLD


class EvaluateConfig(StorageOptions, RayOptions):
    """Settings of ``archive-colorizer evaluate``: score a generator on held-out colour photographs.

    See :func:`archive_colorizer.evaluate.run` for the metrics and their conventions.
    """

    model: str | None = Field(
        None,
        description="generator artifact folder (generator.safetensors + generator.json), any fsspec URL; required "
        "unless --votes",
        json_schema_extra={"required_unless": "votes"},
    )
    data: str | None = Field(
        None,
        description="held-out images: Parquet shards written by prepare (the --split rows are used) or a folder of "
        "colour photographs (recursive; made gray here); any fsspec URL; required unless --votes",
        json_schema_extra={"required_unless": "votes"},
    )
    out: str | None = Field(
        None,
        description="folder for evaluation.json, contact_sheet.png and blind_test/; none: MODEL/evaluation",
    )
    split: str = Field("val", description="split of the shards to evaluate on (ignored for a folder of photographs)")
    size: int = Field(
        256,
        ge=16,
        description="side of the square images scored: shorter side resized to it, centre crop (Zhang et al. "
        "score 256x256)",
    )
    model_size: int | None = Field(
        None,
        ge=16,
        description="side in pixels of the gray image the generator sees; default: the artifact's working size",
    )
    max_images: int | None = Field(
        1000, ge=1, description="score at most this many images (the first ones found); none: all"
    )
    batch_size: int = Field(16, ge=1, description="images per generator forward pass")
    sheet_images: int = Field(
        8, ge=0, le=64, description="rows (first images) on the contact sheet; 0: no contact sheet"
    )
    gray_threshold: float = Field(
        GRAY_CHROMA_THRESHOLD,
        ge=0,
        description="photographs of a folder whose mean chroma (8-bit BT.601 levels) is below this are skipped: gray "
        "images cannot be a colour ground truth",
    )
    extensions: list[str] = Field(
        default_factory=lambda: list(IMAGE_EXTENSIONS),
        description="image file suffixes read from a folder (case-insensitive)",
    )
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="skip images with more pixels than this without decoding them"
    )
    degrade: str | None = Field(
        None,
        description="also score every image made gray and then damaged by this recipe (old-photo, scan, or a YAML "
        "file; L only, seeded per image), next to the clean scores; none: clean only",
    )
    degrade_seed: int = Field(0, description="seed of the --degrade damage (each image's own seed derives from it)")
    blind_test_images: int = Field(
        24,
        ge=0,
        description="held-out photographs on the blind test page OUT/blind_test/index.html (real and colorized side "
        "by side in random order; a person picks the real one and downloads the votes); 0: no page",
    )
    votes: list[str] | None = Field(
        None,
        description="vote files downloaded from the blind test page: print the fooling rate with its 95 percent "
        "interval (scored against OUT/blind_test/key.json) instead of evaluating",
    )
    gpu: bool = Field(
        False,
        description="run the generator in a Ray task with one GPU (on a GPU node of the cluster, which reads MODEL and "
        "DATA itself: give URLs every node reaches; bf16 autocast where native, else fp16); --ray-address, "
        "--ray-connect-timeout and --stall-timeout apply only with --gpu",
    )

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return dotted_suffixes(value)

    @model_validator(mode="after")
    def _model_and_data_unless_votes(self) -> EvaluateConfig:
        if self.votes:
            if self.out is None and self.model is None:
                raise ValueError(
                    "--votes needs --out (the evaluation's folder, holding blind_test/key.json) or --model"
                )
        elif self.model is None or self.data is None:
            raise ValueError("--model and --data are required (unless --votes scores a blind test)")
        return self
