"""Identity proofs at JOIN (issue 16, item 4): the host core's checks on a fake clock, the
guest core's signing, and the pure key functions."""

from __future__ import annotations

from typing import Any

import msgspec

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.effects import Broadcast, Close, HostEffect, Log, Send
from loudsync_tui.core.guest import GuestSession, HostFacts, Transmit
from loudsync_tui.core.host import HostSession
from loudsync_tui.protocol import (
    CloseCode,
    DeviceInfo,
    Error,
    ErrorCode,
    Heartbeat,
    Join,
    JoinProof,
    MemberJoined,
    MemberLeft,
    MemberList,
    Welcome,
    decode,
    encode,
)
from loudsync_tui.security.device_key import (
    DeviceKey,
    device_id_of,
    from_b64url,
    is_key_id,
    join_payload,
    sign_join,
    verify_join,
)

SID = "k3v9q2"
FP = "AB:CD" + "ef" * 30
T = 1_764_086_400_000


class Host:
    def __init__(self, fingerprint: str | None = FP, **changes: Any) -> None:
        config = HostConfig(session_name="Friday", host_name="Grace", host_id="k-host", **changes)
        self.core = HostSession(config, SID, ManualClock(), fingerprint=fingerprint)
        self.nonces: dict[int, str] = {}

    def open(self, conn: int, challenge: str | None = None) -> None:
        self.nonces[conn] = challenge or f"nonce-{conn}"
        address = f"10.0.0.{conn}:5000"
        assert self.core.connected(conn, address, challenge=self.nonces[conn]) == []

    def join(
        self,
        conn: int,
        key: DeviceKey | None,
        *,
        device_id: str | None = None,
        nonce: str | None = None,
        fingerprint: str | None = FP,
        session_id: str = SID,
        token: str | None = None,
        opened: bool = False,
    ) -> list[HostEffect]:
        if not opened:
            self.open(conn)
        device_id = device_id or (key.device_id if key else f"dev-{conn}")
        proof = None
        if key is not None:
            signed = sign_join(
                key.private, nonce or self.nonces[conn], session_id, fingerprint, device_id
            )
            proof = JoinProof(public_key=signed.public_key, signature=signed.signature)
        join = Join(
            timestamp=T,
            session_id=SID,
            protocol_version=1,
            device=DeviceInfo(device_id, "Ada", "terminal"),
            resume_token=token,
            proof=proof,
        )
        return self.core.received(conn, encode(join))


def refused(effects: list[HostEffect], conn: int) -> str:
    sends = [e for e in effects if isinstance(e, Send)]
    assert len(sends) == 1
    error = sends[0].message
    assert isinstance(error, Error)
    assert error.code is ErrorCode.UNAUTHORIZED
    assert Close(conn, CloseCode.JOIN_REFUSED, "UNAUTHORIZED") in effects
    return error.message


def welcome(effects: list[HostEffect]) -> Welcome:
    found = [e.message for e in effects if isinstance(e, Send) and isinstance(e.message, Welcome)]
    assert len(found) == 1, effects
    return found[0]


# Pure key functions -------------------------------------------------------------------


def test_the_id_is_derived_from_the_public_key() -> None:
    key = DeviceKey.generate()
    assert key.device_id == device_id_of(key.public)
    assert key.device_id.startswith("k-")
    assert len(key.device_id) == 28
    assert key.device_id == key.device_id.lower()
    assert is_key_id(key.device_id)
    assert not is_key_id("dev-ada")
    assert DeviceKey.generate().device_id != key.device_id
    assert "private" not in repr(key) or key.private.hex() not in repr(key)


def test_the_payload_binds_nonce_session_fingerprint_and_id() -> None:
    payload = join_payload("n1", SID, "AB CD:ef", "k-x")
    assert payload == b"loudsync-join-v1\nn1\nk3v9q2\nabcdef\nk-x"
    assert join_payload("n1", SID, None, "k-x").split(b"\n")[3] == b"-"


def test_verify_join_says_why_a_proof_fails() -> None:
    key, other = DeviceKey.generate(), DeviceKey.generate()
    signed = sign_join(key.private, "n1", SID, FP, key.device_id)
    args: dict[str, Any] = {
        "nonce": "n1",
        "session_id": SID,
        "fingerprint": FP,
        "device_id": key.device_id,
    }
    assert verify_join(signed.public_key, signed.signature, **args) is None
    assert verify_join(signed.public_key, signed.signature, **(args | {"nonce": "n2"}))
    assert verify_join(signed.public_key, signed.signature, **(args | {"session_id": "s2"}))
    assert verify_join(signed.public_key, signed.signature, **(args | {"fingerprint": None}))
    stolen = args | {"device_id": other.device_id}
    assert "derived" in str(verify_join(signed.public_key, signed.signature, **stolen))
    assert verify_join("not base64 !", signed.signature, **args) == "malformed public key"
    assert verify_join(signed.public_key[:-4], signed.signature, **args) == "malformed public key"
    assert verify_join(signed.public_key, signed.signature[:-4], **args)
    assert len(from_b64url(signed.signature)) == 64


