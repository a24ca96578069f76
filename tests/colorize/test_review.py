"""The review page of a colorize run: bounded sample, escaped names, failures, and a real browser."""

from __future__ import annotations

import io
import random
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from archive_colorizer.colorize import manifest, review, run
from archive_colorizer.colorize.config import ColorizeConfig
from scripts.screenshot_review import find_chromium, render_page
from tests.colorize.conftest import encode

TRICKY_GRAY = "odd <b>&amp; \"quoted\" 'name'.png"
TRICKY_FAILED = "<img src=x onerror=alert(1)>.jpg"


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


@pytest.fixture(scope="module")
def review_run(photos, tiny_model, tmp_path_factory, ray_local):
    """A colorize run with 4 gray photos (one with a tricky name), a colour photo and 2 broken files."""
    root = tmp_path_factory.mktemp("review")
    archive = root / "in"
    (archive / "box 1").mkdir(parents=True)
    for name in ("astronaut", "chelsea", "coffee"):
        (archive / "box 1" / f"{name}.jpg").write_bytes(
            encode(Image.fromarray(photos[name]).convert("L"), "JPEG", quality=90)
        )
    (archive / TRICKY_GRAY).write_bytes(encode(Image.fromarray(photos["rocket"]).convert("L"), "PNG"))
    (archive / "colour.jpg").write_bytes(encode(Image.fromarray(photos["coffee"]), "JPEG", quality=90))
    (archive / TRICKY_FAILED).write_bytes(b"a note, not a picture")
    (archive / "empty.jpg").write_bytes(b"")
    config = ColorizeConfig(
        input=str(archive), output=str(root / "out"), model=tiny_model, progress=False, review_samples=4
    )
    result = run(config)
    page = root / "out" / review.REVIEW_DIR / review.PAGE_NAME
    return SimpleNamespace(root=root, config=config, result=result, page=page, html=page.read_text())


def _rows(count: int, failed_every: int = 7) -> list[dict]:
    return [
        {
            "input_url": f"s3://archive/scan-{i:06d}.tif",
            "output_url": f"s3://out/scan-{i:06d}.tif",
            "status": manifest.FAILED if i % failed_every == 0 else manifest.COLORIZED,
            "reason": ("truncated", "empty")[i % 2] if i % failed_every == 0 else None,
        }
        for i in range(count)
    ]


def test_review_rows_keep_a_bounded_sample_that_does_not_depend_on_the_order():
    rows = _rows(20_000)
    gathered = []
    for seed in (0, 1):
        shuffled = random.Random(seed).sample(rows, len(rows))
        kept = review.ReviewRows(samples=24, failures_listed=10)
        for start in range(0, len(shuffled), 1000):
            kept.add(shuffled[start : start + 1000])
            assert len(kept._finished) <= 48 and len(kept._failed) <= 20  # bounded whatever the job's size
        gathered.append(kept)
    first, second = gathered
    assert first.sample_rows() == second.sample_rows()
    finished = [row for row in rows if row["status"] == manifest.COLORIZED]
    smallest = sorted(finished, key=lambda row: review._stable_hash(row["input_url"]))[:24]
    assert [r["input_url"] for r in first.sample_rows()] == sorted(r["input_url"] for r in smallest)
    failed = [row for row in rows if row["status"] == manifest.FAILED]
    assert first.failed_rows() == failed[:10] and first.failed_total == len(failed)
    assert sum(first.reasons.values()) == len(failed) and set(first.reasons) == {"truncated", "empty"}


def test_every_run_writes_a_page_with_thumbnails_beside_it(review_run):
    thumbs = sorted(p.name for p in (review_run.page.parent / review.THUMBS_DIR).iterdir())
    assert len(thumbs) == 2 * 4  # before and after of each colorized input (--review-samples 4)
    for name in thumbs:
        with Image.open(review_run.page.parent / review.THUMBS_DIR / name) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) == review.THUMB_SIDE
    sources = [attrs["src"] for tag, attrs in _tags(review_run.html) if tag == "img"]
    assert sorted(Path(src).name for src in sources) == thumbs
    assert not any(
        tag in ("link", "iframe") or (attrs.get("src") or "").startswith(("http", "//"))
        for tag, attrs in _tags(review_run.html)
    )  # no external asset
    assert len(review_run.html.encode()) < 40_000


