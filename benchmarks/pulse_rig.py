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

import contextlib
import functools
import glob
import importlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from benchmarks.children import die_with_parent

Side = Literal["left", "right"]
SampleFormat = Literal["s16le", "float32le"]

INSTALL_HINT = "apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins"
TOOLS = ("pulseaudio", "pactl", "parec", "pacat")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.02
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
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed ({INSTALL_HINT})"
    if not any(glob.glob(pattern) for pattern in ALSA_PULSE_PLUGIN):
        return f"the ALSA pulse plugin is not installed ({INSTALL_HINT})"
    try:
        importlib.import_module("sounddevice")
    except OSError as error:  # PortAudio itself is missing
        return f"sounddevice cannot load PortAudio: {error} ({INSTALL_HINT})"
    return None


class RigError(RuntimeError):
    """The rig could not start or a command failed; carries the daemon's log."""


class PulseRig:
    """A private daemon with the null sink, its two remap sinks and a silent stream keeping
    the null sink awake. Use as a context manager: everything it started is stopped on exit.
    Its processes also get SIGTERM when the thread that started them ends (so a killed test
    leaves no daemon): start it on a thread that outlives it."""

    def __init__(
        self,
        rate: int = 48_000,
        sample_format: SampleFormat = "s16le",
        latency_ms: int = LATENCY_MS,
    ) -> None:
        self.rate = rate
        self.sample_format = sample_format
        self.latency_ms = latency_ms
        self._dir = Path(tempfile.mkdtemp(prefix="loudsync-pulse-"))
        self.server = f"unix:{self._dir / 'native'}"
        prefix = f"loudsync_{os.getpid()}_{secrets.token_hex(3)}"
        self.null_sink = f"{prefix}_ab"
        self.sinks: dict[Side, str] = {"left": f"{prefix}_a", "right": f"{prefix}_b"}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._daemon: subprocess.Popen[bytes] | None = None
        self._recordings = 0

    def __enter__(self) -> PulseRig:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
            log=f"recording-{self._recordings}",
        )
        self._wait(
            lambda: target.exists() and target.stat().st_size > 0,
            "the recording to start",
            process=process,
        )
        return Recording(process, target, DTYPES[self.sample_format], self.rate)

    def log(self) -> str:
        """The daemon's log so far, for error messages."""
        path = self._dir / "daemon.log"
        return f"daemon log:\n{path.read_text(errors='replace')}" if path.exists() else ""

    def close(self) -> None:
        """Stop every process this rig started (newest first), then remove its directory."""
        for process in reversed(self._processes):
            _stop(process)
        self._processes.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

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

    def _wait(
        self,
        ready: Callable[[], bool],
        what: str,
        *,
        process: subprocess.Popen[bytes] | None = None,
        timeout: float = START_TIMEOUT_S,
    ) -> None:
        """Poll `ready` until it holds; fail early if the daemon or `process` exits."""
        deadline = time.monotonic() + timeout
        while not ready():
            for watched in (self._daemon, process):
                if watched is not None and watched.poll() is not None:
                    raise RigError(
                        f"{_name(watched)} exited ({watched.returncode}) waiting for {what}\n"
                        f"{self.log()}"
                    )
            if time.monotonic() >= deadline:
                raise RigError(f"timed out after {timeout}s waiting for {what}\n{self.log()}")
            time.sleep(POLL_S)

    def _spawn(
        self,
        args: list[str],
        *,
        log: str,
        env: dict[str, str] | None = None,
        stdin: Path | None = None,
        stdout: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        with contextlib.ExitStack() as files:
            source = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
            sink = files.enter_context(stdout.open("wb")) if stdout else subprocess.DEVNULL
            errors = files.enter_context((self._dir / f"{log}.log").open("wb"))
            process = subprocess.Popen(
                args,
                stdin=source,
                stdout=sink,
                stderr=errors,
                env=env or self._env(self.client_env()),
                cwd=self._dir,
                preexec_fn=die_with_parent,
            )
        self._processes.append(process)
        return process

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


class Recording:
    """`parec` writing the monitor to a file; `stop()` ends it and returns the (n, 2) samples."""

    def __init__(
        self, process: subprocess.Popen[bytes], path: Path, dtype: type[np.generic], rate: int
    ) -> None:
        self.path = path
        self._rate = rate
        self._process = process
        self._dtype = np.dtype(dtype).newbyteorder("<")
        self.samples: NDArray[np.generic] | None = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settle(self, seconds: float = 0.2, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until `seconds` more audio is recorded: what players finished writing has
        passed the sinks' latency and is in the recording."""
        frame = 2 * self._dtype.itemsize
        target = self.path.stat().st_size + round(seconds * self._rate) * frame
        deadline = time.monotonic() + timeout
        while self.path.stat().st_size < target:
            if self._process.poll() is not None or time.monotonic() >= deadline:
                raise RigError(f"the recording stopped growing ({self.path})")
            time.sleep(POLL_S)

    def stop(self) -> NDArray[np.generic]:
        """End the recording (once) and return it, frames as rows, left = A, right = B."""
        if self.samples is None:
            _stop(self._process)
            raw = self.path.read_bytes()
            frame = 2 * self._dtype.itemsize
            data = np.frombuffer(raw[: len(raw) - len(raw) % frame], dtype=self._dtype)
            self.samples = data.reshape(-1, 2)
        return self.samples


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _name(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    return str(args[0]) if isinstance(args, list) else str(args)
