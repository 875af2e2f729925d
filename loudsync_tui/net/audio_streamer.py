"""The host's music: decodes the queue, encodes each 20 ms chunk once, and sends it to
every member that takes audio, a playback buffer ahead of the moment it plays.

Pacing follows the session clock, never the network: a chunk leaves when its play time
is `buffer` away, so a slow member can delay nobody (sends never wait; the server cuts a
member whose backlog passes the limit). The transport (core/transport.py) decides what
plays when; this adapter only reads files, encodes and sends.

A live source (this machine's sound, audio/capture.py) is read the same way, except that
its chunks exist only once captured: each plays a buffer after it was captured, so it
leaves as soon as its last sample is in (a little later than a file's would).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from loudsync_tui.audio.capture import CaptureBuffer, CaptureError, SystemCapture
from loudsync_tui.audio.codec import FRAME_SAMPLES, Encoder, make_encoder
from loudsync_tui.audio.player import Player
from loudsync_tui.audio.source import TrackError, TrackInfo, read_pcm
from loudsync_tui.core.effects import ConnId, HostEffect, Log
from loudsync_tui.core.epoch import CHANNELS, RATE, Epoch
from loudsync_tui.core.host import HostSession
from loudsync_tui.core.transport import (
    EpochStarted,
    QueueChanged,
    QueueEnded,
    TrackMeta,
    TrackStarted,
    Transport,
    TransportEffect,
)
from loudsync_tui.net.server import SessionServer
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.protocol import Pause, Play, Seek, Track, now_ms
from loudsync_tui.protocol_audio import AudioCodec, AudioFrame, encode_frame

log = logging.getLogger(__name__)

CATCH_UP_MARGIN_US = 10_000
"""A late joiner gets the chunks still to play at least this far ahead; earlier ones
would arrive too late to be heard."""
WARM_UP_CHUNKS = 2
"""...and the two before them: an Opus decoder that starts mid-stream is off for its
first packets (up to 65% RMS on the first, measured), so these prime it unheard."""

SEND_BURST_US = 60_000
"""Once a chunk is due, those due up to this much later go with it: a guest then wakes
once for four, and a wake-up, not decoding, is most of what a chunk costs it. (Live
audio goes as it is captured.)"""

LIVE_MAX_WAIT_US = 50_000
"""A live chunk still not captured this long after its last sample's capture time goes
out with silence for what is missing (the capture stalled): members must not starve."""
LIVE_RETRY_US = 3_000
"""How soon the streamer asks again for a live chunk not captured yet."""
LIVE_TOLERANCE = 96
"""Samples (2 ms) the live read position may stray from the sound it should read before
single samples are dropped or repeated, one per chunk, to bring it back: the capture's
clock and the session's drift apart (some hundred ppm), and a buffer must not grow."""
LIVE_RESYNC = RATE // 50
"""Further off than this (20 ms: a stall, a restart) the read position jumps instead."""
LIVE_FADE = 240
"""Samples (5 ms) faded out where live audio stops short (a pause or a skip)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    play_us: float
    """Session time the chunk's last sample plays: kept for late joiners until then."""
    data: bytes


