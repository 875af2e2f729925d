"""The app in a real terminal (a pty), ended by a signal as a service manager or a dropped
SSH link ends it: SIGTERM and SIGHUP close a hosted session as `q` does, and exit 0."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import socket
import struct
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loudsync_tui.config import HostConfig
from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import SessionClosed
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore
from tests.support.raw import RawGuest
from tests.support.waiting import until

LEAVE_ALT_SCREEN = b"\x1b[?1049l"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Terminal:
    """The app on a pty of 100x30; everything it draws is read (and kept) as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master: int | None = master
        self.output = bytearray()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        assert self.master is not None
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.hang_up()
            return
        self.output += chunk

    def hang_up(self) -> None:
        """Close the terminal's side, as a terminal window or an SSH link that goes away."""
        if self.master is not None:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = None


def _take_the_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def start_in_terminal(config_dir: Path, *args: str) -> Terminal:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "LOUDSYNC_CONFIG_DIR": str(config_dir)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loudsync_tui",
        *args,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        # Its own session with the pty as controlling terminal, as a login shell, tmux
        # or sshd sets it up: closing the terminal then sends SIGHUP by itself.
        preexec_fn=_take_the_terminal,
    )
    os.close(slave)
    return Terminal(proc, master)


async def stop(term: Terminal) -> None:
    if term.proc.returncode is None:
        term.proc.kill()
        await term.proc.wait()
    term.hang_up()


@pytest.fixture
async def terminal_app(tmp_path: Path) -> AsyncIterator[tuple[Terminal, int]]:
    port = free_port()
    term = await start_in_terminal(
        tmp_path,
        "host",
        "--no-tls",
        "--no-discovery",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--session-id",
        "sigtest",
        "--session-name",
        "Friday",
    )
    try:
        yield term, port
    finally:
        await stop(term)


async def _joined(port: int) -> RawGuest:
    """Join as soon as the app listens (it starts in a second or two)."""
    key = DeviceKey.generate()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        try:
            raw = await RawGuest.connect(port)
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        await raw.join(key.device_id, "Ada", session_id="sigtest", key=key)
        return raw


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_a_signal_ends_the_hosted_session_properly_and_exits_0(
    terminal_app: tuple[Terminal, int], sig: signal.Signals
) -> None:
    term, port = terminal_app
    raw = await _joined(port)
    raw.keep_alive()
    if sig is signal.SIGHUP:
        term.hang_up()  # the terminal goes away: the kernel sends the SIGHUP
    else:
        term.proc.send_signal(sig)
    closed = await raw.recv_type(SessionClosed, timeout=10)
    assert closed.reason
    assert await raw.closed() == 1001
    async with asyncio.timeout(10):
        assert await term.proc.wait() == 0
    if sig is signal.SIGTERM:
        if term.master is not None:  # what is left to read after the exit
            term._read()
        assert LEAVE_ALT_SCREEN in term.output  # the terminal was given back in order
        assert b"Traceback" not in term.output


async def test_a_guest_app_ended_by_sigterm_leaves_the_session(tmp_path: Path) -> None:
    host = HostService(
        HostConfig("Friday", "Grace", "k-host", port=0, bind="127.0.0.1", discovery=False),
        AppStore(),
    )
    await host.start()
    term = await start_in_terminal(tmp_path, "--name", "Bea", "join", f"127.0.0.1:{host.port}")
    try:
        await until(host.store, lambda s: s.hosting is not None and len(s.hosting.members) == 2, 20)
        term.proc.send_signal(signal.SIGTERM)
        state = await until(host.store, lambda s: any(e.text == "Bea left" for e in s.log), 10)
        assert state.hosting is not None
        assert len(state.hosting.members) == 1
        async with asyncio.timeout(10):
            assert await term.proc.wait() == 0
    finally:
        await stop(term)
        await host.aclose()
