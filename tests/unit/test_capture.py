"""This machine's sound as a source, without a sound server: the captured samples and
their times, the live reader's chunks and drift corrections in virtual time, what the
server's answers mean, and the one-line errors when its tools are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from loudsync_tui.audio.capture import (
    CAPTURE_SINK,
    CaptureBuffer,
    CaptureError,
    SinkInput,
    SystemCapture,
    parse_default_sink,
    parse_sink_inputs,
    parse_sinks,
    system_track,
)
from loudsync_tui.audio.codec import FRAME_SAMPLES
from loudsync_tui.audio.source import TrackError
from loudsync_tui.core.epoch import CHANNELS, RATE, Epoch
from loudsync_tui.net.audio_streamer import (
    LIVE_MAX_WAIT_US,
    LIVE_RETRY_US,
    LIVE_TOLERANCE,
    LiveReader,
    _meta,
    drop_one,
    repeat_one,
)

LEAD_US = 250_000


def ids(first: int, count: int) -> NDArray[np.int16]:
    """Samples that say their own capture index: low 15 bits left, the rest right."""
    c = np.arange(first, first + count)
    return np.stack([c & 0x7FFF, c >> 15], axis=1).astype(np.int16)


def index_of(chunk: NDArray[np.int16]) -> NDArray[np.int64]:
    return chunk[:, 0].astype(np.int64) + (chunk[:, 1].astype(np.int64) << 15)


class Sim:
    """A capture and the streamer's pacing in virtual time (monotonic µs; the session
    clock is the monotonic one). The capture clock runs `ppm` off; each block arrives
    `delay_us` after its last sample was captured, plus up to `jitter_us`."""

    def __init__(
        self, *, ppm: float = 0.0, block: int = 480, delay_us: float = 3_000, jitter_us: float = 0
    ) -> None:
        self.now = 5_000_000.0
        self.buffer = CaptureBuffer()
        self.rate = RATE * (1 + ppm * 1e-6)
        self.block = block
        self.delay_us = delay_us
        self.jitter_us = jitter_us
        self.rng = np.random.default_rng(3)
        self.started = self.now
        self.captured = 0
        self.delivering = True
        self.reader = LiveReader(
            self.buffer,
            Epoch(1, 1, True, round(self.now) + LEAD_US, 0),
            0,
            lead_us=LEAD_US,
            session_origin_us=0,
            clock=lambda: self.now,
        )
        self.chunks: list[NDArray[np.int16]] = []
        self.errors: list[float] = []

    def captured_at(self, index: int) -> float:
        return self.started + index / self.rate * 1e6

    def run(self, seconds: float, step_us: float = 1_000) -> None:
        end = self.now + seconds * 1e6
        while self.now < end:
            self.now += step_us
            while self.delivering:
                arrival = self.captured_at(self.captured + self.block) + self.delay_us
                arrival += self.rng.uniform(0, self.jitter_us)
                if arrival > self.now:
                    break
                stamp = max(arrival, self.now - step_us)  # a backlog arrives now
                self.buffer.push(ids(self.captured, self.block), round(stamp * 1000))
                self.captured += self.block
            self.pace()

    def pace(self) -> None:
        """As the streamer does: a chunk is asked for once its first sample is due."""
        reader = self.reader
        while self.now >= reader.capture_time_us(reader.position):
            chunk = reader.next_chunk()
            if chunk is None:
                return
            assert chunk.shape == (FRAME_SAMPLES, CHANNELS)
            self.chunks.append(chunk)
            self.errors.append(reader.error_samples)


# The captured samples ----------------------------------------------------------------


def test_the_buffer_keeps_the_latest_samples_by_index() -> None:
    buffer = CaptureBuffer(keep=1000)
    buffer.push(ids(0, 700), 1_000_000_000)
    buffer.push(ids(700, 700), 1_020_000_000)
    assert buffer.end == 1400
    got, missing = buffer.read(300, 200)  # 300..399 are no longer kept: silence
    assert missing == 0
    assert not got[:100].any()
    np.testing.assert_array_equal(got[100:], ids(400, 100))
    got, missing = buffer.read(1350, 100)  # across the ring's end, and past the capture
    np.testing.assert_array_equal(got[:50], ids(1350, 50))
    assert missing == 50
    assert not got[50:].any()
    fresh = CaptureBuffer()
    fresh.push(ids(0, 100), 1_000_000_000)
    got, missing = fresh.read(-10, 20)  # before the capture began: silence, not missing
    assert missing == 0
    assert not got[:10].any()
    np.testing.assert_array_equal(got[10:], ids(0, 10))


def test_the_capture_time_is_the_least_delayed_arrival_of_the_last_second() -> None:
    buffer = CaptureBuffer()
    assert buffer.origin_us() is None
    start_us = 7_000_000.0
    for n, late_us in enumerate([4_000, 1_000, 9_000, 2_500]):
        end = (n + 1) * 480
        buffer.push(ids(n * 480, 480), round((start_us + end / RATE * 1e6 + late_us) * 1000))
    assert buffer.origin_us() == pytest.approx(start_us + 1_000)
    # a second later the 1 ms arrival has left the window
    for n in range(4, 103):
        end = (n + 1) * 480
        buffer.push(ids(n * 480, 480), round((start_us + end / RATE * 1e6 + 3_000) * 1000))
    assert buffer.origin_us() == pytest.approx(start_us + 2_500, abs=1)


# The live reader -------------------------------------------------------------------------


def test_live_chunks_are_the_captured_samples_in_order_a_buffer_later() -> None:
    sim = Sim(jitter_us=4_000, block=441)  # blocks that do not divide a chunk
    sim.run(5.0)
    reader = sim.reader
    assert len(sim.chunks) > 200
    got = np.concatenate([index_of(c) for c in sim.chunks])
    started = int(np.flatnonzero(got)[0])
    assert np.all(np.diff(got[started:]) == 1)  # every captured sample, once, in order
    assert reader.corrections == reader.resyncs == reader.missing == 0
    # epoch sample k is what was captured at its play time minus the buffer (as the
    # least delayed blocks tell it: less their delay), within the tolerance
    k = len(got) - 1
    captured_then = (reader.capture_time_us(k) - sim.started) * RATE / 1e6
    expected = captured_then - sim.delay_us * RATE / 1e6
    assert got[k] == pytest.approx(expected, abs=LIVE_TOLERANCE)
    assert reader.ended_at is None


def test_a_chunk_not_captured_yet_is_not_yet_never_an_end() -> None:
    sim = Sim(block=960)
    sim.run(1.0)
    reader = sim.reader
    position = reader.position
    assert sim.now >= reader.capture_time_us(position)  # due, but its samples are not in
    assert reader.next_chunk() is None
    assert reader.position == position
    assert LIVE_RETRY_US <= reader.retry_us <= LIVE_MAX_WAIT_US
    sim.run(0.03)
    assert reader.position > position
    assert reader.ended_at is None


def test_a_stalled_capture_is_silence_after_a_short_wait() -> None:
    sim = Sim()
    sim.run(1.0)
    sim.delivering = False
    sent = len(sim.chunks)
    sim.run(0.5)
    reader = sim.reader
    assert len(sim.chunks) > sent + 20  # members do not starve
    assert reader.missing >= 20 * FRAME_SAMPLES
    assert not sim.chunks[-1].any()
    assert reader.max_send_delay_us <= LIVE_MAX_WAIT_US + 1_000
    sim.delivering = True  # what it captured meanwhile arrives late: the timeline holds
    sim.run(2.0)
    assert reader.resyncs == 0
    assert reader.corrections == 0
    tail = np.concatenate([index_of(c) for c in sim.chunks[-100:]])
    assert np.all(np.diff(tail) == 1)


def test_nothing_captured_yet_waits_then_sends_silence() -> None:
    sim = Sim()
    sim.delivering = False
    reader = sim.reader
    sim.now = reader.capture_time_us(0)
    assert reader.next_chunk() is None
    sim.now = reader.capture_time_us(FRAME_SAMPLES) + LIVE_MAX_WAIT_US
    chunk = reader.next_chunk()
    assert chunk is not None
    assert not chunk.any()
    assert reader.position == FRAME_SAMPLES


@pytest.mark.parametrize(("ppm", "kind"), [(400.0, "dropped"), (-400.0, "repeated")])
def test_clock_drift_is_corrected_a_sample_at_a_time(ppm: float, kind: str) -> None:
    seconds = 30.0
    sim = Sim(ppm=ppm, jitter_us=2_000)
    sim.run(seconds)
    reader = sim.reader
    drift = abs(ppm) * 1e-6 * RATE * seconds  # the samples the clocks drift apart
    # all of it but the tolerance (the error starts near 0 and ends near its edge)
    assert drift - 2 * LIVE_TOLERANCE <= getattr(reader, kind) <= drift
    assert reader.corrections == getattr(reader, kind)  # never back and forth
    assert reader.resyncs == 0
    assert reader.missing == 0
    assert max(abs(e) for e in sim.errors) <= LIVE_TOLERANCE + 24  # 2.5 ms at most


def test_pausing_a_live_source_fills_what_is_not_captured_with_a_fade() -> None:
    now = 20_000_000.0
    buffer = CaptureBuffer()
    buffer.push(np.full((RATE, CHANNELS), 1000, np.int16), round(now * 1000))  # a second
    # the first chunk's sound was captured from 10 ms ago to 10 ms from now
    epoch = Epoch(1, 1, True, round(now - 10_000 + LEAD_US), 0)
    reader = LiveReader(buffer, epoch, 0, lead_us=LEAD_US, session_origin_us=0, clock=lambda: now)
    assert reader.next_chunk() is None
    chunk = reader.next_chunk(wait=False)  # the epoch is being replaced: no waiting
    assert chunk is not None
    assert reader.missing == 0  # and no stall
    assert np.all(chunk[:240] == 1000)
    assert np.all(np.diff(chunk[240:480, 0]) <= 0)  # fading out
    assert chunk[479, 0] < 10
    assert not chunk[480:].any()


def test_a_failed_capture_is_a_track_error() -> None:
    sim = Sim()
    sim.run(0.5)
    sim.buffer.fail("This machine's sound stopped: parec exited (1)")
    with pytest.raises(TrackError, match="parec exited"):
        sim.reader.next_chunk()


def test_a_dropped_or_repeated_sample_is_where_the_sound_changes_least() -> None:
    rising = (np.arange(FRAME_SAMPLES + 1) * 20).astype(np.int16)
    rising[600:603] = rising[600]  # flat here: dropping the middle one is unheard
    raw = np.stack([rising, rising], axis=1)
    dropped = drop_one(raw)
    assert dropped.shape == (FRAME_SAMPLES, CHANNELS)
    np.testing.assert_array_equal(dropped, np.delete(raw, 601, axis=0))
    short = (np.arange(FRAME_SAMPLES - 1) * 20).astype(np.int16)
    short[301] = short[300]
    raw = np.stack([short, short], axis=1)
    repeated = repeat_one(raw)
    assert repeated.shape == (FRAME_SAMPLES, CHANNELS)
    np.testing.assert_array_equal(repeated, np.insert(raw, 300, raw[300], axis=0))


# The server's answers ----------------------------------------------------------------------

SINK_INPUTS = """\
Sink Input #0
\tDriver: module-remap-sink.c
\tOwner Module: 2
\tClient: n/a
\tSink: 0
\tProperties:
\t\tmedia.name = "Remapped Stream"
Sink Input #7
\tDriver: protocol-native.c
\tOwner Module: 9
\tClient: 12
\tSink: 1
\tVolume: front-left: 65536 / 100% / 0.00 dB
\tProperties:
\t\tapplication.name = "Firefox"
\t\tapplication.process.id = "4242"
"""

SINKS = """\
Sink #0
\tState: RUNNING
\tName: alsa_output.pci-0000_00_1f.3.analog-stereo
\tDescription: Built-in Audio Analog Stereo
\tProperties:
\t\tdevice.description = "Built-in Audio Analog Stereo"
Sink #3
\tName: loudsync_capture
\tDescription: LOUDSYNC
"""


def test_the_servers_answers_are_read_in_the_c_locale() -> None:
    assert parse_sink_inputs(SINK_INPUTS) == [
        SinkInput(index=0, sink=0, client=None, pid=None),
        SinkInput(index=7, sink=1, client=12, pid=4242),
    ]
    assert parse_sinks(SINKS) == {
        "alsa_output.pci-0000_00_1f.3.analog-stereo": (0, "Built-in Audio Analog Stereo"),
        CAPTURE_SINK: (3, "LOUDSYNC"),
    }
    info = "Server Name: pulseaudio\nDefault Sink: alsa_output.x\nDefault Source: y\n"
    assert parse_default_sink(info) == "alsa_output.x"
    assert parse_default_sink("Default Sink: \n") is None


# Missing tools and no server: one line each --------------------------------------------------


def tools(directory: Path, pactl: str | None, parec: bool) -> Path:
    """A PATH of fake tools: `pactl` runs the given shell script body."""
    directory.mkdir()
    if pactl is not None:
        script = directory / "pactl"
        script.write_text(f"#!/bin/sh\n{pactl}\n")
        script.chmod(0o755)
    if parec:
        fake = directory / "parec"
        fake.write_text("#!/bin/sh\nexit 1\n")
        fake.chmod(0o755)
    return directory


def test_missing_tools_are_one_line_that_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tools(tmp_path / "empty", None, parec=False)))
    with pytest.raises(CaptureError) as err:
        system_track()
    assert str(err.value) == (
        "Cannot capture this machine's sound: "
        "pactl and parec are not installed (install pulseaudio-utils)"
    )
    capture = SystemCapture()
    with pytest.raises(CaptureError, match="not installed"):
        capture.start()
    assert capture.buffer.failed == str(err.value)
    capture.stop()
    capture.stop()  # idempotent
    assert not capture.running
    monkeypatch.setenv("PATH", str(tools(tmp_path / "no-parec", "exit 0", parec=False)))
    with pytest.raises(CaptureError) as err:
        system_track()
    assert str(err.value) == (
        "Cannot capture this machine's sound: parec is not installed (install pulseaudio-utils)"
    )
    assert "\n" not in str(err.value)


def test_no_server_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = 'echo "Connection failure: Connection refused" >&2; exit 1'
    monkeypatch.setenv("PATH", str(tools(tmp_path / "bin", refused, parec=True)))
    with pytest.raises(CaptureError) as err:
        system_track()
    assert str(err.value) == (
        "Cannot capture this machine's sound: no PulseAudio or PipeWire server answers "
        "(Connection failure: Connection refused)"
    )


def test_the_system_track_is_live_and_names_the_speakers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sinks.txt").write_text(SINKS.replace("Built-in", "\x1b[31mBuilt-in"))
    answers = (
        'case "$1" in\n'
        "  info) echo 'Default Sink: alsa_output.pci-0000_00_1f.3.analog-stereo';;\n"
        f"  list) /bin/cat {tmp_path / 'sinks.txt'};;\n"
        "  *) exit 1;;\n"
        "esac"
    )
    monkeypatch.setenv("PATH", str(tools(tmp_path / "bin", answers, parec=True)))
    track = system_track()
    assert (track.title, track.live, track.duration_ms) == ("This machine's sound", True, None)
    assert track.artist == "[31mBuilt-in Audio Analog Stereo"  # no escape reaches the wire
    meta = _meta(track)
    assert meta.live
    assert meta.title == "This machine's sound"
