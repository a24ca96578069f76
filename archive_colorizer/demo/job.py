"""The demo job's ``run``: the bundled photographs through prepare, train and colorize, then the figure."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from archive_colorizer import __version__, folders, storage
from archive_colorizer.colorize.config import ColorizeConfig
from archive_colorizer.demo import figure, photos
from archive_colorizer.demo.config import DEMO_TRAIN_SETTINGS, DemoConfig
from archive_colorizer.errors import ConfigError
from archive_colorizer.prepare.config import PrepareConfig
from archive_colorizer.train.config import TrainConfig

__all__ = ["STEPS", "DemoResult", "DemoRun", "Step", "run"]

SUMMARY_NAME = "demo.json"
FIGURE_NAME = "before-after.png"
FOLDERS = {"photos": "photos", "shards": "shards", "run": "run", "archive": "archive", "colorized": "colorized"}
"""What the demo writes below OUTPUT (besides :data:`FIGURE_NAME` and :data:`SUMMARY_NAME`)."""
VAL_CROP_GRID = 2
"""Held-out photos in the validation collection: the whole photo and a 2x2 grid of crops."""
PREPARE_MIN_SIZE = 64


@dataclass
class DemoResult:
    """What a demo run made.

    Attributes:
        output: the demo's OUTPUT URL.
        found: label -> URL of everything worth opening (shards, run, generator, ...), in order.
        seconds: wall seconds per step that ran, and ``total``.
        load_average: the machine's 1-minute load average at the start and at the end.
        results: each job's own result (``prepare``: list of PrepareResult, ``train``:
            TrainResult, ``colorize``: ColorizeResult), for the steps that ran.
        exit_code: the colorize job's exit code (1 when too many inputs failed).
    """

    output: str
    found: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    load_average: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    exit_code: int = 0


class DemoRun:
    """One demo: its config, where each part goes, the job configs, and what was found so far.

    All job configs are built (and validated) on construction, before anything is written, so
    a bad ``--train-option`` or ``--colorize-option`` is refused at once.

    Raises:
        ConfigError: an invalid job setting (names it).
    """

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.options = dict(config.storage_options)
        self.paths = {name: storage.join(config.output, folder) for name, folder in FOLDERS.items()}
        self.paths["archive"] = config.archive or self.paths["archive"]
        self.paths["figure"] = storage.join(config.output, FIGURE_NAME)
        self.paths["summary"] = storage.join(config.output, SUMMARY_NAME)
        self.model = config.model or storage.join(self.paths["run"], "generator")
        self.train_config = None if config.model else _train_config(config, self.paths)
        self.colorize_config = ColorizeConfig.load(
            None,
            {
                "input": self.paths["archive"],
                "output": self.paths["colorized"],
                "model": self.model,
                "progress": config.progress,
                "storage_options": self.options,
                **_keys(config.colorize_options),
            },
        )
        self.result = DemoResult(config.output)

    def found(self, label: str, url: str, note: str = "") -> None:
        """Record something the demo made (printed at the end and saved in ``demo.json``)."""
        self.result.found[label] = f"{url}  ({note})" if note else url


def _keys(options: dict[str, Any]) -> dict[str, Any]:
    return {str(key).replace("-", "_"): value for key, value in options.items()}


def _train_config(config: DemoConfig, paths: dict[str, str]) -> TrainConfig:
    return TrainConfig.load(
        None,
        {
            "data": paths["shards"],
            "run": paths["run"],
            "workers": config.workers,
            "epochs": config.epochs,
            "pretrain_epochs": config.pretrain_epochs,
            "image_size": config.image_size,
            "storage_options": dict(config.storage_options),
            **DEMO_TRAIN_SETTINGS,
            **_keys(config.train_options),
        },
    )


# --- the steps ---


def collect_photos(demo: DemoRun) -> None:
    """Step 1: bundled colour photographs -> ``photos/train`` (crops) and ``photos/val`` (held out)."""
    config, root = demo.config, demo.paths["photos"]
    train = photos.write_crops(storage.join(root, "train"), photos.TRAINING_PHOTOS, config.crop_grid, demo.options)
    val = photos.write_crops(storage.join(root, "val"), photos.HELD_OUT_PHOTOS, VAL_CROP_GRID, demo.options)
    demo.found(
        "training photos",
        root,
        f"{len(photos.TRAINING_PHOTOS)} photographs as {train} crops; "
        f"{len(photos.HELD_OUT_PHOTOS)} held out as {val} validation crops",
    )


def prepare_shards(demo: DemoRun) -> None:
    """Step 2: the collection(s) -> Parquet shards with the prepare job."""
    from archive_colorizer.prepare import run as prepare
    from archive_colorizer.train.data import load_size

    config, shards = demo.config, demo.paths["shards"]
    common = {"size": load_size(config.image_size), "progress": config.progress, "storage_options": demo.options}
    if config.photos:
        jobs = [PrepareConfig(input=config.photos, output=shards, val_fraction=config.val_fraction, **common)]
    else:  # the bundled collection validates on its held-out photos, never on crops of training photos
        jobs = [
            PrepareConfig(
                input=storage.join(demo.paths["photos"], split),
                output=storage.join(shards, split),
                val_fraction=fraction,
                min_size=PREPARE_MIN_SIZE,
                rows_per_shard=64,
                **common,
            )
            for split, fraction in (("train", 0.0), ("val", 1.0))
        ]
    results = demo.result.results["prepare"] = [prepare(job) for job in jobs]
    written = sum(r.counts["written"] for r in results)
    splits = {split: sum(r.splits.get(split, 0) for r in results) for split in ("train", "val")}
    demo.found("shards", shards, f"{written} images: {splits['train']} train, {splits['val']} val; _stats.json")


def train_model(demo: DemoRun) -> None:
    """Step 3: L1 pretraining then GAN epochs with the train job; exports the generator."""
    from archive_colorizer.train import run as train
    from archive_colorizer.train.loop import LOSS_CURVE_NAME, METRICS_NAME, SAMPLES_FOLDER

    config = demo.train_config
    assert config is not None, "a demo with --model trains nothing"
    result = demo.result.results["train"] = train(config)
    run_url = demo.paths["run"]
    demo.found("run directory", run_url, f"{result.epochs} epochs, {result.global_step} steps")
    demo.found("metrics", storage.join(run_url, METRICS_NAME), _last_metrics(result.metrics))
    demo.found("loss curve", storage.join(run_url, LOSS_CURVE_NAME))
    demo.found("sample grids", storage.join(run_url, SAMPLES_FOLDER), f"epoch_{result.epochs - 1:04d}.png is the last")
    demo.found("generator", result.generator)


def _last_metrics(row: dict[str, Any] | None) -> str:
    if not row or row.get("val_L1_ab") is None:
        return ""
    return (
        f"last epoch: val L1(ab) {row['val_L1_ab']:.4f} vs {row['val_L1_ab_gray']:.4f} for gray, "
        f"val PSNR {row['val_PSNR']:.2f} dB vs {row['val_PSNR_gray']:.2f}"
    )


def write_archive(demo: DemoRun) -> None:
    """Step 4: the bundled black-and-white archive."""
    names = photos.write_archive(demo.paths["archive"], demo.options)
    demo.found("archive", demo.paths["archive"], f"{len(names)} gray images: {', '.join(names)}")


def colorize_archive(demo: DemoRun) -> None:
    """Step 5: the archive -> colorized images, manifest and summary with the colorize job."""
    from archive_colorizer.colorize import run as colorize

    result = demo.result.results["colorize"] = colorize(demo.colorize_config)
    demo.result.exit_code = result.exit_code
    counts = ", ".join(f"{count} {status}" for status, count in result.counts.items() if count)
    demo.found("colorized", result.output_url, counts)
    demo.found("manifest", result.manifest_url)
    demo.found("summary", result.summary_url)


def draw_figure(demo: DemoRun) -> None:
    """Step 6: ``before-after.png`` from the colorized archive (held-out photos first)."""
    originals = {} if demo.config.archive else photos.originals()
    rows = figure.pick_rows(demo.paths["colorized"], originals, demo.config.figure_rows, demo.options)
    if rows:
        demo.found("before/after", figure.write_figure(demo.paths["figure"], rows, demo.options))


@dataclass(frozen=True)
class Step:
    """A step of the demo.

    Attributes:
        name: shown in the printout and the keys of ``DemoResult.seconds``.
        function: does the work and records what it made with :meth:`DemoRun.found`.
        runs: whether a config runs this step (``--photos``, ``--archive``, ``--model`` skip some).
        writes: keys of ``DemoRun.paths`` it writes below OUTPUT (an earlier demo's are replaced).
    """

    name: str
    function: Callable[[DemoRun], None]
    runs: Callable[[DemoConfig], bool] = lambda config: True
    writes: tuple[str, ...] = ()


STEPS: tuple[Step, ...] = (
    Step("photos", collect_photos, lambda c: not c.photos and not c.model, ("photos",)),
    Step("prepare", prepare_shards, lambda c: not c.model, ("shards",)),
    Step("train", train_model, lambda c: not c.model, ("run",)),
    Step("archive", write_archive, lambda c: not c.archive, ("archive",)),
    Step("colorize", colorize_archive, writes=("colorized",)),
    Step("figure", draw_figure, writes=("figure",)),
)
"""The demo's steps in order; each reads what the steps before it wrote."""


# --- the run ---


def run(config: DemoConfig) -> DemoResult:
    """Run the demo's steps (:data:`STEPS`) on a local Ray and print where everything is.

    Returns:
        A :class:`DemoResult`; ``exit_code`` is the colorize job's.

    Raises:
        ConfigError: a bad setting, an OUTPUT that holds something other than an earlier demo,
            or an input inside a folder the demo is about to replace.
        ArchiveColorizerError: whatever a job raises (the message names the job's setting).
    """
    demo = DemoRun(config)
    steps = [step for step in STEPS if step.runs(config)]
    clear_earlier_demo(demo, steps)
    started, clock = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    demo.result.load_average["start"] = os.getloadavg()[0]
    _write_summary(demo, started, "running")
    with ray_session(config.ray_address):
        for number, step in enumerate(steps, 1):
            print(f"\n=== demo step {number}/{len(steps)}: {step.name} ===", flush=True)
            step_clock = time.perf_counter()
            step.function(demo)
            demo.result.seconds[step.name] = round(time.perf_counter() - step_clock, 1)
    demo.result.seconds["total"] = round(time.perf_counter() - clock, 1)
    demo.result.load_average["end"] = os.getloadavg()[0]
    _write_summary(demo, started, "finished")
    print(format_report(demo.result), flush=True)
    return demo.result


def clear_earlier_demo(demo: DemoRun, steps: list[Step]) -> None:
    """Remove what an earlier demo wrote where this one will write; refuse any other content.

    Raises:
        ConfigError: OUTPUT is not empty and holds no ``demo.json``, or one of ``--photos``,
            ``--archive`` or ``--model`` lies inside a folder this demo replaces.
    """
    config, options = demo.config, demo.options
    entries = [demo.paths[key] for step in steps for key in step.writes] + [demo.paths["summary"]]
    for name, url in (("photos", config.photos), ("archive", config.archive), ("model", config.model)):
        if url and any(storage.is_same_or_inside(url, entry, options) for entry in entries):
            raise ConfigError(
                f"--{name} {url!r} lies inside {config.output!r} where the demo writes its own files; "
                "move it or choose another --output"
            )
    if folders.is_empty_or_missing(config.output, options):
        return
    fs, root = storage.open_url(config.output, options)
    if not fs.exists(storage.join(root, SUMMARY_NAME)):
        raise ConfigError(
            f"--output {config.output!r} is not empty and holds no earlier demo ({SUMMARY_NAME}); "
            "choose an empty or new folder"
        )
    for url in entries:
        entry_fs, path = storage.open_url(url, options)
        if entry_fs.exists(path):
            entry_fs.rm(path, recursive=True)


@contextlib.contextmanager
def ray_session(address: str) -> Iterator[None]:
    """Connect to Ray for the demo; a Ray this process already runs (e.g. in tests) is used as it is.

    ``local`` starts a new local Ray with this machine's CPUs, never joining another Ray on the
    machine, and stops it at the end. Its dashboard port is chosen here so that the Ray Train
    controller's state queries (``RAY_API_SERVER_ADDRESS``) reach this Ray: left alone they
    find the newest ``ray start`` cluster on the machine instead and, not seeing their
    controller there, remove the training workers' placement group.
    """
    import logging

    import ray

    if ray.is_initialized():
        yield
        return
    if address == "local":
        port = _free_port()
        ray.init(
            address="local",
            include_dashboard=True,
            dashboard_port=port,
            logging_level=logging.WARNING,
            configure_logging=True,
            runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}},
        )
    else:
        from archive_colorizer.runtime import init_ray

        init_ray(address)
    # The jobs show their own progress; Ray Data's per-dataset bars (one per training epoch)
    # would bury them.
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_summary(demo: DemoRun, started: _dt.datetime, status: str) -> None:
    record = {
        "tool": f"archive-colorizer {__version__}",
        "status": status,
        "started": started.isoformat(timespec="seconds"),
        "seconds": demo.result.seconds,
        "load_average_1min": demo.result.load_average,
        "cpus": os.cpu_count(),
        "found": demo.result.found,
        "config": demo.config.public_dict(),
    }
    fs, path = storage.open_url(demo.paths["summary"], demo.options)
    storage.write_bytes(fs, path, json.dumps(record, indent=2).encode())


def format_report(result: DemoResult) -> str:
    """The closing printout: where everything is, and how long each step took."""
    width = max(len(label) for label in result.found) if result.found else 0
    lines = [
        "",
        f"demo finished in {result.seconds['total'] / 60:.1f} min "
        f"(load average {result.load_average['start']:.1f} at the start, {result.load_average['end']:.1f} at the end)",
    ]
    lines += [f"  {label:<{width}}  {where}" for label, where in result.found.items()]
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.seconds.items() if name != "total")
    lines += [f"  steps: {steps}", f"  record of this run: {SUMMARY_NAME} in the output folder"]
    return "\n".join(lines)
