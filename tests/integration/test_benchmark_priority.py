"""`python -m benchmarks` runs our host at the baseline's priority unless told to run it
as users do, and reads back the nice value each server runs at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.netbench import nice_of, start_server


@pytest.mark.parametrize(("raised", "expected"), [(False, 0), (True, -11)])
def test_our_host_runs_at_the_priority_asked(raised: bool, expected: int, tmp_path: Path) -> None:
    if raised and os.geteuid() != 0:
        pytest.skip("lowering a nice value needs root (CI runs as root)")
    server = start_server("ours", "ws", 20, tmp_path, raised_priority=raised)
    try:
        assert server.nice() == expected
    finally:
        server.stop()


def test_the_nice_value_is_read_from_proc() -> None:
    assert nice_of(os.getpid()) == os.getpriority(os.PRIO_PROCESS, 0)
