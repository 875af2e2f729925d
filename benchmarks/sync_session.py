"""A host and its guests as real processes playing into the PulseAudio rig, for measuring
how well they stay together: shared by benchmarks/sync.py and tests/integration/test_sync.py.

Every process runs as a user would run it (`python -m loudsync_tui host|join --headless
--json`), each with its own config dir and the rig's environment for its side, so its
PortAudio output lands in one channel of the rig's recording. A thread per process reads its
JSON lines and stamps each with this process's monotonic clock (system-wide on Linux, so
comparable with the children's). Threads, not asyncio: the test is synchronous, and the
rig's processes die with the thread that started them, which must be one that lives on.

`TimedRecording` adds what the rig's recording lacks for command latencies: when (on the
monotonic clock) each recorded sample was heard, from the file's growth. `transition` finds
where a channel's sound stops, starts, or dips at a seek, from the players' 5 ms fades.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from benchmarks.children import die_with_parent
from benchmarks.media import noise, write_wav
from benchmarks.pulse_rig import DTYPES, Recording, SampleFormat, Side
from benchmarks.sync_analysis import Offsets, WindowOffset, offsets

ROOT = Path(__file__).resolve().parent.parent
RATE = 48_000
READY_TIMEOUT_S = 20.0
STOP_GRACE_S = 5.0
POLL_S = 0.02
CLOCKMAP_POLL_S = 0.01
SILENT_LSB = 3
"""A recorded int16 sample this small or smaller counts as silence: a paused player writes
exact zeros, and the first sample of a 5 ms fade-in is already ~1/240 of full level."""
FADE_FRAMES = 240
"""The players' fade at a start, pause or seek (core/playout.py): the seek's dip is fitted
with it."""
DIP_POWER = 0.3
DIP_DEPTH = 0.7
"""A seek's dip, in the 5 ms mean of |x|^0.3, falls under this fraction of the median."""
ANALYSIS_CHUNK_S = 60.0

Transition = Literal["stop", "start", "seek"]
Event = tuple[float, dict[str, Any]]
"""(this process's monotonic seconds when the line arrived, the JSON object)."""


def make_noise(path: Path, seconds: float) -> Path:
    """The music every scenario plays: broadband noise, so any misplaced sample shows."""
    return write_wav(path, noise(seconds))


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (all its threads), from /proc; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Proc:
    """One `python -m loudsync_tui` process; its stdout JSON lines kept with arrival times."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], workdir: Path, stdin: bool
    ) -> None:
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr"
        self.events: list[Event] = []
        self._err: IO[bytes] = self.stderr_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loudsync_tui", *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=env,
            cwd=ROOT,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    self.events.append((time.monotonic(), obj))

    @property
    def pid(self) -> int:
        return self.process.pid

    def of(self, event: str) -> list[Event]:
        """Every line of this kind so far, oldest first."""
        return [e for e in list(self.events) if e[1].get("event") == event]

    def last(self, event: str) -> dict[str, Any] | None:
        found = self.of(event)
        return found[-1][1] if found else None

    def wait_for(
        self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = READY_TIMEOUT_S
    ) -> Event:
        """The first line (old or new) that passes `check`; fails early if the process ends."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            events = list(self.events)
            for event in events[seen:]:
                if check(event[1]):
                    return event
            seen = len(events)
            if self.process.poll() is not None:
                time.sleep(0.1)  # its last lines may still be in the pipe
                if len(self.events) == seen:
                    raise RuntimeError(
                        f"{self.name} exited ({self.process.returncode}) before {what}:\n"
                        f"{self.stderr_tail()}"
                    )
            elif time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name}: no {what} within {timeout:g} s\n{self.tail()}")
            time.sleep(POLL_S)

    def send(self, line: str) -> float:
        """Write one command line to its stdin; returns the monotonic time just before."""
        assert self.process.stdin is not None
        at = time.monotonic()
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        return at

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    def tail(self) -> str:
        lines = [json.dumps(obj) for _, obj in self.events[-10:]]
        return "\n".join(lines) + "\n" + self.stderr_tail()

    def stderr_tail(self, chars: int = 2000) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM (a guest leaves, the host closes), SIGKILL after a grace period."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._reader.join(2.0)
        self._err.close()


@dataclass
class Host:
    proc: Proc
    address: str
    session_id: str
    port: int
    offset_us: int
    """Session clock minus the monotonic clock (µs): session_us = monotonic_us + offset_us."""

    def session_us(self, monotonic_s: float) -> float:
        return monotonic_s * 1e6 + self.offset_us


