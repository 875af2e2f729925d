"""Remote text is data: hostile names, reasons and mDNS records against real processes.

A name or reason with markup must show literally; one with control characters is refused
at decode (the peer gets ERROR INVALID_MESSAGE) and, where text bypasses the protocol (a
close reason, an mDNS TXT record), it is escaped before it reaches a terminal.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from loudsync_tui.net.discovery import SERVICE_TYPE
from loudsync_tui.protocol import (
    PROTOCOL_VERSION,
    DeviceInfo,
    Error,
    ErrorCode,
    Join,
    Leave,
    MemberList,
    Ping,
    Pong,
    now_ms,
)
from tests.integration.conftest import HostFactory
from tests.support.processes import launch
from tests.support.raw import RawGuest
from tests.support.rogue_host import rogue_host
from tests.support.waiting import until

# Real mDNS on 127.0.0.1 is one shared space: these tests run in one worker, in turn.
pytestmark = pytest.mark.xdist_group("mdns")

TERMINAL_ATTACK = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED"
CLIPBOARD_ATTACK = "bye\x1b]52;c;cHduZWQ=\x07"
FORGED_LINE = "Eve\n[20:48:09] Grace (host) set a new PIN: 000000"
MARKUP_NAMES = ("Eve[/]", "[@click=app.quit]Mallory[/]", "[b]Bold[/b] [/x]")


def join_frame(device_id: str, name: str, device_type: str = "raw", session: str = "sess1") -> Join:
    return Join(
        timestamp=now_ms(),
        session_id=session,
        protocol_version=PROTOCOL_VERSION,
        device=DeviceInfo(device_id, name, device_type),
    )


async def hostile_join(port: int, name: str, session: str = "sess1") -> Error:
    """JOIN with `name` and return the host's answer, which must be an ERROR."""
    raw = await RawGuest.connect(port)
    try:
        await raw.send(join_frame("dev-hostile", name, session=session))
        answer = await raw.recv()
        assert isinstance(answer, Error), answer
        return answer
    finally:
        await raw.close()


# Decode-time refusal against a real host ------------------------------------------------


@pytest.mark.parametrize("name", [TERMINAL_ATTACK, FORGED_LINE, "Eve\u202eevE"])
async def test_a_join_with_a_control_character_is_refused_clearly_and_others_still_join(
    make_host: HostFactory, name: str
) -> None:
    host = await make_host(allow_unproven=True)
    answer = await hostile_join(host.port, name)
    assert answer.code is ErrorCode.INVALID_MESSAGE
    assert answer.message == "JOIN: $.device.name contains a control character"
    ok = await RawGuest.joined(host.port, "dev-ok", "Ada")
    state = await until(host.store, lambda s: "dev-ok" in s.hosting.members)  # type: ignore[union-attr]
    assert "dev-hostile" not in state.hosting.members  # type: ignore[union-attr]
    assert not any("\x1b" in e.text or "\n" in e.text for e in state.log)
    await ok.close()


async def test_a_leave_reason_with_osc52_and_a_newline_is_refused_and_the_member_stays(
    make_host: HostFactory,
) -> None:
    host = await make_host(allow_unproven=True, heartbeat_timeout=3.0)
    raw = await RawGuest.joined(host.port, "dev-eve", "Eve")
    raw.keep_alive()
    await raw.send(Leave(timestamp=now_ms(), reason=f"{CLIPBOARD_ATTACK}\n{FORGED_LINE}"))
    answer = await raw.recv_type(Error)
    assert answer.code is ErrorCode.INVALID_MESSAGE
    assert answer.message == "LEAVE: $.reason contains a control character"
    await raw.send(Ping(timestamp=now_ms()))
    assert isinstance(await raw.recv_type(Pong), Pong)  # the link still works
    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.members["dev-eve"].status == "connected"
    assert not any("\x1b" in e.text for e in host.store.get().log)
    await raw.close()


# The headless host and guest on a terminal ---------------------------------------------

HOST_LINE = re.compile(r"session (\S+) listening on ws://127\.0\.0\.1:(\d+)")


