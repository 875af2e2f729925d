"""The host's transport: commands become epochs a buffer ahead; track changes have no gap."""

from __future__ import annotations

import pytest

from loudsync_tui.core.epoch import RATE, Epoch
from loudsync_tui.core.transport import (
    ControlRefused,
    EpochStarted,
    QueueChanged,
    QueueEnded,
    TrackMeta,
    TrackStarted,
    Transport,
)

LEAD = 250_000
QUEUE = [TrackMeta("One", duration_ms=10_000), TrackMeta("Two"), TrackMeta("Three")]


def epochs(effects: list[object]) -> list[Epoch]:
    return [e.epoch for e in effects if isinstance(e, EpochStarted)]


def test_play_starts_the_first_track_a_buffer_ahead() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    effects = t.play(1_000_000)
    assert isinstance(effects[0], TrackStarted)
    assert effects[0].meta.title == "One"
    assert effects[0].queue_length == 3
    [epoch] = epochs(effects)
    assert epoch == Epoch(1, effects[0].track_id, True, 1_250_000, 0)
    assert t.due_sample(1_000_000) == 0  # the first chunk is due the moment PLAY is sent
    assert t.due_sample(1_020_000) == 960


def test_pause_stops_where_the_buffer_ends_and_play_resumes_there() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    t.play(0)
    [paused] = epochs(t.pause(1_250_000))  # 1 s after the first sample played
    assert paused.t0_us == 1_500_000
    assert not paused.playing
    assert paused.k0 == RATE * 5 // 4
    assert t.due_sample(2_000_000) is None
    assert t.pause(2_000_000) == []  # already paused
    [resumed] = epochs(t.play(3_000_000))
    assert (resumed.t0_us, resumed.k0, resumed.playing) == (3_250_000, paused.k0, True)
    assert resumed.number == paused.number + 1


def test_seek_keeps_playing_or_paused_and_is_clamped_to_the_track() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    t.play(0)
    [seek] = epochs(t.seek(1_000_000, 5 * RATE))
    assert (seek.k0, seek.playing, seek.t0_us) == (5 * RATE, True, 1_250_000)
    [end] = epochs(t.seek(2_000_000, 60 * RATE))
    assert end.k0 == 10 * RATE  # One lasts 10 s
    [start] = epochs(t.seek(3_000_000, -5))
    assert start.k0 == 0
    t.pause(4_000_000)
    [still] = epochs(t.seek(5_000_000, RATE))
    assert not still.playing


def test_track_end_starts_the_next_without_a_gap() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    t.play(0)
    effects = t.track_ended(480_000)  # 10 s of audio
    started = [e for e in effects if isinstance(e, TrackStarted)]
    assert started[0].meta.title == "Two"
    [epoch] = epochs(effects)
    assert epoch.t0_us == LEAD + 10_000_000  # exactly when sample 480000 would have played
    assert (epoch.k0, epoch.playing) == (0, True)


def test_queue_end_stops_and_play_starts_again_from_the_top() -> None:
    t = Transport(QUEUE[:1], lead_us=LEAD)
    t.play(0)
    effects = t.track_ended(RATE)
    assert any(isinstance(e, QueueEnded) for e in effects)
    [stopped] = epochs(effects)
    assert not stopped.playing
    assert t.due_sample(5_000_000) is None
    again = t.play(5_000_000)
    assert isinstance(again[0], TrackStarted)
    assert epochs(again)[0].k0 == 0


def test_loop_wraps_around() -> None:
    t = Transport(QUEUE[:2], lead_us=LEAD, loop=True)
    t.play(0)
    t.track_ended(RATE)
    effects = t.track_ended(RATE)
    started = [e for e in effects if isinstance(e, TrackStarted)]
    assert started[0].meta.title == "One"
    assert started[0].position == 0


def test_skip_moves_through_the_queue_and_gives_each_start_a_new_track_id() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    first = t.play(0)
    nxt = t.skip(1_000_000, 1)
    prev = t.skip(2_000_000, -1)
    ids = [e.track_id for e in (*first, *nxt, *prev) if isinstance(e, TrackStarted)]
    assert len(set(ids)) == 3
    titles = [e.meta.title for e in (*nxt, *prev) if isinstance(e, TrackStarted)]
    assert titles == ["Two", "One"]


