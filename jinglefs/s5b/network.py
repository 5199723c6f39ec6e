"""SOCKS5 bytestreams over asyncio (XEP-0065, as used by XEP-0260).

* :class:`S5bListener` is our SOCKS5 server for *direct* candidates: it listens on
  the usable local addresses, completes the handshake only for an allowed DST.ADDR,
  and hands the accepted connection over as a :class:`TcpStream`.
* :func:`connect_candidate` / :func:`connect_first` are the client side, used for the
  peer's candidates and for proxies (a proxy speaks the same handshake).
* :class:`TcpStream` is the :class:`jinglefs.streams.ByteStream` both produce.  It
  reads with a plain ``asyncio.Protocol`` (the selector transport reads 256 KiB per
  ``recv`` and hands us the bytes object without another copy) and sends with
  back-pressure.

No XMPP here: proxy discovery and activation are in :mod:`jinglefs.xmpp.s5b`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..errors import CandidatesFailed, StreamClosed, TransportError
from . import wire
from .protocol import S5bCandidate, candidate_priority, sort_by_priority

__all__ = [
    "S5bListener",
    "Socks5Refused",
    "TcpStream",
    "connect_candidate",
    "connect_first",
    "connect_with_fallback",
    "local_addresses",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Stop reading from the socket while this much received data waits for receive().
_HIGH_WATER = 2 * 1024 * 1024
_LOW_WATER = 512 * 1024
#: Transport write buffer limits: send() waits above the high mark.
_WRITE_HIGH = 1024 * 1024
_WRITE_LOW = 256 * 1024
#: Reads smaller than this during a transfer pause reading for _COALESCE_DELAY.
_SMALL_READ = 32 * 1024
_COALESCE_DELAY = 0.001
#: How long aclose() lets queued bytes drain before it resets the connection.
_CLOSE_TIMEOUT = 10.0


class Socks5Refused(TransportError):
    """The SOCKS5 server refused our CONNECT (failure reply, or closed after it)."""


class _StreamProtocol(asyncio.Protocol):
    """Receive queue and write flow control for one TCP connection."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_made: Callable[[_StreamProtocol], None] | None = None,
    ) -> None:
        self._loop = loop
        self._on_made = on_made
        self.transport: asyncio.Transport | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._reading_paused = False
        self._eof = False
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._closed_locally = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.lost_future: asyncio.Future[None] = loop.create_future()
        #: Set once the handshake is over (see data_received).
        self.coalesce = False
        self._coalesce_handle: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol callbacks -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH, low=_WRITE_LOW)
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._reading_paused:
            assert self.transport is not None
            self._reading_paused = True
            self.transport.pause_reading()
        elif (
            self.coalesce
            and len(data) < _SMALL_READ
            and not self._reading_paused
            and self._coalesce_handle is None
        ):
            # A small read during a bulk transfer (a relay forwarding a few KiB at a
            # time): let the kernel gather more before the next read, so the reader
            # gets fewer, bigger chunks (and fewer loop wake-ups).
            assert self.transport is not None
            self.transport.pause_reading()
            self._coalesce_handle = self._loop.call_later(_COALESCE_DELAY, self._coalesce_done)
        self._wake_reader()

    def _coalesce_done(self) -> None:
        self._coalesce_handle = None
        if not self._reading_paused and self.transport is not None and not self._lost:
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return True  # keep our sending half open; aclose() closes the whole connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._coalesce_handle is not None:
            self._coalesce_handle.cancel()
            self._coalesce_handle = None
        self._lost = True
        self._lost_exc = exc
        self._wake_reader()
        self._wake_writer()
        if not self.lost_future.done():
            self.lost_future.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    # -- internals ---------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self, max_bytes: int) -> bytes:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        chunks = self._chunks
        while not chunks:
            if self._closed_locally:
                raise StreamClosed("the stream was closed")
            if self._lost and self._lost_exc is not None:
                raise StreamClosed(f"connection lost: {self._lost_exc}")
            if self._eof or self._lost:
                return b""
            self._read_waiter = self._loop.create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        data = chunks[0]
        if len(data) <= max_bytes:
            chunks.popleft()
        else:
            view = memoryview(data)
            chunks[0] = bytes(view[max_bytes:])
            data = bytes(view[:max_bytes])
        self._buffered -= len(data)
        if self._reading_paused and self._buffered <= _LOW_WATER and self.transport is not None:
            self._reading_paused = False
            if self._coalesce_handle is None:
                self.transport.resume_reading()
        return data

    def unread(self, data: bytes) -> None:
        """Put bytes received past a handshake message back at the front."""
        if data:
            self._chunks.appendleft(data)
            self._buffered += len(data)

    async def send(self, data: bytes | memoryview | bytearray) -> None:
        transport = self.transport
        if self._closed_locally or self._lost or transport is None or transport.is_closing():
            raise StreamClosed("the connection is closed")
        transport.write(data)
        while self._write_paused and not self._lost:
            self._drain_waiter = self._loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self._lost:
            raise StreamClosed(f"connection lost: {self._lost_exc or 'closed by peer'}")

    def write_now(self, data: bytes) -> None:
        """Handshake messages: tiny, no back-pressure needed."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def read_parsed(self, parse: Callable[[bytearray], tuple[T, int] | None]) -> T:
        """Read until ``parse`` accepts a whole message; keep the bytes after it."""
        buf = bytearray()
        while True:
            parsed = parse(buf)
            if parsed is not None:
                message, used = parsed
                self.unread(bytes(buf[used:]))
                return message
            chunk = await self.receive(4096)
            if not chunk:
                raise StreamClosed("connection closed during the SOCKS5 handshake")
            buf += chunk

    def abort(self) -> None:
        self._closed_locally = True
        if self.transport is not None:
            self.transport.abort()
        self._wake_reader()
        self._wake_writer()

    async def aclose(self) -> None:
        if self._closed_locally:
            return
        self._closed_locally = True
        self._wake_reader()
        if self.transport is None:
            return
        self.transport.close()  # sends what is queued, then closes
        try:
            await asyncio.wait_for(asyncio.shield(self.lost_future), _CLOSE_TIMEOUT)
        except TimeoutError:
            self.transport.abort()

    def _address(self, which: str) -> tuple[str, int]:
        name = self.transport.get_extra_info(which) if self.transport is not None else None
        return (str(name[0]), int(name[1])) if name else ("", 0)

    def sockname(self) -> tuple[str, int]:
        return self._address("sockname")

    def peername(self) -> tuple[str, int]:
        return self._address("peername")


class TcpStream:
    """A connected SOCKS5 bytestream (implements :class:`jinglefs.streams.ByteStream`).

    A sender should :meth:`send_eof` (or :meth:`aclose`) right after its last byte:
    Prosody 0.12's mod_proxy65 can hold back the last few KiB it relays until the
    sending side's FIN arrives (seen in tests/xmpp/test_s5b_prosody.py).

    Reads smaller than 32 KiB (a relay forwarding a few KiB per write) pause reading
    for 1 ms so the kernel can gather more: fewer, bigger chunks for the receiver
    at a fraction of the CPU.  Full-speed direct reads (256 KiB) are unaffected.
    """

    def __init__(self, protocol: _StreamProtocol) -> None:
        self._proto = protocol
        protocol.coalesce = True
        #: (host, port) of our end and of the other end.
        self.local_address = protocol.sockname()
        self.remote_address = protocol.peername()

    async def send(self, data: bytes | memoryview) -> None:
        """Queue ``data``; waits while more than ~1 MiB is unsent (back-pressure)."""
        await self._proto.send(data)

    async def receive(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` (at least 1), ``b""`` at end of stream.

        Each socket read is up to 256 KiB; ask for at least that much to avoid splits.
        """
        return await self._proto.receive(max_bytes)

    async def send_eof(self) -> None:
        """Half-close: we send nothing more, but may still receive (TCP FIN)."""
        transport = self._proto.transport
        if self._proto._closed_locally or self._proto._lost or transport is None:
            raise StreamClosed("the connection is closed")
        if transport.can_write_eof():
            transport.write_eof()

    async def aclose(self) -> None:
        """Flush what is queued (bounded wait), then close.  Idempotent."""
        await self._proto.aclose()

    def abort(self) -> None:
        """Close at once, dropping anything unsent."""
        self._proto.abort()

    @property
    def closed(self) -> bool:
        return self._proto._closed_locally or self._proto._lost

    async def __aenter__(self) -> TcpStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# -- client ----------------------------------------------------------------------


