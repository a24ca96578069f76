"""Moved to :mod:`archive_colorizer.export.job` (``archive-colorizer export`` has its own package).

This module re-exports it for one release, with a ``DeprecationWarning``.
"""

import warnings

from archive_colorizer.export.job import ExportResult, export_checkpoint, run

warnings.warn(
    "archive_colorizer.train.export moved to archive_colorizer.export.job; the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["ExportResult", "export_checkpoint", "run"]
