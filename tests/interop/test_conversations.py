"""jinglefs against a Conversations 2.x-shaped peer (tests/interop/conversations.py,
docs/interop.md §3) on the real Prosody: real transfers both ways over SOCKS5 direct,
SOCKS5 through proxy65 and IBB, with its endings (checksum right after the last byte and
the socket kept open; <received/> + terminate right after the last byte) and its IBB
fallback after candidate-errors. Bytes on disk are compared by sha-256, and what jinglefs
reports (Completed, verified) is asserted."""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from jinglefs.api import Settings
from jinglefs.client import Client
from jinglefs.errors import Cancelled
from jinglefs.events import Completed, PathKind, TransportSelected
from tests.e2e.conftest import BOUND, FAST, first_offer, logged_in, make_file
from tests.servers.ejabberd import EjabberdServer
from tests.servers.prosody import ProsodyServer
from tests.servers.xmpp_server import XmppServer

from . import conversations as conv
from .peer import FT, JINGLE, S5B, random_data, sha256

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def tag() -> str:
    return os.urandom(3).hex()


async def receive_one(bob: Client, inbox: Path) -> Completed:
    offer = await first_offer(bob)
    inbox.mkdir(exist_ok=True)
    [got] = await offer.accept(inbox)
    done = await asyncio.wait_for(got.wait(), BOUND)
    assert isinstance(done, Completed), done
    return done


async def conversations_sends(prosody: XmppServer, tmp_path: Path, size: int,
                              settings: Settings = FAST, **kw: object
                              ) -> tuple[conv.Outcome, Completed, bytes, list[PathKind]]:
    t = tag()
    data = random_data(size)
    async with (conv.conversations_peer(prosody, "alice", f"conv-{t}") as peer,
                logged_in(prosody, "bob", f"b-{t}", settings) as bob):
        sending = asyncio.ensure_future(conv.send_file(peer, bob.jid, data, "photo.jpg",
                                                       **kw))  # type: ignore[arg-type]
        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [("photo.jpg", size)]
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [got] = await offer.accept(inbox)
        done = await asyncio.wait_for(got.wait(), BOUND)
        out = await asyncio.wait_for(sending, BOUND)
        kinds = [e.path async for e in got.events() if isinstance(e, TransportSelected)]
        assert isinstance(done, Completed), done
        assert Path(done.path).read_bytes() == data and list(inbox.iterdir()) == \
            [Path(done.path)]
        return out, done, data, kinds


async def test_conversations_2_x_sends_over_s5b_direct(prosody: ProsodyServer,
                                                        tmp_path: Path) -> None:
    out, done, data, kinds = await conversations_sends(prosody, tmp_path, 300_001)
    assert out.transport == "s5b" and kinds == [PathKind.S5B_DIRECT]
    # Its checksum came right after the last byte: verified by sha-256 (or sha-1).
    assert done.verified and done.hashes["sha-256"] == sha256(data)
    # ... and jinglefs, the receiver, ended the session with success.
    assert out.terminate_reason == "success"


async def test_conversations_2_x_sends_over_proxy65(ejabberd: EjabberdServer,
                                                    tmp_path: Path) -> None:
    # Its direct candidate is unreachable (a phone behind NAT) and jinglefs offers no
    # direct candidate: both sides meet at the server's proxy65. This runs on ejabberd:
    # Prosody 0.12's proxy65 can hold the last few KiB of a sender that keeps its socket
    # open, as Conversations does until our terminate (docs/interop.md §3.5, §3.10).
    out, done, data, kinds = await conversations_sends(
        ejabberd, tmp_path, 300_001, replace(FAST, s5b_direct=False),
        proxy_jid=ejabberd.proxy_jid, dead_direct=True)
    assert out.transport == "s5b" and kinds == [PathKind.S5B_PROXY]
    assert done.verified and done.hashes["sha-256"] == sha256(data)
    assert out.terminate_reason == "success"


async def test_conversations_2_x_sends_over_ibb(prosody: ProsodyServer,
                                                tmp_path: Path) -> None:
    # IBB offered directly (its choice when we lack s5b or it uses relays): 8192-byte
    # blocks, three in flight, seq never wraps, and never a <close/>: jinglefs must finish
    # on the size alone.
    out, done, data, kinds = await conversations_sends(prosody, tmp_path, 200_003,
                                                       transport="ibb")
    assert out.transport == "ibb" and kinds == [PathKind.IBB]
    assert done.verified and done.hashes["sha-256"] == sha256(data)
    assert out.terminate_reason == "success"


