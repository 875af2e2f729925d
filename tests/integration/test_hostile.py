"""Hostile input against a running host: arbitrary frames (hypothesis), then raw TCP
garbage, slowloris, connections that never JOIN, oversized frames and a PING flood.

The host must never crash, a watching member must be unaffected, each bad frame must get
`ERROR INVALID_MESSAGE` or a close with a documented code, and each abuse must be cut
off within its documented limit while a guest joining meanwhile still gets in within 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import (
    MESSAGE_TYPES,
    Error,
    ErrorCode,
    Heartbeat,
    Join,
    Leave,
    MemberJoined,
    MemberLeft,
    MemberList,
    MemberUpdated,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Welcome,
    decode,
    encode,
    now_ms,
    type_name,
)
from loudsync_tui.store import AppState, ConnectionState
from tests.integration.conftest import GuestFactory, HostFactory
from tests.support.raw import RawGuest
from tests.support.waiting import eventually, until
from tests.support.wire import WireClient

EXAMPLES = int(os.environ.get("LOUDSYNC_HOSTILE_EXAMPLES", "50"))
"""Examples per hypothesis test; raise it for a longer run."""
FRAME_LIMIT = 64 * 1024
JOIN_TIMEOUT = 1.0
HOSTILE_HOST = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.5, "join_timeout": JOIN_TIMEOUT}
FANOUT = (MemberJoined, MemberLeft, MemberUpdated)
"""What the host tells every member about the others; not an answer to the attacker."""

Kind = Literal["text", "binary", "bad-utf8"]


@dataclass(frozen=True)
class Frame:
    kind: Kind
    data: bytes

    @property
    def too_big(self) -> bool:
        return len(self.data) > FRAME_LIMIT


# Strategies --------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.text(max_size=40)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
_types = st.sampled_from([type_name(t) for t in MESSAGE_TYPES]) | _json
_fields = st.sampled_from(
    [
        "timestamp",
        "sessionId",
        "protocolVersion",
        "device",
        "resumeToken",
        "reason",
        "latency",
        "members",
        "member",
        "code",
        "message",
    ]
)
_device = st.fixed_dictionaries(
    {"id": _json | st.text(max_size=200), "name": _json | st.text(), "type": _json}
)
_messages = st.builds(
    lambda kind, fields, device: {
        "type": kind,
        **fields,
        **({"device": device} if device is not None else {}),
    },
    _types,
    st.dictionaries(_fields, _json | st.integers(min_value=-1, max_value=2**53), max_size=6),
    st.none() | _device,
)
_huge = st.builds(
    lambda kind, field, n: {"type": kind, "timestamp": 1, field: "x" * n},
    st.sampled_from(["LEAVE", "PING", "JOIN", "HEARTBEAT"]),
    st.sampled_from(["reason", "sessionId", "latency", "padding"]),
    st.integers(min_value=1000, max_value=100_000),
)
_nested = st.builds(
    lambda depth, opener: (
        '{"type": "PING", "timestamp": 1, "x": '
        + opener * depth
        + ("]" if opener == "[" else "}") * depth
        + "}"
    ),
    st.integers(min_value=50, max_value=20_000),
    st.sampled_from(["[", '{"a":']),
).map(lambda s: s.replace('{"a":}', '{"a":1}') if '{"a":}' in s else s)


def _text_frame(value: object) -> Frame:
    return Frame("text", json.dumps(value, allow_nan=True).encode())


frames = st.one_of(
    _json.map(_text_frame),
    _messages.map(_text_frame),
    _huge.map(_text_frame),
    _nested.map(lambda s: Frame("text", s.encode())),
    st.text(max_size=200).map(lambda s: Frame("text", s.encode())),
    st.binary(max_size=300).map(lambda b: Frame("binary", b)),
    st.binary(max_size=100).map(lambda b: Frame("bad-utf8", b + b"\xff" + b)),
    st.sampled_from(
        [Frame("text", encode(Ping(timestamp=1)).encode()), Frame("text", b'{"type": "JOIN"}')]
    ),
)


# The attacker ------------------------------------------------------------------------


async def _answer(raw: RawGuest, timeout: float = 3.0) -> Message | int | None:
    """The next message to the attacker (fan-out skipped), or the close code if it closed."""
    try:
        while True:
            message = await raw.recv(timeout)
            if not isinstance(message, FANOUT):
                return message
    except ConnectionClosed:
        rcvd = raw.ws.protocol.close_rcvd
        return None if rcvd is None else rcvd.code


async def _send(raw: RawGuest, frame: Frame) -> None:
    with contextlib.suppress(ConnectionClosed):
        # A text frame's bytes go out as they are, so "bad-utf8" really is invalid UTF-8.
        await raw.ws.send(frame.data, text=frame.kind != "binary")


def _decoded(frame: Frame) -> Message | None:
    """What the host makes of a text frame: the message, or None if it is invalid."""
    try:
        return decode(frame.data.decode())
    except ProtocolError:
        return None


async def _is_error(raw: RawGuest, code: ErrorCode = ErrorCode.INVALID_MESSAGE) -> None:
    answer = await _answer(raw)
    assert isinstance(answer, Error), answer
    assert answer.code is code, answer


async def _still_open(raw: RawGuest) -> None:
    """The attacker's connection goes on: a PING still gets its PONG."""
    await raw.send(Ping(timestamp=now_ms()))
    assert isinstance(await _answer(raw), Pong)


