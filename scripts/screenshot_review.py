"""Render a colorize review page (``OUTPUT/_review/index.html``) to PNG with headless Chromium.

    python scripts/screenshot_review.py OUTPUT/_review/index.html review.png [--width 1280] [--max-height 4000]

Needs only Debian's ``chromium`` package (or Chrome; ``$CHROMIUM`` names another binary): no
chromedriver, no Selenium. Chromium's own ``--headless`` modes do the work: ``--dump-dom``
on a copy of the page with a probe script (which records script errors, failed loads and
``console.error`` calls, and on the load event writes every image's state and position, the
visible text and the page height into the DOM as JSON), then ``--screenshot`` of the page at
that height. Chromium is kept off the network: no first-run, sync, component update or
background requests, a throw-away profile. The script prints what the page loaded (images,
console errors) as JSON and exits 1 when an image did not load or the page logged an error.
The tests use :func:`render_page` to check the page the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",  # let images load and scripts run before the dump or screenshot
)
TIMEOUT_SECONDS = 120
"""Most seconds one Chromium run may take."""


def find_chromium() -> str | None:
    """Path of the Chromium (or Chrome) binary: ``$CHROMIUM`` if set, else the first on PATH, or None."""
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named)
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


@dataclass
class Rendered:
    """What a headless browser made of a page.

    Attributes:
        png: the screenshot (PNG bytes) of the whole page, up to ``max_height`` pixels tall.
        images: per ``<img>``: ``{"src", "complete", "natural_width", "box"}`` (``natural_width``
            0: not loaded; ``box``: left, top, width, height on the page in CSS pixels).
        console_errors: script errors, resources that failed to load and ``console.error`` calls.
        text: the page's visible text.
        title: the document title.
    """

    png: bytes = field(repr=False)
    images: list[dict]
    console_errors: list[str]
    text: str = field(repr=False)
    title: str


PROBE_ID = "review-probe-result"
_PROBE_JS = """<script>(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var target = e.target || {};
    errors.push(e.message || ('failed to load ' + (target.src || target.href || target.tagName)));
  }, true);
  var consoleError = console.error;
  console.error = function () { errors.push(Array.from(arguments).join(' ')); consoleError.apply(console, arguments); };
  window.addEventListener('load', function () {
    var images = Array.from(document.images).map(function (i) {
      var box = i.getBoundingClientRect();
      return {src: i.getAttribute('src'), complete: i.complete, natural_width: i.naturalWidth,
              box: [box.left + window.scrollX, box.top + window.scrollY, box.width, box.height]};
    });
    var result = {images: images, errors: errors, text: document.body.innerText, title: document.title,
                  height: document.documentElement.scrollHeight};
    var out = document.createElement('script');
    out.type = 'application/json';
    out.id = 'PROBE_ID';
    out.textContent = JSON.stringify(result).replace(/</g, '\\u003c');
    document.documentElement.appendChild(out);
  });
})();</script>""".replace("PROBE_ID", PROBE_ID)


def _chromium(chromium: str, profile: str, width: int, height: int, *args: str) -> subprocess.CompletedProcess:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", *args]
    done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{chromium} exited with {done.returncode}: {tail}")
    return done


def _probe(html: Path, chromium: str, profile: str, width: int) -> dict:
    """The probe's JSON for ``html``: a copy beside it (so relative URLs resolve) with the probe first in it."""
    source = html.read_text(encoding="utf-8")
    copy = html.with_name(f".probe-{uuid.uuid4().hex}.html")
    head = re.search(r"<head[^>]*>", source, re.IGNORECASE)
    at = head.end() if head else 0
    copy.write_text(source[:at] + _PROBE_JS + source[at:], encoding="utf-8")
    try:
        dom = _chromium(chromium, profile, width, 900, "--dump-dom", copy.as_uri()).stdout.decode("utf-8")
    finally:
        copy.unlink()
    found = re.search(rf'<script type="application/json" id="{PROBE_ID}">(.*?)</script>', dom, re.DOTALL)
    if found is None:
        raise RuntimeError(f"the page {html} did not finish loading in headless Chromium (no probe result)")
    return json.loads(found.group(1))


def render_page(
    html: Path,
    *,
    width: int = 1280,
    max_height: int = 4000,
    chromium: str | None = None,
) -> Rendered:
    """Open ``html`` (a file) in headless Chromium and take a screenshot of the whole page.

    Raises:
        FileNotFoundError: no Chromium (install ``chromium``, or set ``$CHROMIUM``), or ``html``
            does not exist.
        RuntimeError: Chromium failed or the page never fired its load event.
    """
    html = Path(html).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"no page at {html}")
    chromium = chromium or find_chromium()
    if not chromium:
        raise FileNotFoundError("headless rendering needs chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="review-chromium-") as profile:
        probe = _probe(html, chromium, profile, width)
        height = min(max(int(probe["height"]), 300), max_height)
        with tempfile.TemporaryDirectory(prefix="review-shot-") as folder:
            png = Path(folder) / "page.png"
            _chromium(chromium, profile, width, height, f"--screenshot={png}", html.as_uri())
            return Rendered(png.read_bytes(), probe["images"], probe["errors"], probe["text"], probe["title"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the review page, OUTPUT/_review/index.html")
    parser.add_argument("png", type=Path, help="PNG file to write")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in CSS pixels (default 1280)")
    parser.add_argument(
        "--max-height", type=int, default=4000, help="crop the screenshot at this height (default 4000)"
    )
    args = parser.parse_args(argv)
    rendered = render_page(args.page, width=args.width, max_height=args.max_height)
    args.png.write_bytes(rendered.png)
    report = {k: v for k, v in asdict(rendered).items() if k in ("title", "images", "console_errors")}
    print(json.dumps({"png": str(args.png), "bytes": len(rendered.png), **report}, indent=2))
    broken = [i for i in rendered.images if not i["natural_width"]]
    return 1 if broken or rendered.console_errors else 0


if __name__ == "__main__":
    sys.exit(main())
