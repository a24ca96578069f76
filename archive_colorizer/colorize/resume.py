"""Resume at scale: finished inputs dropped at listing time, against an index sharded by listing range.

A finished input is one whose final manifest row (the one recorded last) says ``colorized`` or
``skipped_existing`` for the same output URL. A re-run must cost nothing for it: no request
(no ``HEAD`` of its output, no ``GET`` of its bytes) and no new manifest row. So the listing
tasks drop finished inputs as they list them (:func:`archive_colorizer.colorize.listing_tasks.drop_finished`)
and count how many they passed over (the summary adds them to the inputs), looking each up in
the **resume index**:

- **compact**: per finished input a 64-bit key (BLAKE2b of input and output URL,
  :func:`pair_key`) and a 16-bit model number: 10 bytes in memory, about 8 in its files;
- **sharded by listing range**: shard ``i`` holds the inputs whose URL lies in
  ``(bounds[i], bounds[i + 1]]``. On S3 the bounds are the split keys of the listing's key
  ranges (a resumed listing reuses them, so each listing task fetches the one shard of its
  range, ``ray.get`` once per worker process, and no task or actor holds the whole index);
  folder listings and input lists have one shard;
- **kept and compacted across runs**: ``OUTPUT/_resume/index.json`` (the bounds, each shard's
  file, the runs whose manifest parts it covers) and ``OUTPUT/_resume/shard-<i>-<run>.parquet``.
  A run reads the shards and only the manifest parts of runs the index does not cover yet
  (normally the previous run's), merges them per shard in Ray tasks (each key's last row wins,
  unfinished ones dropped), writes the shards that changed and, once its listing has ended,
  the new ``index.json``; shard files no longer named are deleted. A run killed before that
  leaves the old index in force: the next run reads the same parts again.

``--overwrite`` builds no index. The driver holds the bounds and one object reference per
shard, nothing per input. A 64-bit key collision (about 3e-6 for 10M finished inputs) would
pass over one unfinished input.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archive_colorizer import storage
from archive_colorizer.colorize import manifest
from archive_colorizer.errors import StorageError

FILES_PER_TASK = 16
INDEX_DIR = "_resume"
INDEX_NAME = "index.json"
_OLDEST = np.iinfo(np.int64).min
_COLUMNS = ("input_url", "output_url", "status", "model_sha256", "recorded_at")


def pair_key(input_url: str, output_url: str) -> int:
    """64-bit key of an (input URL, output URL) pair (BLAKE2b, little-endian)."""
    return int.from_bytes(hashlib.blake2b(f"{input_url}\0{output_url}".encode(), digest_size=8).digest(), "little")


@dataclass
class ResumeIndex:
    """Which (input, output) pairs earlier runs finished, and with which generator.

    Sorted 64-bit keys (:func:`pair_key`), an index into the distinct model sha256s per key, and
    those sha256s: 10 bytes per finished input (:attr:`nbytes`).
    """

    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    model_index: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint16))
    models: list[str] = field(default_factory=list)

    @classmethod
    def from_manifest(cls, table: pa.Table) -> ResumeIndex:
        """Build from manifest rows in memory (tests, small tools): the cluster path is :meth:`IndexPlan.build`."""
        return _combine(_key_table(table))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        """Bytes of the key and model arrays."""
        return int(self.keys.nbytes + self.model_index.nbytes)

    def to_table(self) -> pa.Table:
        """The shard file's content: ``key`` (uint64, sorted) and ``model`` (dictionary-encoded sha256)."""
        models = pa.DictionaryArray.from_arrays(
            pa.array(self.model_index, pa.uint16()), pa.array(self.models, pa.string())
        )
        return pa.table({"key": pa.array(self.keys, pa.uint64()), "model": models})

    @classmethod
    def from_file_table(cls, table: pa.Table) -> ResumeIndex:
        """Read back :meth:`to_table`'s content."""
        models = table.column("model").combine_chunks()
        if not pa.types.is_dictionary(models.type):
            models = pc.dictionary_encode(models)
        keys = table.column("key").to_numpy()
        return cls(keys, models.indices.to_numpy(zero_copy_only=False).astype(np.uint16), models.dictionary.to_pylist())

    def lookup(self, input_url: str, output_url: str) -> str | None:
        """The model sha256 recorded for a finished pair ("" if unknown), or None if not finished."""
        if not len(self.keys):
            return None
        key = np.uint64(pair_key(input_url, output_url))
        position = int(np.searchsorted(self.keys, key))
        if position < len(self.keys) and self.keys[position] == key:
            return self.models[self.model_index[position]]
        return None


