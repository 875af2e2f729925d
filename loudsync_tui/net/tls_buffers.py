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

Both are set for the host's server only, per connection (`HostConnection` in server.py),
never on the `SSLProtocol` class, which every TLS connection of the process (a guest's
included) shares. The read buffer is switched in `connection_made`, which asyncio calls
once the handshake is done: the 256 KiB one lives through the handshake only
(`ssl_handshake_timeout` at most). This touches private attributes, so it checks that they
are there with the types expected; anything else (another Python, uvloop's own TLS layer)
is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
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


def use_small_tls_buffers(transport: asyncio.BaseTransport) -> bool:
    """Have the TLS layer under `transport` read through the thread's shared buffer; True
    if it does now, and then writes to `transport` should go through `write_in_pieces`.
    Plain transports, and TLS layers not built as expected, are left as they are (False).
    Call it on the loop's thread, once the handshake is done."""
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if not isinstance(ssl_protocol, sslproto.SSLProtocol):
        if transport.get_extra_info("sslcontext") is not None:
            log.debug("TLS transport %r is not asyncio's SSLProtocol; left as is", transport)
        return False
    state: Any = ssl_protocol  # `max_size` is a class variable in the stubs
    if not (
        isinstance(getattr(state, "max_size", None), int)
        and isinstance(getattr(state, "_ssl_buffer", None), bytearray)
        and isinstance(getattr(state, "_ssl_buffer_view", None), memoryview)
    ):
        log.debug("asyncio's SSLProtocol has no read buffer as expected; left as is")
        return False
    view = shared_tls_read_buffer()
    # get_buffer() makes a buffer of its own only when this one is shorter than what it
    # hands out, which max_size bounds. The socket transport may still hold a view of the
    # old buffer while the handshake's last read unwinds; it is freed when that returns.
    state.max_size = min(state.max_size, len(view))
    state._ssl_buffer = view.obj
    state._ssl_buffer_view = view
    return True


def write_in_pieces(transport: asyncio.WriteTransport, data: bytes) -> None:
    """Write `data` in pieces of at most `TLS_WRITE_PIECE` bytes, in order, without copying;
    none once the transport is closing (the TLS layer would drop them, counting each)."""
    if len(data) <= TLS_WRITE_PIECE:
        transport.write(data)
        return
    view = memoryview(data)
    for start in range(0, len(view), TLS_WRITE_PIECE):
        if transport.is_closing():
            return
        transport.write(view[start : start + TLS_WRITE_PIECE])
