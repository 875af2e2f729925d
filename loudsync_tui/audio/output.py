"""Sound out through PortAudio: a `Playout` rendered into the device's callback.

sounddevice is imported inside the functions: importing it raises OSError when
libportaudio2 is missing, and the app must still run (without sound) there.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from loudsync_tui.core.epoch import CHANNELS, RATE
from loudsync_tui.core.playout import Playout

log = logging.getLogger(__name__)

NO_PORTAUDIO = (
    "no sound output: PortAudio is not installed (Debian/Ubuntu: sudo apt install libportaudio2)"
)
NO_DEVICE = "no sound output device found"

GATE_SPAN_US = 200_000
GATE_TOLERANCE = 0.2
"""A new stream counts as running once its callbacks have consumed frames at the nominal
rate (±20%) for 200 ms: an idle PulseAudio sink takes a few buffers at once, then stalls
the stream 0-2 s while reporting 8-30 ms of latency, and a DAC time from before the
stall would put the whole timeline off by the stall."""
MAX_DAC_LEAD_S = 2.0
"""A DAC time further ahead than this (or behind now) is a backend that does not report
it: fall back to now + the stream's latency."""


class AudioOutputError(Exception):
    """The device cannot be opened; the message is one line meant for the user."""


@dataclass(frozen=True)
class OutputDevice:
    index: int
    name: str
    default_samplerate: float
    is_default: bool


@dataclass(frozen=True)
class OutputStatus:
    running: bool
    ready: bool
    """Frames are really being consumed: the Playout is being rendered."""
    callbacks: int
    underflows: int
    """PortAudio's own output underflows: the callback came too late."""
    errors: int
    """Exceptions caught in the callback (logged once), each a block of silence."""
    samplerate: int
    blocksize: int
    latency_s: float


LONG_BLOCK = 1920
SHORT_BLOCK = 480
"""Frames a callback renders: 40 ms, or down to 10 ms for a device asked to keep a short
buffer. A callback's cost is mostly waking a cold thread: `Playout.render` took 520 µs
of CPU for a 10 ms block after a 10 ms sleep and 150 µs back to back, so 5.2 % of a core
at 480 frames and 2.2 % at 1920 (the same render measured both ways)."""


def block_frames(latency_s: float | None) -> int:
    """The block for a device latency (None: PortAudio's "high" default): a quarter of
    the buffer in whole 10 ms, between SHORT_BLOCK and LONG_BLOCK."""
    if latency_s is None:
        return LONG_BLOCK
    quarter = int(latency_s * RATE / 4) // SHORT_BLOCK * SHORT_BLOCK
    return min(LONG_BLOCK, max(SHORT_BLOCK, quarter))


def _sounddevice() -> ModuleType:
    """Imported on use (it has no type stubs, hence import_module)."""
    return importlib.import_module("sounddevice")


def audio_unavailable_reason() -> str | None:
    """None when sound can be played; else one line saying why not and what to do."""
    try:
        sd = _sounddevice()
    except OSError:
        return NO_PORTAUDIO
    except ImportError:
        return "no sound output: the sounddevice package is missing (pip install sounddevice)"
    try:
        devices = sd.query_devices()
    except Exception as exc:
        return f"no sound output: PortAudio failed to list devices ({exc})"
    if not any(d["max_output_channels"] > 0 for d in devices):
        return NO_DEVICE
    return None


