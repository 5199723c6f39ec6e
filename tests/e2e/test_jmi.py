"""Jingle Message Initiation (XEP-0353) on the real Prosody, against a peer that does what
Libervia 0.8's ``plugin_xep_0353.py`` does (docs/interop.md §7.5):

* as sender, ``<propose id=SID>`` with an empty file-transfer description from its full JID
  to our bare JID, then, after our ``<proceed/>``, session-initiate with sid SID to the full
  JID that proceeded (here over IBB, with its checksum: base64 of the hex digest);
* as receiver of a proposal from a roster contact, ``<accept/>`` to its own bare JID and
  ``<proceed/>`` to the proposer.

The peer is plain slixmpp writing the XML by hand; "our other device" is a second plain
session of the jinglefs account, which sees what the server gives every device.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import secrets
import uuid
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
from jinglefs.events import Completed
from jinglefs.ibb.service import IbbService
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login
from tests.xmpp.test_ibb_prosody import read_file

from .conftest import BOUND, FAST, first_offer, logged_in, make_file

pytestmark = pytest.mark.e2e

JMI = "urn:xmpp:jingle-message:0"
JINGLE = "urn:xmpp:jingle:1"
FT = "urn:xmpp:jingle:apps:file-transfer:5"
HASHES = "urn:xmpp:hashes:2"
IBB_T = "urn:xmpp:jingle:transports:ibb:1"
DISCO = "http://jabber.org/protocol/disco#info"


class Peer:
    """A plain slixmpp session that records JMI messages and Jingle IQs (acked at once)."""

    def __init__(self, xmpp: slixmpp.ClientXMPP) -> None:
        self.xmpp = xmpp
        self.jid = str(xmpp.boundjid.full)
        self.bare = str(xmpp.boundjid.bare)
        self.jmi: asyncio.Queue[tuple[str, ET.Element]] = asyncio.Queue()
        self.jingle: asyncio.Queue[ET.Element] = asyncio.Queue()
        self.ibb = IbbService(xmpp)

        def on_message(msg: Any) -> None:
            for child in msg.xml:
                if child.tag.startswith(f"{{{JMI}}}"):
                    self.jmi.put_nowait((str(msg["from"]), child))

        def on_jingle(iq: Any) -> None:
            iq.reply(clear=True).send()
            el = iq.xml.find(f"{{{JINGLE}}}jingle")
            if iq["type"] == "set" and el is not None:
                self.jingle.put_nowait(el)

        # (slixmpp's "message" event only fires for messages with a <body/>)
        for verb in ("propose", "retract", "accept", "proceed", "reject"):
            xmpp.register_handler(Callback(f"test jmi {verb}", MatchXPath(
                f"{{jabber:client}}message/{{{JMI}}}{verb}"), on_message))
        xmpp.register_handler(Callback("test jingle", MatchXPath(
            f"{{jabber:client}}iq/{{{JINGLE}}}jingle"), on_jingle))

    def send_jmi(self, to: str, verb: str, sid: str, *children: str) -> None:
        """The message Libervia's ``buildMessageData`` makes: type chat, one JMI element."""
        msg = self.xmpp.make_message(mto=to, mtype="chat")
        msg.xml.append(ET.fromstring(f"<{verb} xmlns='{JMI}' id='{sid}'>{''.join(children)}"
                                     f"</{verb}>"))
        msg.send()

    async def next_jmi(self) -> tuple[str, str, ET.Element]:
        sender, el = await asyncio.wait_for(self.jmi.get(), BOUND)
        return sender, el.tag.partition("}")[2], el

    async def next_jingle(self, action: str) -> ET.Element:
        while True:
            el = await asyncio.wait_for(self.jingle.get(), BOUND)
            if el.get("action") == action:
                return el

    async def jingle_set(self, to: str, xml: str) -> None:
        iq = self.xmpp.make_iq_set(ito=to)
        iq.append(ET.fromstring(xml))
        await iq.send(timeout=BOUND)

    async def barrier(self, to: str) -> None:
        """A disco#info round trip to ``to``: everything we sent it before is handled, and
        the server has processed what ``to`` sent before its answer (its initial presence:
        a message to the bare JID then reaches it)."""
        iq = self.xmpp.make_iq(ito=to, itype="get")
        ET.SubElement(iq.xml, f"{{{DISCO}}}query")
        await iq.send(timeout=BOUND)


