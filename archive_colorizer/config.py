"""Typed job configurations: pydantic models, a YAML file, command-line overrides.

Every job (prepare, train, colorize, export, evaluate) has one config class deriving from
:class:`JobConfig`. Values come, lowest priority first, from the field defaults, a YAML file
(``--config FILE.yaml``) and the command line; pydantic validates the result, so a bad value
is refused with the setting's name. The resolved config is saved next to every output, with
secrets (storage-option keys, tokens, passwords) replaced by ``"***"``.

The command line is generated from the fields (see :mod:`archive_colorizer.cli`): a field's
``description`` is its help text and the README's option tables are checked against it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from archive_colorizer.colorfulness import LOW_COLOR_THRESHOLD
from archive_colorizer.errors import ConfigError
from archive_colorizer.imageio import DEFAULT_MAX_PIXELS, GRAY_CHROMA_THRESHOLD
from archive_colorizer.signing import DEFAULT_CERT_ENV, DEFAULT_KEY_ENV, check_reference
from archive_colorizer.storage import open_url, write_bytes

_SECRET_KEY = re.compile(r"(secret|token|password|passwd|credential|session|access_key|key_id|private)", re.I)
REDACTED = "***"

ConfigT = TypeVar("ConfigT", bound="JobConfig")


def redact(value: Any) -> Any:
    """Copy of ``value`` with every mapping entry whose key names a secret replaced by ``***``.

    Keys matching ``secret``, ``token``, ``password``, ``key_id``, ``access_key``, ``session``,
    ``credential`` or ``private`` (any case) are redacted, at any depth; ``key``/``secret``
    (s3fs's own names) as well.
    """
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if (_SECRET_KEY.search(str(k)) or str(k).lower() in ("key", "secret")) and v is not None
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def dotted_suffixes(value: list[str]) -> list[str]:
    """File name suffixes as lower-case ``.ext`` (``JPG`` -> ``.jpg``).

    Raises:
        ValueError: the list is empty.
    """
    if not value:
        raise ValueError("at least one extension is needed")
    return [("." + ext.lstrip(".")).lower() for ext in value]


class JobConfig(BaseModel):
    """Base of the job configs: strict fields, YAML loading, redacted saving."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @classmethod
    def load(cls: type[ConfigT], path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> ConfigT:
        """Build a config from an optional YAML file and overrides (which win).

        Args:
            path: a YAML file whose top level is a mapping of field names (``-`` or ``_``).
            overrides: field values, e.g. from the command line.

        Raises:
            ConfigError: the file is missing or not a mapping, a key is unknown, or a value is
                invalid; the message names the file and setting.
        """
        values, source = cls.merged_values(path, overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid {cls.__name__} ({source}): {problems}") from exc

    @classmethod
    def merged_values(
        cls, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], str]:
        """The settings of an optional YAML file updated by ``overrides``, not yet validated.

        Returns:
            ``(values by field name, where they came from)`` for messages.

        Raises:
            ConfigError: the file is missing, not YAML, or not a mapping; the message names it.
        """
        values: dict[str, Any] = {}
        source = "command line"
        if path is not None:
            source = str(path)
            try:
                loaded = yaml.safe_load(Path(path).read_text())
            except FileNotFoundError as exc:
                raise ConfigError(f"config file {path} does not exist") from exc
            except yaml.YAMLError as exc:
                raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, Mapping):
                raise ConfigError(f"config file {path} must hold a mapping of settings, got {type(loaded).__name__}")
            values.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
            source = f"{path} / command line"
        values.update(overrides or {})
        return values, source

    def public_dict(self) -> dict[str, Any]:
        """The config as JSON-compatible data with secrets redacted (safe for logs and outputs)."""
        return redact(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        """The redacted config as YAML, loadable again with :meth:`load` (secrets excepted)."""
        return yaml.safe_dump(self.public_dict(), sort_keys=False)

    def to_json(self) -> str:
        """The redacted config as indented JSON."""
        return json.dumps(self.public_dict(), indent=2)

    def save(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write the redacted config as YAML to ``url`` (any fsspec URL)."""
        fs, path = open_url(url, storage_options)
        write_bytes(fs, path, self.to_yaml().encode())


# --- Ray connection and stall settings shared by the jobs that run on Ray ---

RAY_ADDRESS_HELP = (
    "Ray cluster address (host:port, ray://host:10001, or local for a new local Ray); none: RAY_ADDRESS if set, "
    "else the cluster a `ray start` on this machine recorded if it answers (a record of a dead head is reported and "
    "skipped), else a new local Ray"
)


def ray_address_field() -> Any:
    """The ``ray_address`` field of a job (see :mod:`archive_colorizer.runtime`)."""
    return Field(None, description=RAY_ADDRESS_HELP)


def ray_connect_timeout_field() -> Any:
    """The ``ray_connect_timeout`` field: how long a given address may take to answer."""
    return Field(
        30.0,
        gt=0,
        description="seconds a given Ray address (--ray-address or RAY_ADDRESS) may take to answer before the job "
        "fails with an error naming it",
    )


def stall_timeout_field(what: str) -> Any:
    """The ``stall_timeout`` field: seconds without progress before the job fails."""
    return Field(
        600.0,
        ge=0,
        description=f"fail with a message when {what} for this many seconds (e.g. the cluster lacks the CPUs or GPUs "
        "the tasks ask for); 0: wait forever",
    )


# --- prepare ---

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
"""Image file suffixes ``prepare`` reads by default (compared case-insensitively)."""


class PrepareConfig(JobConfig):
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
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec option for INPUT (and OUTPUT unless --output-storage-option is given), e.g. endpoint_url=http://host:9000",
        json_schema_extra={"cli_name": "storage-option"},
    )
    output_storage_options: dict[str, Any] | None = Field(
        None,
        description="fsspec option for OUTPUT when it needs other ones than INPUT, e.g. anon=false",
        json_schema_extra={"cli_name": "output-storage-option"},
    )
    read_threads: int = Field(
        8, ge=1, le=256, description="threads per shard task reading input files (hides object-store latency)"
    )
    max_tasks: int | None = Field(
        None, ge=1, description="shard tasks in flight at once; none means twice the cluster's CPUs"
    )
    progress: bool = Field(True, description="show a progress bar on stderr")
    ray_address: str | None = ray_address_field()
    ray_connect_timeout: float = ray_connect_timeout_field()
    stall_timeout: float = stall_timeout_field("no shard task finished")

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


# --- train ---

_MODEL_FIELDS = ("generator", "image_size", "ngf", "num_downs", "ndf", "n_layers")
_RESNET_MULTIPLE = 32
"""The ResNet-18 encoder of ``resnet18_unet`` halves the side five times."""


class TrainConfig(JobConfig):
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
    generator: Literal["unet", "resnet18_unet"] = Field(
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
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for the data and run URLs, e.g. endpoint_url=http://... (repeatable)",
        json_schema_extra={"cli_name": "storage-option"},
    )
    ray_address: str | None = ray_address_field()
    ray_connect_timeout: float = ray_connect_timeout_field()
    stall_timeout: float = stall_timeout_field("no worker finished a training step")
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
        if self.generator == "resnet18_unet":
            if self.image_size % _RESNET_MULTIPLE:
                raise ValueError(
                    f"image_size {self.image_size} must be divisible by {_RESNET_MULTIPLE} for generator resnet18_unet"
                )
            return
        side = 2**self.num_downs
        if self.image_size % side:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**num_downs = {side} (num_downs={self.num_downs})"
            )

    def model_settings(self) -> dict[str, Any]:
        """The settings a checkpoint's tensors depend on (a resumed run must keep them)."""
        return {name: getattr(self, name) for name in _MODEL_FIELDS}


# --- export ---


class ExportConfig(JobConfig):
    """Settings of ``archive-colorizer export``: a training checkpoint -> generator artifact."""

    checkpoint: str = Field(
        description="a checkpoint folder of a run directory (checkpoint_epoch_NNNN)",
        json_schema_extra={"cli": "positional"},
    )
    out: str = Field(
        description="artifact folder to write (generator.safetensors + generator.json)",
        json_schema_extra={"cli": "positional"},
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for both URLs, e.g. endpoint_url=http://... (repeatable)",
        json_schema_extra={"cli_name": "storage-option"},
    )


# --- colorize ---

COLORIZE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp")


class ColorizeConfig(JobConfig):
    """Settings of ``archive-colorizer colorize``: batch-colorize an archive with Ray Data (see ``stages``)."""

    input: str = Field(
        description="folder or prefix holding the archive (a local path, s3://bucket/prefix or any fsspec URL); "
        "listed recursively, or the root that --input-list entries are relative to",
        json_schema_extra={"cli": "positional"},
    )
    output: str = Field(
        description="folder or prefix for the colorized images, mirroring the input's relative paths, with "
        "_manifest/*.parquet and _summary.json; must not be INPUT, lie inside it or contain it",
        json_schema_extra={"cli": "positional"},
    )
    model: str = Field(description="generator artifact folder (generator.safetensors + generator.json), any fsspec URL")
    input_list: str | None = Field(
        None,
        description="file of inputs instead of listing INPUT: .txt (one per line), .csv or .parquet (column "
        "'url', 'input_url' or 'path', else the first); entries are URLs below INPUT or paths relative to it",
    )
    extensions: list[str] = Field(
        default_factory=lambda: list(COLORIZE_EXTENSIONS),
        description="file name suffixes colorized when listing INPUT (case-insensitive)",
    )
    input_iiif: bool = Field(
        False,
        description="INPUT is a IIIF Presentation manifest (v2 or v3) or a collection of them, a URL or file: each "
        "canvas's image at full size (Image API service or static image) is one input, with its canvas_id kept; "
        "outputs go to OUTPUT/<manifest name>/<canvas number>.jpg (docs/iiif.md)",
    )
    iiif_base_url: str | None = Field(
        None,
        description="with --input-iiif: the URL where OUTPUT is served; a IIIF v3 manifest per input manifest is then "
        "written to OUTPUT/_iiif/<manifest name>.json, each canvas painting a Choice of original and colorized",
    )
    format: Literal["auto", "jpeg", "png", "tiff"] = Field(
        "auto",
        description="output format; auto keeps JPEG, PNG and TIFF (16-bit TIFF stays 16-bit) and writes other "
        "formats as PNG; a changed format appends its suffix (scan.gif -> scan.gif.png)",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of JPEG outputs")
    chroma: Literal["420", "444"] = Field(
        "420",
        description="chroma resolution of JPEG outputs: 420 half size (what JPEG stores at ordinary settings; "
        "encoded from the Y, Cb, Cr planes), 444 full size; PNG and TIFF outputs are always 4:4:4",
    )
    on_color: Literal["skip", "colorize"] = Field(
        "skip",
        description="what to do with inputs that are already colour: skip (recorded as skipped_color) or colorize "
        "their gray",
    )
    color_threshold: float = Field(
        GRAY_CHROMA_THRESHOLD,
        ge=0,
        description="an input counts as colour when its mean chroma reaches this: the mean distance of BT.601 "
        "(Cb, Cr) from neutral in 8-bit levels on a 256-pixel thumbnail (gray scans about 0-2, colour photos 15-55)",
    )
    model_size: int | None = Field(
        None,
        ge=16,
        description="side in pixels of the square gray image the generator sees; default: the artifact's working size",
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="images per generator forward pass in an actor (split stages; fused tasks run their whole "
        "task batch)",
    )
    task_batch_size: int = Field(
        16, ge=1, description="images per CPU task batch (decode; merge, encode and write) and per manifest part"
    )
    actors: list[int] | None = Field(
        None,
        description="predictor actor pool of split stages: N for a fixed pool or MIN MAX to autoscale; default 1 "
        "to the number of GPUs with --gpu, else 1 to half the CPUs",
    )
    cpus_per_task: float | None = Field(
        None,
        gt=0,
        description="CPUs reserved by each CPU task; none: 1 with fused stages (the generator keeps a core "
        "busy), 0.5 with split stages (two decode or merge tasks per core keep every core busy while tasks wait on "
        "storage)",
    )
    cpus_per_actor: float = Field(
        1.0,
        gt=0,
        description="CPUs reserved by each predictor actor: its torch threads on CPU, the thread that "
        "feeds its GPU with --gpu (when equal to --cpus-per-task, Ray runs the decode stage inside the actors)",
    )
    gpu: bool = Field(False, description="run each predictor actor on one GPU (bf16 autocast)")
    stages: Literal["auto", "fused", "split"] = Field(
        "auto",
        description="fused: each CPU task reads, decodes, runs the generator (loaded once per worker process), merges "
        "and writes its batch, no actors; split: decode tasks -> predictor actor pool (--actors, --cpus-per-actor, "
        "--gpu) -> merge tasks; auto: split with --gpu, else fused",
    )
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="inputs with more pixels fail without being decoded (decompression-bomb guard)",
    )
    max_failure_rate: float = Field(
        0.05, ge=0, le=1, description="exit non-zero when more than this fraction of the inputs failed"
    )
    overwrite: bool = Field(False, description="colorize again inputs that a previous run already colorized")
    keep_other_models: bool = Field(
        False,
        description="count inputs that an earlier run finished with a different generator (--model) as finished; "
        "by default they are colorized again with this one (the summary says how many)",
    )
    c2pa_sign: bool = Field(
        False,
        description="embed in every output a C2PA manifest signed with --c2pa-cert and --c2pa-key: the gray input as "
        "parentOf ingredient, a c2pa.edited action (compositeWithTrainedAlgorithmicMedia), the generator's sha256 "
        "(docs/provenance.md); an output that cannot be signed is a failed input",
    )
    c2pa_cert: str = Field(
        "env:" + DEFAULT_CERT_ENV,
        description="certificate chain for --c2pa-sign (PEM, signer first): a path, an fsspec URL or env:NAME (the "
        "PEM in environment variable NAME); only this reference is saved",
    )
    c2pa_key: str = Field(
        "env:" + DEFAULT_KEY_ENV,
        description="private key for --c2pa-sign (unencrypted PEM; EC P-256/384/521, RSA or Ed25519): a path, an "
        "fsspec URL or env:NAME, read by each worker itself; only this reference is saved, never the key",
    )
    c2pa_tsa_url: str | None = Field(
        None,
        description="RFC 3161 timestamp authority for --c2pa-sign, e.g. http://timestamp.digicert.com; none: no "
        "timestamp, signing stays offline",
    )
    progress: bool = Field(True, description="show a progress bar while the job runs")
    manifest_flush_seconds: float = Field(
        30.0,
        gt=0,
        description="longest time a finished input's row waits in the driver before the manifest part holding it "
        "is written (a killed driver redoes at most this much work)",
    )
    review_samples: int = Field(
        24,
        ge=0,
        le=1000,
        description="before/after pairs shown on the review page OUTPUT/_review/index.html (chosen by a stable hash "
        "of the input URL; 0: counts, failures and model only)",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for INPUT, OUTPUT, the model and the input list, e.g. endpoint_url=http://host:9000",
        json_schema_extra={"cli_name": "storage-option"},
    )
    ray_address: str | None = ray_address_field()
    ray_connect_timeout: float = ray_connect_timeout_field()
    stall_timeout: float = stall_timeout_field("no batch of inputs finished")

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return dotted_suffixes(value)

    @field_validator("c2pa_cert", "c2pa_key")
    @classmethod
    def _check_c2pa_reference(cls, value: str, info: ValidationInfo) -> str:
        return check_reference(value, "--" + str(info.field_name).replace("_", "-"))

    @field_validator("actors")
    @classmethod
    def _check_actors(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(value) not in (1, 2) or min(value) < 1 or value[0] > value[-1]:
            raise ValueError(f"expected N or MIN MAX with 1 <= MIN <= MAX, got {value}")
        return value

    @model_validator(mode="after")
    def _check_stages(self) -> ColorizeConfig:
        if self.stages == "fused" and self.gpu:
            raise ValueError("stages: fused runs the generator in CPU tasks; with gpu use stages split (or auto)")
        if self.iiif_base_url and not self.input_iiif:
            raise ValueError("iiif_base_url: IIIF manifests are written for IIIF input only; add --input-iiif")
        if self.input_iiif and self.input_list:
            raise ValueError("input_iiif: INPUT is the IIIF manifest; --input-list does not apply")
        return self


# --- verify ---


class VerifyConfig(JobConfig):
    """Settings of ``archive-colorizer verify``: check C2PA manifests (:mod:`archive_colorizer.verify`)."""

    paths: list[str] = Field(
        description="files, folders (every image below them, recursively) or URLs to check",
        json_schema_extra={"cli": "positional"},
    )
    trust_anchors: str | None = Field(
        None,
        description="PEM file or URL of root certificates: a valid manifest whose signer chains to one is reported "
        "trusted; none: valid at most",
    )
    extensions: list[str] = Field(
        default_factory=lambda: [".jpg", ".jpeg", ".png", ".tif", ".tiff"],
        description="file name suffixes checked inside a folder (case-insensitive); files named directly are always "
        "checked",
    )
    json_output: bool = Field(False, description="print one JSON object per file instead of a table")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for the URLs, e.g. endpoint_url=http://host:9000 (repeatable)",
        json_schema_extra={"cli_name": "storage-option"},
    )

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return dotted_suffixes(value)


# --- evaluate ---


class EvaluateConfig(JobConfig):
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
    gpu: bool = Field(False, description="run the generator on the first CUDA device (bf16 autocast)")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for MODEL, DATA and OUT, e.g. endpoint_url=http://host:9000 (repeatable)",
        json_schema_extra={"cli_name": "storage-option"},
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


# --- demo ---

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


class DemoConfig(JobConfig):
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
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for every URL, e.g. endpoint_url=http://host:9000 (repeatable)",
        json_schema_extra={"cli_name": "storage-option"},
    )
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


# --- plan ---


def same_option_as(config_cls: type[JobConfig], name: str, description: str | None = None) -> Any:
    """A copy of the field ``name`` of ``config_cls`` (default, bounds, help, CLI name) for a job with that option.

    The plan job takes colorize's INPUT, ``--input-list`` and codec settings: sharing the
    field keeps their defaults, limits and help in one place. ``description`` replaces the help.
    """
    copied = copy.deepcopy(config_cls.model_fields[name])
    if description is not None:
        copied.description = description
    return copied


class PlanConfig(JobConfig):
    """Settings of ``archive-colorizer plan INPUT --model MODEL``: time and cost of colorizing an archive.

    INPUT, ``--input-list``, ``--extensions`` and the codec settings are colorize's own fields
    (:func:`same_option_as`), so a plan describes the colorize command with the same options.
    See :func:`archive_colorizer.plan.run` and docs/plan.md.
    """

    input: str = same_option_as(ColorizeConfig, "input")
    model: str = same_option_as(ColorizeConfig, "model")
    input_list: str | None = same_option_as(ColorizeConfig, "input_list")
    extensions: list[str] = same_option_as(ColorizeConfig, "extensions")
    format: Literal["auto", "jpeg", "png", "tiff"] = same_option_as(ColorizeConfig, "format")
    jpeg_quality: int = same_option_as(ColorizeConfig, "jpeg_quality")
    on_color: Literal["skip", "colorize"] = same_option_as(ColorizeConfig, "on_color")
    color_threshold: float = same_option_as(ColorizeConfig, "color_threshold")
    model_size: int | None = same_option_as(ColorizeConfig, "model_size")
    max_pixels: int = same_option_as(ColorizeConfig, "max_pixels")
    batch_size: int = same_option_as(ColorizeConfig, "batch_size")
    task_batch_size: int = same_option_as(ColorizeConfig, "task_batch_size")
    cpus_per_actor: float = same_option_as(ColorizeConfig, "cpus_per_actor")
    cpus_per_task: float | None = same_option_as(ColorizeConfig, "cpus_per_task")
    output: str = Field(
        "plan.json", description="where the plan is written as JSON: a file path or any fsspec URL (s3://.../plan.json)"
    )
    sample: int = Field(
        500,
        ge=1,
        description="inputs drawn at random from the listing whose headers are read (pixel size, mode, format)",
    )
    measure: int = Field(
        20,
        ge=1,
        description="inputs of that sample run through colorize's own stages here (decode, generator, merge, encode) "
        "to time them; outputs go to a temporary folder",
    )
    seed: int = Field(0, description="seed of the random sample (the same seed draws the same inputs)")
    assume_inputs: int | None = Field(
        None,
        ge=1,
        description="project a job of this many inputs like the ones listed (INPUT a sample of a larger archive, "
        "e.g. a folder copied from the bucket): bytes in proportion, the listing as N / 1000 requests; "
        "none: the inputs listed",
    )
    cluster: str | None = Field(
        None,
        description="a Ray cluster launcher YAML (e.g. cluster.yaml): its worker types at their max_workers are the "
        "cluster planned for; none: this machine, or the cluster of --cpus/--gpus/--nodes",
    )
    cpus: int | None = Field(
        None, ge=1, description="CPUs per node of a cluster of identical nodes (instead of --cluster)"
    )
    gpus: int | None = Field(None, ge=0, description="GPUs per node of that cluster (default 0)")
    nodes: int | None = Field(None, ge=1, description="nodes of that cluster (default 1)")
    price_per_node_hour: float | None = Field(
        None, ge=0, description="price of one node-hour, for every node type without a --node-price; none: no cost"
    )
    node_prices: dict[str, float] = Field(
        default_factory=dict,
        description="price of one node-hour per node type of --cluster, e.g. gpu_worker=1.01 (repeatable)",
        json_schema_extra={"cli_name": "node-price"},
    )
    stages: Literal["best", "fused", "split"] = Field(
        "best",
        description="colorize stages to project: fused (CPU tasks only, colorize's default without --gpu), split "
        "(colorize --gpu: predictor actors on the GPUs), best: both where the cluster has GPUs, the faster recommended",
    )
    bandwidth_mb_per_s: float = Field(
        1000.0, gt=0, description="assumed object-store bandwidth of one node, reads and writes together, in MB/s"
    )
    request_latency_ms: float | None = Field(
        None,
        ge=0,
        description="assumed time of one object-store request (a GET or PUT of one image) in ms; none: the mean "
        "measured here on INPUT and a temporary local OUTPUT",
    )
    gpu_tflops: float = Field(
        25.0,
        gt=0,
        description="assumed effective TFLOP/s of one GPU on the generator (bf16 convolutions; an NVIDIA A10G peaks "
        "at 125), used with the generator's FLOPs counted here when no GPU can be measured here",
    )
    startup_seconds: float = Field(
        12.0,
        ge=0,
        description="assumed fixed start-up of a colorize run: Ray, worker processes importing torch and loading the "
        "generator, the review page (measured on a 2-core machine; add node start-up for an autoscaling cluster)",
    )
    efficiency: float = Field(
        0.9,
        gt=0,
        le=1,
        description="assumed share of a Ray task's time spent in the per-image stages (the rest: scheduling, "
        "serialisation, manifest parts)",
    )
    background_load: float | None = Field(
        None,
        ge=0,
        description="runnable processes of other work on each node (on a shared machine): the job gets "
        "cpus / (cpus + load) of each core; none: 0 on a cluster, and for this machine what the measuring thread "
        "saw (the CPU share it got: share = cpus / (1 + load))",
    )
    driver_cpus: float = Field(
        0.5,
        ge=0,
        description="assumed CPUs the colorize driver and Ray's own processes keep busy on the node that runs the "
        "driver, when that node also runs tasks (this machine; not cluster.yaml's head with CPU 0)",
    )
    storage_options: dict[str, Any] = same_option_as(
        ColorizeConfig,
        "storage_options",
        "fsspec options for INPUT, the model, the input list and --output, e.g. endpoint_url=http://host:9000",
    )

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return dotted_suffixes(value)

    @model_validator(mode="after")
    def _check_sample(self) -> PlanConfig:
        if self.measure > self.sample:
            raise ValueError(f"measure {self.measure} exceeds sample {self.sample}: the measured inputs come from it")
        if self.cluster is not None and (self.cpus or self.gpus is not None or self.nodes):
            raise ValueError("give either cluster or cpus/gpus/nodes, not both")
        return self
