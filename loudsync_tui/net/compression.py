"""permessage-deflate for the session's text messages only, never its audio frames.

`websockets` compresses every data frame once the extension is negotiated. Audio frames
(Opus, or PCM noise-like enough) do not shrink, yet each would cost the host a deflate
per guest and every guest an inflate, 50 times a second. RFC 7692 lets a sender leave
any message uncompressed (RSV1 clear), and every receiver, `websockets` included, passes
such a message through untouched; so the host's extension skips binary messages, and
guests need nothing new. Text sent to a crowd at once skips it too: see `fanout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode

SETTINGS: dict[str, Any] = {
    "server_max_window_bits": 10,
    "client_max_window_bits": 10,
    "compress_settings": {"memLevel": 3},
}
"""Smaller zlib state than `websockets`' defaults (windows of 12 bits, memLevel 5): per
guest the host keeps a deflate context (by zlib's formula 2^(window+2) + 2^(memLevel+9)
bytes, 32 KiB by default, 8 KiB here) and an inflate one (2^window plus about 7 KiB).
The session's messages are small JSON that repeats within a few hundred bytes, so the
window hardly matters (tests/unit/test_compression.py compares a 1,000-member
MEMBER_LIST and a run of PONGs both ways). memLevel 3 (4 KiB less than 4) made a
1,000-member MEMBER_LIST 2 % larger (7,138 bytes against 7,005) and left small messages
as they were. The memory per guest is measured by `python -m benchmarks --guests 1000
--ours-only`: see the README."""


class TextOnlyDeflate(PerMessageDeflate):
    """Compresses text messages; sends binary ones as they are."""

    _plain_message = False

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode is Opcode.BINARY:
            self._plain_message = not frame.fin
            return frame
        if frame.opcode is Opcode.CONT and self._plain_message:
            self._plain_message = not frame.fin
            return frame
        return super().encode(frame)


class TextOnlyDeflateFactory(ServerPerMessageDeflateFactory):
    """The server's permessage-deflate, negotiated as ever, encoding with TextOnlyDeflate."""

    def __init__(self) -> None:
        super().__init__(**SETTINGS)

    def process_request_params(
        self, params: Sequence[tuple[str, str | None]], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[tuple[str, str | None]], PerMessageDeflate]:
        response, negotiated = super().process_request_params(params, accepted_extensions)
        extension = TextOnlyDeflate(
            negotiated.remote_no_context_takeover,
            negotiated.local_no_context_takeover,
            negotiated.remote_max_window_bits,
            negotiated.local_max_window_bits,
            self.compress_settings,
        )
        return response, extension
