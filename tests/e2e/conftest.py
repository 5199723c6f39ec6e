"""Two real jinglefs clients logged in to the real loopback Prosody (or, through the
``xmpp_server`` fixture, to Prosody and then ejabberd), and what the e2e tests share: files
to send, the first offer, a whole transfer with its checks, the Jingle IQs on the wire."""

from __future__ import annotations

import asyncio
import hashlib
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jinglefs.api import OfferLike, Settings, Timeouts, TransferLike
from jinglefs.client import Client, connect
from jinglefs.events import Completed, TransportSelected
from jinglefs.jingle import ns
from jinglefs.jingle.codec import parse_jingle
from jinglefs.jingle.model import Jingle
from jinglefs.xmpp.connection import XmppConnection
from tests.servers.prosody import ProsodyServer
from tests.servers.xmpp_server import XmppServer

FAST = Settings(timeouts=Timeouts(connect=15, accept=30, iq=15, transport=10, stall=20,
                                  peer_gone=3))
BOUND = 60.0  # only to fail instead of hanging; never asserted as a duration


def settings(**kw: object) -> Settings:
    return replace(FAST, **kw)  # type: ignore[arg-type]


async def login(prosody: XmppServer, user: str, resource: str = "jinglefs",
                settings: Settings = FAST) -> Client:
    return await connect(prosody.account(user, resource=resource), settings)


@asynccontextmanager
async def logged_in(prosody: XmppServer, user: str, resource: str = "jinglefs",
                    settings: Settings = FAST) -> AsyncIterator[Client]:
    client = await login(prosody, user, resource, settings)
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def two_clients(prosody: XmppServer, tag: str, settings: Settings = FAST
                      ) -> AsyncIterator[tuple[Client, Client]]:
    """alice (resource ``TAG-a``) and bob (``TAG-b``), both closed afterwards."""
    async with (logged_in(prosody, "alice", f"{tag}-a", settings) as alice,
                logged_in(prosody, "bob", f"{tag}-b", settings) as bob):
        yield alice, bob


@pytest.fixture(params=["prosody", "ejabberd"])
def xmpp_server(request: pytest.FixtureRequest) -> XmppServer:
    """Each real server in turn (session-scoped ``prosody``, then ``ejabberd``), for tests that
    must hold on both."""
    server: XmppServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
async def alice(prosody: ProsodyServer) -> AsyncIterator[Client]:
    async with logged_in(prosody, "alice") as client:
        yield client


@pytest.fixture
async def bob(prosody: ProsodyServer) -> AsyncIterator[Client]:
    async with logged_in(prosody, "bob") as client:
        yield client


@pytest.fixture
async def plain(prosody: ProsodyServer) -> AsyncIterator[tuple[Client, Client]]:
    """alice and bob with JET off: for what only unencrypted transfers do (a partial kept
    for resume; an encrypted one never is, jinglefs.receiving)."""
    async with two_clients(prosody, "plain", settings(encryption="off")) as pair:
        yield pair


@pytest.fixture
def jingle_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Jingle]]:
    """Every Jingle IQ-set the clients send, as (sender full JID, parsed action)."""
    sent: list[tuple[str, Jingle]] = []
    real_send_iq = XmppConnection.send_iq

    async def send_iq(self: XmppConnection, to: str, payload: ET.Element,
                      **kw: Any) -> ET.Element:
        if payload.tag == f"{{{ns.JINGLE}}}jingle":
            sent.append((self.jid, parse_jingle(payload)))
        return await real_send_iq(self, to, payload, **kw)

    monkeypatch.setattr(XmppConnection, "send_iq", send_iq)
    return sent


def make_file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / "out" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


async def first_offer(client: Client, timeout: float = 15) -> OfferLike:
    async def get() -> OfferLike:
        async for offer in client.offers():
            return offer
        raise AssertionError("no offer")
    return await asyncio.wait_for(get(), timeout)


async def settle(*clients: Client) -> None:
    """Wait until the clients' transfer flows (and their cleanup) have finished."""
    for client in clients:
        tasks = list(client._tasks)
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), BOUND)


async def paths(transfer: TransferLike) -> list[TransportSelected]:
    return [e async for e in transfer.events() if isinstance(e, TransportSelected)]


async def transfer_file(alice: Client, bob: Client, tmp_path: Path, size: int,
                        transport: str | None = "s5b"
                        ) -> tuple[Path, Completed, Completed, TransferLike, TransferLike]:
    """Alice sends a random file to Bob; both sides complete; the bytes are compared."""
    src = make_file(tmp_path, f"s5b-{size}.bin", size)
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    [sent] = await alice.send_files(bob.jid, [src], transport=transport)
    offer = await first_offer(bob)
    assert [(f.name, f.size) for f in offer.files] == [(src.name, size)]
    [got] = await offer.accept(inbox)
    done = await asyncio.wait_for(got.wait(), BOUND)
    sender_done = await asyncio.wait_for(sent.wait(), BOUND)
    assert isinstance(done, Completed) and isinstance(sender_done, Completed)
    assert done.verified
    data = src.read_bytes()
    out = Path(done.path)
    assert out.parent == inbox and out.read_bytes() == data
    digest = hashlib.sha256(data).digest()
    assert done.hashes["sha-256"] == digest == sender_done.hashes["sha-256"]
    assert list(inbox.iterdir()) == [out]  # no partial or sidecar left behind
    return src, done, sender_done, sent, got
