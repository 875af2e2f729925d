"""Host and guests over real WebSockets on 127.0.0.1: every flow of the protocol."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

import pytest
from websockets.frames import Frame, Opcode

from loudsync_tui.net import server
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService, HostStartError
from loudsync_tui.protocol import (
    ErrorCode,
    Heartbeat,
    Kicked,
    Leave,
    MemberJoined,
    MemberLeft,
    MemberList,
    MemberUpdated,
    Ping,
    Pong,
    SessionClosed,
    Welcome,
    now_ms,
)
from loudsync_tui.store import AppState, ConnectionState
from tests.integration.conftest import GuestFactory, HostFactory
from tests.support.proxy import LinkProxy
from tests.support.raw import RawGuest
from tests.support.waiting import until, within


def _member_ids(state: AppState) -> set[str]:
    return set(state.guest.members) if state.guest else set()


def _host_ids(host: HostService) -> set[str]:
    hosting = host.store.get().hosting
    return set(hosting.members) if hosting else set()


async def _connected(guest: GuestService) -> AppState:
    return await until(
        guest.store,
        lambda s: s.guest is not None and s.guest.connection is ConnectionState.CONNECTED,
    )


async def test_join_flow_welcome_then_member_list_then_member_joined(
    make_host: HostFactory,
) -> None:
    host = await make_host()
    first = await RawGuest.connect(host.port)
    await first.join("dev-a", "Ada")
    welcome = await first.recv()
    assert isinstance(welcome, Welcome)
    assert welcome.client_id == "dev-a"
    assert welcome.session.id == "sess1"
    assert welcome.session.member_count == 2
    assert (welcome.heartbeat_interval, welcome.heartbeat_timeout) == (100, 600)
    members = await first.recv()
    assert isinstance(members, MemberList)
    assert [(m.id, m.is_host) for m in members.members] == [("host-grace", True), ("dev-a", False)]

    second = await RawGuest.connect(host.port)
    await second.join("dev-b", "Bob")
    assert isinstance(await second.recv(), Welcome)
    assert {m.id for m in (await second.recv_type(MemberList)).members} == {
        "host-grace",
        "dev-a",
        "dev-b",
    }
    joined = await first.recv_type(MemberJoined)
    assert joined.member.id == "dev-b"
    assert joined.member.name == "Bob"
    await until(host.store, lambda s: s.hosting is not None and len(s.hosting.members) == 3)
    await first.close()
    await second.close()


async def test_a_message_to_a_crowd_goes_uncompressed_and_the_rest_stay_compressed(
    make_host: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At FRAMED_ONCE_FROM targets or more the host skips deflate (`fanout.send_to_all`); a
    guest's context must survive the skip, so what follows still inflates."""
    monkeypatch.setattr(server, "FRAMED_ONCE_FROM", 2)
    host = await make_host()
    first = await RawGuest.joined(host.port, "dev-a", "Ada")
    first.keep_alive()
    (deflate,) = first.ws.protocol.extensions
    seen: dict[str, bool] = {}  # what Ada read: type (and member), compressed or not
    decode = deflate.decode

    def spy(frame: Frame, *, max_size: int | None = None) -> Frame:
        plain = decode(frame, max_size=max_size)
        if frame.opcode is Opcode.TEXT:
            message = json.loads(plain.data)
            seen[message["type"] + message.get("member", {}).get("id", "")] = frame.rsv1
        return plain

    deflate.decode = spy  # type: ignore[method-assign]
    second = await RawGuest.joined(host.port, "dev-b", "Bob")
    second.keep_alive()
    assert (await first.recv_type(MemberJoined)).member.id == "dev-b"  # to Ada alone
    third = await RawGuest.joined(host.port, "dev-c", "Cy")
    third.keep_alive()
    assert (await first.recv_type(MemberJoined)).member.id == "dev-c"  # to Ada and Bob
    await first.send(Ping(timestamp=now_ms()))
    assert isinstance(await first.recv_type(Pong), Pong)  # Ada's own, after the skip
    assert seen["MEMBER_JOINEDdev-b"] is True
    assert seen["MEMBER_JOINEDdev-c"] is False
    assert seen["PONG"] is True
    for guest in (first, second, third):
        await guest.close()


