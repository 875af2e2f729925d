"""Secure sessions on 127.0.0.1: TLS with a verified host identity, PINs, bans that hold."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from loudsync_tui.config import GuestConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService, HostStartError
from loudsync_tui.protocol import (
    PROTOCOL_VERSION,
    DeviceInfo,
    Error,
    ErrorCode,
    Join,
    Welcome,
    decode,
    encode,
    now_ms,
)
from loudsync_tui.security.certificate import KEY_FILE, client_context, comparison_code, readable
from loudsync_tui.security.trust import KNOWN_HOSTS_FILE
from loudsync_tui.store import AppStore, ConnectionState
from tests.integration.conftest import FAST_HOST
from tests.support.waiting import until, within


@pytest.fixture
async def tls_host(tmp_path: Path) -> AsyncIterator[Any]:
    hosts: list[HostService] = []

    async def make(key_dir: str = "keys-a", **changes: Any) -> HostService:
        config = replace(FAST_HOST, tls=True, key_dir=str(tmp_path / key_dir), **changes)
        host = HostService(config, AppStore())
        await host.start()
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        await host.aclose()


@pytest.fixture
async def guests(tmp_path: Path) -> AsyncIterator[Any]:
    made: list[GuestService] = []

    def make(address: str, device_id: str = "dev-ada", **changes: Any) -> GuestService:
        config = GuestConfig(
            address=address,
            name="Ada",
            device_id=device_id,
            connect_timeout=2.0,
            reconnect_attempts=1,
            reconnect_delay=0.05,
            trust_dir=str(tmp_path / "guest"),
        )
        service = GuestService(replace(config, **changes), AppStore())
        service.start()
        made.append(service)
        return service

    yield make
    for service in made:
        await service.aclose()


async def _connected(guest: GuestService) -> None:
    await until(
        guest.store,
        lambda s: s.guest is not None and s.guest.connection is ConnectionState.CONNECTED,
    )


async def _raw_join(port: int, device_id: str, pin: str | None = None) -> tuple[Any, int | None]:
    """JOIN over TLS as a client that knows only the wire format; (first reply, close code)."""
    async with connect(f"wss://127.0.0.1:{port}/", ssl=client_context()) as ws:
        join = Join(
            timestamp=now_ms(),
            session_id="sess1",
            protocol_version=PROTOCOL_VERSION,
            device=DeviceInfo(device_id, "Raw", "raw"),
            pin=pin,
        )
        await ws.send(encode(join))
        reply = decode(await ws.recv())
        if isinstance(reply, Welcome):
            return reply, None
        await ws.wait_closed()
        rcvd = ws.protocol.close_rcvd
        return reply, None if rcvd is None else rcvd.code


async def test_guest_verifies_and_pins_a_tls_host(
    tls_host: Any, guests: Any, tmp_path: Path
) -> None:
    host: HostService = await tls_host()
    assert host.url.startswith("wss://")
    assert host.fingerprint is not None
    guest: GuestService = guests(f"127.0.0.1:{host.port}", trust_new=True)
    await _connected(guest)
    state = guest.store.get().guest
    assert state is not None
    assert state.encrypted is True
    assert state.fingerprint == host.fingerprint
    pins = json.loads((tmp_path / "guest" / KNOWN_HOSTS_FILE).read_text())
    assert pins == {
        "hosts": {"host-grace": host.fingerprint},
        "addresses": {f"127.0.0.1:{host.port}": host.fingerprint},
    }


async def test_first_contact_by_address_asks_before_going_on(tls_host: Any, guests: Any) -> None:
    host: HostService = await tls_host()
    guest: GuestService = guests(f"127.0.0.1:{host.port}")
    end = await within(guest.wait_ended())
    assert end.code == "untrusted"
    state = guest.store.get().guest
    assert state is not None
    assert state.trust_question is not None
    assert readable(host.fingerprint or "") in state.trust_question
    assert len(host.core.members) == 1  # nobody joined before the user decided


async def test_a_fingerprint_the_user_gave_is_trusted_without_asking(
    tls_host: Any, guests: Any
) -> None:
    host: HostService = await tls_host()
    guest: GuestService = guests(
        f"127.0.0.1:{host.port}", expected_fingerprint=readable(host.fingerprint or "")
    )
    await _connected(guest)


async def test_an_advertised_fingerprint_alone_still_asks_naming_the_host(
    tls_host: Any, guests: Any
) -> None:
    """Anyone on the LAN can announce a session with their own fp: a match is no proof."""
    host: HostService = await tls_host()
    fingerprint = host.fingerprint or ""
    guest: GuestService = guests(f"127.0.0.1:{host.port}", advertised_fingerprint=fingerprint)
    end = await within(guest.wait_ended())
    assert end.code == "untrusted"
    state = guest.store.get().guest
    assert state is not None
    assert state.trust_changed is False
    assert state.fingerprint == fingerprint
    question = state.trust_question or ""
    assert comparison_code(fingerprint) in question
    assert "Grace's session “Test session”" in question
    assert "host-grace" not in question
    assert len(host.core.members) == 1


async def test_impostor_with_another_certificate_is_refused_loudly(
    tls_host: Any, guests: Any
) -> None:
    real: HostService = await tls_host("keys-real")
    first: GuestService = guests(f"127.0.0.1:{real.port}", trust_new=True)
    await _connected(first)
    await first.aclose()
    port = real.port
    await real.aclose()

    impostor: HostService = await tls_host("keys-impostor", port=port, port_tries=1)
    assert impostor.fingerprint != real.fingerprint
    second: GuestService = guests(f"127.0.0.1:{port}", trust_new=True)
    end = await within(second.wait_ended())
    assert end.code == "untrusted"
    assert "does not match the one pinned for this host" in end.reason
    assert len(impostor.core.members) == 1  # nothing reached the impostor's session

    # Only an explicit choice replaces the pin, and only for the fingerprint shown.
    third: GuestService = guests(
        f"127.0.0.1:{port}",
        replace_pin=True,
        expected_fingerprint=impostor.fingerprint,
    )
    await _connected(third)


async def test_advertised_fingerprint_that_differs_is_refused(tls_host: Any, guests: Any) -> None:
    host: HostService = await tls_host()
    guest: GuestService = guests(f"127.0.0.1:{host.port}", advertised_fingerprint="ab" * 32)
    end = await within(guest.wait_ended())
    assert end.code == "untrusted"
    assert "advertised" in end.reason
    state = guest.store.get().guest
    assert state is not None
    assert state.fingerprint is None  # nothing the user could accept: refused outright


async def test_pinned_host_that_turns_plaintext_is_refused(tls_host: Any, guests: Any) -> None:
    host: HostService = await tls_host()
    first: GuestService = guests(f"127.0.0.1:{host.port}", trust_new=True)
    await _connected(first)
    await first.aclose()
    port = host.port
    await host.aclose()
    plain = HostService(replace(FAST_HOST, port=port, port_tries=1), AppStore())
    await plain.start()
    try:
        guest: GuestService = guests(f"127.0.0.1:{port}", trust_new=True)
        end = await within(guest.wait_ended())
        assert end.code == "untrusted"
        assert "unencrypted" in end.reason
    finally:
        await plain.aclose()


async def test_plain_sessions_still_work_and_the_guest_is_warned(guests: Any) -> None:
    plain = HostService(FAST_HOST, AppStore())
    await plain.start()
    try:
        assert plain.url.startswith("ws://")
        guest: GuestService = guests(f"127.0.0.1:{plain.port}")
        await _connected(guest)
        state = guest.store.get()
        assert state.guest is not None
        assert state.guest.encrypted is False
        assert any("not encrypted" in e.text for e in state.log)
    finally:
        await plain.aclose()


async def test_key_file_is_owner_only(tls_host: Any, tmp_path: Path) -> None:
    await tls_host("keys-mode")
    mode = stat.S_IMODE((tmp_path / "keys-mode" / KEY_FILE).stat().st_mode)
    assert mode == 0o600


async def test_pin_is_required_checked_and_guessing_is_limited(tls_host: Any) -> None:
    host: HostService = await tls_host(pin="4821")
    reply, code = await _raw_join(host.port, "dev-nopin")
    assert isinstance(reply, Error)
    assert reply.code is ErrorCode.UNAUTHORIZED
    assert code == 4001
    for attempt in range(4):  # five wrong PINs in all, counting the missing one
        reply, code = await _raw_join(host.port, f"dev-guess-{attempt}", pin=f"000{attempt}")
        assert isinstance(reply, Error)
        assert (reply.code, code) == (ErrorCode.UNAUTHORIZED, 4001)
    reply, code = await _raw_join(host.port, "dev-guess-6", pin="4821")
    assert isinstance(reply, Error)
    assert (reply.code, code) == (ErrorCode.RATE_LIMITED, 4001)
    assert len(host.core.members) == 1


async def test_right_pin_joins_and_a_changed_pin_keeps_members(tls_host: Any, guests: Any) -> None:
    host: HostService = await tls_host(pin="")
    pin = host.core.pin
    assert pin is not None
    assert len(pin) == 6
    assert pin.isdigit()
    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.pin == pin

    without: GuestService = guests(f"127.0.0.1:{host.port}", trust_new=True, device_id="dev-x")
    end = await within(without.wait_ended())
    assert end.code == "pin"

    member: GuestService = guests(f"127.0.0.1:{host.port}", trust_new=True, pin=pin)
    await _connected(member)
    host.set_pin("9999")
    late: GuestService = guests(
        f"127.0.0.1:{host.port}", trust_new=True, pin=pin, device_id="dev-late"
    )
    end = await within(late.wait_ended())
    assert end.code == "pin"
    state = member.store.get().guest
    assert state is not None
    assert state.connection is ConnectionState.CONNECTED
    assert {m.id for m in host.core.members} == {"host-grace", "dev-ada"}


async def test_bad_pin_option_is_a_clear_error(tls_host: Any) -> None:
    with pytest.raises(HostStartError, match="at least 4 digits"):
        await tls_host(pin="12")


async def test_kicked_device_and_address_stay_out_until_the_ban_is_lifted(
    tls_host: Any,
) -> None:
    host: HostService = await tls_host()
    reply, _ = await _raw_join(host.port, "dev-v")
    assert isinstance(reply, Welcome)
    host.kick("dev-v", ban_address=True)
    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.banned == {"dev-v"}
    assert hosting.banned_addresses == {"127.0.0.1"}

    reply, code = await _raw_join(host.port, "dev-other")  # same address, another device
    assert isinstance(reply, Error)
    assert (reply.code, code) == (ErrorCode.UNAUTHORIZED, 4001)
    host.lift_ban("127.0.0.1")
    reply, code = await _raw_join(host.port, "dev-v")  # the device itself is still banned
    assert isinstance(reply, Error)
    assert reply.code is ErrorCode.UNAUTHORIZED
    host.lift_ban("dev-v")
    reply, _ = await _raw_join(host.port, "dev-v")
    assert isinstance(reply, Welcome)
    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.banned == frozenset()
    assert hosting.banned_addresses == frozenset()


# Impostors and PINs -----------------------------------------------------------------


def _frames(host: HostService) -> list[str | bytes]:
    """Every frame `host`'s core receives from now on (a JOIN would carry the PIN)."""
    seen: list[str | bytes] = []
    received = host.core.received

    def record(conn: Any, data: str | bytes) -> Any:
        seen.append(data)
        return received(conn, data)

    host.core.received = record  # type: ignore[method-assign]
    return seen


