"""A peer's transport-replace at an awkward moment is answered, over the real Prosody.

XEP-0166 §7.2.15: the recipient of a transport-replace "MUST send a transport-accept
action ... if not, it MUST send a transport-reject action".  The peer here is a plain
slixmpp client speaking Jingle by hand (our codec builds its XML), like
test_interop_multifile.py: it sends transport-replace while the bytes of a jinglefs
Client's transfer flow (jinglefs receives), and right after its session-accept while a
jinglefs Client sends.  Each time the answer must be transport-reject for that content,
and the file must still arrive whole (sha-256).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jinglefs.client import Client
from jinglefs.events import Completed, TransportSelected
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.ibb.service import IbbService
from jinglefs.jingle import ns
from jinglefs.jingle.codec import encode_jingle, parse_jingle
from jinglefs.jingle.model import (
    Action,
    Content,
    FileDesc,
    FileTransferDescription,
    Jingle,
    Reason,
    ReasonInfo,
    Role,
)
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login

from .test_transfer import first_offer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: the answers to a transport-replace (XEP-0166 §7.2.12 / §7.2.14)
ANSWERS = (Action.TRANSPORT_ACCEPT, Action.TRANSPORT_REJECT)


class RawJinglePeer:
    """Acks every Jingle IQ-set it gets and keeps it, in order, for the test to read."""

    def __init__(self, xmpp: slixmpp.ClientXMPP) -> None:
        self.xmpp = xmpp
        self.jid = str(xmpp.boundjid.full)
        self.ibb = IbbService(xmpp)
        self.inbox: asyncio.Queue[Jingle] = asyncio.Queue()
        xmpp.register_handler(Callback("raw-jingle", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), self._on_jingle))

    def _on_jingle(self, iq: Any) -> None:
        el = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
        if iq["type"] != "set" or el is None:
            return
        iq.reply(clear=True).send()
        self.inbox.put_nowait(parse_jingle(el))

    async def send(self, to: str, jingle: Jingle) -> str:
        """Send one action; the type of the IQ answer ("result"; an error raises)."""
        iq = self.xmpp.make_iq_set(ito=to)
        iq.append(encode_jingle(jingle))
        answer = await iq.send(timeout=10)
        return str(answer["type"])

    async def next(self, actions: tuple[Action, ...], timeout: float = 15) -> Jingle:
        """The next action of these kinds from the jinglefs side (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                j = await self.inbox.get()
                if j.action in actions:
                    return j

    def close(self) -> None:
        self.ibb.close_all()
        self.xmpp.disconnect()


def checksum_info(sid: str, name: str, data: bytes) -> ET.Element:
    """XEP-0234 §8.2 session-info checksum, as Psi sends it."""
    info = ET.Element(f"{{{ns.JINGLE}}}jingle", {"action": "session-info", "sid": sid})
    checksum = ET.SubElement(info, f"{{{ns.FT}}}checksum",
                             {"creator": "initiator", "name": name})
    file_el = ET.SubElement(checksum, f"{{{ns.FT}}}file")
    ET.SubElement(file_el, f"{{{ns.HASHES}}}hash", {"algo": "sha-256"}).text = \
        base64.b64encode(hashlib.sha256(data).digest()).decode()
    return info


def assert_rejects(answer: Jingle, sid: str, content: str, replaced: IbbTransport) -> None:
    assert answer.action is Action.TRANSPORT_REJECT
    assert answer.sid == sid
    assert [c.name for c in answer.contents] == [content]
    assert answer.contents[0].transport == replaced


async def test_replace_while_bytes_flow_to_us_is_rejected(
        prosody: ProsodyServer, bob: Client, tmp_path: Path) -> None:
    """jinglefs receives; the initiator asks to replace the transport halfway through the
    bytes: the content's transport is fixed by then, so transport-reject, and the rest of
    the file still arrives over the stream in use."""
    peer = RawJinglePeer(await raw_login(prosody.account("alice"), "replacer"))
    sid, name = "tr-in", "c0"
    data = os.urandom(150_000)
    try:
        offer_transport = IbbTransport("ibb-in", 4096)
        assert await peer.send(bob.jid, Jingle(
            Action.SESSION_INITIATE, sid, initiator=peer.jid, contents=(Content(
                Role.INITIATOR, name, Role.INITIATOR,
                FileTransferDescription(FileDesc(name="half.bin", size=len(data))),
                offer_transport),))) == "result"
        [transfer] = await (await first_offer(bob)).accept(tmp_path)
        accept = await peer.next((Action.SESSION_ACCEPT,))
        assert accept.contents[0].transport == offer_transport

        stream = await peer.ibb.open(bob.jid, offer_transport.sid, 4096)
        await stream.send(data[: len(data) // 2])  # acked block by block: bytes flow
        async for event in transfer.events():  # the receiver's transport is fixed now
            if isinstance(event, TransportSelected):
                break

        late = IbbTransport("ibb-late", 4096)
        assert await peer.send(bob.jid, Jingle(Action.TRANSPORT_REPLACE, sid, contents=(
            Content(Role.INITIATOR, name, Role.INITIATOR, transport=late),))) == "result"
        assert_rejects(await peer.next(ANSWERS), sid, name, late)

        await stream.send(data[len(data) // 2:])
        await stream.aclose()
        info_iq = peer.xmpp.make_iq_set(ito=bob.jid)
        info_iq.append(checksum_info(sid, name, data))
        await info_iq.send(timeout=10)
        done = await asyncio.wait_for(transfer.wait(), 30)
        assert isinstance(done, Completed) and done.verified
        assert hashlib.sha256(Path(done.path).read_bytes()).digest() == \
            hashlib.sha256(data).digest()
        end = await peer.next((Action.SESSION_TERMINATE,))
        assert end.reason is not None and end.reason.condition is Reason.SUCCESS
    finally:
        peer.close()


async def test_responder_replace_while_we_send_is_rejected(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    """jinglefs sends (the initiator); the responder accepts and at once asks for another
    transport, crossing our first bytes: as initiator we keep ours and reject theirs."""
    peer = RawJinglePeer(await raw_login(prosody.account("bob"), "replacer"))
    data = os.urandom(120_000)
    src = tmp_path / "out.bin"
    src.write_bytes(data)
    try:
        [transfer] = await alice.send_files(peer.jid, [src], transport="ibb")
        initiate = await peer.next((Action.SESSION_INITIATE,))
        [content] = initiate.contents
        assert isinstance(content.transport, IbbTransport)
        incoming = peer.ibb.expect(alice.jid, content.transport.sid,
                                   content.transport.block_size)
        assert await peer.send(alice.jid, Jingle(
            Action.SESSION_ACCEPT, initiate.sid, responder=peer.jid,
            contents=(content,))) == "result"
        late = IbbTransport("ibb-theirs", 4096)
        assert await peer.send(alice.jid, Jingle(Action.TRANSPORT_REPLACE, initiate.sid,
                                                 contents=(Content(
            Role.INITIATOR, content.name, Role.INITIATOR, transport=late),))) == "result"
        assert_rejects(await peer.next(ANSWERS), initiate.sid, content.name, late)

        await incoming.wait_open(15)
        got = bytearray()
        while chunk := await incoming.receive(1 << 16):
            got += chunk
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        info = await peer.next((Action.SESSION_INFO,))
        assert info.info is not None
        assert peer.inbox.empty()  # nothing else came: one answer, no second one
        assert await peer.send(alice.jid, Jingle(Action.SESSION_TERMINATE, initiate.sid,
                                                 reason=ReasonInfo(Reason.SUCCESS))) == "result"
        done = await asyncio.wait_for(transfer.wait(), 30)
        assert isinstance(done, Completed) and done.size == len(data)
    finally:
        peer.close()