def test_an_empty_queue_does_nothing() -> None:
    t = Transport([], lead_us=LEAD)
    assert t.play(0) == []
    assert t.skip(0, 1) == []
    assert t.due_sample(0) is None


def changed(effects: list[object]) -> QueueChanged:
    [change] = [e for e in effects if isinstance(e, QueueChanged)]
    return change


def test_adding_tracks_extends_the_queue_and_leaves_what_plays_alone() -> None:
    t = Transport(QUEUE[:1], lead_us=LEAD)
    t.play(0)
    playing = t.epoch
    effects = t.add([TrackMeta("Four"), TrackMeta("Five")])
    assert [m.title for m in changed(effects).queue] == ["One", "Four", "Five"]
    assert changed(effects).index == 0
    assert epochs(effects) == []
    assert t.epoch is playing
    assert t.add([]) == []


def test_removing_an_earlier_entry_keeps_the_current_track_current() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    t.play(0)
    t.skip(0, 1)  # "Two"
    effects = t.remove(100, 0)
    assert epochs(effects) == []
    assert changed(effects).index == 0
    assert t.queue[t.index].title == "Two"


def test_removing_the_current_track_plays_the_next_one_in_its_place() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    t.play(0)
    effects = t.remove(1_000_000, 0)
    [started] = [e for e in effects if isinstance(e, TrackStarted)]
    assert started.meta.title == "Two"
    [epoch] = epochs(effects)
    assert epoch.playing
    assert epoch.k0 == 0
    assert epoch.t0_us == 1_000_000 + LEAD
    # the last entry removed while current: the one before it becomes current
    t.skip(0, 1)  # "Three"
    effects = t.remove(2_000_000, 1)
    assert t.queue[t.index].title == "Two"


def test_removing_the_last_track_stops_the_output() -> None:
    t = Transport(QUEUE[:1], lead_us=LEAD)
    t.play(0)
    effects = t.remove(1_000_000, 0)
    [stopped] = epochs(effects)
    assert not stopped.playing
    assert stopped.t0_us == 1_000_000 + LEAD
    assert changed(effects).queue == ()
    assert t.epoch is None
    assert not t.playing
    assert t.play(2_000_000) == []  # nothing to play
    assert t.remove(0, 0) == []
    assert t.remove(0, -1) == []


def test_loop_and_play_index() -> None:
    t = Transport(QUEUE, lead_us=LEAD)
    assert changed(t.set_loop(True)).loop
    assert t.set_loop(True) == []
    effects = t.play_index(0, 2)
    assert [e.meta.title for e in effects if isinstance(e, TrackStarted)] == ["Three"]
    assert epochs(effects)[0].playing
    assert t.play_index(0, 3) == []


def test_a_live_source_cannot_be_seeked() -> None:
    t = Transport([TrackMeta("This machine's sound", live=True)], lead_us=LEAD)
    t.play(0)
    assert t.seek(0, RATE) == []
    assert t.seek_by(0, 10) == []


def test_control_names_the_command_and_says_why_it_cannot() -> None:
    t = Transport([], lead_us=LEAD)
    with pytest.raises(ControlRefused, match="Nothing to play yet"):
        t.control(0, "play")
    t.add(QUEUE)
    [started] = [e for e in t.control(0, "toggle") if isinstance(e, TrackStarted)]
    assert started.meta.title == "One"
    assert t.playing
    [seek] = epochs(t.control(1_000_000, "seek", 2.0))
    assert seek.k0 == RATE * 3  # 1 s played by the time it takes effect, plus 2
    assert t.control(0, "next")[0].meta.title == "Two"  # type: ignore[union-attr]
    with pytest.raises(ControlRefused, match="a number of seconds"):
        t.control(0, "seek", float("nan"))
    with pytest.raises(ControlRefused, match="Unknown control 'rewind'"):
        t.control(0, "rewind")
    live = Transport([TrackMeta("This machine's sound", live=True)], lead_us=LEAD)
    live.control(0, "play")
    with pytest.raises(ControlRefused, match="A live source cannot be seeked"):
        live.control(0, "seek", 10.0)
