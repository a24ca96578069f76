"""The review page of a colorize run: ``OUTPUT/_review/index.html``, one static file to look at.

An archivist checks a run by eye: the page shows the run's counts per status, a sample of
before/after pairs (a slider over each pair), the failed inputs with their reasons, and the
generator with its provenance. It is plain HTML with inline CSS and a few lines of inline
JavaScript (the slider; without script the pair stays split in the middle): no server, no
external asset, so it opens from a bucket download or a local folder alike. It is rendered from
the Jinja2 template ``colorize/templates/review.html.j2`` (with ``review.css`` and
``review.js``) with autoescape: every string from the manifest, the config or the model (file
names may hold ``<``, ``&`` or quotes) is HTML-escaped.

The page stays small whatever the size of the job. Its rows come from one pass over this run's
manifest file, streamed in batches, keeping only

- the ``samples`` finished inputs (``colorized`` or ``skipped_existing``) with the smallest
  hash of their input URL: a fixed-size, uniform, deterministic sample (the same inputs are
  shown again after a resume);
- the first ``failures_listed`` failed inputs by input URL, plus the count per reason; the page
  names the manifest, which holds the rest.

Thumbnails (at most :data:`THUMB_SIDE` pixels, JPEG) are written beside the page in
``_review/thumbs/``; thumbnails of an earlier page that are no longer shown are removed.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import posixpath
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jinja2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from archive_colorizer import __version__, images, storage
from archive_colorizer.colorize import manifest
from archive_colorizer.errors import StorageError

if TYPE_CHECKING:
    from archive_colorizer.colorize import ColorizeResult
    from archive_colorizer.colorize.config import ColorizeConfig

REVIEW_DIR = "_review"
PAGE_NAME = "index.html"
THUMBS_DIR = "thumbs"
THUMB_SIDE = 320
"""Longest side of a thumbnail in pixels."""
THUMB_QUALITY = 80
FAILURES_LISTED = 100
"""Failed inputs listed on the page (the first by input URL); the manifest holds them all."""
ERROR_CHARS = 300
"""Characters of an error message shown on the page."""
READ_THREADS = 4
"""Thumbnails made at once (each holds one decoded input and one output)."""
_COLUMNS = ("input_url", "output_url", "status", "reason", "error", "width", "height", "input_mode", "run_id")


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass
class ReviewRows:
    """What the page shows of a run's manifest rows, gathered in one pass with bounded memory.

    Holds at most ``2 * samples`` finished rows and ``2 * failures_listed`` failed rows at any
    time (trimmed by sorting when full), whatever the number of rows added.
    """

    samples: int
    failures_listed: int
    failed_total: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    _finished: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _failed: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Take in manifest rows (dicts with at least :data:`_COLUMNS`)."""
        for row in rows:
            if row["status"] == manifest.FAILED:
                self.failed_total += 1
                self.reasons[row["reason"] or "unknown"] += 1
                self._failed.append(row)
                if len(self._failed) > 2 * max(self.failures_listed, 1):
                    self._failed = self.failed_rows()
            elif row["status"] in manifest.DONE_STATUSES and row["output_url"] and self.samples:
                self._finished.append((_stable_hash(row["input_url"]), row))
                if len(self._finished) > 2 * self.samples:
                    self._finished = sorted(self._finished, key=lambda item: item[0])[: self.samples]

    def add_table(self, table: pa.Table) -> None:
        """Take in a batch of final rows as the job's driver receives them (its manifest sink).

        Only the failed rows and the finished rows with an output are looked at one by one;
        the others (skipped by colour, repeated list entries) cost one vectorised filter.
        """
        status = table.column("status")
        wanted = pc.or_(
            pc.equal(status, manifest.FAILED),
            pc.and_(pc.is_in(status, pa.array(manifest.DONE_STATUSES)), pc.is_valid(table.column("output_url"))),
        )
        columns = [name for name in _COLUMNS if name in table.column_names]
        self.add(table.filter(wanted).select(columns).to_pylist())

    def sample_rows(self) -> list[dict[str, Any]]:
        """The sampled finished rows (smallest URL hashes), ordered by input URL."""
        chosen = sorted(self._finished, key=lambda item: item[0])[: self.samples]
        return sorted((row for _, row in chosen), key=lambda row: row["input_url"])

    def failed_rows(self) -> list[dict[str, Any]]:
        """The first ``failures_listed`` failed rows by input URL."""
        return sorted(self._failed, key=lambda row: row["input_url"])[: self.failures_listed]


