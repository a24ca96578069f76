"""The plan job: time and cost of colorizing an archive on a cluster, before paying for one.

``archive-colorizer plan INPUT --model MODEL [--cluster cluster.yaml | --cpus N --gpus G --nodes K]``
lists the archive (:mod:`.survey`), times colorize's own stages on a sample here (:mod:`.measure`),
projects the job onto the cluster (:mod:`.cluster`, :mod:`.projection`) and reports it
(:mod:`.report`): a table on stdout and ``plan.json``. See docs/plan.md.
"""

from archive_colorizer.lazy import reexports

__all__ = ["PlanResult", "run"]
__getattr__ = reexports(__name__, {"PlanResult": "job", "run": "job"})
