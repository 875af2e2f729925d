"""The JACK rig itself: each player reaches one channel only, and two players of the same
noise told to start together stay a whole number of samples apart for the whole recording.

The players are plain Python with sounddevice (PortAudio's JACK host API, device "system"),
no project code: this checks the rig's routing and recording, not LOUDSYNC.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks.jack_rig import JackRig, RigError
from benchmarks.rig_processes import Side
from benchmarks.sync_analysis import offsets, summary
from tests.support.rigs import (
    RATE,
    assert_one_channel,
    assert_whole_samples_apart,
    record_players,
    wait_ready,
)

LEVEL = 0.2
PLAYER = """
import sys, threading
import numpy as np
import sounddevice as sd

seed, seconds = int(sys.argv[1]), float(sys.argv[2])
noise = np.random.default_rng(seed).standard_normal(round(48_000 * seconds)) * 0.2
sound = np.repeat(noise.astype(np.float32)[:, None], 2, axis=1)
done = threading.Event()
at = 0

def play(out, frames, when, status):
    global at
    part = sound[at : at + frames]
    out[: len(part)] = part
    out[len(part) :] = 0
    at += frames
    if at >= len(sound):
        done.set()

stream = sd.OutputStream(samplerate=48_000, channels=2, device="system", callback=play)
print("ready", flush=True)  # its JACK client and ports exist: the rig can route them
sys.stdin.read()
stream.start()
done.wait(seconds + 5)
stream.stop()
"""
"""Opens device "system" and plays `seconds` of the noise seeded `seed` on both of its
outputs once stdin closes; the rig routes the left one."""


def record_playing(rig: JackRig, sides: list[Side], seconds: float) -> NDArray[np.float64]:
    """Open one player per side (routed one at a time), record, then tell all to go at once.
    Float samples, left = A."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for side in sides:
            process = subprocess.Popen(
                [sys.executable, "-c", PLAYER, "7", str(seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **rig.client_env()},
            )
            started.append(process)
            rig.attach(side, wait_ready(process))
    except BaseException:
        for process in started:
            process.kill()
            process.wait()
        raise
    return record_players(rig, started)


@pytest.mark.parametrize(("side", "channel"), [("left", 0), ("right", 1)])
def test_each_player_reaches_its_channel_only(jack_rig: JackRig, side: Side, channel: int) -> None:
    samples = record_playing(jack_rig, [side], seconds=1.0)

    assert_one_channel(samples, channel, LEVEL)


def test_two_players_keep_one_offset(jack_rig: JackRig) -> None:
    samples = record_playing(jack_rig, ["left", "right"], seconds=3.0)

    found = offsets(samples, RATE, window_s=0.1, hop_s=0.1, max_lag_s=0.25)
    stats = summary(found)
    print(stats)  # shown with -s: what the rig measured

    assert len(found) >= 20, found.skipped
    assert_whole_samples_apart(stats)  # JACK runs every client on one cycle


def test_a_player_that_never_opens_the_device_is_a_clear_error(jack_rig: JackRig) -> None:
    silent = subprocess.Popen([sys.executable, "-c", "pass"], env=os.environ.copy())
    with pytest.raises(RigError, match=r"exited .* waiting for the left player's JACK client"):
        jack_rig.attach("left", silent)
    silent.wait()
