"""The verify job's ``run``: check every named file's C2PA manifest and print one line per file."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from archive_colorizer import signing, storage
from archive_colorizer.errors import ConfigError, StorageError

REVIEW_DIR = "_review"
"""A colorize OUTPUT's review page folder (:data:`archive_colorizer.colorize.review.REVIEW_DIR`)."""

if TYPE_CHECKING:
    from archive_colorizer.verify.config import VerifyConfig

STATES = ("trusted", "valid", "invalid", "unsigned")


@dataclass
class VerifyResult:
    """What ``verify`` found.

    Attributes:
        exit_code: 1 if any file is invalid or unreadable, else 0.
        files: URL -> :class:`~archive_colorizer.signing.Verification` of every file checked.
        counts: files per state (:data:`STATES`).
    """

    exit_code: int
    files: dict[str, signing.Verification] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def expand(paths: list[str], extensions: tuple[str, ...], storage_options: dict[str, Any]) -> Iterator[str]:
    """The files to check: each path that is a file, and every file below each folder with one of ``extensions``.

    A colorize OUTPUT's review thumbnails (``_review/``, never signed) are passed over.

    Raises:
        ConfigError: a path is neither a file nor a folder.
    """
    for url in paths:
        fs, path = storage.open_url(url, storage_options)
        if fs.isdir(path):
            relative = sorted(p[len(path.rstrip("/")) + 1 :] for p in fs.find(path) if p.lower().endswith(extensions))
            yield from (storage.join(url, r) for r in relative if not r.startswith(REVIEW_DIR + "/"))
        elif fs.isfile(path):
            yield url
        else:
            raise ConfigError(f"verify: {url!r} is neither a file nor a folder")


def run(config: VerifyConfig) -> VerifyResult:
    """Verify every file of ``config.paths`` and print one line (or JSON object) per file and the counts.

    Raises:
        ConfigError: a path does not exist, or the trust anchors cannot be read.
    """
    anchors = None
    if config.trust_anchors:
        try:
            fs, path = storage.open_url(config.trust_anchors, config.storage_options)
            anchors = storage.read_bytes(fs, path)
        except (OSError, StorageError) as exc:
            raise ConfigError(f"--trust-anchors: cannot read {config.trust_anchors!r}: {exc}") from exc
    result = VerifyResult(0, counts=dict.fromkeys(STATES, 0))
    counts: Counter[str] = Counter()
    for url in expand(config.paths, tuple(config.extensions), config.storage_options):
        try:
            fs, path = storage.open_url(url, config.storage_options)
            verification = signing.verify_bytes(storage.read_bytes(fs, path), trust_anchors=anchors)
        except (OSError, StorageError) as exc:
            verification = signing.Verification("invalid", error=f"cannot read: {exc}")
        result.files[url] = verification
        counts[verification.state] += 1
        print(_line(url, verification, config.json_output), flush=True)
    result.counts.update(counts)
    result.exit_code = 1 if counts["invalid"] else 0
    summary = ", ".join(f"{state} {result.counts[state]}" for state in STATES)
    print(f"verify: {len(result.files)} files: {summary}", file=sys.stderr if config.json_output else sys.stdout)
    return result


def _line(url: str, verification: signing.Verification, as_json: bool) -> str:
    if as_json:
        return json.dumps({"url": url, **asdict(verification)})
    details = ", ".join(verification.failures) or verification.error or verification.signer or ""
    return f"{verification.state:<9} {url}" + (f"  [{details}]" if details else "")
