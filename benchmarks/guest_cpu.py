"""One guest's CPU, thread by thread, while it plays: what a listener's machine spends.

    python -m benchmarks.guest_cpu                 # Opus, 10 s
    python -m benchmarks.guest_cpu --codec pcm --seconds 30

A host (`host --headless --play`, no local audio) and one headless guest play noise into
the PulseAudio rig (benchmarks/pulse_rig.py); after 5 s of settling, each of the guest's
threads is read from /proc/PID/task (utime + stime) at the start and the end of the
window. The host and the rig share the same cores; `python -m benchmarks.sync`'s soak
gives the figure with a second guest beside it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.pulse_rig import PulseRig, pulse_unavailable_reason
from benchmarks.sync_session import Session, make_noise, wait_playing

SETTLE_S = 5.0
KNOWN = {"threaded-ml": "libpulse's mainloop"}
"""Threads by name; the main thread is found by its id, PortAudio's callback thread is the
other one named after the interpreter."""


def thread_ticks(pid: int) -> dict[str, tuple[str, int]]:
    """Each thread of `pid`: (its name, CPU ticks so far)."""
    found: dict[str, tuple[str, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        found[tid] = (name, int(fields[11]) + int(fields[12]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guest_cpu", description=__doc__)
    parser.add_argument("--codec", choices=("opus", "pcm", "flac"), default="opus")
    parser.add_argument("--seconds", type=float, default=10.0, help="the window (default 10)")
    args = parser.parse_args(argv)
    console = Console()
    reason = pulse_unavailable_reason()
    if reason is not None:
        console.print(f"cannot measure: {reason}")
        return 2
    work = Path(tempfile.mkdtemp(prefix="loudsync-guest-cpu-"))
    music = make_noise(work / "noise.wav", args.seconds + SETTLE_S + 20)
    with PulseRig() as rig, Session(rig, work) as session:
        host = session.host(music, "--codec", args.codec)
        guest = session.guest(host, "left")
        wait_playing([guest])
        time.sleep(SETTLE_S)
        before, began = thread_ticks(guest.pid), time.monotonic()
        time.sleep(args.seconds)
        after, took = thread_ticks(guest.pid), time.monotonic() - began
    tick = os.sysconf("SC_CLK_TCK")
    table = Table(title=f"One guest playing {args.codec}, {took:.0f} s: CPU by thread")
    table.add_column("thread")
    table.add_column("% of a core", justify="right")
    total = 0.0
    for tid, (name, ticks) in sorted(after.items()):
        share = (ticks - before.get(tid, (name, ticks))[1]) / tick / took * 100
        total += share
        if share >= 0.05:
            if tid == str(guest.pid):
                label = "main: network, decoding"
            else:
                label = KNOWN.get(name, "sound output: PortAudio's callback")
            table.add_row(f"{label} [{tid}]", f"{share:.1f}")
    table.add_row("all", f"{total:.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
