"""This machine's sound as a source: whatever its apps play, recorded on its way out.

`SystemCapture` asks the sound server (PulseAudio, or PipeWire's PulseAudio service)
for a silent null sink, makes it the default output and moves the apps playing on the
default output onto it; `parec` records its monitor. The apps then play into the
session instead of the speakers, and the speakers play the session's synced copy
(`original_sink`), like every member's: nobody hears the sound twice.

The machine's own streams (this process's player) and the server's module streams
(filter sinks, loopbacks) stay where they were: moved into the capture, the host's
synced copy would be captured again, a buffer later, forever.

Each captured block is stamped with `time.monotonic_ns()` on arrival; `CaptureBuffer`
keeps the last seconds of samples with an estimate of when each was captured, so the
streamer can play sample k at its capture time plus the playback buffer.

Everything runs through `pactl` and `parec` (pulseaudio-utils) with explicit argument
lists and timeouts. `stop()` undoes it all (also at interpreter exit). A host killed
outright cannot: `parec` then ends on its broken pipe, and the next start removes the
sink left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
from numpy.typing import NDArray

from loudsync_tui.audio.source import MAX_TAG_CHARS, SYSTEM_SOURCE, TrackInfo
from loudsync_tui.core.epoch import CHANNELS, RATE
from loudsync_tui.text import UNSAFE

SYSTEM_TITLE = "This machine's sound"
CAPTURE_SINK = "loudsync_capture"
CAPTURE_DESCRIPTION = "LOUDSYNC"
INSTALL_HINT = "install pulseaudio-utils"
TOOLS = ("pactl", "parec")
COMMAND_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0
LATENCY_MS = 10
"""What parec asks for: the monitor delivers blocks about this long."""
KEEP_SAMPLES = 2 * RATE
"""Captured audio kept for the reader (it needs a buffer's worth at most)."""
ORIGIN_WINDOW_US = 1_000_000
"""Arrivals over this span give the capture time estimate: the earliest arrival (least
delayed by scheduling) of the last second. Short enough that the drift between the
capture clock and the monotonic clock moves it by well under a millisecond."""
READ_BYTES = 16_384
FRAME_BYTES = 2 * CHANNELS

_ROUTING = threading.Lock()
"""One capture changes the server's routing at a time, in this process."""
_active: SystemCapture | None = None


class CaptureError(Exception):
    """This machine's sound cannot be captured; one line meant for the user."""


def _fail(why: str) -> CaptureError:
    return CaptureError(f"Cannot capture this machine's sound: {why}")


# Pure parts: the server's answers, and the captured samples with their times -----------


@dataclass(frozen=True, slots=True)
class SinkInput:
    """A stream playing on a sink, as `pactl list sink-inputs` describes it."""

    index: int
    sink: int
    client: int | None
    """None: the server's own stream (a filter sink's, a loopback's)."""
    pid: int | None
    """The process that plays it (`application.process.id`), when it says."""


def missing_tools() -> list[str]:
    """The command-line tools the capture needs that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def missing_tools_message(missing: list[str]) -> str:
    verb = "is" if len(missing) == 1 else "are"
    return f"{' and '.join(missing)} {verb} not installed ({INSTALL_HINT})"


def parse_blocks(text: str) -> list[dict[str, str]]:
    """`pactl list ...` output (in the C locale) as one dict per object: its header
    number as "#", its fields, and its properties as "prop:NAME"."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith("\t"):
            number = line.rpartition("#")[2].strip()
            blocks.append({"#": number})
        elif blocks and line.startswith("\t\t"):
            key, sep, value = line.strip().partition(" = ")
            if sep:
                blocks[-1][f"prop:{key}"] = value.strip().strip('"')
        elif blocks:
            key, sep, value = line.strip().partition(":")
            if sep:
                blocks[-1].setdefault(key, value.strip())
    return blocks


def parse_sink_inputs(text: str) -> list[SinkInput]:
    inputs: list[SinkInput] = []
    for block in parse_blocks(text):
        try:
            index, sink = int(block["#"]), int(block["Sink"])
        except (KeyError, ValueError):
            continue
        client = block.get("Client", "")
        pid = block.get("prop:application.process.id", "")
        inputs.append(
            SinkInput(
                index,
                sink,
                int(client) if client.isdigit() else None,
                int(pid) if pid.isdigit() else None,
            )
        )
    return inputs


def parse_default_sink(info: str) -> str | None:
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Default Sink":
            value = value.strip()
            return value if value and value not in ("(null)", "n/a") else None
    return None


def parse_sinks(text: str) -> dict[str, tuple[int, str]]:
    """Sink name -> (index, description), from `pactl list sinks`."""
    sinks: dict[str, tuple[int, str]] = {}
    for block in parse_blocks(text):
        name = block.get("Name")
        if name and block["#"].isdigit():
            sinks[name] = (int(block["#"]), block.get("Description", name))
    return sinks


def _tag(text: str) -> str:
    """A device description as it may go on the wire (see source._cap)."""
    return UNSAFE.sub("", text).strip()[:MAX_TAG_CHARS].strip()


class CaptureBuffer:
    """Captured samples by their index since the capture began, and when each was
    captured on the monotonic clock. Written by the capture's thread, read by the
    streamer's; every method is thread-safe."""

    def __init__(self, keep: int = KEEP_SAMPLES) -> None:
        self._lock = threading.Lock()
        self._ring = np.zeros((keep, CHANNELS), np.int16)
        self._keep = keep
        self._end = 0
        self._arrivals: deque[tuple[float, float]] = deque()
        """(arrival µs, arrival µs minus the capture duration so far): the second is
        when capture began, delayed by how late this block came."""
        self.failed: str | None = None
        """Why the capture stopped or never started: the source is gone."""

    @property
    def end(self) -> int:
        """How many samples were captured (the index of the next one)."""
        with self._lock:
            return self._end

    def push(self, block: NDArray[np.int16], stamp_ns: int) -> None:
        """`block` (n, 2) arrived at monotonic time `stamp_ns`, its last sample just
        captured."""
        n = len(block)
        if n == 0:
            return
        stamp_us = stamp_ns / 1000
        with self._lock:
            kept = block[-self._keep :]
            at = (self._end + n - len(kept)) % self._keep
            first = min(len(kept), self._keep - at)
            self._ring[at : at + first] = kept[:first]
            self._ring[: len(kept) - first] = kept[first:]
            self._end += n
            self._arrivals.append((stamp_us, stamp_us - self._end * 1e6 / RATE))
            while self._arrivals[0][0] < stamp_us - ORIGIN_WINDOW_US:
                self._arrivals.popleft()

    def fail(self, why: str) -> None:
        self.failed = why

    def origin_us(self) -> float | None:
        """The monotonic time (µs) sample 0 was captured, as of the last second's
        arrivals; None before the first block."""
        with self._lock:
            if not self._arrivals:
                return None
            return min(origin for _, origin in self._arrivals)

    def read(self, start: int, count: int) -> tuple[NDArray[np.int16], int]:
        """Samples [start, start + count) and how many of them are not captured yet;
        silence where there is none (before the capture began, no longer kept, or not
        yet captured)."""
        out = np.zeros((count, CHANNELS), np.int16)
        with self._lock:
            end = self._end
            lo, hi = max(start, end - self._keep, 0), min(start + count, end)
            if lo < hi:
                at = lo % self._keep
                first = min(hi - lo, self._keep - at)
                out[lo - start : lo - start + first] = self._ring[at : at + first]
                out[lo - start + first : hi - start] = self._ring[: hi - lo - first]
        return out, max(0, start + count - max(end, start))


# The capture itself ----------------------------------------------------------------


def _run(*args: str) -> str:
    """pactl with `args` (C locale: its answers are parsed); its output, else CaptureError."""
    env = {**os.environ, "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["pactl", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise _fail(missing_tools_message(["pactl"])) from None
    except subprocess.TimeoutExpired:
        raise _fail(f"pactl {args[0]} did not answer within {COMMAND_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        why = " ".join(done.stderr.split()) or f"pactl exited with {done.returncode}"
        if args[0] == "info":
            raise _fail(f"no PulseAudio or PipeWire server answers ({why})")
        raise _fail(f"pactl {' '.join(args[:2])} failed: {why}")
    return done.stdout


def _outputs() -> tuple[str, dict[str, tuple[int, str]]]:
    """The default sink's name, and every sink's index and description by name;
    CaptureError when a tool is missing, no server answers or it has no output."""
    missing = missing_tools()
    if missing:
        raise _fail(missing_tools_message(missing))
    default = parse_default_sink(_run("info"))
    if default is None:
        raise _fail("the sound server has no default output")
    return default, parse_sinks(_run("list", "sinks"))


def system_track() -> TrackInfo:
    """The live track for `system`, after checking the tools are there and a server
    answers; CaptureError (one line) when not. Its artist is the speakers it plays on."""
    sink, sinks = _outputs()
    description = sinks.get(sink, (0, sink))[1]
    artist = None if sink == CAPTURE_SINK else _tag(description) or None
    return TrackInfo(
        path=Path(SYSTEM_SOURCE),
        title=SYSTEM_TITLE,
        artist=artist,
        album=None,
        duration_ms=None,
        live=True,
    )


class SystemCapture:
    """Records what this machine's apps play (see the module docstring). `start()` and
    `stop()` block for a few server round trips: call them off the event loop. One
    capture is active per process: starting one stops the one before."""

    def __init__(self) -> None:
        self.buffer = CaptureBuffer()
        self.original_sink: str | None = None
        """The output the apps played on: where this machine's synced copy belongs."""
        self.description: str | None = None
        """`original_sink`'s description (the speakers' name)."""
        self.moved: dict[int, str] = {}
        """Sink inputs moved into the capture, and the sink each came from."""
        self._lock = threading.Lock()
        self._closed = False
        self._ending = False
        self._module: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """parec's process id while it runs."""
        process = self._process
        return process.pid if process is not None else None

    @property
    def running(self) -> bool:
        """parec is recording."""
        process = self._process
        return process is not None and process.poll() is None

    def __enter__(self) -> SystemCapture:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Route the apps into the capture sink and record it; CaptureError (one line,
        also left in `buffer.failed`) when it cannot. Nothing is left changed then."""
        global _active
        with _ROUTING, self._lock:
            if self._closed or self._module is not None:
                return
            self._ending = False
            if _active is not None and _active is not self:
                _active._undo()
            try:
                self._route()
                self._record()
            except CaptureError as exc:
                self.buffer.fail(str(exc))
                self._undo()
                raise
            _active = self
            atexit.register(self.stop)

    def stop(self) -> None:
        """Give the apps their output back, remove the sink, end parec. Idempotent;
        a `start()` still under way finishes first, one not yet begun never will."""
        with _ROUTING, self._lock:
            self._closed = True
            self._undo()

    # Routing --------------------------------------------------------------------

    def _route(self) -> None:
        missing = missing_tools()
        if missing:
            raise _fail(missing_tools_message(missing))
        _remove_stale_sinks()
        home, sinks = _outputs()
        original, self.description = sinks.get(home, (None, home))
        self.original_sink = home
        before = parse_sink_inputs(_run("list", "sink-inputs"))
        self._module = _run(
            "load-module",
            "module-null-sink",
            f"sink_name={CAPTURE_SINK}",
            f"sink_properties=device.description={CAPTURE_DESCRIPTION}",
            f"rate={RATE}",
            f"channels={CHANNELS}",
        ).strip()
        _run("set-default-sink", CAPTURE_SINK)
        me = os.getpid()
        # The server may have moved every stream that followed the default (PulseAudio
        # 15 and later do): ours and its own go straight back, first of all.
        playing = [s for s in before if s.sink == original]
        for stream in sorted(playing, key=lambda s: s.client is not None and s.pid != me):
            if stream.client is None or stream.pid == me:
                _move(stream.index, home)
            elif _move(stream.index, CAPTURE_SINK):
                self.moved[stream.index] = home

    def _record(self) -> None:
        try:
            process = subprocess.Popen(
                [
                    "parec",
                    "--raw",
                    f"--device={CAPTURE_SINK}.monitor",
                    "--format=s16le",
                    f"--rate={RATE}",
                    f"--channels={CHANNELS}",
                    f"--latency-msec={LATENCY_MS}",
                    f"--client-name={CAPTURE_DESCRIPTION}",
                    f"--stream-name={SYSTEM_TITLE}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            why = missing_tools_message(["parec"]) if isinstance(exc, FileNotFoundError) else exc
            raise _fail(str(why)) from None
        self._process = process
        assert process.stdout is not None
        self._thread = threading.Thread(
            target=self._read, args=(process, process.stdout), name="loudsync-capture", daemon=True
        )
        self._thread.start()

    def _read(self, process: subprocess.Popen[bytes], out: IO[bytes]) -> None:
        """The reader thread: blocks into the buffer, stamped on arrival, until parec ends."""
        fd = out.fileno()
        rest = b""
        while True:
            try:
                data = os.read(fd, READ_BYTES)
            except OSError:
                data = b""
            stamp = time.monotonic_ns()
            if not data:
                break
            data = rest + data
            whole = len(data) - len(data) % FRAME_BYTES
            rest = data[whole:]
            block = np.frombuffer(data[:whole], "<i2").reshape(-1, CHANNELS)
            self.buffer.push(block, stamp)
        if not self._ending:
            try:
                code = process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
            why = _stderr_line(process) if code is not None else ""
            self.buffer.fail(
                f"This machine's sound stopped: parec exited ({code}){': ' + why if why else ''}"
            )

    def _undo(self) -> None:
        """Everything `start` did, the apps' output first; never raises."""
        global _active
        self._ending = True  # parec ends now: its reader must not report that as a failure
        module, self._module = self._module, None
        home = self.original_sink
        if module is not None and home is not None:
            with contextlib.suppress(CaptureError):  # the speakers may be gone (unplugged)
                _run("set-default-sink", home)
            with contextlib.suppress(CaptureError):
                capture = parse_sinks(_run("list", "sinks")).get(CAPTURE_SINK, (-1, ""))[0]
                for stream in parse_sink_inputs(_run("list", "sink-inputs")):
                    if stream.sink == capture:  # those moved, and apps started since
                        _move(stream.index, self.moved.get(stream.index, home))
        if module is not None:
            with contextlib.suppress(CaptureError):  # what is still on it goes to the default
                _run("unload-module", module)
        self.moved = {}
        process, self._process = self._process, None
        if process is not None:
            _end(process)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT_S)
        if process is not None:
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        if _active is self:
            _active = None
        atexit.unregister(self.stop)


def _move(stream: int, sink: str) -> bool:
    """Move one stream; False when it is gone meanwhile (a stream may end any time)."""
    try:
        _run("move-sink-input", str(stream), sink)
    except CaptureError:
        return False
    return True


def _remove_stale_sinks() -> None:
    """A capture sink an earlier run could not remove (it was killed) goes first: the
    server then gives its streams back to a real output."""
    for line in _run("list", "short", "modules").splitlines():
        fields = line.split("\t")
        stale = len(fields) >= 3 and fields[1] == "module-null-sink"
        if stale and f"sink_name={CAPTURE_SINK}" in fields[2].split():
            with contextlib.suppress(CaptureError):
                _run("unload-module", fields[0])


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; always reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stderr_line(process: subprocess.Popen[bytes]) -> str:
    if process.stderr is None:
        return ""
    try:
        text = process.stderr.read(4096).decode(errors="replace")
    except (OSError, ValueError):
        return ""
    return " ".join(text.split())[:200]
