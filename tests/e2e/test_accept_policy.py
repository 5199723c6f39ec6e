"""Settings.accept_from / max_size, honoured by the client itself, through a real Prosody.

bob's client only lets through offers from alice of at most 1000 bytes: carol (a stranger)
and alice's big file are declined by the client before any front end sees them, the senders
get Declined with the reason, and alice's small file still arrives intact.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from jinglefs import errors
from jinglefs.accept_policy import NOT_ALLOWED, TOO_LARGE
from jinglefs.api import ClientEvent, OfferDeclined, OfferReceived
from jinglefs.client import Client
from jinglefs.events import Completed, Failed
from jinglefs.jid import bare_jid
from tests.servers.prosody import ProsodyServer

from .conftest import login, settings

pytestmark = pytest.mark.e2e

LIMIT = 1000


def make_file(folder: Path, name: str, size: int) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


async def declined_by_peer(client: Client, src: Path, to: str) -> errors.Declined:
    [sent] = await client.send_files(to, [src], transport="ibb")
    with pytest.raises(errors.Declined) as caught:
        await asyncio.wait_for(sent.wait(), 15)
    events = [e async for e in sent.events()]
    assert isinstance(events[-1], Failed) and events[-1].exit_code == errors.EXIT_DECLINED
    return caught.value


async def test_client_declines_a_stranger_and_an_oversized_file(
        prosody: ProsodyServer, alice: Client, tmp_path: Path) -> None:
    policy = settings(accept_from=frozenset({bare_jid(alice.jid).upper()}), max_size=LIMIT)
    bob = await login(prosody, "bob", settings=policy)
    carol = await login(prosody, "carol")
    seen: list[ClientEvent] = []

    async def watch() -> None:  # everything bob's front end would see, until an offer
        async for event in bob.events():
            if isinstance(event, OfferDeclined | OfferReceived):
                seen.append(event)
            if isinstance(event, OfferReceived):
                return

    # Subscribed before anything is sent: the task's first step runs before any I/O.
    watcher = asyncio.ensure_future(watch())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = tmp_path / "out"
    try:
        stranger = await declined_by_peer(carol, make_file(out, "from-carol.bin", 10), bob.jid)
        assert "not accepting files from this sender" in stranger.user_message
        big = await declined_by_peer(alice, make_file(out, "big.bin", LIMIT + 1), bob.jid)
        assert "larger than" in big.user_message

        small = make_file(out, "small.bin", LIMIT)
        [sent] = await alice.send_files(bob.jid, [small], transport="ibb")
        await asyncio.wait_for(watcher, 15)
        offer = seen[-1]
        assert isinstance(offer, OfferReceived)
        [received] = await offer.offer.accept(inbox)
        done = await asyncio.wait_for(received.wait(), 30)
        assert isinstance(done, Completed)
        assert hashlib.sha256(Path(done.path).read_bytes()).digest() == \
            hashlib.sha256(small.read_bytes()).digest()
        assert isinstance(await asyncio.wait_for(sent.wait(), 15), Completed)
    finally:
        watcher.cancel()
        await carol.aclose()
        await bob.aclose()

    declined = [e for e in seen if isinstance(e, OfferDeclined)]
    assert [(e.peer, e.rule, [(f.name, f.size) for f in e.files]) for e in declined] == [
        (carol.jid, NOT_ALLOWED, [("from-carol.bin", 10)]),
        (alice.jid, TOO_LARGE, [("big.bin", LIMIT + 1)]),
    ]
    assert not declined[0].from_contact and declined[1].from_contact
    # Only the allowed offer reached the front end; nothing of the others was written.
    assert [type(e) for e in seen] == [OfferDeclined, OfferDeclined, OfferReceived]
    assert sorted(p.name for p in inbox.iterdir()) == ["small.bin"]
