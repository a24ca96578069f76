"""Every private Ray and s3fs API archive-colorizer uses, in one place, and why no public one serves.

The product uses public APIs everywhere else. What follows has no public equivalent in the
versions pyproject.toml allows (``ray[default,data,train]>=2.60,<2.61``, ``s3fs>=2026.9,<2026.10``);
``tests/test_compat.py`` fails when an installed Ray or s3fs changes any of it (the names exist,
take the arguments used here and still do what the product relies on), so an upgrade that
breaks one is caught by the tests, not by a job that silently loses a property.

Ray
  - :func:`fuse_with_previous` edits Ray Data's logical plan (``Dataset._logical_plan.dag``):
    the listing operator and its ``repartition(target_num_rows_per_block=...)`` (the cut into
    blocks of one task batch) must carry the same task options or Ray Data does not fuse them
    into one task per listing unit. Ray 2.60's ``repartition`` takes no task options
    (no ``num_cpus``, no ``ray_remote_args``, no ``compute``): alone it reserves a whole CPU per
    task, a core the colorize tasks wait for; and a listing limited to N tasks at once
    (``TaskPoolStrategy(size=N)``) fuses only with a repartition of the same strategy.
    The public routes do not serve, by how Ray Data 2.60 makes blocks: a
    ``Datasource``/``read_datasource`` read task's yielded tables pass through the same output
    buffer as a ``map_batches`` task's, merged up to ``DataContext.target_max_block_size``
    (bytes, shared by the job's image stages), so it gives no blocks of N rows without the same
    ``repartition`` after it, and so the same edit; cutting the rows into N-row tables inside
    the listing function does not help either, for the same merge.
  - :data:`STREAMING_GENERATOR_BUFFER_OPTION` (``_generator_backpressure_num_objects``), a Ray
    task option: how many blocks a listing task's streaming generator may have waiting before
    it pauses. Ray Data's public backpressure acts on operators, not on a task's generator;
    without it a listing task would list a 100M-key prefix into the object store as fast as S3
    answers. (``DataContext``'s counterpart is private as well.)
  - :func:`max_cluster_resources`: the autoscaler's maximum resources
    (``ray._private.state.state.get_max_resources_from_cluster_config``), to size Train workers
    for what a cluster can grow to. ``ray.cluster_resources()`` gives only the nodes of now;
    ``ray.autoscaler.sdk`` can request resources but not read the limits. Callers treat a
    failure as "no autoscaling" (empty mapping).
  - :func:`kv_put` / :func:`kv_get`: Ray's internal key-value store
    (``ray.experimental.internal_kv._internal_kv_put/_get``) carries the training heartbeat
    from Train workers to the driver's watchdog. A named actor would serve publicly, but it is a
    worker process of its own, lost with its node, and a remote call per beat; the store lives in
    the GCS, which outlives every worker node.
  - :func:`ray_address_file`: where ``ray start`` records the cluster address
    (``ray._common.utils.get_ray_address_file``); ``ray.init(address="auto")`` reads it but
    raises instead of saying whether a record exists, which ``runtime.choose_address`` must
    know to fall back to a local Ray. When the function is missing, the documented place
    (``$RAY_TMPDIR/ray/ray_current_cluster``, default ``/tmp/ray``) is used.
  - :data:`RAY_WORKER_LOGGER`: the name of the logger of ``ray.init`` (``ray._private.worker``),
    silenced while connecting (its "SIGTERM handler is not set" warning is wrong for us).
    ``ray.init(logging_level=...)`` sets the level of Ray's logger tree, not of this one
    warning, and only once connected.

s3fs
  - :func:`s3_iterdir`: ``S3FileSystem._iterdir``, one prefix level's ``ListObjectsV2`` pages
    as an async iterator, each page through s3fs's retried ``_call_s3`` (a failed page is retried,
    not the listing restarted; s3fs issue #982). s3fs's public listings (``ls``, ``find``,
    ``walk``, ``listdir``) return a folder's whole listing at once: a flat prefix of 100M keys
    would be held in memory before the first name is used. A botocore paginator on ``fs.s3``
    would stream, but without s3fs's per-page retries and its requester-pays options.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

RAY_WORKER_LOGGER = "ray._private.worker"
"""The logger of ``ray.init`` (the module it is defined in)."""

STREAMING_GENERATOR_BUFFER_OPTION = "_generator_backpressure_num_objects"
"""Ray task option: objects a streaming generator task may have unconsumed before it pauses."""


def fuse_with_previous(dataset: Any, ray_remote_args: Mapping[str, Any], compute: Any = None) -> Any:
    """Give ``dataset``'s last operator and its inputs the task options ``ray_remote_args``, in place.

    Args:
        dataset: a ``ray.data.Dataset`` whose last step has no task options of its own (a
            ``repartition``), after a ``map_batches`` given the same options.
        ray_remote_args: Ray task options (``num_cpus``, ...).
        compute: the ``map_batches``' ``ray.data.TaskPoolStrategy`` (its task limit), given to the
            ``repartition`` too (Ray Data fuses two task pools only of the same size), or None.

    Returns:
        ``dataset`` (the same object), whose two last operators Ray Data now fuses into one task.

    Raises:
        RuntimeError: the installed Ray Data has no logical plan of this shape (nothing changed).
    """
    try:
        last = dataset._logical_plan.dag
        operators = (last, *last.input_dependencies)
    except AttributeError as exc:
        raise RuntimeError(
            "this Ray Data has no Dataset._logical_plan.dag with input_dependencies: "
            "archive_colorizer.compat.fuse_with_previous needs updating for it (see tests/test_compat.py)"
        ) from exc
    edited = 0
    for operator in operators:
        remote_args = getattr(operator, "ray_remote_args", None)
        if isinstance(remote_args, dict):
            remote_args.update(ray_remote_args)
            edited += 1
            if compute is not None and hasattr(operator, "compute"):
                object.__setattr__(operator, "compute", compute)  # a frozen dataclass field
    if not edited:
        raise RuntimeError(
            "no operator of this Ray Data plan has a ray_remote_args dict: "
            "archive_colorizer.compat.fuse_with_previous needs updating (see tests/test_compat.py)"
        )
    return dataset


def max_cluster_resources() -> dict[str, float]:
    """The resources the connected cluster may grow to (autoscaler config), ``{}`` when unknown."""
    try:
        from ray._private.state import state

        return dict(state.get_max_resources_from_cluster_config() or {})
    except Exception:  # missing or failing: the nodes of now are all the caller knows
        return {}


def kv_put(key: str, value: str) -> None:
    """Write ``value`` under ``key`` in Ray's key-value store (in a driver or worker; overwrites)."""
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(key, value, overwrite=True)


def kv_get(key: str) -> bytes | None:
    """The value under ``key`` in Ray's key-value store, ``None`` when unset."""
    from ray.experimental import internal_kv

    return internal_kv._internal_kv_get(key)


def ray_address_file() -> str:
    """Where ``ray start`` records its cluster's address on this machine."""
    try:
        from ray._common.utils import get_ray_address_file

        return get_ray_address_file(None)
    except (ImportError, AttributeError, TypeError):
        import tempfile

        base = os.environ.get("RAY_TMPDIR") or ("/tmp" if os.name != "nt" else tempfile.gettempdir())
        return os.path.join(base, "ray", "ray_current_cluster")


def s3_iterdir(fs: Any, bucket: str, prefix: str, delimiter: str = "/") -> AsyncIterator[dict[str, Any]]:
    """s3fs's retried, paged listing of one prefix level: an async iterator of s3fs info dicts
    (``name`` ``bucket/key``, ``type`` ``file`` or ``directory``, ``size``), page after page."""
    return fs._iterdir(bucket, delimiter=delimiter, prefix=prefix)