class _Reader:
    """One track from a sample on, in exact 960-sample chunks (the last one padded)."""

    def __init__(self, path: Path, start: int) -> None:
        self._source: Iterator[NDArray[np.int16]] = read_pcm(path, max(0, start))
        self._pending: list[NDArray[np.int16]] = []
        self._have = 0
        self.lead_in = max(0, -start)
        """Silence before the track's first sample (an encoder's priming)."""
        self.ended_at: int | None = None
        """The track's length in samples, once the decoder ran out."""
        self.position = start

    def next_chunk(self) -> NDArray[np.int16] | None:
        """The next chunk, None once the track is over (`ended_at` then says where)."""
        if self.ended_at is not None:
            return None
        if self.lead_in:
            take = min(self.lead_in, FRAME_SAMPLES)
            self.lead_in -= take
            self._pending.append(np.zeros((take, CHANNELS), np.int16))
            self._have += take
        while self._have < FRAME_SAMPLES:
            block = next(self._source, None)
            if block is None:
                break
            self._pending.append(block)
            self._have += len(block)
        if self._have == 0:
            self.ended_at = self.position
            return None
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        chunk, rest = joined[:FRAME_SAMPLES], joined[FRAME_SAMPLES:]
        self._pending = [rest] if len(rest) else []
        self._have = len(rest)
        real = len(chunk)
        self.position += real
        if real < FRAME_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros((FRAME_SAMPLES - real, CHANNELS), np.int16)])
        return chunk

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class LiveReader:
    """A live source for one epoch, in exact 960-sample chunks as `_Reader` is a file:
    epoch sample k is the sound captured at session time `epoch.time_of(k) - lead_us`,
    so every member plays it a buffer after it was captured. It never ends.

    `next_chunk()` returns None while the chunk is not captured yet ("not yet": ask
    again in `retry_us`), never as an end. The capture's clock and the session's drift
    apart: the read position keeps within `LIVE_TOLERANCE` of the capture time it
    should read by dropping or repeating single samples, where the sound changes least.
    """

    ended_at: int | None = None
    """Always None: a live source has no end (`_Reader`'s interface)."""

    def __init__(
        self,
        buffer: CaptureBuffer,
        epoch: Epoch,
        start: int,
        *,
        lead_us: int,
        session_origin_us: int,
        clock: Callable[[], float] | None = None,
        max_wait_us: int = LIVE_MAX_WAIT_US,
    ) -> None:
        self.buffer = buffer
        self.position = start
        self._epoch = epoch
        self._offset_us = session_origin_us - lead_us
        """Monotonic time of a sample's capture minus its session play time."""
        self._clock = clock or _monotonic_us
        self._max_wait_us = max_wait_us
        self._read: int | None = None
        """The capture index of the next chunk's first sample; None until aligned."""
        self.retry_us: float = LIVE_RETRY_US
        self.dropped = 0
        self.repeated = 0
        self.resyncs = 0
        self.missing = 0
        """Samples sent as silence because the capture had not delivered them in time."""
        self.chunks = 0
        self.send_delay_us = 0.0
        """How long after its last sample was captured the latest chunk went out."""
        self.max_send_delay_us = 0.0
        self.error_samples = 0.0
        """The read position minus where it should be, at the latest chunk."""

    @property
    def corrections(self) -> int:
        return self.dropped + self.repeated

    def capture_time_us(self, sample: float) -> float:
        """The monotonic time (µs) at which the sound this epoch plays as `sample` is
        captured."""
        return self._epoch.time_of(sample) + self._offset_us

    def next_chunk(self, *, wait: bool = True) -> NDArray[np.int16] | None:
        """The next chunk; None while it is not captured yet (never with `wait=False`,
        which sends silence for what is missing, faded: the epoch is being replaced).
        TrackError once the capture failed."""
        buffer = self.buffer
        if buffer.failed is not None:
            raise TrackError(buffer.failed)
        now = self._clock()
        first = self.capture_time_us(self.position)
        last = self.capture_time_us(self.position + FRAME_SAMPLES)
        patient = wait and now < last + self._max_wait_us
        origin = buffer.origin_us()
        if origin is None:  # nothing captured yet: the capture is starting
            if patient:
                self.retry_us = max(LIVE_RETRY_US, last - now)
                return None
            return self._emit(np.zeros((FRAME_SAMPLES, CHANNELS), np.int16), now, last)
        want = (first - origin) * RATE / 1e6
        read, step, resync = self._plan(want)
        take = FRAME_SAMPLES + step
        if patient and buffer.end < read + take:
            ready = origin + (read + take) * 1e6 / RATE
            self.retry_us = min(max(LIVE_RETRY_US, ready - now), self._max_wait_us)
            return None
        raw, missing = buffer.read(read, take)
        self._read = read + take
        self.error_samples = read - want
        self.resyncs += resync
        if step > 0:
            raw = drop_one(raw)
            self.dropped += 1
        elif step < 0:
            raw = repeat_one(raw)
            self.repeated += 1
        if missing:
            if wait:
                self.missing += missing
            else:
                fade_out(raw, FRAME_SAMPLES - missing)
        return self._emit(raw, now, last)

    def _plan(self, want: float) -> tuple[int, int, bool]:
        """Where to read the next chunk, whether to take a sample more (+1: drop one)
        or less (-1: repeat one) than a chunk, and whether that is a jump."""
        read = self._read
        if read is None or abs(read - want) > LIVE_RESYNC:
            return round(want), 0, read is not None
        error = read - want
        if error > LIVE_TOLERANCE:  # reading sound captured too recently: hold back
            return read, -1, False
        if error < -LIVE_TOLERANCE:  # reading sound too old: a backlog builds
            return read, 1, False
        return read, 0, False

    def _emit(self, chunk: NDArray[np.int16], now: float, last: float) -> NDArray[np.int16]:
        self.position += FRAME_SAMPLES
        self.chunks += 1
        self.send_delay_us = now - last
        self.max_send_delay_us = max(self.max_send_delay_us, self.send_delay_us)
        return chunk

    def close(self) -> None:
        """The capture goes on (the streamer owns it); this epoch's reading ends."""


