"""A private PulseAudio daemon as the measuring rig for synchronized playback, no sound card.

One stereo null sink; two mono remap sinks feed its left and right channel. Player A plays into
the left sink, player B into the right one, and `parec` records the null sink's monitor: both
players land in one sample-aligned recording, so benchmarks/sync_analysis.py can read B's
offset from A. The null sink's clock is not the monotonic clock (it runs a few hundred ppm off
while clients play), so compare players with each other, never with wall time.

Selecting a sink from PortAudio (sounddevice): Debian's PortAudio reaches PulseAudio through
the ALSA `pulse` plugin (libasound2-plugins), and that plugin leaves the choice to libpulse,
which honours `PULSE_SERVER` and `PULSE_SINK` from the environment; `env_for(side)` sets both.
Open device "pulse" (always defined by the plugin). "default" works too, but only because the
hook in /etc/alsa/conf.d/99-pulse.conf makes it "pulse" when it finds a server running.

Every rig has its own daemon (socket, runtime, state and HOME in a temporary directory): it
neither uses nor disturbs any other daemon, including one of another test worker.
"""

from __future__ import annotations

import functools
import glob
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.rig_processes import (
    STOP_TIMEOUT_S,
    Recording,
    RigError,
    RigProcesses,
    SampleFormat,
    Side,
    missing_tools,
    portaudio_problem,
)

__all__ = [
    "DTYPES",
    "PulseRig",
    "Recording",
    "RigError",
    "SampleFormat",
    "Side",
    "pulse_unavailable_reason",
]


INSTALL_HINT = "apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins"
TOOLS = ("pulseaudio", "pactl", "parec", "pacat")
LATENCY_MS = 20
"""Latency the rig's own streams ask for: it also sets the null sink's block size, which
otherwise is 2 s (an idle null sink sleeps in blocks that long)."""
ALSA_PULSE_PLUGIN = (
    "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so",  # Debian, Ubuntu (multiarch)
    "/usr/lib*/alsa-lib/libasound_module_pcm_pulse.so",  # Fedora, Arch
)
DTYPES: dict[SampleFormat, type[np.generic]] = {"s16le": np.int16, "float32le": np.float32}


@functools.cache
def pulse_unavailable_reason() -> str | None:
    """Why this machine cannot run the rig (a missing package), or None if it can."""
    missing = missing_tools(TOOLS, INSTALL_HINT)
    if missing is not None:
        return missing
    if not any(glob.glob(pattern) for pattern in ALSA_PULSE_PLUGIN):
        return f"the ALSA pulse plugin is not installed ({INSTALL_HINT})"
    return portaudio_problem(INSTALL_HINT)


