"""A member's speakers: audio frames in, sound out on the session timeline.

Host and guests play through the same pipeline (decode, playout, PortAudio output), so
whatever delay it adds is the same everywhere and cancels between members. The player
is fed from the event loop; the playout engine is read from PortAudio's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from loudsync_tui.audio.codec import CodecError, Decoder, make_decoder
from loudsync_tui.audio.output import AudioOutput, AudioOutputError, audio_unavailable_reason
from loudsync_tui.config import OutputConfig, OutputSettings
from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.core.playout import Playout, SyncStats
from loudsync_tui.protocol import SyncReport
from loudsync_tui.protocol_audio import AudioFrameError, decode_frame

log = logging.getLogger(__name__)


class Player:
    def __init__(
        self,
        *,
        device: str | int | None = None,
        latency_s: float | None = None,
        dac_skew_ppm: float = 0.0,
        volume: float = 1.0,
        latency_offset_ms: float = 0.0,
    ) -> None:
        self.playout = Playout()
        self.volume = volume
        self.latency_offset_ms = latency_offset_ms
        self.playout.set_volume(volume)
        self.playout.set_latency_offset_ms(latency_offset_ms)
        self.on_settings: Callable[[OutputSettings], None] | None = None
        """Called with the new settings after each change (to remember them)."""
        self._device = device
        self._latency_s = latency_s
        self._dac_skew_ppm = dac_skew_ppm
        self._output: AudioOutput | None = None
        self._decoder: Decoder | None = None
        self._decoding: tuple[int, int] | None = None
        """(epoch, codec) the decoder's state belongs to: a new epoch is a new stream."""
        self._epoch = -1
        self.bad_frames = 0
        self.problem: str | None = None
        """Why frames could not be played (the first bad frame's text), for one log line."""

    @classmethod
    def of(cls, output: OutputConfig) -> Player:
        """A player for these speakers' options (not yet started)."""
        return cls(
            device=output.device,
            latency_s=output.latency_s,
            dac_skew_ppm=output.dac_skew_ppm,
            volume=output.volume,
            latency_offset_ms=output.latency_offset_ms,
        )

    def start(self) -> str | None:
        """Open the sound device; None when sound plays, else one line saying why not
        (the session goes on without sound)."""
        reason = audio_unavailable_reason()
        if reason is not None:
            return reason
        output = AudioOutput(
            self.playout,
            device=self._device,
            latency_s=self._latency_s,
            dac_skew_ppm=self._dac_skew_ppm,
        )
        try:
            output.start()
        except AudioOutputError as exc:
            return str(exc)
        self._output = output
        return None

    @property
    def device_name(self) -> str | None:
        return None if self._output is None else self._output.device_name

    def close(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    # From the session -------------------------------------------------------------

    def set_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        """A new volume or latency offset (None: unchanged), ramped by the playout."""
        if volume is not None:
            self.volume = volume
            self.playout.set_volume(volume)
        if latency_offset_ms is not None:
            self.latency_offset_ms = latency_offset_ms
            self.playout.set_latency_offset_ms(latency_offset_ms)
        if self.on_settings is not None:
            self.on_settings(OutputSettings(self.volume, self.latency_offset_ms))

    def set_clock(self, estimate: ClockEstimate | None) -> None:
        self.playout.set_clock(estimate)

    def set_epoch(self, epoch: Epoch) -> None:
        self._epoch = max(self._epoch, epoch.number)
        self.playout.set_epoch(epoch)

    def frame(self, data: bytes) -> None:
        """One binary frame from the host: decoded and placed on its epoch's timeline.
        A frame that cannot be decoded is counted and skipped, never fatal."""
        try:
            frame = decode_frame(data)
            if frame.epoch < self._epoch:
                return  # an older epoch's audio, still in flight: it would be dropped
            stream = (frame.epoch, int(frame.codec))
            if self._decoder is None or self._decoding != stream:
                if self._decoder is None or self._decoder.codec != frame.codec:
                    self._decoder = make_decoder(frame.codec)
                else:
                    self._decoder.reset()
                self._decoding = stream
            pcm = self._decoder.decode(frame.payload)
        except (AudioFrameError, CodecError) as exc:
            self.bad_frames += 1
            if self.problem is None:
                self.problem = str(exc)
            return
        self.playout.add_chunk(frame.epoch, frame.first_sample, pcm)

    def stats(self) -> SyncStats:
        return self.playout.stats()

    def report(self) -> SyncReport | None:
        """The figures a guest sends in its PING; None while nothing plays here."""
        stats = self.playout.stats()
        if self._output is None or not stats.playing:
            return None
        return SyncReport(
            error_us=round(stats.error_us, 1),
            underruns=stats.underruns,
            buffer_ms=round(max(0.0, stats.buffer_ms), 1),
            rate_ratio=round(stats.rate_ratio, 7),
            volume=round(self.volume, 3),
            latency_offset_ms=round(self.latency_offset_ms, 2),
        )
