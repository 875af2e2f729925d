"""The guest core's first phases, on the fake clock: asking the host who it is, deciding
whether to trust it, and retrying a lookup that failed. Nothing reaches the host before
the decision says yes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from loudsync_tui.config import GuestConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.effects import Log
from loudsync_tui.core.guest import GuestSession
from loudsync_tui.core.guest_effects import (
    Connect,
    ConnectionState,
    Ended,
    GuestEffect,
    HostFacts,
    LookUpHost,
    PinHost,
    SecurityKnown,
    StateChanged,
    Transmit,
)

FP = "ab" * 32
OTHER = "cd" * 32
ADDRESS = "10.0.0.5:8080"
TLS_HOST = HostFacts("sess1", "dev-host", "Friday", "Grace", ADDRESS, True, FP)
PLAIN = replace(TLS_HOST, tls=False, fingerprint=None)
E = TypeVar("E")


def guest(**config: Any) -> GuestSession:
    cfg = replace(GuestConfig(ADDRESS, "Ada", "dev-a"), **config)
    core = GuestSession(cfg, None, ManualClock())
    assert core.start() == [StateChanged(ConnectionState.CONNECTING, 0, 3), LookUpHost()]
    return core


def of(effects: list[GuestEffect], kind: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]


def test_a_first_seen_tls_host_is_a_question_and_nothing_is_sent() -> None:
    core = guest()
    effects = core.host_answered(TLS_HOST)
    (ended,) = of(effects, Ended)
    assert ended.code == "untrusted"
    assert ended.question is not None
    assert "First connection to Grace's session “Friday”" in ended.question
    assert ended.fingerprint == FP  # the user may accept this one
    assert not ended.changed
    assert of(effects, Connect) == []
    assert of(effects, Transmit) == []
    assert of(effects, PinHost) == []


def test_a_pinned_match_pins_shows_the_fingerprint_and_connects_over_tls() -> None:
    core = guest()
    effects = core.host_answered(replace(TLS_HOST, pinned=FP))
    assert of(effects, PinHost) == [PinHost("dev-host", FP, ADDRESS)]
    assert of(effects, SecurityKnown) == [SecurityKnown(encrypted=True, fingerprint=FP)]
    assert of(effects, Connect) == [Connect(tls=True, fingerprint=FP)]
    assert core.session_id == "sess1"  # named by the host


def test_trust_new_accepts_a_first_meeting() -> None:
    core = guest(trust_new=True)
    effects = core.host_answered(TLS_HOST)
    assert of(effects, Connect) == [Connect(tls=True, fingerprint=FP)]
    assert of(effects, PinHost) == [PinHost("dev-host", FP, ADDRESS)]


def test_a_changed_pin_is_a_loud_question_unless_the_user_replaces_it() -> None:
    core = guest()
    (ended,) = of(core.host_answered(replace(TLS_HOST, pinned=OTHER)), Ended)
    assert ended.code == "untrusted"
    assert ended.changed
    assert ended.level == "error"
    replaced = guest(replace_pin=True, expected_fingerprint=FP)
    effects = replaced.host_answered(replace(TLS_HOST, pinned=OTHER))
    assert of(effects, Connect) == [Connect(tls=True, fingerprint=FP)]
    assert any("Replaced the pinned fingerprint" in e.text for e in of(effects, Log))


def test_another_identity_at_a_pinned_address_is_refused_whatever_id_it_claims() -> None:
    core = guest()
    impostor = replace(TLS_HOST, host_id="dev-new", fingerprint=OTHER, pinned_at_address=FP)
    (ended,) = of(core.host_answered(impostor), Ended)
    assert ended.code == "untrusted"
    assert ended.changed
    plain = guest()
    (ended,) = of(plain.host_answered(replace(PLAIN, pinned_at_address=FP)), Ended)
    assert "answers unencrypted" in ended.reason
    assert ended.fingerprint is None  # nothing the user could accept


def test_a_plain_host_warns_and_connects_but_never_gets_a_pin() -> None:
    core = guest()
    effects = core.host_answered(PLAIN)
    assert of(effects, SecurityKnown) == [SecurityKnown(encrypted=False, fingerprint=None)]
    assert of(effects, Connect) == [Connect()]
    assert any("not encrypted" in e.text for e in of(effects, Log))
    with_pin = guest(pin="482913")
    effects = with_pin.host_answered(PLAIN)
    assert of(effects, Connect) == []
    (ended,) = of(effects, Ended)
    assert "a PIN is only ever sent inside TLS" in ended.reason


def test_a_failed_lookup_fails_then_retry_asks_again() -> None:
    core = guest()
    effects = core.lookup_failed("nothing is listening at 10.0.0.5:8080")
    assert of(effects, StateChanged) == [StateChanged(ConnectionState.FAILED, 0)]
    assert core.failure == "nothing is listening at 10.0.0.5:8080"
    assert core.ended is None  # the user may retry
    assert core.next_deadline() is None
    assert core.retry() == [StateChanged(ConnectionState.CONNECTING, 0, 3), LookUpHost()]
    assert of(core.host_answered(PLAIN), Connect) == [Connect()]


def test_an_answer_after_leaving_or_a_second_answer_is_ignored() -> None:
    core = guest()
    core.leave()
    assert core.host_answered(PLAIN) == []
    twice = guest()
    twice.host_answered(PLAIN)
    assert twice.host_answered(PLAIN) == []
    assert twice.lookup_failed("late") == []


def test_a_given_session_id_is_kept_and_a_different_one_is_said() -> None:
    cfg = GuestConfig(ADDRESS, "Ada", "dev-a")
    core = GuestSession(cfg, "wanted", ManualClock())
    core.start()
    effects = core.host_answered(PLAIN)
    assert any("hosts 'sess1', not 'wanted'" in e.text for e in of(effects, Log))
    assert core.session_id == "wanted"
