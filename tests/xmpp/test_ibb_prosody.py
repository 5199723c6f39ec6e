"""IbbService end to end: real slixmpp clients on a real Prosody on loopback.

alice, bob and carol log in to the session ``prosody`` fixture.  Files go alice → bob
through :class:`IbbService` (alice sends ``<open/>``, as the Jingle initiator would,
XEP-0261 §2.2) and are compared with sha-256.  The refusal tests speak raw XEP-0047
stanzas through slixmpp's own Iq API, so what they check is the wire, not our sender.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from jinglefs.api import Account
from jinglefs.errors import StreamClosed
from jinglefs.ibb.protocol import encode_block
from jinglefs.ibb.service import IbbService, IbbStream
from jinglefs.ibb.stream import IbbError, IbbProtocolViolation, StreamState
from jinglefs.jingle import ns

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def login(account: Account, resource: str) -> slixmpp.ClientXMPP:
    xmpp = slixmpp.ClientXMPP(f"{account.jid.split('/')[0]}/{resource}", account.password)
    if account.ca_file:
        xmpp.ca_certs = Path(account.ca_file)
    xmpp.enable_direct_tls = False  # the fixture's port speaks STARTTLS
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_start(_: Any) -> None:
        if not started.done():
            started.set_result(None)

    def on_failed(_: Any) -> None:
        if not started.done():
            started.set_exception(RuntimeError(f"{account.jid}: authentication failed"))

    xmpp.add_event_handler("session_start", on_start)
    xmpp.add_event_handler("failed_auth", on_failed)
    xmpp.connect(account.server, account.port)
    await asyncio.wait_for(started, 30)
    return xmpp


class Peer:
    def __init__(self, xmpp: slixmpp.ClientXMPP, **kw: Any) -> None:
        self.xmpp = xmpp
        self.jid = str(xmpp.boundjid.full)
        self.ibb = IbbService(xmpp, **kw)


@pytest.fixture
async def peers(prosody: Any, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Peer]]:
    tag = os.urandom(3).hex()
    kw: dict[str, Any] = getattr(request, "param", {})
    clients = await asyncio.gather(
        *(login(prosody.account(user), f"ibb-{tag}") for user in ("alice", "bob", "carol"))
    )
    out = {name: Peer(x, **kw) for name, x in zip(("alice", "bob", "carol"), clients, strict=True)}
    try:
        yield out
    finally:
        for peer in out.values():
            peer.ibb.detach()
        await asyncio.gather(
            *(asyncio.wait_for(p.xmpp.disconnect(), 10) for p in out.values()),
            return_exceptions=True,
        )


async def open_pair(
    alice: Peer, bob: Peer, sid: str, block_size: int = 4096
) -> tuple[IbbStream, IbbStream]:
    incoming = bob.ibb.expect(alice.jid, sid, block_size)
    outgoing = await alice.ibb.open(bob.jid, sid, block_size, timeout=20)
    await incoming.wait_open(20)
    return outgoing, incoming


async def send_file(stream: IbbStream, data: bytes, piece: int = 256 * 1024) -> None:
    for i in range(0, len(data), piece):
        await stream.send(data[i : i + piece])
    await stream.drain(30)
    await stream.aclose()


async def read_file(stream: IbbStream, max_bytes: int, bound: int | None = None) -> bytes:
    out = bytearray()
    while chunk := await stream.receive(max_bytes):
        out += chunk
        if bound is not None:
            assert stream.buffered <= bound
            await asyncio.sleep(0)
    return bytes(out)


def raw_iq(peer: Peer, to: str, child: ET.Element) -> Any:
    iq = peer.xmpp.make_iq_set(ito=to)
    iq.append(child)
    return iq.send(timeout=20)


def ibb(tag: str, **attrs: str) -> ET.Element:
    return ET.Element(f"{{{ns.IBB}}}{tag}", attrs)


@pytest.mark.parametrize("size", [0, 1, 3_000_017])
async def test_file_moves_intact(peers: dict[str, Peer], size: int) -> None:
    alice, bob = peers["alice"], peers["bob"]
    payload = os.urandom(size)
    tx, rx = await open_pair(alice, bob, f"file-{size}")
    sender = asyncio.create_task(send_file(tx, payload))
    got = await read_file(rx, 1 << 20)
    await sender
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert tx.bytes_sent == rx.bytes_received == size
    assert tx.state is rx.state is StreamState.CLOSED
    assert alice.ibb.streams == [] and bob.ibb.streams == []


@pytest.mark.parametrize("peers", [{"recv_buffer": 32 * 1024, "window": 8}], indirect=True)
async def test_slow_reader_bounds_memory(peers: dict[str, Peer]) -> None:
    """A file far larger than every buffer, read in small bites: acks are held back."""
    alice, bob = peers["alice"], peers["bob"]
    payload = os.urandom(1_500_001)
    tx, rx = await open_pair(alice, bob, "slow-reader")
    sender = asyncio.create_task(send_file(tx, payload))
    got = await read_file(rx, 3000, bound=32 * 1024 + 8 * 4096)
    await sender
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


async def test_both_directions_on_one_stream(peers: dict[str, Peer]) -> None:
    alice, bob = peers["alice"], peers["bob"]
    tx, rx = await open_pair(alice, bob, "duplex", block_size=2048)
    up, down = os.urandom(100_000), os.urandom(70_001)
    await asyncio.gather(tx.send(up), rx.send(down))
    await asyncio.gather(tx.drain(30), rx.drain(30))
    got_up = bytearray()
    while len(got_up) < len(up):
        got_up += await rx.receive(1 << 20)
    got_down = bytearray()
    while len(got_down) < len(down):
        got_down += await tx.receive(1 << 20)
    assert bytes(got_up) == up and bytes(got_down) == down
    await tx.aclose()
    assert await rx.receive(10) == b""


async def test_unexpected_open_is_not_acceptable(peers: dict[str, Peer]) -> None:
    alice, bob, carol = peers["alice"], peers["bob"], peers["carol"]
    with pytest.raises(IbbError) as info:
        await alice.ibb.open(bob.jid, "nobody-expects-this", 4096, timeout=20)
    assert info.value.condition == "not-acceptable"
    expected = bob.ibb.expect(alice.jid, "for-alice", 4096)
    # the right sid from the wrong JID
    with pytest.raises(IbbError) as info:
        await carol.ibb.open(bob.jid, "for-alice", 4096, timeout=20)
    assert info.value.condition == "not-acceptable"
    # a bigger block size than negotiated (XEP-0261 §2.2), raw so nothing of ours is in the way
    with pytest.raises(IqError) as raw:
        await raw_iq(alice, bob.jid, ibb("open", sid="for-alice", **{"block-size": "8192"}))
    assert raw.value.condition == "resource-constraint"
    assert expected.state is StreamState.EXPECTING
    # the right open still works afterwards
    tx = await alice.ibb.open(bob.jid, "for-alice", 4096, timeout=20)
    await expected.wait_open(20)
    await send_file(tx, b"finally")
    assert await read_file(expected, 100) == b"finally"


async def test_third_party_data_is_item_not_found_and_changes_nothing(
    peers: dict[str, Peer],
) -> None:
    alice, bob, carol = peers["alice"], peers["bob"], peers["carol"]
    tx, rx = await open_pair(alice, bob, "private")
    first, second = os.urandom(10_000), os.urandom(20_000)
    await tx.send(first)
    await tx.drain(30)  # alice's next seq is 3
    for seq in ("3", "0"):
        with pytest.raises(IqError) as info:
            await raw_iq(carol, bob.jid, _data("private", seq, b"carol was here"))
        assert info.value.condition == "item-not-found"
    with pytest.raises(IqError) as info:  # an unknown sid, from alice herself
        await raw_iq(alice, bob.jid, _data("no-such-sid", "0", b"x"))
    assert info.value.condition == "item-not-found"
    await send_file(tx, second)
    got = await read_file(rx, 1 << 20)
    assert hashlib.sha256(got).digest() == hashlib.sha256(first + second).digest()
    assert rx.bytes_received == 30_000


def _data(sid: str, seq: str, payload: bytes | str) -> ET.Element:
    el = ibb("data", sid=sid, seq=seq)
    el.text = payload if isinstance(payload, str) else encode_block(payload)
    return el


async def test_raw_peer_out_of_sequence_and_bad_base64(peers: dict[str, Peer]) -> None:
    alice, bob = peers["alice"], peers["bob"]
    for bad_seq, bad_text, condition in (
        ("0", None, "unexpected-request"),
        ("1", "QUJD=", "bad-request"),
        ("1", encode_block(bytes(1025)), "bad-request"),
    ):
        sid = f"raw-{condition}-{len(bad_text or '')}"
        rx = bob.ibb.expect(alice.jid, sid, 1024)
        await raw_iq(alice, bob.jid, ibb("open", sid=sid, **{"block-size": "1024"}))
        await rx.wait_open(20)
        await raw_iq(alice, bob.jid, _data(sid, "0", b"ABC"))
        with pytest.raises(IqError) as info:
            await raw_iq(alice, bob.jid, _data(sid, bad_seq, bad_text or b"DEF"))
        assert info.value.condition == condition
        assert await rx.receive(100) == b"ABC"
        with pytest.raises(IbbProtocolViolation) as violation:
            await rx.receive(100)
        assert violation.value.condition == condition
        assert rx.bytes_received == 3
        assert bob.ibb.streams == []  # sid released; later data gets item-not-found
        with pytest.raises(IqError) as info:
            await raw_iq(alice, bob.jid, _data(sid, "1", b"GHI"))
        assert info.value.condition == "item-not-found"


async def test_message_mode_receive(peers: dict[str, Peer]) -> None:
    """XEP-0047 §4: <data/> in <message> stanzas (no per-chunk answers)."""
    alice, bob = peers["alice"], peers["bob"]
    rx = bob.ibb.expect(alice.jid, "by-message", 4096)
    await raw_iq(
        alice, bob.jid, ibb("open", sid="by-message", stanza="message", **{"block-size": "4096"})
    )
    await rx.wait_open(20)
    assert rx.stanza == "message"
    payload = os.urandom(4096 * 5 + 3)
    for seq, i in enumerate(range(0, len(payload), 4096)):
        msg = alice.xmpp.make_message(mto=bob.jid)
        msg["id"] = f"m{seq}"
        msg.append(_data("by-message", str(seq), payload[i : i + 4096]))
        msg.send()
    await raw_iq(alice, bob.jid, ibb("close", sid="by-message"))
    assert await read_file(rx, 1 << 20) == payload


async def test_close_all_and_lost_connection(peers: dict[str, Peer]) -> None:
    alice, bob = peers["alice"], peers["bob"]
    # close_all: our stream fails locally, the contact sees a clean <close/> (EOF)
    tx, rx = await open_pair(alice, bob, "shutdown")
    await tx.send(b"partial")
    alice.ibb.close_all()
    with pytest.raises(StreamClosed, match="shut down"):
        await tx.send(b"more")
    assert await read_file(rx, 100) == b"partial"
    # bob's connection drops mid-transfer: his reader fails, alice's sends get IQ errors
    tx, rx = await open_pair(alice, bob, "dropped")
    await tx.send(os.urandom(50_000))
    await tx.drain(30)
    await asyncio.wait_for(bob.xmpp.disconnect(), 10)
    got = bytearray()
    with pytest.raises(StreamClosed, match="connection was lost"):
        while chunk := await rx.receive(1 << 20):
            got += chunk
    assert len(got) == 50_000
    with pytest.raises(IbbError) as info:
        for _ in range(100):
            await tx.send(os.urandom(4096))
        await tx.drain(30)
    assert info.value.condition in (
        "service-unavailable",
        "recipient-unavailable",
        "item-not-found",
    )
    assert alice.ibb.streams == [] and bob.ibb.streams == []
