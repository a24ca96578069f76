"""Exceptions a user can act on. Each message names the file, URL or setting at fault.

The command line prints the message of any :class:`ArchiveColorizerError` and exits with 1
(2 for :class:`ConfigError`), instead of a traceback.
"""


class ArchiveColorizerError(Exception):
    """Base of the errors that stop a job with a message for the user."""


class ConfigError(ArchiveColorizerError, ValueError):
    """A config file or value is invalid; the message names the file or setting."""


class StorageError(ArchiveColorizerError, OSError):
    """A URL could not be read, listed or written; the message names the URL."""


class ArtifactError(ArchiveColorizerError, RuntimeError):
    """A generator artifact is missing, corrupt or inconsistent; the message names the URL."""


class JobError(ArchiveColorizerError, RuntimeError):
    """A job cannot go on (systemic failure or too many failed inputs); the message says why."""
