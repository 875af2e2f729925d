"""Text from elsewhere (a peer, an mDNS record, a close frame) made safe to show.

Two layers keep remote text inert. The protocol refuses the characters in `UNSAFE` in
every string a peer sends (`loudsync_tui.protocol`), and every place that shows remote
text passes it through `printable` first, because mDNS TXT strings, WebSocket close
reasons and error texts never pass through the protocol's decoder.

Markup is a separate matter: screens put remote text in `rich.text.Text` or pass
`markup=False`, so brackets are shown as typed and never parsed.
"""

from __future__ import annotations

import re
from typing import Final

UNSAFE_CLASS: Final = (
    r"\x00-\x1f\x7f-\x9f"  # C0 (\t \n \r included), DEL, C1 (a terminal acts on these)
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi controls: reorder what is shown
    r"\u2028\u2029"  # line and paragraph separators: break a line where none is seen
)
"""A regex character class body: what a peer may not send and what is never shown raw."""

UNSAFE: Final = re.compile(f"[{UNSAFE_CLASS}]")


def printable(text: str, *, indent: str | None = None) -> str:
    """`text` with each character in `UNSAFE` replaced by its Python escape (`\\x1b`,
    `\\n`, `\\u202e`).

    Escapes rather than U+FFFD: whoever reads the log sees what was attempted (an escape
    sequence, a forged line), and the text keeps its length. Only these characters, not
    everything `str.isprintable` rejects: that would also escape the zero-width joiner
    inside emoji such as 👩‍💻 and the no-break space in a name.

    `indent`: keep line breaks (a local message may span lines) but start every further
    line with `indent`, so no text can begin a line that looks like a log entry of its own.
    """
    if indent is None:
        return UNSAFE.sub(_escape, text)
    return ("\n" + indent).join(UNSAFE.sub(_escape, line) for line in text.split("\n"))


def _escape(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")
