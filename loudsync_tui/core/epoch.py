"""The playback timeline every member follows: which sample of a track plays when.

An epoch is one stretch of that timeline, begun by PLAY, PAUSE or SEEK: "sample k of
track `track_id` plays at session time t0_us + (k - k0) / rate". Paused epochs play
nothing. Audio frames carry their epoch's number, so whatever a member had buffered
for an older epoch is dropped the moment a new one begins.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE = 48_000
"""Every stream is 48 kHz stereo on the wire and in the players, whatever the file was."""
CHANNELS = 2


@dataclass(frozen=True)
class Epoch:
    number: int
    """Grows by one with each PLAY, PAUSE or SEEK of the session."""
    track_id: int
    playing: bool
    t0_us: int
    """Session time (µs) at which sample `k0` plays (or, paused, the pause took effect)."""
    k0: int
    """Sample index in the track (at RATE) that plays at `t0_us`; where a pause stopped."""

    def sample_at(self, session_us: float) -> float:
        """The (fractional) sample index that plays at `session_us`; `k0` while paused."""
        if not self.playing:
            return float(self.k0)
        return self.k0 + (session_us - self.t0_us) * RATE / 1_000_000

    def time_of(self, sample: float) -> float:
        """The session time (µs) at which `sample` plays in this epoch."""
        return self.t0_us + (sample - self.k0) * 1_000_000 / RATE
