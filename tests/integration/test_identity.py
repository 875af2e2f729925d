"""Device identity on real sockets (issue 16, item 4): an id is proven by its key at JOIN,
so nobody can take a member's id, be banned in its name, or replay its proof."""

from __future__ import annotations

import json
from pathlib import Path

from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import (
    CloseCode,
    Error,
    ErrorCode,
    Leave,
    MemberList,
    Welcome,
    decode,
    now_ms,
)
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import ConnectionState
from loudsync_tui.tui.format import device
from tests.integration.conftest import GuestFactory, HostFactory
from tests.support.raw import RawGuest
from tests.support.waiting import until


async def _refused(raw: RawGuest) -> Error:
    """The JOIN was refused: ERROR UNAUTHORIZED, then close 4001."""
    reply = await raw.recv()
    assert isinstance(reply, Error), reply
    assert reply.code is ErrorCode.UNAUTHORIZED
    assert await raw.closed() == CloseCode.JOIN_REFUSED
    return reply


async def _leave(raw: RawGuest) -> None:
    await raw.send(Leave(timestamp=now_ms()))
    assert await raw.closed() == CloseCode.NORMAL


async def _strict_host(make_host: HostFactory, **changes: object) -> HostService:
    return await make_host(allow_unproven=False, **changes)


async def test_nobody_takes_the_id_of_a_member_who_left(make_host: HostFactory) -> None:
    host = await _strict_host(make_host)
    ada, mallory = DeviceKey.generate(), DeviceKey.generate()
    first = await RawGuest.joined(host.port, ada.device_id, "Ada", key=ada)
    await _leave(first)

    with_her_key = await RawGuest.connect(host.port)
    await with_her_key.join(ada.device_id, "Ada", key=mallory)
    assert (await _refused(with_her_key)).message == "identity proof failed"

    without_key = await RawGuest.connect(host.port)
    await without_key.join(ada.device_id, "Ada")  # a Phase 1 JOIN
    assert "device key" in (await _refused(without_key)).message
    assert ada.device_id not in host.store.get().hosting.members  # type: ignore[union-attr]

    again = await RawGuest.joined(host.port, ada.device_id, "Ada", key=ada)
    await again.close()


async def test_banning_an_impostor_does_not_ban_the_device_she_claimed(
    make_host: HostFactory,
) -> None:
    host = await _strict_host(make_host)
    ada, mallory = DeviceKey.generate(), DeviceKey.generate()
    await _leave(await RawGuest.joined(host.port, ada.device_id, "Ada", key=ada))
    claim = await RawGuest.connect(host.port)
    await claim.join(ada.device_id, "Ada", key=mallory)
    await _refused(claim)
    impostor = await RawGuest.joined(host.port, mallory.device_id, "Ada", key=mallory)
    # The host kicks and bans whoever is called "Ada" now: that is Mallory's key.
    hosting = host.store.get().hosting
    assert hosting is not None
    (named_ada,) = [m.id for m in hosting.members.values() if m.name == "Ada"]
    host.kick(named_ada)
    assert await impostor.closed() == CloseCode.KICKED
    assert host.store.get().hosting.banned == {mallory.device_id}  # type: ignore[union-attr]

    back = await RawGuest.connect(host.port)
    await back.join(mallory.device_id, "Ada", key=mallory)
    assert (await _refused(back)).message == "this device was removed by the host"
    real = await RawGuest.joined(host.port, ada.device_id, "Ada", key=ada)
    await real.close()


async def test_a_proof_made_for_another_connection_is_refused(make_host: HostFactory) -> None:
    host = await _strict_host(make_host)
    ada = DeviceKey.generate()
    seen = await RawGuest.connect(host.port)
    other = await RawGuest.connect(host.port)
    stolen = seen.proof(ada, ada.device_id)  # what a guest sent on its own connection
    assert other.challenge not in (None, seen.challenge)
    await other.join(ada.device_id, "Ada", proof=stolen)
    assert (await _refused(other)).message == "identity proof failed"
    await seen.close()