def drop_one(raw: NDArray[np.int16]) -> NDArray[np.int16]:
    """`raw` less one sample, taken where its neighbours are closest (least heard)."""
    wide = raw.astype(np.int32)
    jump = np.abs(wide[2:] - wide[:-2]).sum(axis=1)
    return np.delete(raw, int(np.argmin(jump)) + 1, axis=0)


def repeat_one(raw: NDArray[np.int16]) -> NDArray[np.int16]:
    """`raw` with one sample said twice, where the sound changes least."""
    step = np.abs(np.diff(raw.astype(np.int32), axis=0)).sum(axis=1)
    at = int(np.argmin(step)) if len(step) else 0
    return np.insert(raw, at, raw[at], axis=0)


def fade_out(chunk: NDArray[np.int16], valid: int) -> None:
    """Fade the last `LIVE_FADE` samples before `valid` to silence (in place); what
    follows is silence already."""
    begin = max(0, valid - LIVE_FADE)
    if valid > begin:
        ramp = np.linspace(1.0, 0.0, valid - begin, endpoint=False)[:, None]
        chunk[begin:valid] = (chunk[begin:valid] * ramp).astype(np.int16)


def _monotonic_us() -> float:
    return time.monotonic_ns() / 1000


class AudioStreamer:
    def __init__(
        self,
        core: HostSession,
        server: SessionServer,
        tracks: Sequence[TrackInfo],
        *,
        on_events: Callable[[list[HostEffect]], None],
        on_transport: Callable[[list[TransportEffect]], None],
        codec: AudioCodec = AudioCodec.OPUS,
        buffer_ms: float = 250.0,
        loop: bool = False,
        local: Player | None = None,
    ) -> None:
        self.core = core
        self.server = server
        self.tracks = list(tracks)
        self.codec = codec
        self.transport = Transport(
            [_meta(t) for t in tracks],
            lead_us=round(buffer_ms * 1000),
            loop=loop,
        )
        self.local = local
        self._on_events = on_events
        self._on_transport = on_transport
        self._wake = asyncio.Event()
        self._tasks = TaskOwner("audio streamer")
        self._runner: asyncio.Task[None] | None = None
        self._reader: _Reader | LiveReader | None = None
        self._encoder: Encoder | None = None
        self._next = 0
        """The next sample (of the current epoch's track) to send."""
        self._sent: deque[_Sent] = deque()
        self._streaming: Epoch | None = None
        """The epoch whose audio the reader and encoder produce."""
        self.chunks_sent = 0
        self.capture: SystemCapture | None = None
        """This machine's sound, while a live track is current (paused too)."""
        self._captures: list[SystemCapture] = []
        """Every capture started, to be sure all are stopped at the end."""

    @property
    def live(self) -> LiveReader | None:
        """The live source's reader while one plays (its figures: corrections, delay)."""
        return self._reader if isinstance(self._reader, LiveReader) else None

    # Commands ---------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = self._tasks.spawn(self._run(), name="audio-streamer")

    # `by`: the DJ whose CONTROL it is, named in the messages; None: the host.

    def play(self, by: str | None = None) -> None:
        self._apply(self.transport.play(self._now()), by)

    def pause(self, by: str | None = None) -> None:
        self._apply(self.transport.pause(self._now()), by)

    def toggle(self, by: str | None = None) -> None:
        self._apply(self.transport.toggle(self._now()), by)

    def seek_by(self, seconds: float, by: str | None = None) -> None:
        self._apply(self.transport.seek_by(self._now(), seconds), by)

    def skip(self, step: int, by: str | None = None) -> None:
        self._apply(self.transport.skip(self._now(), step), by)

    def control(self, action: str, seconds: float = 0.0, by: str | None = None) -> None:
        """See `Transport.control`: raises ControlRefused, and then nothing changes."""
        self._apply(self.transport.control(self._now(), action, seconds), by)

    def play_index(self, index: int) -> None:
        self._apply(self.transport.play_index(self._now(), index))

    def add(self, tracks: Sequence[TrackInfo]) -> None:
        self.tracks.extend(tracks)
        self._apply(self.transport.add([_meta(t) for t in tracks]))

    def remove(self, index: int) -> None:
        """Take entry `index` out of the queue (the current one: the next plays instead)."""
        if 0 <= index < len(self.tracks):
            del self.tracks[index]
            self._apply(self.transport.remove(self._now(), index))

    def set_loop(self, loop: bool) -> None:
        self._apply(self.transport.set_loop(loop))

    def catch_up(self, conn: ConnId) -> None:
        """A member that just joined gets the chunks sent before it came and still to play."""
        limit = self._now() + CATCH_UP_MARGIN_US
        sent = list(self._sent)
        first = next((i for i, s in enumerate(sent) if s.play_us >= limit), len(sent))
        for chunk in sent[max(0, first - WARM_UP_CHUNKS) :]:
            self.server.send_audio((conn,), chunk.data)

    async def aclose(self) -> None:
        await self._tasks.aclose()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        captures, self._captures, self.capture = self._captures, [], None
        if captures:  # the machine's sound goes back to its speakers
            await asyncio.to_thread(_stop_all, captures)

    # The pacing loop --------------------------------------------------------------

    def _now(self) -> int:
        return self.core.session_clock_us

    async def _run(self) -> None:
        while True:
            wait = self._send_due()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _send_due(self) -> float | None:
        """Send every chunk due now; returns seconds until the next is due (None: idle)."""
        transport = self.transport
        burst = 0
        for _ in range(500):  # 10 s of audio at most per turn: never starve the loop
            now = self._now()
            due = transport.due_sample(now + burst)
            epoch = transport.epoch
            if due is None or epoch is None:
                return None
            if self._next >= due:
                ahead = epoch.time_of(self._next) - transport.lead_us - now
                return max(0.001, ahead / 1e6)
            sent = self._send_one(epoch)
            if sent is None and isinstance(self._reader, LiveReader):
                return self._reader.retry_us / 1e6  # not captured yet
            if not sent:
                return 0.0  # the track ended; the next epoch is in place
            if not isinstance(self._reader, LiveReader):
                burst = SEND_BURST_US
        return 0.0

    def _send_one(self, epoch: Epoch) -> bool | None:
        """True: a chunk went out; False: the track is over (the next epoch is in
        place); None: a live chunk is not captured yet."""
        reader, encoder = self._reader, self._encoder
        if reader is None or encoder is None:
            return False
        if isinstance(reader, LiveReader):
            try:
                live = reader.next_chunk()
            except TrackError as exc:  # the capture failed: PLAY tries it again
                self._on_events([Log("warning", f"{exc}; paused")])
                self._apply(self.transport.pause(self._now()))
                return False
            if live is None:
                return None
            self._send_chunk(epoch, encoder, live)
            return True
        try:
            chunk = reader.next_chunk()
        except TrackError as exc:
            self._on_events([Log("warning", f"{exc}; skipping to the next track")])
            chunk = None
            reader.ended_at = reader.position
        if chunk is None:
            self._finish_track(reader, encoder, epoch)
            return False
        self._send_chunk(epoch, encoder, chunk)
        return True

    def _send_chunk(self, epoch: Epoch, encoder: Encoder, chunk: NDArray[np.int16]) -> None:
        first = self._next - encoder.delay_samples
        self._next += FRAME_SAMPLES
        data = encode_frame(
            AudioFrame(
                epoch.number,
                AudioCodec(int(encoder.codec)),
                first,
                FRAME_SAMPLES,
                encoder.encode(chunk),
            )
        )
        self.server.send_audio(self.core.audio_conns(), data)
        if self.local is not None:
            self.local.frame(data)
        self._sent.append(_Sent(epoch.time_of(first + FRAME_SAMPLES), data))
        kept_from = self._now() - WARM_UP_CHUNKS * FRAME_SAMPLES * 1e6 / RATE
        while self._sent and self._sent[0].play_us < kept_from:
            self._sent.popleft()
        self.chunks_sent += 1

    def _finish_track(self, reader: _Reader, encoder: Encoder, epoch: Epoch) -> None:
        """The track ran out: flush the codec's tail, then the transport moves on."""
        end = reader.ended_at if reader.ended_at is not None else reader.position
        if encoder.delay_samples and self._next < end + encoder.delay_samples:
            self._send_chunk(epoch, encoder, np.zeros((FRAME_SAMPLES, CHANNELS), np.int16))
        self._apply(self.transport.track_ended(end))

    # Transport effects --------------------------------------------------------------

    def _apply(self, effects: list[TransportEffect], by: str | None = None) -> None:
        if not effects:
            return
        messages: list[HostEffect] = []
        timestamp = now_ms()
        for effect in effects:
            match effect:
                case TrackStarted():
                    messages += self.core.announce(track_message(effect, timestamp, by))
                case EpochStarted(epoch=epoch, kind=kind):
                    messages += self.core.announce(_epoch_message(epoch, kind, timestamp, by))
                    self._begin(epoch)
                    if self.local is not None:
                        self.local.set_epoch(epoch)
                case QueueEnded():
                    messages.append(Log("info", "The queue has ended"))
                case QueueChanged():
                    pass
        self.server.apply(messages)
        self._on_transport(effects)
        self._wake.set()

    def _begin(self, epoch: Epoch) -> None:
        """A new epoch is a new stream: a fresh encoder, reading from its first sample
        (a chunk early when the codec lags its input, so its first sample is covered)."""
        self._top_up(epoch.t0_us)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._sent.clear()
        self._streaming = epoch
        capture = self._use_capture(epoch)
        if not epoch.playing:
            return
        encoder = make_encoder(self.codec)
        start = epoch.k0 - (FRAME_SAMPLES if encoder.delay_samples else 0)
        self._encoder = encoder
        if capture is not None:
            self._reader = LiveReader(
                capture.buffer,
                epoch,
                start,
                lead_us=self.transport.lead_us,
                session_origin_us=self.core.started_us,
            )
        else:
            self._reader = _Reader(self.tracks[self.transport.index].path, start)
        self._next = start

    def _use_capture(self, epoch: Epoch) -> SystemCapture | None:
        """The capture runs while a live track is current: started when it plays, kept
        while it is paused, stopped once another track is current or it failed (PLAY
        then starts a new one)."""
        queue, index = self.transport.queue, self.transport.index
        live = 0 <= index < len(queue) and queue[index].live
        capture = self.capture
        if capture is not None and (not live or capture.buffer.failed is not None):
            self.capture = None
            if not self._tasks.closed:  # else aclose stops it
                self._tasks.spawn(asyncio.to_thread(capture.stop), name="capture-stop")
            capture = None
        if live and capture is None and epoch.playing and not self._tasks.closed:
            capture = self.capture = SystemCapture()
            self._captures.append(capture)
            self._tasks.spawn(_start_capture(capture), name="capture-start")
        return capture

    def _top_up(self, until_us: int) -> None:
        """Send the epoch being replaced up to the moment the new one takes over (and a
        chunk beyond, for the fade there): it was sent only a buffer ahead, in whole
        chunks, so without this members would fall silent just before a PAUSE or SEEK."""
        old, reader, encoder = self._streaming, self._reader, self._encoder
        if old is None or not old.playing or reader is None or encoder is None:
            return
        chunk_us = FRAME_SAMPLES * 1e6 / RATE
        while old.time_of(self._next - encoder.delay_samples) < until_us + chunk_us:
            try:
                if isinstance(reader, LiveReader):  # what is not captured yet is silence
                    chunk = reader.next_chunk(wait=False)
                else:
                    chunk = reader.next_chunk()
            except TrackError:
                return
            if chunk is None:
                return
            self._send_chunk(old, encoder, chunk)


