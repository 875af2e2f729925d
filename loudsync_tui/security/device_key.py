"""A device's Ed25519 key pair: its id is derived from the public key, and JOIN proves it.

Anyone can type any device id; only the holder of the private key can sign the host's
fresh challenge. So the id others see is a hash of the public key (`k-...`), the guest
signs a payload bound to this connection, this session and this host's certificate, and
bans that name the id name the key. Everything here is computation, so the host core
can verify proofs without I/O; only `load_or_create` and `save` touch the disk.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from loudsync_tui.security.certificate import normalize_fingerprint

ID_PREFIX: Final = "k-"
"""Ids of this form are reserved for devices that prove their key."""
ID_HASH_CHARS: Final = 26
"""130 bits of SHA-256 in base32: far beyond any collision a LAN could try."""
CHALLENGE_HEADER: Final = "X-LoudSync-Challenge"
"""The handshake response header that carries the host's nonce for this connection."""
PAYLOAD_CONTEXT: Final = "loudsync-join-v1"
NO_TLS: Final = "-"
"""Stands for the host's fingerprint in the payload when the host serves plain ws://."""


def device_id_of(public_key: bytes) -> str:
    """`k-` and the first 26 base32 characters of SHA-256(raw public key), lower case."""
    digest = base64.b32encode(hashlib.sha256(public_key).digest()).decode("ascii")
    return ID_PREFIX + digest[:ID_HASH_CHARS].lower()


def is_key_id(device_id: str) -> bool:
    """Whether the id has the reserved derived form, which only a proof may claim."""
    return device_id.startswith(ID_PREFIX)


def join_payload(nonce: str, session_id: str, fingerprint: str | None, device_id: str) -> bytes:
    """What a JOIN proof signs: the nonce ties it to one connection, the session id to one
    session, the host's certificate fingerprint to one host (so a host cannot replay a
    guest's proof to another host), and the id to the identity claimed."""
    fp = normalize_fingerprint(fingerprint) if fingerprint else ""
    lines = (PAYLOAD_CONTEXT, nonce, session_id, fp or NO_TLS, device_id)
    return "\n".join(lines).encode("utf-8")


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding, as the JOIN proof carries bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Inverse of `b64url`; raises ValueError on anything else."""
    if not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """One device's private key (raw 32 bytes, never shown in a repr) and what follows from it."""

    private: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(Ed25519PrivateKey.generate().private_bytes_raw())

    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.private)

    @property
    def public(self) -> bytes:
        return self._key().public_key().public_bytes_raw()

    @property
    def device_id(self) -> str:
        return device_id_of(self.public)

    def sign(self, payload: bytes) -> bytes:
        return self._key().sign(payload)


@dataclass(frozen=True, slots=True)
class JoinSignature:
    """The two base64url strings a JOIN's `proof` carries."""

    public_key: str
    signature: str


def sign_join(
    private: bytes, nonce: str, session_id: str, fingerprint: str | None, device_id: str
) -> JoinSignature:
    """The guest's proof for one JOIN on one connection."""
    key = DeviceKey(private)
    payload = join_payload(nonce, session_id, fingerprint, device_id)
    return JoinSignature(b64url(key.public), b64url(key.sign(payload)))


def verify_join(
    public_key: str,
    signature: str,
    *,
    nonce: str,
    session_id: str,
    fingerprint: str | None,
    device_id: str,
) -> str | None:
    """None when the proof holds; otherwise why not, for the host's log (never the guest:
    it only learns that the proof failed)."""
    try:
        raw_public = from_b64url(public_key)
        raw_signature = from_b64url(signature)
        verifier = Ed25519PublicKey.from_public_bytes(raw_public)
    except ValueError:
        return "malformed public key"
    if device_id_of(raw_public) != device_id:
        return "the id is not the one derived from the key"
    try:
        verifier.verify(raw_signature, join_payload(nonce, session_id, fingerprint, device_id))
    except InvalidSignature:
        return "bad signature (another connection, session or host)"
    return None


def new_nonce() -> str:
    """A fresh challenge for one connection."""
    return secrets.token_urlsafe(24)


# Disk -------------------------------------------------------------------------------


def save(key: DeviceKey, path: Path) -> None:
    """Write the key as PKCS#8 PEM, owner-only from the first byte, atomically: a crash
    leaves the old file or the new one, never half a key."""
    pem = Ed25519PrivateKey.from_private_bytes(key.private).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # in case the umask or the filesystem widened it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load(path: Path) -> DeviceKey:
    """Read a key written by `save`; ValueError if it is not an Ed25519 key."""
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # a private key others can read is tightened, not trusted less
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return DeviceKey(key.private_bytes_raw())


def load_or_create(path: Path) -> DeviceKey:
    """The key at `path`, made on first use. The caller holds the slot's lock."""
    if path.exists():
        return load(path)
    key = DeviceKey.generate()
    save(key, path)
    return key
