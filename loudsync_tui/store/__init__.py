"""The reactive store: immutable state snapshots, selector subscriptions, actions."""

from loudsync_tui.store.actions import AppStore
from loudsync_tui.store.host_reducer import member_from_info, reduce_host
from loudsync_tui.store.state import (
    AppState,
    ConnectionState,
    DiscoveredSession,
    DiscoveryState,
    GuestState,
    HostingState,
    LogEntry,
    Member,
    NowPlaying,
    PlaybackState,
    join_refusal,
    listed,
    rivals,
    unlisted,
    where,
)
from loudsync_tui.store.store import Store, Unsubscribe

__all__ = [
    "AppState",
    "AppStore",
    "ConnectionState",
    "DiscoveredSession",
    "DiscoveryState",
    "GuestState",
    "HostingState",
    "LogEntry",
    "Member",
    "NowPlaying",
    "PlaybackState",
    "Store",
    "Unsubscribe",
    "join_refusal",
    "listed",
    "member_from_info",
    "reduce_host",
    "rivals",
    "unlisted",
    "where",
]
