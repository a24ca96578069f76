"""The colorize job: batch-colorize an archive at full resolution with Ray Data.

The job's ``run`` lives in :mod:`.job`; this package re-exports it (``archive_colorizer.colorize:run``
is the command line's entry point; its options are :mod:`.config`'s). Modules, in the order the
data flows: :mod:`.input_rows`, :mod:`.key_ranges`, :mod:`.input_lists` and :mod:`.iiif_in` (what to
colorize), :mod:`.listing_tasks` (listed on the cluster, with :mod:`.listing_progress` and
:mod:`.claim_shards`), :mod:`.resume` (what earlier runs finished), :mod:`.pipeline` (the Ray
Data graph: :mod:`.decode`, :mod:`.predictor`,
:mod:`.merge`, or :mod:`.fused`), :mod:`.manifest` and :mod:`.manifest_writer` (the record),
:mod:`.review` (the page). See docs/colorize-at-scale.md for the behaviour on large buckets.
"""

from archive_colorizer.lazy import reexports

__all__ = ["ColorizeResult", "run"]
__getattr__ = reexports(__name__, {"ColorizeResult": "job", "run": "job"})
