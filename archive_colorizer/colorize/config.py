"""Settings of ``archive-colorizer colorize``: batch-colorize an archive with Ray Data (see its ``job``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from archive_colorizer.colorize.overlap import CONCURRENT_REQUESTS, MAX_CONCURRENT_REQUESTS
from archive_colorizer.config import RayOptions, StorageOptions, dotted_suffixes
from archive_colorizer.images import DEFAULT_MAX_PIXELS, GRAY_CHROMA_THRESHOLD
from archive_colorizer.signing import DEFAULT_CERT_ENV, DEFAULT_KEY_ENV, check_reference

COLORIZE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp")


class CodecOptions(StorageOptions):
    """The options of a colorize run that ``plan`` describes too: INPUT, the model, the input list, codecs, batches.

    :class:`ColorizeConfig` and :class:`~archive_colorizer.plan.config.PlanConfig` both inherit
    them, so a plan is made for the colorize command with the same options, defaults and limits.
    """

    input: str = Field(
        description="folder or prefix holding the archive (a local path, s3://bucket/prefix or any fsspec URL); "
        "listed recursively, or the root that --input-list entries are relative to",
        json_schema_extra={"cli": "positional"},
    )
    model: str = Field(description="generator artifact folder (generator.safetensors + generator.json), any fsspec URL")
    input_list: str | None = Field(
        None,
        description="file of inputs instead of listing INPUT: .txt (one per line), .csv or .parquet (column "
        "'url', 'input_url' or 'path', else the first), entries URLs below INPUT or paths relative to it; or an "
        "S3 Inventory report's manifest.json (CSV or Parquet; its keys below INPUT with one of --extensions)",
    )
    extensions: list[str] = Field(
        default_factory=lambda: list(COLORIZE_EXTENSIONS),
        description="file name suffixes colorized when listing INPUT (case-insensitive)",
    )
    format: Literal["auto", "jpeg", "png", "tiff"] = Field(
        "auto",
        description="output format; auto keeps JPEG, PNG and TIFF (16-bit TIFF stays 16-bit) and writes other "
        "formats as PNG; a changed format appends its suffix (scan.gif -> scan.gif.png)",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of JPEG outputs")
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
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="inputs with more pixels fail without being decoded (decompression-bomb guard)",
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
    listing_tasks: int | None = Field(
        None,
        ge=1,
        description="listing tasks at once; an S3 INPUT is cut into 4 key ranges per task (split points sampled "
        "with LIST requests, or the resume index's); default: two per CPU of the cluster",
    )
    cpus_per_actor: float = Field(
        1.0,
        gt=0,
        description="CPUs reserved by each predictor actor: its torch threads on CPU, the thread that "
        "feeds its GPU with --gpu (when equal to --cpus-per-task, Ray runs the decode stage inside the actors)",
    )
    cpus_per_task: float | None = Field(
        None,
        gt=0,
        description="CPUs reserved by each CPU task; none: 1 with fused stages (the generator keeps a core "
        "busy), 0.5 with split stages (two decode or merge tasks per core keep every core busy while tasks wait on "
        "storage)",
    )
    concurrent_requests: int = Field(
        CONCURRENT_REQUESTS,
        ge=1,
        le=MAX_CONCURRENT_REQUESTS,
        description="storage requests each CPU task keeps in flight when INPUT or OUTPUT is an object store or other "
        "remote file system: inputs read ahead of the one being decoded, outputs written behind it (holding at "
        "most 256 MiB); 1: one request after another, as on local folders",
    )

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return dotted_suffixes(value)


class ColorizeConfig(CodecOptions, RayOptions):
    """Settings of ``archive-colorizer colorize``: batch-colorize an archive with Ray Data (see ``stages``)."""

    output: str = Field(
        description="folder or prefix for the colorized images, mirroring the input's relative paths, with "
        "_manifest/*.parquet and _summary.json; must not be INPUT, lie inside it or contain it",
        json_schema_extra={"cli": "positional"},
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
    chroma: Literal["420", "444"] = Field(
        "420",
        description="chroma resolution of JPEG outputs: 420 half size (what JPEG stores at ordinary settings; "
        "encoded from the Y, Cb, Cr planes), 444 full size; PNG and TIFF outputs are always 4:4:4",
    )
    actors: list[int] | None = Field(
        None,
        description="predictor actor pool of split stages: N for a fixed pool or MIN MAX to autoscale; default 1 "
        "to the number of GPUs with --gpu, else 1 to half the CPUs",
    )
    gpu: bool = Field(False, description="run each predictor actor on one GPU (bf16 autocast)")
    gpus_per_actor: float = Field(
        1.0,
        gt=0,
        le=1,
        description="with --gpu: the share of a GPU each predictor actor reserves; 0.5 puts two actors on a GPU, "
        "so that one turns its batch into tensors while the other's forward pass runs",
    )
    actor_concurrency: int = Field(
        1,
        ge=1,
        le=8,
        description="batches a predictor actor works on at once, each on its own thread: 2 overlaps the next "
        "batch's Arrow-to-tensor work and copy to the GPU with the current forward pass",
    )
    stages: Literal["auto", "fused", "split"] = Field(
        "auto",
        description="fused: each CPU task reads, decodes, runs the generator (loaded once per worker process), merges "
        "and writes its batch, no actors; split: decode tasks -> predictor actor pool (--actors, --cpus-per-actor, "
        "--gpu) -> merge tasks; auto: split with --gpu, else fused",
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