def list_output_devices() -> list[OutputDevice]:
    """Devices that can play; empty without PortAudio."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
        default = sd.default.device[1]
    except (OSError, ImportError):
        return []
    return [
        OutputDevice(i, str(d["name"]), float(d["default_samplerate"]), i == default)
        for i, d in enumerate(devices)
        if d["max_output_channels"] > 0
    ]


class _StartGate:
    """Says when callbacks arrive at the expected pace (see GATE_SPAN_US)."""

    def __init__(self, rate: float, blocksize: int) -> None:
        self.rate = rate
        self.max_gap_us = 3 * max(blocksize, 1024) / rate * 1e6 + 20_000
        self._start: float | None = None
        self._last = 0.0
        self._frames = 0

    def observe(self, now_us: float, frames: int) -> bool:
        if self._start is None or now_us - self._last > self.max_gap_us:
            self._start, self._last, self._frames = now_us, now_us, 0
            return False
        self._last = now_us
        self._frames += frames
        elapsed = now_us - self._start
        if elapsed < GATE_SPAN_US:
            return False
        pace = self._frames / (elapsed / 1e6) / self.rate
        if abs(pace - 1) <= GATE_TOLERANCE:
            return True
        self._start, self._frames = now_us, 0
        return False


class AudioOutput:
    """Plays a Playout on a PortAudio device.

    `dac_skew_ppm` is a diagnostic: it opens the device that far off 48 kHz while the
    Playout is still told 48 kHz, so it must find the true rate by its own regression.
    """

    def __init__(
        self,
        playout: Playout,
        *,
        device: str | int | None = None,
        latency_s: float | None = None,
        blocksize: int | None = None,
        dac_skew_ppm: float = 0.0,
    ) -> None:
        self.playout = playout
        self.device = device
        self.latency_s = latency_s
        self.blocksize = block_frames(latency_s) if blocksize is None else blocksize
        self.samplerate = round(RATE * (1 + dac_skew_ppm * 1e-6))
        self._stream: Any = None
        self._device_name = ""
        self._lock = threading.Lock()
        self._gate = _StartGate(RATE, self.blocksize)
        self._ready = False
        self._callbacks = 0
        self._underflows = 0
        self._errors = 0

    def start(self) -> None:
        """Open and start the stream; AudioOutputError (one line) if it cannot."""
        if self._stream is not None:
            return
        try:
            sd = _sounddevice()
        except OSError as exc:
            raise AudioOutputError(NO_PORTAUDIO) from exc
        self._gate = _StartGate(RATE, self.blocksize)
        self._ready = False
        try:
            stream = sd.OutputStream(
                samplerate=self.samplerate,
                channels=CHANNELS,
                dtype="float32",
                device=self.device,
                blocksize=self.blocksize,
                latency="high" if self.latency_s is None else self.latency_s,
                callback=self._callback,
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            name = "the default device" if self.device is None else f"device {self.device!r}"
            reason = " ".join(str(exc).split())
            raise AudioOutputError(f"cannot play on {name}: {reason}") from exc
        self._stream = stream
        try:
            self._device_name = str(sd.query_devices(stream.device)["name"])
        except (sd.PortAudioError, ValueError, KeyError, TypeError):
            self._device_name = str(self.device)

    @property
    def device_name(self) -> str | None:
        """The name of the device playing; None while stopped."""
        return None if self._stream is None else self._device_name

    def stop(self) -> None:
        """Stop and close the stream; the Playout keeps its state."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    close = stop

    def __enter__(self) -> AudioOutput:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def status(self) -> OutputStatus:
        stream = self._stream
        with self._lock:
            return OutputStatus(
                running=stream is not None and bool(stream.active),
                ready=self._ready,
                callbacks=self._callbacks,
                underflows=self._underflows,
                errors=self._errors,
                samplerate=self.samplerate,
                blocksize=0 if stream is None else int(stream.blocksize),
                latency_s=0.0 if stream is None else float(stream.latency),
            )

    def _callback(self, outdata: np.ndarray[Any, Any], frames: int, when: Any, status: Any) -> None:
        """PortAudio's thread: never raise, never block for long."""
        try:
            now_us = time.monotonic_ns() / 1000
            lead_s = when.outputBufferDacTime - when.currentTime
            if not 0 <= lead_s <= MAX_DAC_LEAD_S:
                stream = self._stream
                lead_s = float(stream.latency) if stream is not None else 0.0
            with self._lock:
                self._callbacks += 1
                self._underflows += bool(status.output_underflow)
            if not self._ready:
                self._ready = self._gate.observe(now_us, frames)
                outdata.fill(0)
                return
            outdata[:] = self.playout.render(frames, now_us + lead_s * 1e6)
        except Exception:
            outdata.fill(0)
            with self._lock:
                self._errors += 1
                first = self._errors == 1
            if first:
                log.exception("sound output callback failed; playing silence")
