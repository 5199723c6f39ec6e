"""The client's one reconnect loop (jinglefs.client) against a real Prosody.

The server goes away and comes back, the client's stream is cut, the first login finds no
server, the account is refused on the way back.  Each time the client says so with
ConnectionLost / Reconnected (what the GUI follows) and, once back, files move again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from jinglefs.api import ClientEvent, ConnectionLost, Reconnected
from jinglefs.client import connect
from tests.servers import free_port
from tests.servers.prosody import ProsodyServer

from .conftest import BOUND, logged_in, settings, transfer_file, two_clients

pytestmark = pytest.mark.e2e

E = TypeVar("E", bound=ClientEvent)

#: Short waits between attempts, so the tests take little time; the loop is the same.
RETRY = settings(reconnect_delays=(0.2,))


async def next_of(events: AsyncIterator[ClientEvent], kind: type[E]) -> E:
    """The next event of ``kind`` on ``events`` (others are skipped).  Client.events()
    subscribes at its first item: a ConnectionLost is replayed to late subscribers,
    a Reconnected is not."""
    async def find() -> E:
        async for event in events:
            if isinstance(event, kind):
                return event
        raise AssertionError("the event stream ended")
    return await asyncio.wait_for(find(), BOUND)


@pytest.fixture
def restartable(prosody_factory: Callable[..., ProsodyServer]) -> ProsodyServer:
    """A Prosody of its own on a fixed port: stop() and start() bring it back there."""
    return prosody_factory(c2s_port=free_port(), proxy65=False)


async def test_clients_log_in_again_after_the_server_restarts(restartable: ProsodyServer,
                                                              tmp_path: Path) -> None:
    async with two_clients(restartable, "rc", RETRY) as (alice, bob):
        a_events, b_events = alice.events(), bob.events()
        restartable.stop()
        lost = await next_of(a_events, ConnectionLost)
        assert lost.retry_in == 0.2 and not lost.refused
        assert not alice.online
        await next_of(b_events, ConnectionLost)  # (subscribes bob while still offline)
        # While the server is down every attempt fails and says why, with the next wait.
        refused = await next_of(a_events, ConnectionLost)
        assert "refused the connection" in refused.reason and refused.retry_in == 0.2
        restartable.start()
        await next_of(a_events, Reconnected)
        await next_of(b_events, Reconnected)
        assert alice.online and bob.online
        _src, done, _sender_done, _sent, _got = await transfer_file(
            alice, bob, tmp_path, 300_000, transport="ibb")
        assert done.verified


async def test_a_cut_stream_is_logged_in_again(prosody: ProsodyServer, tmp_path: Path) -> None:
    async with two_clients(prosody, "cut", RETRY) as (alice, bob):
        events = alice.events()
        transport = alice.connection.xmpp.transport
        assert transport is not None
        transport.abort()  # the network drops the TCP connection under the client
        assert (await next_of(events, ConnectionLost)).retry_in == 0.2
        await next_of(events, Reconnected)
        assert alice.online and alice.connection.xmpp.transport is not transport
        _src, done, *_ = await transfer_file(alice, bob, tmp_path, 100_000, transport="ibb")
        assert done.verified


async def test_first_login_without_a_server_waits_for_it(
        prosody_factory: Callable[..., ProsodyServer]) -> None:
    server = prosody_factory(c2s_port=free_port(), proxy65=False, start=False)
    account = server.account("alice")
    client = await connect(account, settings(reconnect_delays=(0.2,), retry_first_login=True))
    try:
        assert not client.online
        events = client.events()
        first = await next_of(events, ConnectionLost)  # replayed: offline since connect()
        assert "refused the connection" in first.reason and first.retry_in == 0.2
        server.start()
        await next_of(events, Reconnected)
        assert client.online
        assert server.jid("bob") in [c.jid for c in client.contacts()]  # roster fetched
    finally:
        await client.aclose()


async def test_a_refused_account_stops_the_loop(restartable: ProsodyServer) -> None:
    async with logged_in(restartable, "alice", settings=RETRY) as alice:
        events = alice.events()
        restartable.stop()
        await next_of(events, ConnectionLost)
        restartable.add_account("alice", password="changed-meanwhile")
        restartable.start()
        while not (lost := await next_of(events, ConnectionLost)).refused:
            assert lost.retry_in == 0.2  # unreachable until the server is up again
        assert "refused" in lost.reason and lost.retry_in is None
        assert not alice.online
