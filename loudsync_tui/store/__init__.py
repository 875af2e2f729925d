"""The reactive store: immutable state snapshots, selector subscriptions, actions."""

from loudsync_tui.store.actions import AppStore, GuestControl, HostControl, member_from_info
from loudsync_tui.store.state import (
    AppState,
    ConnectionState,
    DiscoveredSession,
    DiscoveryState,
    GuestState,
    HostingState,
    LogEntry,
    Member,
    join_refusal,
    rivals,
    where,
)
from loudsync_tui.store.store import Store, Unsubscribe

__all__ = [
    "AppState",
    "AppStore",
    "ConnectionState",
    "DiscoveredSession",
    "DiscoveryState",
    "GuestControl",
    "GuestState",
    "HostControl",
    "HostingState",
    "LogEntry",
    "Member",
    "Store",
    "Unsubscribe",
    "join_refusal",
    "member_from_info",
    "rivals",
    "where",
]
