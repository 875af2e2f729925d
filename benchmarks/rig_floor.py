"""How well PulseAudio's own timing reports agree: the floor under benchmarks.sync.

Two plain PortAudio players (no LOUDSYNC code) play the same noise into the rig's left
and right channels open loop, each logging every callback's frame count and reported DAC
time. The recording gives their true offset (constant: one sink consumes both); each
player's reports, read the way core/playout.py reads them (the 20th percentile of the
last 2 s, carried forward at the measured rate), predict it. How far the prediction
misses is what a player that trusts the reports cannot beat on this rig.

Each report's DAC time is put on the monotonic clock two ways: from the callback's start
(`now + outputBufferDacTime - currentTime`, as the playout does), and converted exactly
(PortAudio's times are on the wall clock: `outputBufferDacTime + monotonic - wall`).

    python -m benchmarks.rig_floor [--seconds 25]
    python -m benchmarks.rig_floor --stagger 1     # B starts 1 s after A
    python -m benchmarks.rig_floor --stagger 12    # and how B's miss moves as it settles
    python -m benchmarks.rig_floor --direct        # no remap sinks: one channel each
    python -m benchmarks.rig_floor --block-ms 5    # the null sink's block (default 20)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks.pulse_rig import LATENCY_MS, PulseRig
from benchmarks.sync_analysis import offsets, summary

RATE = 48_000
OFFSET_FRAMES = 24_000
"""B plays the noise this far ahead, so the two streams are told apart for sure."""
NOMINAL_US = 1e6 / RATE
SOURCES = ("from the callback's start", "converted from the wall clock")
PLAYER = r"""
import sys, time, numpy as np, sounddevice as sd
rng = np.random.default_rng(5)
path, off, seconds, channel = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
noise = (rng.standard_normal(48000 * (int(seconds) + 60)) * 0.2).astype(np.float32)
log, done = [], [0]
def play(out, frames, when, status):
    now = time.monotonic_ns() / 1000
    wall_to_mono = (time.monotonic_ns() - time.time_ns()) / 1000
    log.append((done[0], now + (when.outputBufferDacTime - when.currentTime) * 1e6,
                when.outputBufferDacTime * 1e6 + wall_to_mono))
    a = off + done[0]
    if channel == "both":
        out[:, 0] = out[:, 1] = noise[a:a + frames]
    else:
        out[:] = 0
        out[:, int(channel)] = noise[a:a + frames]
    done[0] += frames
with sd.OutputStream(samplerate=48000, channels=2, dtype="float32", callback=play,
                     blocksize=480, device="pulse", latency="high"):
    time.sleep(seconds)
np.save(path, np.array(log))
"""


def predicted(log: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each callback's DAC time as the playout would estimate it, from (frames, DAC) rows."""
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


def misses(
    a: NDArray[np.float64], b: NDArray[np.float64], b_shift: int, truth_us: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """For each of A's callbacks whose audio B also played: the predicted B-A minus the
    recorded one, and the time since B's first report (s)."""
    ea, eb = predicted(a), predicted(b)
    wanted = a[:, 0] - OFFSET_FRAMES - b_shift  # B's frame that carries A's noise sample
    ok = (wanted >= b[0, 0]) & (wanted <= b[-1, 0])
    i = np.searchsorted(b[:, 0], wanted[ok], side="right") - 1
    at_b = eb[i] + (wanted[ok] - b[i, 0]) * NOMINAL_US
    return at_b - ea[ok] - truth_us, (a[ok, 1] - b[0, 1]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=25.0, help="A's playing time")
    parser.add_argument("--stagger", type=float, default=0.0, help="seconds B starts after A")
    parser.add_argument(
        "--direct", action="store_true", help="both into the null sink, one channel each"
    )
    parser.add_argument("--block-ms", type=int, default=LATENCY_MS, help="the null sink's block")
    args = parser.parse_args()
    b_seconds = args.seconds - args.stagger
    if b_seconds < 10:
        parser.error("B needs at least 10 s: raise --seconds or lower --stagger")
    b_shift = round(args.stagger * RATE)  # B starts that much further into the noise
    with tempfile.TemporaryDirectory() as tmp, PulseRig(latency_ms=args.block_ms) as rig:
        logs = [Path(tmp) / "a.npy", Path(tmp) / "b.npy"]
        recording = rig.record()
        players = []
        for log, offset, side, channel, seconds in (
            (logs[0], 0, "left", "0", args.seconds),
            (logs[1], OFFSET_FRAMES + b_shift, "right", "1", b_seconds),
        ):
            if players and args.stagger:
                time.sleep(args.stagger)
            env = {**os.environ, **rig.env_for(side)}
            if args.direct:
                env["PULSE_SINK"] = rig.null_sink
            command = [sys.executable, "-c", PLAYER, str(log), str(offset), str(seconds)]
            players.append(
                subprocess.Popen([*command, channel if args.direct else "both"], env=env)
            )
        for player in players:
            player.wait()
        samples = recording.stop()
        a, b = (np.load(log) for log in logs)
    # The truth from the last 10 s, when both streams have long settled.
    settled = args.seconds - 10
    truth = summary([o for o in offsets(samples, max_lag_s=0.9) if o.time_s > settled])
    print(
        f"true B-A (recording, last 10 s): {truth['median_us']:.1f} µs, "
        f"spread {truth['spread_max_us']:.2f}; B started {args.stagger:g} s after A; "
        f"{'straight into the null sink' if args.direct else 'through the remap sinks'}; "
        f"null-sink block {args.block_ms} ms"
    )
    for column, source in enumerate(SOURCES, start=1):
        error, since_b = misses(a[:, [0, column]], b[:, [0, column]], b_shift, truth["median_us"])
        late = error[since_b > 5]
        print(
            f"DAC time {source}: predicted minus true, from 5 s after B started: "
            f"median {np.median(late):.1f} µs, p95 |.| {np.percentile(np.abs(late), 95):.1f} "
            f"µs, sd {np.std(late):.1f} µs, max |.| {np.abs(late).max():.1f} µs"
        )
        if args.stagger and column == 1:
            per_second = [
                f"{s}s:{np.median(error[(since_b >= s) & (since_b < s + 1)]):.0f}"
                for s in range(int(min(15, b_seconds)))
                if ((since_b >= s) & (since_b < s + 1)).any()
            ]
            print("  median miss in each second after B started (µs): " + " ".join(per_second))


if __name__ == "__main__":
    main()