async def attack(port: int, device_id: str, frame: Frame, joined: bool) -> None:
    """Send `frame` (after a JOIN if `joined`) and check the host's answer against the rules."""
    raw = await RawGuest.connect(port, max_size=None)
    try:
        if joined:
            await raw.join(device_id, "Attacker")
            assert isinstance(await _answer(raw), Welcome)
            assert isinstance(await _answer(raw), MemberList)
        await _send(raw, frame)
        if frame.too_big:
            assert await _answer(raw) == 1009
            return
        if frame.kind == "bad-utf8":
            assert await _answer(raw) == 1007  # websockets refuses invalid UTF-8 text
            return
        message = None if frame.kind == "binary" else _decoded(frame)
        if not joined:
            if isinstance(message, Join):  # a JOIN that happens to be valid: judged as one
                answer = await _answer(raw)
                if isinstance(answer, Welcome):
                    await raw.send(Leave(timestamp=now_ms()))
                    return
                assert isinstance(answer, Error), answer
            else:
                await _is_error(raw)
            assert await _answer(raw) == 4001
            return
        match message:
            case None | Join():
                await _is_error(raw)
            case Heartbeat():
                pass
            case Ping():
                assert isinstance(await _answer(raw), Pong)
            case Leave():
                assert await _answer(raw) == 1000
                return
            case _:  # a host-to-guest message
                await _is_error(raw)
        await _still_open(raw)
        await raw.send(Leave(timestamp=now_ms()))
        assert await _answer(raw) == 1000
    finally:
        await raw.close()


# Fixtures and checks -------------------------------------------------------------------


def _ids(state: AppState) -> set[str]:
    return set(state.guest.members) if state.guest else set()


def _connection(state: AppState) -> ConnectionState | None:
    return state.guest.connection if state.guest else None


async def _watched_host(
    make_host: HostFactory, make_guest: GuestFactory
) -> tuple[HostService, GuestService, set[str], list[ConnectionState | None]]:
    host = await make_host(**HOSTILE_HOST)
    watcher = make_guest(f"127.0.0.1:{host.port}")
    baseline = {"host-grace", watcher.config.device_id}
    await until(
        watcher.store,
        lambda s: _connection(s) is ConnectionState.CONNECTED and _ids(s) == baseline,
    )
    states: list[ConnectionState | None] = []

    def record(new: ConnectionState | None, old: ConnectionState | None) -> None:
        states.append(new)

    watcher.store.subscribe(record, _connection)
    return host, watcher, baseline, states


