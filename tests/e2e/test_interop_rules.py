"""docs/interop.md §11 "What jinglefs should act on", each rule on the real Prosody.

The other side is a plain slixmpp client that writes the exact XML the named client's
source produces (docs/interop.md cites file and function) and answers the way it does; the
jinglefs side is a real :class:`~jinglefs.client.Client`.  Every test asserts bytes and
hashes, the reasons and states on both sides, never only "no exception".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jinglefs import errors
from jinglefs.client import Client
from jinglefs.events import Completed, Failed, TransportSelected, Verification
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.ibb.service import IbbService
from jinglefs.ibb.stream import IbbStream, StreamState
from jinglefs.jingle import ns
from jinglefs.jingle.codec import encode_jingle, parse_jingle
from jinglefs.jingle.model import (
    Action,
    Checksum,
    Content,
    Jingle,
    Reason,
    ReasonInfo,
    Received,
    Role,
)
from jinglefs.s5b.protocol import S5bTransport
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login

from .conftest import BOUND, FAST, first_offer, logged_in, make_file

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FT = ns.FT
HASHES = ns.HASHES


class ScriptedPeer:
    """A slixmpp client speaking Jingle by hand.  Every Jingle IQ-set it gets is acked
    (or answered by :attr:`answer`) and kept, raw and parsed, for the test to read."""

    def __init__(self, xmpp: slixmpp.ClientXMPP) -> None:
        self.xmpp = xmpp
        self.jid = str(xmpp.boundjid.full)
        self.ibb = IbbService(xmpp)
        self.inbox: asyncio.Queue[tuple[Jingle, ET.Element]] = asyncio.Queue()
        #: every Jingle action received, in order
        self.seen: list[Jingle] = []
        #: extra answers after the result (Gajim's double answer to <received/>)
        self.error_after_received = False
        xmpp.register_handler(Callback("scripted-jingle", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), self._on_jingle))

    def _on_jingle(self, iq: Any) -> None:
        el = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
        if iq["type"] != "set" or el is None:
            return
        raw = ET.fromstring(ET.tostring(el))
        j = parse_jingle(raw)
        iq.reply(clear=True).send()
        if self.error_after_received and isinstance(j.info, Received):
            # Gajim 1.9.5 acks first, then answers an unknown session-info with
            # feature-not-implemented + unsupported-info (docs/interop.md §5.3).
            error = ET.fromstring(
                f"<iq xmlns='jabber:client' type='error' id='{iq['id']}' "
                f"to='{iq['from']}'><error type='cancel'>"
                "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "<unsupported-info xmlns='urn:xmpp:jingle:errors:1'/></error></iq>")
            self.xmpp.send_raw(ET.tostring(error, encoding="unicode"))
        self.seen.append(j)
        self.inbox.put_nowait((j, raw))

    def identify(self, name: str, features: list[str]) -> None:
        """Answer disco#info like the client called ``name``."""
        disco = self.xmpp.plugin["xep_0030"]
        disco.add_identity(category="client", itype="pc", name=name)
        for feature in features:
            disco.add_feature(feature)

    async def send_xml(self, to: str, xml: str) -> str:
        iq = self.xmpp.make_iq_set(ito=to)
        iq.append(ET.fromstring(xml))
        return str((await iq.send(timeout=15))["type"])

    async def send(self, to: str, jingle: Jingle) -> str:
        iq = self.xmpp.make_iq_set(ito=to)
        iq.append(encode_jingle(jingle))
        return str((await iq.send(timeout=15))["type"])

    async def next(self, *actions: Action) -> tuple[Jingle, ET.Element]:
        async with asyncio.timeout(BOUND):
            while True:
                j, raw = await self.inbox.get()
                if j.action in actions:
                    return j, raw


@asynccontextmanager
async def scripted(prosody: ProsodyServer, user: str, resource: str,
                   plugins: tuple[str, ...] = ()) -> AsyncIterator[ScriptedPeer]:
    xmpp = await raw_login(prosody.account(user), resource)
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    peer = ScriptedPeer(xmpp)
    try:
        yield peer
    finally:
        peer.ibb.close_all()
        xmpp.disconnect()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def read_all(stream: IbbStream) -> bytes:
    got = bytearray()
    while chunk := await stream.receive(1 << 16):
        got += chunk
    return bytes(got)