async def connect_candidate(host: str, port: int, dstaddr: str, timeout: float = 3.0) -> TcpStream:
    """Connect to a SOCKS5 server and CONNECT to ``dstaddr`` (XEP-0065 §5.3.2).

    Works for a peer's direct candidate and for a proxy alike.  Raises
    :class:`Socks5Refused` if the server refused the DST.ADDR (failure reply, or
    closed after our CONNECT), another :class:`TransportError` for anything else
    (unreachable, timeout after ``timeout`` seconds, garbage).
    """
    loop = asyncio.get_running_loop()
    where = f"{host}:{port}"
    proto: _StreamProtocol | None = None
    try:
        async with asyncio.timeout(timeout):
            _, proto = await loop.create_connection(lambda: _StreamProtocol(loop), host, port)
            proto.write_now(wire.build_greeting())
            method = await proto.read_parsed(wire.parse_method_selection)
            if method != wire.METHOD_NO_AUTH:
                raise TransportError(f"{where}: SOCKS5 server wants authentication ({method:#x})")
            proto.write_now(wire.build_connect(dstaddr))
            try:
                reply = await proto.read_parsed(wire.parse_reply)
            except StreamClosed as exc:
                # XEP-0065 servers close the connection on a DST.ADDR they do not expect.
                raise Socks5Refused(f"{where}: closed after CONNECT") from exc
            if reply.rep != wire.REP_SUCCEEDED:
                raise Socks5Refused(f"{where}: CONNECT refused with SOCKS5 code {reply.rep:#04x}")
            if reply.address != dstaddr:
                # XEP-0065 §5.3.2 says BND.ADDR echoes DST.ADDR; some servers don't.
                logger.debug("%s: BND.ADDR %r differs from DST.ADDR", where, reply.address)
    except TimeoutError:
        if proto is not None:
            proto.abort()
        raise TransportError(f"{where}: no SOCKS5 connection within {timeout:g} s") from None
    except OSError as exc:
        if proto is not None:
            proto.abort()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise TransportError(f"{where}: {reason}") from exc
    except BaseException:
        if proto is not None:
            proto.abort()
        raise
    return TcpStream(proto)


