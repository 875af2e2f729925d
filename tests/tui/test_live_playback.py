"""Music in the app against a real host service on 127.0.0.1: the host app's picker
starts the music that a real guest app follows, and a DJ's keys drive the host."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from benchmarks.media import noise, write_wav
from loudsync_tui.config import HostConfig, PlaybackConfig
from loudsync_tui.net.host_service import HostService
from loudsync_tui.store import AppStore, ConnectionState
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.file_picker import FilePicker, MusicTree
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.now_playing import NowPlayingPanel
from tests.tui.helpers import wait_for
from tests.tui.test_live import ADA_ID, guest_config, host_config, live_services


async def test_the_host_app_picks_music_and_a_dj_guest_app_pauses_it(tmp_path: Path) -> None:
    write_wav(tmp_path / "song.wav", noise(20.0))
    settings = replace(
        AppSettings.for_device("Grace", "dev-host"),
        host=host_config(),
        session_name="Friday",
        start="host",
        music_dir=str(tmp_path),
    )
    host_app = LoudsyncApp(store=AppStore(), settings=settings, services=live_services())
    async with host_app.run_test(size=(100, 30)) as pilot:
        store = host_app.store
        await wait_for(pilot, lambda: store.get().hosting is not None)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(host_app.screen, FilePicker))
        tree = host_app.screen.query_one(MusicTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 1)
        await pilot.press("down", "enter", "escape")
        await wait_for(pilot, lambda: store.get().playback.track is not None, within=10)
        assert isinstance(host_app.screen, HostScreen)
        epoch = store.get().playback.epoch
        assert epoch is not None
        assert epoch.playing
        service = host_app.host_service
        assert isinstance(service, HostService)
        address = service.give_out

        guest_settings = replace(
            AppSettings.for_device("Ada", ADA_ID),
            guest=guest_config(),
            start="join",
            join_address=address,
        )
        guest_app = LoudsyncApp(store=AppStore(), settings=guest_settings, services=live_services())
        async with guest_app.run_test(size=(80, 24)) as guest_pilot:
            gstore = guest_app.store

            def joined() -> bool:
                guest = gstore.get().guest
                return guest is not None and guest.connection is ConnectionState.CONNECTED

            await wait_for(guest_pilot, joined, within=10)
            await wait_for(guest_pilot, lambda: gstore.get().playback.track is not None)
            assert isinstance(guest_app.screen, GuestScreen)
            panel = guest_app.screen.query_one(NowPlayingPanel)
            await wait_for(guest_pilot, lambda: "song" in panel.text())
            await guest_pilot.press("space")  # not a DJ yet: refused by its own screen
            await guest_pilot.pause(0.2)
            assert store.get().playback.epoch.playing  # type: ignore[union-attr]

            host_app.set_dj(ADA_ID, True)
            await wait_for(guest_pilot, lambda: gstore.get().guest.members[ADA_ID].dj)  # type: ignore[union-attr]
            await guest_pilot.press("space")
            await wait_for(pilot, lambda: not store.get().playback.epoch.playing)  # type: ignore[union-attr]
            await wait_for(
                guest_pilot,
                lambda: (
                    gstore.get().playback.epoch is not None
                    and not gstore.get().playback.epoch.playing
                ),  # type: ignore[union-attr]
            )
            assert any("DJ Ada: toggle" in e.text for e in store.get().log)
            assert any("Ada paused" in e.text for e in gstore.get().log)
            await guest_app.shutdown()
        await host_app.shutdown()


async def test_host_play_on_the_command_line_starts_the_app_playing(tmp_path: Path) -> None:
    """`loudsync-tui host --play FILE`: the queue is there when the Host screen is."""
    path = write_wav(tmp_path / "intro.wav", noise(5.0))
    config: HostConfig = host_config()
    settings = replace(
        AppSettings.for_device("Grace", "dev-host"),
        host=config,
        session_name="Friday",
        start="host",
        playback=PlaybackConfig(paths=(str(path),), codec="pcm"),
    )
    services = replace(
        live_services(),
        host=lambda c, s: HostService(c, s, playback=settings.playback),
    )
    app = LoudsyncApp(store=AppStore(), settings=settings, services=services)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.get().playback.track is not None, within=10)
        assert app.store.get().playback.codec == "pcm"
        assert [t.title for t in app.store.get().playback.queue] == ["intro"]
        await app.shutdown()
