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


def settle_the_collector() -> None:
    """What exists once the host has started stays: keep it out of every collection."""
    gc.collect()
    gc.freeze()
