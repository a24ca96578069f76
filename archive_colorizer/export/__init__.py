"""The export job: a training checkpoint -> generator artifact (``archive-colorizer export``)."""

from archive_colorizer.lazy import reexports

__all__ = ["ExportResult", "export_checkpoint", "run"]
__getattr__ = reexports(__name__, {"ExportResult": "job", "export_checkpoint": "job", "run": "job"})