async def accept_offer(bob: Client, tmp_path: Path) -> tuple[Any, Any]:
    """bob takes the first offer into tmp_path/inbox: (offer, its one transfer)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    offer = await first_offer(bob)
    [transfer] = await offer.accept(inbox)
    return offer, transfer


def ibb_offer(sid: str, initiator: str, file_xml: str, ibb_sid: str,
              name: str = "c0", block: int = 4096) -> str:
    return (f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='{sid}' "
            f"initiator='{initiator}'><content creator='initiator' name='{name}' "
            f"senders='initiator'><description xmlns='{FT}'><file>{file_xml}</file>"
            f"</description><transport xmlns='{ns.IBB_TRANSPORT}' sid='{ibb_sid}' "
            f"block-size='{block}'/></content></jingle>")


def info_xml(sid: str, payload: str) -> str:
    return (f"<jingle xmlns='{ns.JINGLE}' action='session-info' sid='{sid}'>{payload}"
            "</jingle>")


# ------------------------------------------------------------ jinglefs sends


async def test_our_offer_checksum_and_ibb_close_as_a_psi_receiver_needs_them(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    """Psi (iris) receiver: our offer has senders, name, size, both media types, a plain
    date, hash-used sha-256 and no hash value; after the last byte IBB <close/> and a
    sha-256 <checksum creator name>; Psi then sends <received/> and terminates."""
    src = make_file(tmp_path, "notes.txt", 70_000)
    data = src.read_bytes()
    async with scripted(prosody, "bob", "psi") as psi:
        [sent] = await alice.send_files(psi.jid, [src], transport="ibb")
        offer, raw = await psi.next(Action.SESSION_INITIATE)
        [content_el] = raw
        assert content_el.get("senders") == "initiator"
        file_el = content_el.find(f"{{{FT}}}description/{{{FT}}}file")
        assert file_el is not None
        kids = {child.tag.split("}")[1]: child for child in file_el}
        assert kids["name"].text == "notes.txt" and kids["size"].text == str(len(data))
        assert kids["media-type"].text == kids["mediaType"].text == "text/plain"
        date = kids["date"].text or ""
        assert len(date) == 20 and date[10] == "T" and date.endswith("Z")
        assert [c.tag for c in file_el].count(f"{{{FT}}}desc") <= 1
        assert file_el.find(f"{{{HASHES}}}hash") is None
        assert [h.get("algo") for h in file_el.findall(f"{{{HASHES}}}hash-used")] == \
            ["sha-256"]

        [content] = offer.contents
        assert isinstance(content.transport, IbbTransport)
        stream = psi.ibb.expect(alice.jid, content.transport.sid, content.transport.block_size)
        assert await psi.send(alice.jid, Jingle(Action.SESSION_ACCEPT, offer.sid,
                                                responder=psi.jid,
                                                contents=(content,))) == "result"
        await stream.wait_open(BOUND)
        got = await read_all(stream)
        assert got == data  # exactly size bytes, then <close/>
        assert stream.state is StreamState.CLOSED and stream.error is None
        info, _ = await psi.next(Action.SESSION_INFO)
        assert isinstance(info.info, Checksum)
        assert (info.info.creator, info.info.name) == (Role.INITIATOR, content.name)
        assert dict(info.info.file.hashes) == {"sha-256": sha256(data)}
        assert await psi.send(alice.jid, Jingle(Action.SESSION_INFO, offer.sid, info=Received(
            Role.INITIATOR, content.name))) == "result"
        assert await psi.send(alice.jid, Jingle(Action.SESSION_TERMINATE, offer.sid,
                                                reason=ReasonInfo(Reason.SUCCESS))) == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.size == len(data)
        assert done.hashes == {"sha-256": sha256(data)}


async def test_an_offer_nobody_answers_ends_as_unanswered(prosody: ProsodyServer,
                                                         tmp_path: Path) -> None:
    """Dino drops an offer from someone without an open conversation after acking it
    (docs/interop.md §4.7): after Timeouts.accept the sender fails with "unanswered"
    (exit 11) and says what helps, and the session is terminated with <timeout/>."""
    quick = replace(FAST, timeouts=replace(FAST.timeouts, accept=2.0))
    src = make_file(tmp_path, "hello.bin", 1000)
    async with scripted(prosody, "bob", "dino-silent") as dino, \
            logged_in(prosody, "alice", "unanswered", quick) as alice:
        [sent] = await alice.send_files(dino.jid, [src], transport="ibb")
        offer, _ = await dino.next(Action.SESSION_INITIATE)
        with pytest.raises(errors.Unanswered) as err:
            await asyncio.wait_for(sent.wait(), BOUND)
        assert err.value.exit_code == 11 and err.value.kind == "unanswered"
        [done] = [e async for e in sent.events() if isinstance(e, Failed)]
        assert (done.error, done.exit_code) == ("unanswered", errors.EXIT_UNANSWERED)
        assert errors.EXIT_UNANSWERED == 11
        assert done.reason.startswith("The contact's app did not answer the offer.")
        assert "opens a chat with you" in done.reason and "within 2 s" in done.reason
        end, _ = await dino.next(Action.SESSION_TERMINATE)
        assert end.sid == offer.sid
        assert end.reason is not None and end.reason.condition is Reason.TIMEOUT


async def test_a_dino_responder_replaces_socks5_with_ibb_and_we_take_it(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    """Dino as responder: when both sides report candidate-error it sends transport-replace
    to IBB itself and rejects ours (docs/interop.md §4.4).  jinglefs sends no replace of
    its own, accepts Dino's, and Dino (the proposer) opens the IBB stream."""
    src = make_file(tmp_path, "dino.bin", 90_000)
    data = src.read_bytes()
    async with scripted(prosody, "bob", "dino", plugins=("xep_0030",)) as dino:
        dino.identify("Dino", [ns.JINGLE, FT, ns.S5B_TRANSPORT, ns.IBB_TRANSPORT,
                               ns.IBB])
        [sent] = await alice.send_files(dino.jid, [src])  # auto: s5b, then ibb
        offer, _ = await dino.next(Action.SESSION_INITIATE)
        [content] = offer.contents
        assert isinstance(content.transport, S5bTransport)
        s5b_sid = content.transport.sid
        answer = replace(content, transport=S5bTransport(s5b_sid))  # no candidates
        assert await dino.send(alice.jid, Jingle(Action.SESSION_ACCEPT, offer.sid,
                                                 responder=dino.jid,
                                                 contents=(answer,))) == "result"
        assert await dino.send(alice.jid, Jingle(Action.TRANSPORT_INFO, offer.sid, contents=(
            replace(content, description=None, transport=S5bTransport(
                s5b_sid, candidate_error=True)),))) == "result"
        ours, _ = await dino.next(Action.TRANSPORT_INFO)  # jinglefs' own report
        assert isinstance(ours.contents[0].transport, S5bTransport)
        assert ours.contents[0].transport.candidate_error

        ibb = IbbTransport("dino-ibb", 4096)
        assert await dino.send(alice.jid, Jingle(Action.TRANSPORT_REPLACE, offer.sid, contents=(
            Content(Role.INITIATOR, content.name, Role.INITIATOR, transport=ibb),))) == "result"
        taken, _ = await dino.next(Action.TRANSPORT_ACCEPT, Action.TRANSPORT_REJECT,
                                   Action.TRANSPORT_REPLACE)
        assert taken.action is Action.TRANSPORT_ACCEPT
        assert taken.contents[0].transport == ibb
        stream = await dino.ibb.open(alice.jid, ibb.sid, ibb.block_size)  # Dino opens
        got = await read_all(stream)
        assert sha256(got) == sha256(data) and len(got) == len(data)
        assert await dino.send(alice.jid, Jingle(Action.SESSION_TERMINATE, offer.sid,
                                                 reason=ReasonInfo(Reason.SUCCESS))) == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and done.hashes == {"sha-256": sha256(data)}
        path = [e async for e in sent.events() if isinstance(e, TransportSelected)]
        assert [e.path.value for e in path] == ["ibb"]
        assert not [j for j in dino.seen if j.action is Action.TRANSPORT_REPLACE]


