"""The host's music: decodes the queue, encodes each 20 ms chunk once, and sends it to
every member that takes audio, a playback buffer ahead of the moment it plays.

Pacing follows the session clock, never the network: a chunk leaves when its play time
is `buffer` away, so a slow member can delay nobody (sends never wait; the server cuts a
member whose backlog passes the limit). The transport (core/transport.py) decides what
plays when; this adapter only reads files, encodes and sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

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
        self._reader: _Reader | None = None
        self._encoder: Encoder | None = None
        self._next = 0
        """The next sample (of the current epoch's track) to send."""
        self._sent: deque[_Sent] = deque()
        self._streaming: Epoch | None = None
        """The epoch whose audio the reader and encoder produce."""
        self.chunks_sent = 0

    # Commands ---------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = self._tasks.spawn(self._run(), name="audio-streamer")

    def play(self) -> None:
        self._apply(self.transport.play(self._now()))

    def pause(self) -> None:
        self._apply(self.transport.pause(self._now()))

    def toggle(self) -> None:
        self._apply(self.transport.toggle(self._now()))

    def seek_by(self, seconds: float) -> None:
        self._apply(self.transport.seek_by(self._now(), seconds))

    def skip(self, step: int) -> None:
        self._apply(self.transport.skip(self._now(), step))

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
        for _ in range(500):  # 10 s of audio at most per turn: never starve the loop
            now = self._now()
            due = transport.due_sample(now)
            epoch = transport.epoch
            if due is None or epoch is None:
                return None
            if self._next >= due:
                ahead = epoch.time_of(self._next) - transport.lead_us - now
                return max(0.001, ahead / 1e6)
            if not self._send_one(epoch):
                return 0.0  # the track ended; the next epoch is in place
        return 0.0

    def _send_one(self, epoch: Epoch) -> bool:
        reader, encoder = self._reader, self._encoder
        if reader is None or encoder is None:
            return False
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

    def _apply(self, effects: list[TransportEffect]) -> None:
        if not effects:
            return
        messages: list[HostEffect] = []
        timestamp = now_ms()
        for effect in effects:
            match effect:
                case TrackStarted():
                    messages += self.core.announce(track_message(effect, timestamp))
                case EpochStarted(epoch=epoch, kind=kind):
                    messages += self.core.announce(_epoch_message(epoch, kind, timestamp))
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
        if not epoch.playing:
            return
        encoder = make_encoder(self.codec)
        start = epoch.k0 - (FRAME_SAMPLES if encoder.delay_samples else 0)
        self._encoder = encoder
        self._reader = _Reader(self.tracks[self.transport.index].path, start)
        self._next = start

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
                chunk = reader.next_chunk()
            except TrackError:
                return
            if chunk is None:
                return
            self._send_chunk(old, encoder, chunk)


def _meta(track: TrackInfo) -> TrackMeta:
    return TrackMeta(track.title, track.artist, track.album, track.duration_ms)


def track_message(started: TrackStarted, timestamp: int) -> Track:
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
    )


def _epoch_message(epoch: Epoch, kind: str, timestamp: int) -> Play | Pause | Seek:
    fields = {
        "timestamp": timestamp,
        "epoch": epoch.number,
        "track_id": epoch.track_id,
        "at_us": max(0, epoch.t0_us),
        "sample": epoch.k0,
    }
    if kind == "seek":
        return Seek(**fields, playing=epoch.playing)
    if epoch.playing:
        return Play(**fields)
    return Pause(**fields)