def iter_run_rows(
    output_url: str, run_id: str, storage_options: Mapping[str, Any] | None
) -> Iterator[list[dict[str, Any]]]:
    """Batches of one run's manifest rows: its ``run-*`` file, or its parts if it has none.

    Raises:
        StorageError: a manifest file cannot be read.
    """
    fs, folder = storage.open_url(manifest.manifest_url(output_url), storage_options)
    names = sorted(posixpath.basename(p) for p in fs.ls(folder, detail=False)) if fs.isdir(folder) else []
    mine = [n for n in names if n.endswith(".parquet") and n.removesuffix(".parquet").split("-")[2:3] == [run_id]]
    run_files = [n for n in mine if n.startswith("run-")]
    for name in run_files or [n for n in mine if n.startswith("part-")]:
        path = storage.join(folder, name)
        try:
            with fs.open(path, "rb") as handle:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=4096, columns=list(_COLUMNS)):
                    yield batch.to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read the manifest file {storage.to_url(fs, path)!r}: {exc}") from exc


def _thumbnail(image: Image.Image, size: tuple[int, int]) -> bytes:
    return images.jpeg_bytes(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), quality=THUMB_QUALITY)


def _decoded(url: str, options: Mapping[str, Any] | None, max_pixels: int) -> Image.Image:
    fs, path = storage.open_url(url, options)
    draft = (THUMB_SIDE, THUMB_SIDE)  # JPEGs decode at 1/2 to 1/8 scale
    return images.to_rgb(
        images.decode(storage.read_bytes(fs, path), source=url, max_pixels=max_pixels, draft_size=draft).image
    )


def make_pair(
    row: dict[str, Any], thumbs_url: str, options: Mapping[str, Any] | None, max_pixels: int
) -> dict[str, Any]:
    """Write the before (the input as gray) and after (the output) thumbnails of one finished row.

    Returns:
        ``{"before": name, "after": name, "width": w, "height": h}`` (names relative to the
        thumbs folder, size of both thumbnails), or ``{"error": message}`` when the input or
        the output cannot be read or decoded (the page says so instead of showing the pair).
    """
    key = hashlib.sha1(row["input_url"].encode()).hexdigest()[:20]
    try:
        before = _decoded(row["input_url"], options, max_pixels).convert("L")
        after = _decoded(row["output_url"], options, max_pixels)
    except (OSError, ValueError, StorageError) as exc:  # ImageDecodeError is a ValueError
        return {"error": f"{type(exc).__name__}: {exc}"}
    scale = THUMB_SIDE / max(after.size)
    size = (max(1, round(after.width * scale)), max(1, round(after.height * scale)))
    fs, folder = storage.open_url(thumbs_url, options)
    names = {"before": f"{key}-before.jpg", "after": f"{key}-after.jpg"}
    storage.write_bytes(fs, storage.join(folder, names["before"]), _thumbnail(before, size))
    storage.write_bytes(fs, storage.join(folder, names["after"]), _thumbnail(after, size))
    return {**names, "width": size[0], "height": size[1]}


def _remove_stale_thumbs(thumbs_url: str, keep: set[str], options: Mapping[str, Any] | None) -> None:
    fs, folder = storage.open_url(thumbs_url, options)
    if fs.isdir(folder):
        stale = [p for p in fs.ls(folder, detail=False) if posixpath.basename(p) not in keep]
        if stale:
            fs.rm(stale)


