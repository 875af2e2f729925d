"""A host raises its own open-files limit when the hard limit allows, and says what to
do when it does not (each case in a process of its own, started under `prlimit`)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

PROBE = (
    "import resource; from loudsync_tui.net.process_limits import raise_open_files; "
    "said = raise_open_files(1000); "
    "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0]); print(said)"
)


def run_under(limits: str) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    done = subprocess.run(
        [prlimit, f"--nofile={limits}", sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_soft_limit_is_raised_to_what_the_members_need() -> None:
    soft, said = run_under("256:8192")
    assert int(soft) == 1000 + 64
    assert said == "None"


def test_a_hard_limit_too_low_is_one_clear_sentence() -> None:
    soft, said = run_under("300:500")
    assert int(soft) == 500  # as far as it goes
    assert "may open only 500 files (hard limit 500)" in said
    assert "about 436 of the 1000 members can join" in said
    assert "ulimit -n 1064" in said


def test_room_enough_changes_nothing() -> None:
    soft, said = run_under("4096:8192")
    assert int(soft) == 4096
    assert said == "None"


HOSTING = """
import asyncio
from loudsync_tui.config import HostConfig
from loudsync_tui.net.host_service import HostService
from loudsync_tui.store import AppStore

async def main():
    config = HostConfig("Big", "Grace", "dev-grace", port=0, bind="127.0.0.1",
                        discovery=False, tls=False, max_members=1000)
    host = HostService(config, AppStore())
    await host.start()
    for entry in host.store.get().log:
        print(entry.level, entry.text)
    await host.aclose()

asyncio.run(main())
"""


def test_a_host_that_cannot_raise_it_says_so_in_its_log_and_runs() -> None:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    done = subprocess.run(
        [prlimit, "--nofile=300:500", sys.executable, "-c", HOSTING],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning ")]
    assert len(warnings) == 1
    assert "may open only 500 files" in warnings[0]
    assert "Hosting 'Big'" in done.stdout  # and the session started all the same
    assert "Traceback" not in done.stderr


SETTLING = """
import gc
from loudsync_tui.net import process_limits as p
p.members_now(100)
print(gc.get_freeze_count() == 0)  # not settled yet: nothing frozen
p.settle_the_collector()
frozen = gc.get_freeze_count()
keep = [[object()] for _ in range(5000)]  # a wave of joins' objects
p.members_now(7)  # not a quarter more than at the start (0 members): +8 needed
print(gc.get_freeze_count() == frozen)
p.members_now(8)
grown = gc.get_freeze_count()
print(grown >= frozen + 5000)
more = [[object()] for _ in range(100)]
p.members_now(10)  # under 1.25 x 8 + 8
print(gc.get_freeze_count() == grown)
p.members_now(18)
print(gc.get_freeze_count() >= grown + 100)
"""


def test_the_collector_is_settled_again_as_the_session_grows() -> None:
    """In a process of its own: freezing is for the whole process."""
    done = subprocess.run(
        [sys.executable, "-c", SETTLING], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True"] * 5