async def test_ping_gets_pong_with_the_four_timestamps(make_host: HostFactory) -> None:
    host = await make_host()
    raw = await RawGuest.joined(host.port, "dev-a")
    sent = now_ms() - 5
    await raw.send(Ping(timestamp=sent, latency=12.5))
    pong = await raw.recv_type(Pong)
    assert pong.ping_timestamp == sent
    assert pong.received_at <= pong.timestamp
    await until(
        host.store,
        lambda s: s.hosting is not None and s.hosting.members["dev-a"].latency == 12.5,
    )
    await raw.close()


async def test_fifty_guests_join_at_once_and_agree_on_the_member_list(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host(max_members=60, heartbeat_timeout=5.0)
    guests = [make_guest(f"127.0.0.1:{host.port}") for _ in range(50)]
    expected = {"host-grace"} | {g.config.device_id for g in guests}
    await until(host.store, lambda s: _host_ids(host) == expected, timeout=15)
    for guest in guests:
        await until(guest.store, lambda s: _member_ids(s) == expected, timeout=15)


async def test_leave_closes_1000_and_tells_the_others(make_host: HostFactory) -> None:
    host = await make_host()
    stayer = await RawGuest.joined(host.port, "dev-stay")
    leaver = await RawGuest.joined(host.port, "dev-leave")
    await leaver.send(Leave(timestamp=now_ms(), reason="bye"))
    assert await leaver.closed() == 1000
    left = await stayer.recv_type(MemberLeft)
    assert (left.member_id, left.reason) == ("dev-leave", "left")
    assert "dev-leave" not in _host_ids(host)


async def test_guest_service_leave_sends_leave(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()
    guest = make_guest(f"127.0.0.1:{host.port}")
    await _connected(guest)
    await guest.aclose()
    end = await within(guest.wait_ended())
    assert end.code == "left"
    state = await until(host.store, lambda s: "dev-1" not in _host_ids(host))
    assert any("left" in entry.text for entry in state.log)


async def test_kick_sends_kicked_closes_4000_bans_and_tells_the_others(
    make_host: HostFactory,
) -> None:
    host = await make_host()
    watcher = await RawGuest.joined(host.port, "dev-w")
    victim = await RawGuest.joined(host.port, "dev-v")
    host.kick("dev-v")
    kicked = await victim.recv_type(Kicked)
    assert kicked.reason
    assert await victim.closed() == 4000
    left = await watcher.recv_type(MemberLeft)
    assert (left.member_id, left.reason) == ("dev-v", "kicked")
    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.banned == {"dev-v"}

    again = await RawGuest.connect(host.port)
    await again.join("dev-v")
    error = await again.recv()
    assert getattr(error, "code", None) is ErrorCode.UNAUTHORIZED
    assert await again.closed() == 4001


async def test_kicked_guest_service_ends_without_retrying(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()
    guest = make_guest(f"127.0.0.1:{host.port}")
    await _connected(guest)
    host.kick("dev-1")
    end = await within(guest.wait_ended())
    assert end.code == "kicked"
    assert "removed by the host" in end.reason
    state = guest.store.get()
    assert state.guest is not None
    assert state.guest.connection is ConnectionState.DISCONNECTED


async def test_host_stop_sends_session_closed_and_closes_1001(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()
    raw = await RawGuest.joined(host.port, "dev-raw")
    services = [make_guest(f"127.0.0.1:{host.port}") for _ in range(3)]
    for guest in services:
        await _connected(guest)
    host.stop()
    closed = await raw.recv_type(SessionClosed)
    assert closed.reason
    assert await raw.closed() == 1001
    for guest in services:
        end = await within(guest.wait_ended())
        assert end.code == "closed"
    await within(host.wait_closed())
    assert host.store.get().hosting is None
    with pytest.raises(ConnectionRefusedError):
        await RawGuest.connect(host.port, open_timeout=1)


async def test_frozen_link_times_out_4002_and_others_see_timeout(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()
    watcher = await RawGuest.joined(host.port, "dev-w")
    watcher.keep_alive()
    proxy = await LinkProxy(host.port).start()
    try:
        frozen = make_guest(proxy.address, reconnect_attempts=0)
        await _connected(frozen)
        proxy.freeze()
        left = await watcher.recv_type(MemberLeft, timeout=5)
        assert (left.member_id, left.reason) == ("dev-1", "timeout")
    finally:
        await proxy.close()


async def test_dropped_link_resumes_as_the_same_member(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host(heartbeat_timeout=3.0)
    watcher = await RawGuest.joined(host.port, "dev-w")
    proxy = await LinkProxy(host.port).start()
    try:
        guest = make_guest(proxy.address, reconnect_delay=0.3)
        await _connected(guest)
        # A PONG means the host heard the guest after WELCOME, so it holds the place.
        await until(guest.store, lambda s: s.guest is not None and s.guest.latency is not None)
        await watcher.recv_type(MemberJoined)
        hosting = host.store.get().hosting
        assert hosting is not None
        joined_at = hosting.members["dev-1"].joined_at
        token = guest.core.resume_token if guest.core else None

        proxy.cut()
        await until(
            guest.store,
            lambda s: s.guest is not None and s.guest.connection is ConnectionState.RECONNECTING,
        )
        await until(
            host.store,
            lambda s: (
                s.hosting is not None
                and s.hosting.members["dev-1"].status == "connected"
                and len(host.core.members) == 3
                and host.core.connection_count == 2
            ),
        )
        state = await _connected(guest)
        assert state.guest is not None
        assert state.guest.attempt == 0
        assert guest.core is not None
        assert guest.core.resume_token == token
        hosting = host.store.get().hosting
        assert hosting is not None
        assert hosting.members["dev-1"].joined_at == joined_at
        # The watcher saw the status change but never a leave or a second join.
        seen: list[object] = []
        while True:
            try:
                seen.append(await watcher.recv(timeout=0.5))
            except TimeoutError:
                break
        assert not any(isinstance(m, MemberLeft | MemberJoined) for m in seen)
        statuses = [
            m.connection_status
            for msg in seen
            if isinstance(msg, MemberUpdated)
            for m in msg.members
            if m.id == "dev-1"
        ]
        assert "reconnecting" in statuses
        assert statuses[-1] == "connected"
    finally:
        await proxy.close()


async def test_drop_without_resume_is_member_left_disconnected(make_host: HostFactory) -> None:
    host = await make_host()
    watcher = await RawGuest.joined(host.port, "dev-w")
    watcher.keep_alive()
    gone = await RawGuest.joined(host.port, "dev-gone")
    gone.ws.transport.abort()
    left = await watcher.recv_type(MemberLeft)
    assert (left.member_id, left.reason) == ("dev-gone", "disconnected")


async def test_stolen_device_id_without_token_is_already_joined(make_host: HostFactory) -> None:
    host = await make_host()
    owner = await RawGuest.joined(host.port, "dev-x")
    thief = await RawGuest.connect(host.port)
    await thief.join("dev-x", resume_token="guessed")
    error = await thief.recv()
    assert getattr(error, "code", None) is ErrorCode.ALREADY_JOINED
    assert await thief.closed() == 4001
    await owner.send(Heartbeat(timestamp=now_ms()))
    await owner.send(Ping(timestamp=now_ms()))
    assert isinstance(await owner.recv_type(Pong), Pong)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"session_id": "wrong"}, ErrorCode.SESSION_NOT_FOUND),
        ({"version": 99}, ErrorCode.VERSION_MISMATCH),
    ],
)
async def test_refused_joins(make_host: HostFactory, kwargs: dict[str, object], code: str) -> None:
    host = await make_host()
    raw = await RawGuest.connect(host.port)
    await raw.join("dev-a", **kwargs)  # type: ignore[arg-type]
    error = await raw.recv()
    assert getattr(error, "code", None) == code
    assert await raw.closed() == 4001


async def test_full_session_refuses_and_the_guest_does_not_retry(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host(max_members=2)
    first = make_guest(f"127.0.0.1:{host.port}")
    await _connected(first)
    second = make_guest(f"127.0.0.1:{host.port}")
    end = await within(second.wait_ended())
    assert end.code == "refused"
    assert end.reason == "Join refused: session is full (2 of 2 members)"
    assert second.core is not None
    assert second.core.attempt == 0
    state = second.store.get().guest
    assert state is not None
    assert state.connection is ConnectionState.DISCONNECTED
    assert sum("Refused" in e.text for e in host.store.get().log) == 1


async def test_no_join_in_time_closes_1008(make_host: HostFactory) -> None:
    host = await make_host(join_timeout=0.3)
    raw = await RawGuest.connect(host.port)
    assert await raw.closed() == 1008


async def test_frame_over_64k_closes_1009(make_host: HostFactory) -> None:
    host = await make_host()
    raw = await RawGuest.joined(host.port, "dev-a")
    await raw.send("x" * (64 * 1024 + 1))
    assert await raw.closed() == 1009


async def test_flood_is_rate_limited_then_closed_1008(make_host: HostFactory) -> None:
    host = await make_host()
    raw = await RawGuest.joined(host.port, "dev-a")
    text = json.dumps({"type": "HEARTBEAT", "timestamp": now_ms()})
    for _ in range(80):
        await raw.send(text)
    codes = []
    try:
        while True:
            message = await raw.recv()
            codes.append(getattr(message, "code", None))
    except Exception:
        pass
    assert ErrorCode.RATE_LIMITED in codes
    assert raw.ws.protocol.close_rcvd is not None
    assert raw.ws.protocol.close_rcvd.code == 1008


async def test_bad_frames_after_join_get_errors_and_the_session_goes_on(
    make_host: HostFactory,
) -> None:
    host = await make_host()
    raw = await RawGuest.joined(host.port, "dev-a")
    for bad in ("not json", '{"type": "NOPE", "timestamp": 1}', b"\x00\x01"):
        await raw.send(bad)
        error = await raw.recv()
        assert getattr(error, "code", None) is ErrorCode.INVALID_MESSAGE
    await raw.send(Ping(timestamp=now_ms()))
    assert isinstance(await raw.recv_type(Pong), Pong)
    assert "dev-a" in _host_ids(host)


async def test_taken_port_moves_to_the_next_one(make_host: HostFactory) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        host = await make_host(port=taken)
        assert host.port != taken
        assert taken < host.port <= taken + 20
        assert any("was taken" in e.text for e in host.store.get().log)
    finally:
        blocker.close()


async def test_no_free_port_in_range_is_a_clear_error(make_host: HostFactory) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        with pytest.raises(HostStartError, match="in use"):
            await make_host(port=blocker.getsockname()[1], port_tries=1)
    finally:
        blocker.close()


async def test_session_info_over_http_and_join_by_address_alone(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()

    def get() -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{host.port}/session", timeout=5) as r:
            assert r.headers["Content-Type"] == "application/json"
            data: dict[str, object] = json.loads(r.read())
            return data

    info = await asyncio.to_thread(get)
    assert info["id"] == "sess1"
    assert info["hostName"] == "Grace"
    guest = make_guest(f"127.0.0.1:{host.port}")
    state = await _connected(guest)
    assert state.guest is not None
    assert state.guest.session_id == "sess1"
    assert state.guest.session_name == "Test session"


async def test_nothing_listening_fails_with_a_clear_reason(make_guest: GuestFactory) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    guest = make_guest(f"127.0.0.1:{port}", session_id="sess1")
    state = await until(
        guest.store,
        lambda s: s.guest is not None and s.guest.connection is ConnectionState.FAILED,
    )
    assert state.guest is not None
    assert state.guest.ended is not None
    assert "nothing is listening" in state.guest.ended


async def test_bad_address_is_refused_with_a_clear_message(make_guest: GuestFactory) -> None:
    guest = make_guest("ws://:99999")
    end = await within(guest.wait_ended())
    assert end.code == "refused"
    assert "address" in end.reason


async def test_host_gone_then_back_failed_then_retry_succeeds(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host(heartbeat_timeout=5.0)
    proxy = await LinkProxy(host.port).start()
    try:
        guest = make_guest(proxy.address, reconnect_attempts=2, reconnect_delay=0.05)
        await _connected(guest)
        proxy.refusing = True
        proxy.cut()
        state = await until(
            guest.store,
            lambda s: s.guest is not None and s.guest.connection is ConnectionState.FAILED,
        )
        assert state.guest is not None
        assert state.guest.ended_code == "failed"
        proxy.refusing = False
        guest.retry()
        state = await _connected(guest)
        assert state.guest is not None
        assert state.guest.ended is None
    finally:
        await proxy.close()


async def test_latency_reaches_the_other_members(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host()
    a = make_guest(f"127.0.0.1:{host.port}")
    b = make_guest(f"127.0.0.1:{host.port}")
    await _connected(a)
    await _connected(b)
    await until(
        b.store,
        lambda s: (
            s.guest is not None
            and "dev-1" in s.guest.members
            and s.guest.members["dev-1"].latency is not None
        ),
    )
    await until(a.store, lambda s: s.guest is not None and s.guest.latency is not None)
