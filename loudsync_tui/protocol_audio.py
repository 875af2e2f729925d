"""The binary half of the wire protocol: audio frames, host to guest only.

Each binary WebSocket frame is one encoded 20 ms chunk behind a fixed 20-byte header,
little-endian: magic "LA", header version, codec, epoch (u32), first sample (i64, the
track's sample index at 48 kHz of the first decoded sample; negative for a codec's
warm-up before the track starts), frame count (u16, samples per channel once decoded),
reserved (u16). The host encodes a chunk once and sends the
same bytes to every member that asked for audio; a member places the decoded samples on
the timeline of `epoch` by `first_sample`, so frames need no timestamps of their own.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

MAGIC: Final = b"LA"
HEADER_VERSION: Final = 1
_HEADER: Final = struct.Struct("<2sBBIqHH")
HEADER_SIZE: Final = _HEADER.size
MAX_FRAME_COUNT: Final = 48_000
"""One second: far above the 960 samples a chunk has, far below what could hurt."""


class AudioCodec(enum.IntEnum):
    PCM = 0
    """Interleaved stereo 16-bit: no CPU to speak of, 1.5 Mb/s; for wired LANs."""
    OPUS = 1
    """One 20 ms Opus packet: about 128 kb/s; the default, suits Wi-Fi."""
    FLAC = 2
    """One 20 ms FLAC frame: lossless, about half of PCM's bytes for music."""


class AudioFrameError(ValueError):
    """A binary frame that is not a LOUDSYNC audio frame; the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    epoch: int
    codec: AudioCodec
    first_sample: int
    frame_count: int
    payload: bytes


def encode_frame(frame: AudioFrame) -> bytes:
    header = _HEADER.pack(
        MAGIC,
        HEADER_VERSION,
        frame.codec,
        frame.epoch,
        frame.first_sample,
        frame.frame_count,
        0,
    )
    return header + frame.payload


def decode_frame(data: bytes) -> AudioFrame:
    """Parse one binary frame; anything else raises AudioFrameError."""
    if len(data) < HEADER_SIZE:
        raise AudioFrameError(f"audio frame of {len(data)} bytes is shorter than its header")
    magic, version, codec, epoch, first, count, _ = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise AudioFrameError("binary frame is not a LOUDSYNC audio frame (bad magic)")
    if version != HEADER_VERSION:
        raise AudioFrameError(f"audio frame header version {version} is not supported")
    try:
        kind = AudioCodec(codec)
    except ValueError:
        raise AudioFrameError(f"audio frame codec {codec} is unknown") from None
    if not 0 < count <= MAX_FRAME_COUNT:
        raise AudioFrameError(f"audio frame claims {count} samples")
    if abs(first) > 2**53:
        raise AudioFrameError("audio frame sample index out of range")
    return AudioFrame(epoch, kind, first, count, bytes(data[HEADER_SIZE:]))