# Host core ------------------------------------------------------------------------------


def test_a_proven_join_is_admitted_and_marked_proven() -> None:
    h = Host()
    key = DeviceKey.generate()
    effects = h.join(1, key)
    welcome(effects)
    member_list = [e.message for e in effects if isinstance(e, Send)][1]
    assert isinstance(member_list, MemberList)
    host_row, ada = member_list.members
    assert ada.id == key.device_id
    assert ada.proven is True
    assert host_row.proven is msgspec.UNSET
    assert '"proven":true' in encode(member_list)
    assert encode(member_list).count('"proven"') == 1  # the host row carries none


def test_a_join_without_proof_is_refused_unless_the_host_allows_it() -> None:
    message = refused(Host().join(1, None, device_id="dev-old"), 1)
    assert message == "this host requires a device key (update the app)"
    h = Host(allow_unproven=True)
    welcome(h.join(1, None, device_id="dev-old"))
    assert [m.proven for m in h.core.members] == [msgspec.UNSET, False]


def test_an_unproven_guest_may_not_use_a_key_derived_id() -> None:
    h = Host(allow_unproven=True)
    key = DeviceKey.generate()
    assert "k-" in refused(h.join(1, None, device_id=key.device_id), 1)
    assert "k-" in refused(h.join(2, None, device_id="k-anything"), 2)
    welcome(h.join(3, key))  # the key's holder still can


def test_an_id_that_is_not_the_keys_is_refused() -> None:
    h = Host(allow_unproven=True)
    ada, mallory = DeviceKey.generate(), DeviceKey.generate()
    effects = h.join(1, mallory, device_id=ada.device_id)
    assert refused(effects, 1) == "identity proof failed"
    logs = [e.text for e in effects if isinstance(e, Log)]
    assert any("derived" in text for text in logs)
    assert refused(h.join(2, mallory, device_id="dev-ada"), 2) == "identity proof failed"
    assert [m.id for m in h.core.members] == ["k-host"]


def test_a_proof_for_another_nonce_session_or_host_is_refused() -> None:
    h = Host()
    key = DeviceKey.generate()
    assert refused(h.join(1, key, nonce="nonce-9"), 1) == "identity proof failed"
    assert refused(h.join(2, key, session_id="other"), 2) == "identity proof failed"
    assert refused(h.join(3, key, fingerprint="00" * 32), 3) == "identity proof failed"
    assert refused(h.join(4, key, fingerprint=None), 4) == "identity proof failed"
    welcome(h.join(5, key))


def test_a_plain_host_checks_against_no_fingerprint() -> None:
    h = Host(fingerprint=None)
    key = DeviceKey.generate()
    assert refused(h.join(1, key, fingerprint=FP), 1) == "identity proof failed"
    welcome(h.join(2, key, fingerprint=None))


def test_a_proof_on_a_connection_without_a_challenge_is_refused() -> None:
    h = Host()
    key = DeviceKey.generate()
    h.core.connected(1, "10.0.0.1:5000")
    h.nonces[1] = "guessed"
    assert refused(h.join(1, key, opened=True), 1) == "identity proof failed"


def test_the_proof_is_checked_before_bans_so_a_ban_names_the_key() -> None:
    h = Host()
    ada, mallory = DeviceKey.generate(), DeviceKey.generate()
    welcome(h.join(1, mallory))
    h.core.kick(mallory.device_id)
    h.core.disconnected(1)
    assert h.core.banned == {mallory.device_id}
    # Mallory's key is banned under any name; claiming Ada's id fails the proof first.
    assert refused(h.join(2, mallory), 2) == "this device was removed by the host"
    assert refused(h.join(3, mallory, device_id=ada.device_id), 3) == "identity proof failed"
    welcome(h.join(4, ada))


def test_too_many_wrong_pins_answer_before_the_proof() -> None:
    h = Host(pin="482913", allow_unproven=True)
    for conn in range(1, 6):
        h.core.connected(conn, "10.0.0.1:5000", challenge=f"n{conn}")
        join = Join(
            timestamp=T,
            session_id=SID,
            protocol_version=1,
            device=DeviceInfo(f"dev-{conn}", "G", "t"),
            pin="000000",
        )
        assert "wrong PIN" in refused(h.core.received(conn, encode(join)), conn)
    h.core.connected(9, "10.0.0.1:6000", challenge="n9")
    h.nonces[9] = "n9"
    effects = h.join(9, DeviceKey.generate(), nonce="elsewhere", opened=True)
    sends = [e.message for e in effects if isinstance(e, Send)]
    assert isinstance(sends[0], Error)
    assert sends[0].code is ErrorCode.RATE_LIMITED


