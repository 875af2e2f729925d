"""The headless commands as a person runs them: real processes, signals, exit codes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loudsync_tui.protocol import MemberJoined, MemberLeft, MemberList, SessionClosed
from loudsync_tui.security.device_key import DeviceKey
from tests.support.processes import launch
from tests.support.raw import RawGuest

HOST_LINE = re.compile(r"session (\S+) listening on ws://127\.0\.0\.1:(\d+)")


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr_lines: list[str] = []

    async def line(self, pattern: str, timeout: float = 10.0) -> str:
        """The next stderr line matching `pattern` (also recorded)."""
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError(f"{pattern!r} never logged: {self.stderr_lines}")
                text = raw.decode()
                self.stderr_lines.append(text)
                if re.search(pattern, text):
                    return text

    async def finish(self, timeout: float = 10.0) -> int:
        async with asyncio.timeout(timeout):
            assert self.proc.stderr is not None
            rest = await self.proc.stderr.read()
            self.stderr_lines.append(rest.decode())
            return await self.proc.wait()


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[object]:
    procs: list[Proc] = []

    async def start(*args: str) -> Proc:
        proc = await launch(*args, config_dir=tmp_path / "config")
        wrapped = Proc(proc)
        procs.append(wrapped)
        return wrapped

    yield start
    for p in procs:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()


HOST_ARGS = (
    "host",
    "--headless",
    "--no-tls",
    "--bind",
    "127.0.0.1",
    "--port",
    "0",
    "--no-discovery",
    "--name",
    "Grace",
    "--session-name",
    "Friday",
    "--heartbeat-interval",
    "0.2",
    "--heartbeat-timeout",
    "1",
)


async def _host(spawn: object) -> tuple[Proc, str, int]:
    host: Proc = await spawn(*HOST_ARGS)  # type: ignore[operator]
    assert host.proc.stdout is not None
    async with asyncio.timeout(10):
        line = (await host.proc.stdout.readline()).decode()
    match = HOST_LINE.search(line)
    assert match, line
    assert "join with: loudsync-tui join 127.0.0.1:" in line
    return host, match.group(1), int(match.group(2))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_headless_host_prints_address_logs_and_stops_cleanly(
    spawn: object, sig: signal.Signals
) -> None:
    host, session_id, port = await _host(spawn)
    raw = await RawGuest.connect(port)
    key = DeviceKey.generate()  # the headless host requires a device key proof
    await raw.join(key.device_id, "Ada", session_id=session_id, key=key)
    await raw.recv_type(MemberList)
    await host.line(r"Ada joined from 127\.0\.0\.1")
    host.proc.send_signal(sig)
    closed = await raw.recv_type(SessionClosed)
    assert closed.reason
    assert await raw.closed() == 1001
    assert await host.finish() == 0
    assert "Traceback" not in "".join(host.stderr_lines)


async def test_headless_guests_join_leave_and_time_out_in_the_logs(spawn: object) -> None:
    host, session_id, port = await _host(spawn)
    watcher = await RawGuest.connect(port)
    key = DeviceKey.generate()
    await watcher.join(key.device_id, "Watcher", session_id=session_id, key=key)
    await watcher.recv_type(MemberList)
    watcher.keep_alive()

    guest: Proc = await spawn(  # type: ignore[operator]
        "join", f"127.0.0.1:{port}", "--headless", "--name", "Bob"
    )
    await guest.line(r"Joined 'Friday' hosted by Grace")
    joined = await watcher.recv_type(MemberJoined)
    assert joined.member.name == "Bob"
    await guest.line(r"latency \d+\.\d ms")
    guest.proc.send_signal(signal.SIGTERM)
    left = await watcher.recv_type(MemberLeft)
    assert left.reason == "left"
    assert await guest.finish() == 0
    await host.line(r"Bob left")

    silent = await RawGuest.connect(port)
    quiet = DeviceKey.generate()
    await silent.join(quiet.device_id, "Quiet", session_id=session_id, key=quiet)
    await silent.recv_type(MemberList)
    await host.line(r"Quiet timed out")
    assert await silent.closed() == 4002
    host.proc.send_signal(signal.SIGINT)
    assert await host.finish() == 0


async def test_headless_join_exit_codes_for_closed_and_refused(spawn: object) -> None:
    host, _, port = await _host(spawn)
    wrong: Proc = await spawn(  # type: ignore[operator]
        "join", f"127.0.0.1:{port}", "--headless", "--session-id", "nope"
    )
    await wrong.line("Join refused: no session 'nope' here")
    assert await wrong.finish() == 2
    assert "SESSION_NOT_FOUND" not in "".join(wrong.stderr_lines)  # codes are not for people

    guest: Proc = await spawn("join", f"127.0.0.1:{port}", "--headless")  # type: ignore[operator]
    await guest.line("Joined")
    host.proc.send_signal(signal.SIGTERM)
    await guest.line("The host ended the session")
    assert await guest.finish() == 0
    assert await host.finish() == 0


async def test_headless_join_to_nothing_fails_without_traceback(spawn: object) -> None:
    guest: Proc = await spawn(  # type: ignore[operator]
        "join", "127.0.0.1:9", "--headless", "--connect-timeout", "1"
    )
    code = await guest.finish()
    text = "".join(guest.stderr_lines)
    assert code == 1
    assert "nothing is listening at 127.0.0.1:9" in text
    assert "error: Could not connect: nothing is listening at 127.0.0.1:9" in text
    assert "left the session" not in text  # the user left nothing: it never connected
    assert "Traceback" not in text


async def test_bad_option_values_are_clear_errors(spawn: object) -> None:
    bad: Proc = await spawn("host", "--headless", "--heartbeat-interval", "-1")  # type: ignore[operator]
    assert await bad.finish() == 2
    assert "expected a positive number of seconds" in "".join(bad.stderr_lines)
    worse: Proc = await spawn(  # type: ignore[operator]
        "host", "--headless", "--heartbeat-interval", "5", "--heartbeat-timeout", "2"
    )
    assert await worse.finish() == 2
    assert "--heartbeat-timeout must be longer" in "".join(worse.stderr_lines)
    # A PIN that cannot be one is a usage error here, not a wrong guess sent to a host.
    typo: Proc = await spawn("join", "127.0.0.1:9", "--headless", "--pin", "abc")  # type: ignore[operator]
    assert await typo.finish() == 2
    said = "".join(typo.stderr_lines)
    assert "argument --pin: a PIN is digits only, got 'abc'" in said
    assert "nothing is listening" not in said  # it never tried to connect


async def test_headless_tls_host_and_guest_verify_on_first_use(spawn: object) -> None:
    args = [a for a in HOST_ARGS if a != "--no-tls"] + ["--pin", "2468"]
    host: Proc = await spawn(*args)  # type: ignore[operator]
    assert host.proc.stdout is not None
    async with asyncio.timeout(10):
        line = (await host.proc.stdout.readline()).decode()
    assert "listening on wss://127.0.0.1:" in line
    port = line.rsplit(":", 1)[1].strip(" )\n")
    fingerprint = (await host.line(r"Fingerprint \(compare aloud\): ")).split(": ", 1)[1]

    unsure: Proc = await spawn("join", f"127.0.0.1:{port}", "--headless", "--pin", "2468")  # type: ignore[operator]
    assert await unsure.finish() == 4
    said = "".join(unsure.stderr_lines)
    assert "First connection to Grace's session “Friday”" in said  # names, not a device id
    assert said.count("First connection") == 1  # the question is said once
    assert "Its code is " in said
    assert "--trust-new" in said

    nopin: Proc = await spawn("join", f"127.0.0.1:{port}", "--headless", "--trust-new")  # type: ignore[operator]
    assert await nopin.finish() == 2
    assert "needs a PIN" in "".join(nopin.stderr_lines)
    await host.line("Refused a join from 127.0.0.1:.*: this session needs a PIN")

    sure: Proc = await spawn(  # type: ignore[operator]
        "join",
        f"127.0.0.1:{port}",
        "--headless",
        "--pin",
        "2468",
        "--fingerprint",
        fingerprint.strip().split("\x1b")[0].strip(),
        "--name",
        "Cleo",
    )
    await sure.line("Joined 'Friday' hosted by Grace")
    sure.proc.send_signal(signal.SIGTERM)
    assert await sure.finish() == 0
    host.proc.send_signal(signal.SIGTERM)
    assert await host.finish() == 0
    assert "2468" not in "".join(host.stderr_lines)  # a PIN the user chose is never logged
    logged = "".join(host.stderr_lines)
    assert logged.count("Refused a join") == 1, logged  # each line once, not once more plain


async def test_a_generated_pin_is_shown_once_on_the_ready_line_and_never_logged(
    spawn: object,
) -> None:
    host: Proc = await spawn(*HOST_ARGS[:2], *HOST_ARGS[3:], "--pin")  # type: ignore[operator]
    assert host.proc.stdout is not None
    async with asyncio.timeout(10):
        line = (await host.proc.stdout.readline()).decode()
    match = re.search(r"; PIN: (\d{6})\)$", line.strip())
    assert match, line
    await host.line(r"Fingerprint \(compare aloud\): ")
    host.proc.send_signal(signal.SIGTERM)
    assert await host.finish() == 0
    assert match.group(1) not in "".join(host.stderr_lines)
    assert "PIN" not in "".join(host.stderr_lines)


async def test_host_refuses_a_pin_without_tls(spawn: object) -> None:
    """A PIN only travels inside TLS: `--pin` with `--no-tls` is a usage error, headless
    or in the app, before anything listens."""
    for headless in (("--headless",), ()):
        host: Proc = await spawn("host", *headless, "--no-tls", "--pin", "1234")  # type: ignore[operator]
        assert await host.finish() == 2
        said = "".join(host.stderr_lines)
        assert "--pin needs TLS" in said
        assert "usage:" in said


async def _json_line(proc: Proc, event: str, timeout: float = 10.0) -> dict[str, object]:
    """The next stdout JSON object with this `event` (each line must be one object)."""
    assert proc.proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await proc.proc.stdout.readline()
            if not raw:
                code = await proc.finish()
                raise AssertionError(
                    f"no {event!r} line before the end of output: {seen[-5:]}; exit code "
                    f"{code}, stderr: {''.join(proc.stderr_lines)[-2000:]}"
                )
            seen.append(raw.decode())
            found = json.loads(raw)
            assert isinstance(found, dict)
            if found.get("event") == event:
                return found


async def test_json_modes_report_the_session_clock_and_guests_agree_with_the_host(
    spawn: object,
) -> None:
    # The default heartbeat (5 s, 15 s silence): the fast one of HOST_ARGS can time a
    # guest out on a machine busy with other tests, which is not what this test is about.
    calm = HOST_ARGS[: HOST_ARGS.index("--heartbeat-interval")]
    host: Proc = await spawn(*calm, "--json")  # type: ignore[operator]
    ready = await _json_line(host, "ready")
    assert ready["url"].startswith("ws://127.0.0.1:")  # type: ignore[union-attr]
    truth = ready["sessionClockOffsetUs"]
    assert isinstance(truth, int)
    port = str(ready["url"]).rsplit(":", 1)[1]
    # --no-audio: the clock is this test's subject; playing is test_headless_playback's.
    guest: Proc = await spawn(  # type: ignore[operator]
        "join",
        f"127.0.0.1:{port}",
        "--headless",
        "--json",
        "--no-audio",
        "--session-id",
        str(ready["sessionId"]),
    )
    clock = await _json_line(guest, "clock")
    assert set(clock) >= {"offsetUs", "uncertaintyUs", "rttUs", "skewPpm", "samples"}
    # Same machine, same monotonic clock: the guest's offset must be the host's. A
    # correctness bound for a loaded machine; `python -m benchmarks.clock` measures.
    assert abs(int(clock["offsetUs"]) - truth) < 5_000, (clock, truth)  # type: ignore[call-overload]
    guest.proc.send_signal(signal.SIGTERM)
    ended = await _json_line(guest, "ended")
    assert ended["code"] == "left"
    assert await guest.finish() == 0
    host.proc.send_signal(signal.SIGTERM)
    assert await host.finish() == 0


async def test_json_without_headless_is_a_usage_error(spawn: object) -> None:
    bad: Proc = await spawn("join", "127.0.0.1:9", "--json")  # type: ignore[operator]
    assert await bad.finish() == 2
    assert "--json goes with --headless" in "".join(bad.stderr_lines)
