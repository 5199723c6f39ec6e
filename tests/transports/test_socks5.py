"""SOCKS5 bytestreams: the sans-IO wire codec, and the asyncio listener/client on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from jinglefs.errors import CandidatesFailed, StreamClosed, TransportError
from jinglefs.s5b import wire
from jinglefs.s5b.network import (
    S5bListener,
    Socks5Refused,
    TcpStream,
    connect_candidate,
    connect_first,
    connect_with_fallback,
    local_addresses,
)
from jinglefs.s5b.protocol import S5bCandidate, candidate_priority, dstaddr
from jinglefs.streams import ByteStream

SID = "vj3hs98y"
INITIATOR = "romeo@montague.lit/orchard"
RESPONDER = "juliet@capulet.lit/balcony"
OWNER_FIRST = dstaddr(SID, RESPONDER, INITIATOR)  # a responder-owned candidate, owner first
INITIATOR_FIRST = dstaddr(SID, INITIATOR, RESPONDER)
HASH = INITIATOR_FIRST
LOOP = "127.0.0.1"

# Bounds for "eventually" (never asserted as durations; only to fail instead of hanging).
BOUND = 10.0


# -- wire codec ----------------------------------------------------------------------------

CONNECT_BYTES = b"\x05\x01\x00\x03\x28" + HASH.encode() + b"\x00\x00"
REPLY_BYTES = b"\x05\x00\x00\x03\x28" + HASH.encode() + b"\x00\x00"


def test_wire_bytes_match_protocol_md() -> None:
    assert wire.build_greeting() == b"\x05\x01\x00"
    assert wire.build_method_selection(wire.METHOD_NO_AUTH) == b"\x05\x00"
    assert wire.build_connect(HASH) == CONNECT_BYTES
    assert wire.build_reply(wire.REP_SUCCEEDED, HASH) == REPLY_BYTES
    assert wire.build_reply(wire.REP_NOT_ALLOWED, "0.0.0.0") == b"\x05\x02\x00\x01" + bytes(6)


@pytest.mark.parametrize(
    ("parse", "message", "expected"),
    [
        (wire.parse_greeting, b"\x05\x02\x00\x02", (0, 2)),
        (wire.parse_method_selection, b"\x05\x00", 0),
        (wire.parse_request, CONNECT_BYTES, wire.Request(1, 3, HASH, 0)),
        (wire.parse_reply, REPLY_BYTES, wire.Reply(0, 3, HASH, 0)),
        (
            wire.parse_reply,
            b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38",
            wire.Reply(0, 1, "127.0.0.1", 1080),
        ),
        (
            wire.parse_request,
            b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x50",
            wire.Request(1, 4, "::1", 80),
        ),
    ],
)
def test_wire_parsers_are_incremental(
    parse: Callable[[bytes], tuple[object, int] | None], message: bytes, expected: object
) -> None:
    for cut in range(len(message)):
        assert parse(message[:cut]) is None, cut
    assert parse(message) == (expected, len(message))
    # Bytes after the message are left for the caller.
    assert parse(message + b"file bytes") == (expected, len(message))


@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (wire.parse_greeting, b"\x04"),  # SOCKS4
        (wire.parse_greeting, b"G"),  # HTTP, detected from the first byte
        (wire.parse_greeting, b"\x05\x00"),  # no methods
        (wire.parse_method_selection, b"\x04\x00"),
        (wire.parse_request, b"\x04\x01\x00\x03"),
        (wire.parse_request, b"\x05\x01\x01\x03"),  # reserved byte set
        (wire.parse_request, b"\x05\x01\x00\x02"),  # unknown ATYP
        (wire.parse_request, b"\x05\x09\x00\x03\x01a\x00\x00"),  # unknown command
        (wire.parse_request, b"\x05\x01\x00\x03\x00"),  # empty domain
        (wire.parse_request, b"\x05\x01\x00\x03\x02a\x00\x00\x00"),  # NUL in domain
        (wire.parse_request, b"\x05\x01\x00\x03\x02\xc3\xa9\x00\x00"),  # non-ASCII domain
        (wire.parse_reply, b"\x05\x00\x07\x03"),
    ],
)
def test_wire_malformed_is_reported_at_once(parse: Callable[[bytes], object], data: bytes) -> None:
    with pytest.raises(wire.Socks5WireError):
        parse(data)


def test_is_xep0065_dstaddr() -> None:
    assert wire.is_xep0065_dstaddr(HASH)
    assert not wire.is_xep0065_dstaddr(HASH.upper())
    assert not wire.is_xep0065_dstaddr(HASH[:-1])
    assert not wire.is_xep0065_dstaddr("example.org")


# -- helpers --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def listening(**kwargs: object) -> AsyncIterator[S5bListener]:
    kwargs.setdefault("addresses", [LOOP])
    kwargs.setdefault("allowed", [HASH])
    listener = await S5bListener.start(**kwargs)  # type: ignore[arg-type]
    try:
        yield listener
    finally:
        await listener.aclose()


async def read_all(stream: ByteStream) -> bytes:
    parts = []
    while chunk := await stream.receive(1 << 20):
        parts.append(chunk)
    return b"".join(parts)


async def send_all(stream: TcpStream, data: bytes, chunk: int = 200_000) -> None:
    view = memoryview(data)
    for i in range(0, len(data), chunk):
        await stream.send(view[i : i + chunk])
    await stream.send_eof()


async def raw_client(
    port: int, host: str = LOOP
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before closing (bounded so a bug fails, not hangs)."""
    try:
        return await asyncio.wait_for(reader.read(), BOUND)
    except ConnectionResetError:
        return b""