async def test_a_conversations_responder_that_reports_nothing_gets_ibb(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    """Conversations with "use relays" on never dials and sends neither candidate-used
    nor candidate-error (docs/interop.md §3.4): the SOCKS5 phase ends at its time limit
    and jinglefs, the initiator, replaces it with IBB, which Conversations accepts."""
    src = make_file(tmp_path, "relay.bin", 50_000)
    data = src.read_bytes()
    async with scripted(prosody, "bob", "conv", plugins=("xep_0030",)) as conv:
        conv.identify("Conversations", [ns.JINGLE, FT, ns.S5B_TRANSPORT,
                                        ns.IBB_TRANSPORT, ns.IBB])
        [sent] = await alice.send_files(conv.jid, [src])
        offer, _ = await conv.next(Action.SESSION_INITIATE)
        [content] = offer.contents
        assert isinstance(content.transport, S5bTransport)
        assert await conv.send(alice.jid, Jingle(Action.SESSION_ACCEPT, offer.sid,
                                                 contents=(replace(content, transport=S5bTransport(
                                                     content.transport.sid)),))) == "result"
        replaced, _ = await conv.next(Action.TRANSPORT_REPLACE)
        [new] = replaced.contents
        assert isinstance(new.transport, IbbTransport)
        stream = conv.ibb.expect(alice.jid, new.transport.sid, new.transport.block_size)
        assert await conv.send(alice.jid, Jingle(Action.TRANSPORT_ACCEPT, offer.sid,
                                                 contents=(new,))) == "result"
        await stream.wait_open(BOUND)
        got = await read_all(stream)
        assert got == data
        # Conversations' receiver: <received/>, then terminate, no checksum of its own.
        assert await conv.send(alice.jid, Jingle(Action.SESSION_INFO, offer.sid, info=Received(
            None, content.name))) == "result"
        assert await conv.send(alice.jid, Jingle(Action.SESSION_TERMINATE, offer.sid,
                                                 reason=ReasonInfo(Reason.SUCCESS))) == "result"
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed)
        assert done.verification is Verification.NOT_CONFIRMED


