"""The process entry point of ``archive-colorizer`` and ``jobs/*.py``: stop signals from first line to last.

A stop signal (SIGTERM from ``ray job stop`` or Kubernetes, SIGINT from Ctrl-C) at any moment
of the process gives one line on stderr and a known exit code, never a bare death by signal:

- from the first line of :func:`main` until the job has returned (imports, parsing, connecting
  to Ray, the job itself): ``archive-colorizer <job>: stopped by signal N; ...`` and exit
  128 + N (143 for SIGTERM, 130 for SIGINT); what finished is kept;
- after the job has returned (its summary printed), while the process tears down (Ray's
  shutdown): the job is done, so the signal is noted in one line and the process exits with
  the job's own code (0 when it succeeded).

This module imports only the standard library and :mod:`archive_colorizer.stopping` before the
handlers are in place; the rest of the package (0.3 s of imports) loads afterwards. Only the
interpreter's own start-up, before any line of ours runs, is left to the default action.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from archive_colorizer.stopping import STOP_SIGNALS, install_stop_handlers, stopped_message


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``archive-colorizer`` with ``argv`` (default ``sys.argv[1:]``) and exit with its code.

    Exit codes as :func:`archive_colorizer.cli.main`; 128 + N for a stop signal N before the
    job returned.
    """
    install_stop_handlers()
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in arguments if not a.startswith("-")), "")
    from archive_colorizer.errors import JobStopped

    try:
        from archive_colorizer import gates

        gates.hold("cli.start", command)
        from archive_colorizer.cli import main as run_command

        code = run_command(arguments)
    except JobStopped as exc:  # before the command's own handling (imports, the hold point)
        print(stopped_message(arguments, exc), file=sys.stderr, flush=True)
        code = 128 + exc.signal_number
    _finish(code, command)
    sys.exit(code)


def _finish(code: int, command: str) -> None:
    """From here on a stop signal is noted and the process still exits with ``code``."""

    def noted(signal_number: int, frame: Any) -> None:
        # os.write: the handler may run while the main thread is inside a print to stderr.
        os.write(2, f"archive-colorizer {command}: signal {signal_number} after the job ended; exit {code}\n".encode())

    for number in STOP_SIGNALS:
        signal.signal(number, noted)
    sys.stdout.flush()
    sys.stderr.flush()
    from archive_colorizer import gates

    gates.hold("cli.finish", command)
