"""The ICE rung: two ICE sessions in one process on loopback, with either implementation.

The tests of the data channel's contract run for each implementation (aiortc, and native:
libdatachannel through aiolibdatachannel) and across them (a native initiator with an aiortc
responder and the reverse): tests/ice/backends.py ``PAIRS``.  What only one stack has (aiortc's
delayed SACK, relay hold and end-of-candidates grace) is tested on that stack.

aioice skips 127.0.0.1 when gathering (perf-anchors.md "Network isolation") and libjuice
gathers every interface but loopback; both take ``host_addresses=["127.0.0.1"]`` instead of a
global monkeypatch.

Races (a slow gathering, the end-of-candidates grace, late trickle, the relay hold) are decided
by the test through :class:`~jinglefs.ice.channel.IceHooks`, never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiortc.rtcsctptransport import SackChunk
from slixmpp.exceptions import IqTimeout

from jinglefs.errors import CandidatesFailed, StreamClosed, TransportError
from jinglefs.events import PathKind
from jinglefs.ice.backend import IceBackend
from jinglefs.ice.channel import BUFFER_LIMIT, IceDataChannelStream, IceHooks, IceSession
from jinglefs.ice.protocol import (
    DtlsFingerprint,
    IceCandidate,
    IceServers,
    WebRtcDataChannelTransport,
)
from jinglefs.ice.servers import fetch_ice_servers, parse_services, pick_ice_servers
from jinglefs.jingle.transport import parse_transport
from jinglefs.streams import ByteStream
from jinglefs.xmpp.connection import XmppConnection
from tests.ice.backends import BACKENDS, PAIRS, native_module, needs_native, session_class
from tests.servers.coturn import CoturnServer
from tests.servers.prosody import ProsodyServer

LO = ["127.0.0.1"]
BOUND = 30.0  # only to fail instead of hanging; never asserted as a duration


@dataclass
class ManualTimer:
    delay: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        assert not self.cancelled, "a cancelled (or fired) timer never fires"
        self.cancelled = True
        self.callback()


@dataclass
class ManualTimers:
    """``IceHooks.call_later`` that only records: the test fires a timer when it wants."""

    armed: list[ManualTimer] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, delay: float, callback: Callable[[], None]) -> ManualTimer:
        timer = ManualTimer(delay, callback)
        self.armed.append(timer)
        self._changed.set()
        return timer

    @property
    def live(self) -> list[ManualTimer]:
        return [t for t in self.armed if not t.cancelled]

    async def nth(self, n: int) -> ManualTimer:
        """The n-th timer armed (1-based), once it is."""
        while len(self.armed) < n:
            self._changed.clear()
            await self._changed.wait()
        return self.armed[n - 1]


def make_pair(**kwargs: object) -> tuple[IceSession, IceSession]:
    a_kw = {"host_addresses": LO, **kwargs}
    return IceSession(initiator=True, **a_kw), IceSession(initiator=False, **a_kw)  # type: ignore[arg-type]


def make_sessions(pair: tuple[str, str], **kwargs: Any) -> tuple[IceBackend, IceBackend]:
    """An initiator and a responder of the given implementations ("aiortc"/"native")."""
    a_kw = {"host_addresses": LO, **kwargs}
    return (session_class(pair[0])(initiator=True, **a_kw),
            session_class(pair[1])(initiator=False, **a_kw))


async def negotiate(a: IceBackend, b: IceBackend) -> None:
    """session-initiate (a -> b), session-accept (b -> a); the responder reads the offer first."""
    await b.add_remote(await a.gather())
    await a.add_remote(await b.gather())


async def connect_pair(
    a: IceBackend, b: IceBackend, timeout: float = 10.0
) -> tuple[Any, Any]:
    await negotiate(a, b)
    sa, sb = await asyncio.gather(a.connect(timeout), b.connect(timeout))
    return sa, sb


async def close_all(*sessions: IceBackend) -> None:
    """Every socket released (a native sender keeps its connection until the peer is done)."""
    for s in sessions:
        await s.close()


def tx_stream_id(stream: Any) -> int:
    """The SCTP stream id of the channel a stream writes into (either implementation)."""
    tx = stream._tx
    return int(tx.id if isinstance(stream, IceDataChannelStream) else tx.stream_id)


def rx_channel(stream: Any) -> Any:
    return stream._rx_channel if isinstance(stream, IceDataChannelStream) else stream._rx


async def pump(
    sender: ByteStream,
    receiver: ByteStream,
    data: bytes,
    write_size: int = 100_000,
) -> bytes:
    """Send ``data`` (in ``write_size`` writes), receive exactly len(data) bytes, return them."""

    async def send() -> None:
        for i in range(0, len(data), write_size):
            await sender.send(data[i : i + write_size])

    async def recv() -> bytes:
        got = bytearray()
        while len(got) < len(data):
            chunk = await receiver.receive(1 << 20)
            assert chunk, "end of stream before all bytes arrived"
            got += chunk
        return bytes(got)

    _, received = await asyncio.gather(send(), recv())
    return received


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("size", [1, 4095, 65537, 3_000_001])
async def test_file_transfer_sha256(size: int, pair: tuple[str, str]) -> None:
    a, b = make_sessions(pair)
    sa, sb = await connect_pair(a, b)
    assert isinstance(sa, ByteStream) and isinstance(sb, ByteStream)
    assert (a.implementation, b.implementation) == tuple(
        "libdatachannel" if p == "native" else p for p in pair)
    data = os.urandom(size)
    got = await pump(sa, sb, data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    await sa.aclose()
    assert await sb.receive(10) == b""  # the sender's channel closed: end of stream
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("pair", PAIRS)
async def test_payloads_through_xml(pair: tuple[str, str]) -> None:
    # What the Jingle driver does: to_element() -> stanza text -> parse_transport().
    def wire(p: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
        parsed = parse_transport(ET.fromstring(ET.tostring(p.to_element(), encoding="unicode")))
        assert isinstance(parsed, WebRtcDataChannelTransport) and parsed == p
        return parsed

    a, b = make_sessions(pair)
    await b.add_remote(wire(await a.gather()))
    await a.add_remote(wire(await b.gather()))
    sa, sb = await asyncio.gather(a.connect(10), b.connect(10))
    data = os.urandom(100_000)
    assert await pump(sa, sb, data) == data
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("pair", PAIRS)
async def test_conversations_message_size_and_limits(pair: tuple[str, str]) -> None:
    # Conversations sends 4096-byte messages; the peer's max-message-size caps ours.
    a, b = make_sessions(pair, message_size=4096)
    sa, sb = await connect_pair(a, b)
    assert sa.message_size == 4096 and sb.message_size == 4096
    for s in (sa, sb):  # docs/protocol.md §6.5: Conversations' label and sub-protocol
        assert (s._tx.label, s._tx.protocol) == ("test", "xmpp-jingle")
        assert (rx_channel(s).label, rx_channel(s).protocol) == ("test", "xmpp-jingle")
    data = os.urandom(300_000)
    assert await pump(sa, sb, data, write_size=300_000) == data
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("pair", PAIRS)
async def test_both_directions_each_side_writes_its_own_channel(pair: tuple[str, str]) -> None:
    a, b = make_sessions(pair)
    sa, sb = await connect_pair(a, b)
    ab, ba = os.urandom(500_000), os.urandom(400_000)
    got_b, got_a = await asyncio.gather(pump(sa, sb, ab), pump(sb, sa, ba))
    assert (got_b, got_a) == (ab, ba)
    # Each side writes into its own channel and reads from the one the peer announced.
    assert rx_channel(sa) is not None and rx_channel(sb) is not None
    assert tx_stream_id(sa) != tx_stream_id(sb)
    # RFC 8832 §6: the DTLS client (the responder, setup active) takes even ids, the
    # server odd ones.
    assert (tx_stream_id(sa) % 2, tx_stream_id(sb) % 2) == (1, 0)
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


async def test_back_pressure_keeps_buffered_amount_bounded() -> None:
    a, b = make_pair()
    sa, sb = await connect_pair(a, b)
    peak = 0
    original = sa._tx.send

    def spy(data: bytes | str) -> None:
        nonlocal peak
        original(data)
        peak = max(peak, sa._tx.bufferedAmount)

    sa._tx.send = spy  # type: ignore[method-assign]
    data = os.urandom(2_000_000)
    assert await pump(sa, sb, data, write_size=len(data)) == data
    assert 0 < peak <= BUFFER_LIMIT
    await sa.aclose()
    await sb.aclose()


@needs_native
async def test_native_back_pressure_keeps_libdatachannel_queue_bounded() -> None:
    # send() waits while libdatachannel queues data (usrsctp's buffer is full), so at most
    # one message waits in libdatachannel whatever the writer hands over.
    a, b = make_sessions(("native", "native"))
    sa, sb = await connect_pair(a, b)
    tx = sa._tx
    peak = 0
    original = tx.send

    async def spy(data: bytes, **kw: Any) -> None:
        nonlocal peak
        await original(data, **kw)
        peak = max(peak, tx.buffered_amount)

    tx.send = spy
    data = os.urandom(8_000_000)
    assert await pump(sa, sb, data, write_size=len(data)) == data
    assert 0 < peak <= sa.message_size
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("delayed", [False, True])
async def test_delayed_sack(delayed: bool) -> None:
    # aiortc answers every DATA packet with a SACK; delayed SACKs (RFC 4960 §6.2) skip the
    # SACK of every other in-order packet (gaps and duplicates are still acknowledged at once,
    # and loopback in one process loses packets, so "fewer" is all that can be asserted).
    a, b = make_pair(delayed_sack=delayed)
    sa, sb = await connect_pair(a, b)
    assert b._sctp is not None
    counts = {"data": 0, "sack": 0}
    base_handle, base_send = b._sctp._handle_data, b._sctp._send_chunk

    async def handle(data: bytes) -> None:
        counts["data"] += 1
        await base_handle(data)

    async def send_chunk(chunk: Any) -> None:
        counts["sack"] += type(chunk).__name__ == "SackChunk"
        await base_send(chunk)

    b._sctp._handle_data = handle  # type: ignore[method-assign]
    b._sctp._send_chunk = send_chunk  # type: ignore[method-assign]
    data = os.urandom(2_000_000)
    got = await pump(sa, sb, data, write_size=len(data))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    await sa.drain()  # the tail is acknowledged too (by the SACK_DELAY timer at worst)
    assert not sa._sctp._sent_queue
    assert counts["data"] > 1000
    if delayed:
        assert counts["sack"] < counts["data"]
    else:
        assert counts["sack"] == counts["data"]
    await sa.aclose()
    await sb.aclose()


async def test_held_sack_after_dtls_shutdown_is_dropped_quietly() -> None:
    a, b = make_pair()
    sa, sb = await connect_pair(a, b)
    sctp, dtls = b._sctp, b._dtls
    assert sctp is not None and dtls is not None and dtls._ssl is not None
    sctp._jfs_sack_held = sctp._sack_needed = True
    dtls._ssl.shutdown()  # what a received close_notify leaves behind
    await sctp.flush_held_sack()  # must not raise (it runs from a timer task)
    with pytest.raises(Exception):  # noqa: B017 - the raw send really fails
        await sctp._send_chunk(SackChunk())
    await sa.aclose()
    await sb.aclose()


async def test_selected_pair_and_roles() -> None:
    a, b = make_pair()
    assert a.selected_pair() is None
    await negotiate(a, b)
    offer, answer = a.local_payload(), b.local_payload()
    # RFC 5763 §5: the offerer says actpass, the answerer active (it becomes the DTLS client).
    assert offer.fingerprint is not None and offer.fingerprint.setup == "actpass"
    assert answer.fingerprint is not None and answer.fingerprint.setup == "active"
    assert (offer.sctp_port, offer.max_message_size) == (5000, 262144)
    assert all(c.ip == "127.0.0.1" and c.type == "host" for c in offer.candidates)
    sa, sb = await asyncio.gather(a.connect(10), b.connect(10))
    pa, pb = a.selected_pair(), b.selected_pair()
    assert pa is not None and pb is not None
    assert pa.path is PathKind.ICE_DIRECT and pb.path is PathKind.ICE_DIRECT
    assert pa.local_address == pb.remote_address and pa.remote_address == pb.local_address
    assert pa.detail.startswith("host 127.0.0.1:")
    assert a._dtls is not None and a._dtls._role == "server"
    assert b._dtls is not None and b._dtls._role == "client"
    await sa.aclose()
    await sb.aclose()


@needs_native
async def test_native_selected_pair_and_roles() -> None:
    a, b = make_sessions(("native", "native"))
    assert a.selected_pair() is None
    await negotiate(a, b)
    offer, answer = a.local_payload(), b.local_payload()
    # RFC 5763 §5: the offerer says actpass, the answerer active (it becomes the DTLS client).
    assert offer.fingerprint is not None and offer.fingerprint.setup == "actpass"
    assert answer.fingerprint is not None and answer.fingerprint.setup == "active"
    assert (offer.sctp_port, offer.max_message_size) == (5000, 262144)
    # libjuice gathers no loopback address; the one asked for is announced on its socket.
    assert [(c.ip, c.type) for c in offer.candidates] == [("127.0.0.1", "host")]
    sa, sb = await asyncio.gather(a.connect(10), b.connect(10))
    pa, pb = a.selected_pair(), b.selected_pair()
    assert pa is not None and pb is not None
    assert pa.path is PathKind.ICE_DIRECT and pb.path is PathKind.ICE_DIRECT
    assert pa.local_address == pb.remote_address and pa.remote_address == pb.local_address
    assert pa.detail.startswith("host 127.0.0.1:") and pb.detail.startswith("host 127.0.0.1:")
    assert tx_stream_id(sa) % 2 == 1 and tx_stream_id(sb) % 2 == 0  # server odd, client even
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("responder", BACKENDS)
async def test_offer_with_setup_active_makes_responder_passive(responder: str) -> None:
    a = IceSession(initiator=True, host_addresses=LO)
    b = session_class(responder)(initiator=False, host_addresses=LO)
    offer = await a.gather()
    assert offer.fingerprint is not None
    a._local_setup = "active"  # a peer that insists on being the DTLS client
    offer = a.local_payload()
    await b.add_remote(offer)
    answer = await b.gather()
    assert answer.fingerprint is not None and answer.fingerprint.setup == "passive"
    await a.add_remote(answer)
    a._dtls_client = lambda remote: True  # type: ignore[method-assign]
    sa, sb = await asyncio.gather(a.connect(10), b.connect(10))
    assert tx_stream_id(sb) % 2 == 1  # the responder is the DTLS server (RFC 8832 §6)
    assert await pump(sa, sb, b"hello") == b"hello"
    assert await pump(sb, sa, b"back") == b"back"
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_gather_gathers_once(backend: str) -> None:
    a = session_class(backend)(initiator=True, host_addresses=LO)
    first, second = await asyncio.gather(a.gather(), a.gather())
    assert first == second and len(first.candidates) == 1
    await a.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_close_while_gathering(backend: str) -> None:
    gathering, never = asyncio.Event(), asyncio.Event()

    async def gate() -> None:
        gathering.set()
        await never.wait()  # a STUN server that does not answer

    a = session_class(backend)(initiator=True, host_addresses=LO,  # type: ignore[call-arg]
                               hooks=IceHooks(gather_gate=gate))
    task = asyncio.ensure_future(a.gather())
    await gathering.wait()
    await a.close()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(BOUND):
            await task
    with pytest.raises(StreamClosed):
        await a.gather()
    with pytest.raises(TransportError):
        a.local_payload()  # nothing was gathered


def tamper(payload: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
    fp = payload.fingerprint
    assert fp is not None
    first = "00" if not fp.value.startswith("00") else "01"
    bad = DtlsFingerprint(fp.hash, first + fp.value[2:], fp.setup)
    return replace(payload, ice=replace(payload.ice, fingerprint=bad))


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("victim", ["initiator", "responder"])
async def test_tampered_fingerprint_fails_cleanly_without_data(
        victim: str, pair: tuple[str, str]) -> None:
    a, b = make_sessions(pair)
    offer = await a.gather()
    await b.add_remote(tamper(offer) if victim == "responder" else offer)
    answer = await b.gather()
    await a.add_remote(tamper(answer) if victim == "initiator" else answer)
    results = await asyncio.gather(a.connect(8), b.connect(8), return_exceptions=True)
    checker = results[0] if victim == "initiator" else results[1]
    other = results[1] if victim == "initiator" else results[0]
    assert isinstance(checker, TransportError)
    assert str(checker) == (
        "DTLS fingerprint mismatch: the peer's certificate is not the one announced in Jingle"
        " (XEP-0320)"
    )
    # The other side (its own check passed) gets no stream either: no byte can flow.
    assert isinstance(other, TransportError)
    assert a._closed and b._closed  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_peer_that_never_answers_fails_bounded(backend: str) -> None:
    # A UDP socket that swallows every check: aioice alone would retry for ~64 s.  The
    # end-of-candidates grace never expires (the test holds its timer), so only connect()'s
    # timeout can end the attempt.  (libjuice has no grace: the same.)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        timers = ManualTimers()
        a = session_class(backend)(initiator=True, host_addresses=LO,  # type: ignore[call-arg]
                                   hooks=IceHooks(call_later=timers))
        b = IceSession(initiator=False, host_addresses=LO)
        await b.gather()
        answer = b.local_payload()
        fake = answer.trickle(
            (IceCandidate(1, "1", "127.0.0.1", port, 2122260223, "host", id="x"),)
        )
        fake = replace(fake, ice=replace(fake.ice, fingerprint=answer.fingerprint))
        await a.gather()
        await a.add_remote(fake)
        with pytest.raises(CandidatesFailed) as info:
            async with asyncio.timeout(BOUND):
                await a.connect(timeout=0.2)
        assert str(info.value) == "no ICE candidate pair answered within 0.2 s"
        assert a._closed  # type: ignore[attr-defined]
        if backend == "aiortc":
            [grace] = timers.armed
            assert grace.cancelled  # by connect() when it gave up, never fired
        await b.close()


async def test_end_of_candidates_assumed_after_grace() -> None:
    # Jingle has no end-of-candidates: connect() signals it to aioice once candidate_grace
    # passed without a new payload (the test fires that timer); candidates trickled later are
    # ignored (RFC 8838, trickle ICE).  The one candidate a knows (IPv6, while a gathered on
    # 127.0.0.1) pairs with nothing: aioice can only fail, and only after end-of-candidates.
    timers = ManualTimers()
    a = IceSession(initiator=True, host_addresses=LO, hooks=IceHooks(call_later=timers))
    b = IceSession(initiator=False, host_addresses=LO)
    answer = await b.gather()
    await a.gather()
    await a.add_remote(replace(answer, ice=replace(answer.ice, candidates=())))
    connecting = asyncio.ensure_future(a.connect(timeout=BOUND))
    first = await timers.nth(1)
    assert first.delay == 3.0  # the production grace
    first.fire()  # no candidate at all yet: the peer may still reach us (prflx), wait again
    second = timers.live
    assert len(second) == 1 and second[0].delay == 3.0 and not connecting.done()
    v6 = IceCandidate(1, "6", "::1", 9, 1, "host", id="v6")
    await a.add_remote(answer.trickle((v6,)))  # restarts the grace
    [third] = timers.live
    assert second[0].cancelled and third is timers.armed[-1]
    third.fire()  # the grace expires: end-of-candidates
    await a.add_remote(answer.trickle(answer.candidates))  # b's real ones: too late
    assert a.remote_candidates == (v6,)
    with pytest.raises(CandidatesFailed) as info:
        await connecting
    assert str(info.value) == "ICE failed: no candidate pair worked"
    assert timers.live == []
    await b.close()


async def test_grace_restarts_while_the_peer_trickles() -> None:
    # Every payload the peer trickles restarts the grace, so a slow trickle is still heard:
    # the real candidates, after three duds, are used (they are the only ones that work).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        timers = ManualTimers()
        a = IceSession(initiator=True, host_addresses=LO, candidate_grace=0.3,
                       hooks=IceHooks(call_later=timers))
        b = IceSession(initiator=False, host_addresses=LO)
        await b.add_remote(
            replace(await a.gather(), ice=replace(a.local_payload().ice, candidates=()))
        )
        answer = await b.gather()
        await a.add_remote(replace(answer, ice=replace(answer.ice, candidates=())))
        connecting = asyncio.gather(a.connect(BOUND), b.connect(BOUND))
        grace = await timers.nth(1)  # connect() is running
        for i in range(3):
            dud = IceCandidate(1, "9", "127.0.0.1", port, 100 + i, "host", id=f"d{i}")
            await a.add_remote(answer.trickle((dud,)))
            [renewed] = timers.live
            assert grace.cancelled and renewed is not grace and renewed.delay == 0.3
            grace = renewed
        await a.add_remote(answer.trickle(answer.candidates))
        sa, sb = await connecting
        assert a.remote_candidates[-len(answer.candidates) :] == answer.candidates
        assert await pump(sa, sb, b"x") == b"x"
        await sa.aclose()
        await sb.aclose()


@pytest.mark.parametrize("pair", PAIRS)
async def test_bogus_candidates_are_ignored(pair: tuple[str, str]) -> None:
    a, b = make_sessions(pair)
    await negotiate(a, b)
    answer = b.local_payload()
    junk = (
        IceCandidate(2, "9", "127.0.0.1", 9, 1, "host", id="rtcp"),  # component 2
        IceCandidate(1, "9", "127.0.0.1", 9, 1, "prflx", id="p"),  # learnt from the checks
        answer.candidates[0],  # duplicate address
    )
    await a.add_remote(answer.trickle(junk))
    assert a.remote_candidates == answer.candidates
    sa, sb = await asyncio.gather(a.connect(10), b.connect(10))
    assert await pump(sb, sa, b"x" * 1000) == b"x" * 1000
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


async def test_trickled_candidates_after_accept() -> None:
    # Initiate and accept carry no candidates; the responder's arrive later, one
    # transport-info each (Conversations).  Only the initiator learns any candidate, so the
    # connection can only come from the trickled ones.
    def bare(p: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
        return replace(p, ice=replace(p.ice, candidates=()))

    timers = ManualTimers()
    a = IceSession(initiator=True, host_addresses=LO, hooks=IceHooks(call_later=timers))
    b = IceSession(initiator=False, host_addresses=LO)
    await b.add_remote(bare(await a.gather()))
    answer = await b.gather()
    await a.add_remote(bare(answer))

    async def trickle_later() -> None:
        await timers.nth(1)  # a's connect() runs (and armed its grace)
        assert a.selected_pair() is None
        for c in answer.candidates:
            await a.add_remote(answer.trickle((c,)))

    sa, sb, _ = await asyncio.gather(a.connect(BOUND), b.connect(BOUND), trickle_later())
    assert a.remote_candidates == answer.candidates and b.remote_candidates == ()
    assert await pump(sa, sb, b"late") == b"late"
    await sa.aclose()
    await sb.aclose()


@pytest.mark.parametrize("pair", PAIRS)
async def test_candidates_trickled_one_by_one_after_accept(pair: tuple[str, str]) -> None:
    # Conversations-shaped: session-initiate and session-accept carry no candidates; the
    # responder's follow one transport-info each once both connect()s run, and only the
    # initiator learns any, so the connection can only come from the trickled ones.
    def bare(p: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
        return replace(p, ice=replace(p.ice, candidates=()))

    a, b = make_sessions(pair)
    await b.add_remote(bare(await a.gather()))
    answer = await b.gather()
    await a.add_remote(bare(answer))
    connecting = asyncio.gather(a.connect(BOUND), b.connect(BOUND))
    assert a.selected_pair() is None
    for c in answer.candidates:
        await a.add_remote(answer.trickle((c,)))
    sa, sb = await connecting
    assert a.remote_candidates == answer.candidates and b.remote_candidates == ()
    assert await pump(sa, sb, b"late") == b"late"
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@pytest.mark.parametrize("pair", PAIRS)
async def test_first_payload_must_carry_credentials_and_fingerprint(
        pair: tuple[str, str]) -> None:
    a, b = make_sessions(pair)
    other = session_class(pair[0])(initiator=True, host_addresses=LO)
    await b.add_remote(await other.gather())  # b answers another offer
    answer = await b.gather()
    with pytest.raises(TransportError) as info:
        await a.add_remote(answer.trickle(answer.candidates))
    assert str(info.value) == "the peer's ICE transport lacks ufrag, pwd or fingerprint"
    await close_all(a, b, other)


@pytest.mark.parametrize("pair", PAIRS)
async def test_send_after_close_raises(pair: tuple[str, str]) -> None:
    a, b = make_sessions(pair)
    sa, sb = await connect_pair(a, b)
    await sb.aclose()
    # Nobody acknowledges any more: send() blocks once BUFFER_LIMIT is reached, until the
    # peer's close (SCTP abort, DTLS close_notify) breaks the stream.
    with pytest.raises(StreamClosed):
        async with asyncio.timeout(BOUND):
            while True:
                await sa.send(b"x" * 70000)
    await sa.aclose()
    await close_all(a, b)


# ------------------------------------------------------------------ TURN (coturn on loopback)


def turn_servers(turn: CoturnServer) -> IceServers:
    user, password = turn.rest_credentials()
    return IceServers(
        stun_host=turn.host,
        stun_port=turn.port,
        turn_host=turn.host,
        turn_port=turn.port,
        turn_username=user,
        turn_password=password,
    )


async def test_relay_only_through_coturn(coturn: CoturnServer) -> None:
    a, b = make_pair(servers=turn_servers(coturn), relay_only=True)
    sa, sb = await connect_pair(a, b, timeout=15)
    pa, pb = a.selected_pair(), b.selected_pair()
    assert pa is not None and pa.path is PathKind.ICE_RELAY and pa.local_type == "relay"
    assert pb is not None and pb.path is PathKind.ICE_RELAY
    assert all(c.type == "relay" for c in a.local_payload().candidates)
    data = os.urandom(1_000_000)
    assert hashlib.sha256(await pump(sa, sb, data)).digest() == hashlib.sha256(data).digest()
    await sa.aclose()
    await sb.aclose()


@needs_native
async def test_native_relays_through_coturn_over_udp(coturn: CoturnServer) -> None:
    # libjuice allocates on coturn over UDP (TURN REST credentials) and relays through it.
    # libjuice has no relay-only mode (jinglefs/ice/backend.py), so each side announces only
    # its relay candidate: the initiator's checks go to the responder's allocation, and the
    # responder answers from it, so the initiator's pair ends on coturn.
    def relays(p: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
        kept = tuple(c for c in p.candidates if c.type == "relay")
        assert kept and all(c.ip == coturn.host for c in kept)
        return replace(p, ice=replace(p.ice, candidates=kept))

    a, b = make_sessions(("native", "native"), servers=turn_servers(coturn))
    await b.add_remote(relays(await a.gather()))
    answer = relays(await b.gather())
    await a.add_remote(answer)
    sa, sb = await asyncio.gather(a.connect(15), b.connect(15))
    pair = a.selected_pair()
    assert pair is not None and pair.path is PathKind.ICE_RELAY
    assert pair.remote_type == "relay" and pair.remote_address in {
        (c.ip, c.port) for c in answer.candidates}
    data = os.urandom(1_000_000)
    assert hashlib.sha256(await pump(sa, sb, data)).digest() == hashlib.sha256(data).digest()
    await sa.aclose()
    await sb.aclose()
    await close_all(a, b)


@needs_native
async def test_native_ignores_turn_over_tcp(coturn: CoturnServer) -> None:
    # What backend.choose_implementation relies on: libjuice relays over UDP only, so a TURN
    # server given over TCP yields no relay candidate (aiortc is chosen for such servers).
    native = native_module()
    tcp = replace(turn_servers(coturn), stun_host=None, turn_transport="tcp")
    assert native._ice_servers(tcp) == []  # nothing libjuice could use
    a = session_class("native")(initiator=True, host_addresses=LO, servers=tcp)
    offer = await a.gather()
    assert [c.type for c in offer.candidates] == ["host"]
    await a.close()


async def _late_direct(turn: CoturnServer, *, hold: bool) -> PathKind:
    """The relay candidates are there at once, both host candidates come late (as when a NAT
    drops the first direct checks).  With ``hold`` the relay gate stays closed and the hosts
    are trickled once a's first relay check waits at it; without, there is no hold and they
    are trickled once a's ICE has nominated a pair."""
    # TURN only: on loopback a srflx candidate would just be the host address again.
    servers = replace(turn_servers(turn), stun_host=None)
    held = asyncio.Event()

    async def closed_gate() -> None:
        held.set()
        await asyncio.Event().wait()  # never opens: relay checks wait until cancelled

    hooks = IceHooks(relay_gate=closed_gate) if hold else IceHooks()
    a = IceSession(initiator=True, host_addresses=LO, servers=servers,
                   relay_delay=1.0 if hold else 0.0, hooks=hooks)
    b = IceSession(initiator=False, host_addresses=LO, servers=servers)

    def split(
        p: WebRtcDataChannelTransport,
    ) -> tuple[WebRtcDataChannelTransport, tuple[IceCandidate, ...]]:
        hosts = tuple(c for c in p.candidates if c.type == "host")
        others = tuple(c for c in p.candidates if c.type != "host")
        assert hosts and any(c.type == "relay" for c in others)
        return replace(p, ice=replace(p.ice, candidates=others)), hosts

    offer, a_hosts = split(await a.gather())
    await b.add_remote(offer)
    answer, b_hosts = split(await b.gather())
    await a.add_remote(answer)
    nominated = asyncio.Event()
    assert a._ice is not None
    a._ice.on("statechange", lambda: nominated.set() if a._ice and a._ice.state == "completed"
              else None)

    connecting = asyncio.ensure_future(asyncio.gather(a.connect(BOUND), b.connect(BOUND)))
    trigger = asyncio.ensure_future(held.wait() if hold else nominated.wait())
    first: set[asyncio.Future[Any]] = {trigger, connecting}
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    trickled = trigger.done()
    if trickled:
        await a.add_remote(answer.trickle(b_hosts))
        await b.add_remote(offer.trickle(a_hosts))
    trigger.cancel()
    sa, sb = await connecting
    assert trickled, "a connected before the host candidates were trickled"
    pair = a.selected_pair()
    assert pair is not None
    assert await pump(sa, sb, b"ok") == b"ok"
    await sa.aclose()
    await sb.aclose()
    return pair.path


