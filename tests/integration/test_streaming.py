"""The host streams a queue over real WebSockets: the state first, then every chunk a
buffer ahead of its play time, the same bytes to each member that asked for audio."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from benchmarks.media import noise, write_wav
from loudsync_tui.audio.codec import FRAME_SAMPLES, make_decoder
from loudsync_tui.config import OutputConfig, PlaybackConfig
from loudsync_tui.core.epoch import RATE
from loudsync_tui.net.audio_streamer import SEND_BURST_US
from loudsync_tui.net.host_service import HostService, HostStartError
from loudsync_tui.protocol import (
    Control,
    Error,
    ErrorCode,
    Message,
    Pause,
    Play,
    Seek,
    Track,
    decode,
    now_ms,
)
from loudsync_tui.protocol_audio import AudioCodec, AudioFrame, decode_frame
from loudsync_tui.store import AppStore
from tests.integration.conftest import FAST_HOST
from tests.support.raw import RawGuest
from tests.support.waiting import eventually

SILENT = OutputConfig(enabled=False)


@dataclass
class Listener:
    """A raw guest that keeps every frame with the host's session time of its arrival."""

    raw: RawGuest
    host: HostService
    messages: list[Message] = field(default_factory=list)
    frames: list[tuple[int, AudioFrame]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, host: HostService, device_id: str, *, audio: bool | None) -> Listener:
        raw = await RawGuest.connect(host.port)
        await raw.join(device_id, audio=audio)
        raw.keep_alive()
        listener = cls(raw, host)
        listener.task = asyncio.create_task(listener._read())
        return listener

    async def _read(self) -> None:
        try:
            async for data in self.raw.ws:
                at = self.host.core.session_clock_us  # same machine: the same clock
                if isinstance(data, bytes):
                    self.frames.append((at, decode_frame(data)))
                else:
                    self.messages.append(decode(data))
        except ConnectionClosed:
            pass

    def of(self, kind: type) -> list[Message]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def close(self) -> None:
        await self.raw.close()
        if self.task is not None:
            await self.task


async def streaming_host(paths: list[Path], codec: str = "pcm", **playback: object) -> HostService:
    config = PlaybackConfig(paths=tuple(str(p) for p in paths), codec=codec, **playback)  # type: ignore[arg-type]
    service = HostService(FAST_HOST, AppStore(), playback=config, output=SILENT)
    await service.start()
    return service


def assemble(frames: list[AudioFrame], epoch: int) -> dict[int, np.ndarray]:
    return {
        f.first_sample: np.frombuffer(f.payload, "<i2").reshape(-1, 2)
        for f in frames
        if f.epoch == epoch
    }


