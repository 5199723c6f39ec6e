"""jinglefs with a Libervia 0.8 peer (tests/interop/libervia.py, docs/interop.md §7), over
the real Prosody: real transfers both ways on SOCKS5 direct, SOCKS5 through proxy65 and
IBB, Libervia's hex-in-base64 hashes, its required hash-used, its IBB seq and its JMI
proposal."""

from __future__ import annotations

import asyncio
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from jinglefs.client import Client
from jinglefs.events import Completed, PathKind, Verification
from jinglefs.ibb.protocol import seq_acceptable
from jinglefs.jid import bare_jid
from tests.e2e.conftest import BOUND, first_offer, logged_in, make_file, paths
from tests.servers.prosody import ProsodyServer

from . import gajim, libervia
from .bytestreams import Candidate, Conn, S5bSide, candidates_of
from .peer import (
    FT,
    IBB_T,
    JINGLE,
    S5B,
    ScriptedPeer,
    ibb_opened,
    ibb_receive,
    ibb_send,
    local,
    proxy65_address,
    random_data,
    read_exactly,
    reason_of,
    s5b_dstaddr,
    s5b_listen,
    scripted_peer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@asynccontextmanager
async def libervia_and_jinglefs(prosody: ProsodyServer, tag: str
                                ) -> AsyncIterator[tuple[ScriptedPeer, Client]]:
    """Libervia as alice, jinglefs as bob (contacts of each other)."""
    async with (scripted_peer(prosody, "alice", f"libervia-{tag}",
                              features=libervia.FEATURES, identity=libervia.IDENTITY,
                              caps_node=libervia.CAPS_NODE) as peer,
                logged_in(prosody, "bob", f"jfs-{tag}") as bob):
        yield peer, bob


async def negotiate(side: S5bSide, theirs: list[Candidate], *, dial: bool = True,
                    on_ours_won: Callable[[Candidate], None] | None = None) -> Conn:
    """Libervia's half of XEP-0260 §2.3-§2.4 (owner-first DST.ADDR both ways, the
    default of S5bSide); fails if both sides report candidate-error."""
    conn = await side.negotiate(theirs, dial=dial, on_ours_won=on_ours_won)
    assert conn is not None, "both sides sent candidate-error"
    return conn


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def offer_from_libervia(peer: ScriptedPeer, to: str, sid: str, cname: str, name: str,
                              size: int, transport: str) -> None:
    file = libervia.file_xml(name, size, media_type="application/octet-stream")
    reply = await peer.send_jingle(to, libervia.jingle(
        "session-initiate", sid, libervia.content(
            cname, libervia.description(file) + transport), initiator=peer.jid))
    assert reply.get("type") == "result"


async def checksum_then_success(peer: ScriptedPeer, to: str, sid: str, cname: str,
                                data: bytes, transfer: object) -> None:
    """``_sendCheckSum`` after the last byte; jinglefs reads the hex-in-base64 value,
    verifies, and ends the session with success."""
    reply = await peer.session_info(to, sid, libervia.checksum("initiator", cname, data))
    assert reply.get("type") == "result"
    done = await asyncio.wait_for(transfer.wait(), BOUND)  # type: ignore[attr-defined]
    assert isinstance(done, Completed) and done.verified
    assert done.verification is Verification.SENDER_HASH
    assert sha(Path(done.path).read_bytes()) == sha(data) == done.hashes["sha-256"]
    assert reason_of(await peer.next_jingle("session-terminate")) == "success"


# ---------------------------------------------------------------- Libervia sends


async def test_libervia_0_8_sends_over_socks5_with_a_hex_in_base64_checksum(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """hash-used in the offer, owner-first DST.ADDR both ways, mode='tcp'; after the data
    the checksum's value is base64 of the hex digest: jinglefs verifies it."""
    async with libervia_and_jinglefs(prosody, "s5b-in") as (peer, bob):
        data = random_data(230_000)
        sid, tsid, cname = libervia.uid(), libervia.uid(), libervia.uid()
        listener = await s5b_listen(check=lambda a: a == s5b_dstaddr(tsid, peer.jid, bob.jid))
        mine = [Candidate(libervia.uid(), "127.0.0.1", listener.port, peer.jid,
                          libervia.BEST_DIRECT_PRIORITY)]
        await offer_from_libervia(peer, bob.jid, sid, cname, "paper.pdf", len(data),
                                  libervia.s5b_transport(tsid, mine, owner=peer.jid,
                                                         peer=bob.jid))
        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [("paper.pdf", len(data))]
        [transfer] = await offer.accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        t = accept.find(f"{{{JINGLE}}}content/{{{S5B}}}transport")
        assert t is not None and t.get("sid") == tsid
        side = S5bSide(peer, bob.jid, sid, tsid, cname, "initiator", True, mine, listener)
        _reader, writer = await negotiate(side, candidates_of(accept))
        await gajim.send_and_disconnect(writer, data)
        await checksum_then_success(peer, bob.jid, sid, cname, data, transfer)
        assert {e.path for e in await paths(transfer)} == {PathKind.S5B_DIRECT}
        listener.close()


async def test_libervia_0_8_sends_over_ibb_with_its_own_seq_and_close(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Libervia, the Jingle initiator, opens (block 4096), sends one IQ at a time with
    seq modulo 65535 and closes; then its checksum."""
    async with libervia_and_jinglefs(prosody, "ibb-in") as (peer, bob):
        data = random_data(45_000)
        sid, ibb_sid, cname = libervia.uid(), libervia.uid(), libervia.uid()
        await offer_from_libervia(peer, bob.jid, sid, cname, "log.txt", len(data),
                                  libervia.ibb_transport(ibb_sid))
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        assert accept.find(f"{{{JINGLE}}}content/{{{IBB_T}}}transport") is not None
        await ibb_send(peer, bob.jid, ibb_sid, data, block_size=libervia.IBB_BLOCK,
                       seq_modulo=libervia.SEQ_MODULO)
        await checksum_then_success(peer, bob.jid, sid, cname, data, transfer)
        assert {e.path for e in await paths(transfer)} == {PathKind.IBB}


async def test_libervia_0_8_sends_through_its_proxy(prosody: ProsodyServer,
                                                    tmp_path: Path) -> None:
    """Only its server's proxy offered (dstaddr owner-first); Libervia cannot reach
    jinglefs; it activates the proxy with the transport sid, waits for the answer, then
    sends <activated/>, the bytes and its checksum."""
    async with libervia_and_jinglefs(prosody, "proxy-in") as (peer, bob):
        data = random_data(160_000)
        sid, tsid, cname = libervia.uid(), libervia.uid(), libervia.uid()
        host, port = await proxy65_address(peer, prosody.proxy_jid)
        proxy = Candidate(libervia.uid(), host, port, prosody.proxy_jid,
                          libervia.PROXY_PRIORITY, "proxy")
        await offer_from_libervia(peer, bob.jid, sid, cname, "band.mp3", len(data),
                                  libervia.s5b_transport(tsid, [proxy], owner=peer.jid,
                                                         peer=bob.jid))
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        await peer.next_jingle("session-accept")

        # _checkCandidates: its own proxy is activated (the answer waited for), then
        # <activated/>
        side = S5bSide(peer, bob.jid, sid, tsid, cname, "initiator", True, [proxy], None)
        won: list[Candidate] = []
        _reader, writer = await negotiate(side, [], dial=False, on_ours_won=won.append)
        assert won == [proxy]
        await gajim.send_and_disconnect(writer, data)
        await checksum_then_success(peer, bob.jid, sid, cname, data, transfer)
        assert {e.path for e in await paths(transfer)} == {PathKind.S5B_PROXY}


async def test_libervia_0_8_proposes_with_jmi_before_sending_to_a_bare_jid(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """To a bare JID Libervia first sends <propose/> with an empty description; jinglefs
    (a roster contact) answers <proceed/>, and the session-initiate that follows, with the
    propose id as sid, to the full JID that proceeded, is an ordinary offer."""
    async with libervia_and_jinglefs(prosody, "jmi") as (peer, bob):
        inbox = libervia.JmiInbox(peer)
        data = random_data(20_000)
        sid, ibb_sid, cname = libervia.uid(), libervia.uid(), libervia.uid()
        libervia.send_propose(peer, bare_jid(bob.jid), sid)
        proceeder, proceed = await inbox.next("proceed")
        assert proceed.get("id") == sid and proceeder == bob.jid
        await offer_from_libervia(peer, proceeder, sid, cname, "voice.opus", len(data),
                                  libervia.ibb_transport(ibb_sid))
        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [("voice.opus", len(data))]
        [transfer] = await offer.accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        assert accept.get("sid") == sid
        await ibb_send(peer, bob.jid, ibb_sid, data, block_size=libervia.IBB_BLOCK,
                       seq_modulo=libervia.SEQ_MODULO)
        await checksum_then_success(peer, bob.jid, sid, cname, data, transfer)


# ---------------------------------------------------------------- Libervia receives


def offered(initiate: ET.Element) -> tuple[str, ET.Element, ET.Element]:
    """(content name, file, transport) of the one offered content."""
    [c] = initiate.findall(f"{{{JINGLE}}}content")
    f = c.find(f"{{{FT}}}description/{{{FT}}}file")
    assert f is not None
    t = next(el for el in c if local(el.tag) == "transport")
    return str(c.get("name")), f, t


async def libervia_ends_after_our_checksum(peer: ScriptedPeer, to: str, sid: str,
                                           cname: str, data: bytes) -> None:
    """Our checksum is answered with a result but cannot be read there (a standard
    base64 value is not hex text); Libervia ends with success 5 s after the last byte."""
    while True:
        info = await peer.next_jingle("session-info")
        checksum = info.find(f"{{{FT}}}checksum")
        if checksum is not None and checksum.get("name") == cname:
            break
    assert not libervia.reads_checksum(checksum, data)
    assert (await peer.terminate(to, sid, "success")).get("type") == "result"


async def test_libervia_0_8_receives_over_socks5_and_ends_without_reading_our_checksum(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Our offer carries the hash-used Libervia requires; it dials with owner-first
    DST.ADDR, its listener takes only owner-first; our checksum is unreadable there, yet
    it ends with success: a delivered file for jinglefs."""
    async with libervia_and_jinglefs(prosody, "s5b-out") as (peer, bob):
        src = make_file(tmp_path, "thesis.tex", 210_000)
        data = src.read_bytes()
        [sent] = await bob.send_files(peer.jid, [src])
        initiate = await peer.next_jingle("session-initiate")
        cname, f, t = offered(initiate)
        assert libervia.required_hash(f) == ("sha-256", None)
        assert t.tag == f"{{{S5B}}}transport"
        sid, tsid = str(initiate.get("sid")), str(t.get("sid"))
        listener = await s5b_listen(check=lambda a: a == s5b_dstaddr(tsid, peer.jid, bob.jid))
        mine = [Candidate(libervia.uid(), "127.0.0.1", listener.port, peer.jid,
                          libervia.BEST_DIRECT_PRIORITY)]
        reply = await peer.send_jingle(bob.jid, libervia.session_accept(
            sid, peer.jid, initiate, libervia.s5b_transport(
                tsid, mine, owner=peer.jid, peer=bob.jid, mode=False)))
        assert reply.get("type") == "result"
        side = S5bSide(peer, bob.jid, sid, tsid, cname, "initiator", False, mine, listener)
        reader, writer = await negotiate(side, candidates_of(initiate))
        got = await read_exactly(reader, len(data))
        assert sha(got) == sha(data)
        await libervia_ends_after_our_checksum(peer, bob.jid, sid, cname, data)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert done.verification is Verification.NOT_CONFIRMED
        assert {e.path for e in await paths(sent)} == {PathKind.S5B_DIRECT}
        writer.close()
        listener.close()


async def test_libervia_0_8_receives_over_ibb_counting_seq_modulo_65535(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """jinglefs, the Jingle initiator, opens the IBB stream and closes it; Libervia's
    receiver counts seq modulo 65535 (no difference below 65535 blocks)."""
    async with libervia_and_jinglefs(prosody, "ibb-out") as (peer, bob):
        peer.ibb_seq_modulo = libervia.SEQ_MODULO
        src = make_file(tmp_path, "data.csv", 33_000)
        data = src.read_bytes()
        [sent] = await bob.send_files(peer.jid, [src], transport="ibb")
        initiate = await peer.next_jingle("session-initiate")
        cname, f, t = offered(initiate)
        assert libervia.required_hash(f) == ("sha-256", None)
        sid, ibb_sid = str(initiate.get("sid")), str(t.get("sid"))
        reply = await peer.send_jingle(bob.jid, libervia.session_accept(
            sid, peer.jid, initiate, libervia.ibb_transport(ibb_sid)))
        assert reply.get("type") == "result"
        state = await ibb_opened(peer, ibb_sid)
        assert state.peer_jid == bob.jid and state.block_size <= 65535
        got = await ibb_receive(peer, ibb_sid, expect_close=True)
        assert sha(got) == sha(data)
        await libervia_ends_after_our_checksum(peer, bob.jid, sid, cname, data)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert {e.path for e in await paths(sent)} == {PathKind.IBB}


def test_libervia_0_8_ibb_seq_that_wraps_at_65535_is_accepted() -> None:
    """Libervia's IBB sender wraps seq one early (0…65534, then 0).  The wrap itself takes
    65535 one-at-a-time IQs on the wire, too slow here, so the receiver's pure rule is
    checked at the wrap instead (jinglefs.ibb.protocol.seq_acceptable)."""
    sent = [count % libervia.SEQ_MODULO for count in range(65_530, 65_540)]
    assert sent[5] == 0  # block 65535 carries seq 0
    assert all(seq_acceptable(seq, count)
               for seq, count in zip(sent, range(65_530, 65_540), strict=True))


async def test_libervia_0_8_falls_back_to_ibb_as_initiator(prosody: ProsodyServer,
                                                           tmp_path: Path) -> None:
    """candidate-error both ways: Libervia, the initiator, replaces SOCKS5 with IBB (we
    announce ibb:1, ``doFallback``); jinglefs accepts, the bytes and checksum follow."""
    async with libervia_and_jinglefs(prosody, "fallback-in") as (peer, bob):
        data = random_data(25_000)
        sid, tsid, cname = libervia.uid(), libervia.uid(), libervia.uid()
        listener = await s5b_listen()
        listener.close()
        await listener.server.wait_closed()
        dead = [Candidate(libervia.uid(), "127.0.0.1", listener.port, peer.jid,
                          libervia.BEST_DIRECT_PRIORITY)]
        await offer_from_libervia(peer, bob.jid, sid, cname, "retry.bin", len(data),
                                  libervia.s5b_transport(tsid, dead, owner=peer.jid,
                                                         peer=bob.jid))
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        await peer.next_jingle("session-accept")
        await peer.send_jingle(bob.jid, libervia.transport_info(
            sid, cname, tsid, "<candidate-error/>"))
        side = S5bSide(peer, bob.jid, sid, tsid, cname, "initiator", True, dead, None)
        assert await side.their_report("candidate-used", "candidate-error") == (
            "candidate-error", None)
        ibb_sid = libervia.uid()
        reply = await peer.send_jingle(bob.jid, libervia.jingle(
            "transport-replace", sid, libervia.content(cname, libervia.ibb_transport(ibb_sid))))
        assert reply.get("type") == "result"
        accept = await peer.next_jingle("transport-accept")
        t = accept.find(f"{{{JINGLE}}}content/{{{IBB_T}}}transport")
        assert t is not None and t.get("sid") == ibb_sid
        await ibb_send(peer, bob.jid, ibb_sid, data, block_size=libervia.IBB_BLOCK,
                       seq_modulo=libervia.SEQ_MODULO)
        await checksum_then_success(peer, bob.jid, sid, cname, data, transfer)
        assert [e.path for e in await paths(transfer)][-1] is PathKind.IBB
