"""Music files in: which paths are tracks, what they are called, and their samples at 48 kHz.

Everything past this module sees one format only, 48 kHz stereo int16, and counts
positions in samples of it, so a seek lands on the exact sample an epoch names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from numpy.typing import NDArray

from loudsync_tui.core.epoch import CHANNELS, RATE
from loudsync_tui.text import UNSAFE

SYSTEM_SOURCE = "system"
"""The path that stands for this machine's own sound (audio/capture.py), not a file."""
AUDIO_SUFFIXES = frozenset(
    {
        ".aac", ".ac3", ".aif", ".aifc", ".aiff", ".alac", ".ape", ".caf", ".dts", ".flac",
        ".m4a", ".m4b", ".mka", ".mp2", ".mp3", ".mpc", ".oga", ".ogg", ".opus", ".spx",
        ".tta", ".w64", ".wav", ".weba", ".wma", ".wv",
    }
)  # fmt: skip
"""Suffixes (lower case) that make a file inside a folder count as a track."""

MAX_TAG_CHARS = 200
"""Tags are shown in a terminal and sent to guests: a hostile file must not send a novel."""

PREROLL_SAMPLES = RATE // 10
"""Seek this far before the wanted sample so lossy decoders and the resampler settle first."""


class TrackError(Exception):
    """A path that cannot be played; the message is meant for the person who chose it."""


@dataclass(frozen=True)
class TrackInfo:
    path: Path
    title: str
    """From the tags, else the file name without its suffix."""
    artist: str | None
    album: str | None
    duration_ms: int | None
    """What the container claims; None when it does not say (some streams never do)."""
    live: bool = False
    """A live source (this machine's sound, audio/capture.py): no end, no seeking."""


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders as their audio files (recursively) in natural order.

    Hidden entries are skipped inside folders: `._song.mp3` files that macOS leaves
    on shared drives carry an audio suffix but no audio.
    """
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            tracks = _folder_tracks(path)
            if not tracks:
                raise TrackError(f"folder has no audio files: {given}")
            found.extend(tracks)
        elif path.exists():
            found.append(path)
        else:
            raise TrackError(f"no such file: {given}")
    if not found:
        raise TrackError("no files given")
    return found


def _folder_tracks(folder: Path) -> list[Path]:
    tracks: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        tracks.extend(
            Path(root, name)
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES
        )
    return sorted(
        tracks, key=lambda p: [_natural_key(part) for part in p.relative_to(folder).parts]
    )


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts "Track 2" before "Track 10" and ignores letter case."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.casefold())
        for part in re.split(r"(\d+)", name)
        if part
    )


def probe(path: str | Path) -> TrackInfo:
    """Tags and duration, after checking FFmpeg can actually decode the audio."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = _audio_stream(container, path)
            next(container.decode(stream), None)  # proves a decoder exists and accepts the data
            tags = _tags(container.metadata, stream.metadata)
            return TrackInfo(
                path=path,
                title=tags.get("title") or _cap(path.stem) or path.name,
                artist=tags.get("artist") or tags.get("album_artist"),
                album=tags.get("album"),
                duration_ms=_duration_ms(container, stream),
            )
    except FileNotFoundError as err:
        raise TrackError(f"no such file: {path}") from err
    except (av.FFmpegError, OSError) as err:
        raise _unreadable(path, err) from err


def read_pcm(path: str | Path, start_sample: int = 0) -> Generator[NDArray[np.int16], None, None]:
    """Yield the track as (n, 2) int16 arrays at 48 kHz, from exactly `start_sample`.

    Samples are counted at 48 kHz from the first sample the decoder gives when it
    plays the file from the top, so `start_sample` is exact for 48 kHz sources and
    within a sample for resampled ones. Fails lazily: errors surface on iteration,
    as a TrackError, and end it. `close()` it to stop early: that closes the file.
    """
    if start_sample < 0:
        raise ValueError(f"start_sample must be >= 0, got {start_sample}")
    path = Path(path)
    chunks = _chunks(path, start_sample)
    started = False
    try:
        for chunk in chunks:
            started = True
            yield chunk
    except FileNotFoundError as err:
        raise TrackError(f"no such file: {path}") from err
    except (av.FFmpegError, OSError) as err:
        if not started:
            raise _unreadable(path, err) from err
        raise TrackError(f"cannot play the rest of {path.name}: {_reason(err)}") from err
    finally:
        chunks.close()  # closes the file now, not whenever the garbage collector gets to it


