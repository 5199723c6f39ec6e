"""jinglefs with a Gajim 1.9.5 peer (tests/interop/gajim.py, docs/interop.md §5), over the
real Prosody: real transfers both ways on SOCKS5 direct, SOCKS5 through proxy65 and IBB,
with Gajim's offers, hashes, endings and races."""

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
from tests.e2e.conftest import BOUND, first_offer, logged_in, make_file, paths
from tests.servers.prosody import ProsodyServer

from . import gajim
from .bytestreams import Candidate, Conn, candidates_of
from .peer import (
    FT,
    HASHES,
    IBB_T,
    JINGLE,
    S5B,
    ScriptedPeer,
    hash_b64,
    ibb_opened,
    ibb_receive,
    ibb_send,
    local,
    proxy65_address,
    random_data,
    read_exactly,
    reason_of,
    s5b_listen,
    scripted_peer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@asynccontextmanager
async def gajim_and_jinglefs(prosody: ProsodyServer, tag: str
                             ) -> AsyncIterator[tuple[ScriptedPeer, Client]]:
    """Gajim 1.9.5 as alice, jinglefs as bob (contacts of each other)."""
    async with (scripted_peer(prosody, "alice", f"gajim-{tag}", features=gajim.FEATURES,
                              identity=gajim.IDENTITY, caps_node=gajim.CAPS_NODE) as peer,
                logged_in(prosody, "bob", f"jfs-{tag}") as bob):
        yield peer, bob


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def negotiate(side: gajim.GajimS5b, theirs: list[Candidate], *, dial: bool = True,
                    on_ours_won: Callable[[Candidate], None] | None = None) -> Conn:
    """Gajim's half of XEP-0260 §2.3-§2.4; fails if both sides report candidate-error."""
    conn = await side.negotiate(theirs, dial=dial, on_ours_won=on_ours_won)
    assert conn is not None, "both sides sent candidate-error"
    return conn


def side_of(peer: ScriptedPeer, to: str, sid: str, tsid: str, cname: str) -> gajim.GajimS5b:
    return gajim.GajimS5b(peer, to, sid=sid, tsid=tsid, content=cname, we_initiate=True,
                          ours=[], listener=None)


async def gajim_offers(peer: ScriptedPeer, to: str, data: bytes, name: str, transport: str,
                       sid: str, content_name: str) -> str | None:
    """Gajim's session-initiate for ``data``: the hash algorithm chosen from our features,
    its value in the offer below 10 MB.  The algorithm used."""
    algo = gajim.hash_algo_for(await gajim.disco_features(peer, to))
    small = len(data) < gajim.SMALL_FILE
    file = gajim.file_xml(name, len(data), algo=algo if small else None,
                          digest_b64=hash_b64(algo, data) if algo and small else "")
    reply = await peer.send_jingle(to, gajim.session_initiate(
        sid, peer.jid, content_name, file, transport))
    assert reply.get("type") == "result"
    return algo


async def ends_with_success(peer: ScriptedPeer, sid: str) -> None:
    end = await peer.next_jingle("session-terminate")
    assert end.get("sid") == sid and reason_of(end) == "success"


# ---------------------------------------------------------------- Gajim sends


async def test_gajim_1_9_5_sends_over_socks5_direct(prosody: ProsodyServer,
                                                     tmp_path: Path) -> None:
    """Gajim's offer (malformed date, empty desc, hash chosen from our features: sha3-512,
    since it looks for nbxmpp's id-blake2b names) over its direct candidate; jinglefs
    verifies the hash, answers <received/> (Gajim answers it twice: result, then
    feature-not-implemented) and ends with success."""
    async with gajim_and_jinglefs(prosody, "s5b-in") as (peer, bob):
        doubled = gajim.install_session_info_errors(peer)
        data = random_data(300_000)
        sid, tsid, cname = gajim.new_id(), gajim.new_id(), "file" + gajim.new_id()
        listener = await s5b_listen()
        mine = [Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                          gajim.DIRECT_PRIORITY)]
        algo = await gajim_offers(peer, bob.jid, data, "photo.jpg",
                                  gajim.s5b_transport(tsid, mine), sid, cname)
        assert algo == "sha3-512"
        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [("photo.jpg", len(data))]
        assert offer.files[0].hashes == {"sha3-512": hashlib.sha3_512(data).digest()}
        [transfer] = await offer.accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        side = gajim.GajimS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname,
                              we_initiate=True, ours=mine, listener=listener)
        _reader, writer = await negotiate(side, candidates_of(accept))
        await gajim.send_and_disconnect(writer, data)
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert done.verification is Verification.SENDER_HASH
        assert sha(Path(done.path).read_bytes()) == sha(data) == done.hashes["sha-256"]
        assert {e.path for e in await paths(transfer)} == {PathKind.S5B_DIRECT}
        await ends_with_success(peer, sid)
        assert [local(j[0].tag) for j in doubled] == ["received"]
        writer.close()
        listener.close()


