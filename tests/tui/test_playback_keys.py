"""The music keys of the Host and Guest screens, under Pilot, against a real host core
and transport (the fake host makes no sound; the guest stand-in records what it was asked)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from benchmarks.media import noise, write_wav
from loudsync_tui.core.transport import TrackMeta
from loudsync_tui.protocol import MemberInfo, SyncReport
from loudsync_tui.store import AppStore, member_from_info
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.file_picker import FilePicker, MusicTree
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.now_playing import NowPlayingPanel
from tests.tui.fakes import FakeHost, FakeServices
from tests.tui.helpers import wait_for

QUEUE = [TrackMeta("One", "A", duration_ms=120_000), TrackMeta("Two"), TrackMeta("Three")]


def host_app(store: AppStore, fakes: FakeServices, music: Path | None = None) -> LoudsyncApp:
    settings = AppSettings.for_device("Grace", "dev-grace")
    settings = replace(
        settings,
        start="host",
        session_name="Friday",
        music_dir=None if music is None else str(music),
    )
    return LoudsyncApp(store=store, settings=settings, services=fakes.services())


async def test_the_host_runs_the_music_from_the_keyboard(
    store: AppStore, fakes: FakeServices
) -> None:
    app = host_app(store, fakes)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        await pilot.press("space")  # nothing queued: said, nothing breaks
        await wait_for(pilot, lambda: bool(app._notifications))
        assert "add music first" in list(app._notifications)[-1].message
        host: FakeHost = fakes.hosts[0]
        host.queue(QUEUE)
        playback = lambda: store.get().playback  # noqa: E731
        await wait_for(pilot, lambda: playback().epoch is not None)
        assert playback().epoch.playing  # type: ignore[union-attr]
        await pilot.press("space")
        await wait_for(pilot, lambda: not playback().epoch.playing)  # type: ignore[union-attr]
        paused_at = playback().epoch.k0  # type: ignore[union-attr]
        await pilot.press("right")
        await wait_for(pilot, lambda: playback().epoch.k0 == paused_at + 10 * 48_000)  # type: ignore[union-attr]
        await pilot.press("left", "left")
        await wait_for(pilot, lambda: playback().epoch.k0 == max(0, paused_at - 10 * 48_000))  # type: ignore[union-attr]
        await pilot.press("n")
        await wait_for(pilot, lambda: playback().track.title == "Two")  # type: ignore[union-attr]
        await pilot.press("P")
        await wait_for(pilot, lambda: playback().track.title == "One")  # type: ignore[union-attr]
        await pilot.press("L")
        await wait_for(pilot, lambda: playback().loop)
        await pilot.press("L")
        await wait_for(pilot, lambda: not playback().loop)
        app.screen.query_one("#queue").focus()
        await pilot.press("down", "x")  # "Two" goes; "One" still plays
        await wait_for(pilot, lambda: len(playback().queue) == 2)
        assert [t.title for t in playback().queue] == ["One", "Three"]
        assert playback().track.title == "One"  # type: ignore[union-attr]
        panel = app.screen.query_one(NowPlayingPanel)
        assert "One — A" in panel.text()


async def test_o_picks_a_file_and_a_folder_and_this_machines_sound(
    store: AppStore, fakes: FakeServices, tmp_path: Path
) -> None:
    write_wav(tmp_path / "song.wav", noise(0.3))
    album = tmp_path / "album"
    album.mkdir()
    write_wav(album / "b.wav", noise(0.3))
    write_wav(album / "a.wav", noise(0.3))
    (tmp_path / "notes.txt").write_text("not music")
    app = host_app(store, fakes, music=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker))
        tree = app.screen.query_one(MusicTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 2)
        assert [str(n.label) for n in tree.root.children] == ["album", "song.wav"]  # no .txt
        await pilot.press("down", "enter")  # the folder, whole
        await wait_for(pilot, lambda: len(store.get().playback.queue) == 2)
        assert [t.title for t in store.get().playback.queue] == ["a", "b"]
        await pilot.press("down", "enter")  # a file
        await wait_for(pilot, lambda: len(store.get().playback.queue) == 3)
        app.screen.query_one("#picker-system").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(store.get().playback.queue) == 4)
        assert store.get().playback.queue[-1].live
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert store.get().playback.track.title == "a"  # type: ignore[union-attr]


async def test_volume_mute_offset_and_dj_of_the_selected_member(
    store: AppStore, fakes: FakeServices
) -> None:
    app = host_app(store, fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        host: FakeHost = fakes.hosts[0]
        host.join("dev-ada", "Ada", audio=True)
        host.ping("dev-ada", 3.0, sync=SyncReport(50.0, 0, 240.0, 1.0, 0.8, 0.0))
        host.join("dev-bob", "Bob")  # a remote
        await wait_for(pilot, lambda: len(store.get().hosting.members) == 3)  # type: ignore[union-attr]
        sent: list[tuple[str, float | None, float | None]] = []
        host.set_output = lambda member_id, *, volume=None, latency_offset_ms=None: sent.append(  # type: ignore[method-assign]
            (member_id, volume, latency_offset_ms)
        )
        await pilot.press("down")  # Ada
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press("ctrl+a", "ctrl+k", *"150", "0", "enter")  # 1500: refused
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("backspace", "enter")
        await wait_for(pilot, lambda: sent == [("dev-ada", 1.5, None)])
        await pilot.press("m")  # reported volume 0.8: muted, and back to 0.8
        await pilot.press("m")
        await wait_for(pilot, lambda: len(sent) == 3)
        assert sent[1:] == [("dev-ada", 0.0, None), ("dev-ada", 0.8, None)]
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press("ctrl+a", "ctrl+k", *"180", "enter")
        await wait_for(pilot, lambda: sent[-1] == ("dev-ada", None, 180.0))
        await pilot.press("d")
        await wait_for(pilot, lambda: store.get().hosting.members["dev-ada"].dj)  # type: ignore[union-attr]
        await pilot.press("d")
        await wait_for(pilot, lambda: not store.get().hosting.members["dev-ada"].dj)  # type: ignore[union-attr]
        await pilot.press("down", "v")  # Bob plays no audio: said, no prompt
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        assert "plays no audio" in list(app._notifications)[-1].message
        assert len(sent) == 4


def guest_app(fakes: FakeServices) -> LoudsyncApp:
    settings = replace(
        AppSettings.for_device("Ada", "dev-ada"), start="join", join_address="10.0.0.1:8080"
    )
    return LoudsyncApp(store=AppStore(), settings=settings, services=fakes.services())


async def test_a_guest_sets_its_own_sound_and_a_dj_runs_the_music(fakes: FakeServices) -> None:
    app = guest_app(fakes)
    store = app.store
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        store.guest_welcomed(
            client_id="dev-ada",
            session_id="s",
            session_name="Friday",
            host_name="Grace",
            max_members=10,
        )
        ada = MemberInfo("dev-ada", "Ada", False, "connected", 0)
        store.guest_members_set([member_from_info(ada)])
        store.playback_output("USB Audio")
        store.playback_sync(SyncReport(40.0, 0, 240.0, 1.0, 0.5, 10.0))
        guest = fakes.guests[0]
        await pilot.press("plus", "minus", "right_square_bracket", "left_square_bracket", "m")
        await wait_for(pilot, lambda: len(guest.outputs) == 5)
        assert guest.outputs == [(0.6, None), (0.4, None), (None, 15.0), (None, 5.0), (0.0, None)]
        await pilot.press("space", "n")  # not a DJ: the music keys do nothing
        await pilot.pause()
        assert guest.controls == []
        store.guest_members_set(
            [member_from_info(MemberInfo("dev-ada", "Ada", False, "connected", 0, dj=True))]
        )
        await pilot.press("space", "right", "n", "P")
        await wait_for(pilot, lambda: len(guest.controls) == 4)
        assert guest.controls == [("toggle", 0.0), ("seek", 10.0), ("next", 0.0), ("prev", 0.0)]
        assert "· USB Audio" in app.screen.query_one(NowPlayingPanel).text()


async def test_a_guest_without_sound_says_why(fakes: FakeServices) -> None:
    app = guest_app(fakes)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        app.store.playback_silent("no sound here: PortAudio is missing (apt install libportaudio2)")
        panel = app.screen.query_one(NowPlayingPanel)
        await wait_for(pilot, lambda: "libportaudio2" in panel.text())
        await pilot.press("plus")
        await pilot.pause()
        assert fakes.guests[0].outputs == []
        assert "plays no sound" in list(app._notifications)[-1].message
