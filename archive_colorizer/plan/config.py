"""Settings of ``archive-colorizer plan``: time and cost of colorizing an archive on a cluster."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from archive_colorizer.colorize.config import CodecOptions


class PlanConfig(CodecOptions):
    """Settings of ``archive-colorizer plan INPUT --model MODEL``: time and cost of colorizing an archive.

    INPUT, ``--input-list``, ``--extensions`` and the codec settings are colorize's own fields
    (:class:`~archive_colorizer.colorize.config.CodecOptions`), so a plan describes the colorize
    command with the same options.
    See :func:`archive_colorizer.plan.run` and docs/plan.md.
    """

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

    @model_validator(mode="after")
    def _check_sample(self) -> PlanConfig:
        if self.measure > self.sample:
            raise ValueError(f"measure {self.measure} exceeds sample {self.sample}: the measured inputs come from it")
        if self.cluster is not None and (self.cpus or self.gpus is not None or self.nodes):
            raise ValueError("give either cluster or cpus/gpus/nodes, not both")
        return self
