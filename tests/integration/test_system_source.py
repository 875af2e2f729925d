"""This machine's sound as a source, against a real (private) PulseAudio: an app plays a
tone, the host captures it and streams it live, its own speakers play the synced copy
once, and everything it changed in the sound server is put back."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks.media import noise, write_wav
from benchmarks.pulse_rig import PulseRig
from loudsync_tui.audio.capture import CAPTURE_SINK, parse_blocks, parse_sinks
from loudsync_tui.config import OutputConfig, PlaybackConfig
from loudsync_tui.core.epoch import RATE
from loudsync_tui.net.host_service import HostService, HostStartError
from loudsync_tui.protocol import Pause, Play, Seek, Track
from loudsync_tui.protocol_audio import AudioFrame
from loudsync_tui.store import AppStore
from tests.integration.conftest import FAST_HOST
from tests.integration.test_streaming import Listener
from tests.support.processes import launch
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("pulse")

TONE_HZ = 1000
TONE_LEVEL = 8000
TONE_RMS = TONE_LEVEL / np.sqrt(2)
TONE_APP = "loudsync-test-tone"
TIMEOUT = 10.0
SILENT = OutputConfig(enabled=False)
NO_PAREC = "Cannot capture this machine's sound: parec is not installed (install pulseaudio-utils)"


@pytest.fixture
def server(pulse_rig: PulseRig, monkeypatch: pytest.MonkeyPatch) -> PulseRig:
    """This process (and every pactl or parec it starts) talks to the rig's daemon."""
    monkeypatch.delenv("PULSE_SINK", raising=False)
    monkeypatch.setenv("LC_ALL", "C")
    for name, value in pulse_rig.client_env().items():
        monkeypatch.setenv(name, value)
    return pulse_rig


@pytest.fixture
def tone(server: PulseRig, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """An app playing a 1 kHz tone on the default output, as a browser would."""
    k = np.arange(60 * RATE)
    wave = (np.sin(2 * np.pi * TONE_HZ * k / RATE) * TONE_LEVEL).astype("<i2")
    path = tmp_path / "tone.raw"
    path.write_bytes(np.stack([wave, wave], axis=1).tobytes())
    with path.open("rb") as source:
        app = subprocess.Popen(
            [
                "pacat",
                "--playback",
                "--raw",
                "--format=s16le",
                f"--rate={RATE}",
                "--channels=2",
                "--latency-msec=20",
                f"--client-name={TONE_APP}",
            ],
            stdin=source,
            stderr=subprocess.DEVNULL,
        )
    try:
        wait_until(lambda: sink_of(server, TONE_APP) is not None, "the tone to play")
        yield app
    finally:
        app.terminate()
        app.wait(5)


@pytest.fixture
def speakers(server: PulseRig) -> Iterator[None]:
    """PortAudio lists devices once, when it starts: again here, with the rig in the
    environment, and once more afterwards (the other tests' view)."""
    sd = importlib.import_module("sounddevice")
    sd._terminate()
    sd._initialize()
    yield
    sd._terminate()
    sd._initialize()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """For the fixtures (no loop yet): poll with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def streams(rig: PulseRig) -> list[tuple[str, str, str]]:
    """(application name or driver, sink name, process id) of every sink input."""
    names = {index: name for name, (index, _) in parse_sinks(rig.pactl("list", "sinks")).items()}
    return [
        (
            block.get("prop:application.name") or block.get("Driver", ""),
            names.get(int(block.get("Sink", "-1")), "?"),
            block.get("prop:application.process.id", ""),
        )
        for block in parse_blocks(rig.pactl("list", "sink-inputs"))
    ]


def sink_of(rig: PulseRig, app: str) -> str | None:
    return next((sink for name, sink, _ in streams(rig) if name == app), None)


def default_sink(rig: PulseRig) -> str:
    return rig.pactl("get-default-sink").strip()


async def until_routed(rig: PulseRig, check: Callable[[], bool]) -> None:
    """Poll the server (off the loop: pactl blocks) until `check` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(
                f"routing not as expected: {await asyncio.to_thread(streams, rig)}"
            )
        await asyncio.sleep(0.02)


def pcm(frames: list[AudioFrame], epoch: int) -> NDArray[np.int16]:
    chunks = {f.first_sample: f.payload for f in frames if f.epoch == epoch}
    joined = b"".join(chunks[k] for k in sorted(chunks))
    return np.frombuffer(joined, "<i2").reshape(-1, 2)


def dominant_hz(samples: NDArray[np.generic]) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * RATE / len(samples))