async def test_gajim_1_9_5_sends_over_ibb_and_closes(prosody: ProsodyServer,
                                                     tmp_path: Path) -> None:
    """An IBB offer (block-size 4096); Gajim, the file's sender, opens the stream itself,
    sends 4096-byte blocks one IQ at a time and closes; jinglefs ends with success."""
    async with gajim_and_jinglefs(prosody, "ibb-in") as (peer, bob):
        gajim.install_session_info_errors(peer)
        data = random_data(50_000)
        sid, ibb_sid, cname = gajim.new_id(), gajim.new_id(), "file" + gajim.new_id()
        await gajim_offers(peer, bob.jid, data, "notes.txt", gajim.ibb_transport(ibb_sid),
                           sid, cname)
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        t = accept.find(f"{{{JINGLE}}}content/{{{IBB_T}}}transport")
        assert t is not None and t.get("sid") == ibb_sid
        assert int(t.get("block-size", "0")) <= gajim.IBB_BLOCK
        await ibb_send(peer, bob.jid, ibb_sid, data, block_size=gajim.IBB_BLOCK)
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert sha(Path(done.path).read_bytes()) == sha(data)
        assert {e.path for e in await paths(transfer)} == {PathKind.IBB}
        await ends_with_success(peer, sid)


async def test_gajim_1_9_5_sends_through_its_proxy_and_announces_activation_early(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Gajim with the server's proxy configured and local addresses off offers only the
    proxy; it cannot reach jinglefs (candidate-error).  jinglefs picks the proxy; Gajim
    sends the activation IQ and <activated/> at once, without waiting for the proxy."""
    async with gajim_and_jinglefs(prosody, "proxy-in") as (peer, bob):
        gajim.install_session_info_errors(peer)
        data = random_data(200_000)
        sid, tsid, cname = gajim.new_id(), gajim.new_id(), "file" + gajim.new_id()
        host, port = await proxy65_address(peer, prosody.proxy_jid)
        proxy = Candidate(gajim.new_id(), host, port, prosody.proxy_jid, gajim.PROXY_PRIORITY,
                          "proxy")
        await gajim_offers(peer, bob.jid, data, "clip.mov", gajim.s5b_transport(tsid, [proxy]),
                           sid, cname)
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        await peer.next_jingle("session-accept")

        side = gajim.GajimS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname,
                              we_initiate=True, ours=[proxy], listener=None)
        won: list[Candidate] = []
        _reader, writer = await negotiate(side, [], dial=False, on_ours_won=won.append)
        assert won == [proxy] and side.activation is not None
        # <activated/> went out before the proxy answered; it answers result all the same
        assert (await side.activation).get("type") == "result"
        await gajim.send_and_disconnect(writer, data)
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert sha(Path(done.path).read_bytes()) == sha(data)
        assert {e.path for e in await paths(transfer)} == {PathKind.S5B_PROXY}
        await ends_with_success(peer, sid)
        writer.close()


async def test_gajim_1_9_5_sends_a_large_file_with_its_checksum_right_after_the_accept(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """From 10 MB on, Gajim's offer has no hash; a thread started at session-accept sends
    <checksum> without name or creator, here before the first byte."""
    async with gajim_and_jinglefs(prosody, "big-in") as (peer, bob):
        gajim.install_session_info_errors(peer)
        data = random_data(gajim.SMALL_FILE)
        sid, tsid, cname = gajim.new_id(), gajim.new_id(), "file" + gajim.new_id()
        listener = await s5b_listen()
        mine = [Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                          gajim.DIRECT_PRIORITY)]
        algo = await gajim_offers(peer, bob.jid, data, "big.iso",
                                  gajim.s5b_transport(tsid, mine), sid, cname)
        assert algo is not None
        offer = await first_offer(bob)
        assert offer.files[0].hashes == {}
        [transfer] = await offer.accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        reply = await peer.session_info(bob.jid, sid, gajim.checksum_without_name(algo, data))
        assert reply.get("type") == "result"
        side = gajim.GajimS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname,
                              we_initiate=True, ours=mine, listener=listener)
        _reader, writer = await negotiate(side, candidates_of(accept))
        await gajim.send_and_disconnect(writer, data)
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert done.verification is Verification.SENDER_HASH
        assert sha(Path(done.path).read_bytes()) == sha(data)
        await ends_with_success(peer, sid)
        writer.close()
        listener.close()


# ---------------------------------------------------------------- Gajim receives


async def gajim_accepts(peer: ScriptedPeer, transport: str
                        ) -> tuple[ET.Element, str, str, str]:
    """Gajim's answer to an offer: session-accept with its own transport.  Returns
    (the initiate, sid, content name, transport sid)."""
    initiate = await peer.next_jingle("session-initiate")
    sid, initiator = str(initiate.get("sid")), str(initiate.get("initiator"))
    c = initiate.find(f"{{{JINGLE}}}content")
    assert c is not None
    t = next(el for el in c if local(el.tag) == "transport")
    await peer.send_jingle(initiator, gajim.session_accept(
        sid, initiator, initiate, transport.format(sid=t.get("sid"))))
    return initiate, sid, str(c.get("name")), str(t.get("sid"))


def assert_offer_for_gajim(initiate: ET.Element, name: str, size: int, transport_ns: str
                           ) -> None:
    """What Gajim needs and reads of our offer (docs/interop.md §5.2): one content from
    the initiator, a file with name and size, a transport it knows."""
    [c] = initiate.findall(f"{{{JINGLE}}}content")
    assert (c.get("creator"), c.get("senders")) == ("initiator", "initiator")
    f = c.find(f"{{{FT}}}description/{{{FT}}}file")
    assert f is not None
    assert f.findtext(f"{{{FT}}}name") == name and f.findtext(f"{{{FT}}}size") == str(size)
    assert [h.get("algo") for h in f.iter(f"{{{HASHES}}}hash-used")] == ["sha-256"]
    assert c.find(f"{{{transport_ns}}}transport") is not None


async def test_gajim_1_9_5_receives_over_socks5_direct_and_ends_before_the_checksum(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """jinglefs offers SOCKS5 first (Gajim has no data channel); Gajim dials with its
    initiator-first DST.ADDR and terminates with success as soon as it has every byte,
    whether our checksum came yet or not: a complete delivery for jinglefs."""
    async with gajim_and_jinglefs(prosody, "s5b-out") as (peer, bob):
        doubled = gajim.install_session_info_errors(peer)
        src = make_file(tmp_path, "report.pdf", 250_000)
        data = src.read_bytes()
        listener = await s5b_listen()
        mine = Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                         gajim.DIRECT_PRIORITY)
        [sent] = await bob.send_files(peer.jid, [src])
        initiate, sid, cname, tsid = await gajim_accepts(
            peer, f"<transport xmlns='{S5B}' sid='{{sid}}'>{mine.xml()}</transport>")
        assert_offer_for_gajim(initiate, "report.pdf", len(data), S5B)
        side = gajim.GajimS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname,
                              we_initiate=False, ours=[mine], listener=listener)
        reader, writer = await negotiate(side, candidates_of(initiate))
        got = await read_exactly(reader, len(data))
        assert sha(got) == sha(data)
        assert (await peer.terminate(bob.jid, sid, "success")).get("type") == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert done.verification is Verification.NOT_CONFIRMED and not done.verified
        assert {e.path for e in await paths(sent)} == {PathKind.S5B_DIRECT}
        assert doubled == []  # a sha-256 checksum is one Gajim takes
        writer.close()
        listener.close()


async def test_gajim_1_9_5_receives_over_ibb_and_needs_the_close(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Gajim's IBB receiver counts seq without wrapping and finishes only when <close/>
    comes: jinglefs, the Jingle initiator and sender, opens and closes."""
    async with gajim_and_jinglefs(prosody, "ibb-out") as (peer, bob):
        gajim.install_session_info_errors(peer)
        peer.ibb_seq_modulo = 1 << 62  # _on_data_received: seq += 1, never wrapped
        src = make_file(tmp_path, "draft.odt", 30_000)
        data = src.read_bytes()
        [sent] = await bob.send_files(peer.jid, [src], transport="ibb")
        initiate, sid, _cname, ibb_sid = await gajim_accepts(
            peer, f"<transport xmlns='{IBB_T}' block-size='4096' sid='{{sid}}'/>")
        assert_offer_for_gajim(initiate, "draft.odt", len(data), IBB_T)
        state = await ibb_opened(peer, ibb_sid)
        assert state.peer_jid == bob.jid and state.block_size <= gajim.IBB_BLOCK
        got = await ibb_receive(peer, ibb_sid, expect_close=True)
        assert sha(got) == sha(data)
        assert (await peer.terminate(bob.jid, sid, "success")).get("type") == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert {e.path for e in await paths(sent)} == {PathKind.IBB}


async def test_gajim_1_9_5_receives_through_our_proxy(prosody: ProsodyServer,
                                                      tmp_path: Path) -> None:
    """Gajim with local addresses off and no proxy of its own answers with no candidate
    and can reach only our proxy candidate: jinglefs activates its proxy and sends
    <activated/>, and Gajim reads the file through it."""
    async with gajim_and_jinglefs(prosody, "proxy-out") as (peer, bob):
        gajim.install_session_info_errors(peer)
        src = make_file(tmp_path, "song.flac", 180_000)
        data = src.read_bytes()
        [sent] = await bob.send_files(peer.jid, [src], transport="s5b")
        initiate, sid, cname, tsid = await gajim_accepts(
            peer, f"<transport xmlns='{S5B}' sid='{{sid}}'/>")
        theirs = [c for c in candidates_of(initiate) if c.type == "proxy"]
        assert [c.jid for c in theirs] == [prosody.proxy_jid]
        side = gajim.GajimS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname,
                              we_initiate=False, ours=[], listener=None)
        reader, writer = await negotiate(side, theirs)
        got = await read_exactly(reader, len(data))
        assert sha(got) == sha(data)
        assert (await peer.terminate(bob.jid, sid, "success")).get("type") == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert {e.path for e in await paths(sent)} == {PathKind.S5B_PROXY}
        writer.close()


