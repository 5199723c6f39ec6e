"""jinglefs against a Dino 0.4-shaped peer (tests/interop/dino.py, docs/interop.md §4) on
the real Prosody: real transfers both ways over SOCKS5 direct, SOCKS5 through proxy65 and
IBB (reached by Dino's own transport-replace, from either role), its endings (close right
after the last byte, terminate after `size` bytes, no hashes at all), its rejection of
every transport-replace, and its silence towards strangers. Bytes on disk are compared by
sha-256; what jinglefs reports (Completed, verified, the error kind) is asserted."""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from jinglefs.api import Settings, Timeouts
from jinglefs.errors import Unanswered
from jinglefs.events import Completed, PathKind, TransportSelected
from tests.e2e.conftest import BOUND, FAST, first_offer, logged_in, make_file
from tests.servers.prosody import ProsodyServer

from . import dino
from .peer import FT, JINGLE, S5B, random_data, sha256

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def tag() -> str:
    return os.urandom(3).hex()


async def dino_sends(prosody: ProsodyServer, tmp_path: Path, size: int,
                     settings: Settings = FAST, **kw: object
                     ) -> tuple[dino.Outcome, Completed, bytes, list[PathKind]]:
    t = tag()
    data = random_data(size)
    async with (dino.dino_peer(prosody, "alice", f"dino-{t}") as peer,
                logged_in(prosody, "bob", f"b-{t}", settings) as bob):
        sending = asyncio.ensure_future(dino.send_file(peer, bob.jid, data, "notes.txt",
                                                       **kw))  # type: ignore[arg-type]
        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [("notes.txt", size)]
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [got] = await offer.accept(inbox)
        done = await asyncio.wait_for(got.wait(), BOUND)
        out = await asyncio.wait_for(sending, BOUND)
        kinds = [e.path async for e in got.events() if isinstance(e, TransportSelected)]
        assert isinstance(done, Completed), done
        assert Path(done.path).read_bytes() == data
        assert list(inbox.iterdir()) == [Path(done.path)]
        # Dino sends no hash anywhere: complete, not verified, and said why.
        assert done.hashes["sha-256"] == sha256(data)
        assert not done.verified and done.reason
        assert out.terminate_reason == "success"
        return out, done, data, kinds


async def test_dino_0_4_sends_over_s5b_direct(prosody: ProsodyServer, tmp_path: Path
                                              ) -> None:
    out, _, _, kinds = await dino_sends(prosody, tmp_path, 300_001)
    assert out.transport == "s5b" and kinds == [PathKind.S5B_DIRECT]


async def test_dino_0_4_sends_over_proxy65(prosody: ProsodyServer, tmp_path: Path) -> None:
    # Dino closes its socket right after the last byte, so any size gets through
    # Prosody's proxy65 (which holds back a tail shorter than 4096 bytes until a close).
    out, _, _, kinds = await dino_sends(prosody, tmp_path, 200_003,
                                        replace(FAST, s5b_direct=False),
                                        proxy_jid=prosody.proxy_jid, dead_direct=True)
    assert out.transport == "s5b" and kinds == [PathKind.S5B_PROXY]


