"""XEP-0065 proxy discovery and activation, and a whole XEP-0260 proxy negotiation, through
a real Prosody mod_proxy65 on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import slixmpp

from jinglefs.api import Account
from jinglefs.s5b.network import TcpStream, connect_candidate, connect_first
from jinglefs.s5b.protocol import S5bNegotiation, S5bState, S5bTransport, dstaddr
from jinglefs.s5b.proxy import ProxyError, activate, discover_proxy, query_streamhost
from tests.servers.prosody import ProsodyServer

pytestmark = pytest.mark.e2e

BOUND = 20.0


@asynccontextmanager
async def logged_in(account: Account, resource: str) -> AsyncIterator[slixmpp.ClientXMPP]:
    """A bare slixmpp client (no plugins: jinglefs.xmpp.s5b needs none)."""
    client = slixmpp.ClientXMPP(f"{account.jid}/{resource}", account.password)
    client.enable_direct_tls = False  # STARTTLS on the given port
    client.enable_plaintext = False
    client.ca_certs = Path(account.ca_file) if account.ca_file else None
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(why: object) -> None:
        if not started.done():
            started.set_exception(ConnectionError(str(why)))

    def ready(_event: object) -> None:
        if not started.done():
            started.set_result(None)

    client.add_event_handler("session_start", ready)
    client.add_event_handler("failed_auth", fail)
    client.add_event_handler("connection_failed", fail)
    assert account.server and account.port
    client.connect(account.server, account.port)
    try:
        await asyncio.wait_for(started, BOUND)
        yield client
    finally:
        client.disconnect(wait=0.5)
        await asyncio.sleep(0)


def wire(payload: S5bTransport) -> S5bTransport:
    """What the peer sees: through the XML codec, as in a real transport-info."""
    parsed = S5bTransport.from_element(ET.fromstring(ET.tostring(payload.to_element())))
    return parsed


async def test_discover_proxy(prosody: ProsodyServer) -> None:
    async with logged_in(prosody.account("alice"), "disco") as alice:
        proxy = await discover_proxy(alice, timeout=BOUND)
        assert proxy is not None
        assert (proxy.jid, proxy.host, proxy.port) == (
            prosody.proxy_jid,
            "127.0.0.1",
            prosody.proxy65_port,
        )
        assert proxy.type == "proxy" and proxy.priority == 10 << 16
        assert await query_streamhost(alice, prosody.proxy_jid, timeout=BOUND) == (
            prosody.proxy_jid,
            "127.0.0.1",
            prosody.proxy65_port,
        )


async def test_no_proxy_on_the_server(prosody_factory: Callable[..., ProsodyServer]) -> None:
    server = prosody_factory(accounts={"alice": ()}, proxy65=False)
    async with logged_in(server.account("alice"), "disco") as alice:
        assert await discover_proxy(alice, timeout=BOUND) is None


async def test_streamhost_query_to_a_non_proxy_is_a_clear_error(prosody: ProsodyServer) -> None:
    async with logged_in(prosody.account("alice"), "noproxy") as alice:
        with pytest.raises(ProxyError) as info:
            await query_streamhost(alice, prosody.domain, timeout=BOUND)
        assert info.value.condition == "service-unavailable"
        assert prosody.domain in str(info.value)


async def test_activation_of_an_unknown_sid_fails_clearly(prosody: ProsodyServer) -> None:
    async with (
        logged_in(prosody.account("alice"), "a1") as alice,
        logged_in(prosody.account("bob"), "b1") as bob,
    ):
        with pytest.raises(ProxyError) as info:
            await activate(
                alice, prosody.proxy_jid, "no-such-sid", str(bob.boundjid), timeout=BOUND
            )
        assert info.value.condition == "item-not-found"
        assert "did not activate" in str(info.value) and prosody.proxy_jid in str(info.value)


async def _read_exactly(stream: TcpStream, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        chunk = await stream.receive(1 << 20)
        assert chunk, f"stream ended after {got} of {size} bytes"
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("size", [1, 3 * 1024 * 1024 + 5])
async def test_proxy_transfer_through_prosody(prosody: ProsodyServer, size: int) -> None:
    """Alice offers only her server's proxy; Bob offers nothing.  XEP-0260 §2.4: Bob
    connects to the proxy and reports candidate-used, Alice (the offerer) connects too,
    activates with the *transport* sid and Bob's full JID, sends activated, then the
    file flows through mod_proxy65."""
    data = os.urandom(size)
    async with (
        logged_in(prosody.account("alice"), "sender") as alice,
        logged_in(prosody.account("bob"), "receiver") as bob,
    ):
        a_jid, b_jid = str(alice.boundjid), str(bob.boundjid)
        proxy = await discover_proxy(alice, timeout=BOUND)
        assert proxy is not None
        sid = "s5b-" + secrets.token_hex(4)  # the transport sid, not a Jingle sid
        a = S5bNegotiation(
            role="initiator", sid=sid, local_jid=a_jid, peer_jid=b_jid, local_candidates=[proxy]
        )
        offer = wire(a.offer())
        assert offer.dstaddr == dstaddr(sid, a_jid, b_jid)
        b = S5bNegotiation(
            role="responder",
            sid=offer.sid,
            local_jid=b_jid,
            peer_jid=a_jid,
            remote_candidates=offer.candidates,
            remote_dstaddr=offer.dstaddr,
        )

        # Bob dials Alice's candidates (only the proxy) and reports.
        used, b_stream = await connect_first(b.remote_candidates, b.dstaddrs_for, timeout=BOUND)
        b.local_candidate_connected(used.cid)
        for p in b.payloads_to_send():
            a.receive(wire(p))
        # Alice has no candidates of Bob's to try.
        a.local_candidates_failed()
        for p in a.payloads_to_send():
            b.receive(wire(p))
        assert a.state is S5bState.ACTIVATING and a.nomination and a.nomination.ours
        assert b.state is S5bState.AWAITING_ACTIVATED and not b.ready

        # Alice: her own connection to the proxy, then the XEP-0065 activation.
        a_stream = await connect_candidate(proxy.host, proxy.port, a.proxy_dstaddr(), BOUND)
        await activate(alice, proxy.jid, sid, b_jid, timeout=BOUND)
        a.proxy_activated()
        for p in a.payloads_to_send():
            b.receive(wire(p))
        assert a.ready and b.ready
        # The relay is bidirectional: a byte from Bob reaches Alice.
        await b_stream.send(b"!")
        assert await asyncio.wait_for(a_stream.receive(1), BOUND) == b"!"

        async def send() -> None:
            view = memoryview(data)
            for i in range(0, size, 256 * 1024):
                await a_stream.send(view[i : i + 256 * 1024])
            # Half-close after the last byte: Prosody 0.12's mod_proxy65 can sit on the
            # tail of the stream (a few KiB) until the sender's FIN arrives.
            await a_stream.send_eof()

        received, _ = await asyncio.wait_for(
            asyncio.gather(_read_exactly(b_stream, size), send()), BOUND * 3
        )
        assert hashlib.sha256(received).hexdigest() == hashlib.sha256(data).hexdigest()
        assert await asyncio.wait_for(b_stream.receive(1), BOUND) == b""  # Alice's FIN
        await a_stream.aclose()
        await b_stream.aclose()


async def test_activation_with_the_jingle_sid_would_fail(prosody: ProsodyServer) -> None:
    """docs/protocol.md §15.17: the proxy knows the bytestream by the transport sid only."""
    async with (
        logged_in(prosody.account("alice"), "a2") as alice,
        logged_in(prosody.account("bob"), "b2") as bob,
    ):
        a_jid, b_jid = str(alice.boundjid), str(bob.boundjid)
        proxy = await discover_proxy(alice, timeout=BOUND)
        assert proxy is not None
        sid = "transport-" + secrets.token_hex(4)
        addr = dstaddr(sid, a_jid, b_jid)
        b_stream = await connect_candidate(proxy.host, proxy.port, addr, BOUND)
        a_stream = await connect_candidate(proxy.host, proxy.port, addr, BOUND)
        with pytest.raises(ProxyError) as info:
            await activate(alice, proxy.jid, "jingle-session-id", b_jid, timeout=BOUND)
        assert info.value.condition == "item-not-found"
        await activate(alice, proxy.jid, sid, b_jid, timeout=BOUND)
        await a_stream.send(b"ping")
        assert await asyncio.wait_for(_read_exactly(b_stream, 4), BOUND) == b"ping"
        await a_stream.aclose()
        await b_stream.aclose()


async def test_activation_with_only_one_side_connected_is_refused(prosody: ProsodyServer) -> None:
    async with (
        logged_in(prosody.account("alice"), "a3") as alice,
        logged_in(prosody.account("bob"), "b3") as bob,
    ):
        proxy = await discover_proxy(alice, timeout=BOUND)
        assert proxy is not None
        sid = "lonely-" + secrets.token_hex(4)
        addr = dstaddr(sid, str(alice.boundjid), str(bob.boundjid))
        b_stream = await connect_candidate(proxy.host, proxy.port, addr, BOUND)
        with pytest.raises(ProxyError) as info:
            await activate(alice, proxy.jid, sid, str(bob.boundjid), timeout=BOUND)
        assert info.value.condition == "not-allowed"
        await b_stream.aclose()