def test_names_from_the_archive_are_escaped(review_run):
    tags = _tags(review_run.html)
    # The failed file's name would make an <img src=x> element if it were pasted in raw.
    assert not [attrs for tag, attrs in tags if tag == "img" and attrs.get("src") == "x"]
    assert not [tag for tag, _ in tags if tag == "b"]
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in review_run.html
    assert "&lt;b&gt;&amp;amp; &#34;quoted&#34; &#39;name&#39;.png" in review_run.html  # markupsafe's quote entities


SCRIPT_NAME = "<script>alert('x')</script>.jpg"


def test_a_file_name_with_a_script_tag_is_text_everywhere_on_the_page():
    """Without a run: a name holding <script> as a sample, a failure and provenance is escaped text."""
    url = f"/in/{SCRIPT_NAME}"
    row = {"input_url": url, "output_url": "/out/a.jpg", "status": manifest.COLORIZED, "reason": None}
    row |= {"error": None, "width": 40, "height": 30, "input_mode": "L", "run_id": "r1"}
    failed = dict(row, output_url=None, status=manifest.FAILED, reason="decode_error", error=f"{url}: bad")
    rows = review.ReviewRows(samples=1, failures_listed=5)
    rows.add([row, failed])
    summary = {
        "inputs": 2,
        "counts": {manifest.COLORIZED: 1, manifest.FAILED: 1},
        "wall_seconds": 1.0,
        "images_per_second": 2.0,
        "run_id": "r1",
        "started": "s",
        "finished": "f",
        "message": SCRIPT_NAME,
        "manifest": "/out/_manifest",
        "model": {"url": "/m", "sha256": "ab", "provenance": {"run": SCRIPT_NAME}},
        "config": {"input": "/in/", "output": "/out", "review_samples": 1},
    }
    pair = {"before": "b.jpg", "after": "a.jpg", "width": 40, "height": 30}
    page = review.render_page(summary, rows, [(row, pair)], "/in/")
    assert "<script>alert" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.jpg"
    # caption, title attribute, two alt texts, the slider's label, failure row, its error, message, provenance
    assert page.count(escaped) == 9
    assert [tag for tag, _ in _tags(page)].count("script") == 1  # the page's own slider script only
    assert {attrs.get("title") for tag, attrs in _tags(page) if tag == "div"} >= {url}


def test_the_failed_list_is_bounded_and_points_to_the_manifest(review_run):
    url = review.write_review(review_run.config, review_run.result, failures_listed=1)
    html = Path(url).read_text()
    assert "Failed inputs: 2" in html and "the first 1 by path listed here" in html
    assert html.count('<td class="mono">&lt;img src=x') == 1 and "empty.jpg</td>" not in html
    assert manifest.manifest_url(review_run.config.output) in html
    review.write_review(review_run.config, review_run.result)  # the full page again, for the browser test


def test_fewer_samples_remove_the_thumbnails_no_longer_shown(review_run, tmp_path):
    config = review_run.config.model_copy(update={"review_samples": 1})
    url = review.write_review(config, review_run.result)
    assert len(list((Path(url).parent / review.THUMBS_DIR).iterdir())) == 2
    assert "Before / after: 1 of 4 outputs" in Path(url).read_text()
    review.write_review(review_run.config, review_run.result)
    assert len(list((Path(url).parent / review.THUMBS_DIR).iterdir())) == 8


def test_the_page_and_its_thumbnails_go_to_s3_too(review_run, s3_bucket):
    bucket, options = s3_bucket
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.put(str(review_run.root / "out" / manifest.MANIFEST_DIR), f"{bucket}/out/", recursive=True)  # the run's manifest
    config = review_run.config.model_copy(update={"output": f"{bucket}/out", "storage_options": options})
    url = review.write_review(config, review_run.result)
    assert url == f"{bucket}/out/_review/index.html"
    assert "Before / after: 4 of 4 outputs" in fs.cat_file(url).decode()
    assert len(fs.ls(f"{bucket}/out/_review/thumbs", refresh=True)) == 8
    review.write_review(config.model_copy(update={"review_samples": 1}), review_run.result)
    assert len(fs.ls(f"{bucket}/out/_review/thumbs", refresh=True)) == 2


