"""A private JACK server on the dummy driver: a second measuring rig for synchronized
playback, whose device reports are far closer to the truth than PulseAudio's.

Why a second rig: through the ALSA pulse plugin, two plain PortAudio players that trust
PulseAudio's reports miss each other by 77-310 µs (`python -m benchmarks.rig_floor`),
more than the 100 µs target, before any code of ours runs. JACK's dummy driver keeps time by
the monotonic clock, and every client renders the same cycle, so a recorder client reads
in a cycle exactly what the players wrote in it. What is left of the device's error is
PortAudio's: its JACK host stamps a buffer's DAC time from the moment the callback runs,
not from the cycle's start, so each player's DAC time is late by its own wake-up delay in
the cycle (tens of µs; `python -m benchmarks.sync --rig jack` reports what it comes to).

Players open PortAudio's device "system" (its JACK host API) with `client_env()` set. A
JACK client cannot be named from outside (PortAudio calls each "PortAudio", JACK appends
a number), so `attach(side, process)` waits for the one new client the process brings and
connects its left output to the recorder's input for `side`: start players one at a time.
The server runs with realtime scheduling where the machine allows it (its clients' process
threads then get it too, as on a musician's machine; else without, and `realtime` says so),
at one rate: a player opened at another (`--dac-skew-ppm`) is refused by PortAudio, and all
share one period, so no player has a device buffer of its own (`--output-latency-ms`).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.rig_processes import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Recording,
    RigError,
    RigProcesses,
    SampleFormat,
    Side,
    missing_tools,
    portaudio_problem,
)

INSTALL_HINT = "apt-get install jackd2 libportaudio2"
TOOLS = ("jackd", "jack_lsp", "jack_connect", "jack_disconnect")
PERIOD = 1920
"""Frames per JACK cycle (40 ms), the players' default block: one callback a cycle. At 480
(10 ms) the players' and the recorder's Python callbacks missed cycles on 2 cores (10-12
xruns in 40 s, each throwing a player ms off for seconds); at 1920, none."""
INPUTS: dict[Side, str] = {"left": "in_0", "right": "in_1"}


@functools.cache
def jack_unavailable_reason() -> str | None:
    """Why this machine cannot run the rig (a missing package), or None if it can."""
    missing = missing_tools(TOOLS, INSTALL_HINT)
    if missing is not None:
        return missing
    problem = portaudio_problem(INSTALL_HINT)
    if problem is not None:
        return problem
    # Its host APIs list JACK only while a server runs; the library's own symbol tells.
    library = importlib.import_module("sounddevice")._libname
    if not hasattr(ctypes.CDLL(library), "PaJack_SetClientName"):
        return f"this PortAudio was built without JACK ({INSTALL_HINT})"
    return None


def realtime_allowed() -> bool:
    """Whether this process's children may use SCHED_FIFO (root, or CAP_SYS_NICE)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    return done.returncode == 0


class JackRig(RigProcesses):
    """A private JACK server and, while recording, a recorder client (left = A, right = B).
    Use as a context manager: everything it started is stopped on exit."""

    device = "system"
    """The PortAudio device players open (the JACK host API's)."""

    def __init__(self, rate: int = 48_000, period: int = PERIOD) -> None:
        super().__init__("loudsync-jack-")
        self.rate = rate
        self.period = period
        self.sample_format: SampleFormat = "s16le"
        self.server = f"loudsync_{os.getpid()}_{secrets.token_hex(3)}"
        self._known = {"system"}
        self._players: dict[Side, str] = {}
        self._recorder: str | None = None
        self._recordings = 0
        self.realtime = realtime_allowed()

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self._daemon = self._spawn(
            [
                "jackd",
                "--realtime" if self.realtime else "--no-realtime",
                "-n",
                self.server,
                "-d",
                "dummy",
                "-r",
                str(self.rate),
                "-p",
                str(self.period),
            ],
            env={**self._env(), "JACK_NO_AUDIO_RESERVATION": "1"},
            log="daemon",
        )
        self._wait(lambda: "system:playback_1" in self._ports(), "the JACK server to answer")

    def client_env(self) -> dict[str, str]:
        """Variables that make a JACK client use this server only, never start one."""
        return {"JACK_DEFAULT_SERVER": self.server, "JACK_NO_START_SERVER": "1"}

    def env_for(self, side: Side) -> dict[str, str]:
        """The same for either side: `attach` does the routing."""
        return self.client_env()

    def attach(self, side: Side, process: subprocess.Popen[Any]) -> None:
        """Wait for the JACK client `process` opens, and route its left output to `side`."""
        self._players[side] = self._new_client(process, f"the {side} player's JACK client")
        self._route(side)

    def record(self, path: Path | None = None) -> Recording:
        """Record both sides until the Recording stops; returns once samples flow."""
        self._recordings += 1
        target = path or self._dir / f"recording-{self._recordings}.raw"
        process = self._spawn(
            [sys.executable, "-m", "benchmarks.jack_record", str(self.rate)],
            stdout=target,
            env={**self._env(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            log=f"recording-{self._recordings}",
        )
        self._recorder = self._new_client(process, "the recorder's JACK client")
        for number, port in enumerate(INPUTS.values(), start=1):  # not the silent captures
            self._jack("jack_disconnect", f"system:capture_{number}", f"{self._recorder}:{port}")
        for side in self._players:
            self._route(side)
        self._wait(
            lambda: target.exists() and target.stat().st_size > 0,
            "the recording to start",
            process=process,
        )
        return Recording(process, target, np.int16, self.rate)

    def _route(self, side: Side) -> None:
        player = self._players.get(side)
        if player is not None and self._recorder is not None:
            self._jack("jack_connect", f"{player}:out_0", f"{self._recorder}:{INPUTS[side]}")

    def _new_client(self, process: subprocess.Popen[Any], what: str) -> str:
        found: list[str] = []

        def appeared() -> bool:
            found[:] = sorted({p.split(":", 1)[0] for p in self._ports()} - self._known)
            return bool(found)

        self._wait(appeared, what, process=process, timeout=3 * START_TIMEOUT_S)
        if len(found) > 1:
            raise RigError(f"{what}: {len(found)} new clients at once ({', '.join(found)})")
        self._known.add(found[0])
        return found[0]

    def _ports(self) -> list[str]:
        return self._jack("jack_lsp", check=False).split()

    def _jack(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            args,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT_S,
            check=False,
        )
        if check and done.returncode != 0:
            raise RigError(f"{' '.join(args)}: {done.stderr.strip()}\n{self.log()}")
        return done.stdout if done.returncode == 0 else ""

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JACK_", "PULSE_"))}
        return {**env, **self.client_env()}
