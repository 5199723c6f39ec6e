"""One action, one question (docs/protocol.md §3.5), over the real Prosody.

* jinglefs to jinglefs: a folder of 6 files (one in a subfolder) is ONE session-initiate
  with 6 contents (XEP-0166 §7.2.10, XEP-0234 §5), ONE offer at the receiver, one accept;
  every file arrives whole (sha-256) in its folder under the chosen one.
* The sender decides from the peer's disco identity (XEP-0030): a Conversations-like peer
  (one content per session) gets one session per file, a Psi-like peer one session with
  every file.  The peers are plain slixmpp clients speaking Jingle by hand, like
  test_interop_multifile.py.
* A Conversations-like *sender* opens one session per file: the jinglefs receiver still
  asks once, and accepting (or declining) answers every session.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from jinglefs.client import Client
from jinglefs.events import Completed
from jinglefs.ibb.protocol import IbbTransport
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
from jinglefs.xmpp.connection import send_and_wait
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login

from .cli_run import cli_transfer
from .conftest import BOUND, FAST, first_offer, logged_in, paths, settings, two_clients
from .test_transport_replace import RawJinglePeer, checksum_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

#: a folder of one action: 4 files at the top, 2 in a subfolder
FOLDER = {"trip/a.txt": 1_000, "trip/b.jpg": 300_000, "trip/c.bin": 0, "trip/d.pdf": 77_777,
          "trip/day2/e.mov": 500_001, "trip/day2/f.txt": 12}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path, files: dict[str, int]) -> dict[str, bytes]:
    made = {}
    for name, size in files.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        made[name] = os.urandom(size)
        path.write_bytes(made[name])
    return made


async def raw_peer(prosody: ProsodyServer, user: str, resource: str,
                   client_name: str) -> RawJinglePeer:
    """A hand-driven Jingle peer whose disco identity names ``client_name`` (XEP-0030)."""
    xmpp = await raw_login(prosody.account(user), resource)
    xmpp.register_plugin("xep_0030")
    xmpp.plugin["xep_0030"].add_identity(category="client", itype="phone", name=client_name)
    return RawJinglePeer(xmpp)


async def receive_session(peer: RawJinglePeer, sender: str, initiate: Jingle
                          ) -> dict[str, bytes]:
    """Accept every content of ``initiate`` (IBB), read each file, end with success."""
    streams = {}
    for c in initiate.contents:
        assert isinstance(c.transport, IbbTransport)
        streams[c.name] = peer.ibb.expect(sender, c.transport.sid, c.transport.block_size)
    assert await peer.send(sender, Jingle(Action.SESSION_ACCEPT, initiate.sid,
                                          responder=peer.jid,
                                          contents=initiate.contents)) == "result"

    async def read(c: Content) -> tuple[str, bytes]:
        # every content's stream at once: the sender runs them side by side
        assert isinstance(c.description, FileTransferDescription)
        assert c.description.file.name is not None
        data = bytearray()
        while chunk := await streams[c.name].receive(1 << 16):
            data += chunk
        return c.description.file.name, bytes(data)

    got = dict(await asyncio.wait_for(asyncio.gather(*map(read, initiate.contents)), BOUND))
    # XEP-0234 §6.6: the receiver ends the session once it has every file.
    assert await peer.send(sender, Jingle(Action.SESSION_TERMINATE, initiate.sid,
                                          reason=ReasonInfo(Reason.SUCCESS))) == "result"
    return got


@pytest.mark.parametrize("transport", ["s5b", "ibb", "ice"])
async def test_a_folder_of_six_files_is_one_session_and_one_offer(
        prosody: ProsodyServer, transport: str, tmp_path: Path,
        jingle_log: list[tuple[str, Jingle]]) -> None:
    # every content runs its own transport, side by side (ICE: an agent each, on loopback)
    async with two_clients(prosody, f"folder-{transport}",
                           settings(ice_host_addresses=("127.0.0.1",))) as (alice, bob):
        await one_folder(alice, bob, transport, tmp_path, jingle_log)


async def one_folder(alice: Client, bob: Client, transport: str, tmp_path: Path,
                     jingle_log: list[tuple[str, Jingle]]) -> None:
    sent_bytes = make_tree(tmp_path / "out", FOLDER)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sent = await alice.send_files(bob.jid, [tmp_path / "out" / "trip"], transport=transport)
    assert [t.file.name for t in sent] == list(FOLDER)

    offer = await first_offer(bob)
    assert [(f.name, f.size) for f in offer.files] == list(FOLDER.items())
    assert sum(f.size for f in offer.files) == sum(FOLDER.values())
    got = await offer.accept(inbox)  # the one and only question
    received = [await asyncio.wait_for(t.wait(), BOUND) for t in got]
    delivered = [await asyncio.wait_for(t.wait(), BOUND) for t in sent]

    for name, done in zip(FOLDER, received, strict=True):
        assert isinstance(done, Completed) and done.verified
        path = Path(done.path)
        assert path == inbox.joinpath(*name.split("/"))  # the folders are kept, inside
        assert sha(path.read_bytes()) == sha(sent_bytes[name])
    assert all(isinstance(d, Completed) for d in delivered)
    assert {e.path.value for t in got for e in await paths(t)} <= {
        "s5b": {"s5b-direct", "s5b-proxy"}, "ibb": {"ibb"},
        "ice": {"ice-direct"}}[transport]
    kept = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*") if p.is_file())
    assert kept == sorted(FOLDER)
    # On the wire: one session-initiate with a content per file, one session-accept.
    initiates = [j for who, j in jingle_log if who == alice.jid
                 and j.action is Action.SESSION_INITIATE]
    assert len(initiates) == 1
    [initiate] = initiates
    assert [c.name for c in initiate.contents] == [str(i) for i in range(len(FOLDER))]
    accepts = [j for who, j in jingle_log if who == bob.jid and j.action is Action.SESSION_ACCEPT]
    assert len(accepts) == 1 and len(accepts[0].contents) == len(FOLDER)
    # Nothing else is waiting for a question.
    assert bob._gathering == {} and [o for o in bob._pending_offers if not o.answered] == []


async def test_an_action_split_into_sessions_is_still_one_offer(
        alice: Client, bob: Client, tmp_path: Path, jingle_log: list[tuple[str, Jingle]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """More files than a session carries (sending.MAX_CONTENTS, here 2): several sessions,
    started together, which the jinglefs receiver gathers into one offer."""
    import jinglefs.client as client_mod

    monkeypatch.setattr(client_mod, "MAX_CONTENTS", 2)
    files = {f"many/{i}.bin": 1_000 + i for i in range(5)}
    sent_bytes = make_tree(tmp_path / "out", files)
    sent = await alice.send_files(bob.jid, [tmp_path / "out" / "many"], transport="ibb")
    offer = await first_offer(bob)
    assert [(f.name, f.size) for f in offer.files] == list(files.items())
    (tmp_path / "in").mkdir()
    got = await offer.accept(tmp_path / "in")
    for name, done in zip(files, [await asyncio.wait_for(t.wait(), BOUND) for t in got],
                          strict=True):
        assert isinstance(done, Completed) and done.verified
        assert sha(Path(done.path).read_bytes()) == sha(sent_bytes[name])
    delivered = [await asyncio.wait_for(t.wait(), BOUND) for t in sent]
    assert all(isinstance(d, Completed) for d in delivered)
    initiates = [j for who, j in jingle_log if who == alice.jid
                 and j.action is Action.SESSION_INITIATE]
    assert sorted(len(j.contents) for j in initiates) == [1, 2, 2]


async def test_a_one_content_peer_gets_one_session_per_file(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    files = {"pics/one.jpg": 40_000, "pics/two.jpg": 5, "pics/sub/three.png": 70_001}
    sent_bytes = make_tree(tmp_path / "out", files)
    peer = await raw_peer(prosody, "bob", "conv-like", "Conversations")
    try:
        sent = await alice.send_files(peer.jid, [tmp_path / "out" / "pics"], transport="ibb")
        assert len(sent) == 3
        initiates = [await peer.next((Action.SESSION_INITIATE,)) for _ in files]
        # one file per session, each content named "0" (as Conversations names it)
        assert len({j.sid for j in initiates}) == 3
        assert all([c.name for c in j.contents] == ["0"] for j in initiates)
        got: dict[str, bytes] = {}
        for initiate in initiates:
            got.update(await receive_session(peer, alice.jid, initiate))
        done = [await asyncio.wait_for(t.wait(), BOUND) for t in sent]
        assert all(isinstance(d, Completed) for d in done)
        assert {n: sha(d) for n, d in got.items()} == {n: sha(d) for n, d in sent_bytes.items()}
    finally:
        peer.close()


async def test_a_psi_like_peer_gets_every_file_in_one_session(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    files = {"docs/x.odt": 33_000, "docs/y.txt": 2_048}
    sent_bytes = make_tree(tmp_path / "out", files)
    peer = await raw_peer(prosody, "bob", "psi-like", "Psi")
    try:
        sent = await alice.send_files(peer.jid, [tmp_path / "out" / "docs"], transport="ibb")
        initiate = await peer.next((Action.SESSION_INITIATE,))
        assert [c.name for c in initiate.contents] == ["0", "1"]
        got = await receive_session(peer, alice.jid, initiate)
        done = [await asyncio.wait_for(t.wait(), BOUND) for t in sent]
        assert all(isinstance(d, Completed) for d in done)
        assert {n: sha(d) for n, d in got.items()} == {n: sha(d) for n, d in sent_bytes.items()}
        later = [peer.inbox.get_nowait() for _ in range(peer.inbox.qsize())]
        assert [j for j in later if j.action is Action.SESSION_INITIATE] == []
    finally:
        peer.close()


async def offer_one_per_session(peer: RawJinglePeer, to: str, files: dict[str, bytes]
                                ) -> list[tuple[str, str, str, bytes]]:
    """What Conversations does with several files: a session for each, one content "0"
    each, sent back to back.  Returns (sid, ibb sid, name, bytes) per session."""
    sessions = []
    for i, (name, data) in enumerate(files.items()):
        sid, ibb_sid = f"conv-{i}", f"conv-ibb-{i}"
        content = Content(Role.INITIATOR, "0", Role.INITIATOR,
                          FileTransferDescription(FileDesc(name=name, size=len(data))),
                          IbbTransport(ibb_sid, 4096))
        assert await peer.send(to, Jingle(Action.SESSION_INITIATE, sid, initiator=peer.jid,
                                          contents=(content,))) == "result"
        sessions.append((sid, ibb_sid, name, data))
    return sessions


async def test_sessions_of_a_one_file_sender_are_one_question(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    files = {f"shot-{i}.jpg": os.urandom(20_000 + i) for i in range(3)}
    # a roomy window: the three initiates arrive within it whatever the load
    grouping = settings(timeouts=replace(FAST.timeouts, offer_group=5.0))
    peer = await raw_peer(prosody, "alice", "conv-sender", "Conversations")
    try:
        async with logged_in(prosody, "bob", "grouping", grouping) as bob:
            sessions = await offer_one_per_session(peer, bob.jid, files)
            offer = await first_offer(bob, timeout=30)
            assert [(f.name, f.size) for f in offer.files] == [
                (n, len(d)) for n, d in files.items()]
            transfers = await offer.accept(tmp_path)
            accepted = {(await peer.next((Action.SESSION_ACCEPT,))).sid for _ in sessions}
            assert accepted == {sid for sid, *_ in sessions}
            for sid, ibb_sid, _name, data in sessions:
                stream = await peer.ibb.open(bob.jid, ibb_sid, 4096)
                await stream.send(data)
                await stream.aclose()
                info = peer.xmpp.make_iq_set(ito=bob.jid)
                info.append(checksum_info(sid, "0", data))
                await send_and_wait(info, 10)
            done = [await asyncio.wait_for(t.wait(), BOUND) for t in transfers]
            for (_, _, name, data), d in zip(sessions, done, strict=True):
                assert isinstance(d, Completed) and d.verified
                assert Path(d.path) == tmp_path / name and sha(Path(d.path).read_bytes()) == \
                    sha(data)
            ends = [await peer.next((Action.SESSION_TERMINATE,)) for _ in sessions]
            assert {j.sid for j in ends} == {sid for sid, *_ in sessions}
            assert all(j.reason is not None and j.reason.condition is Reason.SUCCESS
                       for j in ends)
            assert bob._gathering == {}
    finally:
        peer.close()


async def test_declining_a_grouped_offer_declines_every_session(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    files = {f"doc-{i}.txt": os.urandom(100) for i in range(3)}
    grouping = settings(timeouts=replace(FAST.timeouts, offer_group=5.0))
    peer = await raw_peer(prosody, "alice", "conv-declined", "Conversations")
    try:
        async with logged_in(prosody, "bob", "grouping-no", grouping) as bob:
            sessions = await offer_one_per_session(peer, bob.jid, files)
            offer = await first_offer(bob, timeout=30)
            assert len(offer.files) == 3
            await offer.decline()
            ends = [await peer.next((Action.SESSION_TERMINATE,)) for _ in sessions]
            assert {j.sid for j in ends} == {sid for sid, *_ in sessions}
            assert all(j.reason is not None and j.reason.condition is Reason.DECLINE
                       for j in ends)
            assert list(tmp_path.iterdir()) == []
    finally:
        peer.close()


def test_cli_receive_count_counts_offers_and_json_lists_every_file(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    """`receive --count 1` ends after ONE offer, however many files it holds, once every
    file is in; the `offer` event lists them all."""
    files = {"album/01.flac": 120_000, "album/02.flac": 9, "album/art/cover.jpg": 45_678}
    sent_bytes = make_tree(tmp_path / "out", files)
    run = cli_transfer(prosody, tmp_path, tmp_path / "out" / "album", "ibb")
    [offer] = [e for e in run.received if e["event"] == "offer"]
    assert [(f["name"], f["size"]) for f in offer["files"]] == list(files.items())
    assert offer["count"] == 3 and offer["total_size"] == sum(files.values())
    summary = run.received[-1]
    assert summary["event"] == "summary" and summary["ok"] and summary["received"] == 3
    for name, data in sent_bytes.items():
        assert sha(run.inbox.joinpath(*name.split("/")).read_bytes()) == sha(data)
    assert len([e for e in run.sent if e["event"] == "completed"]) == 3