async def _start_capture(capture: SystemCapture) -> None:
    with contextlib.suppress(CaptureError):  # kept in its buffer: the reader reports it
        await asyncio.to_thread(capture.start)


def _stop_all(captures: list[SystemCapture]) -> None:
    for capture in captures:
        capture.stop()


def _meta(track: TrackInfo) -> TrackMeta:
    return TrackMeta(track.title, track.artist, track.album, track.duration_ms, track.live)


def track_message(started: TrackStarted, timestamp: int, by: str | None = None) -> Track:
    meta = started.meta
    return Track(
        timestamp=timestamp,
        track_id=started.track_id,
        title=meta.title,
        artist=meta.artist,
        album=meta.album,
        duration_ms=meta.duration_ms,
        position=started.position,
        queue_length=started.queue_length,
        by=by,
        live=meta.live,
    )


def _epoch_message(
    epoch: Epoch, kind: str, timestamp: int, by: str | None = None
) -> Play | Pause | Seek:
    fields = {
        "timestamp": timestamp,
        "epoch": epoch.number,
        "track_id": epoch.track_id,
        "at_us": max(0, epoch.t0_us),
        "sample": epoch.k0,
    }
    if kind == "seek":
        return Seek(**fields, by=by, playing=epoch.playing)
    if epoch.playing:
        return Play(**fields, by=by)
    return Pause(**fields, by=by)