def rms(samples: NDArray[np.generic]) -> float:
    return float(np.sqrt(np.mean(samples.astype(float) ** 2)))


def heard(listener: Listener, epoch: int, seconds: float) -> bool:
    """The listener has `seconds` of the tone (not the silence before the capture)."""
    left = pcm([f for _, f in listener.frames], epoch)[:, 0]
    return np.count_nonzero(np.abs(left) > TONE_LEVEL // 2) > seconds * RATE / 3


async def system_host(*paths: str, output: OutputConfig = SILENT) -> HostService:
    playback = PlaybackConfig(paths=paths or ("system",), codec="pcm")
    host = HostService(FAST_HOST, AppStore(), playback=playback, output=output)
    await host.start()
    return host


async def test_the_machines_sound_reaches_members_a_buffer_after_it_played(
    server: PulseRig, tone: subprocess.Popen[bytes]
) -> None:
    host = await system_host()
    try:
        listener = await Listener.join(host, "dev-a", audio=True)
        streamer = host.streamer
        assert streamer is not None
        await until_routed(server, lambda: sink_of(server, TONE_APP) == CAPTURE_SINK)
        capture = streamer.capture
        assert capture is not None
        assert capture.original_sink == server.null_sink
        assert await asyncio.to_thread(default_sink, server) == CAPTURE_SINK
        routed = await asyncio.to_thread(streams, server)
        remaps = [sink for name, sink, _ in routed if name == "module-remap-sink.c"]
        assert remaps == [server.null_sink] * 2  # the server's own streams stay put
        await eventually(lambda: capture.running)  # parec starts once the apps are routed
        parec = capture.pid
        assert parec is not None

        await eventually(lambda: len(listener.of(Play)) == 1, timeout=TIMEOUT)
        (play,) = listener.of(Play)
        await eventually(lambda: heard(listener, play.epoch, 1.0), timeout=TIMEOUT)
        (track,) = listener.of(Track)
        assert (track.title, track.artist, track.duration_ms) == (
            "This machine's sound",
            "Null Output",  # the speakers it came from
            None,
        )
        assert track.live  # members are told: no end, no seeking
        assert host.store.get().playback.queue[0].live
        got = pcm([f for _, f in listener.frames], play.epoch)
        assert dominant_hz(got[-RATE // 2 :, 0]) == pytest.approx(TONE_HZ, abs=4)
        assert rms(got[-RATE // 2 :]) == pytest.approx(TONE_RMS, rel=0.03)  # the app's level
        leads = [
            play.at_us + (f.first_sample - play.sample) * 1e6 / RATE - at
            for at, f in listener.frames
        ]
        assert min(leads) > 150_000, f"a chunk arrived {min(leads) / 1000:.1f} ms ahead"

        assert host.control("seek", 5.0) == "A live source cannot be seeked"
        assert streamer.transport.seek_by(host.core.session_clock_us, 5.0) == []
        live = streamer.live
        assert live is not None
        # the rig's null sink runs a few hundred ppm off the monotonic clock
        assert live.corrections < 1e-3 * live.position
        assert live.resyncs == 0
        assert live.missing < 0.01 * live.position  # the capture kept up
        await listener.close()
    finally:
        await host.aclose()
    assert await asyncio.to_thread(default_sink, server) == server.null_sink
    assert await asyncio.to_thread(sink_of, server, TONE_APP) == server.null_sink
    assert CAPTURE_SINK not in await asyncio.to_thread(server.pactl, "list", "short", "sinks")
    assert not capture.running
    with pytest.raises(ProcessLookupError):  # parec ended and was reaped
        os.kill(parec, 0)
    assert not listener.of(Seek)


async def test_the_host_hears_the_synced_copy_once(
    server: PulseRig, tone: subprocess.Popen[bytes], speakers: None
) -> None:
    host = await system_host(output=OutputConfig())
    try:
        player = host.player
        assert player is not None, host.store.get().log
        await until_routed(server, lambda: sink_of(server, TONE_APP) == CAPTURE_SINK)
        await eventually(lambda: player.stats().position_ms > 1000, timeout=TIMEOUT)
        routed = await asyncio.to_thread(streams, server)
        mine = [sink for _, sink, pid in routed if pid == str(os.getpid())]
        assert mine == [server.null_sink]  # the synced copy, on the speakers
        with server.record() as recording:
            await asyncio.to_thread(recording.settle, 0.5)
            played = recording.stop()
        tail = played[-RATE // 4 :, 0]
        assert dominant_hz(tail) == pytest.approx(TONE_HZ, abs=8)
        # the app's sound went into the capture: the speakers play it once, not twice
        assert rms(tail) == pytest.approx(TONE_RMS, rel=0.1)
        assert player.stats().underruns == 0
    finally:
        await host.aclose()
    assert await asyncio.to_thread(default_sink, server) == server.null_sink


async def test_another_track_gives_the_machine_its_sound_back(
    server: PulseRig, tone: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    song = write_wav(tmp_path / "song.wav", noise(20.0))
    host = await system_host("system", str(song))
    try:
        listener = await Listener.join(host, "dev-a", audio=True)
        await until_routed(server, lambda: default_sink(server) == CAPTURE_SINK)
        assert host.control("next") is None
        await until_routed(server, lambda: sink_of(server, TONE_APP) == server.null_sink)
        assert await asyncio.to_thread(default_sink, server) == server.null_sink
        await eventually(lambda: [t.title for t in listener.of(Track)][-1:] == ["song"])
        assert host.control("prev") is None
        await until_routed(server, lambda: sink_of(server, TONE_APP) == CAPTURE_SINK)
        await eventually(lambda: len(listener.of(Track)) == 3)
        await listener.close()
    finally:
        await host.aclose()
    assert await asyncio.to_thread(default_sink, server) == server.null_sink
    assert await asyncio.to_thread(sink_of, server, TONE_APP) == server.null_sink


async def test_a_capture_that_dies_pauses_and_gives_the_sound_back(
    server: PulseRig, tone: subprocess.Popen[bytes]
) -> None:
    host = await system_host()
    try:
        listener = await Listener.join(host, "dev-a", audio=True)
        streamer = host.streamer
        assert streamer is not None
        await eventually(lambda: streamer.capture is not None and streamer.capture.running)
        await eventually(lambda: len(listener.of(Play)) == 1, timeout=TIMEOUT)
        capture = streamer.capture
        assert capture is not None
        assert capture.pid is not None
        os.kill(capture.pid, signal.SIGKILL)  # the parec this test's host started
        await eventually(lambda: len(listener.of(Pause)) == 1, timeout=TIMEOUT)
        log = [e.text for e in host.store.get().log]
        assert any(t.startswith("This machine's sound stopped: parec exited") for t in log), log
        await until_routed(server, lambda: sink_of(server, TONE_APP) == server.null_sink)
        assert host.control("play") is None  # tries again
        await eventually(lambda: len(listener.of(Play)) == 2, timeout=TIMEOUT)
        await eventually(lambda: heard(listener, listener.of(Play)[-1].epoch, 0.5), timeout=TIMEOUT)
        assert streamer.capture is not capture
        await listener.close()
    finally:
        await host.aclose()
    assert await asyncio.to_thread(default_sink, server) == server.null_sink


async def test_without_parec_the_host_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "pactl").write_text("#!/bin/sh\nexit 0\n")
    (tools / "pactl").chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    with pytest.raises(HostStartError) as err:
        await system_host()
    assert str(err.value) == NO_PAREC
    idle = HostService(FAST_HOST, AppStore(), output=SILENT)
    await idle.start()
    try:
        await idle.add_music(["system"])  # the app's picker
        (entry,) = [e for e in idle.store.get().log if "parec" in e.text]
        assert (entry.level, entry.text) == ("error", NO_PAREC)
        assert idle.streamer is None
    finally:
        await idle.aclose()
    proc = await launch(
        "host",
        "--headless",
        "--no-tls",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
        "--no-local-audio",
        "--play",
        "system",
        config_dir=tmp_path / "config",
        env={"PATH": str(tools)},
    )
    _, err_bytes = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    stderr = err_bytes.decode()
    assert proc.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip() == f"error: {NO_PAREC}"