async def test_dino_0_4_sends_over_ibb_after_its_own_transport_replace(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    # Both sides report candidate-error; Dino, the initiator, replaces with IBB and opens
    # it (it created the IBB transport), sends 4096-byte blocks and <close/>.
    out, _, _, kinds = await dino_sends(prosody, tmp_path, 70_000,
                                        replace(FAST, s5b_direct=False, use_proxy=False),
                                        dead_direct=True, dial=False)
    assert out.transport == "ibb" and kinds[-1] == PathKind.IBB
    assert "transport-accept" in out.seen and out.rejected == 0


async def dino_receives(prosody: ProsodyServer, tmp_path: Path, size: int,
                        transport: str | None, settings: Settings = FAST, **kw: object
                        ) -> tuple[dino.Outcome, Completed, bytes, ET.Element]:
    t = tag()
    async with (dino.dino_peer(prosody, "bob", f"dino-{t}") as peer,
                logged_in(prosody, "alice", f"a-{t}", settings) as alice):
        src = make_file(tmp_path, "song.ogg", size)
        [sent] = await alice.send_files(peer.jid, [src], transport=transport)
        initiate = await peer.next_jingle("session-initiate")
        # What Dino requires of an offer (docs/interop.md §4.2): exactly one <file> with
        # a size; SOCKS5 candidates with cid, host, jid and priority > 0.
        files = initiate.findall(f"{{{JINGLE}}}content/{{{FT}}}description/{{{FT}}}file")
        assert len(files) == 1 and files[0].findtext(f"{{{FT}}}size") == str(size)
        for cand in initiate.iter(f"{{{S5B}}}candidate"):
            assert cand.get("cid") and cand.get("host") and int(cand.get("priority", 0)) > 0
        out = await asyncio.wait_for(dino.receive_file(peer, initiate, **kw),  # type: ignore[arg-type]
                                     BOUND)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed), done
        data = src.read_bytes()
        assert sha256(out.data) == sha256(data) and done.size == size
        # its terminate right after the last byte is answered with a plain result
        assert [r.get("type") for r in out.replies] == ["result"] * len(out.replies)
        return out, done, data, initiate


async def test_dino_0_4_receives_over_s5b_direct(prosody: ProsodyServer,
                                                 tmp_path: Path) -> None:
    out, _, _, _ = await dino_receives(prosody, tmp_path, 300_001, "s5b")
    assert out.transport == "s5b"


async def test_dino_0_4_receives_over_proxy65(prosody: ProsodyServer,
                                              tmp_path: Path) -> None:
    out, _, _, _ = await dino_receives(prosody, tmp_path, 200_003, "s5b",
                                       replace(FAST, s5b_direct=False),
                                       proxy_jid=prosody.proxy_jid, dead_direct=True)
    assert out.transport == "s5b"


async def test_dino_0_4_receives_over_ibb(prosody: ProsodyServer, tmp_path: Path) -> None:
    out, _, _, _ = await dino_receives(prosody, tmp_path, 100_001, "ibb")
    assert out.transport == "ibb"


async def test_dino_0_4_as_responder_replaces_with_ibb_and_rejects_ours(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    # Both sides fail SOCKS5: Dino, the *responder*, sends its own transport-replace to
    # IBB and opens IBB itself; any transport-replace jinglefs sends meanwhile gets a
    # transport-reject. Both must still end on one transport with the file complete.
    out, _, _, _ = await dino_receives(
        prosody, tmp_path, 70_001, None, replace(FAST, s5b_direct=False, use_proxy=False),
        dead_direct=True, dial=False)
    assert out.transport == "ibb"
    # jinglefs accepted Dino's replace; had it sent its own, Dino rejected it
    assert "transport-accept" in out.seen
    assert out.rejected == out.seen.count("transport-replace")


async def test_dino_0_4_drops_offers_from_strangers_and_jinglefs_says_unanswered(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    # carol has no conversation with alice: Dino acks the offer and never answers.
    t = tag()
    quick = replace(FAST, timeouts=replace(FAST.timeouts, accept=3))
    assert isinstance(quick.timeouts, Timeouts)
    async with (dino.dino_peer(prosody, "carol", f"dino-{t}") as peer,
                logged_in(prosody, "alice", f"a-{t}", quick) as alice):
        src = make_file(tmp_path, "hello.txt", 10_000)
        [sent] = await alice.send_files(peer.jid, [src])
        initiate = await peer.next_jingle("session-initiate")
        assert peer.jingle_iqs[0].get("from") == alice.jid
        with pytest.raises(Unanswered, match="what usually helps"):
            await asyncio.wait_for(sent.wait(), BOUND)
        # the session was ended so nothing stays pending on Dino's side either
        end = await peer.next_jingle("session-terminate")
        assert end.get("sid") == initiate.get("sid")
