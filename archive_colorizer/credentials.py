"""A throwaway certificate authority for C2PA signing: for tests, benchmarks and trying ``--c2pa-sign`` out.

:func:`make_test_credentials` writes a root CA, a signer certificate chained to it and the
signer's private key (ES256) as PEM files. C2PA validators report outputs signed with them
``valid`` but not ``trusted`` unless the root is given as a trust anchor; an institution signs
with a certificate from a CA on the C2PA trust list instead (docs/provenance.md).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SigningCredentials:
    """PEM bytes of a test root CA, the signer's chain and its private key, and the files holding them."""

    root_pem: bytes
    chain_pem: bytes
    key_pem: bytes
    root_path: Path
    chain_path: Path
    key_path: Path


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Archive"),
        ]
    )


def _usage(signer: bool):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def make_test_credentials(folder: str | Path, signer_name: str = "Test colorizer signer") -> SigningCredentials:
    """A throwaway root CA and an ES256 (P-256) signer it issued, valid from yesterday for 30 days.

    For tests, benchmarks and trying ``--c2pa-sign`` (docs/provenance.md), never for publishing:
    the root is trusted by no one else. The root is a CA (``CA:TRUE``, keyCertSign); the
    signer's certificate is what C2PA asks of a signing credential (C2PA 2.1, 14.5.1): not a
    CA, critical ``digitalSignature`` key usage, an extended key usage C2PA accepts
    (``id-kp-emailProtection``), subject and authority key identifiers.

    Args:
        folder: written here: ``root.pem`` (the trust anchor), ``chain.pem`` (signer, then
            root: ``--c2pa-cert``) and ``signer.key`` (PKCS#8, unencrypted: ``--c2pa-key``).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = _dt.datetime.now(_dt.timezone.utc)
    root_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, public_key, extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(_name("Test Archive Root CA"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(root_key, hashes.SHA256())

    root = certificate(
        _name("Test Archive Root CA"),
        root_key.public_key(),
        [(x509.BasicConstraints(ca=True, path_length=None), True), (_usage(signer=False), True)],
    )
    signer = certificate(
        _name(signer_name),
        signer_key.public_key(),
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_usage(signer=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False),
        ],
    )
    pem = serialization.Encoding.PEM
    root_pem = root.public_bytes(pem)
    chain_pem = signer.public_bytes(pem) + root_pem
    key_pem = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "root.pem", folder / "chain.pem", folder / "signer.key"
    for path, data in zip(paths, (root_pem, chain_pem, key_pem), strict=True):
        path.write_bytes(data)
    return SigningCredentials(root_pem, chain_pem, key_pem, *paths)
