"""Small TLS buffers for the connections of the host's `wss://` server.

Issue "TLS at the cost of plain": a TLS guest cost the host about 314 KiB where a plain
one costs 17 KiB. Besides OpenSSL's own state for a connection (about 17 KiB), two
buffers of asyncio's TLS layer (`asyncio.sslproto.SSLProtocol`, CPython 3.11 to 3.13)
made the difference:

- The read buffer. `SSLProtocol.__init__` gives every connection a zero-filled buffer of
  `max_size`, 256 KiB, kept for the connection's life. It is scratch space only: the
  socket transport asks `get_buffer()` for it, reads into it and at once calls
  `buffer_updated()`, whose first step copies the bytes into OpenSSL's incoming memory
  BIO. The event loop does one such read at a time, so all the connections of a thread
  can share one buffer, as uvloop does for all its sockets, and one TLS record's worth is
  enough: `max_size` also sets what the copying read path (`_do_read__copied`, which
  `websockets` uses) asks `sslobj.read()` for, and OpenSSL returns at most one record (16
  KiB of plaintext) per call anyway. Reading is faster for it: `sslobj.read(256 KiB)`
  allocated 256 KiB for every record.
- The outgoing memory BIO. Each write is encrypted into it whole before it goes on to the
  socket, and it keeps the size of the largest write it ever held (OpenSSL's BUF_MEM never
  shrinks): one MEMBER_LIST of a 300-member session left about 60 KiB on the connection
  for good, so the host's memory grew with the square of the session's size. Handing the
  TLS layer one record's plaintext (`TLS_WRITE_PIECE`) at a time, each sent on before the
  next, bounds it at about 21 KiB (as long as the socket takes what it is given; what
  waits for a guest that stopped reading waits there, up to `max_write_buffer`). OpenSSL
  cuts a write into records of that size anyway, so the records on the wire are the same;
  audio frames (20 ms: under 4 KiB) go whole as before, and a frame larger than a record
  is sent as fast, for a little more CPU.

A write also skips the TLS layer's queue when nothing waits in it (`write_through`): it
is encrypted and handed to the socket at once, as asyncio's `_do_write` would, without
the queue, its size bookkeeping and flow-control checks (four Python calls a write).
Handing one MEMBER_JOINED to 1,000 TLS guests took the host 14.5, 19.7 and 14.6 ms this
way against 16.7, 22.2 and 16.6 before (`python -m benchmarks.broadcast --guests 1000
--transport wss`, three runs each, alternated).

All of this is set for the host's server only, per connection (`HostConnection` in server.py),
never on the `SSLProtocol` class, which every TLS connection of the process (a guest's
included) shares. The read buffer is switched in `connection_made`, which asyncio calls
once the handshake is done: the 256 KiB one lives through the handshake only
(`ssl_handshake_timeout` at most). This touches private attributes, so it checks that they
are there with the types expected; anything else (another Python, uvloop's own TLS layer)
is left as it is.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import threading
from asyncio import sslproto
from typing import Any

log = logging.getLogger(__name__)

TLS_RECORD_MAX = 16 * 1024 + 256 + 5
"""The largest TLS 1.3 record on the wire: 16 KiB of plaintext, its expansion, the header.
(A TLS 1.2 record with a CBC cipher may be a little larger: it takes two reads, no harm.)"""

TLS_READ_BUFFER = TLS_RECORD_MAX
"""Bytes read from the socket at a time on the host's TLS connections (asyncio: 256 KiB),
into one buffer per thread."""

TLS_WRITE_PIECE = 16 * 1024
"""The most bytes handed to the TLS layer at once on the host's TLS connections: one
record's plaintext, so OpenSSL's outgoing BIO holds one record at most."""

_per_thread = threading.local()


def shared_tls_read_buffer() -> memoryview:
    """A view of this thread's TLS read buffer, `TLS_READ_BUFFER` bytes, made on first use."""
    view: memoryview | None = getattr(_per_thread, "view", None)
    if view is None:
        view = _per_thread.view = memoryview(bytearray(TLS_READ_BUFFER))
    return view


_WRITE_STATE = {
    "_state": sslproto.SSLProtocolState,
    "_write_backlog": collections.deque,
    "_ssl_writing_paused": bool,
    "_app_writing_paused": bool,
    "_sslobj": ssl.SSLObject,
    "_outgoing": ssl.MemoryBIO,
}
"""What `write_through` reads of asyncio's TLS layer, and the types it expects."""


def use_small_tls_buffers(transport: asyncio.BaseTransport) -> sslproto.SSLProtocol | None:
    """Have the TLS layer under `transport` read through the thread's shared buffer; that
    layer if it does now, and then writes to `transport` should go through
    `write_in_pieces` with it. Plain transports, and TLS layers not built as expected, are
    left as they are (None). Call it on the loop's thread, once the handshake is done."""
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if not isinstance(ssl_protocol, sslproto.SSLProtocol):
        if transport.get_extra_info("sslcontext") is not None:
            log.debug("TLS transport %r is not asyncio's SSLProtocol; left as is", transport)
        return None
    state: Any = ssl_protocol  # `max_size` is a class variable in the stubs
    if not (
        isinstance(getattr(state, "max_size", None), int)
        and isinstance(getattr(state, "_ssl_buffer", None), bytearray)
        and isinstance(getattr(state, "_ssl_buffer_view", None), memoryview)
        and all(isinstance(getattr(state, k, None), t) for k, t in _WRITE_STATE.items())
    ):
        log.debug("asyncio's SSLProtocol is not built as expected; left as is")
        return None
    view = shared_tls_read_buffer()
    # get_buffer() makes a buffer of its own only when this one is shorter than what it
    # hands out, which max_size bounds. The socket transport may still hold a view of the
    # old buffer while the handshake's last read unwinds; it is freed when that returns.
    state.max_size = min(state.max_size, len(view))
    state._ssl_buffer = view.obj
    state._ssl_buffer_view = view
    return ssl_protocol


def write_through(tls: sslproto.SSLProtocol, data: bytes | memoryview) -> bool:
    """Encrypt `data` and hand it to the socket now, as asyncio's TLS layer does with a
    write when its queue is empty; False, with nothing done, unless the layer is open with
    nothing queued and the socket taking more (then the usual way keeps the order)."""
    layer: Any = tls
    socket_transport = layer._transport
    if (
        layer._state is not sslproto.SSLProtocolState.WRAPPED
        or layer._write_backlog
        or layer._ssl_writing_paused
        or layer._app_writing_paused
        or socket_transport is None
    ):
        return False
    try:
        layer._sslobj.write(data)
    except ssl.SSLError:
        return False  # nothing was taken (all or nothing here); the usual way reports it
    socket_transport.write(layer._outgoing.read())
    return True


def write_in_pieces(
    transport: asyncio.WriteTransport, data: bytes, tls: sslproto.SSLProtocol
) -> None:
    """Write `data` in pieces of at most `TLS_WRITE_PIECE` bytes, in order, without copying,
    each through `tls` at once where it can (`write_through`); none once the transport is
    closing (the TLS layer would drop them, counting each)."""
    if len(data) <= TLS_WRITE_PIECE:
        if not write_through(tls, data):
            transport.write(data)
        return
    view = memoryview(data)
    for start in range(0, len(view), TLS_WRITE_PIECE):
        if transport.is_closing():
            return
        piece = view[start : start + TLS_WRITE_PIECE]
        if not write_through(tls, piece):
            transport.write(piece)
