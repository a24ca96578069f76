"""Every benchmark under bench/ runs at a tiny size on the session's Ray and reports its figures.

The figures themselves are not judged here (they belong to a quiet machine and the README);
what is checked is that each benchmark still runs its whole course against the current code
and that its report holds the numbers it promises, with values that fit together.
"""

from __future__ import annotations

import importlib
import sys
import time

import psutil
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("ray_local")


def _bench(name: str):
    # bench/ stays on the path: review_page's spawned child imports the module by its name again.
    if str(REPO_ROOT / "bench") not in sys.path:
        sys.path.append(str(REPO_ROOT / "bench"))
    return importlib.import_module(name)


def test_colorize_throughput_model_only_measures_the_resnet_generator(tmp_path):
    report = _bench("colorize_throughput").main(
        ["--images", "2", "--batch-size", "2", "--model", "resnet18_unet", "--model-only", "--workdir", str(tmp_path)]
    )
    assert report["parameters"] == 14_321_970 and report["gflop_per_image"] == 2.649  # at 128 px
    assert report["model_only"]["images"] == 2 and report["model_only"]["images_per_second"] > 0


def test_colorize_throughput_reports_every_rate_and_ratio(tmp_path, capsys):
    started = time.perf_counter()
    report = _bench("colorize_throughput").main(
        [
            "--images",
            "6",
            "--megapixels",
            "0.05",
            "--model",
            "tiny",
            "--task-batch-size",
            "4",
            "--workdir",
            str(tmp_path),
            "--stages",
            "--marginal",
            "10",
        ]
    )
    wall = time.perf_counter() - started
    assert report["images"] == 6
    phases = (
        "floor",
        "floor_gray",
        "floor_parallel",
        "model_only",
        "naive",
        "fused_one_process",
        "fused_parallel",
        "pipeline",
        "pipeline_warm",
    )
    for name in phases:
        # Every rate is its phase's own image count over its own time, and that time was really spent.
        assert report[name]["images"] == 6 and 0 < report[name]["seconds"] < wall, name
        seconds, rate = report[name]["seconds"], report[name]["images_per_second"]  # both rounded to 3 decimals
        assert 6 / (seconds + 5e-4) - 5e-4 <= rate <= 6 / max(seconds - 5e-4, 1e-6) + 5e-4, name
    # The phases ran one after another inside main(): their times (two warm runs) fit in its wall time.
    assert sum(report[n]["seconds"] for n in phases) + report["pipeline_warm"]["seconds"] < wall
    # The parallel figures: every file once, dealt among one process per core (6 files: at most 6).
    processes = min(report["cores"], 6)
    assert report["floor_parallel"]["processes"] == report["fused_parallel"]["processes"] == processes
    fused_outputs = sorted(p.name for p in tmp_path.glob("out-fused-*/**/*.jpg") if "_review" not in p.parts)
    assert fused_outputs == sorted(p.name for p in (tmp_path / "in").glob("*.jpg"))[:6]  # each file, once
    assert report["pipeline_marginal"]["images"] == 4
    # CPU per marginal image, by kind: the total is the sum of its parts (each rounded to 3 decimals).
    cpu = report["cpu_ms_per_image"]
    assert {"workers", "driver", "ray_other", "total"} <= set(cpu) and cpu["images"] == 4
    assert len(cpu["warm_jobs_cpu_seconds"]) == 3 and min(cpu["warm_jobs_cpu_seconds"]) > 0
    assert cpu["marginal_job_cpu_seconds"] > 0
    assert cpu["total"] == pytest.approx(cpu["workers"] + cpu["driver"] + cpu["ray_other"], abs=2e-3)
    outputs = [p for p in (tmp_path / "out-pipeline").rglob("*.jpg") if not p.relative_to(tmp_path).parts[1][0] == "_"]
    assert len(outputs) == 6  # the pipeline wrote every output it counted (the review's thumbnails aside)
    for chroma in ("444", "420", "420_decoded_once"):  # ms per image of every stage, each a real duration
        assert set(report["stages_ms_per_image"][chroma]) == {"decode", "model", "merge", "encode", "write"}
        assert all(value > 0 for value in report["stages_ms_per_image"][chroma].values()), chroma
    assert report["pipeline"]["counts"]["colorized"] == 6
    cores = report["cores"]
    per_image = 1 / report["floor"]["images_per_second"] + 1 / report["model_only"]["images_per_second"]
    assert report["ideal"]["images_per_second"] == pytest.approx(cores / per_image, rel=0.05, abs=2e-3)
    assert report["pipeline_over_naive"] == pytest.approx(
        report["pipeline"]["images_per_second"] / report["naive"]["images_per_second"], rel=0.05, abs=2e-3
    )
    assert (
        0
        < report["pipeline_over_ideal"]
        == pytest.approx(
            report["pipeline"]["images_per_second"] / report["ideal"]["images_per_second"], rel=0.05, abs=2e-3
        )
    )
    ips = {name: report[name]["images_per_second"] for name in phases + ("ideal",)}
    ratios = {
        "fused_over_floor": ips["fused_one_process"] / ips["floor"],
        "parallel_scaling": ips["floor_parallel"] / (processes * ips["floor"]),
        "fused_parallel_scaling": ips["fused_parallel"] / (processes * ips["fused_one_process"]),
        "pipeline_warm_over_fused_parallel": ips["pipeline_warm"] / ips["fused_parallel"],
        "pipeline_marginal_over_fused_parallel": report["pipeline_marginal"]["images_per_second"]
        / ips["fused_parallel"],
    }
    for name, value in ratios.items():
        assert report[name] == pytest.approx(value, rel=0.05, abs=2e-3), name
    assert 0 < report["parallel_scaling"] and 0 < report["fused_over_floor"]
    if cpu["workers"] > 0:  # 4 marginal images: the workers' CPU difference may read 0 (or less) in the noise
        floor_and_model = 1 / ips["floor"] + 1 / report["model_only"]["images_per_second"]
        assert report["node_efficiency"] == pytest.approx(floor_and_model / (cpu["workers"] / 1000), rel=0.05)
        floor_cpu = processes / ips["floor_parallel"]
        expected = (floor_cpu + 1 / report["model_only"]["images_per_second"]) / (cpu["workers"] / 1000)
        assert report["node_efficiency_parallel"] == pytest.approx(expected, rel=0.05)
    assert '"pipeline_over_ideal"' in capsys.readouterr().out  # the JSON on stdout


