"""Trust on first use: the fingerprint each host id showed the first time, kept on disk.

`decide` is the whole policy, without I/O: given what the guest observed, what was
advertised and what it pinned before, it says whether to go on, ask, or refuse.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from pathlib import Path

from loudsync_tui.security.certificate import normalize_fingerprint, readable

KNOWN_HOSTS_FILE = "known-hosts.json"


class Verdict(enum.StrEnum):
    TRUSTED = "trusted"
    """The certificate matches what was expected; go on."""
    NEW = "new"
    """Nothing was known about this host: show the fingerprint and ask."""
    MISMATCH = "mismatch"
    """It differs from what was pinned or advertised: refuse unless the user overrides."""
    PLAINTEXT = "plaintext"
    """No TLS at all; a host pinned with a certificate must never downgrade."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    message: str
    fingerprint: str | None


def decide(
    host_id: str,
    observed: str | None,
    *,
    advertised: str | None = None,
    pinned: str | None = None,
) -> Decision:
    if observed is None:
        if pinned:
            return Decision(
                Verdict.MISMATCH,
                f"Host {host_id} used to speak TLS (fingerprint {readable(pinned)}) but now "
                "answers unencrypted: someone may be impersonating it.",
                None,
            )
        return Decision(Verdict.PLAINTEXT, "This session is not encrypted.", None)
    observed = normalize_fingerprint(observed)
    for source, expected in (("pinned", pinned), ("advertised", advertised)):
        if expected and normalize_fingerprint(expected) != observed:
            return Decision(
                Verdict.MISMATCH,
                f"WARNING: the host's certificate does not match the {source} one.\n"
                f"expected {readable(expected)}\n"
                f"got      {readable(observed)}\n"
                "Someone may be impersonating the host. Compare the fingerprint on the "
                "host's screen before trusting the new one.",
                observed,
            )
    if pinned or advertised:
        return Decision(Verdict.TRUSTED, "verified", observed)
    return Decision(
        Verdict.NEW,
        f"First connection to host {host_id}. Its fingerprint is\n{readable(observed)}\n"
        "Compare it with the one on the host's screen.",
        observed,
    )


class KnownHosts:
    """host id -> pinned fingerprint, in the user's config directory (owner-only)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / KNOWN_HOSTS_FILE

    def get(self, host_id: str) -> str | None:
        value = self._load().get(host_id)
        return value if isinstance(value, str) else None

    def pin(self, host_id: str, fingerprint: str) -> None:
        data = self._load()
        data[host_id] = normalize_fingerprint(fingerprint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