async def test_relay_hold_lets_late_direct_pair_win(coturn: CoturnServer) -> None:
    assert await _late_direct(coturn, hold=True) is PathKind.ICE_DIRECT


async def test_without_relay_hold_the_relay_wins(coturn: CoturnServer) -> None:
    # The aioice behaviour the hold exists for (natlab pitfall 3): the first pair to answer
    # is nominated, and direct candidates that arrive later do not replace it.
    assert await _late_direct(coturn, hold=False) is PathKind.ICE_RELAY


# ------------------------------------------------------------------ XEP-0215 (extdisco)

EXT = "urn:xmpp:extdisco:2"


def services(*attrs: str) -> ET.Element:
    inner = "".join(f"<service {a}/>" for a in attrs)
    return ET.fromstring(f"<services xmlns='{EXT}'>{inner}</services>")


# What Prosody's mod_turn_external answers (natlab/README.md), host/ports illustrative.
PROSODY_SERVICES = services(
    "type='stun' transport='tcp' host='203.0.113.1' port='3478'",
    "type='stun' transport='udp' host='203.0.113.1' port='3478'",
    "type='turn' transport='tcp' host='203.0.113.1' port='3478' username='1795328558'"
    " password='dE9Rbn+HoiU6wDLZqT9xgmhvKlk=' expires='2026-11-22T06:22:38Z' restricted='1'",
    "type='turn' transport='udp' host='203.0.113.1' port='3478' username='1795328558'"
    " password='dE9Rbn+HoiU6wDLZqT9xgmhvKlk=' expires='2026-11-22T06:22:38Z' restricted='1'",
)


