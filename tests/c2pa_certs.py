"""The C2PA test credentials fixture (archive_colorizer.credentials.make_test_credentials) and key leak checks."""

from __future__ import annotations

import base64

import pytest

from archive_colorizer.credentials import SigningCredentials, make_test_credentials


@pytest.fixture(scope="session")
def c2pa_credentials(tmp_path_factory: pytest.TempPathFactory) -> SigningCredentials:
    """A throwaway root CA and ES256 signer (files in a session temporary folder)."""
    return make_test_credentials(tmp_path_factory.mktemp("c2pa"))


def key_material(key_pem: bytes) -> list[bytes]:
    """What of a PEM private key must never appear in a file: each base64 line of its body and its DER bytes."""
    lines = [line for line in key_pem.splitlines() if line and not line.startswith(b"-----")]
    return [*lines, base64.b64decode(b"".join(lines))]
