"""The colorize job: batch-colorize an archive at full resolution with Ray Data.

The job's ``run`` lives in :mod:`.job`; this package re-exports it (``archive_colorizer.colorize:run``
is the command line's entry point). Modules, in the order the data flows: :mod:`.input_rows` and
:mod:`.listing_tasks` (what to colorize, listed on the cluster), :mod:`.resume` (what earlier runs
finished), :mod:`.pipeline` (the Ray Data graph: :mod:`.decode`, :mod:`.predictor`,
:mod:`.merge`, or :mod:`.fused`), :mod:`.manifest` and :mod:`.manifest_writer` (the record),
:mod:`.review` (the page). See docs/colorize-at-scale.md for the behaviour on large buckets.
"""

from archive_colorizer.lazy import reexports

__all__ = ["ColorizeResult", "run"]
__getattr__ = reexports(__name__, {"ColorizeResult": "job", "run": "job"})
