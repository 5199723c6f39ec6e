"""jinglefs with a Psi (iris) peer (tests/interop/psi.py, docs/interop.md §6), over the
real Prosody: real transfers both ways on SOCKS5 direct, SOCKS5 through proxy65 and IBB,
several files in one session, Psi's hashes, its <received/> and its DST.ADDR rule."""

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

from . import gajim, psi
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
    s5b_dstaddr,
    s5b_listen,
    scripted_peer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@asynccontextmanager
async def psi_and_jinglefs(prosody: ProsodyServer, tag: str
                           ) -> AsyncIterator[tuple[ScriptedPeer, Client]]:
    """Psi as alice, jinglefs as bob (contacts of each other)."""
    async with (scripted_peer(prosody, "alice", f"psi-{tag}", features=psi.FEATURES,
                              identity=psi.IDENTITY, caps_node=psi.CAPS_NODE) as peer,
                logged_in(prosody, "bob", f"jfs-{tag}") as bob):
        yield peer, bob


async def negotiate(side: psi.PsiS5b, theirs: list[Candidate], *, dial: bool = True,
                    on_ours_won: Callable[[Candidate], None] | None = None) -> Conn:
    """Psi's half of XEP-0260 §2.3-§2.4; fails if both sides report candidate-error."""
    conn = await side.negotiate(theirs, dial=dial, on_ours_won=on_ours_won)
    assert conn is not None, "both sides sent candidate-error"
    return conn


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def infos(peer: ScriptedPeer, kind: str) -> list[ET.Element]:
    """Every <checksum/> or <received/> jinglefs sent in a session-info so far."""
    return [child for j in peer.all_jingle if j.get("action") == "session-info"
            for child in j if child.tag == f"{{{FT}}}{kind}"]


async def wait_info(peer: ScriptedPeer, kind: str, name: str) -> ET.Element:
    """The session-info <kind/> for content ``name`` (Psi matches name and creator)."""
    while True:
        found = [el for el in infos(peer, kind) if el.get("name") == name]
        if found:
            return found[0]
        await peer.next_jingle("session-info")


# ---------------------------------------------------------------- Psi sends


async def test_psi_sends_over_socks5_direct_with_candidates_without_jid(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """Psi's offer: blake2b-512 (the first of its list that we announce) with the value,
    media-type, range, and a direct candidate with neither jid nor type.  jinglefs dials
    it with Psi's DST.ADDR (initiator first), verifies, and answers <received/> with
    creator and name, which the Psi sender waits for; then it ends with success."""
    async with psi_and_jinglefs(prosody, "s5b-in") as (peer, bob):
        data = random_data(220_000)
        sid, tsid, cname = gajim.new_id(), gajim.new_id(), psi.content_name()
        listener = await s5b_listen(check=lambda a: a == psi.direct_dstaddr(
            tsid, peer.jid, bob.jid))
        mine = [Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                          psi.DIRECT_PRIORITY)]
        algo = psi.fastest_hash(await gajim.disco_features(peer, bob.jid))
        assert algo == "blake2b-512"
        file = psi.file_xml("scan.pdf", data, algo, media_type="application/pdf")
        reply = await peer.send_jingle(bob.jid, psi.jingle(
            "session-initiate", sid, psi.content(
                cname, psi.description(file) + psi.s5b_transport(tsid, mine)),
            initiator=peer.jid))
        assert reply.get("type") == "result"
        offer = await first_offer(bob)
        assert [(f.name, f.size, f.media_type) for f in offer.files] == [
            ("scan.pdf", len(data), "application/pdf")]
        [transfer] = await offer.accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        t = accept.find(f"{{{JINGLE}}}content/{{{S5B}}}transport")
        assert t is not None and t.get("sid") == tsid
        side = psi.PsiS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname, we_initiate=True,
                          ours=mine, listener=listener)
        _reader, writer = await negotiate(side, candidates_of(accept))
        writer.write(data)
        await writer.drain()
        got = await wait_info(peer, "received", cname)
        assert got.get("creator") == "initiator"
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert done.verification is Verification.SENDER_HASH
        assert sha(Path(done.path).read_bytes()) == sha(data) == done.hashes["sha-256"]
        assert {e.path for e in await paths(transfer)} == {PathKind.S5B_DIRECT}
        end = await peer.next_jingle("session-terminate")
        assert reason_of(end) == "success"
        writer.close()
        listener.close()


