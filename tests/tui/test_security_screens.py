"""Secure sessions in the app, driven through the store and fake services: what the Host,
Browse and Guest screens show, the PIN, bans and kick dialogs, and the trust questions."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Digits, Input, Static

from loudsync_tui.store import AppStore, DiscoveredSession
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.bans import BanTable
from loudsync_tui.tui.dialogs.kick import KickDialog
from loudsync_tui.tui.dialogs.pin import PinDialog
from loudsync_tui.tui.dialogs.trust import TrustDialog
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.help import HelpScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.tui.fakes import BANNED_ADDRESS, FP, GENERATED_PIN, FakeServices
from tests.tui.helpers import wait_for

OTHER_FP = "cd34" * 16


def hosting_app(store: AppStore, fakes: FakeServices, **host: object) -> LoudsyncApp:
    settings = AppSettings.for_device("Grace", "dev-grace")
    settings = replace(
        settings, start="host", session_name="Friday", host=replace(settings.host, **host)
    )
    return LoudsyncApp(store=store, settings=settings, services=fakes.services())


def text_of(app: LoudsyncApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def session(n: int, *, tls: bool = True, pin: bool = False) -> DiscoveredSession:
    return DiscoveredSession(
        key=f"s{n}",
        session_id=f"id{n}",
        name=f"Session {n}",
        host_name=f"Host {n}",
        addresses=(f"192.168.1.{n}",),
        port=8080,
        members=1,
        max_members=10,
        protocol_version=1,
        joinable=True,
        encrypted=tls,
        fingerprint=FP if tls else None,
        pin_required=pin,
    )


# Host -------------------------------------------------------------------------


async def test_host_shows_the_whole_fingerprint_in_groups_and_the_pin(
    store: AppStore, fakes: FakeServices
) -> None:
    app = hosting_app(store, fakes, tls=True, pin="4321")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        shown = text_of(app, "#host-security")
        lines = shown.splitlines()
        assert len(lines) == 2
        assert all(len(line) <= 78 for line in lines)
        assert lines[0].startswith("fingerprint AB12 AB12")
        assert "PIN 4321" in lines[0]
        assert " ".join(shown.split()[1:]).replace("PIN 4321 ", "") == " ".join(["AB12"] * 16)
        code = app.screen.query_one("#host-code", Digits)  # the code to read out, large
        assert (code.value, code.display) == ("AB12 AB12 AB12 AB12", True)


async def test_plain_host_says_unencrypted_and_help_lists_the_new_keys(
    store: AppStore, fakes: FakeServices
) -> None:
    app = hosting_app(store, fakes, tls=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        shown = text_of(app, "#host-security")
        assert "unencrypted (--no-tls)" in shown
        assert "no PIN" in shown
        assert not app.screen.query_one("#host-code-row").display
        await pilot.press("p")  # a PIN only travels inside TLS: none for a plain session
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        assert store.get().hosting.pin is None  # type: ignore[union-attr]
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert isinstance(app.screen, HelpScreen)
        rows = app.screen.rows
        session_keys = [("k", "Kick"), ("b", "Bans"), ("p", "PIN"), ("s", "Stop session")]
        start = rows.index(session_keys[0])
        assert rows[start : start + 4] == session_keys
        assert rows[:2] == [("o", "Add music"), ("space", "Play/Pause")]


async def test_p_sets_generates_and_removes_the_pin(store: AppStore, fakes: FakeServices) -> None:
    app = hosting_app(store, fakes, tls=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        assert "no PIN" in text_of(app, "#host-security")

        async def pin_dialog(typed: str, key: str = "enter") -> None:
            await pilot.press("p")
            await wait_for(pilot, lambda: app.screen.query("PinDialog Input"))
            app.screen.query_one(Input).value = typed
            await pilot.press(key)

        # Required where there was none: a bad PIN is explained and the dialog stays.
        await pin_dialog("12")
        assert "at least 4 digits" in text_of(app, "#pin-hint")
        app.screen.query_one(Input).value = "12a4"
        await pilot.press("enter")
        assert "digits only" in text_of(app, "#pin-hint")
        assert isinstance(app.screen, PinDialog)
        assert store.get().hosting.pin is None
        app.screen.query_one(Input).value = "5555"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "PIN 5555" in text_of(app, "#host-security"))
        # Empty generates one; Esc changes nothing; "off" lets anyone in.
        await pin_dialog("")
        await wait_for(pilot, lambda: f"PIN {GENERATED_PIN}" in text_of(app, "#host-security"))
        await pin_dialog("9", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert store.get().hosting.pin == GENERATED_PIN  # type: ignore[union-attr]
        await pin_dialog("off")
        await wait_for(pilot, lambda: "no PIN" in text_of(app, "#host-security"))


async def test_kick_with_address_ban_then_b_lists_and_lifts(
    store: AppStore, fakes: FakeServices
) -> None:
    app = hosting_app(store, fakes, tls=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        fakes.hosts[0].join_member(1, address=BANNED_ADDRESS)
        table = app.screen.query_one(MemberTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        await pilot.press("a")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert fakes.hosts[0].address_bans == ["dev-0001"]
        await pilot.press("b")
        await wait_for(pilot, lambda: app.screen.query("BansDialog BanTable"))
        bans = app.screen.query_one(BanTable)
        assert [k.value for k in bans.rows] == ["dev-0001", BANNED_ADDRESS]
        assert str(bans.get_cell("dev-0001", "who")) == "Member 1"  # remembered from the kick
        await pilot.press("l")
        await wait_for(pilot, lambda: bans.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query_one("#bans-empty").display)
        assert fakes.hosts[0].lifted == ["dev-0001", BANNED_ADDRESS]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))


# Browse -----------------------------------------------------------------------


async def test_browse_marks_pin_and_plain_sessions_and_joins_plain_without_tls(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        for made in (
            session(1),
            session(2, pin=True),
            session(3, tls=False),
            session(4, tls=False, pin=True),
        ):
            store.session_seen(made)
        table = app.screen.query_one(SessionTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        notes = [str(table.get_cell(f"s{n}", "note")) for n in (1, 2, 3, 4)]
        # A PIN only travels inside TLS: a plain record asking for one is refused outright.
        assert notes == ["ok", "PIN", "plain", "✗ PIN without TLS"]
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, BrowseScreen)
        assert fakes.guests == []
        await pilot.press("up", "enter")  # plain, no PIN: joins at once, without TLS
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        config = fakes.guests[0].config
        assert (config.pin, config.expected_fingerprint, config.tls) == (None, None, False)


async def test_enter_on_a_pin_session_asks_for_the_pin_and_checks_the_host(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        store.session_seen(session(2, pin=True))
        await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        await pilot.press("escape")  # cancel: nothing is joined
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert fakes.guests == []
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        await pilot.press(*"12", "enter")
        assert "at least 4 digits" in text_of(app, "#prompt-hint")
        app.screen.query_one(Input).value = "2468"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        config = fakes.guests[0].config
        assert (config.pin, config.advertised_fingerprint, config.tls) == ("2468", FP, True)
        # The advertisement is checked, but it is not a fingerprint the user verified.
        assert (config.expected_fingerprint, config.trust_new) == (None, False)
        assert config.address == "192.168.1.2:8080"


# Guest and trust questions ------------------------------------------------------


async def test_guest_shows_the_verified_fingerprint_or_a_warning(
    app: LoudsyncApp, store: AppStore
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        app.join("10.0.0.5:9000")
        await wait_for(pilot, lambda: app.screen.query("#guest-security"))
        store.guest_security(encrypted=True, fingerprint=FP)
        await wait_for(pilot, lambda: "AB12 AB12 AB12 AB12" in text_of(app, "#guest-security"))
        assert "verified" in text_of(app, "#guest-security")
        store.guest_security(encrypted=False, fingerprint=None)
        await wait_for(pilot, lambda: "NOT ENCRYPTED" in text_of(app, "#guest-security"))


async def join_and_end(
    app: LoudsyncApp, fakes: FakeServices, pilot: object, reason: str, code: str, **how: object
) -> None:
    app.join("10.0.0.5:9000")
    await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))  # type: ignore[arg-type]
    fakes.guests[-1].end(reason, code, **how)  # type: ignore[arg-type]


async def test_first_seen_host_asks_and_yes_pins_only_the_fingerprint_shown(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        question = f"First connection to host dev-x. Its fingerprint is\n{'AB12 ' * 15}AB12"
        await join_and_end(app, fakes, pilot, question, "untrusted", fingerprint=FP)
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        assert "danger" not in app.screen.query_one(".dialog").classes
        assert "First connection" in text_of(app, "#trust-question")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert len(fakes.guests) == 1
        assert app.guest_service is None
        await join_and_end(app, fakes, pilot, question, "untrusted", fingerprint=FP)
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(fakes.guests) == 3)
        config = fakes.guests[-1].config
        assert (config.trust_new, config.replace_pin, config.expected_fingerprint) == (
            True,
            False,
            FP,
        )
        assert config.address == "10.0.0.5:9000"
        assert isinstance(app.screen, GuestScreen)


async def test_changed_fingerprint_is_loud_enter_means_no_yes_replaces_the_pin_downgrade_refused(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        # A TLS host answering plain: nothing to trust, y does nothing.
        await join_and_end(app, fakes, pilot, "now answers unencrypted", "untrusted", changed=True)
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, TrustDialog)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        warning = "WARNING: the host's certificate does not match the pinned one."
        await join_and_end(
            app, fakes, pilot, warning, "untrusted", fingerprint=OTHER_FP, changed=True
        )
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        assert "danger" in app.screen.query_one(".dialog").classes
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert len(fakes.guests) == 2
        await join_and_end(
            app, fakes, pilot, warning, "untrusted", fingerprint=OTHER_FP, changed=True
        )
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(fakes.guests) == 4)
        config = fakes.guests[-1].config
        assert (config.trust_new, config.replace_pin, config.expected_fingerprint) == (
            False,
            True,
            OTHER_FP,
        )


async def test_a_pin_refusal_asks_for_the_pin_and_retries_with_it(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await join_and_end(app, fakes, pilot, "Join refused: UNAUTHORIZED", "pin")
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        await pilot.press(*"8642", "enter")
        await wait_for(pilot, lambda: len(fakes.guests) == 2)
        assert fakes.guests[-1].config.pin == "8642"
        assert fakes.guests[-1].config.address == "10.0.0.5:9000"
        fakes.guests[-1].end("Join refused: UNAUTHORIZED", "pin")  # wrong again
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        assert "not accepted" in text_of(app, "#prompt-hint")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert len(fakes.guests) == 2


async def test_join_command_flags_apply_to_the_first_join_only(
    store: AppStore, fakes: FakeServices
) -> None:
    settings = AppSettings.for_device("Ada", "dev-ada")
    guest = replace(settings.guest, pin="1111", expected_fingerprint=FP, trust_dir="/tmp/t")
    settings = replace(settings, start="join", join_address="10.0.0.5:9000", guest=guest)
    app = LoudsyncApp(store=store, settings=settings, services=fakes.services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        first = fakes.guests[0].config
        assert (first.address, first.pin, first.expected_fingerprint) == (
            "10.0.0.5:9000",
            "1111",
            FP,
        )
        fakes.guests[0].end("You left", "left")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        store.session_seen(session(3, tls=False))
        await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(fakes.guests) == 2)
        second = fakes.guests[1].config
        assert (second.pin, second.expected_fingerprint, second.trust_dir) == (None, None, "/tmp/t")
