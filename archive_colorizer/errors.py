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


class JobStopped(BaseException):
    """The job was asked to stop (SIGTERM from ``ray job stop``, Kubernetes, KubeRay; or SIGINT).

    Raised in the driver's main thread by the signal handler, like :class:`KeyboardInterrupt`
    (hence a ``BaseException``: an ``except Exception`` around one input must never swallow it).
    A job that catches it keeps what finished (colorize writes the manifest rows of finished
    outputs) and re-raises; the command line prints its message and exits with 128 + the signal
    number. Re-running the same command resumes.

    Attributes:
        signal_number: the signal that stopped the job (``signal.SIGTERM`` = 15, ``SIGINT`` = 2).
    """

    def __init__(self, signal_number: int, message: str = "") -> None:
        self.signal_number = signal_number
        super().__init__(message or f"stopped by signal {signal_number}; re-running the same command resumes")