def test_extdisco_prosody_answer() -> None:
    servers = pick_ice_servers(parse_services(PROSODY_SERVICES))
    assert servers == IceServers(
        stun_host="203.0.113.1",
        stun_port=3478,
        turn_host="203.0.113.1",
        turn_port=3478,
        turn_username="1795328558",
        turn_password="dE9Rbn+HoiU6wDLZqT9xgmhvKlk=",
        turn_transport="tcp",  # tcp preferred: it also relays when UDP is blocked
        turn_ssl=False,
        turn_expires=datetime(2026, 11, 22, 6, 22, 38, tzinfo=UTC),
        turn_also_udp_port=3478,  # the same server over UDP: what the native stack can use
    )


def test_extdisco_conversations_rules() -> None:
    parsed = parse_services(
        services(
            "type='stun' host='a.example' transport='udp'",  # no port
            "type='stun' host='b.example' port='3478'",  # no transport
            "type='stun' host='c.example' port='99999' transport='udp'",  # bad port
            "type='stuns' host='d.example' port='5349' transport='udp'",  # TLS over udp
            "type='turn' host='e.example' port='3478' transport='udp'",  # no credentials
            "type='ftp' host='f.example' port='21' transport='tcp'",  # not stun/turn
            "type='turn' host='g.example' port='3478' transport='udp' username='u'"
            " password='p' action='remove'",  # a push removing it
            "type='turns' host='h.example' port='5349' transport='tcp' username='u' password='p'",
            "type='stun' host='i.example' port='3478' transport='udp'",
        )
    )
    assert [s.host for s in parsed] == ["e.example", "h.example", "i.example"]
    servers = pick_ice_servers(parsed)
    assert servers is not None
    assert (servers.stun_host, servers.stun_port) == ("i.example", 3478)
    assert (servers.turn_host, servers.turn_transport, servers.turn_ssl) == (
        "h.example",
        "tcp",
        True,
    )


