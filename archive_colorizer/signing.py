"""C2PA content credentials: sign colorized outputs and verify signed files (``c2pa-python``).

A colorize run with ``--c2pa-sign`` embeds in every output a C2PA manifest signed with the
user's certificate chain and private key (offline: no request leaves the machine unless a
timestamp authority is given). The manifest (C2PA 2.x claim, built by :func:`manifest_definition`):

- the gray input as the ``parentOf`` ingredient (title, format), referenced by a
  ``c2pa.opened`` action;
- a ``c2pa.edited`` action with ``digitalSourceType`` IPTC
  ``compositeWithTrainedAlgorithmicMedia`` (real gray values combined with colour from a
  trained model), ``softwareAgent`` archive-colorizer and its version, and the generator's
  sha256 as a parameter;
- the assertion ``dev.archive-colorizer.colorization`` with the generator's sha256, the
  input's sha256 (the ingredient itself carries no hash when the input has no manifest of its
  own) and what was done.

C2PA's hard binding (``c2pa.hash.data``) covers every byte of the output outside the manifest:
a changed pixel, EXIF or XMP byte makes :func:`verify_bytes` report ``invalid`` with
``assertion.dataHash.mismatch``. JPEG, PNG and TIFF (8 and 16 bits per sample) are signed;
the EXIF and XMP the encoder wrote stay in the file.

Credentials never travel in a job's config: ``--c2pa-cert`` and ``--c2pa-key`` hold only a
*reference*, a path or fsspec URL, or ``env:NAME`` (the PEM text is in environment variable
NAME). The driver reads them once to check that they sign (:func:`check_credentials`, before
any Ray work); each worker process reads them again itself and keeps one signer
(:func:`process_signer`). A PEM given where a reference is expected is refused
(:func:`check_reference`), so a key cannot end up in ``_config.yaml``.

Reference: C2PA Technical Specification 2.1 (https://c2pa.org/specifications/), actions and
digital source types; IPTC NewsCodes digitalsourcetype.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archive_colorizer import __version__, storage
from archive_colorizer.errors import ConfigError
from archive_colorizer.lazy import moved

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
ASSERTION_LABEL = "dev.archive-colorizer.colorization"
INGREDIENT_LABEL = "gray-original"
ENV_PREFIX = "env:"
DEFAULT_CERT_ENV = "ARCHIVE_COLORIZER_C2PA_CERT"
DEFAULT_KEY_ENV = "ARCHIVE_COLORIZER_C2PA_KEY"
FORMAT_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff"}
"""MIME types of the output formats colorize writes (all three signable by c2pa-python 0.38)."""
SIGNED = "signed"
"""The manifest's ``c2pa`` value of an output with an embedded, signed C2PA manifest."""
_SIGN_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


class SigningError(Exception):
    """One output could not be signed (its row fails with reason ``c2pa_failed``)."""


class CredentialError(ConfigError):
    """The certificate chain or private key cannot be read or does not sign; names the setting."""


@dataclass(frozen=True)
class SigningSettings:
    """Where a run's signing credentials are: references only, never the PEM text.

    Attributes:
        cert: the certificate chain (PEM, signer first, root optional): a path, an fsspec URL or
            ``env:NAME``.
        key: the signer's private key (PEM, PKCS#8 or traditional, unencrypted): same forms.
        tsa_url: an RFC 3161 timestamp authority, or None (the default: signing stays offline).
        storage_options: fsspec options for a ``cert``/``key`` URL (may hold credentials; never
            written or shown).
    """

    cert: str = ENV_PREFIX + DEFAULT_CERT_ENV
    key: str = ENV_PREFIX + DEFAULT_KEY_ENV
    tsa_url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)


def check_reference(value: str, setting: str) -> str:
    """``value`` if it is a reference (path, URL, ``env:NAME``); refuses PEM text.

    Raises:
        ValueError: ``value`` is PEM text or an empty ``env:`` name.
    """
    if "-----BEGIN" in value or "\n" in value:
        raise ValueError(
            f"{setting} takes a path, URL or env:NAME, not the PEM itself (it would be saved with the run's config)"
        )
    if value.startswith(ENV_PREFIX) and not value[len(ENV_PREFIX) :].strip():
        raise ValueError(f"{setting}: env: needs a variable name, e.g. env:{DEFAULT_KEY_ENV}")
    return value


