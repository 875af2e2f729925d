"""Where a guest connects: `HOST[:PORT]` or a ws:// URL, and the session id behind it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from loudsync_tui.config import DEFAULT_PORT
from loudsync_tui.net.server import SESSION_INFO_PATH


class AddressError(ValueError):
    """An address a person typed that cannot be used; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class HostAddress:
    host: str
    port: int

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.netloc}/"

    @property
    def info_url(self) -> str:
        return f"http://{self.netloc}{SESSION_INFO_PATH}"


def parse_address(text: str) -> HostAddress:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` or `ws://HOST:PORT/`; the port defaults to 8080."""
    text = text.strip()
    if not text:
        raise AddressError("no address given; expected HOST[:PORT], e.g. 192.168.1.20:8080")
    if "://" not in text:
        if text.count(":") > 1 and not text.startswith("["):
            text = f"[{text}]"  # a bare IPv6 address
        text = f"ws://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise AddressError(f"bad address {text!r}: {exc}") from None
    if parts.scheme not in ("ws", "http"):
        raise AddressError(f"unsupported scheme {parts.scheme!r}; use HOST[:PORT] or ws://")
    if not parts.hostname:
        raise AddressError(f"no host in {text!r}; expected HOST[:PORT]")
    return HostAddress(parts.hostname, port or DEFAULT_PORT)


class SessionLookupError(Exception):
    """The host could not tell us its session id."""


async def fetch_session_id(address: HostAddress, wait: float) -> str:
    """Ask the host (HTTP GET /session on the same port) which session it runs."""

    def get() -> bytes:
        with urllib.request.urlopen(address.info_url, timeout=wait) as response:
            body: bytes = response.read(64 * 1024)
            return body

    try:
        body = await asyncio.to_thread(get)
        session_id = json.loads(body)["id"]
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, str | OSError) else exc
        raise SessionLookupError(f"no LOUDSYNC host at {address.netloc} ({reason})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SessionLookupError(
            f"{address.netloc} did not answer like a LOUDSYNC host ({exc})"
        ) from None
    if not isinstance(session_id, str) or not session_id:
        raise SessionLookupError(f"{address.netloc} answered without a session id")
    return session_id