def write_review(
    config: ColorizeConfig,
    result: ColorizeResult,
    *,
    failures_listed: int = FAILURES_LISTED,
    rows: ReviewRows | None = None,
) -> str | None:
    """Write ``OUTPUT/_review/index.html`` and its thumbnails for a finished run.

    The page is a report on outputs that already exist: if it cannot be written, for whatever
    reason, the run's result stands, a warning goes to stderr, and None is returned.

    Args:
        config: the run's config (``review_samples`` pairs are shown).
        result: the run's result (its summary and run id).
        failures_listed: failed inputs listed on the page.
        rows: the run's rows as gathered while they streamed through the driver (what the job
            passes: its manifest is then never read again); ``None`` reads the run's manifest
            files (a page made again after the run).

    Returns:
        The page's URL, or None when it could not be written.
    """
    options = config.storage_options
    review_url = storage.join(config.output, REVIEW_DIR)
    thumbs_url = storage.join(review_url, THUMBS_DIR)
    try:
        if rows is None:
            rows = ReviewRows(config.review_samples, failures_listed)
            for batch in iter_run_rows(config.output, result.run_id, options):
                rows.add(batch)
        samples = rows.sample_rows()
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            pairs = list(pool.map(lambda row: make_pair(row, thumbs_url, options, config.max_pixels), samples))
        _remove_stale_thumbs(thumbs_url, {p[k] for p in pairs for k in ("before", "after") if k in p}, options)
        page = render_page(result.summary, rows, list(zip(samples, pairs, strict=True)), _input_root(config))
        fs, path = storage.open_url(storage.join(review_url, PAGE_NAME), options)
        storage.write_bytes(fs, path, page.encode("utf-8"))
    except Exception as exc:  # the outputs and the manifest are done: a report must not fail the run
        print(
            f"archive-colorizer colorize: warning: the review page could not be written: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return None
    url = storage.join(review_url, PAGE_NAME)
    print(f"  review page {url}")
    return url


def _input_root(config: ColorizeConfig) -> str:
    """INPUT as the manifest writes its URLs, with a trailing ``/`` (to show input names relative to it)."""
    fs, path = storage.open_url(config.input, config.storage_options)
    return storage.to_url(fs, path.rstrip("/")) + "/"


# --- the page ---

TEMPLATE_NAME = "review.html.j2"
"""The page's Jinja2 template, with ``review.css`` and ``review.js``, in ``colorize/templates/``."""


@functools.cache
def _environment() -> jinja2.Environment:
    """Jinja2 environment of the package's templates, autoescaping every value (HTML)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("archive_colorizer.colorize", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["thousands"] = lambda number: f"{number:,}"
    environment.filters["share"] = lambda count, total: f"{count / max(total, 1):.1%}"
    return environment


def _short(text: str | None, limit: int = ERROR_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _relative(url: str, root: str) -> str:
    return url[len(root) :] if url.startswith(root) else url


def _pair_view(row: Mapping[str, Any], pair: Mapping[str, Any], root: str) -> dict[str, Any]:
    """What the template shows of one sampled row: names, caption and thumbnails (or the error)."""
    return {
        "name": _relative(row["input_url"], root),
        "input_url": row["input_url"],
        "meta": f"{row['width']}\u00d7{row['height']} \u00b7 {row['input_mode']} \u00b7 {row['status']}",
        "error": _short(pair["error"]) if "error" in pair else None,
        **{key: pair.get(key) for key in ("before", "after", "width", "height")},
    }


def _model_entries(model: Mapping[str, Any]) -> list[tuple[str, Any]]:
    entries = [
        ("url", model.get("url")),
        ("sha256", model.get("sha256")),
        ("working size", model.get("working_size")),
        ("model size", model.get("model_size")),
        ("architecture", json.dumps(model.get("spec", {}), sort_keys=True)),
    ]
    return entries + [
        (f"provenance: {key}", value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))
        for key, value in (model.get("provenance") or {}).items()
    ]


def render_page(
    summary: Mapping[str, Any], rows: ReviewRows, pairs: list[tuple[dict[str, Any], dict[str, Any]]], input_root: str
) -> str:
    """The review page as one HTML document (inline CSS and script, every value escaped).

    Rendered from the Jinja2 template :data:`TEMPLATE_NAME` with autoescape: names, errors and
    provenance from the manifest, the config or the model are HTML-escaped wherever they appear.

    Args:
        summary: the run's ``_summary.json`` content.
        rows: the run's manifest rows as gathered by :class:`ReviewRows`.
        pairs: ``(row, make_pair(...))`` of the sampled rows.
        input_root: INPUT with a trailing ``/``; input names are shown relative to it.
    """
    return (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            summary=summary,
            input=summary["config"].get("input"),
            output=summary["config"].get("output", ""),
            total=int(summary["inputs"]),
            cards=[
                ("inputs", f"{summary['inputs']:,}"),
                ("wall time", f"{summary['wall_seconds']:.1f} s"),
                ("images / s", f"{summary['images_per_second']:.2f}"),
                ("runs in the manifest", len(summary.get("runs", []))),
            ],
            finished=sum(summary["counts"].get(s, 0) for s in manifest.DONE_STATUSES),
            pairs=[_pair_view(row, pair, input_root) for row, pair in pairs],
            thumbs_dir=THUMBS_DIR,
            failed_total=rows.failed_total,
            reasons=rows.reasons.most_common(),
            failures=[
                {"name": _relative(r["input_url"], input_root), "reason": r["reason"], "error": _short(r["error"])}
                for r in rows.failed_rows()
            ],
            model=_model_entries(summary["model"]),
            tool=summary.get("tool", "archive-colorizer " + __version__),
            written=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
    )
