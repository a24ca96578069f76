"""A blind test for curators: which of two pictures is the real colour photograph?

The "colorization Turing test" of Zhang, Isola and Efros (2016, "Colorful Image Colorization",
section 3.2): a person sees, for each held-out photograph, its real colours and the model's
colorization side by side in random order and picks the one they believe is real. The share
of picks that fell on the colorization is the *fooling rate*: 0 when every colorization is
spotted, 0.5 when they cannot be told from the real photographs.

- :func:`write_blind_test` writes ``OUT/blind_test/index.html`` (a static page, no server, no
  external asset), its images under ``img/`` (named by random tokens, so nothing in a name or
  the page tells which is real) and ``key.json`` (which side is real, for the scoring; the
  page does not load it). The page records each pick and offers the votes as a JSON download.
- :func:`summarize_votes` scores vote files against the key: the fooling rate with its 95%
  Wilson score interval (``scipy.stats.binomtest``), per voter and per image.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import numpy as np
from PIL import Image

from archive_colorizer import storage
from archive_colorizer.errors import ConfigError

FOLDER = "blind_test"
"""Folder of the page below the evaluation's OUT."""
PAGE_NAME = "index.html"
KEY_NAME = "key.json"
VOTES_FORMAT = "archive-colorizer blind test votes 1"
"""The ``format`` field of a votes file the page downloads."""
TEMPLATE_NAME = "blind_test.html.j2"
JPEG_QUALITY = 92


def write_blind_test(
    out_url: str,
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    seed: int,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Write the blind test page, its images and its key below ``out_url``.

    Args:
        out_url: the evaluation's OUT (any fsspec URL); the page goes to ``OUT/blind_test/``.
        pairs: ``(image name, real RGB, colorized RGB)``, each image (H, W, 3) uint8.
        seed: seed of the sides and the image names (the same seed gives the same page).
        storage_options: fsspec options for ``out_url``.

    Returns:
        The page's URL.

    Raises:
        StorageError: OUT cannot be written.
    """
    rng = random.Random(seed)
    folder = storage.join(out_url, FOLDER)
    fs, root = storage.open_url(folder, storage_options)
    test_id = hashlib.sha256(json.dumps([seed, [name for name, _, _ in pairs]]).encode()).hexdigest()[:12]
    shown, key = [], []
    for index, (name, real, colorized) in enumerate(pairs):
        real_side = rng.choice("AB")
        images = {real_side: real, ("B" if real_side == "A" else "A"): colorized}
        files = {}
        for side in "AB":
            files[side] = f"img/{rng.getrandbits(64):016x}.jpg"
            storage.write_bytes(fs, storage.join(root, files[side]), _jpeg(images[side]))
        pair_id = f"p{index:03d}"
        shown.append({"id": pair_id, "A": files["A"], "B": files["B"]})
        key.append({"id": pair_id, "image": name, "real": real_side})
    storage.write_bytes(
        fs,
        storage.join(root, KEY_NAME),
        (json.dumps({"test_id": test_id, "seed": seed, "pairs": key}, indent=1) + "\n").encode(),
    )
    page = _environment().get_template(TEMPLATE_NAME).render(test_id=test_id, pairs=shown, votes_format=VOTES_FORMAT)
    storage.write_bytes(fs, storage.join(root, PAGE_NAME), page.encode("utf-8"))
    return storage.join(folder, PAGE_NAME)


def _jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("archive_colorizer.evaluate", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def read_json(url: str, storage_options: Mapping[str, Any] | None, what: str) -> Any:
    """A JSON file; a missing or malformed one is a :class:`ConfigError` naming it and ``what`` it should be."""
    fs, path = storage.open_url(url, storage_options)
    try:
        return json.loads(storage.read_bytes(fs, path))
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {url!r} does not exist") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {url!r} is not JSON: {exc}") from exc


def summarize_votes(key: Mapping[str, Any], votes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The fooling rate of the colorizations, from vote files scored against the page's key.

    Args:
        key: the page's ``key.json``.
        votes: the vote files the page downloaded (``format`` :data:`VOTES_FORMAT`), one per
            person (or session).

    Returns:
        ``votes``, ``fooled`` (picks of the colorization), ``fooling_rate``, ``ci95`` (Wilson
        score interval), ``voters``, and ``per_image`` (name -> fooled, votes).

    Raises:
        ConfigError: a file of another format or test, or a vote for a pair the key lacks.
    """
    from scipy.stats import binomtest

    real = {pair["id"]: (pair["image"], pair["real"]) for pair in key["pairs"]}
    fooled, total, voters = 0, 0, []
    per_image: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for number, found in enumerate(votes, 1):
        if found.get("format") != VOTES_FORMAT or found.get("test_id") != key["test_id"]:
            raise ConfigError(
                f"votes file {number} is not a vote of this blind test (format {found.get('format')!r}, test "
                f"{found.get('test_id')!r}; the key is of test {key['test_id']!r})"
            )
        voters.append(found.get("voter") or f"voter {number}")
        for vote in found["votes"]:
            if vote["pair"] not in real or vote["picked"] not in ("A", "B"):
                raise ConfigError(f"votes file {number}: a vote for an unknown pair or side: {vote!r}")
            name, real_side = real[vote["pair"]]
            total += 1
            seen[name] += 1
            if vote["picked"] != real_side:
                fooled += 1
                per_image[name] += 1
    if total == 0:
        raise ConfigError("the votes files hold no vote")
    interval = binomtest(fooled, total).proportion_ci(confidence_level=0.95, method="wilson")
    return {
        "votes": total,
        "fooled": fooled,
        "fooling_rate": fooled / total,
        "ci95": [float(interval.low), float(interval.high)],
        "voters": voters,
        "per_image": {name: {"fooled": per_image[name], "votes": seen[name]} for name in sorted(seen)},
    }


def format_votes(summary: Mapping[str, Any]) -> str:
    """One line: the fooling rate with its interval, the votes and voters it rests on."""
    low, high = summary["ci95"]
    return (
        f"fooling rate {summary['fooling_rate']:.3f} (95% interval {low:.3f}-{high:.3f}): the colorization was picked "
        f"as the real photograph in {summary['fooled']} of {summary['votes']} votes by {len(summary['voters'])} "
        f"voter(s); 0.5 means the colorizations cannot be told from the real photographs"
    )