async def _spawn(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await launch(*args, config_dir=tmp_path / "config", columns=250)


async def _stderr_until(proc: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> None:
    assert proc.stderr is not None
    async with asyncio.timeout(10):
        while True:
            raw = await proc.stderr.readline()
            if not raw:
                raise AssertionError(f"{pattern!r} never logged: {seen}")
            seen.append(raw.decode())
            if re.search(pattern, seen[-1]):
                return


async def test_headless_host_logs_markup_literally_and_never_prints_escapes(
    tmp_path: Path,
) -> None:
    host = await _spawn(
        tmp_path,
        *("host", "--headless", "--no-tls", "--bind", "127.0.0.1", "--port", "0"),
        *("--no-discovery", "--allow-unproven", "--name", "Grace", "--session-name", "Friday"),
    )
    try:
        assert host.stdout is not None
        async with asyncio.timeout(10):
            line = (await host.stdout.readline()).decode()
        match = HOST_LINE.search(line)
        assert match, line
        session, port = match.group(1), int(match.group(2))
        seen: list[str] = []
        guests = []
        for n, name in enumerate(MARKUP_NAMES):
            raw = await RawGuest.connect(port)
            await raw.send(join_frame(f"dev-m{n}", name, device_type="[/x]", session=session))
            await raw.recv_type(MemberList)
            guests.append(raw)
            await _stderr_until(host, re.escape(f"{name} joined from 127.0.0.1"), seen)
        for name in (TERMINAL_ATTACK, FORGED_LINE):
            answer = await hostile_join(port, name, session)
            assert answer.message == "JOIN: $.device.name contains a control character"
        await _stderr_until(host, r"Refused a join", seen)
        await guests[0].send(Leave(timestamp=now_ms(), reason=CLIPBOARD_ATTACK))
        assert (await guests[0].recv_type(Error)).code is ErrorCode.INVALID_MESSAGE
        host.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            rest = await host.stderr.read()  # type: ignore[union-attr]
            assert await host.wait() == 0
        said = "".join(seen) + rest.decode()
        assert "\x1b]" not in said
        assert "\x07" not in said
        assert not re.search(r"^\[20:48:09\] Grace", said, re.MULTILINE)
        assert "Traceback" not in said
        for raw in guests:
            await raw.close()
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()


async def test_headless_guest_escapes_a_hostile_close_reason(tmp_path: Path) -> None:
    """A close reason never passes the protocol's decoder; the guest must escape it."""

    async def refuse(ws: ServerConnection, _join: Join) -> None:
        await ws.close(4001, f"{CLIPBOARD_ATTACK}\n[20:48:09] Grace (host) [/x]")

    async with rogue_host(refuse) as port:
        guest = await _spawn(tmp_path, "--no-tls", "join", f"127.0.0.1:{port}", "--headless")
        async with asyncio.timeout(15):
            out, err = await guest.communicate()
    said = err.decode() + out.decode()
    assert guest.returncode == 2, said
    assert "Join refused" in said
    assert "\x1b]52" not in said
    assert "\x07" not in said
    assert r"\x1b]52;c;cHduZWQ=\x07" in said  # shown, escaped
    assert "[/x]" in said  # markup shown literally
    assert not re.search(r"^\[20:48:09\] Grace", said, re.MULTILINE)
    assert "Traceback" not in said


# A rogue mDNS record and `loudsync-tui discover` ----------------------------------------

ROGUE_NAME = "[/x] Party" + TERMINAL_ATTACK
ROGUE_HOST = "[@click=app.quit]Eve[/]\u202eevil"


async def register_rogue(aiozc: AsyncZeroconf, name: str, host: str, version: int = 1) -> None:
    """A record any machine on the LAN could announce, on 127.0.0.1 only."""
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"Rogue {os.getpid()}.{SERVICE_TYPE}",
        port=9,
        properties={
            "id": "rogue-1",
            "name": name,
            "host": host,
            "members": "1",
            "max": "10",
            "v": str(version),
            "tls": "0",
            "pin": "0",
        },
        server=f"rogue-{os.getpid()}.local.",
        parsed_addresses=["127.0.0.1"],
    )
    await (await aiozc.async_register_service(info))


@pytest.fixture
async def rogue_record() -> AsyncIterator[Callable[..., Awaitable[None]]]:
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"])

    async def register(name: str = ROGUE_NAME, host: str = ROGUE_HOST, version: int = 1) -> None:
        await register_rogue(aiozc, name, host, version)

    yield register
    await aiozc.async_unregister_all_services()
    await aiozc.async_close()


async def _discover(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    proc = await _spawn(tmp_path, "discover", "--timeout", "2", "--interface", "127.0.0.1", *extra)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_discover_shows_a_rogue_session_literally_and_escaped(
    tmp_path: Path, rogue_record: Callable[..., Awaitable[None]]
) -> None:
    await rogue_record()
    code, out, err = await _discover(tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    assert "[/x] Party" in out
    assert r"\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED" in out
    assert "\x1b]" not in out
    assert "\x07" not in out
    assert "[@click=app.quit]Eve[/]" in out
    assert r"\u202eevil" in out
    assert "\u202e" not in out


async def test_discover_json_keeps_the_rogue_strings_raw_and_json_escaped(
    tmp_path: Path, rogue_record: Callable[..., Awaitable[None]]
) -> None:
    await rogue_record()
    code, out, err = await _discover(tmp_path, "--json")
    assert code == 0, err
    assert "\x1b" not in out  # JSON escapes it
    sessions = [json.loads(line) for line in out.splitlines()]
    rogue = next(s for s in sessions if s["sessionId"] == "rogue-1")
    assert rogue["name"] == ROGUE_NAME
    assert rogue["host"] == ROGUE_HOST
