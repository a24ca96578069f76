"""The evaluate job end to end: prepare's val split, a model overfitted on it, a folder, the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer import cli
from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.errors import ConfigError
from archive_colorizer.evaluate import run
from archive_colorizer.evaluate.config import EvaluateConfig
from archive_colorizer.evaluate.data import HeldOut
from archive_colorizer.evaluate.metrics import METRICS
from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec
from archive_colorizer.models.artifact import load_generator, save_generator
from archive_colorizer.train.step import build_pix2pix, pretrain_step
from tests.conftest import REPO_ROOT
from tests.train.conftest import make_shards

VAL = ("astronaut", "coffee", "chelsea")
SIZE = 32


def overfit_generator(truths: list[np.ndarray], url: str, steps: int = 120) -> str:
    """Train a tiny generator (ngf 8, 5 downsamplings) on ``truths`` alone with L1 steps; save it at ``url``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread is the fast and steady choice
    try:
        torch.manual_seed(0)
        spec = GeneratorSpec(ngf=8, num_downs=5)
        generator = spec.build()
        model = build_pix2pix(generator, DiscriminatorSpec(ndf=8, n_layers=1).build(), lr=2e-3)
        l_norm, ab = rgb_to_l_ab(torch.from_numpy(np.stack(truths)).permute(0, 3, 1, 2).float() / 255)  # (N, 1|2, S, S)
        for _ in range(steps):
            pretrain_step(model, l_norm, ab)
        generator.eval()
        save_generator(generator, url, spec=spec, working_size=SIZE, provenance={"run": "overfitted on the val photos"})
    finally:
        torch.set_num_threads(threads)
    return url


@pytest.fixture(scope="module")
def shards_run(photos, tmp_path_factory, ray_local):
    root = tmp_path_factory.mktemp("evaluate")
    chosen = {name: photos[name] for name in (*VAL, "rocket")}  # rocket: the train split, never evaluated
    shards = make_shards(root, chosen, size=48, val=VAL)
    held_out = HeldOut.open(shards, "val", (".jpg",), None)
    truths = [image.rgb for image in held_out.images(SIZE, gray_threshold=0, extensions=(".jpg",), max_pixels=10**8)]
    model = overfit_generator(truths, str(root / "overfitted"))
    result = run(EvaluateConfig(model=model, data=shards, out=str(root / "eval"), size=SIZE, sheet_images=2))
    return SimpleNamespace(
        root=root,
        shards=shards,
        model=model,
        result=result,
        saved=json.loads((root / "eval" / "evaluation.json").read_text()),
    )


def test_overfitted_model_beats_the_gray_baseline(shards_run):
    mean = shards_run.result.mean
    print(json.dumps(mean, indent=1))
    assert mean["model"]["psnr"] > mean["gray"]["psnr"] + 5
    assert mean["model"]["abs_delta_colorfulness"] < mean["gray"]["abs_delta_colorfulness"] / 2
    assert mean["model"]["ciede2000"] < mean["gray"]["ciede2000"]
    assert mean["model"]["psnr_ab"] > mean["gray"]["psnr_ab"] + 5  # on chroma alone too
    assert mean["model"]["ssim_ab"] > mean["gray"]["ssim_ab"]
    assert mean["gray"]["colorfulness"] == 0.0
    assert mean["gray"]["delta_colorfulness"] == -mean["truth"]["colorfulness"]
    for image in shards_run.saved["per_image"]:  # better on every image, not just on average
        assert image["model"]["psnr"] > image["gray"]["psnr"]
        assert image["model"]["abs_delta_colorfulness"] < image["gray"]["abs_delta_colorfulness"]


