"""A tidy download folder, on the real Prosody: offers that never deliver a byte leave
nothing on disk, and nothing stale in the state directory (jinglefs.transfer.receiver,
docs/protocol.md §5.6).

The flood comes from a raw peer (plain slixmpp speaking Jingle by hand, as a misbehaving
or crashing client would): 50 session-initiates, every one accepted by a real jinglefs
client; then a few IBB streams are opened and closed without a byte, half the sessions
are cancelled and the peer vanishes without a word for the others.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jinglefs import errors
from jinglefs.api import TransferLike
from jinglefs.client import Client
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.ibb.service import IbbService
from jinglefs.jingle import ns
from jinglefs.jingle.codec import encode_jingle
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

from .conftest import BOUND, settle

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FLOOD = 50
#: sessions whose IBB stream the peer opens and closes at once (0 bytes)
EMPTY_STREAMS = 5
#: sessions the peer cancels; it vanishes without a word for the others
CANCELLED = FLOOD // 2


def initiate(sid: str, i: int, initiator: str) -> Any:
    content = Content(Role.INITIATOR, "0", Role.INITIATOR,
                      FileTransferDescription(FileDesc(name=f"photo-{i}.jpg", size=10_000 + i)),
                      IbbTransport(f"ibb-{sid}", 4096))
    return encode_jingle(Jingle(Action.SESSION_INITIATE, sid, initiator=initiator,
                                contents=(content,)))


async def test_fifty_offers_that_never_start_leave_nothing(prosody: ProsodyServer,
                                                           bob: Client,
                                                           tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    partials = Path(os.environ["JINGLEFS_STATE_DIR"]) / "partials"
    peer = await raw_login(prosody.account("alice"), "flood")
    peer.send_presence()  # so that bob sees it go when it vanishes (RFC 6121 §4.5)
    ibb = IbbService(peer)
    accepted: set[str] = set()
    all_accepted = asyncio.get_running_loop().create_future()

    def on_jingle(iq: Any) -> None:
        el = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
        iq.reply(clear=True).send()  # ack everything (XEP-0166 §6.3.1)
        if el is not None and el.get("action") == "session-accept":
            accepted.add(el.get("sid"))
            if len(accepted) == FLOOD and not all_accepted.done():
                all_accepted.set_result(None)

    peer.register_handler(Callback("jingle", MatchXPath(
        f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
    transfers: list[TransferLike] = []

    async def accept_everything() -> None:
        async for offer in bob.offers():
            transfers.extend(await offer.accept(inbox))

    accepting = asyncio.ensure_future(accept_everything())
    sids = [f"flood{i:02d}" for i in range(FLOOD)]
    try:
        for i, sid in enumerate(sids):
            iq = peer.make_iq_set(ito=bob.jid)
            iq.append(initiate(sid, i, str(peer.boundjid)))
            await iq.send(timeout=20)
        await asyncio.wait_for(all_accepted, BOUND)
        assert len(transfers) == FLOOD
        # Accepted, and yet nothing on disk: the partial comes with the first byte.
        assert list(inbox.iterdir()) == []
        for sid in sids[:EMPTY_STREAMS]:
            stream = await ibb.open(bob.jid, f"ibb-{sid}", 4096, timeout=20)
            await stream.aclose()  # not one byte
        for sid in sids[:CANCELLED]:
            iq = peer.make_iq_set(ito=bob.jid)
            iq.append(encode_jingle(Jingle(Action.SESSION_TERMINATE, sid,
                                           reason=ReasonInfo(Reason.CANCEL))))
            await iq.send(timeout=20)
    finally:
        ibb.close_all()
        peer.disconnect()  # the others just vanish: bob ends them as "gone" (XEP-0166 §6.7)
        accepting.cancel()
    outcomes: list[str] = []
    for t in transfers:
        with pytest.raises(errors.JingleFSError) as failed:
            await asyncio.wait_for(t.wait(), BOUND)
        outcomes.append(failed.value.kind)
    await settle(bob)
    print(f"outcomes: {sorted(set(outcomes))}")
    assert outcomes.count("cancelled") >= CANCELLED - EMPTY_STREAMS
    assert list(inbox.iterdir()) == []  # not one file, not one folder
    assert not partials.exists() or list(partials.iterdir()) == []  # nothing stale
