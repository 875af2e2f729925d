"""The one function from a host core's effects to the store's state."""

from __future__ import annotations

from types import MappingProxyType

from loudsync_tui.config import HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.effects import Log, PinChanged, Send
from loudsync_tui.core.host import HostSession
from loudsync_tui.protocol import DeviceInfo, Heartbeat, Join, encode
from loudsync_tui.store import AppState, HostingState, member_from_info, reduce_host

T = 1_764_086_400_000


def hosting(core: HostSession) -> AppState:
    """The state a host service starts with: the session and the host's own row."""
    info = core.session_info()
    members = MappingProxyType({m.id: member_from_info(m, "host") for m in core.members})
    state = HostingState(
        info.id, info.name, info.host_id, info.host_name, "10.0.0.1:8080", 8080, 10, members
    )
    return AppState(hosting=state)


def test_a_real_core_s_join_kick_and_pin_land_in_the_state_by_one_function() -> None:
    core = HostSession(
        HostConfig("Friday", "Grace", "dev-host", allow_unproven=True), "s1", ManualClock()
    )
    state = hosting(core)
    core.connected(1, "10.0.0.7:5000")
    join = Join(
        timestamp=T,
        session_id="s1",
        protocol_version=1,
        device=DeviceInfo("dev-a", "Ada", "laptop"),
    )
    state = reduce_host(state, core.received(1, encode(join)), T)
    assert state.hosting is not None
    row = state.hosting.members["dev-a"]
    assert (row.name, row.device_type, row.address) == ("Ada", "laptop", "10.0.0.7")
    core.received(1, encode(Heartbeat(timestamp=T)))
    state = reduce_host(state, core.kick("dev-a", ban_address=True), T)
    assert state.hosting is not None
    assert "dev-a" not in state.hosting.members
    assert state.hosting.banned == {"dev-a"}
    assert state.hosting.banned_addresses == {"10.0.0.7"}
    assert dict(state.hosting.ban_names) == {"dev-a": "Ada", "10.0.0.7": "Ada"}
    state = reduce_host(state, core.set_pin("4321"), T)
    assert state.hosting is not None
    assert state.hosting.pin == "4321"
    assert [e.text for e in state.log] == [
        "Ada joined from 10.0.0.7:5000",
        "Ada was removed by the host",
        "PIN changed",
    ]


def test_socket_effects_change_nothing_and_a_log_survives_the_session() -> None:
    state = AppState()
    assert reduce_host(state, [Send(1, Heartbeat(timestamp=T))], T) is state
    after = reduce_host(state, [PinChanged("1234"), Log("info", "Session closed: bye")], T)
    assert after.hosting is None
    assert [e.text for e in after.log] == ["Session closed: bye"]
