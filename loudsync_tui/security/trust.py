"""Trust on first use: the fingerprint each host id, and each address, showed when the
user accepted it, kept on disk.

`decide` is the whole policy, without I/O: given what the guest observed, what it was
told to expect and what it pinned before, it says whether to go on, ask, or refuse.
`with_overrides` then applies the user's explicit choices (`--trust-new`, a yes at the
trust question, `--replace-pin`) and the PIN rule. Only a pin the user accepted earlier
or a fingerprint the user gave counts as verified: an mDNS announcement is not.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from loudsync_tui.security.certificate import comparison_code, normalize_fingerprint, readable

KNOWN_HOSTS_FILE = "known-hosts.json"


class Verdict(enum.StrEnum):
    TRUSTED = "trusted"
    """The certificate matches a fingerprint the user verified; go on."""
    NEW = "new"
    """A first meeting: show the comparison code and ask."""
    MISMATCH = "mismatch"
    """It differs from what was pinned, given or advertised, or dropped TLS where TLS was
    expected: a possible impostor; refuse unless the user overrides a changed pin."""
    PLAINTEXT = "plaintext"
    """No TLS and nothing expected: go on with a warning, but never with a PIN."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    message: str
    fingerprint: str | None
    replaceable: bool = False
    """MISMATCH only: a changed pin, which the user may replace by confirming the new
    fingerprint; a mismatch with what was given or advertised, or plain, never is."""


def host_label(host_name: str, session_name: str) -> str:
    """How a trust question names a host: as people know it, not by its device id."""
    return f"{host_name}'s session “{session_name}”"


def decide(
    host: str,
    observed: str | None,
    *,
    given: str | None = None,
    advertised: str | None = None,
    pinned: str | None = None,
    address: str | None = None,
    pinned_at_address: str | None = None,
) -> Decision:
    """`host` names the host for people (its display and session names); `observed` is
    the certificate's fingerprint, None when it answered without TLS; `given` what the
    user said to expect (--fingerprint, or accepted at the question); `advertised` the
    TXT `fp`; `pinned` the pin for the host id it claims; `pinned_at_address` the pin
    for the address it answered at, whatever id it claims."""
    where = f" at {address}" if address else ""
    expected = [
        (source, fp)
        for source, fp in (
            ("the one you gave", given),
            ("the one it advertised on the LAN", advertised),
            ("the one pinned for this host", pinned),
            (f"the one pinned for {address}", pinned_at_address),
        )
        if fp
    ]
    if observed is None:
        if expected:
            source, fp = expected[0]
            return Decision(
                Verdict.MISMATCH,
                f"REFUSED: {host}{where} answers unencrypted, but TLS with fingerprint "
                f"{readable(fp)} ({source}) was expected.\n"
                "Someone may be impersonating it; nothing was sent.",
                None,
            )
        return Decision(Verdict.PLAINTEXT, "This session is not encrypted.", None)
    observed = normalize_fingerprint(observed)
    for source, fp in expected:
        if normalize_fingerprint(fp) != observed:
            pin_source = source.startswith("the one pinned")
            return Decision(
                Verdict.MISMATCH,
                f"WARNING: the certificate of {host}{where} does not match {source}.\n"
                f"expected {readable(fp)}\n"
                f"got      {readable(observed)}\n"
                "Someone may be impersonating the host"
                + (
                    ". Compare the code on the host's screen before trusting the new one."
                    if pin_source
                    else "; nothing was sent."
                ),
                observed,
                replaceable=pin_source,
            )
    if given or pinned or pinned_at_address:
        return Decision(Verdict.TRUSTED, "verified", observed)
    return Decision(
        Verdict.NEW,
        f"First connection to {host}{where}.\n"
        f"Its code is {comparison_code(observed)}; the full fingerprint is\n"
        f"{readable(observed)}\n"
        "Compare the code with the one on the host's screen.",
        observed,
    )


def with_overrides(
    decision: Decision,
    *,
    given: str | None = None,
    trust_new: bool = False,
    replace_pin: bool = False,
    pin: str | None = None,
) -> Decision:
    """`decision` after the user's explicit choices: a first meeting accepted (`trust_new`),
    a changed pin replaced by the fingerprint the user confirmed (`replace_pin` with
    `given`), both TRUSTED. A PIN is only sent inside TLS to a fingerprint so verified,
    so a plain answer while holding a PIN is refused before anything is sent."""
    verdict, observed = decision.verdict, decision.fingerprint
    if verdict is Verdict.NEW and trust_new:
        return replace(decision, verdict=Verdict.TRUSTED, message="accepted")
    if (
        verdict is Verdict.MISMATCH
        and decision.replaceable
        and replace_pin
        and given is not None
        and observed is not None
        and normalize_fingerprint(given) == observed
    ):
        return replace(decision, verdict=Verdict.TRUSTED, message="pin replaced")
    if verdict is Verdict.PLAINTEXT and pin is not None:
        return Decision(
            Verdict.MISMATCH,
            "REFUSED: this host answers unencrypted, and a PIN is only ever sent inside "
            "TLS. The PIN was not sent; a real LOUDSYNC host never asks for one in clear.",
            None,
        )
    return decision


class KnownHosts:
    """Pinned fingerprints in the user's config directory (owner-only): per host id, and
    per address (`HOST:PORT`), so an impostor that answers where a known host lived is
    caught whatever host id it claims."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / KNOWN_HOSTS_FILE

    def get(self, host_id: str) -> str | None:
        return self._load()[0].get(host_id)

    def at_address(self, address: str) -> str | None:
        return self._load()[1].get(address)

    def pin(self, host_id: str, fingerprint: str, address: str | None = None) -> None:
        hosts, addresses = self._load()
        hosts[host_id] = normalize_fingerprint(fingerprint)
        if address:
            addresses[address] = normalize_fingerprint(fingerprint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"hosts": hosts, "addresses": addresses}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def _load(self) -> tuple[dict[str, str], dict[str, str]]:
        """(host id -> fingerprint, address -> fingerprint); an older file is one flat
        host id map."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}, {}
        if not isinstance(data, dict):
            return {}, {}
        hosts, addresses = data.get("hosts"), data.get("addresses")
        if not isinstance(hosts, dict):
            hosts, addresses = data, {}
        return _strings(hosts), _strings(addresses if isinstance(addresses, dict) else {})


def _strings(mapping: dict[object, object]) -> dict[str, str]:
    return {k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, str)}