def _key_table(table: pa.Table) -> pa.Table:
    """Manifest rows -> (key uint64, recorded_at int64 us, done bool, model string)."""
    inputs, outputs = table.column("input_url").to_pylist(), table.column("output_url").to_pylist()
    keys = np.fromiter(
        (pair_key(i, o or "") for i, o in zip(inputs, outputs, strict=True)), np.uint64, count=len(inputs)
    )
    done = pc.and_(pc.is_in(table.column("status"), pa.array(manifest.DONE_STATUSES)), pc.is_valid(table["output_url"]))
    return pa.table(
        {
            "key": keys,
            "recorded_at": pc.cast(table.column("recorded_at"), pa.int64()),
            "done": pc.fill_null(done, False),
            "model": pc.fill_null(table.column("model_sha256"), ""),
        }
    )


def _combine(*tables: pa.Table) -> ResumeIndex:
    """Key tables of any number of files -> the index (each key's last row; finished ones only)."""
    table = pa.concat_tables(tables) if tables else pa.table({"key": pa.array([], pa.uint64())})
    if table.num_rows == 0:
        return ResumeIndex()
    keys = table.column("key").to_numpy()
    order = np.lexsort((pc.fill_null(table.column("recorded_at"), 0).to_numpy(), keys))
    keys = keys[order]
    last = np.append(keys[1:] != keys[:-1], True)
    chosen = order[last]
    done = table.column("done").to_numpy(zero_copy_only=False)[chosen]
    encoded = pc.dictionary_encode(table.column("model").take(pa.array(chosen[done]))).combine_chunks()
    return ResumeIndex(keys[last][done], encoded.indices.to_numpy().astype(np.uint16), encoded.dictionary.to_pylist())


def _shard_of(urls: pa.ChunkedArray | pa.Array, bounds: Sequence[str]) -> np.ndarray:
    """Shard number of each input URL: ``i`` with ``bounds[i] < url <= bounds[i + 1]`` (bounds[0] is "")."""
    if len(bounds) == 1:
        return np.zeros(len(urls), np.int64)
    values = np.asarray(urls.to_pylist() if hasattr(urls, "to_pylist") else urls, dtype=object).astype(str)
    return np.maximum(np.searchsorted(np.asarray(bounds[1:], dtype=str), values, side="left"), 0)


def _read_keys(paths: Sequence[str], storage_options: Mapping[str, Any] | None, bounds: Sequence[str]) -> Any:
    """Ray task body: the key tables of some manifest files, one per shard (a tuple; one table for one shard)."""
    fs, _ = storage.open_url(paths[0], storage_options)
    tables, shards = [], []
    for path in paths:
        try:
            with fs.open(path, "rb") as handle:
                table = pq.read_table(handle, columns=list(_COLUMNS), schema=manifest.MANIFEST_SCHEMA)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read the manifest file {storage.to_url(fs, path)!r}: {exc}") from exc
        tables.append(_key_table(table))
        shards.append(_shard_of(table.column("input_url"), bounds))
    keys, shard = pa.concat_tables(tables), np.concatenate(shards)
    pieces = tuple(keys.filter(pa.array(shard == i)) for i in range(len(bounds)))
    return pieces[0] if len(pieces) == 1 else pieces