async def _join_time(port: int, device_id: str) -> float:
    """Seconds from opening a connection to holding WELCOME and MEMBER_LIST; then it leaves."""
    started = time.monotonic()
    raw = await RawGuest.connect(port, open_timeout=2)
    try:
        await raw.join(device_id)
        await raw.recv_type(MemberList, timeout=2)
        took = time.monotonic() - started
        await raw.send(Leave(timestamp=now_ms()))
        assert await raw.closed() == 1000
        return took
    finally:
        await raw.close()


async def _unaffected(
    host: HostService,
    watcher: GuestService,
    baseline: set[str],
    states: list[ConnectionState | None],
) -> None:
    """The watcher never left CONNECTED and sees exactly the members it saw at the start."""
    await until(watcher.store, lambda s: _ids(s) == baseline, timeout=3)
    assert states == []
    assert _connection(watcher.store.get()) is ConnectionState.CONNECTED
    hosting = host.store.get().hosting
    assert hosting is not None
    assert set(hosting.members) == baseline


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Callable[[], None]:
    caplog.set_level(logging.WARNING)

    def check() -> None:
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]

    return check


# Hypothesis: arbitrary frames ----------------------------------------------------------


@pytest.mark.parametrize("joined", [True, False], ids=["after-join", "before-join"])
async def test_arbitrary_frames_get_invalid_message_or_a_documented_close(
    make_host: HostFactory,
    make_guest: GuestFactory,
    no_errors_logged: Callable[[], None],
    joined: bool,
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    loop = asyncio.get_running_loop()
    ids = itertools.count(1)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frame=frames)
    def run(frame: Frame) -> None:
        done = asyncio.run_coroutine_threadsafe(
            attack(host.port, f"atk-{next(ids)}", frame, joined), loop
        )
        done.result(timeout=15)

    await asyncio.to_thread(run)
    assert next(ids) > EXAMPLES  # every example really attacked
    await _unaffected(host, watcher, baseline, states)
    assert await _join_time(host.port, "dev-late") < 1.0
    no_errors_logged()