def test_a_page_that_cannot_be_written_is_a_warning_not_a_failed_run(review_run, tmp_path, capsys):
    import shutil

    shutil.copytree(review_run.root / "out" / manifest.MANIFEST_DIR, tmp_path / "out" / manifest.MANIFEST_DIR)
    (tmp_path / "out" / review.REVIEW_DIR).write_text("a file where the review folder would go")
    config = review_run.config.model_copy(update={"output": str(tmp_path / "out")})
    assert review.write_review(config, review_run.result) is None
    assert "warning: the review page could not be written" in capsys.readouterr().err


def _region(image: np.ndarray, left: float, right: float) -> np.ndarray:
    """Columns ``left`` to ``right`` (fractions of the width) below the badges."""
    height, width = image.shape[:2]
    return image[30 : height - 2, int(left * width) : int(right * width)]


@pytest.mark.skipif(
    find_chromium() is None, reason="no chromium on PATH or in $CHROMIUM (apt-get install chromium; .ci/run does)"
)
def test_the_page_renders_in_headless_chromium(review_run, tmp_path):
    rendered = render_page(review_run.page, width=1200)
    (tmp_path / "review.png").write_bytes(rendered.png)
    assert rendered.console_errors == []
    assert len(rendered.images) == 8 and all(
        image["complete"] and image["natural_width"] > 0 for image in rendered.images
    )
    screenshot = np.asarray(Image.open(io.BytesIO(rendered.png)).convert("RGB"), dtype=np.float32)
    assert screenshot.shape[1] == 1200 and screenshot.std() > 30  # not blank
    # Each pair is on screen as its thumbnails: the original left of the slider (at 50 %), the output right of it.
    for image in rendered.images:
        left, top, width, height = (round(v) for v in image["box"])
        shown = screenshot[top : top + height, left : left + width]
        with Image.open(review_run.page.parent / image["src"]) as thumb:
            expected = np.asarray(
                thumb.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32
            )
        half = (0.05, 0.45) if image["src"].endswith("-before.jpg") else (0.55, 0.95)
        assert np.abs(_region(shown, *half) - _region(expected, *half)).mean() < 8, image["src"]
    text = rendered.text
    assert TRICKY_FAILED in text and "empty.jpg" in text and "not_an_image" in text
    assert TRICKY_GRAY in text and "box 1/astronaut.jpg" in text  # names relative to INPUT, as they are
    assert "Failed inputs: 2" in text and review_run.result.model_sha256 in text and "skipped_color" in text


def test_rows_gathered_from_the_stream_equal_those_read_back_from_the_manifest(review_run):
    # The job feeds the page from the batches streaming through its driver (add_table); a page
    # made again later reads the manifest (iter_run_rows): both choose the same rows.
    streamed = review.ReviewRows(samples=4, failures_listed=review.FAILURES_LISTED)
    streamed.add_table(manifest.read_manifest(str(review_run.root / "out")))
    read_back = review.ReviewRows(samples=4, failures_listed=review.FAILURES_LISTED)
    for batch in review.iter_run_rows(review_run.config.output, review_run.result.run_id, None):
        read_back.add(batch)
    assert streamed.sample_rows() == read_back.sample_rows() and len(streamed.sample_rows()) == 4
    assert streamed.failed_rows() == read_back.failed_rows() and streamed.failed_total == 2
    assert streamed.reasons == read_back.reasons


def test_the_job_never_reads_its_manifest_back_for_the_page(photos, tiny_model, tmp_path, monkeypatch, ray_local):
    def no_reading(*args, **kwargs):
        raise AssertionError("the job read its manifest back for the review page")

    monkeypatch.setattr(review, "iter_run_rows", no_reading)
    (tmp_path / "in").mkdir()
    for name in ("astronaut", "chelsea"):
        gray = Image.fromarray(photos[name]).convert("L")
        (tmp_path / "in" / f"{name}.jpg").write_bytes(encode(gray, "JPEG", quality=90))
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a picture")
    config = ColorizeConfig(input=str(tmp_path / "in"), output=str(tmp_path / "out"), model=tiny_model, progress=False)
    result = run(config.model_copy(update={"max_failure_rate": 1.0}))
    html = (tmp_path / "out" / review.REVIEW_DIR / review.PAGE_NAME).read_text()
    assert result.counts[manifest.COLORIZED] == 2
    assert "astronaut.jpg" in html and "chelsea.jpg" in html and "broken.jpg" in html