def read_reference(reference: str, setting: str, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """The bytes a reference points to: environment variable ``NAME`` for ``env:NAME``, else the file or URL.

    Raises:
        CredentialError: the variable is not set in this process, or the file cannot be read;
            the message names ``setting`` and the reference (never the content).
    """
    if reference.startswith(ENV_PREFIX):
        name = reference[len(ENV_PREFIX) :]
        value = os.environ.get(name)
        if not value:
            raise CredentialError(
                f"{setting}: environment variable {name} is not set in this process (on a cluster, every node needs "
                "it: ray job submit --runtime-env-json '{\"env_vars\": {...}}', or give a file or URL instead)"
            )
        return value.encode()
    try:
        fs, path = storage.open_url(reference, storage_options)
        return storage.read_bytes(fs, path)
    except (OSError, ValueError) as exc:
        raise CredentialError(f"{setting}: cannot read {reference!r}: {type(exc).__name__}") from None


def signing_algorithm(key_pem: bytes) -> Any:
    """The C2PA algorithm of a private key: ES256/384/512 (EC P-256/384/521), PS256 (RSA), Ed25519.

    Raises:
        CredentialError: not an unencrypted PEM private key of one of those kinds.
    """
    import c2pa
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialError(f"the C2PA private key is not an unencrypted PEM private key ({exc})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name in curves:
            return c2pa.C2paSigningAlg[curves[key.curve.name]]
    raise CredentialError(
        f"the C2PA private key is a {type(key).__name__}: C2PA signs with EC P-256/384/521, RSA (PS256) or Ed25519"
    )


def manifest_definition(
    title: str, mime: str, generator_sha256: str, input_sha256: str, tool_version: str = __version__
) -> dict[str, Any]:
    """The C2PA manifest definition of one colorized output (see the module docstring).

    Args:
        title: the output's file name.
        mime: the output's MIME type (``image/jpeg``, ``image/png``, ``image/tiff``).
        generator_sha256, input_sha256: hex digests of the generator's weights and the input's bytes.
    """
    agent = {"name": "archive-colorizer", "version": tool_version}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened", "parameters": {"ingredientIds": [INGREDIENT_LABEL]}},
                        {
                            "action": "c2pa.edited",
                            "description": "colorized: colour predicted by a trained pix2pix generator, gray "
                            "values of the original kept",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": agent,
                            "parameters": {"dev.archive-colorizer.generator_sha256": generator_sha256},
                        },
                    ]
                },
            },
            {
                "label": ASSERTION_LABEL,
                "data": {
                    "generator_sha256": generator_sha256,
                    "input_sha256": input_sha256,
                    "method": "pix2pix (Isola et al. 2017) ab prediction at the model's size, chroma upsampled and "
                    "joined with the original gray values as luma",
                },
            },
        ],
    }


class Signer:
    """A C2PA signer for one certificate chain and key, reused for every output of a process.

    Args:
        cert_pem: the certificate chain, signer first.
        key_pem: the private key (kept by the native signer; not stored on this object).
        tsa_url: timestamp authority or None.
    """

    def __init__(self, cert_pem: bytes, key_pem: bytes, tsa_url: str | None = None) -> None:
        import c2pa

        info = c2pa.C2paSignerInfo(signing_algorithm(key_pem), cert_pem, key_pem, tsa_url)
        try:
            self._signer = c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise CredentialError(f"c2pa refused the certificate chain or key: {exc}") from None
        self._context = c2pa.Context.from_dict(_SIGN_SETTINGS)

    def sign(
        self, data: bytes, fmt: str, original: bytes, original_format: str | None, title: str, generator_sha256: str
    ) -> bytes:
        """``data`` (an encoded output) with an embedded, signed C2PA manifest.

        Args:
            data: the output file's bytes.
            fmt: its format, ``JPEG``, ``PNG`` or ``TIFF``.
            original: the gray input's bytes (the ``parentOf`` ingredient).
            original_format: Pillow's name of the input's format (``JPEG``, ``GIF``, ...), or None.
            title: the output's file name.

        Raises:
            SigningError: c2pa cannot sign this file (the message says why).
        """
        import c2pa
        from PIL import Image

        mime = FORMAT_MIME.get(fmt)
        if mime is None:
            raise SigningError(f"C2PA signing supports {', '.join(FORMAT_MIME)} outputs, not {fmt}")
        definition = manifest_definition(title, mime, generator_sha256, hashlib.sha256(original).hexdigest())
        original_mime = Image.MIME.get(original_format or "", "application/octet-stream")
        ingredient = {"title": title.rsplit(".", 1)[0] + " (gray original)", "relationship": "parentOf"}
        ingredient["label"] = INGREDIENT_LABEL
        try:
            with c2pa.Builder(definition, self._context) as builder:
                builder.add_ingredient(ingredient, original_mime, io.BytesIO(original))
                signed = io.BytesIO()
                builder.sign(self._signer, mime, io.BytesIO(data), signed)
        except c2pa.C2paError as exc:
            raise SigningError(f"c2pa could not sign the {fmt} output: {exc}") from None
        return signed.getvalue()


_SIGNERS: dict[SigningSettings, Signer] = {}
"""The worker process's signer, keyed by the references it was read from: at most one."""


def load_signer(settings: SigningSettings) -> Signer:
    """A :class:`Signer` from the credentials ``settings`` point to (read here, in this process).

    Raises:
        CredentialError: a reference cannot be read, or the key is not one C2PA signs with.
    """
    cert = read_reference(settings.cert, "--c2pa-cert", settings.storage_options)
    key = read_reference(settings.key, "--c2pa-key", settings.storage_options)
    return Signer(cert, key, settings.tsa_url)