async def test_psi_sends_two_files_in_one_session_over_ibb(prosody: ProsodyServer,
                                                           tmp_path: Path) -> None:
    """Two contents in one session-initiate, IBB; Psi, the Jingle initiator, opens both
    streams; jinglefs answers <received/> for each and ends once both are in."""
    async with psi_and_jinglefs(prosody, "two-in") as (peer, bob):
        files = {"a.txt": random_data(9_000), "b.png": random_data(21_000)}
        sid = gajim.new_id()
        algo = psi.fastest_hash(await gajim.disco_features(peer, bob.jid))
        names = {name: (psi.content_name() + str(i), gajim.new_id())
                 for i, name in enumerate(files)}
        contents = "".join(psi.content(cname, psi.description(psi.file_xml(
            name, files[name], algo, media_type="application/octet-stream"))
            + psi.ibb_transport(ibb_sid)) for name, (cname, ibb_sid) in names.items())
        reply = await peer.send_jingle(bob.jid, psi.jingle("session-initiate", sid, contents,
                                                           initiator=peer.jid))
        assert reply.get("type") == "result"
        offer = await first_offer(bob)
        assert [f.name for f in offer.files] == list(files)
        transfers = await offer.accept(tmp_path)
        accept = await peer.next_jingle("session-accept")
        assert len(accept.findall(f"{{{JINGLE}}}content")) == 2
        await asyncio.gather(*(ibb_send(peer, bob.jid, ibb_sid, files[name],
                                        block_size=psi.IBB_BLOCK)
                               for name, (_c, ibb_sid) in names.items()))
        for cname, _ in names.values():
            assert (await wait_info(peer, "received", cname)).get("creator") == "initiator"
        for t, (name, data) in zip(transfers, files.items(), strict=True):
            done = await asyncio.wait_for(t.wait(), BOUND)
            assert isinstance(done, Completed) and done.verified
            assert Path(done.path).name == name and sha(Path(done.path).read_bytes()) == \
                sha(data)
        end = await peer.next_jingle("session-terminate")
        assert reason_of(end) == "success"


async def test_psi_sends_through_its_proxy(prosody: ProsodyServer, tmp_path: Path) -> None:
    """Psi offers only its server's proxy (owner-first dstaddr on the transport) and
    cannot reach jinglefs; it activates the proxy with the transport sid, waits for the
    proxy's answer, sends <activated/>, then the bytes."""
    async with psi_and_jinglefs(prosody, "proxy-in") as (peer, bob):
        data = random_data(150_000)
        sid, tsid, cname = gajim.new_id(), gajim.new_id(), psi.content_name()
        host, port = await proxy65_address(peer, prosody.proxy_jid)
        proxy = Candidate(gajim.new_id(), host, port, prosody.proxy_jid, psi.PROXY_PRIORITY,
                          "proxy")
        algo = psi.fastest_hash(await gajim.disco_features(peer, bob.jid))
        file = psi.file_xml("talk.ogg", data, algo, media_type="audio/ogg")
        await peer.send_jingle(bob.jid, psi.jingle("session-initiate", sid, psi.content(
            cname, psi.description(file) + psi.s5b_transport(
                tsid, [proxy], owner=peer.jid, peer=bob.jid)), initiator=peer.jid))
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        await peer.next_jingle("session-accept")

        # onBothSidesFinished / requestActivation: the proxy answers before <activated/>
        side = psi.PsiS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname, we_initiate=True,
                          ours=[proxy], listener=None)
        won: list[Candidate] = []
        _reader, writer = await negotiate(side, [], dial=False, on_ours_won=won.append)
        assert won == [proxy]
        writer.write(data)
        await writer.drain()
        await wait_info(peer, "received", cname)
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert sha(Path(done.path).read_bytes()) == sha(data)
        assert {e.path for e in await paths(transfer)} == {PathKind.S5B_PROXY}
        assert reason_of(await peer.next_jingle("session-terminate")) == "success"
        writer.close()


