"""The one way a host core's effects become state: a pure function, so the real host
service, the demo and the TUI tests' stand-in host all show the same thing for the same
effects (they all run a real `HostSession`; only the sockets differ)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from types import MappingProxyType

from loudsync_tui.core.effects import (
    BansChanged,
    HostEffect,
    Log,
    MemberAdded,
    MemberChanged,
    MemberRemoved,
    PinChanged,
)
from loudsync_tui.protocol import MemberInfo
from loudsync_tui.store.state import LOG_LIMIT, AppState, HostingState, LogEntry, Member


def member_from_info(
    info: MemberInfo, device_type: str = "", address: str = "", audio: bool = True
) -> Member:
    """`address`: the IP a host sees the member at; guests never learn it, nor `audio`
    (whether it takes the audio)."""
    return Member(
        id=info.id,
        name=info.name,
        is_host=info.is_host,
        status=info.connection_status,
        joined_at=info.joined_at,
        latency=info.latency,
        device_type=device_type,
        proven=info.proven if isinstance(info.proven, bool) else None,
        address=address,
        audio=audio,
        dj=info.dj,
    )


def reduce_host(state: AppState, effects: Iterable[HostEffect], now_ms: int) -> AppState:
    """`state` after the host core's `effects`; socket effects (Send, Close) change nothing.

    Log lines land in the event log even when no session is shown any more (a stop's
    goodbye); everything else applies to the hosted session, if there is one.
    """
    hosting = state.hosting
    members = dict(hosting.members) if hosting is not None else {}
    log = list(state.log)
    changed_members = False
    for effect in effects:
        match effect:
            case MemberAdded(member=info, device_type=device, address=address, audio=audio):
                members[info.id] = member_from_info(info, device, address, audio)
                changed_members = True
            case MemberChanged(member=info, device_type=device, address=address, audio=audio):
                row = member_from_info(info, device, address, audio)
                members[info.id] = replace(
                    row, clock_uncertainty_us=effect.clock_uncertainty_us, sync=effect.sync
                )
                changed_members = True
            case MemberRemoved(member_id=member_id):
                changed_members |= members.pop(member_id, None) is not None
            case BansChanged(devices=devices, addresses=addresses, names=names):
                if hosting is not None:
                    hosting = replace(
                        hosting,
                        banned=devices,
                        banned_addresses=addresses,
                        ban_names=MappingProxyType(dict(names)),
                    )
            case PinChanged(pin=pin):
                if hosting is not None:
                    hosting = replace(hosting, pin=pin)
            case Log(level=level, text=text):
                log.append(LogEntry(now_ms, level, text))
            case _:
                pass
    if hosting is not None and changed_members:
        hosting = replace(hosting, members=MappingProxyType(members))
    if hosting is state.hosting and len(log) == len(state.log):
        return state
    return replace(state, hosting=hosting, log=tuple(log[-LOG_LIMIT:]))


__all__ = ["HostingState", "member_from_info", "reduce_host"]