def test_colorize_memory_reports_both_jobs_and_the_huge_image(tmp_path):
    report = _bench("colorize_memory").main(
        ["--small", "3", "--large", "6", "--megapixels", "0.05", "--huge-megapixels", "4", "--workdir", str(tmp_path)]
    )
    small, large = report["job"]["small"], report["job"]["large"]
    assert (small["colorized"], large["colorized"]) == (3, 6)
    # The sums include the driver, this very process: at least its resident memory now.
    own_mb = psutil.Process().memory_info().rss / 2**20
    assert small["peak_rss_mb"] >= 0.9 * own_mb and large["peak_rss_mb"] >= 0.9 * own_mb
    assert report["job"]["ratio"] == pytest.approx(large["peak_rss_mb"] / small["peak_rss_mb"], rel=0.05, abs=2e-3)
    huge = report["huge_image"]
    assert huge["megapixels"] == pytest.approx(4, rel=0.01)
    # One 4 MP image: at least its 8-bit gray plane (3.8 MiB) was held, and a JPEG of it written.
    assert huge["peak_over_baseline_mb"] >= 4e6 / 2**20
    assert huge["peak_rss_mb"] >= huge["baseline_rss_mb"] + huge["peak_over_baseline_mb"] - 0.2
    assert huge["output_bytes"] > 4e6 * 0.01  # a real 4 MP JPEG, not a stub


def test_train_throughput_compares_the_ray_path_with_the_plain_loop():
    started = time.perf_counter()
    report = _bench("train_throughput").main(
        [
            "--images",
            "24",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--ngf",
            "8",
            "--num-downs",
            "5",
            "--ndf",
            "8",
        ]
    )
    wall = time.perf_counter() - started
    plain = report["plain"]
    # The plain loop's rate is its own steps of batch 4 over its own time, a part of main()'s wall time.
    assert 0 < plain["seconds"] < wall
    assert report["plain_images_per_sec"] == pytest.approx(plain["steps"] * 4 / plain["seconds"], rel=0.01)
    assert report["ratio"] == pytest.approx(
        report["ray_images_per_sec_per_worker"] / report["plain_images_per_sec"], rel=0.05, abs=2e-3
    )


def test_prepare_throughput_writes_every_photo():
    started = time.perf_counter()
    report = _bench("prepare_throughput").main(["--count", "12", "--cpus", "2", "--rows-per-shard", "6"])
    wall = time.perf_counter() - started
    assert report["written"] == 12 and report["shards"] == 2
    # 12 images in less than main()'s own wall time (which also writes the inputs), not more.
    assert 12 / wall < report["images_per_second"] < 12 / 0.01


def test_review_page_bench_streams_a_manifest():
    report = _bench("review_page").main(["--rows", "2000", "--samples", "4"])
    # The bench fails every 100th row (i % 100 == 0): 20 of 2000, all found by the streamed pass.
    assert (report["rows"], report["failed"], report["samples"]) == (2000, 20, 4)
    assert report["page_bytes"] > 1000


