"""A Psi/Libervia-style sender: two files in ONE session (XEP-0234 §5, several contents).

The peer is a plain slixmpp client speaking Jingle by hand (our codec builds the XML,
as a Psi capture would look): no jinglefs driver on that side.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from jinglefs.client import Client
from jinglefs.events import Completed
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.ibb.service import IbbService
from jinglefs.jingle import ns
from jinglefs.jingle.codec import encode_jingle
from jinglefs.jingle.model import Action, Content, FileDesc, FileTransferDescription, Jingle, Role
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login

from .test_transfer import first_offer

pytestmark = pytest.mark.e2e


async def test_two_files_in_one_session_from_a_psi_like_peer(
        prosody: ProsodyServer, bob: Client, tmp_path: Path) -> None:
    peer = await raw_login(prosody.account("alice"), "psi")
    ibb = IbbService(peer)
    terminated: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_jingle(iq):  # type: ignore[no-untyped-def]
        el = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
        iq.reply(clear=True).send()
        if el is not None and el.get("action") == "session-terminate" and \
                not terminated.done():
            reason = el.find(f"{{{ns.JINGLE}}}reason")
            terminated.set_result(reason[0].tag.split("}")[1] if reason is not None else "")

    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

    peer.register_handler(Callback("jingle", MatchXPath(
        f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
    try:
        files = {"one.txt": os.urandom(70_000), "two.bin": os.urandom(5_000)}
        contents = tuple(
            Content(Role.INITIATOR, f"c{i}", Role.INITIATOR,
                    FileTransferDescription(FileDesc(name=name, size=len(data))),
                    IbbTransport(f"ibb{i}", 4096))
            for i, (name, data) in enumerate(files.items()))
        iq = peer.make_iq_set(ito=bob.jid)
        iq.append(encode_jingle(Jingle(Action.SESSION_INITIATE, "psi-sid",
                                       initiator=str(peer.boundjid), contents=contents)))
        await iq.send(timeout=10)

        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [(n, len(d)) for n, d in
                                                           files.items()]
        transfers = await offer.accept(tmp_path)
        assert len(transfers) == 2
        await asyncio.sleep(0.3)  # the session-accept reaches the peer
        for i, data in enumerate(files.values()):
            stream = await ibb.open(bob.jid, f"ibb{i}", 4096)
            await stream.send(data)
            await stream.aclose()
            # XEP-0234 §8.2 checksum per content, like Psi sends it
            info = ET.Element(f"{{{ns.JINGLE}}}jingle",
                              {"action": "session-info", "sid": "psi-sid"})
            checksum = ET.SubElement(info, f"{{{ns.FT}}}checksum",
                                     {"creator": "initiator", "name": f"c{i}"})
            file_el = ET.SubElement(checksum, f"{{{ns.FT}}}file")
            ET.SubElement(file_el, f"{{{ns.HASHES}}}hash", {"algo": "sha-256"}).text = \
                base64.b64encode(hashlib.sha256(data).digest()).decode()
            info_iq = peer.make_iq_set(ito=bob.jid)
            info_iq.append(info)
            await info_iq.send(timeout=10)
        results = [await asyncio.wait_for(t.wait(), 30) for t in transfers]
        for done, (name, data) in zip(results, files.items(), strict=True):
            assert isinstance(done, Completed) and done.verified
            assert Path(done.path).name == name and Path(done.path).read_bytes() == data
        # Only when both files are in does the receiver end the session with success.
        assert await asyncio.wait_for(terminated, 10) == "success"
    finally:
        ibb.close_all()
        peer.disconnect()
