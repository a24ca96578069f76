"""Settings of ``archive-colorizer train``: data-parallel pix2pix training with Ray Train."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from archive_colorizer.config import RayOptions, StorageOptions
from archive_colorizer.models.catalog import GeneratorKind, check_side, num_downs_of

_MODEL_FIELDS = ("generator", "image_size", "ngf", "num_downs", "ndf", "n_layers")


class TrainConfig(StorageOptions, RayOptions):
    """Settings of ``archive-colorizer train``: data-parallel pix2pix training with Ray Train.

    Model and optimiser defaults are pix2pix's (Isola et al. 2017): ``unet_256`` generator,
    70x70 PatchGAN, Adam lr 2e-4 betas (0.5, 0.999), lambda_L1 100, vanilla GAN loss.
    """

    data: str = Field(
        description="training shards written by prepare: a folder or prefix of Parquet files (any fsspec URL)"
    )
    run: str = Field(
        description="run directory (local path or s3://...): checkpoints, metrics.jsonl, plots, config and the "
        "exported generator; resubmitting with the same run directory continues from its last checkpoint"
    )
    workers: int = Field(
        1,
        ge=0,
        description="training workers (Ray Train, one DDP rank each); 0 runs the loop in this process (Ray Train "
        "local mode, for debugging): the generator is exported, but no checkpoint is kept to resume from",
    )
    gpu: bool = Field(False, description="one GPU per worker (see --precision); without it float32 on CPU")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="training precision: auto picks bf16 autocast on GPUs that support it, fp16 autocast with "
        "gradient scaling on older ones (T4, V100), fp32 on CPU; logged by each worker",
    )
    cpus_per_worker: float = Field(
        1.0, gt=0, description="CPUs reserved per training worker; the rest of the cluster decodes and augments images"
    )
    epochs: int = Field(20, ge=1, description="epochs in total, pretraining included")
    pretrain_epochs: int = Field(
        0, ge=0, description="first epochs that train the generator with L1 only (no discriminator)"
    )
    batch_size: int = Field(16, ge=1, description="images per step and worker")
    shuffle_buffer: int = Field(
        256,
        ge=0,
        description="decoded images each worker draws its batches from at random, on top of the per-epoch "
        "shard order (memory: about 0.8 MB per image at 256 px); 0: none",
    )
    materialize_train: bool = Field(
        True,
        description="read the training split's JPEG bytes once into Ray's object store (about the shards' size; "
        "spilled to disk beyond memory) instead of re-reading the Parquet files every epoch",
    )
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="cap on steps per epoch (quick runs); none: the whole training split"
    )
    image_size: int = Field(
        256,
        ge=8,
        description="side of the square training crops in pixels (jitter resizes to image_size*286/256 first)",
    )
    degrade: str | None = Field(
        None,
        description="train on damaged scans: degrade the L channel of every image by this recipe (old-photo, scan, "
        "or a YAML file; ab stays clean; new damage each epoch, the val split's the same every epoch); none: clean",
    )
    lr: float = Field(2e-4, gt=0, description="Adam learning rate of generator and discriminator")
    lambda_l1: float = Field(100.0, ge=0, description="weight lambda_L1 of the L1 term in the generator's loss")
    gan_mode: Literal["vanilla", "lsgan"] = Field(
        "vanilla", description="adversarial loss: vanilla (BCE on logits) or lsgan"
    )
    generator: GeneratorKind = Field(
        "unet",
        description="generator kind: unet (pix2pix unet_256, sized by --ngf and --num-downs) or resnet18_unet "
        "(ResNet-18 encoder with torchvision's names + U-Net decoder, 14.3 M parameters; image_size divisible by 32)",
    )
    encoder_weights: str | None = Field(
        None,
        description="resnet18_unet: pretrained ResNet-18 weights for the encoder, a .safetensors state dict with "
        "torchvision's names (e.g. timm's resnet18.tv_in1k), any fsspec URL; never a pickled .pth; none: random init",
    )
    encoder_weights_sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="sha256 the --encoder-weights file must have (checked if given)"
    )
    freeze_encoder_epochs: int = Field(
        0, ge=0, description="resnet18_unet: first epochs in which the encoder is frozen (only the decoder learns)"
    )
    encoder_lr_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        description="resnet18_unet: the encoder's learning rate is lr times this (e.g. 0.1 for pretrained weights)",
    )
    freeze_encoder: bool = Field(
        False,
        description="resnet18_unet: keep the encoder frozen in every epoch (only the decoder learns; its BatchNorm "
        "statistics still adapt), e.g. to fine-tune on a small collection",
    )
    init_generator: str | None = Field(
        None,
        description="fine-tune: start the generator from this exported artifact (folder with generator.safetensors "
        "+ generator.json, any fsspec URL); kind, ngf, num_downs and image size come from it (options that "
        "contradict it are refused), lr defaults to 5e-5 and epochs to 5 unless given, the discriminator starts "
        "fresh; the new artifact records its parent's sha256",
    )
    init_generator_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="sha256 the --init-generator weights must have (checked if given; the run records it)",
    )
    ngf: int = Field(64, ge=1, description="generator filters in the outermost layer")
    num_downs: int = Field(
        8,
        ge=2,
        le=12,
        description="generator downsamplings (8: unet_256); image_size must be divisible by 2**num_downs",
    )
    ndf: int = Field(64, ge=1, description="discriminator filters in the first layer")
    n_layers: int = Field(3, ge=1, le=8, description="discriminator stride-2 layers (3: 70x70 PatchGAN)")
    max_val_images: int | None = Field(
        256, ge=1, description="validation images evaluated per epoch (the first ones of the val split); none: all"
    )
    sample_images: int = Field(4, ge=1, le=32, description="validation images in each epoch's sample grid")
    checkpoint_every: int = Field(1, ge=1, description="checkpoint every N epochs (the last epoch always)")
    keep_checkpoints: int = Field(3, ge=1, description="checkpoints kept in the run directory (the newest)")
    max_failures: int = Field(
        3,
        ge=-1,
        description="worker-group failures (a lost or reclaimed spot node, a crashed worker) Ray Train recovers "
        "from by restarting from the last checkpoint (0: fail at the first; -1: no limit)",
    )
    seed: int = Field(0, description="seed of the weight initialisation and of each worker's random state")
    export: str | None = Field(
        None, description="where to write the generator artifact at the end; none: <run>/generator"
    )
    startup_timeout: float = Field(
        1800.0,
        ge=0,
        description="seconds the run may take to start (GPU nodes to join, each node to install packages, every "
        "worker to be up and finish a first step) before it fails naming what it waits for; --stall-timeout applies "
        "from the first step on; 0: wait forever",
    )

    @model_validator(mode="after")
    def _check_sizes(self) -> TrainConfig:
        if self.pretrain_epochs > self.epochs:
            raise ValueError(f"pretrain_epochs {self.pretrain_epochs} exceeds epochs {self.epochs}")
        if self.freeze_encoder_epochs > self.epochs:
            raise ValueError(f"freeze_encoder_epochs {self.freeze_encoder_epochs} exceeds epochs {self.epochs}")
        if self.init_generator is None:  # otherwise the artifact's kind and sizes decide (train.finetune)
            self.check_generator_options()
        return self

    def check_generator_options(self) -> None:
        """Check the options that depend on the generator kind and sizes.

        Raises:
            ValueError: encoder options for a U-Net, or an ``image_size`` the generator cannot take.
        """
        if self.generator != "resnet18_unet":
            used = [
                name
                for name, default in (
                    ("encoder_weights", None),
                    ("freeze_encoder_epochs", 0),
                    ("encoder_lr_scale", 1.0),
                    ("freeze_encoder", False),
                )
                if getattr(self, name) != default
            ]
            if used:
                raise ValueError(
                    f"{', '.join(used)} apply to generator resnet18_unet only (generator is {self.generator})"
                )
        check_side(self.image_size, num_downs_of(self.generator, self.num_downs), self.generator, "image_size")

    def model_settings(self) -> dict[str, Any]:
        """The settings a checkpoint's tensors depend on (a resumed run must keep them)."""
        return {name: getattr(self, name) for name in _MODEL_FIELDS}
