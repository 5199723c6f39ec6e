"""The transfer tests on a second server: ejabberd, and Prosody beside it (issue 11).

Each test takes ``xmpp_server`` and so runs on Prosody and then on ejabberd (both started once
per session, tests/conftest.py): SOCKS5 direct, SOCKS5 forced through the server's proxy65
(XEP-0065), IBB (XEP-0047) relayed by the server, the ``auto`` ladder (ICE replaced by SOCKS5),
ICE, and several files in one offer. Each checks the bytes and the sha-256 on both sides and
that the receiver verified the file. A test that fails on one server only points at a
server-specific behaviour jinglefs must cope with (ejabberd's proxy65 streamhost JID carries
a resource, Prosody's does not).
The last tests check ejabberd alone: its XEP-0215 answer (mod_stun_disco) as jinglefs reads
it, and the fixture itself (accounts and rosters, restart, clean stop).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from pathlib import Path

import pytest

from jinglefs.events import Completed, PathKind
from jinglefs.ice.servers import fetch_ice_servers
from jinglefs.jingle.model import Action, Jingle
from jinglefs.s5b.protocol import S5bTransport
from tests.servers import free_port, tcp_accepts
from tests.servers.coturn import CoturnServer
from tests.servers.ejabberd import EjabberdServer
from tests.servers.xmpp_server import XmppServer

from .conftest import (
    BOUND,
    first_offer,
    logged_in,
    paths,
    settings,
    settle,
    transfer_file,
    two_clients,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
LO = ("127.0.0.1",)  # ICE host candidates on loopback only


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def test_s5b_direct(xmpp_server: XmppServer, tmp_path: Path) -> None:
    async with two_clients(xmpp_server, "srv-direct") as (alice, bob):
        _, done, sender_done, sent, got = await transfer_file(alice, bob, tmp_path,
                                                              1_500_017, "s5b")
        for transfer in (sent, got):
            [selected] = await paths(transfer)
            assert selected.path is PathKind.S5B_DIRECT
        assert done.size == sender_done.size == 1_500_017


async def test_s5b_through_the_servers_proxy65(xmpp_server: XmppServer, tmp_path: Path,
                                               jingle_log: list[tuple[str, Jingle]]) -> None:
    """No direct candidates on either side: the bytes go through the server's SOCKS5 relay,
    found by disco (XEP-0065 §4) and activated by the side that offered it (XEP-0260 §2.4)."""
    async with two_clients(xmpp_server, "srv-proxy", settings(s5b_direct=False)) as (alice,
                                                                                    bob):
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 2 * 1024 * 1024 + 3,
                                                 "s5b")
        for transfer in (sent, got):
            [selected] = await paths(transfer)
            assert selected.path is PathKind.S5B_PROXY
            assert selected.detail == f"via {xmpp_server.proxy_jid}"
    offered = [(jid, c) for jid, j in jingle_log for content in j.contents
               if isinstance(content.transport, S5bTransport)
               for c in content.transport.candidates]
    # Only proxy candidates, and they name this server's relay at its loopback address, by
    # the JID its streamhost gave: ejabberd adds a resource (its node), Prosody does not.
    assert offered and all(c.is_proxy for _, c in offered)
    assert {(c.jid.split("/")[0], c.host, c.port) for _, c in offered} == {
        (xmpp_server.proxy_jid, xmpp_server.host, xmpp_server.proxy65_port)}
    activated = [(jid, content.transport.activated) for jid, j in jingle_log
                 if j.action is Action.TRANSPORT_INFO for content in j.contents
                 if isinstance(content.transport, S5bTransport) and content.transport.activated]
    [(activator, cid)] = activated
    assert (activator, cid) in {(jid, c.cid) for jid, c in offered}


async def test_ibb_through_the_server(xmpp_server: XmppServer, tmp_path: Path,
                                      jingle_log: list[tuple[str, Jingle]]) -> None:
    async with two_clients(xmpp_server, "srv-ibb") as (alice, bob):
        _, done, _, sent, got = await transfer_file(alice, bob, tmp_path, 300_001, "ibb")
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.IBB]
        assert done.size == 300_001
    [initiate] = [j for _, j in jingle_log if j.action is Action.SESSION_INITIATE]
    assert type(initiate.contents[0].transport).__name__ == "IbbTransport"


async def test_auto_replaces_ice_with_socks5_direct(
        xmpp_server: XmppServer, tmp_path: Path, jingle_log: list[tuple[str, Jingle]]) -> None:
    """The ladder's fast path (README "How the ladder decides"): ICE offered, then replaced
    by SOCKS5 direct after the accept (XEP-0166 §7.2.15 transport-replace through the
    server); the ICE candidates on 127.0.0.1 are what decided it."""
    async with two_clients(xmpp_server, "srv-auto", settings(ice_host_addresses=LO)) as (
            alice, bob):
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 700_000, transport=None)
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.S5B_DIRECT]
        await settle(alice, bob)
    actions = [(jid, j.action, type(j.contents[0].transport).__name__)
               for jid, j in jingle_log if j.contents]
    assert actions[:4] == [
        (alice.jid, Action.SESSION_INITIATE, "WebRtcDataChannelTransport"),
        (bob.jid, Action.SESSION_ACCEPT, "WebRtcDataChannelTransport"),
        (alice.jid, Action.TRANSPORT_REPLACE, "S5bTransport"),
        (bob.jid, Action.TRANSPORT_ACCEPT, "S5bTransport")]


async def test_ice_data_channel(xmpp_server: XmppServer, tmp_path: Path) -> None:
    """ICE (XEP-0176) with the candidates exchanged through the server."""
    async with two_clients(xmpp_server, "srv-ice", settings(ice_host_addresses=LO)) as (
            alice, bob):
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 200_003, "ice")
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]
        await settle(alice, bob)


async def test_several_files_in_one_offer(xmpp_server: XmppServer, tmp_path: Path,
                                          jingle_log: list[tuple[str, Jingle]]) -> None:
    """jinglefs to jinglefs, addressed to the contact's bare JID: one session-initiate with a
    content per file (XEP-0234 §5), one offer, one accept, every file verified."""
    sizes = {"a.txt": 0, "b.bin": 70_000, "c.bin": 1_000_003}
    folder = tmp_path / "out" / "trip"
    folder.mkdir(parents=True)
    data = {}
    for name, size in sizes.items():
        data[name] = os.urandom(size)
        (folder / name).write_bytes(data[name])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with two_clients(xmpp_server, "srv-multi") as (alice, bob):
        # to the bare JID: alice picks bob's device from his presence (roster: both)
        sent = await alice.send_files(bob.jid.split("/")[0], [folder], transport="s5b")
        offer = await first_offer(bob)
        assert [(f.name, f.size) for f in offer.files] == [
            (f"trip/{n}", s) for n, s in sizes.items()]
        got = await offer.accept(inbox)
        received = [await asyncio.wait_for(t.wait(), BOUND) for t in got]
        delivered = [await asyncio.wait_for(t.wait(), BOUND) for t in sent]
    for name, done, sender_done in zip(sizes, received, delivered, strict=True):
        assert isinstance(done, Completed) and isinstance(sender_done, Completed)
        assert done.verified
        assert Path(done.path) == inbox / "trip" / name
        assert Path(done.path).read_bytes() == data[name]
        assert done.hashes["sha-256"] == _sha256(data[name]) == sender_done.hashes["sha-256"]
    initiates = [j for who, j in jingle_log if j.action is Action.SESSION_INITIATE]
    assert [len(j.contents) for j in initiates] == [len(sizes)]


async def test_ejabberd_fixture_accounts_restart_and_stop(tmp_path: Path) -> None:
    """Accounts and mutual rosters exist through the HTTP API; a restart on the same port
    keeps them (the Mnesia spool); stop leaves no process and no listening port."""
    server = EjabberdServer(tmp_path / "ej", c2s_port=free_port())
    server.add_account("alice", roster=["bob"])
    server.add_account("bob")
    try:
        server.start()
        roster = server.api("get_roster", user="bob", host=server.domain)
        assert [(r["jid"], r["subscription"]) for r in roster] == [(server.jid("alice"),
                                                                    "both")]
        server.add_account("carol", roster=["alice"])  # while running
        roster = server.api("get_roster", user="alice", host=server.domain)
        assert sorted((r["jid"], r["subscription"]) for r in roster) == [
            (server.jid("bob"), "both"), (server.jid("carol"), "both")]
        pid, port = server.pid, server.port
        assert pid is not None
        server.stop()
        assert not server.running and not os.path.exists(f"/proc/{pid}")
        assert not tcp_accepts(server.host, port)
        server.start()
        assert server.port == port
        assert sorted(server.api("registered_users", host=server.domain)) == [
            "alice", "bob", "carol"]
        async with logged_in(server, "carol", "after-restart") as carol:
            assert carol.jid.startswith(server.jid("carol") + "/")
    finally:
        server.stop()


async def test_ejabberd_stun_disco_turn_credentials_carry_a_relayed_transfer(
        tmp_path: Path, coturn: CoturnServer) -> None:
    """XEP-0215 from ejabberd's mod_stun_disco, read by jinglefs: coturn as STUN and TURN
    (udp and tcp) with TURN REST credentials (HMAC-SHA1 of the user name with coturn's
    secret), good enough for coturn: a relay-only ICE transfer goes through it."""
    relay = settings(ice_host_addresses=LO, ice_relay_only=True)
    with EjabberdServer(tmp_path / "ej", turn=coturn, proxy65=False) as server:
        server.add_account("alice", roster=["bob"])
        server.add_account("bob")
        async with (logged_in(server, "alice", "turn-a", relay) as alice,
                    logged_in(server, "bob", "turn-b", relay) as bob):
            servers = await fetch_ice_servers(alice.connection.xmpp, server.domain, timeout=10)
            _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 400_001, "ice")
            for transfer in (sent, got):
                [selected] = await paths(transfer)
                assert selected.path is PathKind.ICE_RELAY
                assert selected.detail.startswith(f"relay {coturn.host}:")
            await settle(alice, bob)
    assert servers is not None
    assert (servers.stun_host, servers.stun_port) == (coturn.host, coturn.port)
    assert (servers.turn_host, servers.turn_port, servers.turn_transport) == (
        coturn.host, coturn.port, "tcp")
    assert servers.turn_also_udp_port == coturn.port
    user, password = servers.turn_username, servers.turn_password
    assert user and password
    now = time.time()
    assert now < int(user.split(":")[0]) < now + 2 * 86400  # expiry first, as coturn wants
    mac = hmac.new(coturn.secret.encode(), user.encode(), hashlib.sha1).digest()
    assert password == base64.b64encode(mac).decode()
