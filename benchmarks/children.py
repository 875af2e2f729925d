"""Child processes of the benchmarks and the rig die with them, however they die."""

from __future__ import annotations

import ctypes
import signal
from typing import Any

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # looked up before any fork: the child only calls it


def die_with_parent() -> None:
    """As a `preexec_fn`: the child gets SIGKILL when the thread that started it ends, so
    no daemon or player outlives a benchmark or a test that was killed."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