def test_plan_accuracy_compares_the_plan_with_the_colorize_run(tmp_path):
    report = _bench("plan_accuracy").main(
        ["--images", "24", "--megapixels", "0.3", "--model", "tiny", "--measure", "8", "--workdir", str(tmp_path)]
    )
    assert report["colorize"]["counts"]["colorized"] == 24
    # A shared 2-core machine: the bench reports the error; here only a plan far off (a factor of 2) fails.
    assert abs(report["error"]) < 1.0, report


def test_colorize_scale_reports_first_output_memory_and_their_ratios(tmp_path):
    report = _bench("colorize_scale").main(
        ["--sizes", "100", "300", "--workdir", str(tmp_path), "--observe", "1", "--listing-seconds", "2", "--no-extras"]
    )
    small, large = report["sizes"]["100"]["fresh"], report["sizes"]["300"]["fresh"]
    for figures in (small, large):
        assert 0 < figures["seconds_to_first_output"] <= figures["observed_seconds"]
        assert figures["driver_peak_rss_bytes"] > 50 * 2**20  # a Python driver with Ray and pyarrow loaded
    # The slope, not its formula: a 3x larger archive must not take 3x to its first output or memory.
    assert report["first_output_ratio"] < 3 and report["driver_rss_ratio"] < 1.5, report
    assert sum(1 for _ in (tmp_path / "archive-300").rglob("*.jpg")) == 300


def test_colorfulness_threshold_separates_colour_photos_from_their_faded_versions(capsys):
    report = _bench("colorfulness_threshold").main(["--no-crops"])
    assert set(report) >= {"original", "saturation_0.1", "sepia", "gray"}
    assert report["original"]["count"] == 10 and report["original"]["below_10"] == 0
    assert report["saturation_0.1"]["below_10"] == 10 and report["gray"]["max"] == 0.0


def test_chroma_limit_bench_times_both_routes_at_every_amplitude(capsys):
    bench = _bench("chroma_limit")
    for amplitude in (10.0, 25.0):  # the prediction's mean absolute offset is the one asked for
        assert abs(bench.prediction(amplitude, seed=3)).mean() == pytest.approx(amplitude, rel=1e-4)
    report = bench.main(["--megapixels", "0.05", "--amplitudes", "0", "60", "--repeats", "1"])
    assert report["images"] == 6 and 0.04 < report["mean_megapixels"] < 0.06
    assert set(report["ms_per_image"]) == {"amplitude_0", "amplitude_60"}
    for figures in report["ms_per_image"].values():
        assert set(figures) == {"planes_420", "merge_444", "merge_16bit"} and all(ms > 0 for ms in figures.values())
    assert '"first_call_seconds"' in capsys.readouterr().out


def test_gpu_check_runs_at_a_tiny_size_without_cuda_and_reports_every_figure():
    import torch

    from archive_colorizer.models import GeneratorSpec

    report = _bench("gpu_check").main(["--tiny", "--repeats", "1", "--max-batch", "4"])
    assert report["tiny"] is True
    if not torch.cuda.is_available():
        assert report["device"] == "cpu" and report["peak_memory_mb"] is None and report["peak_reserved_mb"] is None
        assert all(row["peak_reserved_mb"] is None for row in [*report["train_step"], report["predictor"]])
    forward = report["generator_forward"]
    measured = ("fp32",) if report["device"] == "cpu" else tuple(row["precision"] for row in report["train_step"])
    assert [(row["precision"], row["batch_size"]) for row in forward] == [
        (precision, batch) for precision in measured for batch in (1, 2, 4)
    ]
    assert all(row["images_per_second"] > 0 for row in forward)
    tiny_generator = GeneratorSpec(ngf=8, num_downs=5).build()
    assert report["generator"]["parameters"] == sum(p.numel() for p in tiny_generator.parameters())
    assert [row["precision"] for row in report["train_step"]] == list(measured)
    assert all(row["batch_size"] == 4 and row["images_per_second"] > 0 for row in report["train_step"])
    assert report["predictor"]["input_megapixels"] == pytest.approx(0.05, rel=0.05)
    assert report["predictor"]["images_per_second"] > 0
    resnet = report["resnet18_unet"]
    assert resnet["parameters"] == 14_321_970  # the ResNet-18 U-Net's count in docs/models.md
    assert [row["batch_size"] for row in resnet["generator_forward"]] == [1, 2] * len(measured)
    assert [row["precision"] for row in resnet["train_step"]] == list(measured)
    # The tiny U-Net's forward pass at 32 px, counted by torch: 2 FLOPs per multiply-add.
    flops = _bench("gpu_check").forward_flops_of(tiny_generator, 32)
    for row in forward:
        assert row["achieved_tflops"] == pytest.approx(row["images_per_second"] * flops / 1e12, rel=1e-3, abs=1e-4)
        assert row["share_of_peak"] is None  # a CPU has no entry in the table of peaks
    assert set(report["colorize"]) == {"tiny", "demo"}
    for figures in report["colorize"].values():
        stages = figures["cpu_ms_per_image_by_stage"]
        assert figures["cpu_ms_per_image"] == pytest.approx(sum(stages.values()), abs=0.02)
        assert figures["device_ms_per_image"] > 0 and figures["cpu_cores_per_gpu"] is None  # no GPU here