def _combine_shard(
    old_url: str | None, new_url: str, storage_options: Mapping[str, Any] | None, *pieces: pa.Table
) -> tuple[ResumeIndex, str | None]:
    """Ray task body: one shard, old file plus new manifest rows -> ``(index, file written or the old one)``.

    The old file's inputs count as recorded before every new row (a later row of the same input wins).
    """
    tables = [piece for piece in pieces if piece.num_rows]
    if old_url is not None:
        fs, path = storage.open_url(old_url, storage_options)
        try:
            old = ResumeIndex.from_file_table(pq.read_table(pa.BufferReader(storage.read_bytes(fs, path))))
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read the resume index shard {old_url!r}: {exc}") from exc
        if not tables:
            return old, old_url
        tables.insert(0, _old_rows(old))
    index = _combine(*tables)
    if not tables:
        return index, None
    fs, path = storage.open_url(new_url, storage_options)
    buffer = pa.BufferOutputStream()
    pq.write_table(index.to_table(), buffer, compression="zstd")
    storage.write_bytes(fs, path, buffer.getvalue().to_pybytes())
    return index, new_url


def _old_rows(old: ResumeIndex) -> pa.Table:
    models = pa.array(old.models, pa.string()).take(pa.array(old.model_index.astype(np.int64)))
    n = len(old)
    return pa.table(
        {
            "key": pa.array(old.keys, pa.uint64()),
            "recorded_at": pa.array(np.full(n, _OLDEST), pa.int64()),
            "done": pa.array(np.ones(n, bool)),
            "model": models,
        }
    )


def index_url(output_url: str, *parts: str) -> str:
    """``OUTPUT/_resume/...``."""
    return storage.join(output_url, INDEX_DIR, *parts)


@dataclass(frozen=True)
class IndexPlan:
    """What the driver knows of OUTPUT's resume state before the listing: the kept index (its bounds,
    shard files, covered runs) and the manifest parts it does not cover yet.

    Attributes:
        output_url: OUTPUT.
        run_id: this run's id (names the shard files it writes).
        bounds: the kept index's bounds (URLs; ``[""]`` plus one per split), or None without one.
        shard_files: the kept index's file per shard (None: empty shard).
        covered_runs: run ids whose manifest parts the kept index holds.
        new_parts: URLs of manifest parts of runs not covered.
    """

    output_url: str
    run_id: str
    storage_options: dict[str, Any]
    bounds: list[str] | None
    shard_files: list[str | None]
    covered_runs: list[str]
    new_parts: list[str]

    def split_points(self) -> list[str] | None:
        """The kept index's split URLs (a resumed S3 listing cuts its ranges there), or None."""
        return None if self.bounds is None or len(self.bounds) < 2 else self.bounds[1:]

    def build(self, bounds: list[str]) -> ShardedIndex:
        """Start merging the kept shards with the new parts on the cluster (Ray tasks; returns at once).

        Args:
            bounds: the shard bounds for a first index (the listing's ranges); a kept index keeps its own.
        """
        import ray

        bounds = self.bounds or bounds
        shards = len(bounds)
        read = ray.remote(num_cpus=0.25, max_retries=3, num_returns=shards)(_read_keys)
        groups = [self.new_parts[i : i + FILES_PER_TASK] for i in range(0, len(self.new_parts), FILES_PER_TASK)]
        pieces: list[Any] = [read.remote(group, self.storage_options, bounds) for group in groups]
        if shards == 1:
            pieces = [[piece] for piece in pieces]
        combine = ray.remote(num_cpus=0.25, max_retries=3, num_returns=2)(_combine_shard)
        old_files = self.shard_files if self.bounds is not None else [None] * shards
        refs, files = [], []
        for i in range(shards):
            new_url = index_url(self.output_url, f"shard-{i:05d}-{self.run_id}.parquet")
            index_ref, file_ref = combine.remote(
                old_files[i], new_url, self.storage_options, *(piece[i] for piece in pieces)
            )
            refs.append(index_ref)
            files.append(file_ref)
        new_runs = {manifest.run_id_of_part(part) for part in self.new_parts}
        runs = sorted(set(self.covered_runs) | {run for run in new_runs if run is not None})
        return ShardedIndex(list(bounds), refs, files, self.output_url, self.storage_options, runs)