async def test_a_second_join_and_messages_before_join(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    raw = await RawGuest.connect(host.port)
    await raw.join("atk-twice")
    await raw.recv_type(MemberList)
    await raw.join("atk-twice")
    await _is_error(raw)
    await raw.join("atk-other")
    await _is_error(raw)
    await _still_open(raw)
    await raw.send(Leave(timestamp=now_ms()))
    assert await _answer(raw) == 1000
    for early in (Ping(timestamp=now_ms()), Heartbeat(timestamp=now_ms())):
        raw = await RawGuest.connect(host.port)
        await raw.send(early)
        await _is_error(raw)
        assert await _answer(raw) == 4001
    await _unaffected(host, watcher, baseline, states)


# Abuse with limits -------------------------------------------------------------------


async def test_raw_tcp_garbage_is_cut_off_and_a_guest_still_gets_in(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    rng = random.Random(6)
    clients = [await WireClient.open(host.port) for _ in range(20)]
    try:
        for client in clients:
            await client.send(rng.randbytes(rng.randint(1, 4000)) + b"\r\n\r\n")
        assert await _join_time(host.port, "dev-late") < 1.0
        cut = await asyncio.gather(*(c.wait_closed(timeout=JOIN_TIMEOUT + 1) for c in clients))
        assert max(cut) <= JOIN_TIMEOUT + 0.5, cut
    finally:
        for client in clients:
            client.close()
    await _unaffected(host, watcher, baseline, states)


async def test_slowloris_is_cut_at_the_join_deadline(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    rng = random.Random(7)
    clients = [await WireClient.open(host.port) for _ in range(20)]
    opened = time.monotonic()

    async def dribble(client: WireClient) -> None:
        """Half a request, then one more header line now and then, never the blank line."""
        with contextlib.suppress(ConnectionError, OSError):
            await client.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for n in itertools.count():
                await asyncio.sleep(rng.uniform(0.02, 0.1))  # pacing, not waiting
                await client.send(f"X-Slow-{n}: {'a' * rng.randint(1, 40)}\r\n".encode())

    drippers = [asyncio.create_task(dribble(c)) for c in clients]
    try:
        assert await _join_time(host.port, "dev-late") < 1.0
        cut = await asyncio.gather(*(c.wait_closed(timeout=JOIN_TIMEOUT + 2) for c in clients))
        elapsed = time.monotonic() - opened
        assert elapsed <= JOIN_TIMEOUT + 0.75, (elapsed, cut)
        assert elapsed >= JOIN_TIMEOUT - 0.05  # cut by the deadline, not by an error
    finally:
        for task in drippers:
            task.cancel()
        await asyncio.gather(*drippers, return_exceptions=True)
        for client in clients:
            client.close()
    await _unaffected(host, watcher, baseline, states)


async def test_two_hundred_connections_that_never_join_are_closed_1008(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    clients = await asyncio.gather(*(WireClient.websocket(host.port) for _ in range(200)))
    opened = time.monotonic()
    try:
        await eventually(lambda: host.core.connection_count == 201, timeout=3)
        assert await _join_time(host.port, "dev-late") < 1.0
        codes = await asyncio.gather(*(c.close_code(timeout=JOIN_TIMEOUT + 2) for c in clients))
        elapsed = time.monotonic() - opened
        assert codes == [1008] * 200
        assert elapsed <= JOIN_TIMEOUT + 0.75
        await asyncio.gather(*(c.wait_closed(timeout=3) for c in clients))
    finally:
        for client in clients:
            client.close()
    await until(host.store, lambda s: host.core.connection_count == 1, timeout=3)
    await _unaffected(host, watcher, baseline, states)


async def test_frames_over_the_size_limit_close_1009_and_at_the_limit_do_not(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    at_limit = await RawGuest.connect(host.port)
    await at_limit.join("atk-edge")
    await at_limit.recv_type(MemberList)
    await at_limit.send("x" * FRAME_LIMIT)
    await _is_error(at_limit)
    await _still_open(at_limit)

    joined = await RawGuest.connect(host.port, max_size=None)
    await joined.join("atk-big")
    await joined.recv_type(MemberList)
    early = await RawGuest.connect(host.port, max_size=None)
    await joined.send("x" * (FRAME_LIMIT + 1))
    await early.send(b"\x00" * (4 * FRAME_LIMIT))
    assert await _join_time(host.port, "dev-late") < 1.0
    assert await _answer(joined) == 1009
    assert await _answer(early) == 1009
    await at_limit.send(Leave(timestamp=now_ms()))
    assert await _answer(at_limit) == 1000
    await until(watcher.store, lambda s: "atk-big" not in _ids(s), timeout=5)
    await _unaffected(host, watcher, baseline, states)


async def test_a_ping_flood_is_rate_limited_and_closed_1008(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host, watcher, baseline, states = await _watched_host(make_host, make_guest)
    burst = host.config.rate_burst
    flooder = await RawGuest.connect(host.port)
    await flooder.join("atk-flood")
    await flooder.recv_type(MemberList)
    ping = encode(Ping(timestamp=now_ms()))
    started = time.monotonic()
    for _ in range(burst * 10):
        await _send(flooder, Frame("text", ping.encode()))
    pongs = 0
    while isinstance(answer := await _answer(flooder), Pong):
        pongs += 1
    elapsed = time.monotonic() - started
    assert isinstance(answer, Error), answer
    assert answer.code is ErrorCode.RATE_LIMITED
    assert await _answer(flooder) == 1008
    # The JOIN took one token; the rest of the burst plus what refilled meanwhile.
    assert pongs <= burst + host.config.rate_per_second * elapsed
    assert await _join_time(host.port, "dev-late") < 1.0
    await until(watcher.store, lambda s: "atk-flood" not in _ids(s), timeout=5)
    await _unaffected(host, watcher, baseline, states)
