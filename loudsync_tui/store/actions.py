"""The app's store with its actions: the only way adapters and widgets change state.

Network and discovery adapters call the `*_seen`, `host_*`, `guest_*` actions; the
store holds state and the actions that change it, nothing else. Commands (kick, stop,
leave, retry) go from the screens to the app, which calls the service that owns the
socket. Widgets never see a socket; adapters never see a widget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TypeVar

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.effects import HostEffect
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.core.transport import (
    EpochStarted,
    QueueChanged,
    QueueEnded,
    TrackMeta,
    TrackStarted,
    TransportEffect,
)
from loudsync_tui.protocol import SyncReport, now_ms
from loudsync_tui.store.host_reducer import reduce_host
from loudsync_tui.store.state import (
    LOG_LIMIT,
    AppState,
    ConnectionState,
    DiscoveredSession,
    GuestState,
    HostingState,
    LogEntry,
    LogLevel,
    Member,
    NowPlaying,
    PlaybackState,
    listed,
    unlisted,
)
from loudsync_tui.store.store import Store

V = TypeVar("V")


def _frozen(items: Mapping[str, V]) -> Mapping[str, V]:
    return MappingProxyType(dict(items))


class AppStore(Store[AppState]):
    """The single source of truth for the screens."""

    def __init__(self, initial: AppState | None = None) -> None:
        super().__init__(initial or AppState())
        self.clock: Callable[[], int] = now_ms

    # Event log ---------------------------------------------------------------

    def log_event(self, text: str, level: LogLevel = "info") -> None:
        entry = LogEntry(self.clock(), level, text)
        self.set(lambda s: replace(s, log=(*s.log[-(LOG_LIMIT - 1) :], entry)))

    # Discovery ---------------------------------------------------------------

    def discovery_started(self) -> None:
        self.set(lambda s: replace(s, discovery=replace(s.discovery, browsing=True, error=None)))

    def discovery_stopped(self) -> None:
        self.set(lambda s: replace(s, discovery=replace(s.discovery, browsing=False)))

    def discovery_failed(self, error: str) -> None:
        self.set(lambda s: replace(s, discovery=replace(s.discovery, browsing=False, error=error)))
        self.log_event(f"Discovery unavailable: {error}", "warning")

    def session_seen(self, session: DiscoveredSession) -> None:
        """A session appeared or its details changed; a known key from another address or
        port gets a row of its own (see `listed`)."""

        def update(s: AppState) -> AppState:
            sessions = listed(s.discovery.sessions, session)
            if sessions is s.discovery.sessions:
                return s
            return replace(s, discovery=replace(s.discovery, sessions=_frozen(sessions)))

        self.set(update)

    def browse_watched(self, watched: bool) -> None:
        """Browse came on screen (True) or went under another screen (False)."""
        self.set(
            lambda s: (
                s
                if s.discovery.watched is watched
                else replace(s, discovery=replace(s.discovery, watched=watched))
            )
        )

    def session_reachable(self, key: str, reachable: bool) -> None:
        """A check of the session's address and port succeeded (True) or not (False)."""

        def update(s: AppState) -> AppState:
            session = s.discovery.sessions.get(key)
            if session is None or session.reachable is reachable:
                return s
            sessions = {**s.discovery.sessions, key: replace(session, reachable=reachable)}
            return replace(s, discovery=replace(s.discovery, sessions=_frozen(sessions)))

        self.set(update)

    def session_lost(self, key: str) -> None:
        """The mDNS name is gone: its row goes, with any other machine's row under it (a
        goodbye does not say which of them sent it)."""

        def update(s: AppState) -> AppState:
            sessions = unlisted(s.discovery.sessions, key)
            if sessions is s.discovery.sessions:
                return s
            return replace(s, discovery=replace(s.discovery, sessions=_frozen(sessions)))

        self.set(update)

    def sessions_cleared(self) -> None:
        self.set(
            lambda s: replace(s, discovery=replace(s.discovery, sessions=MappingProxyType({})))
        )

    # Hosting -----------------------------------------------------------------

    def hosting_started(self, hosting: HostingState) -> None:
        self.set(lambda s: replace(s, hosting=hosting))
        self.log_event(f"Hosting {hosting.session_name!r} at {hosting.address}")

    def hosting_stopped(self, reason: str | None = "stopped") -> None:
        """The hosted session is over; `reason` None when the adapter already logged why."""
        if self.get().hosting is None:
            return
        self.set(lambda s: replace(s, hosting=None))
        if reason:
            self.log_event(f"Session {reason}")

    def host_members_set(self, members: Iterable[Member]) -> None:
        self._update_hosting(lambda h: replace(h, members=_frozen({m.id: m for m in members})))

    def host_member_joined(self, member: Member) -> None:
        self._update_hosting(
            lambda h: replace(h, members=_frozen({**h.members, member.id: member}))
        )

    def host_effects(self, effects: Iterable[HostEffect]) -> None:
        """What the host core did, as one store change (see `reduce_host`)."""
        self.set(lambda s: reduce_host(s, effects, self.clock()))

    def _update_hosting(self, change: Callable[[HostingState], HostingState]) -> None:
        def update(s: AppState) -> AppState:
            return s if s.hosting is None else replace(s, hosting=change(s.hosting))

        self.set(update)

    # Guest -------------------------------------------------------------------

    def guest_joining(self, address: str) -> None:
        self.set(
            lambda s: replace(s, guest=GuestState(address, connection=ConnectionState.CONNECTING))
        )

    def guest_connection(
        self,
        connection: ConnectionState,
        *,
        attempt: int = 0,
        max_attempts: int = 0,
        next_attempt_at: float | None = None,
    ) -> None:
        ongoing = connection is not ConnectionState.FAILED
        self._update_guest(
            lambda g: replace(
                g,
                connection=connection,
                ended=None if ongoing else g.ended,
                ended_code=None if ongoing else g.ended_code,
                attempt=attempt,
                max_attempts=max_attempts,
                next_attempt_at=next_attempt_at,
            )
        )

    def guest_welcomed(
        self,
        *,
        client_id: str,
        session_id: str,
        session_name: str,
        host_name: str,
        max_members: int,
    ) -> None:
        self._update_guest(
            lambda g: replace(
                g,
                connection=ConnectionState.CONNECTED,
                client_id=client_id,
                session_id=session_id,
                session_name=session_name,
                host_name=host_name,
                max_members=max_members,
                attempt=0,
                next_attempt_at=None,
                ended=None,
                ended_code=None,
            )
        )

    def guest_members_set(self, members: Iterable[Member]) -> None:
        self._update_guest(lambda g: replace(g, members=_frozen({m.id: m for m in members})))

    def guest_latency(self, latency: float | None) -> None:
        self._update_guest(lambda g: g if g.latency == latency else replace(g, latency=latency))

    def guest_clock(self, estimate: ClockEstimate) -> None:
        self._update_guest(lambda g: replace(g, clock=estimate))

    def guest_security(self, *, encrypted: bool, fingerprint: str | None) -> None:
        self._update_guest(lambda g: replace(g, encrypted=encrypted, fingerprint=fingerprint))

    def guest_ended(
        self, reason: str, code: str, *, question: str | None = None, changed: bool = False
    ) -> None:
        """The membership is over (kicked, closed, refused, gave up, or a trust question).

        With code "untrusted", `question` carries what the user must decide before a
        new attempt, and `changed` says whether the fingerprint differs from a known one
        (rather than being seen for the first time), so the app can ask loudly.
        """
        self._update_guest(
            lambda g: replace(
                g,
                trust_question=question,
                trust_changed=changed,
                connection=ConnectionState.FAILED
                if code == "failed"
                else ConnectionState.DISCONNECTED,
                ended=reason,
                ended_code=code,
                next_attempt_at=None,
            )
        )

    def guest_cleared(self) -> None:
        self.set(lambda s: s if s.guest is None else replace(s, guest=None))

    def _update_guest(self, change: Callable[[GuestState], GuestState]) -> None:
        def update(s: AppState) -> AppState:
            return s if s.guest is None else replace(s, guest=change(s.guest))

        self.set(update)

    # Playback -------------------------------------------------------------------

    def playback_track(self, track: NowPlaying) -> None:
        self._update_playback(
            lambda p: replace(p, track=track, ended=False, queue_index=track.position)
        )

    def playback_queue(self, queue: tuple[TrackMeta, ...], index: int, loop: bool) -> None:
        self._update_playback(lambda p: replace(p, queue=queue, queue_index=index, loop=loop))

    def playback_silent(self, why: str) -> None:
        self._update_playback(lambda p: replace(p, output=None, silent=why))

    def playback_loop(self, loop: bool) -> None:
        self._update_playback(lambda p: replace(p, loop=loop))

    def transport_effects(self, effects: Iterable[TransportEffect]) -> None:
        """The host's transport as state and log lines (the real host and the demo's)."""
        for effect in effects:
            match effect:
                case TrackStarted(meta=meta):
                    self.playback_track(NowPlaying.started(effect))
                    by = f" by {meta.artist}" if meta.artist else ""
                    self.log_event(f"Playing {meta.title!r}{by}")
                case EpochStarted(epoch=epoch):
                    self.playback_epoch(epoch)
                case QueueEnded():
                    self.playback_ended()
                case QueueChanged(queue=queue, index=index, loop=loop):
                    self.playback_queue(queue, index, loop)

    def playback_format(
        self, codec: str, buffer_ms: float, clock: ClockEstimate | None = None
    ) -> None:
        self._update_playback(
            lambda p: replace(p, codec=codec, buffer_ms=buffer_ms, clock=clock or p.clock)
        )

    def playback_epoch(self, epoch: Epoch) -> None:
        self._update_playback(lambda p: replace(p, epoch=epoch, ended=False))

    def playback_ended(self) -> None:
        self._update_playback(lambda p: replace(p, ended=True))

    def playback_output(self, output: str | None) -> None:
        self._update_playback(lambda p: p if p.output == output else replace(p, output=output))

    def playback_sync(self, sync: SyncReport | None) -> None:
        self._update_playback(lambda p: p if p.sync == sync else replace(p, sync=sync))

    def playback_cleared(self) -> None:
        self._update_playback(lambda p: PlaybackState())

    def _update_playback(self, change: Callable[[PlaybackState], PlaybackState]) -> None:
        def update(s: AppState) -> AppState:
            playback = change(s.playback)
            return s if playback is s.playback else replace(s, playback=playback)

        self.set(update)
