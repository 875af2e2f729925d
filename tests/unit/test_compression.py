"""The host's permessage-deflate compresses text and leaves audio (binary) as it is, and
a standard receiver reads both, in any order, with its compression context intact."""

from __future__ import annotations

import json
import zlib

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode

from loudsync_tui.net.compression import (
    SETTINGS,
    TextOnlyDeflate,
    TextOnlyDeflateFactory,
)

TEXT = b'{"type":"MEMBER_LIST","members":[' + b'{"name":"Ada"},' * 40 + b"]}"
AUDIO = bytes(range(256)) * 8


def negotiated() -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """(host, guest) extensions as a real handshake negotiates them."""
    client = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    response, host = TextOnlyDeflateFactory().process_request_params(
        client.get_request_params(), []
    )
    guest = client.process_response_params(response, [])
    assert isinstance(guest, PerMessageDeflate)
    return host, guest


def test_the_negotiated_extension_is_ours_with_small_windows() -> None:
    host, guest = negotiated()
    assert isinstance(host, TextOnlyDeflate)
    assert host.local_max_window_bits == 10
    assert host.remote_max_window_bits == 10  # what the host inflates with
    assert guest.local_max_window_bits == 10  # a standard guest compresses with it


def test_text_is_compressed_and_audio_sent_as_it_is() -> None:
    host, guest = negotiated()
    for _ in range(3):  # interleaved, so the shared context must survive the skips
        text = host.encode(Frame(Opcode.TEXT, TEXT))
        assert text.rsv1
        assert len(text.data) < len(TEXT) // 4
        audio = host.encode(Frame(Opcode.BINARY, AUDIO))
        assert not audio.rsv1
        assert audio.data == AUDIO
        assert guest.decode(text).data == TEXT
        assert guest.decode(audio).data == AUDIO


def test_a_fragmented_audio_message_stays_uncompressed_to_its_end() -> None:
    host, guest = negotiated()
    first = host.encode(Frame(Opcode.BINARY, AUDIO[:100], fin=False))
    last = host.encode(Frame(Opcode.CONT, AUDIO[100:], fin=True))
    assert (first.rsv1, first.data, last.data) == (False, AUDIO[:100], AUDIO[100:])
    assert guest.decode(first).data + guest.decode(last).data == AUDIO
    after = host.encode(Frame(Opcode.TEXT, TEXT, fin=False))
    tail = host.encode(Frame(Opcode.CONT, b"", fin=True))
    assert after.rsv1  # the next text message is compressed again
    assert guest.decode(after).data + guest.decode(tail).data == TEXT


def test_text_that_skips_the_extension_reads_between_compressed_ones() -> None:
    """A message to a crowd is framed once, past the extension (`fanout`): the host's
    deflate context never sees it, and the guest's inflate context must survive it."""
    host, guest = negotiated()
    for _ in range(3):
        text = host.encode(Frame(Opcode.TEXT, TEXT))
        assert text.rsv1
        assert guest.decode(text).data == TEXT
        assert guest.decode(Frame(Opcode.TEXT, TEXT)).data == TEXT


def deflated(messages: list[bytes], window_bits: int, mem_level: int) -> int:
    """Bytes on the wire for `messages` sent in turn on one context, as permessage-deflate
    sends them (a sync flush after each, its last 4 bytes left off)."""
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits, mem_level)
    return sum(len(c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)) - 4 for m in messages)


def test_the_small_windows_compress_session_messages_as_well_as_the_defaults() -> None:
    members = [
        {"id": f"k-{i:032x}", "name": f"Guest {i}", "type": "terminal", "joinedAt": i}
        for i in range(1000)
    ]
    member_list = json.dumps({"type": "MEMBER_LIST", "members": members}).encode()
    pong = b'{"type":"PONG","timestamp":1764086405002,"pingSentUs":912345678901}'
    ours = (SETTINGS["server_max_window_bits"], SETTINGS["compress_settings"]["memLevel"])
    for messages in ([member_list], [pong] * 20):
        default = deflated(messages, 12, 5)  # websockets' own settings
        assert deflated(messages, *ours) <= default * 1.1, messages[0][:20]
