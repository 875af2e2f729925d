"""What a hosting process asks of its operating system and its runtime.

Each member is a socket, so a host needs one open file per member; a process often
starts with a soft limit of 1,024, which hard limits usually allow to raise. And once
the host is up, most of its objects live for good: `gc.freeze()` moves them out of
the collector's sight, so the full collections that 1,000 connections make frequent
no longer walk everything the host imported (measured by `python -m benchmarks`).
"""

from __future__ import annotations

import gc
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
