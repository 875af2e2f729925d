"""Music files in: tracks found, tags read, and samples from exactly the asked-for index."""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from loudsync_tui.audio.source import (
    MAX_TAG_CHARS,
    TrackError,
    expand_paths,
    probe,
    read_pcm,
)
from loudsync_tui.protocol import Track, decode, encode

RNG = np.random.default_rng(7)
NOISE = (RNG.standard_normal((48_000, 2)) * 5000).astype(np.int16)
"""A second of 48 kHz stereo where every sample is different: a misplaced start shows."""


def write_audio(
    path: Path,
    samples: NDArray[np.int16],
    *,
    rate: int = 48_000,
    codec: str = "pcm_s16le",
    fmt: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Encode `samples` ((n, channels) int16) into a real file with PyAV."""
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[samples.shape[1]]
    with av.open(str(path), "w", format=fmt) as container:
        container.metadata.update(tags or {})
        stream = container.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        stream.metadata.update(tags or {})
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples).reshape(1, -1), format="s16", layout=layout
        )
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = Fraction(1, rate)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return path


def decode_all(path: Path, start: int = 0) -> NDArray[np.int16]:
    chunks = list(read_pcm(path, start))
    assert all(c.dtype == np.int16 and c.ndim == 2 and c.shape[1] == 2 for c in chunks)
    return np.concatenate(chunks)


def sine(
    rate: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 10_000
) -> NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)[:, None]


@pytest.mark.parametrize(("suffix", "codec"), [(".wav", "pcm_s16le"), (".flac", "flac")])
@pytest.mark.parametrize("start", [0, 100, 12_345, 47_999])
def test_lossless_48k_starts_on_the_exact_sample(
    tmp_path: Path, suffix: str, codec: str, start: int
) -> None:
    path = write_audio(tmp_path / f"noise{suffix}", NOISE, codec=codec)
    np.testing.assert_array_equal(decode_all(path, start), NOISE[start:])


def test_a_start_past_the_end_yields_nothing(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "noise.flac", NOISE, codec="flac")
    assert list(read_pcm(path, 60_000)) == []


def test_a_negative_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start_sample"):
        next(read_pcm(tmp_path / "x.wav", -1))


def test_44k1_mono_becomes_48k_stereo_at_full_level(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "mono.wav", sine(44_100), rate=44_100)
    out = decode_all(path)
    assert abs(len(out) - 48_000) <= 4
    np.testing.assert_array_equal(out[:, 0], out[:, 1])  # duplicated, not panned
    assert 9_800 <= np.abs(out[1000:-1000]).max() <= 10_100  # not the -3 dB FFmpeg upmix


def test_a_resampled_start_lands_within_a_sample(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "mono.wav", sine(44_100), rate=44_100)
    whole = decode_all(path).astype(np.int32)
    start = 12_345
    part = decode_all(path, start).astype(np.int32)
    n = min(len(part), len(whole) - start) - 100  # the resampler's tail may differ
    # A 440 Hz sine of 10000 moves up to ~576 per sample: 1/3 of that is sub-sample.
    assert np.abs(whole[start : start + n] - part[:n]).max() < 200


def test_surround_is_downmixed_to_stereo(tmp_path: Path) -> None:
    five_one = np.zeros((4800, 6), dtype=np.int16)
    five_one[:, 0] = 8000  # front left only
    out = decode_all(write_audio(tmp_path / "surround.flac", five_one, codec="flac"))
    assert out.shape == (4800, 2)
    assert out[:, 0].min() > 1000
    assert np.all(out[:, 1] == 0)


TAGS = {"title": "Blue Train", "artist": "John Coltrane", "album": "Blue Train"}

FORMATS = [
    pytest.param(".wav", "pcm_s16le", None, 48_000, id="wav"),
    pytest.param(".flac", "flac", None, 44_100, id="flac"),
    pytest.param(".mp3", "libmp3lame", None, 44_100, id="mp3"),
    pytest.param(".opus", "libopus", "ogg", 48_000, id="ogg-opus"),
    pytest.param(".m4a", "aac", "ipod", 44_100, id="m4a-aac"),
]


@pytest.mark.parametrize(("suffix", "codec", "fmt", "rate"), FORMATS)
def test_each_format_gives_tags_duration_and_a_second_of_audio(
    tmp_path: Path, suffix: str, codec: str, fmt: str | None, rate: int
) -> None:
    try:
        av.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    stereo = np.repeat(sine(rate, freq=1000), 2, axis=1)
    path = write_audio(
        tmp_path / f"song{suffix}", stereo, rate=rate, codec=codec, fmt=fmt, tags=TAGS
    )
    info = probe(path)
    assert (info.title, info.artist, info.album) == ("Blue Train", "John Coltrane", "Blue Train")
    assert info.path == path
    assert info.duration_ms is not None
    assert abs(info.duration_ms - 1000) <= 30
    out = decode_all(path)
    assert abs(len(out) - 48_000) <= 1100  # lossy encoders may keep some priming or padding
    assert np.abs(out[10_000:40_000]).max() > 8000


def test_tags_are_read_whatever_their_case_and_capped(tmp_path: Path) -> None:
    tags = {"TITLE": "x" * 300, "Artist": "  Nina Simone  "}
    info = probe(write_audio(tmp_path / "a.flac", NOISE[:4800], codec="flac", tags=tags))
    assert info.title == "x" * MAX_TAG_CHARS
    assert info.artist == "Nina Simone"
    assert info.album is None


def test_hostile_tags_lose_the_characters_a_terminal_acts_on(tmp_path: Path) -> None:
    """Tags go to every member in TRACK, whose text the protocol refuses with a control
    or bidi character in it: stripped here, the track still plays and shows."""
    tags = {"title": "Night\x1b[2J Drive\u202e", "artist": "\x07Ada"}
    info = probe(write_audio(tmp_path / "b.flac", NOISE[:4800], codec="flac", tags=tags))
    assert info.title == "Night[2J Drive"
    assert info.artist == "Ada"
    track = Track(timestamp=1, track_id=1, title=info.title, artist=info.artist)
    assert decode(encode(track)) == track  # what every member will accept


def test_an_untagged_file_is_titled_by_its_name(tmp_path: Path) -> None:
    info = probe(write_audio(tmp_path / "07 - Intro.wav", NOISE[:4800]))
    assert info.title == "07 - Intro"
    assert info.artist is None
    assert info.duration_ms == 100


def test_a_text_file_is_not_audio(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: milk, eggs\n")
    with pytest.raises(TrackError, match=r"^cannot read notes.txt: not an audio file FFmpeg"):
        probe(notes)
    with pytest.raises(TrackError, match="not an audio file"):
        next(read_pcm(notes))


def test_a_file_without_audio_says_so(tmp_path: Path) -> None:
    subtitles = tmp_path / "lyrics.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,000\nla la\n")
    with pytest.raises(TrackError, match=r"^cannot read lyrics.srt: it has no audio stream$"):
        probe(subtitles)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone.mp3"
    with pytest.raises(TrackError) as probed:
        probe(gone)
    with pytest.raises(TrackError) as read:
        next(read_pcm(gone))
    assert str(probed.value) == str(read.value) == f"no such file: {gone}"


def test_a_damaged_file_ends_with_a_track_error(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "cut.flac", NOISE, codec="flac")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a half-copied file
    chunks = read_pcm(path)
    first = next(chunks)
    np.testing.assert_array_equal(first, NOISE[: len(first)])
    with pytest.raises(TrackError) as error:
        list(chunks)
    assert str(error.value) == "cannot play the rest of cut.flac: the file is damaged"


def _open_paths() -> set[str]:
    fds = Path("/proc/self/fd")
    return {os.path.realpath(fd) for fd in fds.iterdir()} if fds.is_dir() else set()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_the_file_is_closed_when_reading_stops_early_or_ends(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "noise.wav", NOISE)
    chunks = read_pcm(path)
    next(chunks)
    assert str(path.resolve()) in _open_paths()
    chunks.close()
    assert str(path.resolve()) not in _open_paths()
    list(read_pcm(path, 12_345))
    assert str(path.resolve()) not in _open_paths()


def test_folders_expand_to_their_audio_in_natural_order(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for name in [
        "Track 10.mp3", "Track 2.FLAC", "track 1.wav", "cover.jpg", "notes.txt",
        ".hidden.mp3", "._Track 3.mp3", "CD2/01 b.ogg", "CD10/01 a.opus", ".cache/x.mp3",
    ]:  # fmt: skip
        (music / name).parent.mkdir(parents=True, exist_ok=True)
        (music / name).touch()
    single = tmp_path / "single.m4a"
    single.touch()
    found = expand_paths([single, str(music), single])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "single.m4a",
        "music/CD2/01 b.ogg",
        "music/CD10/01 a.opus",
        "music/track 1.wav",
        "music/Track 2.FLAC",
        "music/Track 10.mp3",
        "single.m4a",
    ]


def test_expand_paths_names_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").touch()
    cases: list[tuple[list[str | Path], str]] = [
        (["x.mp3"], "no such file: x.mp3"),
        ([tmp_path / "empty"], f"folder has no audio files: {tmp_path / 'empty'}"),
        ([], "no files given"),
    ]
    for paths, message in cases:
        with pytest.raises(TrackError) as error:
            expand_paths(paths)
        assert str(error.value) == message
