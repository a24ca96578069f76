"""Render a colorize review page (``OUTPUT/_review/index.html``) to PNG with headless Chromium.

    python scripts/screenshot_review.py OUTPUT/_review/index.html review.png [--width 1280] [--max-height 4000]

Drives Debian's ``chromium`` through ``chromedriver`` (packages ``chromium`` and
``chromium-driver``) with Selenium, kept off the network: no first-run, sync, component
update or background requests, a throw-away profile. It prints what the page loaded (images,
console errors) as JSON and exits 1 when an image did not load or the console logged an error.
The tests use :func:`render_page` to check the page the same way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
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
)


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) binary on PATH, or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


@dataclass
class Rendered:
    """What a headless browser made of a page.

    Attributes:
        png: the screenshot (PNG bytes) of the whole page, up to ``max_height`` pixels tall.
        images: per ``<img>``: ``{"src", "complete", "natural_width", "box"}`` (``natural_width``
            0: not loaded; ``box``: left, top, width, height on the page in CSS pixels).
        console_errors: browser log entries of level SEVERE (script errors, failed loads).
        text: the page's visible text.
        title: the document title.
    """

    png: bytes = field(repr=False)
    images: list[dict]
    console_errors: list[str]
    text: str = field(repr=False)
    title: str


_IMAGES_JS = """return Array.from(document.images).map(function (i) {
  var box = i.getBoundingClientRect();
  return {src: i.getAttribute('src'), complete: i.complete, natural_width: i.naturalWidth,
          box: [box.left + window.scrollX, box.top + window.scrollY, box.width, box.height]};
})"""


def render_page(
    html: Path,
    *,
    width: int = 1280,
    max_height: int = 4000,
    chromium: str | None = None,
    chromedriver: str | None = None,
) -> Rendered:
    """Open ``html`` (a file) in headless Chromium and take a screenshot of the whole page.

    Raises:
        FileNotFoundError: no Chromium or no chromedriver on PATH (install ``chromium`` and
            ``chromium-driver``), or ``html`` does not exist.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    html = Path(html).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"no page at {html}")
    chromium = chromium or find_chromium()
    chromedriver = chromedriver or shutil.which("chromedriver")
    if not chromium or not chromedriver:
        raise FileNotFoundError(
            "headless rendering needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
        )
    with tempfile.TemporaryDirectory(prefix="review-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium  # given binaries: Selenium Manager never downloads anything
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
        try:
            driver.get(html.as_uri())  # returns once the load event fired: every <img> settled
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            driver.set_window_size(width, min(max(height, 300), max_height))
            images = driver.execute_script(_IMAGES_JS)  # after the resize: boxes as in the screenshot
            errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            return Rendered(
                driver.get_screenshot_as_png(),
                images,
                errors,
                driver.find_element("tag name", "body").text,
                driver.title,
            )
        finally:
            driver.quit()


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
