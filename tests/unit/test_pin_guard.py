"""The wrong-PIN tracker: it limits guessing per address and forgets what it no longer needs."""

from __future__ import annotations

from loudsync_tui.config import HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.host import HostSession
from loudsync_tui.protocol import DeviceInfo, Join, encode
from loudsync_tui.security.pin import WRONG_PIN_LIMIT, WRONG_PIN_WINDOW, PinGuard


def test_the_limit_blocks_within_the_window_and_lifts_after_it() -> None:
    guard = PinGuard()
    for i in range(WRONG_PIN_LIMIT):
        assert not guard.blocked("10.0.0.1", float(i))
        guard.failed("10.0.0.1", float(i))
    assert guard.blocked("10.0.0.1", 10.0)
    assert not guard.blocked("10.0.0.2", 10.0)
    assert not guard.blocked("10.0.0.1", WRONG_PIN_LIMIT - 1 + WRONG_PIN_WINDOW)


def test_a_sweep_forgets_every_address_whose_failures_left_the_window() -> None:
    guard = PinGuard()
    for i in range(200_000):
        guard.failed(f"2001:db8::{i:x}", 0.0)
    assert len(guard) == guard.max_addresses  # bounded even before any sweep
    guard.failed("10.0.0.9", 30.0)
    guard.sweep(WRONG_PIN_WINDOW - 1)
    assert len(guard) == guard.max_addresses  # nothing has expired yet
    guard.sweep(WRONG_PIN_WINDOW)
    assert len(guard) == 1  # only the address that failed later is left
    guard.sweep(30.0 + WRONG_PIN_WINDOW)
    assert len(guard) == 0


def test_past_the_cap_the_address_that_failed_least_recently_goes_first() -> None:
    guard = PinGuard(max_addresses=3)
    for name in ("a", "b", "c"):
        for _ in range(WRONG_PIN_LIMIT):
            guard.failed(name, 1.0)
    guard.failed("a", 2.0)  # a failed again: now b is the least recent
    guard.failed("d", 3.0)
    assert guard.blocked("a", 4.0)
    assert not guard.blocked("b", 4.0)
    assert guard.blocked("c", 4.0)
    assert len(guard) == 3


def _wrong_pin_join(session: HostSession, conn: int, ip: str) -> None:
    session.connected(conn, f"[{ip}]:5000")
    join = Join(
        timestamp=0,
        session_id="s1",
        protocol_version=1,
        device=DeviceInfo(f"dev-{conn}", "Guesser", "raw"),
        pin="000000",
    )
    session.received(conn, encode(join))
    session.disconnected(conn)


def test_the_host_tick_sweeps_the_addresses_of_old_wrong_pins() -> None:
    clock = ManualClock()
    config = HostConfig(
        session_name="s", host_name="Grace", host_id="dev-host", pin="482913", allow_unproven=True
    )  # unproven guessers: the identity-proof check comes before the PIN
    session = HostSession(config, "s1", clock)
    for i in range(1, 501):
        _wrong_pin_join(session, i, f"2001:db8::{i:x}")
    guard = session._pin_guard
    assert len(guard) == 500
    clock.advance(WRONG_PIN_WINDOW + 1)
    session.tick()
    assert len(guard) == 0