def _chunks(path: Path, start: int) -> Generator[NDArray[np.int16], None, None]:
    if start > PREROLL_SAMPLES:
        try:
            yield from _decode(path, start, seek=True)
            return
        except _SeekMissed:
            pass  # the seek landed late or without timestamps: count from the top instead
    yield from _decode(path, start, seek=False)


class _SeekMissed(Exception):
    """The container seek landed after the wanted sample or without timestamps."""


def _decode(path: Path, start: int, *, seek: bool) -> Iterator[NDArray[np.int16]]:
    """Raises _SeekMissed, before yielding anything, if `seek` and the seek cannot be trusted."""
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        base = stream.time_base
        first_pts = stream.start_time or 0
        origin = round(first_pts * base * RATE) if base else 0
        if seek and base:
            back = Fraction(start - PREROLL_SAMPLES, RATE) / base
            container.seek(first_pts + int(back), stream=stream, backward=True)
        pos: int | None = None if seek and base else 0
        for frame in _stereo_frames(container, stream):
            pcm = _to_stereo(frame)
            if pos is None or pos < start:  # still finding the start: trust timestamps
                if frame.pts is not None and frame.time_base is not None:
                    pos = round(frame.pts * frame.time_base * RATE) - origin
                if pos is None or (seek and pos > start):
                    raise _SeekMissed
                skip = min(max(start - pos, 0), len(pcm))
                pos += len(pcm)
                pcm = pcm[skip:]
            else:
                pos += len(pcm)
            if len(pcm):
                yield pcm


def _stereo_frames(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    # Mono goes through as mono and is duplicated later: FFmpeg's mono-to-stereo
    # matrix would lower it by 3 dB. More channels get FFmpeg's standard downmix.
    layout = "mono" if stream.channels == 1 else "stereo"
    resampler = av.AudioResampler(format="s16", layout=layout, rate=RATE)
    for frame in container.decode(stream):
        yield from resampler.resample(frame)
    yield from resampler.resample(None)


def _to_stereo(frame: AudioFrame) -> NDArray[np.int16]:
    samples = np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1, frame.layout.nb_channels)
    if samples.shape[1] == 1:
        return np.repeat(samples, CHANNELS, axis=1)
    return samples


def _audio_stream(container: InputContainer, path: Path) -> AudioStream:
    if not container.streams.audio:
        raise TrackError(f"cannot read {path.name}: it has no audio stream")
    return container.streams.audio[0]


def _tags(*sources: Mapping[str, str]) -> dict[str, str]:
    """Tag names in lower case (ID3 and Vorbis comments disagree); earlier sources win."""
    tags: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            text = _cap(value)
            if text:
                tags.setdefault(key.lower(), text)
    return tags


def _cap(text: str) -> str:
    """A tag as it may go on the wire: a file's tags are anyone's text, and a character a
    terminal acts on (or that reorders text) would have every member refuse the TRACK."""
    return UNSAFE.sub("", text).strip()[:MAX_TAG_CHARS].strip()


def _duration_ms(container: InputContainer, stream: AudioStream) -> int | None:
    if stream.duration is not None and stream.time_base is not None:
        return round(stream.duration * stream.time_base * 1000)
    if container.duration is not None:
        return round(container.duration / 1000)  # container durations are in µs
    return None


def _unreadable(path: Path, err: Exception) -> TrackError:
    if isinstance(err, av.error.InvalidDataError):
        return TrackError(f"cannot read {path.name}: not an audio file FFmpeg can decode")
    return TrackError(f"cannot read {path.name}: {_reason(err)}")


def _reason(err: Exception) -> str:
    if isinstance(err, av.error.InvalidDataError):
        return "the file is damaged"
    return getattr(err, "strerror", None) or str(err)