@asynccontextmanager
async def peer_session(prosody: ProsodyServer, user: str, resource: str
                       ) -> AsyncIterator[Peer]:
    xmpp = await raw_login(prosody.account(user), resource)
    peer = Peer(xmpp)
    xmpp.send_presence()  # available: messages to the bare JID reach this session
    try:
        yield peer
    finally:
        peer.ibb.detach()
        xmpp.disconnect()


def accounts(prosody: ProsodyServer, *, contacts: bool = True) -> tuple[str, str]:
    """A jinglefs account and a Libervia account, in each other's roster or strangers."""
    tag = secrets.token_hex(3)
    jfs, lib = f"jmi-j-{tag}", f"jmi-l-{tag}"
    prosody.add_account(lib)
    prosody.add_account(jfs, roster=[lib] if contacts else [])
    return jfs, lib


def nothing_pending(client: Client) -> None:
    assert client.jmi.pending == {}
    assert client._pending_offers == [] and client._gathering == {}
    assert client._drivers == {}


def libervia_initiate(peer: Peer, sid: str, content: str, ibb_sid: str, name: str,
                      size: int) -> str:
    """Libervia's session-initiate (``jingleSessionInit``, ``buildFileElement``): the
    current date, an empty desc and range, hash-used sha-256; here over IBB."""
    return (f"<jingle xmlns='{JINGLE}' action='session-initiate' initiator='{peer.jid}' "
            f"sid='{sid}'><content creator='initiator' name='{content}' senders='initiator'>"
            f"<description xmlns='{FT}'><file><name>{name}</name><size>{size}</size>"
            "<media-type>application/octet-stream</media-type><desc></desc>"
            "<date>2026-01-02T03:04:05Z</date><range/>"
            f"<hash-used xmlns='{HASHES}' algo='sha-256'/></file></description>"
            f"<transport xmlns='{IBB_T}' block-size='4096' sid='{ibb_sid}'/>"
            "</content></jingle>")