async def connect_with_fallback(
    host: str, port: int, dstaddrs: Sequence[str], timeout: float = 3.0
) -> TcpStream:
    """:func:`connect_candidate` with each DST.ADDR in turn while the server refuses it.

    For a responder-owned direct candidate pass (owner-first, initiator-first):
    clients disagree on the order and the server drops a hash it does not expect
    (docs/protocol.md §7.5).  Other failures are not retried.
    """
    if not dstaddrs:
        raise ValueError("no DST.ADDR to try")
    for i, addr in enumerate(dstaddrs):
        try:
            return await connect_candidate(host, port, addr, timeout)
        except Socks5Refused:
            if i == len(dstaddrs) - 1:
                raise
            logger.debug("%s:%s refused DST.ADDR %s; trying the other order", host, port, addr)
    raise AssertionError("unreachable")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def connect_first(
    candidates: Sequence[S5bCandidate],
    dstaddrs: Callable[[S5bCandidate], Sequence[str]],
    *,
    stagger: float = 0.2,
    proxy_delay: float = 0.3,
    timeout: float = 3.0,
    proxy_timeout: float | None = None,
) -> tuple[S5bCandidate, TcpStream]:
    """Connect to the best candidate that answers, staggered in priority order.

    XEP-0260 §4: try candidates from the highest priority down, starting the next
    one ``stagger`` seconds after the previous (or at once when every attempt so far
    has failed), and wait ``proxy_delay`` more before the first proxy.  Each attempt
    gets ``timeout`` seconds (a proxy: ``proxy_timeout``, default the same) per DST.ADDR
    in ``dstaddrs(candidate)`` (normally
    :meth:`jinglefs.jingle.s5b.S5bNegotiation.dstaddrs_for`).  The first completed
    handshake wins; the rest are cancelled and closed.

    Raises :class:`CandidatesFailed` naming why each candidate failed.  Cancelling
    the call closes every connection it opened.
    """
    ordered = sort_by_priority(candidates)
    if not ordered:
        raise CandidatesFailed("the peer offered no S5B candidate")
    rank = {c.cid: i for i, c in enumerate(ordered)}
    failures: dict[str, str] = {}
    running: dict[asyncio.Task[TcpStream], S5bCandidate] = {}
    winner: tuple[S5bCandidate, TcpStream] | None = None
    loop = asyncio.get_running_loop()

    async def attempt(cand: S5bCandidate) -> TcpStream:
        limit = proxy_timeout if cand.is_proxy and proxy_timeout is not None else timeout
        return await connect_with_fallback(cand.host, cand.port, dstaddrs(cand), limit)

    async def wait_some(delay: float | None) -> tuple[S5bCandidate, TcpStream] | None:
        """Collect finished attempts until one succeeds, ``delay`` passes, or none runs."""
        deadline = None if delay is None else loop.time() + delay
        while running:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            done, _ = await asyncio.wait(
                running, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                return None
            best: tuple[S5bCandidate, TcpStream] | None = None
            for task in sorted(done, key=lambda t: rank[running[t].cid]):
                cand = running.pop(task)
                exc = task.exception()
                if exc is not None:
                    failures[cand.cid] = _describe(exc)
                elif best is None:
                    best = (cand, task.result())
                else:
                    task.result().abort()  # a worse candidate finished in the same tick
            if best is not None:
                return best
        return None

    try:
        for i, cand in enumerate(ordered):
            if i > 0:
                delay = stagger
                if cand.is_proxy and not ordered[i - 1].is_proxy:
                    delay += proxy_delay
                winner = await wait_some(delay)
                if winner is not None:
                    break
            running[asyncio.create_task(attempt(cand))] = cand
        if winner is None:
            winner = await wait_some(None)
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(BaseException):
                stream = await task
                stream.abort()  # finished while being cancelled
    if winner is None:
        detail = "; ".join(
            f"{c.cid} ({c.host}:{c.port}): {failures.get(c.cid, 'not tried')}" for c in ordered
        )
        raise CandidatesFailed(f"no S5B candidate worked: {detail}")
    return winner


# -- local addresses ----------------------------------------------------------------


def local_addresses(*, include_loopback: bool = False, include_ipv6: bool = True) -> list[str]:
    """The local IP addresses worth offering as direct candidates (XEP-0260 §2.1).

    Skips link-local, multicast and unspecified addresses; loopback only on request
    (useful only when both peers run on this host).  Order: IPv4, then IPv6, then
    loopback.
    """
    import ifaddr  # a dependency of aioice

    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                addr = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if addr.is_link_local or addr.is_multicast or addr.is_unspecified:
                continue
            if addr.is_loopback and not include_loopback:
                continue
            if addr.version == 6 and not include_ipv6:
                continue
            if addr not in found:
                found.append(addr)
    found.sort(key=lambda a: (a.is_loopback, a.version))
    return [str(a) for a in found]


# -- listener ---------------------------------------------------------------------------


@dataclass
class _Accepted:
    stream: TcpStream
    dstaddr: str
    #: Our (host, port) the peer connected to: identifies the candidate.
    local: tuple[str, int]


def _same_endpoint(a: tuple[str, int], b: tuple[str, int]) -> bool:
    try:
        return ipaddress.ip_address(a[0]) == ipaddress.ip_address(b[0]) and a[1] == b[1]
    except ValueError:
        return a == b


class S5bListener:
    """Our SOCKS5 server for direct candidates (XEP-0065 §5, XEP-0260 §2.1).

    Create with :meth:`start`, call :meth:`allow` with the session's accepted
    DST.ADDRs *before* advertising :meth:`candidates`, then :meth:`wait_for` the
    connection the peer reports in candidate-used.  :meth:`aclose` closes the
    listening sockets and every connection not handed out; call it however the
    session ends (it is also an async context manager).

    A connection is handed out only after a complete handshake with an allowed
    DST.ADDR.  Anything else (garbage, wrong hash, silence past
    ``handshake_timeout``) is closed without a byte of payload.  At most
    ``max_pending`` handshakes run at once; a new connection beyond that evicts
    the oldest, so a flood of idle sockets cannot lock out the real peer.
    """

    def __init__(
        self,
        *,
        handshake_timeout: float = 5.0,
        max_pending: int = 16,
        max_accepted: int = 8,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._handshake_timeout = handshake_timeout
        self._max_pending = max_pending
        self._max_accepted = max_accepted
        self._servers: list[asyncio.Server] = []
        self._bound: list[tuple[str, int]] = []
        self._allowed: set[str] = set()
        self._pending: dict[_StreamProtocol, asyncio.Task[None]] = {}
        self._accepted: list[_Accepted] = []
        self._changed = asyncio.Event()
        self._candidates: dict[str, S5bCandidate] = {}
        self._closed = False

    @classmethod
    async def start(
        cls,
        *,
        addresses: Sequence[str] | None = None,
        include_loopback: bool = False,
        allowed: Iterable[str] = (),
        handshake_timeout: float = 5.0,
        max_pending: int = 16,
        max_accepted: int = 8,
    ) -> S5bListener:
        """Listen on ``addresses`` (default: :func:`local_addresses`), each on a free port.

        Raises :class:`TransportError` if no address could be bound.
        """
        self = cls(
            handshake_timeout=handshake_timeout,
            max_pending=max_pending,
            max_accepted=max_accepted,
        )
        self.allow(*allowed)
        if addresses is None:
            addresses = local_addresses(include_loopback=include_loopback)
        errors: list[str] = []
        for host in addresses:
            try:
                server = await self._loop.create_server(self._new_protocol, host, 0)
            except OSError as exc:
                errors.append(f"{host}: {exc.strerror or exc}")
                continue
            self._servers.append(server)
            for sock in server.sockets:
                name = sock.getsockname()
                self._bound.append((str(name[0]), int(name[1])))
        if not self._servers:
            raise TransportError(
                "could not listen on any local address"
                + (f" ({'; '.join(errors)})" if errors else "")
            )
        logger.debug("S5B listener on %s", self._bound)
        return self

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs we listen on."""
        return list(self._bound)

    def candidates(self, jid: str, *, type_: str = "direct") -> list[S5bCandidate]:
        """One candidate per listening address, owned by ``jid`` (our full JID).

        Priorities follow XEP-0260 §2.2, local preference descending in address
        order; cids are random.  Each call makes new cids.
        """
        result = []
        for i, (host, port) in enumerate(self._bound):
            cand = S5bCandidate(
                cid=secrets.token_hex(6),
                host=host,
                jid=jid,
                port=port,
                priority=candidate_priority(type_, max(0, 0xFFFF - i)),
                type=type_,
            )
            self._candidates[cand.cid] = cand
            result.append(cand)
        return result

    def allow(self, *dstaddrs: str) -> None:
        """Accept connections whose DST.ADDR is one of these (both orders:
        docs/protocol.md §7.5)."""
        self._allowed.update(d.lower() for d in dstaddrs)

    async def wait_for(
        self, *dstaddrs: str, cid: str | None = None, timeout: float | None = None
    ) -> TcpStream:
        """The next accepted connection for one of ``dstaddrs`` (any allowed one if
        none given); with ``cid``, only one that arrived on that candidate of ours.

        The stream is then the caller's to close.  Raises :class:`TransportError`
        after ``timeout`` seconds, or if the listener is closed.
        """
        want = {d.lower() for d in dstaddrs}
        endpoint: tuple[str, int] | None = None
        if cid is not None:
            cand = self._candidates.get(cid)
            if cand is None:
                raise TransportError(f"{cid!r} is not a candidate of this listener")
            endpoint = (cand.host, cand.port)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self._closed:
                        raise TransportError("the S5B listener is closed")
                    for i, acc in enumerate(self._accepted):
                        if want and acc.dstaddr not in want:
                            continue
                        if endpoint is not None and not _same_endpoint(acc.local, endpoint):
                            continue
                        del self._accepted[i]
                        return acc.stream
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            where = f" on candidate {cid}" if cid else ""
            raise TransportError(f"no S5B connection{where} within {timeout:g} s") from None

    async def aclose(self) -> None:
        """Stop listening and close every connection not handed out by wait_for()."""
        if self._closed:
            return
        self._closed = True
        self._changed.set()
        for server in self._servers:
            server.close()
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        for acc in self._accepted:
            acc.stream.abort()
        self._accepted.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def __aenter__(self) -> S5bListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- connection handling ----------------------------------------------------

    def _new_protocol(self) -> _StreamProtocol:
        return _StreamProtocol(self._loop, on_made=self._on_connection)

    def _on_connection(self, proto: _StreamProtocol) -> None:
        if self._closed:
            proto.abort()
            return
        while len(self._pending) >= self._max_pending:
            oldest = next(iter(self._pending))
            self._pending.pop(oldest).cancel()
            oldest.abort()
        self._pending[proto] = self._loop.create_task(self._handshake(proto))

    async def _handshake(self, proto: _StreamProtocol) -> None:
        peer = proto.peername()
        try:
            async with asyncio.timeout(self._handshake_timeout):
                methods = await proto.read_parsed(wire.parse_greeting)
                if wire.METHOD_NO_AUTH not in methods:
                    proto.write_now(wire.build_method_selection(wire.METHOD_NO_ACCEPTABLE))
                    raise TransportError("client offers no usable authentication method")
                proto.write_now(wire.build_method_selection(wire.METHOD_NO_AUTH))
                request = await proto.read_parsed(wire.parse_request)
            # XEP-0065 §5.3.2: CONNECT, ATYP=3, DST.ADDR = the expected SHA-1.
            if request.cmd != wire.CMD_CONNECT:
                self._refuse(proto, wire.REP_COMMAND_NOT_SUPPORTED)
                raise TransportError(f"SOCKS5 command {request.cmd} is not CONNECT")
            if request.atyp != wire.ATYP_DOMAIN:
                self._refuse(proto, wire.REP_ADDRESS_TYPE_NOT_SUPPORTED)
                raise TransportError("SOCKS5 CONNECT to an IP address, not a hash")
            if request.address.lower() not in self._allowed:
                self._refuse(proto, wire.REP_NOT_ALLOWED)
                raise TransportError(f"unexpected DST.ADDR {request.address!r}")
            proto.write_now(wire.build_reply(wire.REP_SUCCEEDED, request.address, request.port))
            stream = TcpStream(proto)
            self._accepted.append(_Accepted(stream, request.address.lower(), proto.sockname()))
            if len(self._accepted) > self._max_accepted:
                self._accepted.pop(0).stream.abort()
            self._changed.set()
            logger.debug("S5B connection from %s accepted", peer)
        except (TimeoutError, TransportError) as exc:
            logger.debug("S5B connection from %s dropped: %s", peer, _describe(exc))
            if not proto._closed_locally:
                proto.abort()
        except asyncio.CancelledError:
            proto.abort()
            raise
        finally:
            self._pending.pop(proto, None)

    def _refuse(self, proto: _StreamProtocol, rep: int) -> None:
        # RFC 1928 §6: a failure reply, then close (queued reply is flushed first).
        proto.write_now(wire.build_reply(rep, "0.0.0.0"))
        proto._closed_locally = True
        if proto.transport is not None:
            proto.transport.close()