async def _pinned_then_gone(tls_host: Any, guests: Any) -> int:
    """A TLS host with a PIN the guest met and pinned; it stops and frees its port."""
    real: HostService = await tls_host("keys-real", pin="4821")
    first: GuestService = guests(f"127.0.0.1:{real.port}", trust_new=True, pin="4821")
    await _connected(first)
    await first.aclose()
    port = real.port
    await real.aclose()
    return port


async def test_a_plain_impostor_with_a_new_host_id_at_a_pinned_address_never_gets_the_pin(
    tls_host: Any, guests: Any
) -> None:
    port = await _pinned_then_gone(tls_host, guests)
    impostor = HostService(
        replace(FAST_HOST, host_id="host-rogue", port=port, port_tries=1), AppStore()
    )
    await impostor.start()
    frames = _frames(impostor)
    try:
        guest: GuestService = guests(f"127.0.0.1:{port}", trust_new=True, pin="4821")
        end = await within(guest.wait_ended())
        assert end.code == "untrusted"
        assert "unencrypted" in end.reason
        assert f"pinned for 127.0.0.1:{port}" in end.reason
        assert frames == []  # not even a connection: no JOIN, no PIN
        assert len(impostor.core.members) == 1
    finally:
        await impostor.aclose()


async def test_a_tls_impostor_with_a_new_host_id_at_a_pinned_address_is_refused(
    tls_host: Any, guests: Any
) -> None:
    port = await _pinned_then_gone(tls_host, guests)
    impostor: HostService = await tls_host(
        "keys-impostor", host_id="host-rogue", port=port, port_tries=1
    )
    frames = _frames(impostor)
    guest: GuestService = guests(f"127.0.0.1:{port}", trust_new=True, pin="4821")
    end = await within(guest.wait_ended())
    assert end.code == "untrusted"
    assert f"pinned for 127.0.0.1:{port}" in end.reason
    state = guest.store.get().guest
    assert state is not None
    assert state.trust_changed is True  # the loud question, not the routine first meeting
    assert frames == []