def test_a_resume_must_prove_the_key_on_the_new_connection() -> None:
    h = Host()
    key = DeviceKey.generate()
    token = welcome(h.join(1, key)).resume_token
    assert h.core.received(1, encode(Heartbeat(timestamp=T))) == []
    h.core.disconnected(1)
    # The token alone, or a proof replayed from the old connection, does not resume.
    assert refused(h.join(2, None, device_id=key.device_id, token=token), 2).startswith(
        "this host requires"
    )
    replayed = h.join(3, key, nonce="nonce-1", token=token)
    assert refused(replayed, 3) == "identity proof failed"
    resumed = h.join(4, key, token=token)
    assert welcome(resumed).resume_token == token
    assert any(isinstance(e, Log) and "resumed" in e.text for e in resumed)


def test_a_proven_join_without_the_token_takes_a_held_place_over_as_a_fresh_join() -> None:
    """A guest whose link fell before WELCOME reached it has no token: not locked out."""
    h = Host()
    watcher, key = DeviceKey.generate(), DeviceKey.generate()
    welcome(h.join(1, watcher))
    h.core.received(1, encode(Heartbeat(timestamp=T)))
    welcome(h.join(2, key))
    h.core.disconnected(2)  # before it said anything: the place is held all the same
    assert key.device_id in [m.id for m in h.core.members]
    again = h.join(3, key)  # proven, no token
    welcome(again)
    to_watcher = [e.message for e in again if isinstance(e, Broadcast) and 1 in e.conns]
    assert [type(m) for m in to_watcher] == [MemberLeft, MemberJoined]  # leave, then join
    assert [m.id for m in h.core.members].count(key.device_id) == 1


def test_an_unproven_join_cannot_take_a_held_place_over() -> None:
    h = Host(allow_unproven=True)
    welcome(h.join(1, None, device_id="dev-a"))
    h.core.received(1, encode(Heartbeat(timestamp=T)))
    h.core.disconnected(1)
    effects = h.join(2, None, device_id="dev-a")
    (error,) = [e.message for e in effects if isinstance(e, Send)]
    assert isinstance(error, Error)
    assert error.code is ErrorCode.ALREADY_JOINED


# Guest core -----------------------------------------------------------------------------


PLAIN_HOST = HostFacts(SID, "k-host", "Friday", "Grace", "10.0.0.1:8080", False, None)


def _guest(key: DeviceKey | None) -> GuestSession:
    config = GuestConfig(
        address="mem",
        name="Ada",
        device_id=key.device_id if key else "dev-ada",
        device_key=key.private if key else None,
    )
    return GuestSession(config, SID, ManualClock())


def _sent_join(effects: list[Any]) -> Join:
    joins = [e.message for e in effects if isinstance(e, Transmit)]
    assert len(joins) == 1
    join = decode(encode(joins[0]))
    assert isinstance(join, Join)
    return join


def test_the_guest_signs_the_challenge_with_its_key() -> None:
    key = DeviceKey.generate()
    guest = _guest(key)
    guest.start()
    guest.host_answered(PLAIN_HOST)
    join = _sent_join(guest.opened(challenge="n1", fingerprint=FP))
    assert join.proof is not None
    assert join.device.id == key.device_id
    check = {"session_id": SID, "fingerprint": FP, "device_id": key.device_id}
    assert verify_join(join.proof.public_key, join.proof.signature, nonce="n1", **check) is None
    assert verify_join(join.proof.public_key, join.proof.signature, nonce="n2", **check)


def test_the_guest_joins_unproven_without_a_key_or_a_challenge() -> None:
    keyless = _guest(None)
    keyless.start()
    keyless.host_answered(PLAIN_HOST)
    assert _sent_join(keyless.opened(challenge="n1")).proof is None
    phase1_host = _guest(DeviceKey.generate())
    phase1_host.start()
    phase1_host.host_answered(PLAIN_HOST)
    assert _sent_join(phase1_host.opened()).proof is None


def test_the_guest_config_never_shows_its_key() -> None:
    key = DeviceKey.generate()
    config = GuestConfig(address="a", name="Ada", device_id=key.device_id, device_key=key.private)
    assert key.private.hex() not in repr(config)
    assert repr(key.private) not in repr(config)
    assert repr(key.private) not in repr(key)
