"""The `GET /session` answer: what the host writes, and what the lookup refuses."""

from __future__ import annotations

import json

import msgspec
import pytest

from loudsync_tui.net.session_lookup import HostAddress, SessionLookupError, decode_answer
from loudsync_tui.protocol import SessionAnswer, SessionInfo

AT = HostAddress("192.168.1.20", 8080)
INFO = SessionInfo(
    id="k3v9q2",
    name="Friday",
    host_id="dev-host",
    host_name="Grace",
    max_members=10,
    member_count=2,
    protocol_version=1,
)


def test_the_answer_is_the_session_info_plus_the_pin_flag_key_for_key() -> None:
    wire = json.loads(msgspec.json.encode(SessionAnswer.of(INFO, pin_required=True)))
    assert list(wire) == [*json.loads(msgspec.json.encode(INFO)), "pinRequired"]
    assert wire["pinRequired"] is True
    assert decode_answer(msgspec.json.encode(wire), AT) == SessionAnswer.of(INFO, True)


def test_ids_and_names_are_enough_and_the_pin_flag_defaults_to_false() -> None:
    body = b'{"id": "k3v9q2", "name": "Friday", "hostId": "dev-host", "hostName": "Grace"}'
    answer = decode_answer(body, AT)
    assert (answer.id, answer.host_id, answer.name, answer.host_name) == (
        "k3v9q2",
        "dev-host",
        "Friday",
        "Grace",
    )
    assert answer.pin_required is False


GOOD = {"id": "k3v9q2", "name": "Friday", "hostId": "dev-host", "hostName": "Grace"}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ([], "192.168.1.20:8080 answered without a 'id'"),
        ({k: v for k, v in GOOD.items() if k != "hostId"}, "answered without a 'hostId'"),
        ({**GOOD, "name": ""}, "answered without a 'name'"),
        ({**GOOD, "id": 7}, "answered without a 'id'"),
        ({**GOOD, "hostName": None}, "answered without a 'hostName'"),
        ({**GOOD, "hostName": "G\x1b[2J"}, "answered a 'hostName' with a control character"),
        ({**GOOD, "hostId": "dev\u202e"}, "answered a 'hostId' with a control character"),
        ({**GOOD, "name": "x" * 65}, "answered a 'name' that is not allowed"),
        ({**GOOD, "pinRequired": "yes"}, "answered a 'pinRequired' that is not allowed"),
        ({**GOOD, "maxMembers": 0}, "answered a 'maxMembers' that is not allowed"),
    ],
)
def test_a_hostile_answer_is_refused_with_a_clear_error(reply: object, message: str) -> None:
    with pytest.raises(SessionLookupError, match=r"^192\.168\.1\.20:8080 answered") as refused:
        decode_answer(json.dumps(reply).encode(), AT)
    assert message in str(refused.value)


def test_an_answer_that_is_not_json_is_no_loudsync_host() -> None:
    with pytest.raises(SessionLookupError, match=r"^no LOUDSYNC host at 192\.168\.1\.20:8080 \("):
        decode_answer(b"<html>hello</html>", AT)
    with pytest.raises(SessionLookupError, match="no LOUDSYNC host"):
        decode_answer(b'{"id": "k3v9q2", "na', AT)  # cut off
