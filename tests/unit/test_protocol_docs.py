"""Every JSON example in docs/protocol.md decodes, and every message type has one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec

from loudsync_tui.protocol import (
    MESSAGE_TYPES,
    MemberInfo,
    SessionAnswer,
    SessionInfo,
    decode,
    type_name,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _examples() -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_every_example_decodes_and_every_type_is_shown() -> None:
    examples = _examples()
    assert len(examples) >= 15
    seen = set()
    for text in examples:
        raw = json.loads(text)
        if "type" in raw:
            message = decode(text)
            assert type_name(message) == raw["type"]
            seen.add(raw["type"])
        elif "isHost" in raw:
            msgspec.json.decode(text, type=MemberInfo)
        elif "pinRequired" in raw:  # the GET /session answer, key for key as documented
            answer = msgspec.json.decode(text, type=SessionAnswer)
            assert json.loads(msgspec.json.encode(answer)) == raw
        else:
            msgspec.json.decode(text, type=SessionInfo)
    assert seen == {type_name(t) for t in MESSAGE_TYPES}
