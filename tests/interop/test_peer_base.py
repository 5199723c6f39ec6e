"""The scripted-peer base on the real Prosody: two scripted peers move bytes to each other
over raw IBB, raw SOCKS5 direct and SOCKS5 through Prosody's proxy65, compared by sha-256;
their disco#info and caps are what a jinglefs client learns about them; Jingle IQs in and
out are answered and recorded."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from contextlib import AbstractAsyncContextManager

import pytest

from tests.e2e.conftest import logged_in
from tests.servers.prosody import ProsodyServer

from .peer import (
    DISCO_INFO,
    FT,
    IBB,
    JINGLE,
    S5B,
    ScriptedPeer,
    caps_ver,
    error_condition,
    hash_b64,
    hash_hex_b64,
    ibb_receive,
    ibb_send,
    iq_error,
    proxy65_activate,
    proxy65_address,
    random_data,
    read_exactly,
    read_to_eof,
    s5b_connect,
    s5b_dstaddr,
    s5b_listen,
    scripted_peer,
    sha256,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

FEATURES = [DISCO_INFO, JINGLE, FT, S5B, IBB]
IDENTITY = ("client", "pc", "Scripted")


def two_peers(prosody: ProsodyServer, tag: str
              ) -> tuple[AbstractAsyncContextManager[ScriptedPeer],
                         AbstractAsyncContextManager[ScriptedPeer]]:
    return (scripted_peer(prosody, "alice", f"{tag}-a", features=FEATURES,
                          identity=IDENTITY, caps_node="https://example.test/peer"),
            scripted_peer(prosody, "bob", f"{tag}-b", features=FEATURES,
                          identity=IDENTITY, caps_node="https://example.test/peer"))


def test_caps_ver_matches_the_xep_0115_simple_example() -> None:
    # XEP-0115 §5.2: Exodus 0.9.1 hashes to QgayPKawpkPSDYmwT/WM94uAlu0=
    features = ["http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"]
    assert caps_ver([("client", "pc", "Exodus 0.9.1")], features) == \
        "QgayPKawpkPSDYmwT/WM94uAlu0="


def test_hash_helpers_give_the_xep_0300_and_libervia_forms() -> None:
    data = b"abc"
    assert hash_b64("sha-256", data) == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert hash_b64("sha-1", data) == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
    assert hash_b64("blake2b-256", data) == base64.b64encode(
        hashlib.blake2b(data, digest_size=32).digest()).decode()
    assert base64.b64decode(hash_hex_b64("sha-256", data)).decode() == \
        hashlib.sha256(data).hexdigest()


async def test_scripted_peers_move_bytes_over_raw_ibb(prosody: ProsodyServer) -> None:
    tag = os.urandom(3).hex()
    a_cm, b_cm = two_peers(prosody, tag)
    async with a_cm as alice, b_cm as bob:
        data = random_data(70_000)
        # seq wraps at 4 here on both sides: 70_000 / 4096 = 18 blocks wrap several times
        bob.ibb_seq_modulo = 4
        got = asyncio.ensure_future(ibb_receive(bob, "ibb-1"))
        await ibb_send(alice, bob.jid, "ibb-1", data, block_size=4096, seq_modulo=4,
                       window=3)
        assert sha256(await got) == sha256(data)
        assert bob.ibb_state("ibb-1").peer_jid == alice.jid
        # a bad seq is refused as XEP-0047 §2.2 says, and reported by ibb_receive
        bob.ibb_seq_modulo = 65536
        with pytest.raises(AssertionError, match="IBB data refused: unexpected-request"):
            await ibb_send(alice, bob.jid, "ibb-2", data[:8192], block_size=4096,
                           seq_modulo=1)
        with pytest.raises(AssertionError, match="seq 0, expected 1"):
            await ibb_receive(bob, "ibb-2", timeout=5)


async def test_scripted_peers_move_bytes_over_raw_socks5_direct(
        prosody: ProsodyServer) -> None:
    tag = os.urandom(3).hex()
    a_cm, b_cm = two_peers(prosody, tag)
    async with a_cm as alice, b_cm as bob:
        data = random_data(300_000)
        listener = await s5b_listen()
        try:
            dst = s5b_dstaddr("sid-1", alice.jid, bob.jid)
            assert len(dst) == 40 and int(dst, 16) >= 0
            reader, writer = await s5b_connect("127.0.0.1", listener.port, dst)
            a_reader, a_writer, seen = await asyncio.wait_for(listener.accepted, 10)
            assert seen == dst
            a_writer.write(data)
            await a_writer.drain()
            a_writer.close()
            got = await read_exactly(reader, len(data))
            assert await reader.read() == b""
            assert sha256(got) == sha256(data)
            writer.close()
        finally:
            listener.close()


async def test_scripted_peers_move_bytes_through_proxy65(prosody: ProsodyServer) -> None:
    tag = os.urandom(3).hex()
    a_cm, b_cm = two_peers(prosody, tag)
    async with a_cm as alice, b_cm as bob:
        data = random_data(200_000)
        host, port = await proxy65_address(alice, prosody.proxy_jid)
        assert (host, port) == ("127.0.0.1", prosody.proxy65_port)
        dst = s5b_dstaddr("sid-p", alice.jid, bob.jid)
        b_reader, b_writer = await s5b_connect(host, port, dst)  # the target first
        a_reader, a_writer = await s5b_connect(host, port, dst)
        reply = await proxy65_activate(alice, prosody.proxy_jid, "sid-p", bob.jid)
        assert reply.get("type") == "result", error_condition(reply)
        a_writer.write(data)
        await a_writer.drain()
        # Prosody's proxy65 relays in 4096-byte reads: the tail arrives when the sender
        # closes, as a client that closes after its last byte does.
        a_writer.close()
        got = await read_to_eof(b_reader)
        assert sha256(got) == sha256(data)
        b_writer.close()


async def test_jingle_iqs_are_answered_recorded_and_refusable(prosody: ProsodyServer) -> None:
    tag = os.urandom(3).hex()
    a_cm, b_cm = two_peers(prosody, tag)
    async with a_cm as alice, b_cm as bob:
        info = f"<jingle xmlns='{JINGLE}' action='session-info' sid='s1'/>"
        reply = await alice.send_jingle(bob.jid, info)
        assert reply.get("type") == "result"
        bob.answer_jingle = lambda iq: iq_error("item-not-found")
        reply = await alice.terminate(bob.jid, "s1", "success")
        assert error_condition(reply) == "item-not-found"
        terminate = await bob.next_jingle("session-terminate")
        first = await bob.next_jingle()
        assert first.get("action") == "session-info"
        assert [el.get("action") for el in bob.all_jingle] == ["session-info",
                                                                "session-terminate"]
        assert bob.from_of(terminate) == alice.jid
        with pytest.raises(AssertionError, match="no session-accept"):
            await bob.next_jingle("session-accept", timeout=0.5)


async def test_a_jinglefs_client_learns_the_peers_features_from_its_caps(
        prosody: ProsodyServer) -> None:
    tag = os.urandom(3).hex()
    features = [*FEATURES, "urn:xmpp:jingle:apps:file-transfer:3"]
    async with (scripted_peer(prosody, "alice", f"{tag}-a", features=features,
                              identity=("client", "phone", "Phone 1"),
                              caps_node="https://example.test/caps") as peer,
                logged_in(prosody, "bob", f"{tag}-b") as bob):
        seen = await bob.connection.features(peer.jid)
        assert seen == frozenset(features)
        names, node = bob.connection.software(peer.jid)
        assert names == ("Phone 1",)
        # the presence reached bob with the caps node (XEP-0115 §4)
        for _ in range(100):
            if bob.connection.software(peer.jid)[1]:
                break
            await asyncio.sleep(0.05)
        assert bob.connection.software(peer.jid)[1] == "https://example.test/caps"