async def test_gajim_1_9_5_gets_one_session_per_file(prosody: ProsodyServer,
                                                     tmp_path: Path) -> None:
    """Gajim ends the whole session after the first finished file, so two files go as two
    sessions of one content each; both arrive."""
    async with gajim_and_jinglefs(prosody, "two-out") as (peer, bob):
        gajim.install_session_info_errors(peer)
        srcs = [make_file(tmp_path, f"pic{i}.png", 5_000 + i) for i in range(2)]
        sent = await bob.send_files(peer.jid, srcs, transport="ibb")
        received = {}
        for _ in srcs:
            initiate, sid, _cname, ibb_sid = await gajim_accepts(
                peer, f"<transport xmlns='{IBB_T}' block-size='4096' sid='{{sid}}'/>")
            [c] = initiate.findall(f"{{{JINGLE}}}content")
            name = c.findtext(f"{{{FT}}}description/{{{FT}}}file/{{{FT}}}name")
            received[name] = await ibb_receive(peer, ibb_sid, expect_close=True)
            await peer.terminate(bob.jid, sid, "success")
        assert {n: sha(d) for n, d in received.items()} == {
            s.name: sha(s.read_bytes()) for s in srcs}
        for t in sent:
            assert isinstance(await asyncio.wait_for(t.wait(), BOUND), Completed)


