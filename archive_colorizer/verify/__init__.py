"""``archive-colorizer verify``: check the C2PA manifests of files, folders or URLs.

Each file is reported ``trusted``, ``valid``, ``invalid`` (with the validation failure codes,
e.g. ``assertion.dataHash.mismatch`` after a byte changed) or ``unsigned`` (no C2PA manifest);
see :func:`archive_colorizer.signing.verify_bytes`. The exit code is 1 when any file is invalid
or unreadable, else 0 (unsigned files do not fail the command: use the counts or ``--json-output``).
Reading is offline: no remote manifest, OCSP or trust list is fetched.
"""

from archive_colorizer.lazy import reexports

__all__ = ["VerifyResult", "expand", "run"]
__getattr__ = reexports(__name__, {"VerifyResult": "job", "expand": "job", "run": "job"})
