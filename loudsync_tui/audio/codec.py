"""The wire codecs: one 20 ms chunk of 48 kHz stereo int16 in, one payload out, and back.

Opus is what goes over the network (about 16 times smaller than PCM at 128 kb/s); PCM
is there for debugging and for links where CPU matters more than bandwidth; FLAC is
lossless at about half PCM's bytes for music, for wired links that want every sample.

Timing contract: an encoder fed the chunks of a track from sample `s0` on returns, for
chunk `i`, a payload that decodes to track samples `[s0 + 960*i - delay_samples,
s0 + 960*i - delay_samples + 960)`, whatever decoder state it meets (a fresh decoder
applies no pre-skip). Samples before `s0` count as silence, so the first payload of a
stream opens with `delay_samples` of near-silence (the codec's window leaks a little of
sample `s0` on into its end). PCM and FLAC have `delay_samples == 0`.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Literal, Protocol

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from numpy.typing import NDArray

from loudsync_tui.core.epoch import CHANNELS, RATE
from loudsync_tui.protocol_audio import AudioCodec

FRAME_SAMPLES = 960
"""Samples per chunk and per payload: 20 ms at 48 kHz, a frame size Opus supports natively."""

PCM_FRAME_BYTES = FRAME_SAMPLES * CHANNELS * 2

DEFAULT_BITRATE = 128_000

OPUS_DEFAULT_DELAY = 312
"""libopus's look-ahead at 48 kHz (its pre-skip), used if the encoder does not report one."""

_LABELS = {AudioCodec.PCM: "PCM", AudioCodec.OPUS: "Opus", AudioCodec.FLAC: "FLAC"}
_OPUS_NAMES = ("libopus", "opus")  # the reference library first; FFmpeg's own as a fallback


class CodecError(Exception):
    """A payload that cannot be turned into one chunk of audio; the message says why."""


def codec_from_name(name: str) -> AudioCodec:
    """Parse "opus", "pcm" or "flac" (any case), as given on a command line or in a config."""
    try:
        return AudioCodec[name.strip().upper()]
    except KeyError:
        *rest, last = (c.name.lower() for c in AudioCodec)
        choices = f"{', '.join(rest)} or {last}"
        raise ValueError(f"unknown codec {name!r}: choose {choices}") from None


class Encoder(Protocol):
    @property
    def codec(self) -> AudioCodec: ...

    @property
    def delay_samples(self) -> int:
        """How many samples the decoded output lags the encoder's input."""
        ...

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """One (960, 2) int16 chunk in, one payload out, always."""
        ...


class Decoder(Protocol):
    @property
    def codec(self) -> AudioCodec: ...

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """One payload in, one (960, 2) int16 chunk out, or CodecError."""
        ...

    def reset(self) -> None:
        """Forget the stream so far, e.g. when a new epoch starts another one."""
        ...


class PcmEncoder:
    codec = AudioCodec.PCM
    delay_samples = 0

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        return _check_chunk(pcm).astype("<i2", copy=False).tobytes()


class PcmDecoder:
    codec = AudioCodec.PCM

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        if len(payload) != PCM_FRAME_BYTES:
            raise CodecError(f"PCM payload has {len(payload)} bytes, expected {PCM_FRAME_BYTES}")
        return np.frombuffer(payload, dtype="<i2").astype(np.int16).reshape(FRAME_SAMPLES, CHANNELS)

    def reset(self) -> None:
        """PCM keeps no state."""


class _AvEncoder:
    """One FFmpeg encoder context that turns each chunk into exactly one packet."""

    codec: AudioCodec
    delay_samples = 0

    def __init__(self, ctx: AudioCodecContext) -> None:
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        chunk = _check_chunk(pcm)
        frame = AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = RATE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        try:
            packets = self._ctx.encode(frame)
        except av.FFmpegError as err:
            raise CodecError(f"{_LABELS[self.codec]} encoder failed: {err}") from err
        # libopus and FFmpeg's FLAC encode synchronously: each 20 ms frame in gives its
        # packet at once. Anything else would break the timing contract: an error, not a queue.
        if len(packets) != 1:
            raise CodecError(f"{_LABELS[self.codec]} encoder returned {len(packets)} packets")
        return bytes(packets[0])


class OpusEncoder(_AvEncoder):
    codec = AudioCodec.OPUS

    def __init__(self, bitrate: int = DEFAULT_BITRATE) -> None:
        ctx = _opus_context("w")
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, RATE)
        ctx.options = {"frame_duration": "20", "application": "audio"}
        ctx.open()
        super().__init__(ctx)
        self.delay_samples = _pre_skip(ctx.extradata)


