"""The session clock over real sockets on 127.0.0.1: a guest learns the host's clock from
the four timestamps of its PINGs. Host and guest share this process's monotonic clock,
so the true offset is known: minus the host's session start."""

from __future__ import annotations

from loudsync_tui.store import AppState
from tests.integration.conftest import GuestFactory, HostFactory
from tests.support.waiting import until


def _samples(state: AppState) -> int:
    clock = state.guest.clock if state.guest is not None else None
    return 0 if clock is None else clock.samples


async def test_a_guest_knows_the_session_clock_within_a_second_of_joining(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()
    guest = make_guest(f"127.0.0.1:{host.port}")
    state = await until(guest.store, lambda s: _samples(s) >= 20, timeout=10)
    assert state.guest is not None
    estimate = state.guest.clock
    assert estimate is not None
    truth = -host.core.started_us
    # A correctness bound, generous for a loaded CI machine; benchmarks.clock measures.
    assert abs(estimate.offset_us - truth) < 5_000, (estimate, truth)
    assert 0 < estimate.uncertainty_us < 5_000
    assert estimate.rtt_us >= 0
    # The guest told the host how well it knows the clock; the host's table shows it.
    hosting = await until(
        host.store,
        lambda s: (
            s.hosting is not None
            and any(m.clock_uncertainty_us is not None for m in s.hosting.members.values())
        ),
        timeout=10,
    )
    assert hosting.hosting is not None