# ------------------------------------------------------------ jinglefs receives


async def test_gajim_sender_early_checksum_and_an_error_answer_to_received(
        prosody: ProsodyServer, bob: Client, tmp_path: Path) -> None:
    """Gajim 1.9.5 sender (docs/interop.md §5): a malformed date and an empty <desc/> in
    the offer, no hash there but a <checksum> without name or creator right after
    session-accept, before the data; it opens IBB as the file's sender, ends with
    <close/>, and answers our <received/> with a result and then an error."""
    data = os.urandom(60_000)
    async with scripted(prosody, "alice", "gajim") as gajim:
        gajim.error_after_received = True
        sid, ibb_sid = "gajim-1", "gajim-ibb"
        file_xml = ("<name>photo.jpg</name><date>2024-05-01T10:00:00.123456+00:00Z</date>"
                    f"<size>{len(data)}</size><desc/>")
        assert await gajim.send_xml(bob.jid, ibb_offer(sid, gajim.jid, file_xml, ibb_sid,
                                                       name="fileabc")) == "result"
        offer, transfer = await accept_offer(bob, tmp_path)
        [info] = offer.files
        assert (info.name, info.size) == ("photo.jpg", len(data))
        assert info.date is not None and info.date.year == 2024
        await gajim.next(Action.SESSION_ACCEPT)
        assert await gajim.send_xml(bob.jid, info_xml(sid, (
            f"<checksum xmlns='{FT}'><file><hash xmlns='{HASHES}' algo='sha-256'>"
            f"{b64(sha256(data))}</hash></file></checksum>"))) == "result"
        stream = await gajim.ibb.open(bob.jid, ibb_sid, 4096)
        await stream.send(data)
        await stream.aclose()
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed)
        assert (done.verified, done.verification) == (True, Verification.SENDER_HASH)
        assert Path(done.path).read_bytes() == data
        received, _ = await gajim.next(Action.SESSION_INFO)
        assert isinstance(received.info, (Received, Checksum))
        end, _ = await gajim.next(Action.SESSION_TERMINATE)
        assert end.reason is not None and end.reason.condition is Reason.SUCCESS
        assert any(isinstance(j.info, Received) for j in gajim.seen)


