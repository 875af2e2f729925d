"""The DNS-SD shapes of a session: service type, instance and host names, the TXT codec.

Pure functions, no zeroconf and no sockets: a `SessionInfo` becomes a TXT record
(`txt_record`), and a resolved record's TXT, addresses and port become a
`DiscoveredSession` (`session_from_record`), or None when the TXT is missing or garbled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from loudsync_tui.protocol import PROTOCOL_VERSION, SessionInfo
from loudsync_tui.store import DiscoveredSession

SERVICE_TYPE: Final = "_loudsync._tcp.local."

INSTANCE_BYTES: Final = 56
"""DNS labels are at most 63 bytes; leave room for zeroconf's "-2" style rename suffix."""

TXT_ITEM_BYTES: Final = 255
"""One TXT string (`key=value`) is at most 255 bytes."""

FINGERPRINT_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class Security:
    """What the TXT record says about protection: the certificate fingerprint (the host's
    identity, 64 hex characters, absent for plain ws://) and whether a PIN is needed.
    Never the PIN itself."""

    fingerprint: str | None = None
    pin_required: bool = False


UNPROTECTED: Final = Security()
"""Plain ws:// and no PIN."""


def instance_name(session_name: str) -> str:
    """The DNS-SD instance label for a session name (dots would split it into labels)."""
    cleaned = " ".join(session_name.replace(".", " ").split())
    fitted = cleaned.encode()[:INSTANCE_BYTES].decode(errors="ignore").strip()
    return fitted or "LOUDSYNC session"


def server_name(session_id: str) -> str:
    """A host name for the A records, unique per session so one host's goodbye keeps
    another session's addresses on the same machine alive."""
    slug = re.sub(r"[^a-z0-9-]+", "-", session_id.lower()).strip("-")[:40]
    return f"loudsync-{slug or 'session'}.local."


def service_name(instance: str) -> str:
    """The full service name of an instance label."""
    return f"{instance}.{SERVICE_TYPE}"


def instance_of(name: str) -> str:
    """The instance label of a full service name (the key a session is listed under)."""
    suffix = "." + SERVICE_TYPE
    if name.lower().endswith(suffix):
        return name[: -len(suffix)]
    return name


def _fit(key: str, value: str) -> str:
    room = TXT_ITEM_BYTES - len(key.encode()) - 1
    return value.encode()[:room].decode(errors="ignore")


def txt_record(
    session: SessionInfo, members: int, revision: int, security: Security = UNPROTECTED
) -> dict[str, str]:
    """The TXT record. `rev` changes with every update: without it a count that returns to
    an earlier value (2 -> 3 -> 2) matches a record browsers still cache, and zeroconf then
    reports no change, so they would keep showing 3."""
    return {
        "tls": "1" if security.fingerprint else "0",
        **({"fp": security.fingerprint} if security.fingerprint else {}),
        "pin": "1" if security.pin_required else "0",
        "id": _fit("id", session.id),
        "name": _fit("name", session.name),
        "host": _fit("host", session.host_name),
        "members": str(members),
        "max": str(session.max_members),
        "v": str(session.protocol_version),
        "rev": str(revision),
    }


def _int_field(txt: Mapping[str, str | None], key: str, minimum: int) -> int | None:
    text = txt.get(key)
    if text is None or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value >= minimum else None


def session_from_record(
    key: str,
    txt: Mapping[str, str | None],
    addresses: Sequence[str],
    port: int | None,
) -> DiscoveredSession | None:
    """A resolved record (its decoded TXT, addresses and port) as a `DiscoveredSession`
    listed under `key`, or None if its TXT is missing or garbled."""
    session_id, name, host = txt.get("id"), txt.get("name"), txt.get("host")
    members = _int_field(txt, "members", 0)
    max_members = _int_field(txt, "max", 1)
    version = _int_field(txt, "v", 0)
    if not session_id or not name or host is None or port is None:
        return None
    if members is None or max_members is None or version is None:
        return None
    fingerprint = txt.get("fp") or None
    if fingerprint is not None and len(fingerprint) != FINGERPRINT_CHARS:
        fingerprint = None  # garbled: treat as unknown, the guest will ask
    why_not: str | None = None
    if version != PROTOCOL_VERSION:
        why_not = f"needs protocol version {version}"
    elif members >= max_members:
        why_not = "full"
    return DiscoveredSession(
        key=key,
        session_id=session_id,
        name=name,
        host_name=host,
        addresses=tuple(addresses),
        port=port,
        members=members,
        max_members=max_members,
        protocol_version=version,
        joinable=why_not is None,
        why_not=why_not,
        encrypted=txt.get("tls") == "1",
        fingerprint=fingerprint,
        pin_required=txt.get("pin") == "1",
    )
