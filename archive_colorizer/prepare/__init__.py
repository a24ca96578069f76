"""prepare: photo collections -> Parquet training shards, one Ray task per shard.

``run(config)`` is the job (``archive-colorizer prepare INPUT OUTPUT``, ``jobs/prepare.py``).
Stages, one module each, in the order the data flows:

- :mod:`.listing`: the driver lists inputs (folders, zip, tar, Parquet) lazily, no bytes;
- :mod:`.reader`: a shard task reads its inputs' bytes (threads, range reads, one archive open);
- :mod:`.process`: decode, drop corrupt/too large/small/grayscale, resize, JPEG; the split hash;
- :mod:`.writer`: the shard schema, Parquet and JSON files;
- :mod:`.stats`: outcome counts per shard and for the run;
- :mod:`.shard`: one shard task, reader -> process -> writer;
- :mod:`.job`: path checks, listing -> Ray tasks with a bounded window -> ``_stats.json``.

Reading the shards for training::

    from ray.data.expressions import col

    fs, path = storage.open_url(OUTPUT, storage_options)
    train = ray.data.read_parquet(path, filesystem=fs).filter(expr=col("split") == "train")

``read_parquet`` only picks ``*.parquet`` files and skips ``_``-prefixed ones, so the
bookkeeping files in OUTPUT (``_stats.json``, ``_stats/``, ``_config.yaml``) are ignored.
"""

from archive_colorizer.lazy import reexports

__all__ = ["PrepareResult", "run"]
__getattr__ = reexports(__name__, {"PrepareResult": "stats", "run": "job"})
