"""The one interface every transport hands to the transfer engine.

A transport (In-Band Bytestreams, SOCKS5, the ICE data channel) is negotiated by
the Jingle session; once connected it is nothing more than an ordered, reliable
byte pipe in one direction or both.  Jingle file transfer (XEP-0234 §4) puts raw
file bytes on it with no framing, so the receiver stops after ``size`` bytes.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


@runtime_checkable
class ByteStream(Protocol):
    """An ordered, reliable byte stream between the two peers.

    ``send`` returns once the bytes are accepted by the transport (it applies
    back-pressure: it waits while the transport's buffer is full).  ``receive``
    returns at most ``max_bytes`` bytes, at least one, or ``b""`` at end of
    stream.  Both raise :class:`jinglefs.errors.StreamClosed` (or another
    :class:`jinglefs.errors.TransportError`) when the stream breaks.
    """

    async def send(self, data: bytes | memoryview) -> None: ...

    async def receive(self, max_bytes: int) -> bytes: ...

    async def aclose(self) -> None: ...


class MemoryStream:
    """One end of an in-memory stream pair (tests and benchmarks only)."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self._peer: MemoryStream | None = None
        self._buffer = bytearray()
        self._limit = limit
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._eof = False
        self.closed = False

    async def send(self, data: bytes | memoryview) -> None:
        from .errors import StreamClosed

        peer = self._peer
        if self.closed or peer is None or peer.closed:
            raise StreamClosed("stream is closed")
        while len(peer._buffer) >= peer._limit:
            peer._writable.clear()
            await peer._writable.wait()
            if peer.closed:
                raise StreamClosed("stream is closed")
        peer._buffer += data
        peer._readable.set()

    async def receive(self, max_bytes: int) -> bytes:
        while not self._buffer and not self._eof:
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        self._writable.set()
        return data

    async def aclose(self) -> None:
        self.closed = True
        self._writable.set()
        if self._peer is not None:
            self._peer._eof = True
            self._peer._readable.set()


def memory_stream_pair(limit: int = 1 << 20) -> tuple[MemoryStream, MemoryStream]:
    """Two connected in-memory streams: what one sends, the other receives."""
    a, b = MemoryStream(limit), MemoryStream(limit)
    a._peer, b._peer = b, a
    return a, b