def plan_index(output_url: str, run_id: str, storage_options: Mapping[str, Any] | None) -> IndexPlan | None:
    """Read ``OUTPUT/_resume/index.json`` and the manifest's part names (the driver's only reads).

    Returns:
        None when no earlier run finished anything (no index, no manifest part).

    Raises:
        StorageError: the index file exists but cannot be read.
    """
    options = dict(storage_options or {})
    fs, path = storage.open_url(index_url(output_url, INDEX_NAME), options)
    kept: dict[str, Any] = {}
    try:
        kept = json.loads(storage.read_bytes(fs, path))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read the resume index {storage.to_url(fs, path)!r}: {exc}") from exc
    covered = set(kept.get("covered_runs", []))
    mfs, folder = storage.open_url(manifest.manifest_url(output_url), options)
    parts = [
        storage.to_url(mfs, p)
        for p in manifest.manifest_files(mfs, folder)
        if manifest.run_id_of_part(p) not in covered
    ]
    if not kept and not parts:
        return None
    files = [None if name is None else index_url(output_url, name) for name in kept.get("shards", [])]
    return IndexPlan(output_url, run_id, options, kept.get("bounds"), files, sorted(covered), parts)


@dataclass(frozen=True)
class ShardedIndex:
    """The run's resume index: one :class:`ResumeIndex` per listing range in Ray's object store.

    Attributes:
        bounds: shard ``i`` holds inputs with ``bounds[i] < input URL <= bounds[i + 1]``.
        refs: ``ObjectRef`` of each shard's :class:`ResumeIndex`.
        files: ``ObjectRef`` of each shard's file URL (None: empty), for :meth:`commit`.
        covered_runs: runs whose manifest parts the shards hold.
    """

    bounds: list[str]
    refs: list[Any]
    files: list[Any] = field(repr=False)
    output_url: str = ""
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    covered_runs: list[str] = field(default_factory=list)

    def shard(self, input_url: str) -> ResumeIndex:
        """The shard holding ``input_url`` (fetched once per worker process)."""
        i = max(0, bisect.bisect_left(self.bounds, input_url) - 1)
        return get_index(self.refs[i])

    def lookup(self, input_url: str, output_url: str) -> str | None:
        """The model sha256 an earlier run finished the pair with ("" if unknown), or None."""
        return self.shard(input_url).lookup(input_url, output_url)

    def commit(self) -> None:
        """Write ``index.json`` for the shards (once they are written) and delete shard files it no longer names.

        Raises:
            StorageError: OUTPUT is not writable.
        """
        import ray

        files = ray.get(self.files)
        names = [None if url is None else posixpath.basename(url) for url in files]
        record = {"bounds": self.bounds, "shards": names, "covered_runs": self.covered_runs}
        fs, path = storage.open_url(index_url(self.output_url, INDEX_NAME), self.storage_options)
        storage.write_bytes(fs, path, (json.dumps(record) + "\n").encode())
        folder = posixpath.dirname(path)
        for stale in fs.ls(folder, detail=False):
            if stale.endswith(".parquet") and posixpath.basename(stale) not in names:
                fs.rm(stale)


def url_bounds(split_keys: Sequence[str], roots: Any) -> list[str]:
    """Shard bounds for a first index: ``""`` and the URL of each split key of the listing's ranges (S3 INPUT)."""
    if not split_keys:
        return [""]
    from archive_colorizer.colorize.key_ranges import s3_location

    bucket, _ = s3_location(roots)
    return ["", *(storage.to_url(roots.input_fs, f"{bucket}/{key}") for key in split_keys)]


_CACHED: dict[str, ResumeIndex] = {}
_CACHED_SHARDS = 4
"""Shards a worker process keeps (a listing task uses one; more only where ranges and shards differ)."""


def get_index(ref: Any | None) -> ResumeIndex:
    """The shard behind ``ref`` in this worker process (fetched once; an empty one for None)."""
    if ref is None:
        return ResumeIndex()
    import ray

    key = ref.hex()
    if key not in _CACHED:
        if len(_CACHED) >= _CACHED_SHARDS:
            _CACHED.pop(next(iter(_CACHED)))
        _CACHED[key] = ray.get(ref)
    return _CACHED[key]
