"""The measuring rig itself: each sink reaches one channel only, and two unsynchronized players
of the same noise come out at one offset that holds for the whole recording.

The players are plain Python with sounddevice (PortAudio -> ALSA pulse plugin -> the rig's
daemon), no project code: this checks the rig and the analysis, not LOUDSYNC.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks.pulse_rig import PulseRig, Side
from benchmarks.sync_analysis import offsets, summary
from tests.support.rigs import (
    RATE,
    assert_one_channel,
    assert_whole_samples_apart,
    record_players,
    wait_ready,
)

pytestmark = pytest.mark.xdist_group("pulse")


LEVEL = 0.2
PLAYER = """
import sys
import numpy as np
import sounddevice as sd

seed, seconds = int(sys.argv[1]), float(sys.argv[2])
noise = np.random.default_rng(seed).standard_normal(round(48_000 * seconds)) * 0.2
print("ready", flush=True)
sys.stdin.read()
tail = np.zeros(48_000 // 2)  # PortAudio stops before the pulse plugin's buffer has played
sd.play(np.concatenate([noise, tail]).astype(np.float32), 48_000, device="pulse", latency=0.2)
sd.wait()
"""
"""Plays `seconds` of the noise seeded `seed` on device "pulse" once stdin closes; the
sink is the caller's choice, through the environment only (`PulseRig.env_for`)."""


def record_playing(rig: PulseRig, sides: list[Side], seconds: float) -> NDArray[np.float64]:
    """Record while one player per side plays the same `seconds` of noise: all told to go at
    once, after their imports and once the recording runs. Float samples, left = A."""
    started = [
        wait_ready(
            subprocess.Popen(
                [sys.executable, "-c", PLAYER, "7", str(seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **rig.env_for(side)},
            )
        )
        for side in sides
    ]
    return record_players(rig, started)


@pytest.mark.parametrize(("side", "channel"), [("left", 0), ("right", 1)])
def test_each_sink_reaches_its_channel_only(pulse_rig: PulseRig, side: Side, channel: int) -> None:
    samples = record_playing(pulse_rig, [side], seconds=1.0)

    assert_one_channel(samples, channel, LEVEL)


def test_two_players_keep_one_offset(pulse_rig: PulseRig) -> None:
    samples = record_playing(pulse_rig, ["left", "right"], seconds=4.0)

    found = offsets(samples, RATE, window_s=0.1, hop_s=0.1, max_lag_s=0.25)
    first = found[0].time_s
    steady = [w for w in found if w.time_s >= first + 1.0]
    stats = summary(steady)
    print(summary(found), stats)  # shown with -s: what the rig measured

    assert len(steady) >= 20, found.skipped
    # Both play into one null sink, at its rate. Measured: all windows within 0.03 µs of
    # their median, and the median within 0.001 sample of an integer.
    assert_whole_samples_apart(stats)
