"""A guest's own speakers: the latency offset set while joined to a host comes back the
next time it joins that host (not another), and the volume is the speakers' own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from loudsync_tui.audio import remembered
from loudsync_tui.config import GuestConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import SyncReport
from loudsync_tui.store import AppStore, ConnectionState
from tests.support.waiting import eventually


class RecordingPlayer:
    """Stands in for the speakers (this test is about what is remembered, not sound)."""

    problem = None

    def __init__(self) -> None:
        self.outputs: list[tuple[float | None, float | None]] = []

    def set_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        self.outputs.append((volume, latency_offset_ms))

    def report(self) -> SyncReport:
        return SyncReport(0.0, 0, 200.0, 1.0, 1.0, 0.0)

    def set_clock(self, *_: object) -> None: ...

    def set_epoch(self, *_: object) -> None: ...

    def frame(self, *_: object) -> None: ...

    def close(self) -> None: ...


async def test_the_offset_set_for_a_host_comes_back_for_that_host_only(
    make_host: Callable[..., Awaitable[HostService]], tmp_path: Path
) -> None:
    host = await make_host()
    remembered.save_host_offset(tmp_path, "someone-else", 400.0)

    async def join(player: RecordingPlayer) -> GuestService:
        config = GuestConfig(f"127.0.0.1:{host.port}", "Ada", "dev-ada", audio=True)
        store = AppStore()
        guest = GuestService(config, store, player=player, remember_in=tmp_path)  # type: ignore[arg-type]
        guest.start()

        def connected() -> bool:
            state = store.get().guest
            return state is not None and state.connection is ConnectionState.CONNECTED

        await eventually(connected)
        return guest

    first = RecordingPlayer()
    guest = await join(first)
    assert first.outputs == []  # nothing kept for this host yet (400 is another host's)
    guest.set_local_output(latency_offset_ms=150.0)
    guest.set_local_output(volume=0.6)
    await guest.aclose()
    assert remembered.host_offset(tmp_path, host.config.host_id) == 150.0
    assert remembered.load(tmp_path).volume == 0.6

    again = RecordingPlayer()
    guest = await join(again)
    await eventually(lambda: again.outputs == [(None, 150.0)])
    await guest.aclose()
