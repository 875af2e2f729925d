"""The wire codecs: exact PCM, Opus with a known delay, and bad payloads refused cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from loudsync_tui.audio.codec import (
    FRAME_SAMPLES,
    AudioCodec,
    CodecError,
    Encoder,
    codec_from_name,
    make_decoder,
    make_encoder,
)


def chunks(signal: NDArray[np.int16]) -> list[NDArray[np.int16]]:
    return [signal[i : i + FRAME_SAMPLES] for i in range(0, len(signal), FRAME_SAMPLES)]


def encode_all(encoder: Encoder, signal: NDArray[np.int16]) -> list[bytes]:
    return [encoder.encode(chunk) for chunk in chunks(signal)]


def decode_all(codec: AudioCodec, payloads: list[bytes]) -> NDArray[np.int16]:
    decoder = make_decoder(codec)
    return np.concatenate([decoder.decode(p) for p in payloads])


def music(packets: int) -> NDArray[np.int16]:
    """Chords and a little noise, different in each channel: something like a record."""
    rng = np.random.default_rng(3)
    t = np.arange(packets * FRAME_SAMPLES) / 48_000
    out = rng.standard_normal((len(t), 2)) * 300
    for freq in (110, 220, 277, 330, 523, 880, 1500, 3000):
        out[:, 0] += 1500 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6))
        out[:, 1] += 1500 * np.sin(2 * np.pi * freq * 1.01 * t + rng.uniform(0, 6))
    return out.astype(np.int16)


def correlation(a: NDArray[np.int16], b: NDArray[np.int16]) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("opus", AudioCodec.OPUS),
        ("PCM", AudioCodec.PCM),
        (" Opus ", AudioCodec.OPUS),
        ("flac", AudioCodec.FLAC),
    ],
)
def test_codec_names_parse(name: str, codec: AudioCodec) -> None:
    assert codec_from_name(name) is codec


def test_an_unknown_codec_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown codec 'mp3': choose pcm, opus or flac"):
        codec_from_name("mp3")


def test_wire_numbers_are_fixed_and_name_the_codec() -> None:
    assert (int(AudioCodec.PCM), int(AudioCodec.OPUS), int(AudioCodec.FLAC)) == (0, 1, 2)
    assert FRAME_SAMPLES == 960
    assert make_decoder(2).codec is make_encoder(2).codec is AudioCodec.FLAC
    assert make_decoder(1).codec is make_encoder(1).codec is AudioCodec.OPUS
    assert make_decoder(0).codec is make_encoder(0).codec is AudioCodec.PCM
    with pytest.raises(ValueError, match="7 is not a valid AudioCodec"):
        make_decoder(7)


def test_pcm_round_trips_exactly_with_no_delay() -> None:
    rng = np.random.default_rng(4)
    signal = (rng.standard_normal((5 * FRAME_SAMPLES, 2)) * 20_000).astype(np.int16)
    encoder = make_encoder(AudioCodec.PCM)
    payloads = encode_all(encoder, signal)
    assert encoder.delay_samples == 0
    assert [len(p) for p in payloads] == [3840] * 5
    assert (
        payloads[0][:4]
        == signal[0, 0].astype("<i2").tobytes() + signal[0, 1].astype("<i2").tobytes()
    )
    np.testing.assert_array_equal(decode_all(AudioCodec.PCM, payloads), signal)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 3839, b"\x00" * 3842])
def test_pcm_of_the_wrong_length_is_refused(payload: bytes) -> None:
    with pytest.raises(CodecError, match=f"PCM payload has {len(payload)} bytes, expected 3840"):
        make_decoder(AudioCodec.PCM).decode(payload)


@pytest.mark.parametrize("codec", list(AudioCodec))
@pytest.mark.parametrize(
    "chunk",
    [np.zeros((480, 2), np.int16), np.zeros((960, 1), np.int16), np.zeros((960, 2), np.float32)],
)
def test_encoders_take_only_whole_stereo_int16_chunks(
    codec: AudioCodec, chunk: NDArray[np.int16]
) -> None:
    with pytest.raises(ValueError, match=r"a chunk is \(960, 2\) int16"):
        make_encoder(codec).encode(chunk)


def test_opus_gives_one_packet_per_chunk_and_a_noise_burst_comes_out_delay_samples_later() -> None:
    signal = np.zeros((20 * FRAME_SAMPLES, 2), dtype=np.int16)
    at = 5 * FRAME_SAMPLES + 123
    signal[at : at + 480] = (np.random.default_rng(5).standard_normal((480, 2)) * 8000).astype(
        np.int16
    )
    encoder = make_encoder(AudioCodec.OPUS)
    payloads = encode_all(encoder, signal)
    assert len(payloads) == 20
    assert all(payloads)
    assert encoder.delay_samples == 312  # libopus's look-ahead at 48 kHz
    out = decode_all(AudioCodec.OPUS, payloads).astype(np.float64)
    assert out.shape == signal.shape
    burst = signal[at : at + 480, 0].astype(np.float64)
    lags = [float(np.dot(burst, out[at + lag : at + lag + 480, 0])) for lag in range(0, 1000)]
    assert int(np.argmax(lags)) == encoder.delay_samples


def test_opus_round_trip_matches_the_input_shifted_by_the_delay() -> None:
    signal = music(50)
    encoder = make_encoder(AudioCodec.OPUS)
    out = decode_all(AudioCodec.OPUS, encode_all(encoder, signal))
    d = encoder.delay_samples
    # Payload i decodes to input [960 i - d, 960 i - d + 960): output sample j is input j - d.
    assert correlation(out[d:], signal[:-d]) > 0.99
    assert correlation(out[d + 5 :], signal[: -d - 5]) < 0.9  # the alignment is what matters
    # What came before the stream started is silence, save the codec's window leaking in.
    assert np.abs(out[:100]).max() <= 2
    assert np.abs(out[:d]).max() < 0.1 * np.abs(signal).max()


def test_opus_bitrate_sets_the_packet_size() -> None:
    signal = music(25)
    big = encode_all(make_encoder(AudioCodec.OPUS), signal)[1:]
    small = encode_all(make_encoder(AudioCodec.OPUS, bitrate=32_000), signal)[1:]
    assert 250 < np.mean([len(p) for p in big]) < 450  # 128 kb/s = 320 bytes a packet
    assert 50 < np.mean([len(p) for p in small]) < 120  # 32 kb/s = 80 bytes


def test_a_late_joiner_decoding_from_packet_10_converges_on_the_full_decode() -> None:
    payloads = encode_all(make_encoder(AudioCodec.OPUS), music(40))
    full = decode_all(AudioCodec.OPUS, payloads)[10 * FRAME_SAMPLES :]
    late = decode_all(AudioCodec.OPUS, payloads[10:])
    assert late.shape == full.shape  # same sample ranges, no pre-skip on a late start
    after_3 = slice(3 * FRAME_SAMPLES, 5 * FRAME_SAMPLES)
    assert correlation(late[after_3], full[after_3]) > 0.99
    after_10 = slice(10 * FRAME_SAMPLES, None)
    error = np.abs(late[after_10].astype(np.int32) - full[after_10]).max()
    assert error < 0.01 * np.abs(full[after_10]).max()


def test_reset_makes_a_decoder_as_good_as_new() -> None:
    payloads = encode_all(make_encoder(AudioCodec.OPUS), music(12))
    used = make_decoder(AudioCodec.OPUS)
    for payload in payloads[:6]:
        used.decode(payload)
    used.reset()
    again = np.concatenate([used.decode(p) for p in payloads[6:]])
    np.testing.assert_array_equal(again, decode_all(AudioCodec.OPUS, payloads[6:]))


@pytest.mark.parametrize(
    ("codec", "payload", "reason"),
    [
        (AudioCodec.OPUS, b"", "empty Opus payload"),
        (AudioCodec.OPUS, b"\xff\x00", r"not a valid Opus packet \(2 bytes\)"),  # no frames
        (AudioCodec.OPUS, b"\x00\x00\x00", "Opus packet decoded to 480 samples, expected 960"),
        (AudioCodec.FLAC, b"", "empty FLAC payload"),
        (AudioCodec.FLAC, b"\xff\xf8" + bytes(30), r"not a valid FLAC packet \(32 bytes\)"),
    ],
)
def test_a_bad_payload_is_refused_and_the_decoder_carries_on(
    codec: AudioCodec, payload: bytes, reason: str
) -> None:
    signal = music(3)
    good = encode_all(make_encoder(codec), signal)
    decoder = make_decoder(codec)
    decoder.decode(good[0])
    with pytest.raises(CodecError, match=reason):
        decoder.decode(payload)
    assert decoder.decode(good[1]).shape == (FRAME_SAMPLES, 2)


@pytest.mark.parametrize("codec", [AudioCodec.OPUS, AudioCodec.FLAC])
def test_random_bytes_never_escape_as_anything_but_codec_error(codec: AudioCodec) -> None:
    decoder = make_decoder(codec)
    rng = np.random.default_rng(6)
    refused = 0
    for _ in range(300):
        payload = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        try:
            out = decoder.decode(payload)
        except CodecError:
            refused += 1
        else:
            assert out.shape == (FRAME_SAMPLES, 2)
            assert out.dtype == np.int16
    assert refused > 0


def test_flac_round_trips_exactly_with_no_delay_in_fewer_bytes_than_pcm() -> None:
    signal = music(25)
    encoder = make_encoder(AudioCodec.FLAC)
    payloads = encode_all(encoder, signal)
    assert encoder.delay_samples == 0
    assert len(payloads) == 25
    np.testing.assert_array_equal(decode_all(AudioCodec.FLAC, payloads), signal)
    pcm_bytes = 25 * FRAME_SAMPLES * 2 * 2
    assert sum(len(p) for p in payloads) < 0.8 * pcm_bytes


def test_a_flac_decoder_may_start_on_any_payload() -> None:
    """A late joiner's first payload is mid-stream: each FLAC frame carries its own header."""
    signal = music(12)
    payloads = encode_all(make_encoder(AudioCodec.FLAC), signal)
    late = decode_all(AudioCodec.FLAC, payloads[7:])
    np.testing.assert_array_equal(late, signal[7 * FRAME_SAMPLES :])