class PulseRig(RigProcesses):
    """A private daemon with the null sink, its two remap sinks and a silent stream keeping
    the null sink awake. Use as a context manager: everything it started is stopped on exit.
    Its processes also get SIGTERM when the thread that started them ends (so a killed test
    leaves no daemon): start it on a thread that outlives it."""

    device = "pulse"
    """The PortAudio device players open (the ALSA pulse plugin's)."""

    def __init__(
        self,
        rate: int = 48_000,
        sample_format: SampleFormat = "s16le",
        latency_ms: int = LATENCY_MS,
    ) -> None:
        super().__init__("loudsync-pulse-")
        self.rate = rate
        self.sample_format = sample_format
        self.latency_ms = latency_ms
        self.server = f"unix:{self._dir / 'native'}"
        prefix = f"loudsync_{os.getpid()}_{secrets.token_hex(3)}"
        self.null_sink = f"{prefix}_ab"
        self.sinks: dict[Side, str] = {"left": f"{prefix}_a", "right": f"{prefix}_b"}
        self._recordings = 0

    def start(self) -> None:
        """Start the daemon, wait until it answers, load the sinks, start the silent stream."""
        (self._dir / "client.conf").write_text("autospawn = no\n")
        self._daemon = self._spawn(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--system=false",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--use-pid-file=false",
                "--log-target=stderr",
                "-L",
                f"module-native-protocol-unix socket={self._dir / 'native'} auth-anonymous=1",
            ],
            env=self._daemon_env(),
            log="daemon",
        )
        self._wait(self._answers, "the daemon to answer")
        self._load_sinks()
        keep_awake = self._spawn(
            [
                "pacat",
                "--playback",
                "--raw",
                f"--device={self.null_sink}",
                f"--format={self.sample_format}",
                f"--rate={self.rate}",
                "--channels=2",
                f"--latency-msec={self.latency_ms}",
                "--client-name=loudsync-rig-keep-awake",
            ],
            stdin=Path("/dev/zero"),
            env=self._env(self.client_env()),
            log="keep-awake",
        )
        self._wait(
            lambda: "loudsync-rig-keep-awake" in self.pactl("list", "sink-inputs"),
            "the silent stream to connect",
            process=keep_awake,
        )
        # The null sink rendered a first 2 s block before any stream asked for less; until
        # that block's time has passed, nothing reaches its monitor. Restarting drops it.
        self.pactl("suspend-sink", self.null_sink, "1")
        self.pactl("suspend-sink", self.null_sink, "0")

    def env_for(self, side: Side) -> dict[str, str]:
        """Variables that send a child's playback (libpulse, or PortAudio on device "pulse")
        to `side`'s sink of this daemon; merge them into the child's environment."""
        return {**self.client_env(), "PULSE_SINK": self.sinks[side]}

    def attach(self, side: Side, process: subprocess.Popen[Any]) -> None:
        """Nothing to do: `env_for(side)` already chose the player's sink."""

    def client_env(self) -> dict[str, str]:
        """Variables that make any PulseAudio client talk to this daemon only."""
        return {
            "PULSE_SERVER": self.server,
            "PULSE_CLIENTCONFIG": str(self._dir / "client.conf"),
        }

    def pactl(self, *args: str) -> str:
        """Run pactl against this daemon; its output, or RigError with the daemon's log."""
        done = subprocess.run(
            ["pactl", *args],
            env=self._env(self.client_env()),
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RigError(f"pactl {' '.join(args)}: {done.stderr.strip()}\n{self.log()}")
        return done.stdout

    def record(self, path: Path | None = None) -> Recording:
        """Record the null sink's monitor (left = A, right = B) until the Recording stops;
        returns once samples flow, so whatever plays after this call is in it."""
        self._recordings += 1
        target = path or self._dir / f"recording-{self._recordings}.raw"
        process = self._spawn(
            [
                "parec",
                "--raw",
                f"--device={self.null_sink}.monitor",
                f"--format={self.sample_format}",
                f"--rate={self.rate}",
                "--channels=2",
                f"--latency-msec={self.latency_ms}",
            ],
            stdout=target,
            env=self._env(self.client_env()),
            log=f"recording-{self._recordings}",
        )
        self._wait(
            lambda: target.exists() and target.stat().st_size > 0,
            "the recording to start",
            process=process,
        )
        return Recording(process, target, DTYPES[self.sample_format], self.rate)

    def _load_sinks(self) -> None:
        self.pactl(
            "load-module",
            "module-null-sink",
            f"sink_name={self.null_sink}",
            f"rate={self.rate}",
            f"format={self.sample_format}",
            "channels=2",
            "channel_map=front-left,front-right",
        )
        channels: dict[Side, str] = {"left": "front-left", "right": "front-right"}
        for side, channel in channels.items():
            self.pactl(
                "load-module",
                "module-remap-sink",
                f"sink_name={self.sinks[side]}",
                f"master={self.null_sink}",
                "channels=1",
                f"master_channel_map={channel}",
                "channel_map=mono",
                "remix=no",
            )

    def _answers(self) -> bool:
        return (
            subprocess.run(
                ["pactl", "info"],
                env=self._env(self.client_env()),
                capture_output=True,
                timeout=STOP_TIMEOUT_S,
                check=False,
            ).returncode
            == 0
        )

    def _daemon_env(self) -> dict[str, str]:
        """Its own HOME, runtime and state dirs: nothing shared with another daemon."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "DBUS_"))}
        for name in ("home", "runtime", "state", "config"):
            (self._dir / name).mkdir(mode=0o700, exist_ok=True)
        env.update(
            HOME=str(self._dir / "home"),
            XDG_RUNTIME_DIR=str(self._dir / "runtime"),
            XDG_CONFIG_HOME=str(self._dir / "config"),
            PULSE_RUNTIME_PATH=str(self._dir / "runtime"),
            PULSE_STATE_PATH=str(self._dir / "state"),
        )
        return env

    @staticmethod
    def _env(extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        return {**env, **extra}
