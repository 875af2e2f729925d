"""The JACK rig's recorder: two input ports to stdout as raw s16le stereo until SIGTERM.

Run by `JackRig.record()` with stdout to a file, as `parec` is by the PulseAudio rig. JACK
hands every client the same cycle, so what a player wrote in a cycle is what this reads in
it: the two channels are sample-aligned with each other, whatever their delay to here.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

DEVICE = "system"
"""PortAudio's one device on its JACK host API."""
BLOCK = 480


def main() -> int:
    import sounddevice as sd

    out = sys.stdout.buffer
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def write(data: Any, frames: int, when: Any, status: Any) -> None:
        out.write(data)
        out.flush()

    with sd.RawInputStream(
        device=DEVICE,
        samplerate=int(sys.argv[1]) if len(sys.argv) > 1 else 48_000,
        channels=2,
        dtype="int16",
        blocksize=BLOCK,
        callback=write,
    ):
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