async def test_a_given_fingerprint_refuses_a_plain_impostor_before_the_pin_is_sent(
    guests: Any,
) -> None:
    impostor = HostService(FAST_HOST, AppStore())
    await impostor.start()
    frames = _frames(impostor)
    try:
        guest: GuestService = guests(
            f"127.0.0.1:{impostor.port}", expected_fingerprint="ab" * 32, pin="482913"
        )
        end = await within(guest.wait_ended())
        assert end.code == "untrusted"
        assert "unencrypted" in end.reason
        assert frames == []
    finally:
        await impostor.aclose()


async def test_a_pin_is_never_sent_to_a_plain_host(guests: Any) -> None:
    plain = HostService(FAST_HOST, AppStore())
    await plain.start()
    frames = _frames(plain)
    try:
        guest: GuestService = guests(f"127.0.0.1:{plain.port}", pin="482913")
        end = await within(guest.wait_ended())
        assert end.code == "untrusted"
        assert "PIN was not sent" in end.reason
        assert frames == []
    finally:
        await plain.aclose()


async def test_a_plain_host_refuses_a_pin() -> None:
    host = HostService(replace(FAST_HOST, pin="4821"), AppStore())
    with pytest.raises(HostStartError, match="PIN needs TLS"):
        await host.start()


async def test_the_host_hands_out_no_tls_session_tickets(tls_host: Any) -> None:
    """Guests never resume a TLS session: tickets would be work and bytes for nothing."""
    host = await tls_host()
    async with connect(f"wss://127.0.0.1:{host.port}/", ssl=client_context()) as ws:
        await ws.send("not json")  # read past the handshake, where tickets would come
        assert "INVALID_MESSAGE" in str(await ws.recv())
        ssl_object = ws.transport.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.3"
        assert ssl_object.session is not None
        assert not ssl_object.session.has_ticket
