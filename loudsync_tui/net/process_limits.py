"""What a hosting process asks of its operating system and its runtime.

Each member is a socket, so a host needs one open file per member; a process often
starts with a soft limit of 1,024, which hard limits usually allow to raise. And once
the host is up, most of its objects live for good: `gc.freeze()` moves them out of
the collector's sight, so the full collections that 1,000 connections make frequent
no longer walk everything the host imported (measured by `python -m benchmarks`).
A host that shares its cores with other work sends later by its share: it asks for the
priority audio servers ask for, where the system allows it.
"""

from __future__ import annotations

import gc
import os
import resource

RESERVED_FILES = 64
"""Files a host needs besides its members' sockets: mDNS, logs, the sound device, TLS
material, the listening sockets."""


def raise_open_files(members: int) -> str | None:
    """Raise the soft open-files limit to what `members` guests need, when the hard
    limit allows; None if there is room, else one sentence saying what to do."""
    wanted = members + RESERVED_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target >= wanted:
        return None
    room = max(0, target - RESERVED_FILES)
    return (
        f"This process may open only {target} files (hard limit {hard}); about {room} "
        f"of the {members} members can join. Raise it with `ulimit -n {wanted}` (or "
        "LimitNOFILE= in a service unit) before starting the host"
    )


HOST_NICE = -11
"""The nice value PulseAudio and PipeWire ask for (`nice-level`, rtkit's default). On 2
cores shared with `pytest -n 2`, the p99 of a fan-out to 1,000 wss guests was 33-42 ms
at nice -11 in six runs, and 67-69 ms at nice 0 in the same hours (`python -m
benchmarks --guests 1000 [--raised-priority]`; see the README)."""


def _lowest_allowed_nice() -> int | None:
    """The lowest nice value RLIMIT_NICE lets this process set without CAP_SYS_NICE
    (its ceiling is 20 minus the limit); None: no limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return None if soft == resource.RLIM_INFINITY else 20 - soft


def raise_priority(wanted: int = HOST_NICE) -> tuple[int, list[str]]:
    """Lower this thread's nice value to `wanted`, or as far toward it as allowed, and the
    threads it starts from now on with it (Linux keeps a nice value per thread): (the
    value before, the lines to log: short, so the app's log shows them whole at 80
    columns). A value already as low is kept."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    if before > wanted:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, wanted)
        except PermissionError:
            floor = _lowest_allowed_nice()
            if floor is not None and wanted < floor < before:
                os.setpriority(os.PRIO_PROCESS, 0, floor)
    now = os.getpriority(os.PRIO_PROCESS, 0)
    if now <= wanted:
        return before, [f"Hosting at CPU priority nice {now}"]
    return before, [
        f"Hosting at nice {now}, not {wanted}: on a busy machine guests hear later",
        f"Allow {wanted}: Nice={wanted} (systemd), nice {wanted} (limits.conf), CAP_SYS_NICE",
    ]


def restore_priority(before: int) -> None:
    """Back to the nice value `raise_priority` found (raising it is always allowed)."""
    if os.getpriority(os.PRIO_PROCESS, 0) < before:
        os.setpriority(os.PRIO_PROCESS, 0, before)


GROWTH_TO_SETTLE = 1.25
"""Members grown by this factor since the last freeze freeze again (see `members_now`)."""


class _Settling:
    enabled = False
    members = 0


def settle_the_collector() -> None:
    """What exists once the host has started stays: keep it out of every collection.
    From now on `members_now` does the same for what each wave of joins brought."""
    gc.collect()
    gc.freeze()
    _Settling.enabled = True


def members_now(count: int) -> None:
    """A member joined: once the session has grown by a quarter since the last freeze,
    freeze again. A connection's objects live as long as it does, and without this a
    full collection walks all of them: at 1,000 guests 16 to 45 ms with the host
    stopped (seen with `gc.callbacks` during `python -m benchmarks`), one join in 40
    waiting behind it. Only the young generations are collected first, so cyclic
    garbage already in the oldest one stays until the process ends (a little, and only
    when the session grows)."""
    if not _Settling.enabled or count < GROWTH_TO_SETTLE * _Settling.members + 8:
        return
    _Settling.members = count
    gc.collect(1)
    gc.freeze()
