"""A screen that draws slices of the app's store and forgets them when it goes away."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.screen import Screen

from loudsync_tui.store import AppState, AppStore, Unsubscribe
from loudsync_tui.text import printable
from loudsync_tui.tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:
    from loudsync_tui.tui.app import LoudsyncApp

T = TypeVar("T")


class StoreScreen(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self._unsubscribes: list[Unsubscribe] = []

    @property
    def loudsync(self) -> LoudsyncApp:
        """Screens only ever run inside the LOUDSYNC app, which owns the store."""
        return cast("LoudsyncApp", self.app)

    @property
    def store(self) -> AppStore:
        return self.loudsync.store

    def local_us(self) -> float:
        """Now on the app's clock (µs), which the session clock maps from."""
        return self.loudsync.monotonic() * 1e6

    def set_heading(self, where: str) -> None:
        """The title line (and the help screen's title) says where the user is."""
        where = printable(where)  # often holds a session name a peer chose
        self.sub_title = where
        self.query_one(TitleBar).show(where, printable(self.loudsync.settings.name))

    def watch_store(self, selector: Callable[[AppState], T], draw: Callable[[T], Any]) -> None:
        """Draw `selector(state)` now and again whenever it changes, in one batch each time."""

        def listener(new: T, _old: T) -> None:
            if self.is_attached:
                with self.app.batch_update():
                    draw(new)

        self._unsubscribes.append(self.store.subscribe(listener, selector))
        draw(selector(self.store.get()))

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()