class FlacEncoder(_AvEncoder):
    """Lossless, in 20 ms FLAC frames: each carries its own header, so a guest may start
    decoding on any of them, as with Opus."""

    codec = AudioCodec.FLAC

    def __init__(self) -> None:
        ctx = _context("flac", "w")
        ctx.format = "s16"
        ctx.time_base = Fraction(1, RATE)
        ctx.options = {"frame_size": str(FRAME_SAMPLES)}
        ctx.open()
        super().__init__(ctx)


class _AvDecoder:
    """One FFmpeg decoder context: a payload in, one chunk out, or CodecError."""

    codec: AudioCodec

    def __init__(self) -> None:
        self._ctx = self._open()

    def _open(self) -> AudioCodecContext:
        raise NotImplementedError

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        name = _LABELS[self.codec]
        if not payload:
            raise CodecError(f"empty {name} payload")  # an empty packet would mean "flush"
        try:
            frames = self._ctx.decode(av.Packet(payload))
        except av.FFmpegError as err:
            raise CodecError(f"not a valid {name} packet ({len(payload)} bytes)") from err
        pcm = np.concatenate([_frame_s16(f) for f in frames]) if frames else _EMPTY
        if pcm.shape != (FRAME_SAMPLES, CHANNELS):
            raise CodecError(
                f"{name} packet decoded to {len(pcm)} samples, expected {FRAME_SAMPLES}"
            )
        return pcm

    def reset(self) -> None:
        self._ctx = self._open()


class OpusDecoder(_AvDecoder):
    codec = AudioCodec.OPUS

    def _open(self) -> AudioCodecContext:
        # No extradata, hence no pre-skip: a guest may start on any packet, and each
        # one then decodes to the range the timing contract gives it.
        ctx = _opus_context("r")
        ctx.open()
        return ctx


class FlacDecoder(_AvDecoder):
    codec = AudioCodec.FLAC

    def _open(self) -> AudioCodecContext:
        ctx = _context("flac", "r")
        ctx.open()
        return ctx


def make_encoder(codec: AudioCodec | int, bitrate: int = DEFAULT_BITRATE) -> Encoder:
    """An encoder for `codec` (or its wire number); `bitrate` (bits/s) only matters to Opus."""
    match AudioCodec(codec):
        case AudioCodec.OPUS:
            return OpusEncoder(bitrate)
        case AudioCodec.FLAC:
            return FlacEncoder()
        case AudioCodec.PCM:
            return PcmEncoder()


def make_decoder(codec: AudioCodec | int) -> Decoder:
    """A decoder for `codec`, or for the codec number a frame on the wire names."""
    match AudioCodec(codec):
        case AudioCodec.OPUS:
            return OpusDecoder()
        case AudioCodec.FLAC:
            return FlacDecoder()
        case AudioCodec.PCM:
            return PcmDecoder()


_EMPTY: NDArray[np.int16] = np.zeros((0, CHANNELS), dtype=np.int16)


def _check_chunk(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    if pcm.shape != (FRAME_SAMPLES, CHANNELS) or pcm.dtype != np.int16:
        raise ValueError(f"a chunk is ({FRAME_SAMPLES}, 2) int16, got {pcm.shape} {pcm.dtype}")
    return pcm


def _opus_context(mode: Literal["r", "w"]) -> AudioCodecContext:
    for name in _OPUS_NAMES:
        with contextlib.suppress(CodecError):
            return _context(name, mode)
    raise CodecError("this FFmpeg build has no Opus codec")


def _context(name: str, mode: Literal["r", "w"]) -> AudioCodecContext:
    """FFmpeg's codec `name`, set for 48 kHz stereo; CodecError if this build lacks it."""
    try:
        ctx = av.CodecContext.create(name, mode)
    except (av.FFmpegError, ValueError):
        ctx = None
    if not isinstance(ctx, AudioCodecContext):
        raise CodecError(f"this FFmpeg build has no {name} codec")
    ctx.sample_rate = RATE
    ctx.layout = "stereo"
    return ctx


def _pre_skip(extradata: bytes | None) -> int:
    """The encoder's delay, from the OpusHead it writes (pre-skip: bytes 10-11, LE)."""
    if extradata and len(extradata) >= 12 and extradata.startswith(b"OpusHead"):
        return int.from_bytes(extradata[10:12], "little")
    return OPUS_DEFAULT_DELAY


def _frame_s16(frame: AudioFrame) -> NDArray[np.int16]:
    """Interleaved int16, whatever sample format this FFmpeg's decoder hands out."""
    raw = frame.to_ndarray()
    samples = (raw.T if frame.format.is_planar else raw).reshape(-1, CHANNELS)
    if samples.dtype == np.int16:
        return np.asarray(samples, dtype=np.int16)
    scaled = np.rint(samples.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)