async def test_conversations_2_x_falls_back_to_ibb_after_candidate_errors(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    # Neither side reaches the other's candidates: both send candidate-error and the
    # Conversations initiator replaces the transport with IBB (onTransportSetupFailed);
    # jinglefs, the responder, accepts and never sends its own transport-replace (which
    # Conversations would answer by terminating the session as out of order).
    out, done, data, kinds = await conversations_sends(
        prosody, tmp_path, 100_000, replace(FAST, s5b_direct=False, use_proxy=False),
        dead_direct=True, dial=False)
    assert out.transport == "ibb" and kinds[-1] == PathKind.IBB
    assert done.verified and out.terminate_reason == "success"
    assert "transport-replace" not in out.seen and "transport-accept" in out.seen


#: The peer does not speak JET (XEP-0391): once bob's OMEMO device is on the server (an
#: earlier jinglefs bob published it), jinglefs would encrypt to it, since Conversations
#: advertises jingle:jet:0. Plain transfers here; JET has its own tests.
PLAIN = replace(FAST, encryption="off")


async def conversations_receives(prosody: ProsodyServer, tmp_path: Path, size: int,
                                 transport: str, settings: Settings = PLAIN,
                                 **kw: object) -> tuple[conv.Outcome, Completed, bytes,
                                                        ET.Element]:
    t = tag()
    async with (conv.conversations_peer(prosody, "bob", f"conv-{t}") as peer,
                logged_in(prosody, "alice", f"a-{t}", settings) as alice):
        src = make_file(tmp_path, "report.pdf", size)
        [sent] = await alice.send_files(peer.jid, [src], transport=transport)
        initiate = await peer.next_jingle("session-initiate")
        # What Conversations requires of an offer (docs/interop.md §3.2)
        assert conv.offered_file(initiate)[2] == size
        name = initiate.find(f"{{{JINGLE}}}content/{{{FT}}}description/{{{FT}}}file/"
                             f"{{{FT}}}name")
        assert name is not None and name.text == "report.pdf"
        out = await asyncio.wait_for(conv.receive_file(peer, initiate, **kw),  # type: ignore[arg-type]
                                     BOUND)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed), done
        data = src.read_bytes()
        assert sha256(out.data) == sha256(data)
        # The session ends with its terminate: our reply to it is a plain result, no
        # unknown-session (it came right after the last byte).
        assert [r.get("type") for r in out.replies] == ["result"] * len(out.replies)
        return out, done, data, initiate


async def test_conversations_2_x_receives_over_s5b_direct(prosody: ProsodyServer,
                                                          tmp_path: Path) -> None:
    out, done, data, initiate = await conversations_receives(prosody, tmp_path, 300_001,
                                                             "s5b")
    assert out.transport == "s5b"
    # Every candidate attribute it needs is there (Candidate.of skips any without them)
    for cand in initiate.iter(f"{{{S5B}}}candidate"):
        assert {"cid", "host", "jid", "port", "priority", "type"} <= set(cand.keys())
    # It terminated right after the last byte, sending no checksum: complete, and
    # jinglefs says why it is not verified.
    assert done.size == len(data) and done.hashes["sha-256"] == sha256(data)
    assert not done.verified and done.reason


async def test_conversations_2_x_receives_over_proxy65(prosody: ProsodyServer,
                                                       tmp_path: Path) -> None:
    out, done, data, _ = await conversations_receives(
        prosody, tmp_path, 200_003, "s5b", replace(PLAIN, s5b_direct=False),
        proxy_jid=prosody.proxy_jid, dead_direct=True)
    assert out.transport == "s5b"
    assert done.size == len(data) and done.hashes["sha-256"] == sha256(data)


async def test_conversations_2_x_receives_over_ibb(prosody: ProsodyServer,
                                                   tmp_path: Path) -> None:
    out, done, data, initiate = await conversations_receives(prosody, tmp_path, 100_001,
                                                             "ibb")
    assert out.transport == "ibb"
    assert done.size == len(data) and done.hashes["sha-256"] == sha256(data)


async def test_conversations_2_x_cancel_from_the_initiator(prosody: ProsodyServer,
                                                           tmp_path: Path) -> None:
    # stopFileTransfer: 'cancel' with its text, from the initiator, before any byte.
    t = tag()
    async with (conv.conversations_peer(prosody, "alice", f"conv-{t}") as peer,
                logged_in(prosody, "bob", f"b-{t}") as bob):
        sid, content = conv.new_id(), conv.new_id()
        reply = await peer.send_jingle(bob.jid, conv.jingle_xml("session-initiate", sid,
            conv.content_xml(content, conv.file_xml("a.bin", 5000, None),
                             conv.ibb_transport_xml(conv.new_id()))))
        assert reply.get("type") == "result"
        offer = await first_offer(bob)
        [got] = await offer.accept(tmp_path)
        await peer.next_jingle("session-accept")
        reply = await peer.terminate(bob.jid, sid, "cancel",
                                     "<text>User requested to stop file transfer</text>")
        assert reply.get("type") == "result"
        with pytest.raises(Cancelled, match="User requested to stop file transfer"):
            await asyncio.wait_for(got.wait(), BOUND)
        assert list(tmp_path.iterdir()) == []  # no partial file left behind