def test_extdisco_nothing_usable() -> None:
    assert pick_ice_servers(parse_services(services("type='turn' host='x' port='1'"))) is None


async def _login(server: ProsodyServer, user: str) -> XmppConnection:
    conn = XmppConnection(server.account(user), features=[], on_jingle=lambda *_: None)
    await conn.connect(10)
    return conn


async def test_extdisco_from_prosody_then_relay_transfer(
    prosody_factory: Callable[..., ProsodyServer], coturn: CoturnServer
) -> None:
    server = prosody_factory(turn=coturn, proxy65=False)
    alice, bob = await _login(server, "alice"), await _login(server, "bob")
    try:
        sa_servers = await fetch_ice_servers(alice.xmpp, server.domain)
        sb_servers = await fetch_ice_servers(bob.xmpp, server.domain)
    finally:
        await alice.aclose()
        await bob.aclose()
    assert sa_servers is not None and sb_servers is not None
    assert (sa_servers.turn_host, sa_servers.turn_port) == (coturn.host, coturn.port)
    assert sa_servers.turn_transport == "tcp" and sa_servers.turn_expires is not None
    assert sa_servers.turn_udp_port == coturn.port  # announced over UDP as well
    assert (sa_servers.stun_host, sa_servers.stun_port) == (coturn.host, coturn.port)
    # The credentials Prosody minted are accepted by coturn: relay-only ICE connects.
    a = IceSession(initiator=True, host_addresses=LO, servers=sa_servers, relay_only=True)
    b = IceSession(initiator=False, host_addresses=LO, servers=sb_servers, relay_only=True)
    sa, sb = await connect_pair(a, b, timeout=15)
    pair = a.selected_pair()
    assert pair is not None and pair.path is PathKind.ICE_RELAY
    assert await pump(sa, sb, b"via turn") == b"via turn"
    await sa.aclose()
    await sb.aclose()


