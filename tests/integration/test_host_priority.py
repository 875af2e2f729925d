"""A host asks for CPU priority nice -11 where the system allows it, says clearly when it
does not, and gives it back when the session ends. Each case runs in a process of its
own: a nice value belongs to a thread, and these change the one they run in."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys

import pytest

from loudsync_tui.net import process_limits

HOSTING = """
import asyncio, os, sys
from loudsync_tui.config import HostConfig
from loudsync_tui.net.host_service import HostService
from loudsync_tui.store import AppStore

def nice():
    return os.getpriority(os.PRIO_PROCESS, 0)

async def main():
    print("before", nice())
    config = HostConfig("Big", "Grace", "dev-grace", port=0, bind="127.0.0.1",
                        discovery=False, tls=False, raise_priority=sys.argv[1] == "raise")
    host = HostService(config, AppStore())
    await host.start()
    print("hosting", nice())
    await host.aclose()
    print("after", nice())
    for entry in host.store.get().log:
        print(entry.level, entry.text)

asyncio.run(main())
"""


def host_once(how: str, *wrapper: str) -> tuple[dict[str, int], str]:
    """(the nice value before, while and after hosting; the log) in a process of its own."""
    done = subprocess.run(
        [*wrapper, sys.executable, "-c", HOSTING, how],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    values = {name: int(value) for name, value in (line.split() for line in lines[:3])}
    return values, "\n".join(lines[3:])


def needs_cap_sys_nice() -> None:
    if os.geteuid() != 0:
        pytest.skip("lowering a nice value needs root (CI runs as root)")


def without_cap_sys_nice() -> list[str]:
    """A prefix that runs a command as this user without CAP_SYS_NICE."""
    if os.geteuid() != 0:
        return []  # an ordinary user has none to drop
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return [setpriv, "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"]


def test_a_host_allowed_to_runs_at_nice_minus_11_and_gives_it_back() -> None:
    needs_cap_sys_nice()
    values, log = host_once("raise")
    assert values == {"before": 0, "hosting": -11, "after": 0}
    assert "info Hosting at CPU priority nice -11" in log
    assert "Hosting 'Big'" in log


def test_a_host_not_allowed_to_says_how_and_hosts_all_the_same() -> None:
    if resource.getrlimit(resource.RLIMIT_NICE)[0] != 0:
        pytest.skip("this machine lets every process lower its nice value (RLIMIT_NICE)")
    values, log = host_once("raise", *without_cap_sys_nice())
    assert values == {"before": 0, "hosting": 0, "after": 0}
    said = [line for line in log.splitlines() if "nice" in line.lower()]
    assert said == [
        "info Hosting at nice 0, not -11: on a busy machine guests hear later",
        "info Allow -11: Nice=-11 (systemd), nice -11 (limits.conf), CAP_SYS_NICE",
    ]
    assert all(len(line) - len("info ") <= 67 for line in said)  # whole in the app at 80x24
    assert "Hosting 'Big'" in log


def test_a_lower_nice_value_than_asked_is_kept() -> None:
    needs_cap_sys_nice()
    values, log = host_once("raise", "nice", "-n", "-15")
    assert values == {"before": -15, "hosting": -15, "after": -15}
    assert "info Hosting at CPU priority nice -15" in log


def test_a_host_told_not_to_asks_for_nothing() -> None:
    values, log = host_once("keep")
    assert values == {"before": 0, "hosting": 0, "after": 0}
    assert "nice" not in log.lower()


def test_a_host_whose_start_fails_gives_the_priority_back_and_says_only_why() -> None:
    needs_cap_sys_nice()
    script = HOSTING.replace("tls=False,", 'tls=False, pin="1234",')  # a PIN needs TLS
    script = script.replace("    await host.start()\n", FAILING_START)
    done = subprocess.run(
        [sys.executable, "-c", script, "raise"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines()[:3] == ["before 0", "failed A PIN needs T", "hosting 0"]
    assert "nice" not in done.stdout.lower()  # only the error is said


FAILING_START = """    try:
        await host.start()
    except Exception as exc:
        print("failed", str(exc)[:13])
"""


def test_only_as_far_as_rlimit_nice_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CAP_SYS_NICE, RLIMIT_NICE 25 allows nice -5. This container cannot raise
    that limit (no CAP_SYS_RESOURCE), so the kernel's answers are stood in for."""
    nice = [0]

    def setpriority(which: int, who: int, value: int) -> None:
        if value < 20 - 25:
            raise PermissionError(1, "Operation not permitted")
        nice[0] = value

    monkeypatch.setattr(process_limits.os, "getpriority", lambda which, who: nice[0])
    monkeypatch.setattr(process_limits.os, "setpriority", setpriority)
    monkeypatch.setattr(process_limits.resource, "getrlimit", lambda what: (25, 25))
    before, said = process_limits.raise_priority()
    assert (before, nice[0]) == (0, -5)
    assert said[0].startswith("Hosting at nice -5, not -11:")
    process_limits.restore_priority(before)
    assert nice[0] == 0
