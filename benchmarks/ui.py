"""UI: the Host screen with 1,000 members, a burst of 1,000 updates, and a key press in it.

The app runs headless under Pilot with a stand-in host service (as in tests/tui), fed
through the same store actions the real host service calls. Headless Textual skips
writing to a terminal; the probe on `App._display` does that work too (renders the
update into terminal escape sequences), so a frame here costs what it costs on screen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import RenderableType
from textual import events
from textual._compositor import CompositorUpdate
from textual.screen import Screen

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.store import AppStore, HostingState, Member
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.format import latency as _latency_cell
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.services import Services
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.member_table import MemberTable

T0 = 1_764_086_400_000


def _member(n: int, latency: float) -> Member:
    return Member(
        id=f"dev-{n:04d}",
        name=f"Member {n}",
        is_host=False,
        status="connected",
        joined_at=T0 + n * 1000,
        latency=latency,
        device_type="terminal",
    )


@dataclass
class _Host:
    """Starts hosting in the store and nothing else; the benchmark plays the network."""

    config: HostConfig
    store: AppStore

    async def start(self) -> None:
        me = Member(self.config.host_id, self.config.host_name, True, "connected", T0)
        self.store.hosting_started(
            HostingState(
                session_id="bench",
                session_name=self.config.session_name,
                host_id=self.config.host_id,
                host_name=self.config.host_name,
                address="127.0.0.1:8080",
                port=8080,
                max_members=2000,
                members={me.id: me},
            )
        )

    def kick(self, member_id: str, *, ban_address: bool = False) -> None:
        del member_id, ban_address

    # The rest of a host's commands: the benchmark presses none of them.

    def lift_ban(self, key: str) -> None: ...

    def set_pin(self, pin: str | None) -> None: ...

    async def add_music(self, paths: Sequence[str]) -> None: ...

    def control(self, action: str, seconds: float = 0.0, by: str | None = None) -> str | None:
        return None

    def remove_track(self, index: int) -> None: ...

    def set_loop(self, loop: bool) -> None: ...

    def set_output(
        self, member_id: str, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None: ...

    def set_dj(self, member_id: str, dj: bool) -> None: ...

    def stop(self) -> None:
        self.store.hosting_stopped()

    async def aclose(self, reason: str = "") -> None:
        self.store.hosting_stopped()


def _no_guest(config: GuestConfig, store: AppStore) -> Any:
    raise RuntimeError("the UI benchmark never joins")


class _Frames:
    """Records when frames reach the (virtual) terminal, and what a check saw then."""

    def __init__(self, app: LoudsyncApp) -> None:
        self.app = app
        self.times: list[float] = []
        self.watch: tuple[Any, list[float]] | None = None
        original = app._display

        def display(screen: Screen[Any], renderable: RenderableType | None) -> None:
            original(screen, renderable)
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)
                now = time.monotonic()
                self.times.append(now)
                if self.watch is not None and self.watch[0]():
                    self.watch[1].append(now)
                    self.watch = None

        app._display = display  # type: ignore[method-assign]

    async def until(self, condition: Any, within: float = 30.0) -> float:
        """The time of the first frame drawn once `condition()` holds."""
        hits: list[float] = []
        self.watch = (condition, hits)
        deadline = time.monotonic() + within
        while not hits:
            if time.monotonic() > deadline:
                raise RuntimeError("no frame showed the change in time")
            self.app.refresh()
            await asyncio.sleep(0.001)
        return hits[0]


def format_latency(value: float) -> str:
    return str(_latency_cell(value))


async def _wait(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.005)


async def _burst(
    app: LoudsyncApp,
    table: MemberTable,
    frames: _Frames,
    burst: int,
    members: int,
    updates: int,
    chunk: int,
) -> dict[str, float]:
    """One burst, with a Down key sent a third of the way in; latencies cross 10 ms."""
    store = app.store
    base = 4.0 if burst % 2 else 40.0  # alternate widths: "4.0" vs "40"
    last = min(updates, members)
    expected = format_latency(base + (last - 1) % 7)
    row_before = table.cursor_row
    key_at: list[float] = []
    key_hits: list[float] = []
    started = time.monotonic()
    for i in range(updates):
        store.host_member_joined(_member(i % members + 1, base + i % 7))  # replaces the row
        if i % chunk == chunk - 1:
            if not key_at and i + 1 >= updates // 3:
                key_at.append(time.monotonic())
                event = events.Key("down", None)
                event.set_sender(app)
                assert app._driver is not None
                app._driver.send_message(event)
                frames.watch = (lambda: table.cursor_row != row_before, key_hits)
            await asyncio.sleep(0)
    fed = time.monotonic()
    if key_at:
        await _wait(lambda: bool(key_hits), 30)
    key = f"dev-{last:04d}"
    drawn = await frames.until(lambda: str(table.get_cell(key, "latency")) == expected)
    await asyncio.sleep(0.05)
    return {
        "fed_ms": round((fed - started) * 1000, 1),
        "burst_drawn_ms": round((drawn - started) * 1000, 1),
        "key_to_frame_ms": round((key_hits[0] - key_at[0]) * 1000, 1) if key_at else -1.0,
        "frames": sum(1 for t in frames.times if started <= t <= drawn),
    }


async def measure(
    members: int = 1000, updates: int = 1000, chunk: int = 50, repeats: int = 5
) -> dict[str, Any]:
    """`repeats` bursts of `updates` rows replaced (host_member_joined), `chunk` per loop turn."""
    store = AppStore()
    settings = AppSettings.for_device("Grace", "dev-grace")
    services = Services(host=_Host, guest=_no_guest, browser=None)
    app = LoudsyncApp(store=store, settings=settings, services=services)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("h")
        await _wait(lambda: app.screen.__class__.__name__ == "TextPrompt")
        await pilot.press("enter")
        await _wait(lambda: isinstance(app.screen, HostScreen) and store.get().hosting is not None)
        await pilot.pause()
        table = app.screen.query_one(MemberTable)
        frames = _Frames(app)

        started = time.monotonic()
        for n in range(1, members + 1):
            store.host_member_joined(_member(n, 3.0))
        drawn = await frames.until(lambda: table.row_count == members + 1)
        populate_ms = (drawn - started) * 1000
        await pilot.pause()

        bursts: list[dict[str, float]] = []
        for burst in range(repeats):
            bursts.append(await _burst(app, table, frames, burst, members, updates, chunk))
        return {
            "members": members,
            "updates": updates,
            "updates_per_loop_turn": chunk,
            "terminal_size": "120x40",
            "populate_ms": round(populate_ms, 1),
            "bursts": bursts,
            "burst_drawn_ms_max": max(b["burst_drawn_ms"] for b in bursts),
            "key_to_frame_ms_max": max(b["key_to_frame_ms"] for b in bursts),
            "key_to_frame_ms_p50": sorted(b["key_to_frame_ms"] for b in bursts)[len(bursts) // 2],
        }


if __name__ == "__main__":
    print(asyncio.run(measure()))
