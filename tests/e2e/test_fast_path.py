"""The ladder's fast path (README "How the ladder decides") between two real clients.

Both clients gather ICE candidates on 127.0.0.1 (``ice_host_addresses``), so the ICE answer
shows a peer on our own network (loopback): ``auto`` offers ICE, and on the accept replaces
it with SOCKS5 direct-only, which carries the file over kernel TCP.  ``direct_first=False``
keeps the old order; a SOCKS5 direct rung that cannot connect hands over to ICE.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jinglefs.events import PathKind
from jinglefs.ice.protocol import WebRtcDataChannelTransport
from jinglefs.jingle.model import Action, Jingle
from jinglefs.s5b.protocol import S5bTransport
from tests.servers.prosody import ProsodyServer

from .conftest import paths, settings, settle, transfer_file, two_clients

pytestmark = pytest.mark.e2e
LO = ("127.0.0.1",)


def wire(log: list[tuple[str, Jingle]]) -> list[tuple[str, Action, str]]:
    return [(jid, j.action, type(j.contents[0].transport).__name__)
            for jid, j in log if j.contents]


def replaces(log: list[tuple[str, Jingle]], jid: str) -> list[S5bTransport]:
    return [c.transport for sender, j in log if sender == jid
            and j.action is Action.TRANSPORT_REPLACE for c in j.contents
            if isinstance(c.transport, S5bTransport)]


async def test_auto_takes_socks5_direct_when_ice_shows_a_direct_path(
        prosody: ProsodyServer, tmp_path: Path, jingle_log: list[tuple[str, Jingle]]) -> None:
    async with two_clients(prosody, "fast", settings(ice_host_addresses=LO)) as (alice, bob):
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 700_000, transport=None)
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.S5B_DIRECT]
        await settle(alice, bob)
    actions = wire(jingle_log)
    # ICE first (what works behind NATs), then replaced right after the accept.
    assert actions[:4] == [
        (alice.jid, Action.SESSION_INITIATE, "WebRtcDataChannelTransport"),
        (bob.jid, Action.SESSION_ACCEPT, "WebRtcDataChannelTransport"),
        (alice.jid, Action.TRANSPORT_REPLACE, "S5bTransport"),
        (bob.jid, Action.TRANSPORT_ACCEPT, "S5bTransport")]
    # The answer that decided it: bob's candidates are on 127.0.0.1, our network.
    [answer] = [c.transport for sender, j in jingle_log if sender == bob.jid
                and j.action is Action.SESSION_ACCEPT for c in j.contents]
    assert isinstance(answer, WebRtcDataChannelTransport)
    assert {c.ip for c in answer.candidates} == {"127.0.0.1"}
    # Direct-only: the server's proxy is not offered on this rung.
    [offer] = replaces(jingle_log, alice.jid)
    assert offer.candidates and not any(c.is_proxy for c in offer.candidates)


async def test_direct_first_off_keeps_ice(
        prosody: ProsodyServer, tmp_path: Path, jingle_log: list[tuple[str, Jingle]]) -> None:
    quiet = settings(ice_host_addresses=LO, direct_first=False)
    async with two_clients(prosody, "nofast", quiet) as (alice, bob):
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 200_000, transport=None)
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]
        await settle(alice, bob)
    assert not any(a is Action.TRANSPORT_REPLACE for _, a, _ in wire(jingle_log))


async def test_forced_ice_is_never_replaced(
        prosody: ProsodyServer, tmp_path: Path, jingle_log: list[tuple[str, Jingle]]) -> None:
    async with two_clients(prosody, "forced", settings(ice_host_addresses=LO)) as (alice, bob):
        _, _, _, sent, _ = await transfer_file(alice, bob, tmp_path, 100_000, transport="ice")
        assert [e.path for e in await paths(sent)] == [PathKind.ICE_DIRECT]
        await settle(alice, bob)
    assert not any(a is Action.TRANSPORT_REPLACE for _, a, _ in wire(jingle_log))


async def test_socks5_direct_that_cannot_connect_hands_over_to_ice(
        prosody: ProsodyServer, tmp_path: Path, jingle_log: list[tuple[str, Jingle]]) -> None:
    """Neither side offers a direct SOCKS5 candidate (``s5b_direct=False``) and the fast
    path dials no proxy: the rung fails on both sides' candidate-error, and ICE, tried
    again, carries the file."""
    closed = settings(ice_host_addresses=LO, s5b_direct=False)
    async with two_clients(prosody, "handover", closed) as (alice, bob):
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 200_000, transport=None)
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]
        await settle(alice, bob)
    replaced = [t for jid, a, t in wire(jingle_log)
                if jid == alice.jid and a is Action.TRANSPORT_REPLACE]
    assert replaced == ["S5bTransport", "WebRtcDataChannelTransport"]
    [offer] = replaces(jingle_log, alice.jid)
    assert offer.candidates == ()  # no direct listener, and never the proxy
