"""The trust policy without sockets: `decide`, `with_overrides` and what `KnownHosts` keeps."""

from __future__ import annotations

import json
from pathlib import Path

from loudsync_tui.security.certificate import comparison_code, readable
from loudsync_tui.security.trust import (
    KNOWN_HOSTS_FILE,
    KnownHosts,
    Verdict,
    decide,
    host_label,
    with_overrides,
)

REAL = "ab12" * 16
ROGUE = "cd34" * 16
HOST = host_label("Grace", "Friday")
ADDRESS = "192.168.1.20:8080"


def test_an_advertised_match_is_not_verification_a_first_meeting_asks() -> None:
    decision = decide(HOST, REAL, advertised=REAL, address=ADDRESS)
    assert decision.verdict is Verdict.NEW
    assert "Grace's session “Friday”" in decision.message
    assert comparison_code(REAL) == "AB12 AB12 AB12 AB12"
    assert comparison_code(REAL) in decision.message
    assert readable(REAL) in decision.message


def test_only_a_pin_or_a_given_fingerprint_verifies() -> None:
    assert decide(HOST, REAL, pinned=REAL).verdict is Verdict.TRUSTED
    assert decide(HOST, REAL, given=readable(REAL)).verdict is Verdict.TRUSTED
    assert decide(HOST, REAL, address=ADDRESS, pinned_at_address=REAL).verdict is Verdict.TRUSTED
    assert decide(HOST, REAL).verdict is Verdict.NEW


def test_an_advertised_fingerprint_that_differs_is_refused_and_cannot_be_overridden() -> None:
    decision = decide(HOST, ROGUE, advertised=REAL, pinned=ROGUE)
    assert decision.verdict is Verdict.MISMATCH
    assert "advertised" in decision.message
    assert not decision.replaceable
    after = with_overrides(decision, given=ROGUE, trust_new=True, replace_pin=True)
    assert after.verdict is Verdict.MISMATCH


def test_any_expected_fingerprint_requires_tls() -> None:
    for expected in ({"given": REAL}, {"advertised": REAL}, {"pinned": REAL}):
        decision = decide(HOST, None, address=ADDRESS, **expected)  # type: ignore[arg-type]
        assert decision.verdict is Verdict.MISMATCH, expected
        assert "unencrypted" in decision.message
        assert decision.fingerprint is None
        overridden = with_overrides(decision, given=REAL, trust_new=True, replace_pin=True)
        assert overridden.verdict is Verdict.MISMATCH


def test_a_new_host_id_at_a_pinned_address_is_a_possible_impostor() -> None:
    # It claims an id never seen, so no host-id pin applies; the address pin does.
    tls = decide(HOST, ROGUE, address=ADDRESS, pinned_at_address=REAL)
    assert tls.verdict is Verdict.MISMATCH
    assert ADDRESS in tls.message
    assert with_overrides(tls, trust_new=True).verdict is Verdict.MISMATCH
    plain = decide(HOST, None, address=ADDRESS, pinned_at_address=REAL)
    assert plain.verdict is Verdict.MISMATCH
    assert with_overrides(plain, trust_new=True, pin="482913").verdict is Verdict.MISMATCH


def test_a_changed_pin_is_replaced_only_for_the_fingerprint_the_user_confirmed() -> None:
    decision = decide(HOST, ROGUE, pinned=REAL, address=ADDRESS, pinned_at_address=REAL)
    assert (decision.verdict, decision.replaceable) == (Verdict.MISMATCH, True)
    assert with_overrides(decision, replace_pin=True).verdict is Verdict.MISMATCH
    assert with_overrides(decision, replace_pin=True, given=REAL).verdict is Verdict.MISMATCH
    assert with_overrides(decision, given=ROGUE).verdict is Verdict.MISMATCH
    replaced = with_overrides(decision, replace_pin=True, given=ROGUE)
    assert (replaced.verdict, replaced.fingerprint) == (Verdict.TRUSTED, ROGUE)


def test_trust_new_accepts_a_first_meeting_only() -> None:
    assert with_overrides(decide(HOST, REAL), trust_new=True).verdict is Verdict.TRUSTED
    assert with_overrides(decide(HOST, REAL), trust_new=False).verdict is Verdict.NEW
    changed = decide(HOST, ROGUE, pinned=REAL)
    assert with_overrides(changed, trust_new=True).verdict is Verdict.MISMATCH


def test_a_pin_is_never_sent_in_clear() -> None:
    plain = decide(HOST, None)
    assert plain.verdict is Verdict.PLAINTEXT
    assert with_overrides(plain).verdict is Verdict.PLAINTEXT  # plain without a PIN: warned
    refused = with_overrides(plain, pin="482913", trust_new=True)
    assert refused.verdict is Verdict.MISMATCH
    assert "PIN was not sent" in refused.message
    assert "482913" not in refused.message


def test_known_hosts_pins_host_ids_and_addresses_and_reads_the_older_file(
    tmp_path: Path,
) -> None:
    (tmp_path / KNOWN_HOSTS_FILE).write_text(json.dumps({"dev-old": REAL}))
    known = KnownHosts(tmp_path)
    assert known.get("dev-old") == REAL
    assert known.at_address(ADDRESS) is None
    known.pin("dev-grace", readable(ROGUE), ADDRESS)
    again = KnownHosts(tmp_path)
    assert (again.get("dev-old"), again.get("dev-grace")) == (REAL, ROGUE)
    assert again.at_address(ADDRESS) == ROGUE
    assert (tmp_path / KNOWN_HOSTS_FILE).stat().st_mode & 0o777 == 0o600