# ---------------------------------------------------------------- Psi receives


async def psi_receives_checksum_then_ends(peer: ScriptedPeer, to: str, sid: str,
                                          cname: str, data: bytes, last: bool = True) -> None:
    """``tryFinalizeIncoming``: after a <hash-used/> offer, wait for the checksum (name and
    creator must match), compare, send <received/>, and end when the last file is in."""
    checksum = await wait_info(peer, "checksum", cname)
    assert checksum.get("creator") == "initiator"
    h = checksum.find(f"{{{FT}}}file/{{{HASHES}}}hash")
    assert h is not None and h.get("algo") == "sha-256"
    assert h.text == hash_b64("sha-256", data)
    reply = await peer.session_info(to, sid, psi.received("initiator", cname))
    assert reply.get("type") == "result"
    if last:
        assert (await peer.terminate(to, sid, "success")).get("type") == "result"


def offered(initiate: ET.Element) -> list[tuple[str, str, str, str, ET.Element]]:
    """(content name, creator, senders, file name, transport) of each offered content."""
    out = []
    for c in initiate.findall(f"{{{JINGLE}}}content"):
        f = c.find(f"{{{FT}}}description/{{{FT}}}file")
        assert f is not None
        t = next(el for el in c if local(el.tag) == "transport")
        out.append((str(c.get("name")), str(c.get("creator")), str(c.get("senders")),
                    f.findtext(f"{{{FT}}}name", ""), t))
    return out


async def test_psi_receives_over_socks5_direct_and_waits_for_our_checksum(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """jinglefs offers SOCKS5 (not ICE: Psi's XEP-0371 is not our data channel), with
    senders and hash-used sha-256.  Psi's listener takes only SHA-1(sid + initiator +
    responder): jinglefs must get through with it.  Psi finishes on our checksum."""
    async with psi_and_jinglefs(prosody, "s5b-out") as (peer, bob):
        src = make_file(tmp_path, "slides.odp", 260_000)
        data = src.read_bytes()
        [sent] = await bob.send_files(peer.jid, [src])
        initiate = await peer.next_jingle("session-initiate")
        [(cname, creator, senders, fname, t)] = offered(initiate)
        assert (creator, senders, fname, local(t.tag)) == (
            "initiator", "initiator", "slides.odp", "transport")
        assert t.tag == f"{{{S5B}}}transport"
        f = initiate.find(f"{{{JINGLE}}}content/{{{FT}}}description/{{{FT}}}file")
        assert f is not None
        assert [h.get("algo") for h in f.iter(f"{{{HASHES}}}hash-used")] == ["sha-256"]
        sid, tsid = str(initiate.get("sid")), str(t.get("sid"))
        listener = await s5b_listen(check=lambda a: a == psi.direct_dstaddr(
            tsid, bob.jid, peer.jid))
        mine = [Candidate(gajim.new_id(), "127.0.0.1", listener.port, peer.jid,
                          psi.DIRECT_PRIORITY)]
        await peer.send_jingle(bob.jid, psi.session_accept(
            sid, peer.jid, initiate, {cname: psi.s5b_transport(tsid, mine)}))
        side = psi.PsiS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname, we_initiate=False,
                          ours=mine, listener=listener)
        reader, writer = await negotiate(side, candidates_of(initiate))
        got = await read_exactly(reader, len(data))
        assert sha(got) == sha(data)
        await psi_receives_checksum_then_ends(peer, bob.jid, sid, cname, data)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert done.verification is Verification.NOT_CONFIRMED
        assert {e.path for e in await paths(sent)} == {PathKind.S5B_DIRECT}
        writer.close()
        listener.close()


