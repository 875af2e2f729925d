"""The host's long-lived key pair and self-signed certificate, and fingerprints.

The certificate is not vouched for by anyone; its SHA-256 fingerprint *is* the host's
identity. Guests compare it with the one advertised, or with the one they pinned the
first time, so encryption comes with a check that the host is the one they expect.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "host-cert.pem"
KEY_FILE = "host-key.pem"
VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class HostCertificate:
    cert_path: Path
    key_path: Path
    fingerprint: str
    """SHA-256 of the DER certificate, 64 lowercase hex characters."""

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        # Guests never resume a TLS session, so TLS 1.3 session tickets would be work and
        # bytes for nothing: 1,387-1,443 µs of CPU a handshake without them, 1,494-1,546
        # with OpenSSL's two (`python -m benchmarks.tls_handshake`).
        context.num_tickets = 0
        return context


def fingerprint_of(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """Accept what people type or read aloud: any case, spaces, colons or dashes."""
    return "".join(c for c in text.lower() if c in "0123456789abcdef")


def readable(fingerprint: str) -> str:
    """Groups of four upper-case hex characters, easy to compare aloud."""
    fp = normalize_fingerprint(fingerprint).upper()
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def short(fingerprint: str) -> str:
    """The first four groups: enough to spot a change at a glance."""
    return " ".join(readable(fingerprint).split()[:4])


def comparison_code(fingerprint: str) -> str:
    """What people compare aloud: the first four groups (64 bits). Short enough to read
    out in one breath; making a certificate whose code matches a given host's would take
    about 2^64 tries, far beyond an attacker on the LAN."""
    return short(fingerprint)


def client_context() -> ssl.SSLContext:
    """TLS without a certificate authority: the caller checks the fingerprint itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return fingerprint_of(der) if der else None


def load_or_create(directory: Path, common_name: str = "LOUDSYNC host") -> HostCertificate:
    """This device's host certificate, made on first use; the key file is owner-only."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if not (cert_path.exists() and key_path.exists()):
        _create(cert_path, key_path, common_name)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    return HostCertificate(cert_path, key_path, fingerprint_of(der))


def _create(cert_path: Path, key_path: Path, common_name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
