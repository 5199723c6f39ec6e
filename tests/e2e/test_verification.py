"""Verified means verified, on both sides (docs/protocol.md §5.8), on the real Prosody.

* jinglefs to jinglefs: the receiver checks the sender's checksum and confirms it with a
  session-info checksum of its own before ``<received/>`` and the terminate; both sides
  say verified.
* A Dino-like sender (a raw slixmpp peer: no hash in the offer, no checksum after the
  bytes): the jinglefs receiver keeps the file, "complete, not verified (the sender gave
  no hash)", with its sha-256, and confirms nothing.
* A Dino-like receiver (accepts, reads the bytes, terminates with success, confirms
  nothing): the jinglefs sender says "delivered; the receiver did not confirm the checksum".
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jinglefs.client import Client
from jinglefs.events import Completed, Verification, Verified
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.ibb.service import IbbService
from jinglefs.jingle import ns
from jinglefs.jingle.codec import encode_jingle, parse_jingle
from jinglefs.jingle.model import (
    Action,
    Checksum,
    Content,
    FileDesc,
    FileTransferDescription,
    Jingle,
    Reason,
    ReasonInfo,
    Received,
    Role,
)
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login

from .conftest import BOUND, first_offer, make_file, settle

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_both_jinglefs_sides_say_verified(alice: Client, bob: Client, tmp_path: Path,
                                                jingle_log: list[tuple[str, Jingle]]) -> None:
    src = make_file(tmp_path, "both.bin", 300_000)
    digest = hashlib.sha256(src.read_bytes()).digest()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    [got] = await (await first_offer(bob)).accept(inbox)
    received = await asyncio.wait_for(got.wait(), BOUND)
    delivered = await asyncio.wait_for(sent.wait(), BOUND)
    assert isinstance(received, Completed) and isinstance(delivered, Completed)
    assert (received.verified, received.verification) == (True, Verification.SENDER_HASH)
    assert (delivered.verified, delivered.verification) == \
        (True, Verification.RECEIVER_CONFIRMED)
    assert received.reason == delivered.reason == ""
    [confirmed] = [e async for e in sent.events() if isinstance(e, Verified)]
    assert (confirmed.algo, confirmed.digest) == ("sha-256", digest)
    # On the wire, from bob: his own checksum, then <received/>, then the terminate.
    from_bob = [j for who, j in jingle_log if who == bob.jid and j.sid == got_sid(jingle_log,
                                                                                   bob.jid)]
    tail = [(j.action, type(j.info).__name__ if j.info is not None else None)
            for j in from_bob][-3:]
    assert tail == [(Action.SESSION_INFO, "Checksum"), (Action.SESSION_INFO, "Received"),
                    (Action.SESSION_TERMINATE, None)]
    echo = from_bob[-3].info
    assert isinstance(echo, Checksum) and echo.name == "0" and echo.creator is Role.INITIATOR
    assert dict(echo.file.hashes) == {"sha-256": digest}


def got_sid(log: list[tuple[str, Jingle]], responder: str) -> str:
    [sid] = {j.sid for who, j in log if who == responder and j.action is Action.SESSION_ACCEPT}
    return sid


@dataclass
class RawPeer:
    """A plain slixmpp client that speaks Jingle by hand, like Dino: no hash, no checksum,
    no <received/>; IBB only."""

    xmpp: Any
    ibb: IbbService
    jid: str
    #: every Jingle action it was sent, parsed
    got: list[Jingle] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, to: str, jingle: Jingle) -> Any:
        iq = self.xmpp.make_iq_set(ito=to)
        iq.append(encode_jingle(jingle))
        return iq.send(timeout=20)

    async def next(self, action: Action) -> Jingle:
        while True:
            for j in self.got:
                if j.action is action:
                    self.got.remove(j)
                    return j
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), BOUND)


@pytest.fixture
async def dino(prosody: ProsodyServer) -> AsyncIterator[RawPeer]:
    xmpp = await raw_login(prosody.account("alice"), "dino")
    peer = RawPeer(xmpp, IbbService(xmpp), str(xmpp.boundjid))

    def on_jingle(iq: Any) -> None:
        el = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
        iq.reply(clear=True).send()
        if el is not None:
            peer.got.append(parse_jingle(ET.fromstring(ET.tostring(el))))
            peer.changed.set()

    xmpp.register_handler(Callback("jingle", MatchXPath(
        f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
    try:
        yield peer
    finally:
        peer.ibb.close_all()
        xmpp.disconnect()


async def test_a_sender_without_hash_gives_a_complete_but_unverified_file(
        dino: RawPeer, bob: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jinglefs.receiving as receiving_mod

    monkeypatch.setattr(receiving_mod, "CHECKSUM_WAIT", 1.0)  # Dino never sends one
    data = os.urandom(50_000)
    sid = "dino-sid"
    offer = Content(Role.INITIATOR, "a-file", Role.INITIATOR,
                    FileTransferDescription(FileDesc(name="from-dino.bin", size=len(data))),
                    IbbTransport("dino-ibb", 4096))
    await dino.send(bob.jid, Jingle(Action.SESSION_INITIATE, sid, initiator=dino.jid,
                                    contents=(offer,)))
    [got] = await (await first_offer(bob)).accept(tmp_path)
    await dino.next(Action.SESSION_ACCEPT)
    stream = await dino.ibb.open(bob.jid, "dino-ibb", 4096, timeout=20)
    await stream.send(data)
    await stream.drain(30)
    await stream.aclose()
    done = await asyncio.wait_for(got.wait(), BOUND)
    assert isinstance(done, Completed)
    assert Path(done.path).read_bytes() == data  # kept
    assert (done.verified, done.verification) == (False, Verification.NO_SENDER_HASH)
    assert done.reason == "complete, not verified (the sender gave no hash)"
    assert done.hashes["sha-256"] == hashlib.sha256(data).digest()
    assert not [e async for e in got.events() if isinstance(e, Verified)]
    terminate = await dino.next(Action.SESSION_TERMINATE)
    assert terminate.reason is not None and terminate.reason.condition is Reason.SUCCESS
    infos = [j.info for j in dino.got if j.action is Action.SESSION_INFO]
    # <received/> (XEP-0234 §8.1) but no checksum: there was nothing to confirm.
    assert [type(i) for i in infos] == [Received]
    await settle(bob)


async def test_a_receiver_that_does_not_confirm_leaves_the_sender_unverified(
        dino: RawPeer, alice: Client, tmp_path: Path) -> None:
    src = make_file(tmp_path, "to-dino.bin", 60_000)
    data = src.read_bytes()
    # alice's own account, another device: a Dino on alice's phone.
    [sent] = await alice.send_files(dino.jid, [src], transport="ibb")
    offer = await dino.next(Action.SESSION_INITIATE)
    [content] = offer.contents
    transport = content.transport
    assert isinstance(transport, IbbTransport)
    incoming = dino.ibb.expect(alice.jid, transport.sid, transport.block_size)
    await dino.send(alice.jid, Jingle(Action.SESSION_ACCEPT, offer.sid, responder=dino.jid,
                                      contents=(content,)))
    await incoming.wait_open(20)
    got = bytearray()
    while len(got) < len(data):
        chunk = await incoming.receive(65536)
        assert chunk, "the stream ended early"
        got += chunk
    assert bytes(got) == data
    checksum = await dino.next(Action.SESSION_INFO)  # alice's, XEP-0234 §8.2
    assert isinstance(checksum.info, Checksum)
    assert dict(checksum.info.file.hashes) == {"sha-256": hashlib.sha256(data).digest()}
    await dino.send(alice.jid, Jingle(Action.SESSION_TERMINATE, offer.sid,
                                      reason=ReasonInfo(Reason.SUCCESS)))
    done = await asyncio.wait_for(sent.wait(), BOUND)
    assert isinstance(done, Completed)
    assert (done.verified, done.verification) == (False, Verification.NOT_CONFIRMED)
    assert done.reason == "delivered; the receiver did not confirm the checksum"
    assert done.hashes == {"sha-256": hashlib.sha256(data).digest()}
    assert not [e async for e in sent.events() if isinstance(e, Verified)]
    await settle(alice)
