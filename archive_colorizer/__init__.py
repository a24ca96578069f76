"""archive-colorizer: train pix2pix colorization models with Ray Train and colorize whole photo
archives with Ray Data. See DESIGN.md for the data flow and the colour convention."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("archive-colorizer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
