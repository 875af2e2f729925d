"""Looking a session up by address: `HOST[:PORT]` or a URL, and what the host says about itself.

Before any WebSocket, the guest asks the host for its session (HTTP GET /session on the
same port, inside TLS when the host speaks it) and notes the certificate's fingerprint,
so it can decide whether to trust the host before sending anything. The reply is a
`SessionAnswer`, held to the protocol's rules for ids and names: an answer that breaks
them (a control character in a name the trust question would show) is refused.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import msgspec

from loudsync_tui.config import DEFAULT_PORT
from loudsync_tui.net.server import SESSION_INFO_PATH
from loudsync_tui.protocol import SessionAnswer
from loudsync_tui.security.certificate import client_context, peer_fingerprint

INFO_LIMIT = 64 * 1024

_answer_decoder: Final = msgspec.json.Decoder(SessionAnswer)


class AddressError(ValueError):
    """An address a person typed that cannot be used; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class HostAddress:
    host: str
    port: int
    tls: bool | None = None
    """True for wss://, False for ws://, None when not said (try TLS first)."""

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def ws_url(self, tls: bool) -> str:
        return f"{'wss' if tls else 'ws'}://{self.netloc}/"


def parse_address(text: str) -> HostAddress:
    """`HOST`, `HOST:PORT`, `[V6]:PORT`, `ws://` or `wss://HOST:PORT/`; port 8080 by default."""
    text = text.strip()
    if not text:
        raise AddressError("no address given; expected HOST[:PORT], e.g. 192.168.1.20:8080")
    if "://" not in text:
        if text.count(":") > 1 and not text.startswith("["):
            text = f"[{text}]"  # a bare IPv6 address
        text = f"tcp://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise AddressError(f"bad address {text!r}: {exc}") from None
    schemes = {"tcp": None, "ws": False, "http": False, "wss": True, "https": True}
    if parts.scheme not in schemes:
        raise AddressError(f"unsupported scheme {parts.scheme!r}; use HOST[:PORT] or wss://")
    if not parts.hostname:
        raise AddressError(f"no host in {text!r}; expected HOST[:PORT]")
    return HostAddress(parts.hostname, port or DEFAULT_PORT, schemes[parts.scheme])


class SessionLookupError(Exception):
    """The host could not tell us about its session."""


@dataclass(frozen=True, slots=True)
class HostAnswer:
    """What the host said at GET /session, and how it said it."""

    session_id: str
    host_id: str
    session_name: str
    host_name: str
    pin_required: bool
    tls: bool
    fingerprint: str | None
    """Of the certificate the host presented; None over plain HTTP."""


async def ask_host(address: HostAddress, tls: bool | None, wait: float) -> HostAnswer:
    """GET /session over TLS (or plain when `tls` is False; None tries TLS, then plain)."""
    if tls is None:
        try:
            return await asyncio.to_thread(_get_info, address, True, wait)
        except _NotTLS:
            return await asyncio.to_thread(_get_info, address, False, wait)
    try:
        return await asyncio.to_thread(_get_info, address, tls, wait)
    except _NotTLS:
        raise SessionLookupError(f"{address.netloc} does not speak TLS") from None


class _NotTLS(Exception):
    pass


def _get_info(address: HostAddress, tls: bool, wait: float) -> HostAnswer:
    conn: http.client.HTTPConnection
    if tls:
        conn = http.client.HTTPSConnection(
            address.host, address.port, timeout=wait, context=client_context()
        )
    else:
        conn = http.client.HTTPConnection(address.host, address.port, timeout=wait)
    try:
        try:
            conn.connect()
        except ssl.SSLError:
            raise _NotTLS from None
        fingerprint = None
        if tls:
            assert isinstance(conn.sock, ssl.SSLSocket)
            fingerprint = peer_fingerprint(conn.sock)
        conn.request("GET", SESSION_INFO_PATH)
        response = conn.getresponse()
        if response.status != 200:
            raise SessionLookupError(
                f"{address.netloc} did not answer like a LOUDSYNC host (HTTP {response.status})"
            )
        answer = decode_answer(response.read(INFO_LIMIT), address)
        return HostAnswer(
            session_id=answer.id,
            host_id=answer.host_id,
            session_name=answer.name,
            host_name=answer.host_name,
            pin_required=answer.pin_required,
            tls=tls,
            fingerprint=fingerprint,
        )
    except ConnectionRefusedError:
        raise SessionLookupError(f"nothing is listening at {address.netloc}") from None
    except TimeoutError:
        raise SessionLookupError(f"{address.netloc} did not answer in {wait:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise SessionLookupError(f"no LOUDSYNC host at {address.netloc} ({exc})") from None
    finally:
        conn.close()


def decode_answer(body: bytes, address: HostAddress) -> SessionAnswer:
    """The reply as a `SessionAnswer`, or SessionLookupError saying what is wrong with it."""
    try:
        return _answer_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise SessionLookupError(_refusal(str(exc), address)) from None
    except msgspec.DecodeError as exc:
        raise SessionLookupError(f"no LOUDSYNC host at {address.netloc} ({exc})") from None
    except RecursionError:
        raise SessionLookupError(
            f"no LOUDSYNC host at {address.netloc} (JSON nested too deeply)"
        ) from None


def _refusal(error: str, address: HostAddress) -> str:
    """msgspec's "Expected `str` of length >= 1 - at `$.hostId`" as a person reads it."""
    netloc = address.netloc
    detail, _, path = error.partition(" - at ")
    missing = re.search(r"missing required field `(\w+)`", detail)
    if missing is not None:
        return f"{netloc} answered without a {missing[1]!r}"
    key = path.strip("`").removeprefix("$.")
    if not key:  # not a JSON object at all
        return f"{netloc} answered without a 'id'"
    if "matching regex" in detail:  # PRINTABLE is the only pattern: say what it means
        # The host id and names are shown in the trust question.
        return f"{netloc} answered a {key!r} with a control character"
    if detail.startswith("Expected `str`") and ("length >= 1" in detail or ", got" in detail):
        return f"{netloc} answered without a {key!r}"
    plain = detail.replace("`", "")
    return f"{netloc} answered a {key!r} that is not allowed ({plain[:1].lower()}{plain[1:]})"