async def test_psi_receives_two_files_in_one_session_over_ibb(prosody: ProsodyServer,
                                                              tmp_path: Path) -> None:
    """Psi takes several files in one session: one session-initiate with two contents;
    jinglefs, the Jingle initiator, opens each IBB stream and sends each checksum; Psi
    answers <received/> per content and ends after the last."""
    async with psi_and_jinglefs(prosody, "two-out") as (peer, bob):
        srcs = [make_file(tmp_path, "one.txt", 12_000), make_file(tmp_path, "two.txt", 30_000)]
        sent = await bob.send_files(peer.jid, srcs, transport="ibb")
        initiate = await peer.next_jingle("session-initiate")
        contents = offered(initiate)
        assert [c[3] for c in contents] == ["one.txt", "two.txt"]
        sid = str(initiate.get("sid"))
        await peer.send_jingle(bob.jid, psi.session_accept(
            sid, peer.jid, initiate, {c[0]: psi.ibb_transport(str(c[4].get("sid")))
                                      for c in contents}))
        by_name = {s.name: s.read_bytes() for s in srcs}
        for i, (cname, _cr, _se, fname, t) in enumerate(contents):
            state = await ibb_opened(peer, str(t.get("sid")))
            assert state.peer_jid == bob.jid and state.block_size <= psi.IBB_BLOCK
            got = await ibb_receive(peer, str(t.get("sid")))
            assert sha(got) == sha(by_name[fname])
            await psi_receives_checksum_then_ends(peer, bob.jid, sid, cname, got,
                                                  last=i == len(contents) - 1)
        for handle, src in zip(sent, srcs, strict=True):
            done = await asyncio.wait_for(handle.wait(), BOUND)
            assert isinstance(done, Completed) and done.hashes["sha-256"] == \
                sha(src.read_bytes())
        assert all(c[4].tag == f"{{{IBB_T}}}transport" for c in contents)


async def test_psi_receives_through_our_proxy(prosody: ProsodyServer, tmp_path: Path) -> None:
    """Psi answers with no candidate it can offer and reaches only our proxy (owner-first
    DST.ADDR for proxies): jinglefs activates it and sends <activated/>."""
    async with psi_and_jinglefs(prosody, "proxy-out") as (peer, bob):
        src = make_file(tmp_path, "movie.mkv", 170_000)
        data = src.read_bytes()
        [sent] = await bob.send_files(peer.jid, [src], transport="s5b")
        initiate = await peer.next_jingle("session-initiate")
        [(cname, _cr, _se, _fn, t)] = offered(initiate)
        sid, tsid = str(initiate.get("sid")), str(t.get("sid"))
        theirs = [c for c in candidates_of(initiate) if c.type == "proxy"]
        assert theirs, "jinglefs offers its server's proxy"
        await peer.send_jingle(bob.jid, psi.session_accept(
            sid, peer.jid, initiate, {cname: psi.s5b_transport(tsid, [])}))
        # the proxy's dstaddr is owner first: what Psi computes for a proxy too
        assert t.get("dstaddr") == s5b_dstaddr(tsid, bob.jid, peer.jid)
        side = psi.PsiS5b(peer, bob.jid, sid=sid, tsid=tsid, content=cname, we_initiate=False,
                          ours=[], listener=None)
        reader, writer = await negotiate(side, theirs)
        got = await read_exactly(reader, len(data))
        assert sha(got) == sha(data)
        await psi_receives_checksum_then_ends(peer, bob.jid, sid, cname, data)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes["sha-256"] == sha(data)
        assert {e.path for e in await paths(sent)} == {PathKind.S5B_PROXY}
        writer.close()
