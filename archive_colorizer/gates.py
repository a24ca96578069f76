"""Hold points: a job waits at a named point until a test releases it.

A test that stops, kills or watches a job "in the middle" must make the middle certain: the
job gets faster every release, so waiting for "some progress" and hoping the job is still
running fails once it finishes first. A hold point is such a certain middle. The job calls
:func:`hold` at a few named points (below); nothing happens unless the environment variable
:data:`GATES_ENV` names a folder, which only tests set (``tests/conftest.py`` sets it for
every process of the test session, Ray workers included, and its ``gates`` fixture arms,
watches and releases the points).

A point is armed by the file ``<folder>/<point>.hold`` holding an ``fnmatch`` pattern; a call
``hold(point, key)`` whose key matches appends a line ``<key>\t<process id>`` to
``<folder>/<point>.reached`` (so a test can kill exactly the process that waits) and waits,
polling every 20 ms, until the ``.hold`` file is removed. The points:

- ``cli.start`` (key: the command name): the process has its stop handlers, nothing else yet.
- ``cli.finish`` (key: the command name): the job has returned and printed its summary; the
  process is about to tear down (Ray's shutdown).
- ``colorize.read`` (key: the input URL): a colorize task is about to read an input's bytes.
- ``colorize.predict`` (key: an input URL of the batch): the predictor actor (``--stages
  split``) is about to run the generator on a batch holding that input.
- ``colorize.write`` (key: the input URL): a colorize task is about to write an input's output.
- ``colorize.list`` (key: ``<folder>#<page>``, page numbered from 0; for a key range of an S3
  prefix ``<prefix URL>(<after>,<last>]#<page>``, bounds empty when open): a listing task is about
  to hand on the rows of a folder's or range's page (the pages before it have left the task). For
  an input list the key is ``<file URL>#<chunk>``: a listing task is about to read that chunk.
- ``colorize.claim`` (key: ``<shard>:<chunk>``): a claim shard of an input list (the duplicate
  filter's actor) has logged a listing task's claims from chunk ``<chunk>`` and is about to answer.
- ``storage.list`` (key: ``<folder>#<page>``, page numbered from 0, never 0 itself): the
  listing route every job uses (:mod:`archive_colorizer.folders`) is about to hand on a
  folder's next page (the pages before it have been handed on).
- ``train.epoch`` (key: ``<epoch>``, from 0): a training worker is about to train an epoch,
  after the previous epoch's checkpoint was reported.

Waiting in the driver's main thread stays interruptible: a stop signal's handler runs during
``time.sleep``.
"""

from __future__ import annotations

import fnmatch
import os
import time

GATES_ENV = "ARCHIVE_COLORIZER_TEST_GATES"
"""Environment variable naming the folder of armed hold points (tests only)."""

POLL_S = 0.02
"""Seconds between two looks at a held point's ``.hold`` file."""


def active() -> bool:
    """Whether hold points are in use in this process (a test set :data:`GATES_ENV`)."""
    return bool(os.environ.get(GATES_ENV))


def hold(point: str, key: str) -> None:
    """Wait here while a test holds ``point`` for ``key``; return at once otherwise.

    Args:
        point: the hold point's name (see the module docstring).
        key: what this call is about (an input URL, an epoch); matched against the pattern in
            ``<folder>/<point>.hold`` with :func:`fnmatch.fnmatchcase`.
    """
    folder = os.environ.get(GATES_ENV)
    if not folder:
        return
    armed = os.path.join(folder, f"{point}.hold")
    try:
        with open(armed, encoding="utf-8") as handle:
            pattern = handle.read()
    except OSError:
        return
    if not fnmatch.fnmatchcase(key, pattern):
        return
    with open(os.path.join(folder, f"{point}.reached"), "a", encoding="utf-8") as handle:
        handle.write(f"{key}\t{os.getpid()}\n")
    while os.path.exists(armed):
        time.sleep(POLL_S)
