"""The LOUDSYNC terminal app: the composition root that owns the store and the services.

Data flows one way: services call store actions, screens subscribe to slices of the
store and redraw, and keys become app methods that start, command and stop the
services the app holds. No screen holds a socket.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

from loudsync_tui.config import GuestConfig
from loudsync_tui.identity import default_name
from loudsync_tui.net.process_limits import settle_the_collector
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore, DiscoveredSession, GuestState, LogEntry, Unsubscribe
from loudsync_tui.text import printable
from loudsync_tui.tui.dialogs.confirm import ConfirmDialog
from loudsync_tui.tui.dialogs.pin import pin_problem
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt, check_address
from loudsync_tui.tui.dialogs.trust import TrustDialog
from loudsync_tui.tui.logfile import setup_file_logging
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.help import HelpScreen, key_rows
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.services import (
    BrowserRunner,
    GuestRunner,
    HostRunner,
    Services,
    default_services,
)
from loudsync_tui.tui.settings import AppSettings, settings_from_args

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Seconds to wait for a service to say goodbye before quitting anyway."""
HOST_CLOSED_REASON = "The host ended the session"
NOTICE_CODES = {"kicked": "Kicked", "closed": "Session closed", "refused": "Could not join"}


class LoudsyncApp(App[int], inherit_bindings=False):
    """Textual's own ctrl+q (quit without a word) and ctrl+c (a "press ctrl+q" hint) are
    not inherited: every way out goes through `action_request_quit`."""

    TITLE = "LOUDSYNC"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        # Priority, so they work in modal dialogs too (a modal hides the app's other keys).
        Binding("q", "request_quit", "Quit", priority=True),
        Binding("ctrl+c,ctrl+q", "request_quit(True)", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        *,
        store: AppStore | None = None,
        settings: AppSettings | None = None,
        services: Services | None = None,
    ) -> None:
        super().__init__()
        self.store = store or AppStore()
        if settings is None:  # no config dir given: a key for this run only
            key = DeviceKey.generate()
            settings = AppSettings.for_device(default_name(), key.device_id, key.private)
        self.settings = settings
        self.services = services or default_services(
            settings.playback, settings.output, settings.config_dir
        )
        self.host_service: HostRunner | None = None
        self.guest_service: GuestRunner | None = None
        self.guest_config: GuestConfig | None = None
        """What the running (or last) join was started with, to retry it after a question."""
        self.browser: BrowserRunner | None = None
        self._unsubscribes: list[Unsubscribe] = []
        self._last_log: LogEntry | None = None
        self._stopping_host = False
        self._recent_notices: dict[str, float] = {}
        self._signals: list[signal.Signals] = []
        self._hanging_up = False
        self._quit_question: ConfirmDialog | None = None
        self.monotonic: Callable[[], float] = lambda: asyncio.get_running_loop().time()
        """The loop's clock, which reconnect times are given in; demos freeze it."""

    # Lifecycle -----------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return BrowseScreen()

    def on_mount(self) -> None:
        store = self.store
        self._unsubscribes += [
            # Before the log: its titled notice wins over the same text logged as an error.
            store.subscribe(self._on_guest_end, _guest_end),
            store.subscribe(self._on_log, lambda s: s.log),
            store.subscribe(self._on_hosting, lambda s: s.hosting is not None),
            store.subscribe(self._on_discovery_error, lambda s: s.discovery.error),
        ]
        self._handle_hangups()
        if self.services.browser is not None:
            settings = self.settings
            self.browser = self.services.browser(self.store, settings.interfaces, settings.probe)
            self._spawn(self._start_browser())
        if self.settings.start == "host":
            self.ask_to_host(self.settings.session_name)
        elif self.settings.start == "join" and self.settings.join_address:
            # The command line's --pin, --fingerprint, --trust-new apply to this join only.
            self.start_join(replace(self.settings.guest, address=self.settings.join_address))

    def _handle_hangups(self) -> None:
        """SIGTERM (kill, a service manager) and SIGHUP (the terminal or SSH link went away)
        end the app as `q` does: guests told, LEAVE sent, the mDNS goodbye, exit 0."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, self._on_hangup, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                return
            self._signals.append(sig)

    def _on_hangup(self, sig: signal.Signals) -> None:
        if not self._hanging_up:
            self._hanging_up = True
            self._spawn(self.shutdown(terminal_gone=sig is signal.SIGHUP))

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()

    def notify_once(self, message: str, **options: Any) -> None:
        """A notice, unless the same text was shown moments ago (a service may both log an
        error and end the membership with it; the user needs to read it once).

        The text is shown literally: it often quotes a peer (a reason, a name)."""
        now = time.monotonic()
        self._recent_notices = {m: t for m, t in self._recent_notices.items() if now - t < 5}
        if message in self._recent_notices:
            return
        self._recent_notices[message] = now
        self.notify(printable(message, indent=""), markup=False, **options)

    def _spawn(self, work: Awaitable[None]) -> None:
        """Run `work` on the app's loop; a failure is logged, never a crash.

        Textual's workers are the app's task owner (held, cancelled on exit, errors
        reported); the services it holds own theirs with `net.tasks.TaskOwner`."""
        self.run_worker(work, exit_on_error=False)

    async def _return_to_browse(self) -> None:
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    # Store listeners: the store tells the app when a session starts or ends ------

    def _on_log(self, entries: tuple[LogEntry, ...], _old: tuple[LogEntry, ...]) -> None:
        """Mirror the event log into log lines; errors also become notices."""
        start = 0
        if self._last_log is not None and self._last_log in entries:
            start = len(entries) - entries[::-1].index(self._last_log)
        for entry in entries[start:]:
            level = {"info": logging.INFO, "warning": logging.WARNING}.get(entry.level, 40)
            log.log(level, "%s", printable(entry.text, indent="    "))
            if entry.level == "error":
                self.notify_once(entry.text, title="Error", severity="error", timeout=8)
        self._last_log = entries[-1] if entries else None

    def _on_discovery_error(self, error: str | None, _old: str | None) -> None:
        if error:
            self.notify(
                f"{printable(error)}. Press a to join by address.",
                title="Discovery unavailable",
                severity="warning",
                timeout=8,
                markup=False,
            )

    def _on_hosting(self, hosting: bool, _old: bool) -> None:
        if hosting:
            return
        self.host_service = None
        if not self._stopping_host:
            self.notify("The session has stopped.", title="Session closed", severity="warning")
        self._stopping_host = False
        self._spawn(self._return_to_browse())

    def _on_guest_end(self, ended: tuple[str, str] | None, _old: tuple[str, str] | None) -> None:
        if ended is None:
            return
        code, reason = ended
        if code == "failed":
            # One notice; the Guest screen stays, saying the link failed, with r and l.
            guest = self.store.get().guest
            joined = guest is not None and guest.client_id is not None
            title = "Connection lost" if joined else "Could not connect"
            self.notify_once(reason, title=title, severity="error", timeout=10)
            return
        if code in NOTICE_CODES:
            self.notify_once(reason, title=NOTICE_CODES[code], severity="warning", timeout=10)
        config = self.guest_config
        guest = self.store.get().guest
        if code in ("untrusted", "pin") and config is not None and guest is not None:
            self._spawn(self._ask_and_rejoin(self.guest_service, config, guest))
            return
        self._spawn(self._end_guest(self.guest_service))

    # Discovery ---------------------------------------------------------------

    async def _start_browser(self) -> None:
        if self.browser is None:
            return
        try:
            await self.browser.start()
        except Exception as exc:
            log.exception("discovery failed to start")
            self.store.discovery_failed(str(exc) or type(exc).__name__)

    def rescan(self) -> None:
        browser = self.browser
        if browser is None or self.store.get().discovery.error:
            self.notify("Discovery is off; press a to join by address.", severity="warning")
            return

        async def rescan() -> None:
            try:
                await browser.rescan()
            except Exception as exc:
                log.exception("rescan failed")
                self.store.discovery_failed(str(exc) or type(exc).__name__)

        self.store.sessions_cleared()
        self.notify("Searching again…", timeout=2)
        self._spawn(rescan())

    # Hosting -----------------------------------------------------------------

    def ask_to_host(self, session_name: str | None = None) -> None:
        """Host `session_name`, asking for a name first when none is given."""
        if session_name:
            self.start_hosting(session_name)
            return

        def named(name: str | None) -> None:
            if name:
                self.start_hosting(name)

        self.push_screen(
            TextPrompt(
                "Name your session",
                value=f"{self.settings.name}'s session",
                hint="Enter starts hosting; Esc cancels.",
            ),
            named,
        )

    def start_hosting(self, session_name: str) -> None:
        if self.host_service is not None or self.guest_service is not None:
            self.notify("Already in a session.", severity="warning")
            return
        config = replace(self.settings.host, session_name=session_name[:64])
        try:
            service = self.services.host(config, self.store)
        except Exception as exc:
            self.store.log_event(f"Could not host: {exc}", "error")
            return
        self.host_service = service
        self.push_screen(HostScreen())
        self._spawn(self._run_host(service))

    async def _run_host(self, service: HostRunner) -> None:
        try:
            await service.start()
            if self.settings.settle_collector:
                settle_the_collector()
        except Exception as exc:
            log.debug("host start failed", exc_info=True)
            if self.host_service is service:
                self.host_service = None
            self.store.log_event(f"Could not host: {exc}", "error")
            await self._return_to_browse()

    def kick(self, member_id: str, *, ban_address: bool = False) -> None:
        """Kick and ban a member of the hosted session (and its address, if asked)."""
        if self.host_service is not None:
            self.host_service.kick(member_id, ban_address=ban_address)

    def lift_ban(self, key: str) -> None:
        """Let a banned device id or address join the hosted session again."""
        if self.host_service is not None:
            self.host_service.lift_ban(key)

    def change_pin(self, pin: str | None) -> None:
        """A new PIN for joins from now on ("" generates one, None: no PIN)."""
        if self.host_service is not None:
            self.host_service.set_pin(pin)

    # Music (host) ------------------------------------------------------------

    def add_music(self, paths: list[str]) -> None:
        """Queue files, folders or this machine's sound; the log says what happened."""
        if self.host_service is not None:
            self._spawn(self.host_service.add_music(paths))

    def host_control(self, action: str, seconds: float = 0.0) -> None:
        if self.host_service is None:
            return
        problem = self.host_service.control(action, seconds)
        if problem is not None:
            self.notify(problem, severity="warning", timeout=4)

    def remove_track(self, index: int) -> None:
        if self.host_service is not None:
            self.host_service.remove_track(index)

    def set_loop(self, loop: bool) -> None:
        if self.host_service is not None:
            self.host_service.set_loop(loop)

    def set_member_output(
        self, member_id: str, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        """A member's (or this machine's own) volume or latency offset."""
        if self.host_service is not None:
            self.host_service.set_output(
                member_id, volume=volume, latency_offset_ms=latency_offset_ms
            )

    def set_dj(self, member_id: str, dj: bool) -> None:
        if self.host_service is not None:
            self.host_service.set_dj(member_id, dj)

    def stop_hosting(self) -> None:
        """Close the session the user hosts; the store says when it has stopped."""
        self._stopping_host = True
        if self.host_service is not None:
            self.host_service.stop()

    # Joining -----------------------------------------------------------------

    def ask_address(self) -> None:
        def entered(address: str | None) -> None:
            if address:
                self.join(address)

        self.push_screen(
            TextPrompt(
                "Join by address",
                placeholder="HOST[:PORT], e.g. 192.168.1.20:8080",
                hint="The host's screen shows its address. Enter joins; Esc cancels.",
                validate=check_address,
            ),
            entered,
        )

    def join(
        self,
        address: str,
        session_id: str | None = None,
        *,
        pin: str | None = None,
        advertised: str | None = None,
        tls: bool | None = None,
    ) -> None:
        """Join `address`; a certificate that differs from the `advertised` one (discovery's
        TXT fp) is refused, and a host met for the first time stops to ask the user (see
        `_ask_and_rejoin`), since an advertisement proves nothing."""
        self.start_join(
            replace(
                self.settings.guest,
                address=address,
                session_id=session_id or self.settings.guest.session_id,
                pin=pin,
                expected_fingerprint=None,
                advertised_fingerprint=advertised,
                tls=tls,
                trust_new=False,
                replace_pin=False,
            )
        )

    def join_discovered(self, session: DiscoveredSession) -> None:
        """Join a session from Browse: checked against the fingerprint it advertised, over
        TLS when it advertised TLS, and the PIN asked for first when it needs one (it is
        sent only once the user has verified the host)."""
        host = session.addresses[0] if session.addresses else session.host_name

        def go(pin: str | None) -> None:
            self.join(
                f"{host}:{session.port}",
                session.session_id,
                pin=pin,
                advertised=session.fingerprint,
                tls=session.encrypted,
            )

        if not session.pin_required:
            go(None)
            return
        self.ask_pin(session.name, go)

    def ask_pin(self, session_name: str, then: Callable[[str], None], hint: str = "") -> None:
        """Prompt for a session PIN; `then` runs only if one was entered."""

        def entered(pin: str | None) -> None:
            if pin:
                then(pin)

        self.push_screen(
            TextPrompt(
                f"PIN for {printable(session_name)}",
                placeholder="the PIN on the host's screen",
                hint=hint or "This session needs a PIN. Enter joins; Esc cancels.",
                validate=pin_problem,
            ),
            entered,
        )

    def start_join(self, config: GuestConfig) -> None:
        if self.host_service is not None or self.guest_service is not None:
            self.notify("Already in a session.", severity="warning")
            return
        self.guest_config = config
        self.push_screen(GuestScreen())
        try:
            service = self.services.guest(config, self.store)
            self.guest_service = service
            service.start()
        except Exception as exc:
            self.guest_service = None
            self.store.log_event(f"Could not join {config.address}: {exc}", "error")
            self._spawn(self._return_to_browse())

    async def _ask_and_rejoin(
        self, service: GuestRunner | None, config: GuestConfig, guest: GuestState
    ) -> None:
        """The host needs a decision (trust its fingerprint) or a PIN: back to Browse, ask,
        and join again with the answer; cancelling leaves the user on Browse."""
        await self._end_guest(service)
        name = guest.session_name or config.address
        if guest.ended_code == "pin":
            hint = "That PIN was not accepted; check it on the host's screen." if config.pin else ""
            self.ask_pin(name, lambda pin: self.start_join(replace(config, pin=pin)), hint)
            return
        shown = guest.fingerprint
        changed = guest.trust_changed

        def answered(yes: bool | None) -> None:
            if not yes or shown is None:
                return
            # Pin only the fingerprint the user saw, whatever the host shows next time.
            self.start_join(
                replace(
                    config,
                    expected_fingerprint=shown,
                    trust_new=not changed,
                    replace_pin=changed,
                )
            )

        question = guest.trust_question or guest.ended or "Trust this host?"
        # The service also logged the question as an error; the dialog says it in full.
        self.clear_notifications()
        self.push_screen(
            TrustDialog(question, changed=changed, can_trust=shown is not None, fingerprint=shown),
            answered,
        )

    def leave(self) -> None:
        """Leave the joined session: LEAVE goes out, then Browse (even if the host is gone)."""
        service = self.guest_service
        guest = self.store.get().guest
        if service is None or guest is None or guest.ended_code is not None:
            self._spawn(self._end_guest(service))
            return
        service.leave()

        async def fallback() -> None:
            try:
                await asyncio.wait_for(service.wait_ended(), CLOSE_TIMEOUT)
            except Exception:
                log.debug("leave did not end the membership in time", exc_info=True)
            await self._end_guest(service)

        self._spawn(fallback())

    def guest_control(self, action: str, seconds: float = 0.0) -> None:
        """A DJ's key: sent to the host, which carries it out or refuses."""
        if self.guest_service is not None:
            self.guest_service.control(action, seconds)

    def set_local_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        if self.guest_service is not None:
            self.guest_service.set_local_output(volume=volume, latency_offset_ms=latency_offset_ms)

    def retry(self) -> None:
        """Try the join again after the link has failed."""
        if self.guest_service is not None:
            self.guest_service.retry()

    async def _end_guest(self, service: GuestRunner | None) -> None:
        """Forget the guest service and go back to Browse (once per service)."""
        if service is not None:
            if self.guest_service is not service:
                return
            self.guest_service = None
            await self._close(service.aclose(), "guest")
        self.store.guest_cleared()
        await self._return_to_browse()

    async def _close(self, closing: Awaitable[None], what: str) -> None:
        try:
            await asyncio.wait_for(closing, CLOSE_TIMEOUT)
        except Exception:
            log.warning("closing the %s service failed", what, exc_info=True)

    # Keys ----------------------------------------------------------------------

    def action_help(self) -> None:
        screen = self.screen
        title = str(screen.sub_title or self.title)
        self.push_screen(HelpScreen(title, key_rows(screen)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "request_quit" and not parameters:
            # q is a letter while typing, and the quit question answers only y/n/Esc.
            typing = isinstance(self.focused, Input)
            return not typing and self.screen is not self._quit_question
        return True

    def action_request_quit(self, insist: bool = False) -> None:
        """q, Ctrl-C, Ctrl-Q, from any screen or dialog: a host confirms first (guests are
        sent home); anyone else quits at once. `insist` (Ctrl-C, Ctrl-Q) pressed again
        while the question is open quits without waiting for the answer."""
        asking = self._quit_question is not None and self._quit_question in self.screen_stack
        if self.host_service is None or (insist and asking):
            self._spawn(self.shutdown())
            return
        if asking:
            return

        def answered(yes: bool | None) -> None:
            self._quit_question = None
            if yes:
                self._spawn(self.shutdown())

        self._quit_question = ConfirmDialog(
            "Stop the session and quit?", "Every guest is sent back to Browse."
        )
        self.push_screen(self._quit_question, answered)

    async def action_quit(self) -> None:
        await self.shutdown()

    async def shutdown(self, *, terminal_gone: bool = False) -> None:
        """Say goodbye properly (LEAVE, or SESSION_CLOSED to every guest), then exit.

        `terminal_gone` (SIGHUP): there is no screen to give back, and restoring one on a
        hung-up terminal can block the exit for good (seen under tmux: the process stayed,
        holding its identity's lock), so the process ends at once after the goodbyes.
        """
        guest, host, browser = self.guest_service, self.host_service, self.browser
        self.guest_service = self.host_service = self.browser = None
        self._stopping_host = True
        if guest is not None:
            await self._close(guest.aclose(), "guest")
        if host is not None:
            await self._close(host.aclose(reason=HOST_CLOSED_REASON), "host")
        if browser is not None:
            await self._close(browser.stop(), "discovery")
        if terminal_gone:
            logging.shutdown()
            os._exit(0)
        self.exit(0)


def _guest_end(state: object) -> tuple[str, str] | None:
    guest: GuestState | None = getattr(state, "guest", None)
    if guest is None or guest.ended_code is None:
        return None
    return (guest.ended_code, guest.ended or guest.ended_code)


def run_app(args: argparse.Namespace) -> int:
    """`loudsync-tui [host|join]`: the app, on the screen the command asks for."""
    try:
        settings = settings_from_args(args)
    except OSError as exc:
        print(f"loudsync-tui: cannot use the config directory: {exc}", file=sys.stderr)
        return 1
    if settings.log_file is not None:
        setup_file_logging(Path(settings.log_file))
    app = LoudsyncApp(settings=settings)
    app.run()
    return app.return_code or 0
