"""The binary audio frame: a round trip, and a clear error for anything else."""

from __future__ import annotations

import pytest

from loudsync_tui.protocol_audio import (
    HEADER_SIZE,
    AudioCodec,
    AudioFrame,
    AudioFrameError,
    decode_frame,
    encode_frame,
)


def test_round_trip_and_header_size() -> None:
    frame = AudioFrame(7, AudioCodec.OPUS, 2**40 + 3, 960, b"\x01\x02\x03")
    data = encode_frame(frame)
    assert len(data) == HEADER_SIZE + 3 == 23
    assert data[:2] == b"LA"
    assert decode_frame(data) == frame


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"LA\x01", "shorter than its header"),
        (b"XX" + bytes(18), "bad magic"),
        (b"LA\x09" + bytes(17), "version 9"),
        (b"LA\x01\x07" + bytes(16), "codec 7"),
        (b"LA\x01\x01" + bytes(16), "claims 0 samples"),
    ],
)
def test_bad_frames_say_what_is_wrong(data: bytes, words: str) -> None:
    with pytest.raises(AudioFrameError, match=words):
        decode_frame(data)
