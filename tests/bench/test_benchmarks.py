"""Every benchmark under bench/ runs at a tiny size on the session's Ray and reports its figures.

The figures themselves are not judged here (they belong to a quiet machine and the README);
what is checked is that each benchmark still runs its whole course against the current code
and that its report holds the numbers it promises, with values that fit together.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("ray_local")


def _bench(name: str):
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))


def test_colorize_throughput_reports_every_rate_and_ratio(tmp_path, capsys):
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
        ]
    )
    assert report["images"] == 6
    for chroma in ("444", "420"):  # ms per image of every stage, each a real duration
        assert set(report["stages_ms_per_image"][chroma]) == {"decode", "model", "merge", "encode", "write"}
        assert all(value > 0 for value in report["stages_ms_per_image"][chroma].values()), chroma
    for name in ("floor", "floor_gray", "model_only", "naive", "pipeline", "pipeline_warm"):
        assert report[name]["images_per_second"] > 0, name
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
    assert '"pipeline_over_ideal"' in capsys.readouterr().out  # the JSON on stdout


def test_colorize_memory_reports_both_jobs_and_the_huge_image(tmp_path):
    report = _bench("colorize_memory").main(
        ["--small", "3", "--large", "6", "--megapixels", "0.05", "--huge-megapixels", "4", "--workdir", str(tmp_path)]
    )
    small, large = report["job"]["small"], report["job"]["large"]
    assert (small["colorized"], large["colorized"]) == (3, 6)
    assert small["peak_rss_mb"] > 100 and large["peak_rss_mb"] > 100  # the driver and its Ray, not nothing
    assert report["job"]["ratio"] == pytest.approx(large["peak_rss_mb"] / small["peak_rss_mb"], rel=0.05, abs=2e-3)
    huge = report["huge_image"]
    assert huge["megapixels"] == pytest.approx(4, rel=0.01) and huge["output_bytes"] > 0
    assert huge["peak_rss_mb"] >= huge["baseline_rss_mb"] > 0


def test_train_throughput_compares_the_ray_path_with_the_plain_loop():
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
    assert report["plain_images_per_sec"] > 0 and report["ray_images_per_sec_per_worker"] > 0
    assert report["ratio"] == pytest.approx(
        report["ray_images_per_sec_per_worker"] / report["plain_images_per_sec"], rel=0.05, abs=2e-3
    )


def test_prepare_throughput_writes_every_photo():
    report = _bench("prepare_throughput").main(["--count", "12", "--cpus", "2", "--rows-per-shard", "6"])
    assert report["written"] == 12 and report["shards"] == 2 and report["images_per_second"] > 0


def test_review_page_bench_streams_a_manifest():
    report = _bench("review_page").main(["--rows", "2000", "--samples", "4"])
    assert report["rows"] == 2000 and report["samples"] == 4 and report["page_bytes"] > 1000


def test_gpu_check_runs_at_a_tiny_size_without_cuda_and_reports_every_figure():
    import torch

    from archive_colorizer.models import GeneratorSpec

    report = _bench("gpu_check").main(["--tiny", "--repeats", "1", "--max-batch", "4"])
    assert report["tiny"] is True
    if not torch.cuda.is_available():
        assert report["device"] == "cpu" and report["peak_memory_mb"] is None
    forward = report["generator_forward"]
    assert [(row["precision"], row["batch_size"]) for row in forward] == [
        (precision, batch) for precision in ("bf16", "fp32") for batch in (1, 2, 4)
    ]
    assert all(row["images_per_second"] > 0 for row in forward)
    tiny_generator = GeneratorSpec(ngf=8, num_downs=5).build()
    assert report["generator"]["parameters"] == sum(p.numel() for p in tiny_generator.parameters())
    assert report["train_step"]["batch_size"] == 4 and report["train_step"]["images_per_second"] > 0
    assert report["predictor"]["input_megapixels"] == pytest.approx(0.05, rel=0.05)
    assert report["predictor"]["images_per_second"] > 0