async def test_extdisco_server_without_it(prosody: ProsodyServer) -> None:
    conn = await _login(prosody, "alice")
    try:
        assert await fetch_ice_servers(conn.xmpp, prosody.domain) is None
    finally:
        await conn.aclose()


class _FakeIq:
    def __init__(self, xmpp: _FakeXmpp, to: str) -> None:
        self.xmpp, self.to, self.payload = xmpp, to, ET.Element("none")

    def append(self, el: ET.Element) -> None:
        self.payload = el

    async def send(self, timeout: float) -> _FakeIq:
        self.xmpp.sent.append(self.payload)
        answer = self.xmpp.answers.get(self.payload.tag)
        if answer is None:
            raise IqTimeout(None)
        reply = _FakeIq(self.xmpp, self.to)
        reply.xml = ET.Element("{jabber:client}iq", {"type": "result"})  # type: ignore[attr-defined]
        reply.xml.append(answer)  # type: ignore[attr-defined]
        return reply


class _FakeXmpp:
    """Just enough of slixmpp.BaseXMPP for fetch_ice_servers: make_iq + iq.send."""

    def __init__(self, answers: dict[str, ET.Element]) -> None:
        self.answers = answers
        self.sent: list[ET.Element] = []

    def make_iq(self, ito: str, itype: str) -> _FakeIq:
        assert itype == "get"
        return _FakeIq(self, ito)