async def test_members_get_the_track_then_every_chunk_a_buffer_ahead(tmp_path: Path) -> None:
    music = noise(1.5)
    path = write_wav(tmp_path / "noise.wav", music)
    host = await streaming_host([path], autoplay=False)
    try:
        a = await Listener.join(host, "dev-a", audio=True)
        remote = await Listener.join(host, "dev-r", audio=None)
        await eventually(lambda: len(host.core.members) == 3)
        assert host.streamer is not None
        host.streamer.play()
        await eventually(lambda: len(a.frames) >= len(music) // FRAME_SAMPLES, timeout=10)
        (track,) = a.of(Track)
        assert track.title == "noise"
        (play,) = a.of(Play)
        assert a.messages.index(track) < a.messages.index(play)
        chunks = assemble([f for _, f in a.frames], play.epoch)
        got = np.concatenate([chunks[k] for k in sorted(chunks)])
        np.testing.assert_array_equal(got[: len(music)], music)  # PCM: every sample, in place
        leads = [
            (play.at_us + (f.first_sample - play.sample) * 1e6 / RATE) - at for at, f in a.frames
        ]
        assert min(leads) > 100_000, f"a chunk arrived {min(leads) / 1000:.1f} ms ahead"
        assert remote.of(Track) == [track]
        assert remote.of(Play) == [play]
        assert remote.frames == []  # no audio for a member that did not ask
    finally:
        await a.close()
        await remote.close()
        await host.aclose()


async def hear_it_all(host: HostService, music: np.ndarray) -> tuple[Listener, Play]:
    """An audio member joins and the host plays: back once every chunk has arrived."""
    listener = await Listener.join(host, "dev-a", audio=True)
    await eventually(lambda: len(host.core.members) == 2)
    assert host.streamer is not None
    host.streamer.play()
    await eventually(lambda: len(listener.frames) >= len(music) // FRAME_SAMPLES, timeout=10)
    (play,) = listener.of(Play)
    return listener, play


async def test_flac_reaches_members_lossless(tmp_path: Path) -> None:
    music = noise(1.0)
    host = await streaming_host([write_wav(tmp_path / "n.wav", music)], "flac", autoplay=False)
    try:
        a, play = await hear_it_all(host, music)
        frames = sorted(
            (f for _, f in a.frames if f.epoch == play.epoch), key=lambda f: f.first_sample
        )
        assert {f.codec for f in frames} == {AudioCodec.FLAC}
        decoder = make_decoder(AudioCodec.FLAC)
        got = np.concatenate([decoder.decode(f.payload) for f in frames])
        np.testing.assert_array_equal(got[: len(music)], music)
        assert sum(len(f.payload) for f in frames) < len(frames) * FRAME_SAMPLES * 4
        await a.close()
    finally:
        await host.aclose()


async def test_chunks_go_out_a_few_at_a_time_and_never_far_beyond_the_buffer(
    tmp_path: Path,
) -> None:
    """A guest pays for each wake-up more than for decoding, so the host sends the
    chunks due within SEND_BURST_US together; the lead grows by at most that much."""
    music = noise(2.0)
    host = await streaming_host([write_wav(tmp_path / "n.wav", music)], autoplay=False)
    try:
        a, play = await hear_it_all(host, music)
        # After the first buffer's worth, which goes at once: the steady pace.
        steady = [at for at, f in a.frames if f.first_sample >= RATE // 2]
        groups = [1]
        for before, at in itertools.pairwise(steady):
            if at - before < 5_000:
                groups[-1] += 1
            else:
                groups.append(1)
        assert statistics.median(groups) >= 3, groups
        leads = [
            (play.at_us + (f.first_sample - play.sample) * 1e6 / RATE) - at for at, f in a.frames
        ]
        limit = 250_000 + SEND_BURST_US + 2 * FRAME_SAMPLES * 1_000_000 / RATE
        assert max(leads) < limit, f"a chunk went {max(leads) / 1000:.1f} ms ahead"
        await a.close()
    finally:
        await host.aclose()


async def test_audio_frames_travel_uncompressed_and_messages_compressed(tmp_path: Path) -> None:
    host = await streaming_host([write_wav(tmp_path / "noise.wav", noise(0.5))], autoplay=False)
    try:
        a = await Listener.join(host, "dev-a", audio=True)
        (deflate,) = a.raw.ws.protocol.extensions  # negotiated, as by default
        seen: list[tuple[Opcode, bool]] = []
        decode = deflate.decode

        def spy(frame: Frame, *, max_size: int | None = None) -> Frame:
            seen.append((frame.opcode, frame.rsv1))
            return decode(frame, max_size=max_size)

        deflate.decode = spy  # type: ignore[method-assign]
        await eventually(lambda: len(host.core.members) == 2)
        assert host.streamer is not None
        host.streamer.play()
        await eventually(lambda: len(a.frames) >= 10, timeout=10)
        binary = [rsv1 for opcode, rsv1 in seen if opcode is Opcode.BINARY]
        text = [rsv1 for opcode, rsv1 in seen if opcode is Opcode.TEXT]
        assert binary
        assert not any(binary)  # audio as it is: it would not shrink
        assert text
        assert all(text)
        assert a.of(Play)  # and both still read
    finally:
        await a.close()
        await host.aclose()


async def test_a_late_joiner_gets_the_state_and_what_is_still_to_play(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "long.wav", noise(4.0))
    host = await streaming_host([path])
    try:
        await eventually(lambda: host.store.get().playback.epoch is not None)
        await asyncio.sleep(0)
        epoch = host.store.get().playback.epoch
        assert epoch is not None
        await eventually(lambda: host.core.session_clock_us > epoch.t0_us + 500_000, timeout=5)
        late = await Listener.join(host, "dev-late", audio=True)
        await eventually(lambda: len(late.frames) > 20, timeout=5)
        kinds = [type(m).__name__ for m in late.messages[:4]]
        assert kinds == ["Welcome", "MemberList", "Track", "Play"]
        joined_at = late.frames[0][0]
        ends = [epoch.time_of(f.first_sample + f.frame_count) for _, f in late.frames[:4]]
        assert late.frames[0][1].first_sample > 0  # not the start of the track
        # two chunks already played prime its decoder, then what is still to play
        assert ends[0] < joined_at
        assert ends[1] < joined_at + 10_000
        assert 0 < ends[2] - joined_at < 50_000  # the next thing to play: heard at once
        assert [f.first_sample for _, f in late.frames[:4]] == [
            late.frames[0][1].first_sample + i * FRAME_SAMPLES for i in range(4)
        ]
        await late.close()
    finally:
        await host.aclose()


async def test_pause_and_seek_reach_everyone_a_buffer_ahead(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "song.wav", noise(6.0))
    host = await streaming_host([path], buffer_ms=200)
    try:
        a = await Listener.join(host, "dev-a", audio=True)
        await eventually(lambda: len(a.of(Play)) == 1)
        streamer = host.streamer
        assert streamer is not None
        asked = host.core.session_clock_us
        streamer.pause()
        await eventually(lambda: len(a.of(Pause)) == 1)
        (pause,) = a.of(Pause)
        assert 200_000 <= pause.at_us - asked < 250_000
        (play,) = a.of(Play)
        old = [f for _, f in a.frames if f.epoch == play.epoch]
        last_end = max(f.first_sample + f.frame_count for f in old)
        # the audio before the pause is there to its last sample, and a chunk beyond
        assert play.at_us + (last_end - play.sample) * 1e6 / RATE >= pause.at_us + 20_000
        frames_before = len(a.frames)
        streamer.seek_by(2.0)
        await eventually(lambda: len(a.of(Seek)) == 1)
        (seek,) = a.of(Seek)
        assert not seek.playing  # a seek while paused stays paused
        assert seek.sample == pause.sample + 2 * RATE
        streamer.play()
        await eventually(lambda: len(a.of(Play)) == 2)
        resumed = a.of(Play)[-1]
        assert resumed.sample == seek.sample
        await eventually(lambda: any(f.epoch == resumed.epoch for _, f in a.frames))
        # nothing was sent while paused: every frame since the seek is the new epoch's
        assert {f.epoch for _, f in a.frames[frames_before:]} == {resumed.epoch}
        first = min(f.first_sample for _, f in a.frames if f.epoch == resumed.epoch)
        assert first == resumed.sample
        await a.close()
    finally:
        await host.aclose()


async def test_the_queue_moves_on_without_a_gap(tmp_path: Path) -> None:
    one = write_wav(tmp_path / "1.wav", noise(0.5, seed=1))
    two = write_wav(tmp_path / "2.wav", noise(0.5, seed=2))
    host = await streaming_host([one, two])
    try:
        a = await Listener.join(host, "dev-a", audio=True)
        await eventually(lambda: host.store.get().playback.ended, timeout=10)
        titles = [m.title for m in a.of(Track)]
        plays = a.of(Play)
        assert titles[-2:] == ["1", "2"] or titles == ["2"]
        if len(plays) == 2:
            assert plays[1].at_us == plays[0].at_us + round(0.5 * 1_000_000)
        (stop,) = a.of(Pause)
        assert stop.sample == RATE // 2
        await a.close()
    finally:
        await host.aclose()


async def test_unreadable_files_are_skipped_and_nothing_playable_is_a_clear_error(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "notes.mp3"
    bad.write_text("not music")
    good = write_wav(tmp_path / "good.wav", noise(0.2))
    host = await streaming_host([bad, good], autoplay=False)
    try:
        log = [e.text for e in host.store.get().log]
        assert any("Skipped" in t and "notes.mp3" in t for t in log)
        assert host.streamer is not None
        assert [t.title for t in host.streamer.tracks] == ["good"]
    finally:
        await host.aclose()
    with pytest.raises(HostStartError, match="Nothing to play"):
        await streaming_host([bad])
    with pytest.raises(HostStartError, match="no such file"):
        await streaming_host([tmp_path / "missing.flac"])
    service = HostService(
        FAST_HOST, AppStore(), playback=PlaybackConfig((str(good),), codec="mp3"), output=SILENT
    )
    with pytest.raises(HostStartError, match="Unknown codec 'mp3': choose pcm, opus or flac"):
        await service.start()


async def test_music_added_to_an_idle_session_plays_and_the_queue_can_change(
    tmp_path: Path,
) -> None:
    """The app's picker: a host that started with nothing gets a folder, then a file."""
    folder = tmp_path / "album"
    folder.mkdir()
    write_wav(folder / "01 first.wav", noise(3.0))
    write_wav(folder / "02 second.wav", noise(3.0))
    (folder / "cover.txt").write_text("not music")
    host = await streaming_host([])
    try:
        assert host.streamer is None  # nothing opened before there is music
        assert host.control("toggle") == "Nothing to play yet: add music first"
        a = await Listener.join(host, "dev-a", audio=True)
        await host.add_music([str(folder)])
        await eventually(lambda: len(a.of(Play)) == 1)
        state = host.store.get().playback
        assert [t.title for t in state.queue] == ["01 first", "02 second"]
        assert state.track is not None
        assert state.track.title == "01 first"
        assert (state.codec, state.buffer_ms) == ("pcm", PlaybackConfig().buffer_ms)
        await host.add_music([str(folder / "02 second.wav")])
        assert len(host.store.get().playback.queue) == 3
        assert len(a.of(Play)) == 1  # adding while playing changes nothing that plays
        host.remove_track(0)  # the current one: the next takes its place at once
        await eventually(lambda: [t.title for t in a.of(Track)] == ["01 first", "02 second"])
        assert host.store.get().playback.queue_index == 0
        host.set_loop(True)
        assert host.store.get().playback.loop
        assert host.control("seek", float("nan")) == "seek takes a number of seconds"
        assert host.control("rewind") == "Unknown control 'rewind'"
        await host.add_music([str(tmp_path / "missing")])
        log = [e.text for e in host.store.get().log]
        assert any("no such file" in t for t in log)
        assert any("Queued 2 tracks" in t for t in log)
        await a.close()
    finally:
        await host.aclose()


async def test_only_a_dj_controls_the_music_and_everyone_hears_who_did(tmp_path: Path) -> None:
    """Over real sockets: a member's CONTROL is refused until the host makes it a DJ;
    then it pauses the host's music, and the PAUSE names it."""
    path = write_wav(tmp_path / "noise.wav", noise(20.0))
    host = await streaming_host([path])
    try:
        ada = await RawGuest.connect(host.port)
        await ada.join("dev-ada", audio=None)
        bob = await Listener.join(host, "dev-bob", audio=None)
        await eventually(lambda: len(bob.of(Play)) == 1)
        await ada.send(Control(timestamp=now_ms(), action="pause"))
        refused = await ada.recv_type(Error)
        assert refused.code == ErrorCode.NOT_ALLOWED
        assert host.streamer is not None
        assert host.streamer.transport.playing  # nothing changed
        host.set_dj("dev-ada", True)
        await ada.send(Control(timestamp=now_ms(), action="pause"))
        await eventually(lambda: len(bob.of(Pause)) == 1)
        (pause,) = bob.of(Pause)
        assert pause.by == "Raw"  # the name RawGuest joins with
        assert not host.streamer.transport.playing
        assert any("DJ Raw: pause" in e.text for e in host.store.get().log)
        await ada.close()
        await bob.close()
    finally:
        await host.aclose()
