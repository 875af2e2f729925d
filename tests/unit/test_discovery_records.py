"""The DNS-SD record of a session without any network: the TXT codec, both ways, and the
names a session is advertised under (moved here from the integration suite)."""

from __future__ import annotations

import pytest
from zeroconf.asyncio import AsyncServiceInfo

from loudsync_tui.net.discovery import (
    SERVICE_TYPE,
    Security,
    instance_name,
    instance_of,
    server_name,
    session_from_record,
    session_from_service,
    txt_record,
)
from loudsync_tui.protocol import PROTOCOL_VERSION, SessionInfo
from loudsync_tui.store import DiscoveredSession

COMPLETE = {"id": "s", "name": "N", "host": "H", "members": "1", "max": "10", "v": "1"}


def info(name: str = "Friday", session_id: str = "k3v9q2", host_name: str = "Grace") -> SessionInfo:
    return SessionInfo(
        id=session_id,
        name=name,
        host_id="dev-host",
        host_name=host_name,
        max_members=10,
        member_count=2,
        protocol_version=PROTOCOL_VERSION,
    )


# Reading a record --------------------------------------------------------------------


@pytest.mark.parametrize(
    "txt",
    [
        {},
        {"id": "s", "name": "N", "host": "H", "members": "many", "max": "10", "v": "1"},
        {"id": "s", "name": "N", "host": "H", "members": "1", "max": "0", "v": "1"},
        {"id": "", "name": "N", "host": "H", "members": "1", "max": "10", "v": "1"},
        {"id": "s", "host": "H", "members": "1", "max": "10", "v": "1"},
        {"id": "s", "name": "N", "host": "H", "members": "-1", "max": "10", "v": "1"},
    ],
)
def test_records_with_missing_or_garbled_txt_are_ignored(txt: dict[str, str]) -> None:
    assert session_from_record("X", txt, ["10.0.0.1"], 1) is None
    assert session_from_record("X", COMPLETE, ["::1"], 1) is not None


def test_a_record_without_a_port_is_ignored() -> None:
    assert session_from_record("X", COMPLETE, ["10.0.0.1"], None) is None


@pytest.mark.parametrize(
    ("members", "max_members", "version", "why_not"),
    [
        (1, 10, PROTOCOL_VERSION, None),
        (9, 10, PROTOCOL_VERSION, None),
        (10, 10, PROTOCOL_VERSION, "full"),
        (1, 10, PROTOCOL_VERSION + 1, f"needs protocol version {PROTOCOL_VERSION + 1}"),
        (10, 10, 0, "needs protocol version 0"),
    ],
)
def test_joinable_only_when_not_full_and_same_protocol_version(
    members: int, max_members: int, version: int, why_not: str | None
) -> None:
    txt = {"id": "s", "name": "N", "host": "H", "members": str(members)}
    txt |= {"max": str(max_members), "v": str(version)}
    session = session_from_record("X", txt, ["10.0.0.1"], 1)
    assert session is not None
    assert (session.joinable, session.why_not) == (why_not is None, why_not)


def test_a_garbled_fingerprint_is_treated_as_unknown() -> None:
    short = session_from_record("X", {**COMPLETE, "tls": "1", "fp": "ab12"}, ["10.0.0.1"], 1)
    assert short is not None
    assert (short.encrypted, short.fingerprint) == (True, None)


# Writing a record --------------------------------------------------------------------


def test_the_txt_says_how_the_session_is_protected_and_never_the_pin() -> None:
    fingerprint = "0123456789abcdef" * 4
    txt = txt_record(info(), 2, 7, Security(fingerprint=fingerprint, pin_required=True))
    assert txt == {
        "tls": "1",
        "fp": fingerprint,
        "pin": "1",
        "id": "k3v9q2",
        "name": "Friday",
        "host": "Grace",
        "members": "2",
        "max": "10",
        "v": str(PROTOCOL_VERSION),
        "rev": "7",
    }
    plain = txt_record(info(), 2, 1)
    assert (plain["tls"], plain["pin"]) == ("0", "0")
    assert "fp" not in plain


def test_a_record_reads_back_as_the_session_it_was_written_for() -> None:
    fingerprint = "ab12" * 16
    txt = txt_record(info(), 3, 2, Security(fingerprint=fingerprint, pin_required=True))
    assert session_from_record("Friday", txt, ["192.168.1.20"], 8080) == DiscoveredSession(
        key="Friday",
        session_id="k3v9q2",
        name="Friday",
        host_name="Grace",
        addresses=("192.168.1.20",),
        port=8080,
        members=3,
        max_members=10,
        protocol_version=PROTOCOL_VERSION,
        joinable=True,
        encrypted=True,
        fingerprint=fingerprint,
        pin_required=True,
    )


def test_a_resolved_service_reads_as_its_record() -> None:
    txt = txt_record(info(), 1, 1)
    service = AsyncServiceInfo(
        SERVICE_TYPE,
        f"Friday.{SERVICE_TYPE}",
        port=8080,
        properties=txt,
        parsed_addresses=["10.0.0.1", "::1"],
    )
    assert session_from_service("Friday", service) == session_from_record(
        "Friday", txt, ["10.0.0.1", "::1"], 8080
    )


def test_each_txt_string_fits_in_255_bytes_without_splitting_a_character() -> None:
    long = info(name="é" * 100, session_id="i" * 128, host_name="ü" * 64)
    txt = txt_record(long, 1, 1)
    for key, value in txt.items():
        assert len(f"{key}={value}".encode()) <= 255
    assert txt["name"] == "é" * 100  # 200 bytes: fits whole
    assert set(txt["host"]) == {"ü"}


# Names ---------------------------------------------------------------------------------


def test_instance_names_are_one_label_that_fits_a_rename_suffix() -> None:
    assert instance_name("Friday.night  jam") == "Friday night jam"
    assert instance_name(" . ") == "LOUDSYNC session"
    assert len(instance_name("x" * 80).encode()) == 56
    fitted = instance_name("é" * 40)
    assert len(fitted.encode()) <= 56
    assert set(fitted) == {"é"}


def test_the_instance_label_is_the_key_of_a_service_name() -> None:
    assert instance_of(f"Friday night jam.{SERVICE_TYPE}") == "Friday night jam"
    assert instance_of(f"Friday.{SERVICE_TYPE.upper()}") == "Friday"
    assert instance_of("Elsewhere._other._tcp.local.") == "Elsewhere._other._tcp.local."


def test_each_session_gets_a_host_name_of_its_own() -> None:
    assert server_name("K3V9Q2") == "loudsync-k3v9q2.local."
    assert server_name("a b/c") == "loudsync-a-b-c.local."
    assert server_name("!!!") == "loudsync-session.local."
    assert server_name("a") != server_name("b")
