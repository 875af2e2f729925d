"""Playback in the session cores: the host tells every member (late joiners too), sends
audio only to those that asked; a guest turns epochs into effects and reports its sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loudsync_tui.audio import remembered
from loudsync_tui.config import OutputSettings
from loudsync_tui.core.effects import AudioWanted, Broadcast, Log, MemberChanged, Send
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.core.guest import EpochChanged, OutputSet, TrackAnnounced, Transmit
from loudsync_tui.protocol import (
    Heartbeat,
    Join,
    Pause,
    Ping,
    Play,
    Pong,
    Seek,
    SetOutput,
    SyncReport,
    Track,
    encode,
)
from tests.unit.test_guest_core import Guest, of, sent, through_burst
from tests.unit.test_host_core import SID, Host, T, join_msg, to

TRACK = Track(timestamp=T, track_id=1, title="Song", queue_length=1)
PLAY = Play(timestamp=T, epoch=1, track_id=1, at_us=250_000, sample=0)


def join_with_audio(h: Host, conn: int, device_id: str, audio: bool | None) -> list[Any]:
    h.open(conn)
    message = join_msg(device_id)
    message = Join(
        timestamp=T,
        session_id=SID,
        protocol_version=1,
        device=message.device,
        audio=audio,
    )
    effects = h.core.received(conn, encode(message))
    h.core.received(conn, encode(Heartbeat(timestamp=T)))
    return effects


def test_announce_reaches_every_member_and_audio_only_those_that_asked() -> None:
    h = Host()
    join_with_audio(h, 1, "dev-a", True)
    join_with_audio(h, 2, "dev-b", None)  # a Phase 1 guest or a remote control
    join_with_audio(h, 3, "dev-c", False)
    assert h.core.audio_conns() == (1,)
    (broadcast,) = h.core.announce(TRACK)
    assert isinstance(broadcast, Broadcast)
    assert set(broadcast.conns) == {1, 2, 3}


def test_a_late_joiner_gets_the_track_and_epoch_after_the_member_list() -> None:
    h = Host()
    assert h.core.announce(TRACK) == []  # nobody to tell yet
    h.core.announce(PLAY)
    effects = join_with_audio(h, 1, "dev-a", True)
    types = [type(m).__name__ for m in to(effects, 1)]
    assert types[:4] == ["Welcome", "MemberList", "Track", "Play"]
    assert AudioWanted(1) in effects
    pause = Pause(timestamp=T, epoch=2, track_id=1, at_us=900_000, sample=31_200)
    h.core.announce(pause)
    later = join_with_audio(h, 2, "dev-b", None)
    assert [m for m in to(later, 2) if isinstance(m, Track | Play | Pause)] == [TRACK, pause]
    assert not any(isinstance(e, AudioWanted) for e in later)


def test_a_sync_report_in_a_ping_reaches_the_hosts_table_only() -> None:
    h = Host()
    join_with_audio(h, 1, "dev-a", True)
    report = SyncReport(error_us=-4.0, underruns=1, buffer_ms=240.0, rate_ratio=1.0002)
    effects = h.core.received(1, encode(Ping(timestamp=T, sync=report)))
    changed = [e for e in effects if isinstance(e, MemberChanged)]
    assert changed[-1].sync == report
    assert not any(isinstance(e, Broadcast) for e in effects)
    assert any(isinstance(e, Send) for e in effects)  # the PONG


def test_guest_turns_epoch_messages_into_effects_and_ignores_replays() -> None:
    g = Guest()
    g.connected()
    (announced,) = of(g.feed(TRACK), TrackAnnounced)
    assert announced.track == TRACK
    (changed,) = of(g.feed(PLAY), EpochChanged)
    assert changed == EpochChanged(Epoch(1, 1, True, 250_000, 0), "play")
    assert of(g.feed(PLAY), EpochChanged) == []  # a resume sends the state again
    seek = Seek(timestamp=T, epoch=2, track_id=1, at_us=5, sample=9, playing=False)
    (paused,) = of(g.feed(seek), EpochChanged)
    assert paused.kind == "seek"
    assert not paused.epoch.playing


def test_guest_asks_for_audio_only_when_configured_and_reports_sync_in_its_ping() -> None:
    quiet = Guest()
    quiet.core.start()
    assert all(m.audio is None for m in sent(quiet.core.opened()) if isinstance(m, Join))
    g = Guest(audio=True)
    g.core.start()
    (join,) = [m for m in sent(g.core.opened()) if isinstance(m, Join)]
    assert join.audio is True
    report = SyncReport(error_us=2.0, underruns=0, buffer_ms=200.0, rate_ratio=1.0)
    g.core.report_sync(report)
    g.connected()
    pings = [
        e.message
        for e in g.advance(10.0)  # the idle probe
        if isinstance(e, Transmit) and isinstance(e.message, Ping)
    ]
    assert pings
    lead = pings[-1]
    assert lead.sync == report
    assert lead.sent_us is not None
    answer = Pong(
        timestamp=T,
        ping_timestamp=lead.timestamp,
        received_at=T,
        ping_sent_us=lead.sent_us,
        received_us=lead.sent_us,
        sent_us=lead.sent_us,
    )
    follow_ups = [
        e.message for e in g.feed(answer) if isinstance(e, Transmit) and isinstance(e.message, Ping)
    ]
    assert [p.sync for p in follow_ups] == [None]  # the report went with the lead


def test_the_host_sets_one_members_output_and_the_guest_is_told() -> None:
    h = Host()
    join_with_audio(h, 1, "dev-a", True)
    (send,) = h.core.set_output("dev-a", volume=0.5)
    assert isinstance(send, Send)
    assert send.conn == 1
    assert send.message == SetOutput(timestamp=send.message.timestamp, volume=0.5)
    (warning,) = h.core.set_output("dev-nobody", latency_offset_ms=10.0)
    assert isinstance(warning, Log)
    assert "dev-nobody" in warning.text
    g = Guest()
    g.connected()
    assert of(g.feed(send.message), OutputSet) == [OutputSet(0.5, None)]


def test_output_settings_are_remembered_and_a_damaged_file_is_the_defaults(
    tmp_path: Path,
) -> None:
    assert remembered.load(tmp_path) == OutputSettings()
    remembered.save(tmp_path / "new", OutputSettings(0.4, 85.0))
    assert remembered.load(tmp_path / "new") == OutputSettings(0.4, 85.0)
    (tmp_path / remembered.FILE_NAME).write_text("{not json")
    assert remembered.load(tmp_path) == OutputSettings()
    (tmp_path / remembered.FILE_NAME).write_text('{"volume": 99, "latencyOffsetMs": -1e9}')
    assert remembered.load(tmp_path) == OutputSettings(1.5, -2000.0)  # clamped to the limits


def test_a_latency_offset_is_kept_per_host_beside_the_speakers_settings(tmp_path: Path) -> None:
    assert remembered.host_offset(tmp_path, "host-a") is None
    remembered.save(tmp_path, OutputSettings(0.7, 20.0))
    remembered.save_host_offset(tmp_path, "host-a", 180.0)
    remembered.save_host_offset(tmp_path, "host-b", -35.0)
    assert remembered.host_offset(tmp_path, "host-a") == 180.0
    assert remembered.host_offset(tmp_path, "host-b") == -35.0
    assert remembered.load(tmp_path) == OutputSettings(0.7, 20.0)  # untouched by either
    remembered.save(tmp_path, OutputSettings(0.9, 20.0))
    assert remembered.host_offset(tmp_path, "host-a") == 180.0  # and this one by that
    for n in range(remembered.HOSTS_KEPT):
        remembered.save_host_offset(tmp_path, f"other-{n}", 1.0)
    assert remembered.host_offset(tmp_path, "host-a") is None  # the oldest go first
    (tmp_path / remembered.FILE_NAME).write_text('{"hosts": {"h": "loud"}, "volume": "x"}')
    assert remembered.host_offset(tmp_path, "h") is None
    assert remembered.load(tmp_path) == OutputSettings()


def test_the_clock_is_probed_once_a_second_while_music_plays_and_idles_otherwise() -> None:
    g = Guest()
    g.connected(interval=5000)
    t0 = g.clock.now
    through_burst(g, t0 + 2.0)  # the burst after WELCOME

    def pings_between(start: float, end: float) -> int:
        """PINGs sent from `start` (where the clock already is) to `end`, the host heard
        from every second (so the link stays up)."""
        assert g.clock.now <= start
        count = 0
        for second in range(int(start), int(end)):
            count += sum(isinstance(m, Ping) for m in through_burst(g, second + 1))
            g.core.received(encode(Pong(timestamp=T, ping_timestamp=1, received_at=T)))
        return count

    assert pings_between(t0 + 2.0, t0 + 12.0) == 1  # idle: every second heartbeat (5 s)
    g.feed(PLAY)
    assert 9 <= pings_between(t0 + 12.0, t0 + 22.0) <= 12  # playing: 1 a second (+ heartbeats)
    g.feed(Pause(timestamp=T, epoch=2, track_id=1, at_us=1, sample=0))
    pings_between(t0 + 22.0, t0 + 27.0)  # the last 1 s gap runs out
    assert pings_between(t0 + 27.0, t0 + 47.0) == 2  # paused: idle again