def test_evaluation_json_holds_every_field(shards_run):
    saved, model = shards_run.saved, load_generator(shards_run.model)
    assert saved["images"] == len(saved["per_image"]) == len(VAL)  # the val split only
    assert sorted(Path(image["name"]).stem for image in saved["per_image"]) == sorted(VAL)
    for image in saved["per_image"]:
        assert set(image["model"]) == set(image["gray"]) == set(METRICS) and image["truth_colorfulness"] > 10
    for colouring in ("model", "gray"):
        for name in METRICS:  # means of the per-image values
            values = [image[colouring][name] for image in saved["per_image"]]
            assert saved["mean"][colouring][name] == pytest.approx(np.mean(values), abs=1e-3)
    assert set(saved["conventions"]) >= {*METRICS, "gray", "model", "images"}
    assert (
        saved["model"]["sha256"] == model.sha256
        and saved["model"]["provenance"]["run"] == "overfitted on the val photos"
    )
    assert (saved["model"]["working_size"], saved["model"]["model_size"], saved["size"]) == (SIZE, SIZE, SIZE)
    assert saved["data"] == {
        "url": shards_run.shards,
        "kind": "shards",
        "split": "val",
        "skipped": {},
        "skipped_examples": [],
    }
    assert saved["config"]["model"] == shards_run.model and saved["contact_sheet"] == "contact_sheet.png"


def test_contact_sheet_has_a_labelled_row_per_image(shards_run):
    sheet = Image.open(shards_run.result.contact_sheet_url)
    assert sheet.format == "PNG" and sheet.width > sheet.height / 2 * 1.5  # 2 rows of 3 columns
    pixels = np.asarray(sheet.convert("RGB"), dtype=np.int16)
    chroma = np.abs(pixels[..., 0] - pixels[..., 1]) + np.abs(pixels[..., 1] - pixels[..., 2])
    assert (chroma > 30).mean() > 0.05  # the prediction and truth columns are in colour


