"""A raw client that speaks only the wire format, to check exactly what the host sends."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from loudsync_tui.protocol import (
    PROTOCOL_VERSION,
    DeviceInfo,
    Heartbeat,
    Join,
    JoinProof,
    MemberList,
    Message,
    decode,
    encode,
    now_ms,
)
from loudsync_tui.security.certificate import client_context
from loudsync_tui.security.device_key import CHALLENGE_HEADER, DeviceKey, sign_join

M = TypeVar("M")


class RawGuest:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._beats: asyncio.Task[None] | None = None

    def keep_alive(self, interval: float = 0.1) -> None:
        """Send HEARTBEAT every `interval` seconds in the background, as a real guest does."""

        async def beat() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await self.send(Heartbeat(timestamp=now_ms()))
                    await asyncio.sleep(interval)

        self._beats = asyncio.create_task(beat())

    @classmethod
    async def connect(cls, port: int, *, tls: bool = False, **kwargs: object) -> RawGuest:
        """Connected (over `wss://` with `tls`, the certificate unchecked), not joined."""
        if tls:
            kwargs["ssl"] = client_context()
        url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/"
        ws = await connect(url, ping_interval=None, **kwargs)  # type: ignore[arg-type]
        return cls(ws)

    @classmethod
    async def joined(
        cls, port: int, device_id: str, name: str = "Raw", *, key: DeviceKey | None = None
    ) -> RawGuest:
        """Connected and joined, with WELCOME and MEMBER_LIST already read."""
        guest = await cls.connect(port)
        await guest.join(device_id, name, key=key)
        await guest.recv_type(MemberList)
        return guest

    @property
    def challenge(self) -> str | None:
        """The nonce the host put in this connection's handshake response."""
        response = self.ws.response
        return None if response is None else response.headers.get(CHALLENGE_HEADER)

    def proof(
        self,
        key: DeviceKey,
        device_id: str,
        session_id: str = "sess1",
        *,
        challenge: str | None = None,
        fingerprint: str | None = None,
    ) -> JoinProof:
        """`key`'s proof for `device_id`, over this connection's challenge unless another
        is given (to replay one); `fingerprint` is the host's, None for plain ws://."""
        nonce = challenge if challenge is not None else self.challenge
        assert nonce is not None, "the host sent no challenge"
        signed = sign_join(key.private, nonce, session_id, fingerprint, device_id)
        return JoinProof(public_key=signed.public_key, signature=signed.signature)

    async def send(self, message: Message | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else encode(message))

    async def join(
        self,
        device_id: str,
        name: str = "Raw",
        session_id: str = "sess1",
        resume_token: str | None = None,
        version: int = PROTOCOL_VERSION,
        *,
        key: DeviceKey | None = None,
        proof: JoinProof | None = None,
        audio: bool | None = None,
    ) -> None:
        """JOIN; signed with `key` (or carrying `proof` as given), else unproven (Phase 1)."""
        if proof is None and key is not None:
            proof = self.proof(key, device_id, session_id)
        await self.send(
            Join(
                timestamp=now_ms(),
                session_id=session_id,
                protocol_version=version,
                device=DeviceInfo(device_id, name, "raw"),
                resume_token=resume_token,
                proof=proof,
                audio=audio,
            )
        )

    async def recv(self, timeout: float = 5.0) -> Message:
        async with asyncio.timeout(timeout):
            return decode(await self.ws.recv())

    async def recv_type(self, kind: type[M], timeout: float = 5.0) -> M:
        """The next message of `kind`, skipping others (e.g. MEMBER_UPDATED)."""
        async with asyncio.timeout(timeout):
            while True:
                message = decode(await self.ws.recv())
                if isinstance(message, kind):
                    return message

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the close and return its code (None when no close frame came)."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed:
                pass
        rcvd = self.ws.protocol.close_rcvd
        return None if rcvd is None else rcvd.code

    async def close(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
        await self.ws.close()
