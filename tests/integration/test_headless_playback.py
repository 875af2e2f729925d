"""Playback from the command line, as a person runs it: a host playing a file, a guest
following it, commands on stdin, and what a machine without sound is told."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from benchmarks.media import noise, write_wav
from benchmarks.pulse_rig import PulseRig
from tests.support.processes import launch

pytestmark = pytest.mark.xdist_group("pulse")

HOST = (
    "host",
    "--headless",
    "--json",
    "--no-tls",
    "--bind",
    "127.0.0.1",
    "--port",
    "0",
    "--no-discovery",
    "--allow-unproven",
    "--no-local-audio",
)


class Proc:
    """A process whose stdout JSON events and stderr lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, object]] = []
        self._seen = 0

    async def event(
        self, kind: str, check: Callable[[dict[str, object]], bool] = lambda e: True
    ) -> dict[str, object]:
        """The next `kind` event (after those already returned) that passes `check`."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(15):
            while True:
                while self._seen < len(self.events):
                    found = self.events[self._seen]
                    self._seen += 1
                    if found.get("event") == kind and check(found):
                        return found
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"no {kind!r} event: {self.events[-8:]}")
                self.events.append(json.loads(raw))

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()


Spawn = Callable[..., Awaitable[Proc]]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    procs: list[Proc] = []

    async def start(*args: str, name: str = "x", **kwargs: object) -> Proc:
        proc = await launch(*args, config_dir=tmp_path / name, **kwargs)  # type: ignore[arg-type]
        procs.append(Proc(proc))
        return procs[-1]

    yield start
    for p in procs:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()


@pytest.fixture
def song(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "Night Drive.wav", noise(30.0))


@pytest.fixture
def no_portaudio(tmp_path: Path) -> dict[str, str]:
    """An environment in which importing sounddevice fails as it does on a machine
    without libportaudio2 (OSError): the library cannot be removed from this one."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    return {"PYTHONPATH": str(fake)}


async def test_a_guest_follows_the_hosts_queue_and_the_commands(spawn: Spawn, song: Path) -> None:
    host = await spawn(*HOST, "--play", str(song), "--commands", stdin=asyncio.subprocess.PIPE)
    ready = await host.event("ready")
    playing = await host.event("playback", lambda e: e["state"] == "playing")
    track = playing["track"]
    assert isinstance(track, dict)
    assert track["title"] == "Night Drive"
    assert track["queueLength"] == 1
    guest = await spawn(
        "join",
        str(ready["joinWith"]).split()[-1],
        "--headless",
        "--json",
        "--no-audio",
        name="guest",
    )
    followed = await guest.event("playback", lambda e: e["state"] == "playing")
    assert followed["epoch"] == playing["epoch"]
    assert followed["atUs"] == playing["atUs"]
    await host.send("pause")
    paused = await guest.event("playback", lambda e: e["state"] == "paused")
    assert isinstance(paused["atUs"], int)
    assert isinstance(playing["atUs"], int)
    assert paused["atUs"] > playing["atUs"]
    await host.send("seek 5")
    moved = await guest.event("playback", lambda e: e["epoch"] == int(paused["epoch"]) + 1)  # type: ignore[call-overload]
    assert moved["state"] == "paused"  # a seek while paused stays paused
    assert moved["sample"] == int(paused["sample"]) + 5 * 48_000  # type: ignore[call-overload]
    await host.send("dance")
    await host.send("quit")
    assert await asyncio.wait_for(host.proc.wait(), 10) == 0
    assert "unknown command 'dance'" in await host.stderr()
    assert not any(e.get("event") == "sync" for e in guest.events)  # a remote plays nothing


async def test_without_portaudio_a_guest_joins_as_a_remote_and_says_what_to_install(
    spawn: Spawn, song: Path, no_portaudio: dict[str, str]
) -> None:
    host = await spawn(*HOST, "--play", str(song))
    ready = await host.event("ready")
    guest = await spawn(
        "join",
        str(ready["joinWith"]).split()[-1],
        "--headless",
        "--json",
        name="guest",
        env=no_portaudio,
    )
    warning = await guest.event("log", lambda e: "No sound" in str(e.get("text")))
    assert "libportaudio2" in str(warning["text"])
    assert "joining as a remote" in str(warning["text"])
    await guest.event("playback", lambda e: e["state"] == "playing")  # the session goes on
    listed = await spawn("join", "x", "--list-audio-devices", name="lister", env=no_portaudio)
    assert await asyncio.wait_for(listed.proc.wait(), 10) == 1
    text = await listed.stderr()
    assert "libportaudio2" in text
    assert "Traceback" not in text


async def test_a_host_with_nothing_playable_says_so_and_exits(spawn: Spawn, tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp3"
    notes.write_text("not music")
    host = await spawn(*HOST, "--play", str(notes))
    assert await asyncio.wait_for(host.proc.wait(), 15) == 1
    text = await host.stderr()
    assert "Nothing to play" in text
    assert "cannot read notes.mp3: not an audio file" in text  # the file and why
    assert "Traceback" not in text
    bad = await spawn(*HOST, "--play", str(notes), "--buffer-ms", "5", name="bad")
    assert await asyncio.wait_for(bad.proc.wait(), 15) == 2
    assert "a buffer in ms must be 20 to 10000" in await bad.stderr()


async def test_a_guest_with_speakers_plays_reports_sync_and_remembers_what_the_host_sets(
    spawn: Spawn, song: Path, tmp_path: Path, pulse_rig: PulseRig
) -> None:
    host = await spawn(*HOST, "--play", str(song), "--commands", stdin=asyncio.subprocess.PIPE)
    ready = await host.event("ready")
    guest = await spawn(
        "join",
        str(ready["joinWith"]).split()[-1],
        "--headless",
        "--json",
        "--name",
        "Ada",
        "--audio-device",
        "pulse",
        name="guest",
        env=pulse_rig.env_for("left"),
    )
    playing = await guest.event("playback", lambda e: e["state"] == "playing")
    assert playing["output"] == "pulse"
    sync = await guest.event("sync")
    assert sync["underruns"] == 0
    assert isinstance(sync["bufferMs"], float)
    assert 50 < sync["bufferMs"] < 400  # a buffer's worth of audio waits ahead
    await host.send("volume Ada 0.5")
    await guest.event("log", lambda e: "volume 50%" in str(e.get("text")))
    await host.send("offset Ada 12.5")
    await guest.event("log", lambda e: "latency offset +12.5 ms" in str(e.get("text")))
    kept = json.loads((tmp_path / "guest" / "output.json").read_text())
    assert kept == {"volume": 0.5, "latencyOffsetMs": 12.5}
    await host.send("volume Nobody 0.5")
    await host.send("volume Ada 7")
    await host.send("quit")
    assert await asyncio.wait_for(host.proc.wait(), 10) == 0
    said = await host.stderr()
    assert "no member 'Nobody'" in said
    assert "volume must be 0 to 1.5, got 7" in said
