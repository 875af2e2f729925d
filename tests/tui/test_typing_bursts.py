"""Keys that arrive in one burst (a paste, an SSH link that batches keystrokes,
`tmux send-keys 'text' Enter`) are applied in order: Enter submits what was typed."""

from __future__ import annotations

from textual import events

from loudsync_tui.store import AppStore
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.pin import PinDialog
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt
from loudsync_tui.tui.screens.guest import GuestScreen
from tests.tui.fakes import FakeServices
from tests.tui.helpers import wait_for
from tests.tui.test_security_screens import hosting_app, text_of


def burst(app: LoudsyncApp, text: str) -> None:
    """Post every key at once, as a terminal delivers a paste: nothing runs in between."""
    for char in text:
        app.post_message(events.Key(char, char))
    app.post_message(events.Key("enter", "\r"))


async def test_an_address_typed_in_one_burst_is_joined_whole(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        burst(app, "127.0.0.1:8080")
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        assert fakes.guests[0].config.address == "127.0.0.1:8080"


async def test_a_pin_typed_in_one_burst_is_set_whole(store: AppStore, fakes: FakeServices) -> None:
    app = hosting_app(store, fakes, tls=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.query("PinDialog Input"))
        burst(app, "482913")
        await wait_for(pilot, lambda: not isinstance(app.screen, PinDialog))
        await wait_for(pilot, lambda: "482913" in text_of(app, "#host-security"))