def test_gpu_check_knows_the_peak_of_common_gpus_and_takes_one_for_others():
    check = _bench("gpu_check")
    assert check.peak_tflops("NVIDIA H200", "bf16") == 989.0
    assert check.peak_tflops("NVIDIA A10G", "fp16") == 70.0  # not the A10's 125: the longer name first
    assert check.peak_tflops("Tesla T4", "bf16") is None  # no native bf16 on a T4
    assert check.peak_tflops("Some New GPU", "fp16") is None
    assert check.peak_tflops("Some New GPU", "fp16", override=400.0) == 400.0


def test_c2pa_signing_bench_signs_every_output_kind():
    report = _bench("c2pa_signing").main(["--megapixels", "0.05", "--repeats", "2"])
    assert set(report["kinds"]) == {"jpeg8", "png8", "png16", "tiff8", "tiff16"}
    for kind in report["kinds"].values():
        assert kind["state"] == "trusted"
        assert kind["sign_ms"] > 0 and kind["verify_ms"] > 0
        # The manifest (claim, ingredient, signature with the chain) adds a few KiB, not a copy of the image.
        assert 2_000 < kind["added_bytes"] < 20_000


@pytest.mark.slow
def test_colorize_node_measures_a_worker_node_on_cores_of_its_own(tmp_path):
    # Its own cluster (head and worker node pinned to different cores), so a process of its own.
    import json
    import os
    import subprocess

    import numpy as np
    from PIL import Image

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("the node benchmark needs two cores: one for the head, one for the node")
    command = [sys.executable, str(REPO_ROOT / "bench" / "colorize_node.py"), "--model", "tiny", "--images", "4"]
    command += ["--marginal", "10", "--megapixels", "0.05", "--rounds", "2", "--task-batch-size", "4"]
    done = subprocess.run(
        [*command, "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    # The head keeps every core but the last; the node has the last one.
    assert report["node_cores"] == cores[-1:] and report["head_cores"] == cores[:-1]
    for name in ("floor", "floor_written", "fused"):  # each over all ten inputs, on the node's one core
        assert report[name]["images"] == 10 and report[name]["processes"] == 1, name
        assert len(report[name]["seconds_per_round"]) == 2 and report[name]["seconds"] == min(
            report[name]["seconds_per_round"]
        )
    assert report["marginal"]["images"] == 6 and report["warm"]["images"] == 4
    assert len(report["marginal"]["seconds_per_round"]) == 2
    assert report["marginal"]["seconds"] == pytest.approx(min(report["marginal"]["seconds_per_round"]), abs=1e-3)
    assert set(report["cpu_ms_per_image"]) == {"node", "head"}
    rates = {name: report[name]["images_per_second"] for name in ("floor", "floor_written", "fused", "marginal")}
    for name in ("floor", "floor_written", "fused"):
        assert report[f"node_marginal_over_{name}"] == pytest.approx(rates["marginal"] / rates[name], abs=1e-4)
    # floor_written wrote each input's colour JPEG at the input's size, its luma the input's gray
    # (JPEG at quality 95 twice: within a few levels) and its chroma the floor's constant planes.
    inputs = sorted((tmp_path / "in").glob("*.jpg"))[:10]
    written = sorted(tmp_path.glob("out-floor-*/*.jpg"))
    assert [path.name for path in written] == [path.name for path in inputs]
    for source, output in zip(inputs, written, strict=True):
        gray = np.asarray(Image.open(source), np.int16)
        with Image.open(output) as image:
            ycbcr = np.asarray(image.convert("YCbCr"), np.int16)
        assert ycbcr.shape[:2] == gray.shape
        assert np.abs(ycbcr[..., 0] - gray).mean() < 1.5
        assert np.abs(np.median(ycbcr[..., 1]) - 118) <= 1 and np.abs(np.median(ycbcr[..., 2]) - 140) <= 1
    # The jobs colorized every input (the benchmark raises otherwise) into their own outputs.
    outputs = [p for p in (tmp_path / "out-marginal").glob("*.jpg")]
    assert len(outputs) == 10
