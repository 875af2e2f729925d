"""The host's transport: the queue and PLAY, PAUSE, SEEK, next and previous as epochs.

Pure rules: commands and the session time in, epochs out. Every command takes effect
`lead_us` after it is given (the playback buffer), so its message reaches every member
before the moment it names and all switch on the same sample. Track changes are
gapless: the next track's epoch begins at the exact session time the last one ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from loudsync_tui.core.epoch import RATE, Epoch

EpochKind = Literal["play", "pause", "seek"]


@dataclass(frozen=True, slots=True)
class TrackMeta:
    title: str
    artist: str | None = None
    album: str | None = None
    duration_ms: int | None = None
    live: bool = False
    """A live source (this machine's sound): it has no end and cannot be seeked."""


@dataclass(frozen=True, slots=True)
class TrackStarted:
    """A track becomes current (before the epoch that plays it)."""

    track_id: int
    position: int
    """Its place in the queue, 0-based."""
    queue_length: int
    meta: TrackMeta


@dataclass(frozen=True, slots=True)
class EpochStarted:
    epoch: Epoch
    kind: EpochKind


@dataclass(frozen=True, slots=True)
class QueueEnded:
    """The last track ended (no --loop): output stopped, PLAY starts the queue again."""


@dataclass(frozen=True, slots=True)
class QueueChanged:
    """Tracks were added or removed, or looping turned on or off."""

    queue: tuple[TrackMeta, ...]
    index: int
    """The current track's place (where PLAY starts when nothing plays)."""
    loop: bool


TransportEffect = TrackStarted | EpochStarted | QueueEnded | QueueChanged

NOTHING_TO_PLAY = "Nothing to play yet: add music first"


class ControlRefused(Exception):
    """Why a control cannot be carried out, in words for whoever asked for it."""


class Transport:
    def __init__(
        self, queue: Sequence[TrackMeta], *, lead_us: int = 250_000, loop: bool = False
    ) -> None:
        self.queue = list(queue)
        self.lead_us = lead_us
        self.loop = loop
        self.index = 0
        """The current track's place in the queue."""
        self.epoch: Epoch | None = None
        self._numbers = 0
        self._track_ids = 0
        self.track_id = 0

    @property
    def playing(self) -> bool:
        return self.epoch is not None and self.epoch.playing

    def position(self, now_us: int) -> int:
        """The sample of the current track playing (or paused on) at session time now."""
        if self.epoch is None:
            return 0
        return max(0, int(self.epoch.sample_at(now_us)))

    def due_sample(self, now_us: int) -> int | None:
        """Audio up to this sample must have been sent by now (a buffer ahead of the
        play position); None when nothing plays."""
        if self.epoch is None or not self.epoch.playing:
            return None
        return int(self.epoch.sample_at(now_us + self.lead_us))

    # Commands -----------------------------------------------------------------------

    def control(self, now_us: int, action: str, seconds: float = 0.0) -> list[TransportEffect]:
        """play, pause, toggle, seek (by `seconds`), next, prev: the host's keys, the
        headless commands and a DJ's CONTROL alike. ControlRefused says why one cannot
        be carried out."""
        if not self.queue:
            raise ControlRefused(NOTHING_TO_PLAY)
        match action:
            case "play":
                return self.play(now_us)
            case "pause":
                return self.pause(now_us)
            case "toggle":
                return self.toggle(now_us)
            case "seek":
                if not math.isfinite(seconds):
                    raise ControlRefused("seek takes a number of seconds")
                if self.queue[self.index].live:
                    raise ControlRefused("A live source cannot be seeked")
                return self.seek_by(now_us, seconds)
            case "next" | "prev":
                return self.skip(now_us, 1 if action == "next" else -1)
        raise ControlRefused(f"Unknown control {action!r}")

    def play(self, now_us: int) -> list[TransportEffect]:
        if not self.queue or self.playing:
            return []
        if self.epoch is None:
            return [self._start_track(0), self._new_epoch(now_us, 0, "play", True)]
        return [self._new_epoch(now_us, self.epoch.k0, "play", True)]

    def play_index(self, now_us: int, index: int) -> list[TransportEffect]:
        """Play the queue's entry `index` from its start (a SEEK if something plays)."""
        if not 0 <= index < len(self.queue):
            return []
        kind: EpochKind = "seek" if self.playing else "play"
        return [self._start_track(index), self._new_epoch(now_us, 0, kind, True)]

    def pause(self, now_us: int) -> list[TransportEffect]:
        if self.epoch is None or not self.playing:
            return []
        at = now_us + self.lead_us
        return [self._epoch_at(at, int(self.epoch.sample_at(at)), "pause", False)]

    def toggle(self, now_us: int) -> list[TransportEffect]:
        return self.pause(now_us) if self.playing else self.play(now_us)

    def seek(self, now_us: int, sample: int) -> list[TransportEffect]:
        """Jump to `sample` of the current track (clamped to its start and known end)."""
        if self.epoch is None or self.queue[self.index].live:
            return []
        sample = max(0, sample)
        duration = self.queue[self.index].duration_ms
        if duration is not None:
            sample = min(sample, duration * RATE // 1000)
        return [self._new_epoch(now_us, sample, "seek", self.playing)]

    def seek_by(self, now_us: int, seconds: float) -> list[TransportEffect]:
        return self.seek(now_us, self.position(now_us + self.lead_us) + round(seconds * RATE))

    def skip(self, now_us: int, step: int) -> list[TransportEffect]:
        """Next (+1) or previous (-1) track; wraps around the queue."""
        if not self.queue:
            return []
        self.index = (self.index + step) % len(self.queue)
        playing = self.playing or self.epoch is None
        return [self._start_track(self.index), self._new_epoch(now_us, 0, "seek", playing)]

    def add(self, tracks: Sequence[TrackMeta]) -> list[TransportEffect]:
        """Tracks at the end of the queue; what plays goes on."""
        if not tracks:
            return []
        self.queue.extend(tracks)
        return [self._queue_changed()]

    def remove(self, now_us: int, index: int) -> list[TransportEffect]:
        """Take a track out of the queue. The current one gives way to the next (playing
        or paused as it was); once the queue is empty, output stops."""
        if not 0 <= index < len(self.queue):
            return []
        del self.queue[index]
        current = index == self.index
        if index < self.index:
            self.index -= 1
        effects: list[TransportEffect] = []
        if not self.queue:
            self.index = 0
            if self.epoch is not None:
                if self.epoch.playing:
                    at = now_us + self.lead_us
                    effects.append(
                        self._epoch_at(at, int(self.epoch.sample_at(at)), "pause", False)
                    )
                self.epoch = None
            return [*effects, self._queue_changed()]
        if current:
            self.index = min(index, len(self.queue) - 1)
            if self.epoch is not None:
                playing = self.playing
                effects += [
                    self._start_track(self.index),
                    self._new_epoch(now_us, 0, "seek", playing),
                ]
        return [self._queue_changed(), *effects]

    def set_loop(self, loop: bool) -> list[TransportEffect]:
        if loop == self.loop:
            return []
        self.loop = loop
        return [self._queue_changed()]

    def _queue_changed(self) -> QueueChanged:
        return QueueChanged(tuple(self.queue), self.index, self.loop)

    def track_ended(self, end_sample: int) -> list[TransportEffect]:
        """The current track's audio ran out at `end_sample`: the next one starts at the
        exact session time that sample would have played, so there is no gap."""
        if self.epoch is None or not self.epoch.playing:
            return []
        at = round(self.epoch.time_of(end_sample))
        if self.index + 1 >= len(self.queue) and not self.loop:
            self.index = 0
            stopped = self._epoch_at(at, end_sample, "pause", False)
            self.epoch = None  # the next PLAY starts the queue again from the top
            return [stopped, QueueEnded()]
        self.index = (self.index + 1) % len(self.queue)
        return [self._start_track(self.index), self._epoch_at(at, 0, "play", True)]

    # Epochs -------------------------------------------------------------------------

    def _start_track(self, index: int) -> TrackStarted:
        self.index = index
        self._track_ids += 1
        self.track_id = self._track_ids
        return TrackStarted(self.track_id, index, len(self.queue), self.queue[index])

    def _new_epoch(self, now_us: int, sample: int, kind: EpochKind, playing: bool) -> EpochStarted:
        return self._epoch_at(now_us + self.lead_us, sample, kind, playing)

    def _epoch_at(self, at_us: int, sample: int, kind: EpochKind, playing: bool) -> EpochStarted:
        self._numbers += 1
        self.epoch = Epoch(self._numbers, self.track_id, playing, at_us, sample)
        return EpochStarted(self.epoch, kind)
