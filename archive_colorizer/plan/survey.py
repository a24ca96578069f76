"""Survey an archive before colorizing it: count its inputs and bytes, draw a sample, read headers.

The listing streams, as colorize's does: a folder or prefix is walked one folder at a time
with the sizes its listing already carries (:func:`archive_colorizer.folders.iter_files_with_sizes`),
an input list is read in batches (:func:`archive_colorizer.colorize.input_rows.iter_from_list`).
While it streams, a uniform random sample of ``k`` inputs is kept (reservoir sampling,
Vitter's Algorithm R), so memory holds the sample, not the listing. The sample's headers are
then read: Pillow's ``Image.open`` parses the header only, so a 100 MP scan costs a few kB.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from archive_colorizer import folders, storage
from archive_colorizer.colorize import input_rows
from archive_colorizer.errors import ConfigError, StorageError

T = TypeVar("T")
HEADER_BLOCK = 64 * 1024
"""Read size of a header read (s3fs would otherwise fetch a 50 MB block for the first byte)."""


def reservoir_sample(items: Iterable[T], k: int, rng: random.Random) -> tuple[list[T], int]:
    """A uniform random sample of ``k`` items from a stream of unknown length, and the stream's length.

    Vitter's Algorithm R (1985): item ``i`` (0-based) replaces a random slot with probability
    ``k / (i + 1)``. Memory: ``k`` items. Fewer than ``k`` items: all of them, in order.
    """
    sample: list[T] = []
    count = 0
    for count, item in enumerate(items, start=1):
        if count <= k:
            sample.append(item)
        else:
            slot = rng.randrange(count)
            if slot < k:
                sample[slot] = item
    return sample, count


@dataclass
class ArchiveListing:
    """What listing INPUT found.

    Attributes:
        inputs: inputs the colorize job would list (every entry of an input list).
        total_bytes: their size in bytes; for an input list estimated from the sample.
        bytes_estimated: whether ``total_bytes`` is an estimate (input lists carry no sizes).
        seconds: wall time of the listing here.
        sample: (input URL, size in bytes or None) of a uniform random sample.
    """

    inputs: int
    total_bytes: int | None
    bytes_estimated: bool
    seconds: float
    sample: list[tuple[str, int | None]] = field(repr=False)


def _listed(config: Any, counter: list[int]) -> Iterator[tuple[str, int | None]]:
    """(URL, size) of every input; adds each known size to ``counter[0]``."""
    options = config.storage_options
    if config.input_list:
        fs, path = storage.open_url(config.input, options)
        roots = input_rows.Roots(
            config.input, "", fs, path.rstrip("/"), fs, "", dict(options)
        )  # no OUTPUT: only the URLs are used
        for row in input_rows.iter_from_list(roots, config.input_list, config.format, tuple(config.extensions)):
            yield row["input_url"], None
        return
    fs, path = storage.open_url(config.input, options)
    try:
        for file_path, size in folders.iter_files_with_sizes(fs, path.rstrip("/"), tuple(config.extensions)):
            counter[0] += size or 0
            yield storage.to_url(fs, file_path), size
    except OSError as exc:
        raise StorageError(f"cannot list input {config.input!r}: {exc}") from exc


def list_archive(config: Any) -> ArchiveListing:
    """List ``config.input`` (or ``config.input_list``) streaming; keep a sample of ``config.sample`` inputs.

    Args:
        config: a :class:`~archive_colorizer.config.PlanConfig` (input, input_list, extensions,
            format, sample, seed, storage_options).

    Raises:
        ConfigError: INPUT or the input list does not exist, or holds no inputs.
        StorageError: the listing failed.
    """
    start, counter = time.perf_counter(), [0]
    sample, count = reservoir_sample(_listed(config, counter), config.sample, random.Random(config.seed))
    seconds = time.perf_counter() - start
    if count == 0:
        fs, path = storage.open_url(config.input, config.storage_options)
        if not config.input_list and not fs.exists(path):
            raise ConfigError(f"input {config.input!r} does not exist")
        where = f"input list {config.input_list!r}" if config.input_list else f"{config.input!r}"
        raise ConfigError(f"no inputs found in {where} (extensions {', '.join(config.extensions)}): nothing to plan")
    if config.input_list:
        return ArchiveListing(count, None, True, seconds, sample)
    return ArchiveListing(count, counter[0], False, seconds, sample)


def scaled(listed: ArchiveListing, inputs: int | None) -> ArchiveListing:
    """``listed`` as the listing of ``inputs`` inputs like those listed (bytes in proportion).

    The listing of an archive ``inputs / listed.inputs`` times larger, for planning a bucket
    from a sample of it; ``inputs`` None returns ``listed`` itself. The listing time stays the
    sample's: the projection models a large listing from its requests (1000 keys each).
    """
    if inputs is None:
        return listed
    factor = inputs / listed.inputs
    total = None if listed.total_bytes is None else round(listed.total_bytes * factor)
    return ArchiveListing(inputs, total, True, listed.seconds, listed.sample)


@dataclass
class Header:
    """One sampled input's header: size in pixels, mode, format, or the error reading it.

    Attributes:
        url: the input.
        bytes: file size in bytes (None if unknown).
        width, height: pixels (0 when unreadable).
        mode, format: Pillow's names (``L``, ``I;16``, ``RGB``; ``JPEG``, ``TIFF``), None when unreadable.
        seconds: wall time of opening the file and parsing its header (one request or more).
        error: why the header could not be read, else None.
    """

    url: str
    bytes: int | None
    width: int = 0
    height: int = 0
    mode: str | None = None
    format: str | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def read_header(url: str, size: int | None, storage_options: Mapping[str, Any] | None) -> Header:
    """Open ``url`` and parse its image header only (no pixels decoded); errors become ``Header.error``."""
    start = time.perf_counter()
    header = Header(url, size)
    try:
        fs, path = storage.open_url(url, storage_options)
        if header.bytes is None:
            header.bytes = int(fs.size(path))
        with fs.open(path, "rb", block_size=HEADER_BLOCK) as handle, Image.open(handle) as image:
            header.width, header.height = image.size
            header.mode, header.format = image.mode, image.format
    except Exception as exc:  # a bad input is a finding of the survey, not a reason to stop
        header.error = f"{type(exc).__name__}: {exc}"
    header.seconds = time.perf_counter() - start
    return header


@dataclass
class SampleSummary:
    """The sampled headers summed up (sizes in megapixels, bytes per input, modes, formats)."""

    sampled: int
    readable: int
    unreadable: int
    too_large: int
    megapixels_mean: float
    megapixels_median: float
    megapixels_p95: float
    megapixels_max: float
    bytes_mean: float
    header_seconds_mean: float
    modes: dict[str, int]
    formats: dict[str, int]
    errors: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(headers: list[Header], max_pixels: int) -> SampleSummary:
    """Statistics of the sampled headers; unreadable inputs count in ``unreadable`` and in no size statistic.

    Raises:
        ConfigError: no header of the sample could be read (nothing to plan with).
    """
    readable = [h for h in headers if h.error is None]
    if not readable:
        first = headers[0].error if headers else "no inputs"
        raise ConfigError(f"none of the {len(headers)} sampled inputs is a readable image (first: {first})")
    megapixels = np.array([h.megapixels for h in readable])
    sizes = [h.bytes for h in readable if h.bytes is not None]
    return SampleSummary(
        sampled=len(headers),
        readable=len(readable),
        unreadable=len(headers) - len(readable),
        too_large=sum(h.width * h.height > max_pixels for h in readable),
        megapixels_mean=float(megapixels.mean()),
        megapixels_median=float(np.median(megapixels)),
        megapixels_p95=float(np.percentile(megapixels, 95)),
        megapixels_max=float(megapixels.max()),
        bytes_mean=float(np.mean(sizes)) if sizes else 0.0,
        header_seconds_mean=float(np.mean([h.seconds for h in headers])),
        modes=dict(Counter(h.mode or "unknown" for h in readable).most_common()),
        formats=dict(Counter(h.format or "unknown" for h in readable).most_common()),
        errors=[f"{h.url}: {h.error}" for h in headers if h.error][:5],
    )
