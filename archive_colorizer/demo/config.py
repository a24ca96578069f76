"""Settings of ``archive-colorizer demo`` (``make demo``): prepare, train and colorize end to end."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from archive_colorizer.config import StorageOptions

DEMO_TRAIN_SETTINGS: dict[str, Any] = {
    "ngf": 32,
    "num_downs": 6,
    "ndf": 32,
    "n_layers": 3,
    "batch_size": 8,
    "cpus_per_worker": 0.5,
    "checkpoint_every": 4,
    "keep_checkpoints": 1,
    "sample_images": 6,
}
"""Train settings of the demo beyond pix2pix's defaults: a generator of 7.3 M parameters that
learns rough colours at 128 px in minutes on two CPU cores (``--train-option`` overrides them)."""


class DemoConfig(StorageOptions):
    """Settings of ``archive-colorizer demo`` (``make demo``): prepare, train and colorize end to end.

    See :func:`archive_colorizer.demo.run`. Without options the demo trains on photographs
    bundled with scikit-image and scikit-learn and colorizes gray ones; ``photos``, ``archive``
    and ``model`` point the same flow at your own collection, archive or generator.
    """

    output: str = Field(
        "demo-output",
        description="folder or URL for everything the demo writes (photos/, shards/, run/, archive/, colorized/, "
        "before-after.png, demo.json); an earlier demo's output there is replaced, any other non-empty folder refused",
    )
    photos: str | None = Field(
        None,
        description="your own colour photo collection to train on (anything prepare reads: folder, bucket, .zip, .tar, "
        "Parquet); none: the bundled colour photographs, cut into crops",
    )
    archive: str | None = Field(
        None,
        description="your own archive of black-and-white images to colorize (any colorize INPUT); none: the bundled "
        "gray photographs plus gray versions of the held-out colour photographs",
    )
    model: str | None = Field(
        None, description="an existing generator artifact: skip prepare and train, only colorize (and draw the figure)"
    )
    epochs: int = Field(16, ge=1, description="training epochs in total, L1 pretraining included")
    pretrain_epochs: int = Field(
        8, ge=0, description="first epochs that train the generator with L1 only, before the GAN epochs"
    )
    image_size: int = Field(
        128, ge=16, description="side of the square training crops and the generator's working size in pixels"
    )
    workers: int = Field(2, ge=0, description="Ray Train workers (one DDP rank each, on CPU)")
    crop_grid: int = Field(
        5,
        ge=1,
        le=8,
        description="each bundled training photo is cut into 1x1, 2x2, ... NxN grids of overlapping crops "
        "(55 images per photo for 5), so that an epoch has enough distinct views",
    )
    val_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="validation share of your own --photos (prepare's --val-fraction); the bundled collection "
        "validates on its held-out photos",
    )
    train_options: dict[str, Any] = Field(
        default_factory=dict,
        description="any other train setting, e.g. lr=0.001 or ngf=64 (repeatable); on top of the demo's "
        + ", ".join(f"{k}={v}" for k, v in DEMO_TRAIN_SETTINGS.items()),
        json_schema_extra={"cli_name": "train-option"},
    )
    colorize_options: dict[str, Any] = Field(
        default_factory=dict,
        description="any other colorize setting, e.g. on_color=colorize or format=png (repeatable)",
        json_schema_extra={"cli_name": "colorize-option"},
    )
    figure_rows: int = Field(4, ge=1, le=12, description="images in before-after.png (held-out photos first)")
    progress: bool = Field(True, description="show the jobs' progress bars")
    ray_address: str = Field(
        "local",
        description="local starts a Ray of this machine's CPUs for the demo and stops it at the end (no cluster, "
        "cloud or GPU); another address runs the jobs on that cluster",
    )

    @model_validator(mode="after")
    def _check_schedule(self) -> DemoConfig:
        if self.pretrain_epochs > self.epochs:
            raise ValueError(f"pretrain_epochs {self.pretrain_epochs} exceeds epochs {self.epochs}")
        return self