# -- direct transfers -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 65_535, 256 * 1024 + 1, 5 * 1024 * 1024 + 7])
async def test_direct_transfer_both_ways(size: int) -> None:
    up, down = os.urandom(size), os.urandom(size // 3)
    async with listening() as listener:
        port = listener.addresses[0][1]
        client = await connect_candidate(LOOP, port, HASH, timeout=BOUND)
        server = await listener.wait_for(HASH, timeout=BOUND)
        received_up, received_down, *_ = await asyncio.gather(
            read_all(server), read_all(client), send_all(client, up), send_all(server, down)
        )
        await client.aclose()
        await server.aclose()
    assert hashlib.sha256(received_up).digest() == hashlib.sha256(up).digest()
    assert len(received_up) == size
    assert received_down == down


async def test_ipv6_loopback_listener() -> None:
    if not socket.has_ipv6 or "::1" not in local_addresses(include_loopback=True):
        pytest.fail("this test host has no IPv6 loopback")
    async with listening(addresses=["::1"]) as listener:
        [(host, port)] = listener.addresses
        assert host == "::1"
        client = await connect_candidate("::1", port, HASH, timeout=BOUND)
        server = await listener.wait_for(timeout=BOUND)
        await client.send(b"hi")
        assert await server.receive(10) == b"hi"
        await client.aclose()
        await server.aclose()


async def test_wait_for_by_candidate() -> None:
    async with listening(addresses=[LOOP, "::1"]) as listener:
        first, second = listener.candidates(RESPONDER)
        assert first.priority > second.priority and first.type == "direct"
        client = await connect_candidate(second.host, second.port, HASH, timeout=BOUND)
        with pytest.raises(TransportError, match=f"on candidate {first.cid}"):
            await listener.wait_for(HASH, cid=first.cid, timeout=0.2)
        server = await listener.wait_for(HASH, cid=second.cid, timeout=BOUND)
        await server.send(b"x")
        assert await client.receive(1) == b"x"
        await client.aclose()
        await server.aclose()


async def test_data_sent_right_after_the_handshake_is_not_lost() -> None:
    # A pipelining client: greeting, CONNECT and payload in one write.
    async with listening() as listener:
        reader, writer = await raw_client(listener.addresses[0][1])
        writer.write(b"\x05\x01\x00" + CONNECT_BYTES + b"payload")
        server = await listener.wait_for(HASH, timeout=BOUND)
        assert await reader.readexactly(2 + len(REPLY_BYTES)) == b"\x05\x00" + REPLY_BYTES
        assert await server.receive(100) == b"payload"
        writer.close()
        await server.aclose()


# -- what the listener must refuse ---------------------------------------------------------


async def test_wrong_dstaddr_is_refused_and_never_handed_out() -> None:
    async with listening() as listener:
        port = listener.addresses[0][1]
        with pytest.raises(Socks5Refused, match="code 0x02"):
            await connect_candidate(LOOP, port, OWNER_FIRST, timeout=BOUND)
        reader, writer = await raw_client(port)
        writer.write(b"\x05\x01\x00" + wire.build_connect("f" * 40))
        got = await read_until_closed(reader)
        assert got[:2] == b"\x05\x00" and got[2:4] == b"\x05\x02"  # method, then "not allowed"
        assert len(got) == 2 + 10  # nothing after the failure reply
        writer.close()
        with pytest.raises(TransportError):
            await listener.wait_for(timeout=0.2)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00",  # SOCKS4
        b"\x05\x01\x00\x05\x02\x00\x03\x01a\x00\x00",  # CMD 2 (BIND)
        b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00",  # CONNECT to an IP
        bytes(range(256)) * 16,
    ],
)
async def test_garbage_is_dropped(garbage: bytes) -> None:
    async with listening() as listener:
        reader, writer = await raw_client(listener.addresses[0][1])
        writer.write(garbage)
        got = await read_until_closed(reader)
        # At most the method selection and a failure reply; never a success reply.
        assert REPLY_BYTES not in got and (got == b"" or got.startswith(b"\x05"))
        writer.close()
        with pytest.raises(TransportError):
            await listener.wait_for(timeout=0.2)


