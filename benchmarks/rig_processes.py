"""What every measuring rig shares: a private temporary directory, the processes it starts
(each logging to a file there, each dying with the thread that started it), waiting for a
condition while watching them, and a recording written to a file by one of them.

A rig is used as a context manager: everything it started is stopped on exit, newest first.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import numpy as np
from numpy.typing import NDArray

from benchmarks.children import die_with_parent

SampleFormat = Literal["s16le", "float32le"]
Side = Literal["left", "right"]
"""Player A plays into the left channel of the recording, player B into the right."""

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.02


def missing_tools(tools: tuple[str, ...], hint: str) -> str | None:
    """Which of `tools` are not on PATH, said with how to install them; None if none."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed ({hint})" if missing else None


def portaudio_problem(hint: str) -> str | None:
    """Why sounddevice cannot load PortAudio, said with how to install it; None if it can."""
    try:
        importlib.import_module("sounddevice")
    except OSError as error:  # PortAudio itself is missing
        return f"sounddevice cannot load PortAudio: {error} ({hint})"
    return None


class RigError(RuntimeError):
    """The rig could not start or a command failed; carries the server's log."""


class RigProcesses:
    """The processes of one rig and their logs; `daemon` is the server the rig is built on."""

    def __init__(self, prefix: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=prefix))
        self._processes: list[subprocess.Popen[bytes]] = []
        self._daemon: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
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
        raise NotImplementedError

    def log(self) -> str:
        """The server's log so far, for error messages."""
        path = self._dir / "daemon.log"
        return f"daemon log:\n{path.read_text(errors='replace')}" if path.exists() else ""

    def close(self) -> None:
        """Stop every process this rig started (newest first), then remove its directory."""
        for process in reversed(self._processes):
            stop_process(process)
        self._processes.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

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
        env: dict[str, str],
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
                env=env,
                cwd=self._dir,
                preexec_fn=die_with_parent,
            )
        self._processes.append(process)
        return process


class Recording:
    """A process writing both channels to a file; `stop()` ends it and returns the (n, 2)
    samples, left = A, right = B."""

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
        passed the rig's latency and is in the recording."""
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
            stop_process(self._process)
            raw = self.path.read_bytes()
            frame = 2 * self._dtype.itemsize
            data = np.frombuffer(raw[: len(raw) - len(raw) % frame], dtype=self._dtype)
            self.samples = data.reshape(-1, 2)
        return self.samples


def stop_process(process: subprocess.Popen[bytes]) -> None:
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
