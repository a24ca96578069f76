"""Moved to :mod:`archive_colorizer.images` (this name shadowed the PyPI package ``imageio``).

This module re-exports it for one release, with a ``DeprecationWarning``; ``encode_jpeg`` is
now :func:`archive_colorizer.images.jpeg_bytes`.
"""

import warnings

from archive_colorizer.images import *  # noqa: F403
from archive_colorizer.images import jpeg_bytes as encode_jpeg  # noqa: F401

warnings.warn(
    "archive_colorizer.imageio moved to archive_colorizer.images (encode_jpeg is now jpeg_bytes); the old path goes "
    "away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