async def test_libervia_sender_with_hash_used_and_a_hex_in_base64_checksum(
        prosody: ProsodyServer, bob: Client, tmp_path: Path) -> None:
    """Libervia 0.8 (docs/interop.md §7): <hash-used algo='sha-256'/>, empty <range/>,
    <media-type>, the current time as date; after the data a checksum whose value is
    base64 of the *hex* digest.  jinglefs decodes it and verifies."""
    data = os.urandom(50_000)
    async with scripted(prosody, "alice", "libervia") as libervia:
        sid, ibb_sid = "lib-1", "lib-ibb"
        file_xml = (f"<name>doc.txt</name><size>{len(data)}</size>"
                    "<media-type>text/plain</media-type><desc></desc>"
                    "<date>2026-01-02T03:04:05Z</date><range/>"
                    f"<hash-used xmlns='{HASHES}' algo='sha-256'/>")
        assert await libervia.send_xml(bob.jid, ibb_offer(sid, libervia.jid, file_xml,
                                                          ibb_sid)) == "result"
        _, transfer = await accept_offer(bob, tmp_path)
        await libervia.next(Action.SESSION_ACCEPT)
        stream = await libervia.ibb.open(bob.jid, ibb_sid, 4096)
        await stream.send(data)
        await stream.aclose()
        hex_text = sha256(data).hex().encode()
        assert await libervia.send_xml(bob.jid, info_xml(sid, (
            f"<checksum xmlns='{FT}' creator='initiator' name='c0'><file>"
            f"<hash xmlns='{HASHES}' algo='sha-256'>{b64(hex_text)}</hash></file>"
            "</checksum>"))) == "result"
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed)
        assert (done.verified, done.verification) == (True, Verification.SENDER_HASH)
        assert Path(done.path).read_bytes() == data
        end, _ = await libervia.next(Action.SESSION_TERMINATE)
        assert end.reason is not None and end.reason.condition is Reason.SUCCESS


async def test_a_sender_that_terminates_right_after_the_last_byte_leaves_a_complete_file(
        prosody: ProsodyServer, bob: Client, tmp_path: Path) -> None:
    """A sender that ends the session with <success/> right after its last byte, without
    a checksum and racing its own last data block: the file is complete, reported "not
    verified (the sender gave no hash)", never a failure or unknown-session."""
    data = os.urandom(40_000)
    async with scripted(prosody, "alice", "ender") as ender:
        sid, ibb_sid = "end-1", "end-ibb"
        assert await ender.send_xml(bob.jid, ibb_offer(
            sid, ender.jid, f"<name>quick.bin</name><size>{len(data)}</size>",
            ibb_sid)) == "result"
        _, transfer = await accept_offer(bob, tmp_path)
        await ender.next(Action.SESSION_ACCEPT)
        stream = await ender.ibb.open(bob.jid, ibb_sid, 4096)
        cut = len(data) - 4096
        await stream.send(data[:cut])
        await stream.drain(BOUND)
        terminate = ender.send(bob.jid, Jingle(Action.SESSION_TERMINATE, sid,
                                               reason=ReasonInfo(Reason.SUCCESS)))
        answers = await asyncio.gather(stream.send(data[cut:]), terminate)
        assert answers[1] == "result"
        await stream.aclose()
        done = await asyncio.wait_for(transfer.wait(), BOUND)
        assert isinstance(done, Completed), done
        assert (done.verified, done.verification) == (False, Verification.NO_SENDER_HASH)
        assert Path(done.path).read_bytes() == data
        assert done.hashes["sha-256"] == sha256(data)
        assert not list((tmp_path / "inbox").glob("*.jfs-part"))