async def test_gajim_1_9_5_falls_back_to_ibb_when_no_candidate_works(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Neither side reaches the other's candidates (candidate-error both ways): Gajim, the
    initiator, replaces the transport with IBB; jinglefs accepts and the file arrives."""
    async with gajim_and_jinglefs(prosody, "fallback-in") as (peer, bob):
        gajim.install_session_info_errors(peer)
        data = random_data(40_000)
        sid, tsid, cname = gajim.new_id(), gajim.new_id(), "file" + gajim.new_id()
        listener = await s5b_listen()
        listener.close()  # a candidate nobody can reach
        await listener.server.wait_closed()
        dead = [Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                          gajim.DIRECT_PRIORITY)]
        await gajim_offers(peer, bob.jid, data, "fallback.bin",
                           gajim.s5b_transport(tsid, dead), sid, cname)
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        await peer.next_jingle("session-accept")
        await peer.send_jingle(bob.jid, gajim.transport_info(
            sid, peer.jid, cname, tsid, "<candidate-error/>"))
        assert await side_of(peer, bob.jid, sid, tsid, cname).their_report(
            "candidate-used", "candidate-error") == ("candidate-error", None)
        ibb_sid = gajim.new_id()
        reply = await peer.send_jingle(bob.jid, gajim.jingle(
            "transport-replace", sid, peer.jid,
            gajim.content(cname, "", gajim.ibb_transport(ibb_sid))))
        assert reply.get("type") == "result"
        answer = await peer.next_jingle()
        while answer.get("action") == "transport-info":
            answer = await peer.next_jingle()
        assert answer.get("action") == "transport-accept"
        t = answer.find(f"{{{JINGLE}}}content/{{{IBB_T}}}transport")
        assert t is not None and t.get("sid") == ibb_sid
        await ibb_send(peer, bob.jid, ibb_sid, data, block_size=gajim.IBB_BLOCK)
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert sha(Path(done.path).read_bytes()) == sha(data)
        assert [e.path for e in await paths(transfer)][-1] is PathKind.IBB
        await ends_with_success(peer, sid)


async def test_gajim_1_9_5_accepts_our_replace_to_ibb_when_socks5_fails(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Neither side reaches the other (candidate-error both ways): jinglefs, the
    initiator, replaces SOCKS5 with IBB; Gajim takes a replace to IBB from either role,
    and jinglefs, the file's sender, opens the stream."""
    async with gajim_and_jinglefs(prosody, "fallback-out") as (peer, bob):
        gajim.install_session_info_errors(peer)
        peer.ibb_seq_modulo = 1 << 62
        src = make_file(tmp_path, "fallback.zip", 20_000)
        data = src.read_bytes()
        listener = await s5b_listen()
        listener.close()  # Gajim's candidate: nobody listens there any more
        await listener.server.wait_closed()
        dead = Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                         gajim.DIRECT_PRIORITY)
        [sent] = await bob.send_files(peer.jid, [src])
        initiate, sid, cname, tsid = await gajim_accepts(
            peer, f"<transport xmlns='{S5B}' sid='{{sid}}'>{dead.xml()}</transport>")
        await peer.send_jingle(bob.jid, gajim.transport_info(
            sid, bob.jid, cname, tsid, "<candidate-error/>"))
        replace = await peer.next_jingle("transport-replace")
        t = replace.find(f"{{{JINGLE}}}content/{{{IBB_T}}}transport")
        assert t is not None
        ibb_sid = str(t.get("sid"))
        await peer.send_jingle(bob.jid, gajim.jingle(
            "transport-accept", sid, bob.jid, gajim.content(cname, "", gajim.ibb_transport(
                ibb_sid))))
        got = await ibb_receive(peer, ibb_sid, expect_close=True)
        assert sha(got) == sha(data)
        assert (await peer.terminate(bob.jid, sid, "success")).get("type") == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert [e.path for e in await paths(sent)][-1] is PathKind.IBB
        assert initiate.get("initiator") == bob.jid
