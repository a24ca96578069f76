"""Bounds of the predictor actor pool, from the setting and the cluster's resources.

With ``--gpu`` and no ``--actors`` the pool has no fixed maximum: Ray Data adds an actor
whenever batches wait and a GPU is free, so the pool follows the cluster's GPUs as nodes join
(the GPU share each actor reserves, ``--gpus-per-actor``, bounds it). A maximum read from
``ray.cluster_resources()`` when the job starts would freeze the pool at the GPUs present
then: a cluster that autoscales from zero GPU nodes would run the whole job on one actor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def actor_pool_bounds(
    actors: Sequence[int] | None, gpu: bool, resources: Mapping[str, float]
) -> tuple[int, int | None]:
    """(min, max) actors of the split stages' predictor pool; max None means no fixed maximum.

    Args:
        actors: ``--actors``: ``[N]`` for a fixed pool, ``[MIN, MAX]``, or None for the default.
        gpu: actors on GPUs (``--gpu``).
        resources: ``ray.cluster_resources()`` now (``CPU``, ``GPU`` counts).

    Returns:
        ``(N, N)`` or ``(MIN, MAX)`` as given; with ``gpu`` and no ``actors``: ``(1, None)``,
        bounded by the GPUs the cluster has at each moment; without: ``(1, max(1, CPUs // 2))``.
    """
    if actors:
        return actors[0], actors[-1]
    if gpu:
        return 1, None
    return 1, max(1, int(resources.get("CPU", 1) // 2))