@pytest.mark.parametrize("first_bytes", [b"", b"\x05\x01\x00", b"\x05\x01\x00\x05\x01\x00\x03"])
async def test_silent_or_stalled_client_is_closed(first_bytes: bytes) -> None:
    async with listening(handshake_timeout=0.3) as listener:
        reader, writer = await raw_client(listener.addresses[0][1])
        writer.write(first_bytes)
        got = await read_until_closed(reader)
        assert got in (b"", b"\x05\x00")
        writer.close()


async def test_connection_flood_is_bounded_and_the_peer_still_gets_in() -> None:
    async with listening(handshake_timeout=1.0, max_pending=8) as listener:
        port = listener.addresses[0][1]
        idle = [await raw_client(port) for _ in range(50)]
        # The real peer still completes its handshake: idle sockets were evicted.
        client = await connect_candidate(LOOP, port, HASH, timeout=BOUND)
        server = await listener.wait_for(HASH, timeout=BOUND)
        assert len(listener._pending) <= 8
        leaked = await asyncio.gather(*(read_until_closed(r) for r, _ in idle))
        assert leaked == [b""] * 50
        for _, w in idle:
            w.close()
        await server.send(b"ok")
        assert await client.receive(2) == b"ok"
        await client.aclose()
        await server.aclose()


async def test_aclose_closes_listeners_and_unclaimed_connections() -> None:
    listener = await S5bListener.start(addresses=[LOOP], allowed=[HASH])
    port = listener.addresses[0][1]
    unclaimed = await connect_candidate(LOOP, port, HASH, timeout=BOUND)
    pending_reader, pending_writer = await raw_client(port)
    pending_writer.write(b"\x05\x01\x00")
    await pending_reader.readexactly(2)
    await listener.aclose()
    assert await asyncio.wait_for(unclaimed.receive(10), BOUND) == b""
    assert await read_until_closed(pending_reader) == b""
    with pytest.raises(OSError):
        await raw_client(port)
    with pytest.raises(TransportError, match="closed"):
        await listener.wait_for(timeout=BOUND)
    await listener.aclose()  # idempotent
    await unclaimed.aclose()
    pending_writer.close()


# -- the DST.ADDR order retry --------------------------------------------------------------


async def test_owner_first_refused_then_initiator_first_accepted() -> None:
    # A Psi/Gajim-style responder: its listener only knows the initiator-first hash.
    async with listening(allowed=[INITIATOR_FIRST]) as listener:
        port = listener.addresses[0][1]
        client = await connect_with_fallback(
            LOOP, port, [OWNER_FIRST, INITIATOR_FIRST], timeout=BOUND
        )
        server = await listener.wait_for(INITIATOR_FIRST, timeout=BOUND)
        await client.send(b"abc")
        assert await server.receive(3) == b"abc"
        await client.aclose()
        await server.aclose()