async def test_a_proof_made_for_another_host_is_refused(
    make_host: HostFactory, tmp_path: Path
) -> None:
    """A host that got a guest's proof cannot use it on another host: the proof signs the
    certificate fingerprint of the host it was made for."""
    host = await _strict_host(make_host, tls=True, key_dir=str(tmp_path / "host"))
    assert host.fingerprint is not None
    ada = DeviceKey.generate()
    for fingerprint in ("ab" * 32, None):
        raw = await RawGuest.connect(host.port, tls=True)
        proof = raw.proof(ada, ada.device_id, fingerprint=fingerprint)
        await raw.join(ada.device_id, "Ada", proof=proof)
        assert (await _refused(raw)).message == "identity proof failed"
    raw = await RawGuest.connect(host.port, tls=True)
    await raw.join(
        ada.device_id, "Ada", proof=raw.proof(ada, ada.device_id, fingerprint=host.fingerprint)
    )
    assert isinstance(await raw.recv(), Welcome)
    await raw.close()


async def test_a_guest_proves_its_key_over_tls_and_resumes_with_a_new_proof(
    make_host: HostFactory, make_guest: GuestFactory, tmp_path: Path
) -> None:
    host = await _strict_host(make_host, tls=True, key_dir=str(tmp_path / "host"))
    key = DeviceKey.generate()
    guest = make_guest(f"127.0.0.1:{host.port}", key=key, trust_new=True)
    state = await until(  # a latency: the host heard it after WELCOME, so it holds a token
        host.store,
        lambda s: (
            s.hosting is not None
            and key.device_id in s.hosting.members
            and s.hosting.members[key.device_id].latency is not None
        ),
    )
    assert state.hosting is not None
    joined = state.hosting.members[key.device_id]
    assert joined.proven is True
    # The link drops; the guest resumes on a new connection, signing its new challenge.
    for ws in host.server._sockets.values():
        ws.transport.abort()
    await until(host.store, lambda s: any("resumed" in e.text for e in s.log))
    state = await until(
        guest.store,
        lambda s: s.guest is not None and s.guest.connection is ConnectionState.CONNECTED,
    )
    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.members[key.device_id].joined_at == joined.joined_at
    assert not any("Refused" in e.text for e in host.store.get().log)


async def test_an_allowing_host_admits_and_marks_an_unproven_guest(
    make_host: HostFactory, make_guest: GuestFactory
) -> None:
    host = await make_host(allow_unproven=True)
    ada = DeviceKey.generate()
    watcher = make_guest(f"127.0.0.1:{host.port}", key=ada)
    await until(
        watcher.store,
        lambda s: s.guest is not None and s.guest.connection is ConnectionState.CONNECTED,
    )

    old = await RawGuest.connect(host.port)
    await old.join("dev-old", "Old client")  # a Phase 1 JOIN: no proof
    assert isinstance(await old.recv(), Welcome)
    frame = json.loads(await old.ws.recv())  # MEMBER_LIST exactly as sent
    assert isinstance(decode(json.dumps(frame)), MemberList)
    marks = {m["id"]: m.get("proven", "absent") for m in frame["members"]}
    assert marks == {"host-grace": "absent", ada.device_id: True, "dev-old": False}

    hosting = host.store.get().hosting
    assert hosting is not None
    assert hosting.members["dev-old"].proven is False
    assert "unproven" in str(device(hosting.members["dev-old"]))
    assert "unproven" not in str(device(hosting.members[ada.device_id]))
    seen = await until(
        watcher.store, lambda s: s.guest is not None and "dev-old" in s.guest.members
    )
    assert seen.guest is not None
    assert seen.guest.members["dev-old"].proven is False
    assert seen.guest.members[ada.device_id].proven is True

    squatter = await RawGuest.connect(host.port)
    await squatter.join(DeviceKey.generate().device_id, "Squatter")  # a k- id without proof
    assert "k-" in (await _refused(squatter)).message
    await old.close()