DISCO = "http://jabber.org/protocol/disco#info"


def disco(*features: str) -> ET.Element:
    q = ET.Element(f"{{{DISCO}}}query")
    for f in features:
        ET.SubElement(q, f"{{{DISCO}}}feature", {"var": f})
    return q


async def test_extdisco_restricted_service_gets_credentials() -> None:
    creds = ET.fromstring(
        f"<credentials xmlns='{EXT}'><service type='turn' host='t.example' port='3478'"
        " transport='udp' username='u1' password='p1'/></credentials>"
    )
    fake = _FakeXmpp(
        {
            f"{{{DISCO}}}query": disco(EXT),
            f"{{{EXT}}}services": services(
                "type='turn' host='t.example' port='3478' transport='udp' restricted='1'"
            ),
            f"{{{EXT}}}credentials": creds,
        }
    )
    servers = await fetch_ice_servers(fake, "example.org")  # type: ignore[arg-type]
    assert servers is not None
    assert (servers.turn_host, servers.turn_username, servers.turn_password) == (
        "t.example",
        "u1",
        "p1",
    )
    request = fake.sent[-1]
    assert request.tag == f"{{{EXT}}}credentials"
    (svc,) = list(request)
    assert svc.attrib == {"host": "t.example", "type": "turn", "port": "3478"}


async def test_extdisco_needs_the_disco_feature() -> None:
    fake = _FakeXmpp({f"{{{DISCO}}}query": disco("urn:xmpp:extdisco:1")})
    assert await fetch_ice_servers(fake, "example.org") is None  # type: ignore[arg-type]
    assert len(fake.sent) == 1  # no <services/> query without the :2 feature


async def test_extdisco_unanswered_query_gives_none() -> None:
    fake = _FakeXmpp({f"{{{DISCO}}}query": disco(EXT)})  # <services/> times out
    assert await fetch_ice_servers(fake, "example.org", timeout=0.1) is None  # type: ignore[arg-type]