def test_a_folder_of_photographs_through_the_job_entrypoint(photos, tmp_path, shards_run):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in (
        *VAL,
        "rocket",
        "motorcycle",
    ):  # listed: astronaut (broken) chelsea coffee (gray) motorcycle; rocket after the 4th
        Image.fromarray(photos[name]).save(folder / f"{name}.png")
    Image.fromarray(photos["coffee"]).convert("L").save(folder / "gray scan.png")
    (folder / "broken notes.jpg").write_bytes(b"not a photograph")
    completed = subprocess.run(
        [
            sys.executable,
            "jobs/evaluate.py",
            "--model",
            shards_run.model,
            "--data",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--size",
            "64",
            "--max-images",
            "4",
            "--sheet-images",
            "0",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    saved = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert saved["images"] == 4 and saved["size"] == 64 and saved["contact_sheet"] is None
    assert [image["name"] for image in saved["per_image"]] == [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "motorcycle.png",
    ]
    assert saved["data"]["kind"] == "folder" and saved["data"]["skipped"] == {"gray": 1, "not_an_image": 1}
    assert {e["name"] for e in saved["data"]["skipped_examples"]} == {"gray scan.png", "broken notes.jpg"}
    assert not (tmp_path / "out" / "contact_sheet.png").exists()
    assert "PSNR (dB, RGB 8-bit)" in completed.stdout and "gray" in completed.stdout


def test_a_split_with_no_rows_is_a_usage_error(shards_run, tmp_path, capsys):
    code = cli.main(
        [
            "evaluate",
            "--model",
            shards_run.model,
            "--data",
            shards_run.shards,
            "--split",
            "test",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "no image to evaluate in split 'test'" in capsys.readouterr().err


def test_degraded_inputs_are_scored_next_to_clean_ones_and_the_same_each_run(shards_run, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("noise: {p: 1, std: [0.08, 0.08]}\njpeg: {p: 1, quality: [20, 20]}\n")
    runs = [
        run(
            EvaluateConfig(
                model=shards_run.model,
                data=shards_run.shards,
                out=str(tmp_path / f"eval-{index}"),
                size=SIZE,
                sheet_images=1,
                degrade=str(recipe),
            )
        )
        for index in range(2)
    ]
    mean, clean = runs[0].mean, shards_run.result.mean
    assert runs[1].mean == mean  # every image damaged from its own seed: the same numbers again
    for colouring in ("model", "gray"):
        assert mean[colouring] == clean[colouring]  # the clean scores are unchanged beside the degraded ones
    assert mean["gray_degraded"]["colorfulness"] == 0.0
    # The damage costs the model colour accuracy (it was fitted on clean gray values only) ...
    assert mean["model_degraded"]["psnr_ab"] < mean["model"]["psnr_ab"] - 1
    assert mean["model_degraded"]["ciede2000"] > mean["model"]["ciede2000"]
    # ... and the gray baseline's chroma is none either way: the same ab scores as the clean gray.
    assert mean["gray_degraded"]["psnr_ab"] == pytest.approx(mean["gray"]["psnr_ab"], abs=0.05)
    saved = runs[0].evaluation
    assert saved["degrade"]["operations"]["jpeg"] == {"p": 1.0, "quality": [20, 20]} and saved["degrade"]["seed"] == 0
    assert set(saved["per_image"][0]) >= {"model", "gray", "model_degraded", "gray_degraded"}
    assert (
        Image.open(tmp_path / "eval-0" / "contact_sheet.png").size[0]
        > Image.open(shards_run.root / "eval" / "contact_sheet.png").size[0]
    )  # two more columns


def test_a_curator_clicks_through_the_blind_test_and_evaluate_scores_the_votes(shards_run, tmp_path, capsys):
    """The page in headless Chromium (Playwright driving Debian's chromium): pick, download, score."""
    from scripts.screenshot_review import find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH or in $CHROMIUM (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    from archive_colorizer.evaluate import blind

    folder = shards_run.root / "eval" / blind.FOLDER
    key = json.loads((folder / blind.KEY_NAME).read_text())
    assert len(key["pairs"]) == len(VAL)  # every held-out photograph (fewer than --blind-test-images)
    # Pick the real photograph of the first pair and the colorization of the others: fooled 2 of 3.
    picks = [p["real"] if i == 0 else ("B" if p["real"] == "A" else "A") for i, p in enumerate(key["pairs"])]
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[*args, "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto((folder / blind.PAGE_NAME).as_uri())
            page.fill("#voter", "curator 1")
            for number, side in enumerate(picks, 1):
                assert page.text_content("#progress") == f"Pair {number} of {len(picks)}"
                for image in ("#image-A", "#image-B"):  # both pictures loaded
                    assert page.eval_on_selector(image, "img => img.complete && img.naturalWidth") == SIZE
                page.click(f"button.pick[data-side={side}]")
            assert page.text_content("#count") == str(len(picks))
            with page.expect_download() as download:
                page.click("#download")
            votes_file = tmp_path / "votes.json"
            download.value.save_as(votes_file)
        finally:
            browser.close()
    assert errors == []
    votes = json.loads(votes_file.read_text())
    assert votes["voter"] == "curator 1" and [v["picked"] for v in votes["votes"]] == picks
    capsys.readouterr()
    out = str(shards_run.root / "eval")
    assert cli.main(["evaluate", "--votes", str(votes_file), "--out", out]) == 0
    # 2 of 3, Wilson 95% interval 0.208-0.939.
    assert capsys.readouterr().out.startswith("fooling rate 0.667 (95% interval 0.208-0.939): the colorization was")


def test_gpu_on_a_cluster_without_gpus_is_refused_at_once(shards_run):
    config = EvaluateConfig(model=shards_run.model, data=shards_run.shards, out=str(shards_run.root / "g"), gpu=True)
    with pytest.raises(ConfigError, match="the Ray cluster has no GPU and cannot grow to one"):
        run(config)
    assert not (shards_run.root / "g").exists()


@pytest.mark.slow
def test_gpu_runs_the_generator_in_a_task_on_a_gpu_node_not_in_the_driver(shards_run, tmp_path):
    # `ray job submit -- archive-colorizer evaluate --gpu` runs its driver on the CPU-only head: the
    # generator must run in a task that holds a GPU. Here the GPU is a logical one on a worker node,
    # so that task is scheduled there and then finds no CUDA device, and says so naming its GPU.
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    try:
        cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        command = [sys.executable, "-m", "archive_colorizer", "evaluate", "--model", shards_run.model, "--data"]
        command += [shards_run.shards, "--out", str(tmp_path / "eval"), "--gpu", "--ray-address", cluster.address]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        cluster.shutdown()
    assert done.returncode == 1, done.stderr
    assert "archive-colorizer evaluate: evaluate --gpu: the task given GPU [" in done.stderr
    assert "sees no CUDA device" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "eval").exists()