async def test_libervia_0_8_proposal_from_a_contact_leads_to_a_verified_transfer(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    jfs, lib = accounts(prosody)
    data = make_file(tmp_path, "from-libervia.bin", 150_000).read_bytes()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with (peer_session(prosody, lib, "libervia") as peer,
                peer_session(prosody, jfs, "other-device") as other,
                logged_in(prosody, jfs, "desk") as client):
        await peer.barrier(client.jid)
        await other.barrier(client.jid)
        sid = str(uuid.uuid4())
        peer.send_jmi(prosody.jid(jfs), "propose", sid, f"<description xmlns='{FT}'/>")
        sender, verb, el = await peer.next_jmi()
        assert (sender, verb, el.get("id")) == (client.jid, "proceed", sid)
        assert client.jmi.pending.keys() == {sid}
        # Our other device saw the proposal, then our <accept/>: it stops ringing.
        seen = [(s, v, e.get("id")) for s, v, e in [await other.next_jmi(), await other.next_jmi()]]
        assert seen == [(peer.jid, "propose", sid), (client.jid, "accept", sid)]

        # Libervia sends session-initiate with the propose id to the JID that proceeded.
        content, ibb_sid = str(uuid.uuid4()), "lib-ibb-1"
        await peer.jingle_set(sender, libervia_initiate(peer, sid, content, ibb_sid,
                                                        "from-libervia.bin", len(data)))
        offer = await first_offer(client)
        assert offer.peer == peer.jid and offer.from_contact
        assert [(f.name, f.size) for f in offer.files] == [("from-libervia.bin", len(data))]
        assert client.jmi.pending == {}  # the proposal became this session
        [got] = await offer.accept(inbox)
        accept = await peer.next_jingle("session-accept")
        assert accept.get("sid") == sid
        stream = await peer.ibb.open(client.jid, ibb_sid, 4096, timeout=BOUND)
        await stream.send(data)
        await stream.drain(BOUND)
        await stream.aclose()
        # Libervia's checksum (_sendCheckSum): base64 of the hex digest
        value = base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()
        await peer.jingle_set(client.jid, (
            f"<jingle xmlns='{JINGLE}' action='session-info' sid='{sid}'>"
            f"<checksum xmlns='{FT}' creator='initiator' name='{content}'><file>"
            f"<hash xmlns='{HASHES}' algo='sha-256'>{value}</hash></file></checksum>"
            "</jingle>"))
        done = await asyncio.wait_for(got.wait(), BOUND)
        assert isinstance(done, Completed) and done.verified
        assert done.hashes["sha-256"] == hashlib.sha256(data).digest()
        assert Path(done.path).read_bytes() == data and list(inbox.iterdir()) == [Path(done.path)]
        terminate = await peer.next_jingle("session-terminate")
        assert terminate.find(f"{{{JINGLE}}}reason/{{{JINGLE}}}success") is not None


async def test_a_retracted_proposal_leaves_nothing_behind(prosody: ProsodyServer,
                                                          tmp_path: Path) -> None:
    jfs, lib = accounts(prosody)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with (peer_session(prosody, lib, "libervia") as peer,
                logged_in(prosody, jfs, "desk") as client):
        await peer.barrier(client.jid)
        sid = str(uuid.uuid4())
        # Propose and retract back to back: the retract is on its way before our
        # proceed arrives (XEP-0353 §3.3).
        peer.send_jmi(prosody.jid(jfs), "propose", sid, f"<description xmlns='{FT}'/>")
        peer.send_jmi(prosody.jid(jfs), "retract", sid,
                      f"<reason xmlns='{JINGLE}'><cancel/><text>Retracted</text></reason>")
        await peer.barrier(client.jid)
        sender, verb, el = await peer.next_jmi()
        assert (sender, verb, el.get("id")) == (client.jid, "proceed", sid)
        nothing_pending(client)
        assert list(inbox.iterdir()) == [] and list(tmp_path.rglob("*.jfs-part")) == []


async def test_proposals_we_do_not_answer(prosody: ProsodyServer) -> None:
    """XEP-0353 §6: a stranger's proposal gets no answer; a call is not ours; a sender the
    accept policy refuses gets <reject/>.  Nothing stays pending."""
    jfs, lib = accounts(prosody, contacts=False)
    async with (peer_session(prosody, lib, "libervia") as peer,
                logged_in(prosody, jfs, "desk") as client):
        await peer.barrier(client.jid)
        peer.send_jmi(prosody.jid(jfs), "propose", "stranger", f"<description xmlns='{FT}'/>")
        peer.send_jmi(prosody.jid(jfs), "propose", "call",
                      "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>")
        await peer.barrier(client.jid)
        assert peer.jmi.empty()
        nothing_pending(client)
    only_bob = replace(FAST, accept_from=frozenset({"bob@localhost"}))
    async with (peer_session(prosody, lib, "libervia") as peer,
                logged_in(prosody, jfs, "desk", only_bob) as client):
        await peer.barrier(client.jid)
        peer.send_jmi(prosody.jid(jfs), "propose", "refused", f"<description xmlns='{FT}'/>")
        sender, verb, el = await peer.next_jmi()
        assert (sender, verb, el.get("id")) == (client.jid, "reject", "refused")
        nothing_pending(client)


class LiberviaReceiver:
    """Libervia's ``_handlePropose`` for a roster contact, then a plain IBB receiver."""

    def __init__(self, peer: Peer, answer: str = "proceed") -> None:
        self.peer = peer
        self.answer = answer
        self.proposals: list[tuple[str, ET.Element]] = []

    async def ring(self) -> tuple[str, str]:
        sender, verb, el = await self.peer.next_jmi()
        assert verb == "propose"
        assert [d.tag for d in el] == [f"{{{FT}}}description"]
        sid = el.get("id", "")
        if self.answer == "proceed":
            self.peer.send_jmi(self.peer.bare, "accept", sid)
            self.peer.send_jmi(sender, "proceed", sid)
        elif self.answer == "reject":
            self.peer.send_jmi(sender, "reject", sid,
                               f"<reason xmlns='{JINGLE}'><busy/></reason>")
        return sender, sid


async def test_we_propose_to_a_bare_jid_and_send_to_the_device_that_proceeds(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    jfs, lib = accounts(prosody)
    src = make_file(tmp_path, "to-libervia.bin", 120_000)
    async with (peer_session(prosody, lib, "libervia") as peer,
                logged_in(prosody, jfs, "desk") as client):
        # The peer's presence shows no file transfer (it answers no disco): only JMI finds it.
        receiver = LiberviaReceiver(peer)
        sending = asyncio.ensure_future(client.send_files(prosody.jid(lib), [src]))
        sender, sid = await receiver.ring()
        assert sender == client.jid
        [sent] = await asyncio.wait_for(sending, BOUND)
        initiate = await peer.next_jingle("session-initiate")
        assert initiate.get("sid") == sid and initiate.get("initiator") == client.jid
        content = initiate.find(f"{{{JINGLE}}}content")
        assert content is not None
        transport = content.find(f"{{{IBB_T}}}transport")
        assert transport is not None  # no features seen: the last rung, IBB
        incoming = peer.ibb.expect(client.jid, transport.get("sid", ""),
                                   int(transport.get("block-size", "4096")))
        accept = ET.Element(f"{{{JINGLE}}}jingle", {"action": "session-accept", "sid": sid,
                                                    "responder": peer.jid})
        accept.append(copy.deepcopy(content))
        await peer.jingle_set(client.jid, ET.tostring(accept, encoding="unicode"))
        data = await asyncio.wait_for(read_file(incoming, 65536), BOUND)
        assert data == src.read_bytes()
        info = await peer.next_jingle("session-info")
        digest = info.find(f".//{{{HASHES}}}hash")
        assert digest is not None and digest.get("algo") == "sha-256"
        assert base64.b64decode(digest.text or "") == hashlib.sha256(data).digest()
        await peer.jingle_set(client.jid, (
            f"<jingle xmlns='{JINGLE}' action='session-terminate' sid='{sid}'>"
            f"<reason><success/></reason></jingle>").replace(
                "<reason>", f"<reason xmlns='{JINGLE}'>"))
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed)
        assert done.hashes["sha-256"] == hashlib.sha256(data).digest()


async def test_our_proposal_rejected_or_unanswered(prosody: ProsodyServer,
                                                   tmp_path: Path) -> None:
    jfs, lib = accounts(prosody)
    src = make_file(tmp_path, "nope.bin", 10)
    quick = replace(FAST, timeouts=replace(FAST.timeouts, accept=2))
    async with (peer_session(prosody, lib, "libervia") as peer,
                logged_in(prosody, jfs, "desk", quick) as client):
        receiver = LiberviaReceiver(peer, "reject")
        sending = asyncio.ensure_future(client.send_files(prosody.jid(lib), [src]))
        await receiver.ring()
        with pytest.raises(errors.Declined):
            await asyncio.wait_for(sending, BOUND)

        silent = LiberviaReceiver(peer, "none")
        sending = asyncio.ensure_future(client.send_files(prosody.jid(lib), [src]))
        _, sid = await silent.ring()
        with pytest.raises(errors.Unanswered, match="no device of"):
            await asyncio.wait_for(sending, BOUND)
        # XEP-0353 §3.3: the proposal is withdrawn
        _, verb, el = await peer.next_jmi()
        assert (verb, el.get("id")) == ("retract", sid)
        assert client._drivers == {}


async def test_a_contact_with_no_device_online(prosody: ProsodyServer, tmp_path: Path) -> None:
    """Presence shows all of a contact's devices: with none online there is nobody to
    ring (a proposal would sit in the server's offline store), so no recipient."""
    jfs, lib = accounts(prosody)
    async with logged_in(prosody, jfs, "desk") as client:
        with pytest.raises(errors.RecipientUnavailable, match="no online device"):
            await asyncio.wait_for(client.send_files(prosody.jid(lib),
                                                     [make_file(tmp_path, "x", 3)]), BOUND)
        assert client._drivers == {}