@contextlib.asynccontextmanager
async def dropping_server(expected: str) -> AsyncIterator[tuple[int, list[str]]]:
    """A Conversations-style server: closes without a reply on a DST.ADDR mismatch."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"\x05\x00")
        head = await reader.readexactly(5)
        address = (await reader.readexactly(head[4] + 2))[:-2].decode()
        seen.append(address)
        if address == expected:
            writer.write(wire.build_reply(0, address))
            writer.write(b"welcome")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOP, 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


async def test_retry_when_the_server_drops_after_connect() -> None:
    async with dropping_server(INITIATOR_FIRST) as (port, seen):
        stream = await connect_with_fallback(
            LOOP, port, [OWNER_FIRST, INITIATOR_FIRST], timeout=BOUND
        )
        assert await read_all(stream) == b"welcome"
        await stream.aclose()
    assert seen == [OWNER_FIRST, INITIATOR_FIRST]


async def test_no_retry_beyond_the_given_orders() -> None:
    async with dropping_server("0" * 40) as (port, seen):
        with pytest.raises(Socks5Refused, match="closed after CONNECT"):
            await connect_with_fallback(LOOP, port, [OWNER_FIRST, INITIATOR_FIRST], timeout=BOUND)
    assert seen == [OWNER_FIRST, INITIATOR_FIRST]


# -- connect_first ------------------------------------------------------------------------


def candidate(cid: str, port: int, local_pref: int, type_: str = "direct") -> S5bCandidate:
    return S5bCandidate(cid, LOOP, RESPONDER, port, candidate_priority(type_, local_pref), type_)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((LOOP, 0))
        return int(s.getsockname()[1])


async def test_connect_first_skips_dead_and_refusing_candidates() -> None:
    async with listening() as good, listening(allowed=["0" * 40]) as refusing:
        cands = [
            candidate("dead", closed_port(), 300),
            candidate("refusing", refusing.addresses[0][1], 200),
            candidate("good", good.addresses[0][1], 100),
        ]
        # A huge stagger: the next attempt only starts early because the earlier failed.
        chosen, stream = await asyncio.wait_for(
            connect_first(cands, lambda c: [HASH], stagger=60, timeout=BOUND), BOUND
        )
        assert chosen.cid == "good"
        server = await good.wait_for(HASH, timeout=BOUND)
        await stream.send(b"1")
        assert await server.receive(1) == b"1"
        await stream.aclose()
        await server.aclose()


async def test_connect_first_prefers_priority() -> None:
    async with listening() as low, listening() as high:
        cands = [
            candidate("low", low.addresses[0][1], 1),
            candidate("high", high.addresses[0][1], 2),
        ]
        chosen, stream = await connect_first(cands, lambda c: [HASH], stagger=60, timeout=BOUND)
        assert chosen.cid == "high"
        await stream.aclose()
        # The lower candidate was never dialled.
        with pytest.raises(TransportError):
            await low.wait_for(timeout=0.2)


async def test_connect_first_uses_the_dstaddrs_per_candidate() -> None:
    async with listening(allowed=[INITIATOR_FIRST]) as listener:
        cands = [candidate("c", listener.addresses[0][1], 1)]
        chosen, stream = await connect_first(
            cands, lambda c: [OWNER_FIRST, INITIATOR_FIRST], timeout=BOUND
        )
        assert chosen.cid == "c"
        await stream.aclose()


async def test_connect_first_all_fail_lists_every_reason() -> None:
    async with listening(allowed=["0" * 40]) as refusing:
        cands = [
            candidate("dead", closed_port(), 2),
            candidate("refusing", refusing.addresses[0][1], 1),
            candidate("proxy", closed_port(), 0, "proxy"),
        ]
        with pytest.raises(CandidatesFailed) as info:
            await connect_first(cands, lambda c: [HASH], stagger=0.01, timeout=BOUND)
    text = str(info.value)
    assert "dead (127.0.0.1:" in text and "refused" in text.lower()
    assert "refusing (127.0.0.1:" in text and "code 0x02" in text
    assert "proxy (127.0.0.1:" in text


async def test_connect_first_without_candidates() -> None:
    with pytest.raises(CandidatesFailed, match="no S5B candidate"):
        await connect_first([], lambda c: [HASH])


async def test_connect_first_cancelled_leaves_nothing_open() -> None:
    # A server that accepts TCP but never answers: the attempt hangs until cancelled.
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        try:
            await reader.read()  # returns when the client goes away
        finally:
            accepted.remove(writer)
            writer.close()

    server = await asyncio.start_server(hold, LOOP, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        task = asyncio.create_task(
            connect_first([candidate("mute", port, 1)], lambda c: [HASH], timeout=BOUND)
        )
        while not accepted:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while accepted:  # the server sees our side close
            await asyncio.sleep(0.01)
    finally:
        server.close()


async def test_connect_timeout_is_a_transport_error() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, LOOP, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(TransportError, match="no SOCKS5 connection within 0.2 s"):
            await connect_candidate(LOOP, port, HASH, timeout=0.2)
    finally:
        server.close()


# -- TcpStream behaviour -------------------------------------------------------------------


async def test_stream_errors_after_close() -> None:
    async with listening() as listener:
        client = await connect_candidate(LOOP, listener.addresses[0][1], HASH, timeout=BOUND)
        server = await listener.wait_for(timeout=BOUND)
        assert isinstance(client, ByteStream) and isinstance(server, TcpStream)
        await client.aclose()
        assert await server.receive(10) == b""  # clean end of stream
        with pytest.raises(StreamClosed):
            await client.send(b"x")
        with pytest.raises(StreamClosed):
            await client.receive(10)
        server.abort()


async def test_reset_by_peer_raises_stream_closed() -> None:
    async with listening() as listener:
        client = await connect_candidate(LOOP, listener.addresses[0][1], HASH, timeout=BOUND)
        server = await listener.wait_for(timeout=BOUND)
        server.abort()
        with pytest.raises(StreamClosed):
            for _ in range(10_000):  # the peer's RST shows up on a later send
                await client.send(b"x" * 65536)
                await asyncio.sleep(0)
        client.abort()


async def test_back_pressure_bounds_memory() -> None:
    async with listening() as listener:
        client = await connect_candidate(LOOP, listener.addresses[0][1], HASH, timeout=BOUND)
        server = await listener.wait_for(timeout=BOUND)
        sent = 0
        blocked = False
        block = b"\0" * 65536
        while sent < 200 * 1024 * 1024:  # nobody reads: send() must stop returning
            try:
                await asyncio.wait_for(client.send(block), 0.5)
            except TimeoutError:
                blocked = True
                break
            sent += len(block)
        assert blocked
        assert server._proto._buffered <= 2 * 1024 * 1024 + 256 * 1024
        client.abort()
        server.abort()


def test_local_addresses() -> None:
    plain = local_addresses()
    with_lo = local_addresses(include_loopback=True)
    assert "127.0.0.1" not in plain and "127.0.0.1" in with_lo
    assert all(not a.startswith("fe80") for a in with_lo)
    assert with_lo[-1] in ("127.0.0.1", "::1")  # loopback last


# -- the pure negotiation driving real sockets ----------------------------------------------


async def test_direct_negotiation_end_to_end() -> None:
    """Both sides listen, dial each other, report candidate-used, and agree (XEP-0260
    §2.4, equal priorities -> the initiator's pick); the nominated connection carries
    the file, the other one is closed."""
    from jinglefs.s5b.protocol import S5bNegotiation

    async with listening(allowed=[]) as a_listener, listening(allowed=[]) as b_listener:
        a = S5bNegotiation(
            role="initiator",
            sid=SID,
            local_jid=INITIATOR,
            peer_jid=RESPONDER,
            local_candidates=a_listener.candidates(INITIATOR),
        )
        a_listener.allow(*a.listener_dstaddrs())
        b = S5bNegotiation(
            role="responder",
            sid=SID,
            local_jid=RESPONDER,
            peer_jid=INITIATOR,
            local_candidates=b_listener.candidates(RESPONDER),
            remote_candidates=a.offer().candidates,
        )
        b_listener.allow(*b.listener_dstaddrs())
        a.add_remote_candidates(b.offer().candidates)

        (a_used, a_out), (b_used, b_out) = await asyncio.gather(
            connect_first(a.remote_candidates, a.dstaddrs_for, timeout=BOUND),
            connect_first(b.remote_candidates, b.dstaddrs_for, timeout=BOUND),
        )
        a.local_candidate_connected(a_used.cid)
        b.local_candidate_connected(b_used.cid)
        for p in a.payloads_to_send():
            b.receive(p)
        for p in b.payloads_to_send():
            a.receive(p)
        assert a.ready and b.ready
        assert a.nomination and b.nomination
        assert a.nomination.candidate == b.nomination.candidate == a_used  # B's candidate
        assert (a.nomination.ours, b.nomination.ours) == (False, True)

        a_stream = a_out
        b_stream = await b_listener.wait_for(
            *b.listener_dstaddrs(), cid=b.nomination.candidate.cid, timeout=BOUND
        )
        b_out.abort()  # B's own outgoing connection lost the nomination
        data = os.urandom(1_000_003)
        got, _ = await asyncio.gather(read_all(b_stream), send_all(a_stream, data))
        assert got == data
        await a_stream.aclose()
        await b_stream.aclose()


async def test_trickled_data_is_coalesced_into_fewer_reads() -> None:
    # A relay that forwards 1 KiB at a time (Prosody's proxy65 forwards a few KiB per
    # write): the receiver must still get every byte, in fewer, bigger chunks.
    async with listening() as listener:
        client = await connect_candidate(LOOP, listener.addresses[0][1], HASH, timeout=BOUND)
        server = await listener.wait_for(timeout=BOUND)
        pieces = [os.urandom(1024) for _ in range(2000)]

        async def trickle() -> None:
            for piece in pieces:
                await client.send(piece)
                await asyncio.sleep(0)
            await client.send_eof()

        chunks: list[bytes] = []

        async def collect() -> None:
            while chunk := await server.receive(1 << 20):
                chunks.append(chunk)

        await asyncio.wait_for(asyncio.gather(trickle(), collect()), BOUND * 3)
        assert b"".join(chunks) == b"".join(pieces)
        assert len(chunks) < len(pieces) // 4
        await client.aclose()
        await server.aclose()