def process_signer(settings: SigningSettings) -> Signer:
    """This process's signer for ``settings``, loaded once (a worker reads the credentials itself).

    Raises:
        CredentialError: as :func:`load_signer` (systemic: the stage stops the job).
    """
    if settings not in _SIGNERS:
        _SIGNERS.clear()
        _SIGNERS[settings] = load_signer(settings)
    return _SIGNERS[settings]


def check_credentials(settings: SigningSettings) -> Verification:
    """Sign a 16 x 16 JPEG with the credentials and verify it: the driver's check before any Ray work.

    Returns:
        The test image's :class:`Verification` (``valid``; ``trusted`` needs trust anchors).

    Raises:
        CredentialError: the credentials cannot be read, or the signature does not verify (a
            key that does not match the certificate, a certificate C2PA does not accept); the
            message lists the validation codes.
    """
    from PIL import Image

    carrier = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 90, 60)).save(carrier, format="JPEG")
    original = io.BytesIO()
    Image.new("L", (16, 16), 100).save(original, format="PNG")
    signer = load_signer(settings)
    try:
        signed = signer.sign(carrier.getvalue(), "JPEG", original.getvalue(), "PNG", "check.jpg", "0" * 64)
    except SigningError as exc:
        raise CredentialError(f"--c2pa-cert/--c2pa-key do not sign: {exc}") from None
    result = verify_bytes(signed, "image/jpeg")
    if result.state not in ("valid", "trusted"):
        raise CredentialError(
            f"--c2pa-cert/--c2pa-key: a test image signed with them does not verify ({', '.join(result.failures)}); "
            "is the key the certificate's, with digitalSignature key usage and a C2PA extended key usage?"
        )
    return result


@dataclass(frozen=True)
class Verification:
    """What a C2PA reader says of one file.

    Attributes:
        state: ``trusted`` (valid, and the signer chains to a trust anchor), ``valid`` (valid,
            signer not in the anchors or no anchors given), ``invalid`` (a validation failure,
            e.g. ``assertion.dataHash.mismatch`` after a byte changed) or ``unsigned`` (no manifest).
        failures: validation failure codes of the active manifest: ``signingCredential.untrusted``
            alone for a valid file whose signer is not among the trust anchors; more for an
            invalid one.
        signer: the signing certificate's common name and issuer, or None.
        digital_source_type: of the active manifest's ``c2pa.edited`` action, or None.
        generator_sha256: from the ``dev.archive-colorizer.colorization`` assertion, or None.
        error: why the file could not be read at all (state ``invalid``), or None.
    """

    state: str
    failures: tuple[str, ...] = ()
    signer: str | None = None
    digital_source_type: str | None = None
    generator_sha256: str | None = None
    error: str | None = None


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of JPEG, PNG, TIFF, GIF or WebP bytes from their signature, else None."""
    signatures = {
        b"\xff\xd8\xff": "image/jpeg",
        b"\x89PNG\r\n\x1a\n": "image/png",
        b"II*\x00": "image/tiff",
        b"MM\x00*": "image/tiff",
        b"GIF8": "image/gif",
    }
    for magic, mime in signatures.items():
        if data.startswith(magic):
            return mime
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


def verify_bytes(data: bytes, mime: str | None = None, trust_anchors: bytes | None = None) -> Verification:
    """Validate the C2PA manifest embedded in ``data`` (offline: no remote manifest, no OCSP).

    Args:
        mime: the file's MIME type; None: from its signature (:func:`sniff_mime`).
        trust_anchors: PEM root certificates; a valid manifest whose signer chains to one is
            ``trusted``.
    """
    import c2pa

    mime = mime or sniff_mime(data)
    if mime is None:
        return Verification("invalid", error="not a JPEG, PNG, TIFF, GIF or WebP file")
    settings: dict[str, Any] = json.loads(json.dumps(_READ_SETTINGS))
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors.decode()}
    try:
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
            if reader is None:
                return Verification("unsigned")
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        return Verification("invalid", error=str(exc))
    return _verification(store)


def _verification(store: dict[str, Any]) -> Verification:
    """A :class:`Verification` from a c2pa reader's manifest store JSON."""
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = tuple(item.get("code", "") for item in results.get("failure", []))
    state = str(store.get("validation_state") or ("Invalid" if failures else "Valid")).lower()
    info = active.get("signature_info") or {}
    signer = f"{info.get('common_name')} (issuer {info.get('issuer')})" if info else None
    source_type = generator = None
    for assertion in active.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                source_type = action.get("digitalSourceType", source_type)
        if assertion.get("label") == ASSERTION_LABEL:
            generator = assertion.get("data", {}).get("generator_sha256")
    return Verification(state if state in ("trusted", "valid") else "invalid", failures, signer, source_type, generator)


__getattr__ = moved(
    __name__,
    {"SigningCredentials": "archive_colorizer.credentials", "make_test_credentials": "archive_colorizer.credentials"},
)
"""The test certificate authority moved to :mod:`archive_colorizer.credentials` (importable here for one release)."""
