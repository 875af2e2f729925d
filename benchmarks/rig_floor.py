"""How well PulseAudio's own timing reports agree: the floor under benchmarks.sync.

Two plain PortAudio players (no LOUDSYNC code) play the same noise into the rig's left
and right channels open loop, each logging every callback's frame count and reported DAC
time. The recording gives their true offset (constant: one sink consumes both); each
player's reports, read the way core/playout.py reads them (the 20th percentile of the
last 2 s, carried forward at the measured rate), predict it. How far the prediction
wanders is what a player that trusts the reports cannot beat on this rig.

    python -m benchmarks.rig_floor [--seconds 25]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks.pulse_rig import PulseRig
from benchmarks.sync_analysis import offsets, summary

OFFSET_FRAMES = 24_000
"""B plays the noise this far ahead, so the two streams are told apart for sure."""
NOMINAL_US = 1e6 / 48_000
PLAYER = r"""
import sys, time, numpy as np, sounddevice as sd
rng = np.random.default_rng(5)
noise = (rng.standard_normal(48000 * (int(float(sys.argv[3])) + 5)) * 0.2).astype(np.float32)
off, log, done = int(sys.argv[2]), [], [0]
def play(out, frames, when, status):
    now = time.monotonic_ns() / 1000
    log.append((done[0], now + (when.outputBufferDacTime - when.currentTime) * 1e6))
    a = off + done[0]
    out[:, 0] = out[:, 1] = noise[a:a + frames]
    done[0] += frames
with sd.OutputStream(samplerate=48000, channels=2, dtype="float32", callback=play,
                     blocksize=480, device="pulse", latency="high"):
    time.sleep(float(sys.argv[3]))
np.save(sys.argv[1], np.array(log))
"""


def predicted(log: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each callback's DAC time as the playout would estimate it."""
    frames, dac = log[:, 0], log[:, 1]
    out = np.empty(len(frames))
    for i in range(len(frames)):
        recent = (dac > dac[i] - 2e6) & (np.arange(len(frames)) <= i)
        fit = (dac > dac[i] - 20e6) & (np.arange(len(frames)) <= i)
        slope = NOMINAL_US
        if dac[i] - dac[fit][0] > 4e6:
            slope = float(np.polyfit(frames[fit], dac[fit], 1)[0])
        out[i] = np.percentile(dac[recent] - frames[recent] * slope, 20) + frames[i] * slope
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PulseRig() as rig:
        logs = [Path(tmp) / "a.npy", Path(tmp) / "b.npy"]
        recording = rig.record()
        players = [
            subprocess.Popen(
                [sys.executable, "-c", PLAYER, str(log), str(offset), str(args.seconds)],
                env={**os.environ, **rig.env_for(side)},
            )
            for log, offset, side in ((logs[0], 0, "left"), (logs[1], OFFSET_FRAMES, "right"))
        ]
        for player in players:
            player.wait()
        samples = recording.stop()
        a, b = (np.load(log) for log in logs)
    truth = summary([o for o in offsets(samples, max_lag_s=0.9) if o.time_s > 2])
    ea, eb = predicted(a), predicted(b)
    wanted = a[:, 0] - OFFSET_FRAMES  # B's frame that carries A's noise sample
    ok = (wanted >= b[0, 0]) & (wanted <= b[-1, 0])
    i = np.searchsorted(b[:, 0], wanted[ok], side="right") - 1
    at_b = eb[i] + (wanted[ok] - b[i, 0]) * NOMINAL_US
    error = at_b - ea[ok] - truth["median_us"]
    seconds = (a[ok, 1] - a[0, 1]) / 1e6
    late = error[seconds > 5]
    print(f"true B-A (recording): {truth['median_us']:.1f} µs, spread {truth['spread_max_us']:.2f}")
    print(
        "predicted minus true, after 5 s: "
        f"median {np.median(late):.1f} µs, p95 |.| {np.percentile(np.abs(late), 95):.1f} µs, "
        f"max |.| {np.abs(late).max():.1f} µs"
    )


if __name__ == "__main__":
    main()