class Rig(Protocol):
    """What a session needs of a measuring rig (benchmarks/pulse_rig.py, jack_rig.py)."""

    rate: int
    sample_format: SampleFormat
    device: str
    """The PortAudio device the players open."""

    def client_env(self) -> dict[str, str]: ...

    def env_for(self, side: Side) -> dict[str, str]: ...

    def attach(self, side: Side, process: subprocess.Popen[Any]) -> None: ...

    def record(self, path: Path | None = None) -> Recording: ...


@dataclass
class Session:
    """Processes started with the rig's environment; `close()` stops them all, newest first."""

    rig: Rig
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def _env(self, side: Side | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        extra = self.rig.client_env() if side is None else self.rig.env_for(side)
        return {**env, **extra, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}

    def spawn(self, name: str, args: list[str], side: Side | None, stdin: bool = False) -> Proc:
        config = self.workdir / f"{name}-config"
        config.mkdir(parents=True, exist_ok=True)
        proc = Proc(
            name, ["--config-dir", str(config), *args], self._env(side), self.workdir, stdin
        )
        self.procs.append(proc)
        if side is not None:
            self.rig.attach(side, proc.process)
        return proc

    def host(
        self,
        music: Path,
        *extra: str,
        side: Side | None = None,
        commands: bool = False,
        tls: bool = True,
        name: str = "host",
    ) -> Host:
        """A host playing `music`; with `side` its own output plays there (else none)."""
        args = [
            "host",
            "--headless",
            "--json",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--no-discovery",
            "--allow-unproven",
            "--play",
            str(music),
            *(["--audio-device", self.rig.device] if side else ["--no-local-audio"]),
            *(["--commands"] if commands else []),
            *([] if tls else ["--no-tls"]),
            *extra,
        ]
        proc = self.spawn(name, args, side, stdin=commands)
        _, ready = proc.wait_for(lambda o: o.get("event") == "ready", "ready line")
        return Host(
            proc,
            address=str(ready["joinWith"]).split()[-1],
            session_id=str(ready["sessionId"]),
            port=int(str(ready["url"]).rsplit(":", 1)[1].rstrip("/")),
            offset_us=int(ready["sessionClockOffsetUs"]),
        )

    def guest(self, host: Host, side: Side, *extra: str, name: str | None = None) -> Proc:
        """A guest playing on `side` through the rig's PortAudio device."""
        args = [
            "join",
            host.address,
            "--headless",
            "--json",
            "--trust-new",
            "--audio-device",
            self.rig.device,
            *extra,
        ]
        return self.spawn(name or f"guest-{side}", args, side)


def playing(obj: dict[str, Any]) -> bool:
    """A `playback` line saying the player plays."""
    return obj.get("event") == "playback" and obj.get("state") == "playing"


def wait_playing(procs: list[Proc], timeout: float = READY_TIMEOUT_S) -> None:
    for proc in procs:
        proc.wait_for(playing, "playback", timeout)


# Recording with a time axis --------------------------------------------------------------


class TimedRecording:
    """The rig's recording plus (monotonic time, frames in the file) every 10 ms, to place a
    recorded sample on the monotonic clock (`monotonic_at`).

    Sample n was in the file by the poll that saw it, so it was rendered no later; the null
    sink renders up to its block (20 ms) before the time it reports to players, and parec
    passes blocks on within its latency (20 ms). The slope comes from a least-squares fit
    (the null sink's clock runs a few hundred ppm off), the intercept from the earliest polls
    (the lower envelope): a sample's time is then within about -20..+10 ms of when the players
    meant it to sound."""

    def __init__(self, rig: Rig) -> None:
        self.recording: Recording = rig.record()
        self._frame = 2 * np.dtype(DTYPES[rig.sample_format]).itemsize
        self.rate = rig.rate
        self.polls: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="clockmap", daemon=True)
        self._thread.start()
        self.slope = 1.0 / self.rate
        self.t0 = time.monotonic()

    def _poll(self) -> None:
        path = self.recording.path
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.polls.append((time.monotonic(), path.stat().st_size // self._frame))
            time.sleep(CLOCKMAP_POLL_S)

    def settle(self, seconds: float = 0.2) -> None:
        self.recording.settle(seconds)

    def stop(self) -> NDArray[np.generic]:
        self._stop.set()
        self._thread.join(1.0)
        samples = self.recording.stop()
        polls = np.array([(t, n) for t, n in self.polls if n > 0], dtype=np.float64)
        if len(polls) >= 2:
            t, n = polls[:, 0], polls[:, 1]
            self.slope = float(np.polyfit(n, t, 1)[0])
            self.t0 = float(np.min(t - self.slope * n))
        return samples

    def monotonic_at(self, sample: float) -> float:
        """When recorded sample `sample` was heard, on the monotonic clock (after `stop`)."""
        return self.t0 + self.slope * sample

    def seconds_at(self, monotonic_s: float) -> float:
        """Where a monotonic time falls in the recording, in seconds (after `stop`)."""
        return (monotonic_s - self.t0) / (self.slope * self.rate)


# Analysis --------------------------------------------------------------------------------


def offsets_chunked(
    samples: NDArray[Any], rate: int = RATE, hop_s: float = 0.25, chunk_s: float = ANALYSIS_CHUNK_S
) -> Offsets:
    """`sync_analysis.offsets` over a long recording a minute at a time: converting all of a
    ten-minute soak to float64 at once would take half a gigabyte."""
    found: list[WindowOffset] = []
    skipped = {"silent": 0, "weak": 0}
    step = round(chunk_s * rate)
    pad = round(0.2 * rate)  # the analysis needs its lag range on either side of a window
    for start in range(0, len(samples), step):
        lo = max(0, start - pad)
        part = offsets(samples[lo : start + step + pad], rate, hop_s=hop_s)
        for o in part:
            at = o.time_s + lo / rate
            if start / rate <= at < (start + step) / rate:
                found.append(WindowOffset(at, o.offset_us, o.quality))
        for k, v in part.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    return Offsets(found, skipped)


def silent(channel: NDArray[Any]) -> bool:
    """True when every sample is at most `SILENT_LSB` (int16 recordings)."""
    return len(channel) == 0 or int(np.max(np.abs(channel.astype(np.int32)))) <= SILENT_LSB


def transition(
    channel: NDArray[Any], kind: Transition, after: int, within: int, rate: int = RATE
) -> float | None:
    """Where (a fractional sample index) one channel's sound stops, starts or dips for a seek,
    searching `within` samples from `after`; None if it does not happen there.

    A pause fades out to exact zeros and a play fades in from them, so the last (first)
    sample above `SILENT_LSB` next to at least 20 ms of silence marks it to a sample. A seek
    fades out to its switch time and in again from it: a V in the envelope, fitted near its
    lowest point (`_seek_dip`); alone good to about a sample, and better between two players
    of the same audio, whose fitting errors are alike.
    """
    x = np.abs(channel[after : after + within].astype(np.int32))
    loud = x > SILENT_LSB
    quiet_run = round(0.02 * rate)
    if kind == "start":
        for i in np.flatnonzero(loud):
            if i >= quiet_run and not loud[i - quiet_run : i].any():
                return float(after + i)
        return None
    if kind == "stop":
        idx = np.flatnonzero(loud)
        for j in range(len(idx)):
            i = idx[j]
            following = loud[i + 1 : i + 1 + quiet_run]
            if len(following) == quiet_run and not following.any():
                return float(after + i + 1)  # the first silent sample: where the fade ended
        return None
    return _seek_dip(channel[after : after + within], rate, after)


def _seek_dip(part: NDArray[Any], rate: int, offset: int) -> float | None:
    """The V's apex to a quarter sample. Fitted on |x|^0.3, not x²: the compressed envelope
    weighs the many small samples near the apex as much as the few loud ones, which took the
    error on synthetic fades from ~10 samples rms (x²) to ~1."""
    x = np.abs(part.astype(np.float64)) ** DIP_POWER
    if len(x) < 6 * FADE_FRAMES:
        return None
    smooth = np.convolve(x, np.ones(FADE_FRAMES) / FADE_FRAMES, mode="same")
    edge = 2 * FADE_FRAMES
    core = smooth[edge:-edge]
    coarse = edge + int(np.argmin(core))
    level = float(np.median(core))
    if level <= 0 or core.min() > DIP_DEPTH * level:
        return None  # no dip: this is not a seek's fade
    lo, hi = max(0, coarse - 3 * FADE_FRAMES), min(len(x), coarse + 3 * FADE_FRAMES)
    n = np.arange(lo, hi, dtype=np.float64)
    candidates = np.arange(coarse - FADE_FRAMES, coarse + FADE_FRAMES, 0.25)
    gain = np.minimum(1.0, np.abs(n[None, :] - candidates[:, None]) / FADE_FRAMES) ** DIP_POWER
    y = x[None, lo:hi]
    scale = np.sum(y * gain, axis=1) / np.maximum(np.sum(gain * gain, axis=1), 1e-12)
    errors = np.sum((y - scale[:, None] * gain) ** 2, axis=1)
    return float(offset + candidates[int(np.argmin(errors))])
