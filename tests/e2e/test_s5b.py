"""SOCKS5 Bytestreams (XEP-0260 / XEP-0065) end to end through a real Prosody.

Two real jinglefs clients on loopback: direct transfers (listener ↔ dialler),
transfers through Prosody's mod_proxy65, the ladder's fallback to IBB, peers that break
the nomination rules, and the listening ports closed however a session ends.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jinglefs import errors
from jinglefs.client import Client
from jinglefs.events import Failed, PathKind, TransportSelected
from jinglefs.jingle import ns
from jinglefs.jingle.model import Action, Jingle
from jinglefs.negotiator import Connected
from jinglefs.s5b.negotiator import S5bNegotiator
from jinglefs.s5b.network import S5bListener
from jinglefs.s5b.protocol import S5bCandidate, S5bTransport
from tests.servers.prosody import ProsodyServer

from .cli_run import cli_transfer
from .conftest import (
    BOUND,
    first_offer,
    login,
    make_file,
    paths,
    settings,
    settle,
    transfer_file,
    two_clients,
)

pytestmark = pytest.mark.e2e


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def listeners(monkeypatch: pytest.MonkeyPatch) -> list[S5bListener]:
    """Every S5bListener the negotiators start during the test."""
    made: list[S5bListener] = []
    real_start = S5bListener.start.__func__  # type: ignore[attr-defined]

    async def start(cls: type[S5bListener], **kw: Any) -> S5bListener:
        listener: S5bListener = await real_start(cls, **kw)
        made.append(listener)
        return listener

    monkeypatch.setattr(S5bListener, "start", classmethod(start))
    return made


@pytest.fixture
def unreachable_direct(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Direct candidates advertise a port that refuses connections (bound, not
    listening: nobody else can take it), as behind a firewall.  The real listeners
    still run, so the tests can check that they get closed."""
    holders: list[socket.socket] = []
    real_candidates = S5bListener.candidates

    def candidates(self: S5bListener, jid: str, *, type_: str = "direct"
                   ) -> list[S5bCandidate]:
        out = []
        for cand in real_candidates(self, jid, type_=type_):
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.bind(("127.0.0.1", 0))
            holders.append(holder)
            out.append(replace(cand, host="127.0.0.1", port=holder.getsockname()[1]))
        return out

    monkeypatch.setattr(S5bListener, "candidates", candidates)
    yield
    for holder in holders:
        holder.close()


async def assert_ports_closed(listeners: list[S5bListener]) -> None:
    """Each listening address of each listener now refuses connections."""
    assert listeners, "no SOCKS5 listener was started"
    for listener in listeners:
        assert listener.addresses
        for host, port in listener.addresses:
            with pytest.raises(ConnectionRefusedError):
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), BOUND)
                writer.close()


@pytest.fixture
async def pair(prosody: ProsodyServer) -> AsyncIterator[tuple[Client, Client]]:
    # JET off: these tests are about SOCKS5 itself (encrypted transfers: test_jet.py)
    async with two_clients(prosody, "s5b", settings(encryption="off")) as clients:
        yield clients


# -- direct --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3 * 1024 * 1024 + 17])
async def test_direct_transfer(pair: tuple[Client, Client], tmp_path: Path,
                               listeners: list[S5bListener], size: int) -> None:
    alice, bob = pair
    _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, size)
    for transfer in (sent, got):
        [selected] = await paths(transfer)
        assert selected.path is PathKind.S5B_DIRECT and not selected.encrypted
        host, _, port = selected.detail.rpartition(":")
        assert host and port.isdigit()  # "127.0.0.1:40123"
    assert len(listeners) == 2  # one per side
    await assert_ports_closed(listeners)


@pytest.mark.parametrize("listening", ["alice", "bob"])
async def test_direct_when_only_one_side_listens(prosody: ProsodyServer, tmp_path: Path,
                                                 listeners: list[S5bListener],
                                                 listening: str) -> None:
    """One side offers no direct candidate (only the proxy, or nothing as responder when
    the initiator offered the same proxy): the other side's listener carries the bytes,
    taken from the listener (nomination.ours).  When the listening side also reached the
    proxy, the direct candidate still wins on priority (XEP-0260 §2.4)."""
    quiet = settings(s5b_direct=False)
    alice = await login(prosody, "alice", resource="one-a",
                        **({} if listening == "alice" else {"settings": quiet}))
    bob = await login(prosody, "bob", resource="one-b",
                      **({} if listening == "bob" else {"settings": quiet}))
    try:
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 200_000)
        [listener] = listeners  # only the listening side started one
        ports = {port for _, port in listener.addresses}
        for transfer in (sent, got):
            [selected] = await paths(transfer)
            assert selected.path is PathKind.S5B_DIRECT
            assert int(selected.detail.rpartition(":")[2]) in ports
        await assert_ports_closed(listeners)
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_auto_picks_s5b(pair: tuple[Client, Client], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = pair
    # The ladder is ICE → SOCKS5 → IBB; this test is about the SOCKS5 rung.
    monkeypatch.delitem(alice.factories, "ice", raising=False)
    assert "s5b" in alice.factories
    features = await alice.connection.features(bob.jid)
    assert ns.S5B_TRANSPORT in features and ns.BYTESTREAMS in features  # bob's disco
    assert alice._ladder(features, "auto") == ["s5b", "ibb"]
    _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 100_000, transport=None)
    for transfer in (sent, got):
        assert [e.path for e in await paths(transfer)] == [PathKind.S5B_DIRECT]


# -- proxy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["unreachable", "no-direct-candidates"])
async def test_proxy_when_direct_is_impossible(prosody: ProsodyServer, tmp_path: Path,
                                               listeners: list[S5bListener],
                                               jingle_log: list[tuple[str, Jingle]],
                                               request: pytest.FixtureRequest,
                                               how: str) -> None:
    """Direct candidates refuse connections (or none are offered): the bytes go through
    Prosody's mod_proxy65, activated by the side that offered the proxy candidate."""
    if how == "unreachable":
        request.getfixturevalue("unreachable_direct")
        chosen = settings()
    else:
        chosen = settings(s5b_direct=False)
    alice = await login(prosody, "alice", resource="pxy-a", settings=chosen)
    bob = await login(prosody, "bob", resource="pxy-b", settings=chosen)
    try:
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 2 * 1024 * 1024 + 3)
        for transfer in (sent, got):
            [selected] = await paths(transfer)
            assert selected.path is PathKind.S5B_PROXY
            assert selected.detail == f"via {prosody.proxy_jid}"
        # XEP-0260 §2.4: the offerer activated the proxy and said so, naming the proxy
        # candidate it offered.
        offered = {c.cid: (jid, c) for jid, j in jingle_log
                   for content in j.contents if isinstance(content.transport, S5bTransport)
                   for c in content.transport.candidates}
        activated = [(jid, content.transport.activated) for jid, j in jingle_log
                     if j.action is Action.TRANSPORT_INFO for content in j.contents
                     if isinstance(content.transport, S5bTransport)
                     and content.transport.activated]
        [(activator, cid)] = activated
        assert offered[cid][0] == activator and offered[cid][1].is_proxy
        if how == "unreachable":
            await assert_ports_closed(listeners)
        else:
            assert listeners == []
    finally:
        await alice.aclose()
        await bob.aclose()


# -- fallback --------------------------------------------------------------------------------


async def test_fallback_to_ibb_without_direct_or_proxy(
        prosody_factory: Callable[..., ProsodyServer], tmp_path: Path,
        listeners: list[S5bListener], unreachable_direct: None,
        jingle_log: list[tuple[str, Jingle]], monkeypatch: pytest.MonkeyPatch) -> None:
    server = prosody_factory(proxy65=False)
    alice = await login(server, "alice", resource="fb-a")
    bob = await login(server, "bob", resource="fb-b")
    try:
        monkeypatch.delitem(alice.factories, "ice", raising=False)
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 300_001,
                                                 transport=None)
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.IBB]
        # On the wire: SOCKS5 offered first, both sides reported candidate-error, then
        # the initiator replaced the transport with IBB (XEP-0260 §3).
        actions = [(jid, j.action, type(j.contents[0].transport).__name__ if j.contents
                    else None) for jid, j in jingle_log]
        assert actions[0] == (alice.jid, Action.SESSION_INITIATE, "S5bTransport")
        assert (bob.jid, Action.SESSION_ACCEPT, "S5bTransport") in actions
        errors_from = {jid for jid, j in jingle_log if j.action is Action.TRANSPORT_INFO
                       and isinstance(j.contents[0].transport, S5bTransport)
                       and j.contents[0].transport.candidate_error}
        assert errors_from == {alice.jid, bob.jid}
        assert (alice.jid, Action.TRANSPORT_REPLACE, "IbbTransport") in actions
        assert (bob.jid, Action.TRANSPORT_ACCEPT, "IbbTransport") in actions
        await assert_ports_closed(listeners)
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_forced_s5b_that_fails_reports_what_was_tried(
        prosody_factory: Callable[..., ProsodyServer], tmp_path: Path,
        listeners: list[S5bListener], unreachable_direct: None) -> None:
    """--transport s5b leaves no rung to fall back to: a clear TransportError naming the
    candidates tried on our side and those the contact could not use."""
    server = prosody_factory(proxy65=False)
    alice = await login(server, "alice", resource="ff-a")
    bob = await login(server, "bob", resource="ff-b")
    try:
        src = make_file(tmp_path, "never.bin", 1000)
        [sent] = await alice.send_files(bob.jid, [src], transport="s5b")
        [got] = await (await first_offer(bob)).accept(tmp_path)
        with pytest.raises(errors.TransportError) as info:
            await asyncio.wait_for(sent.wait(), BOUND)
        text = str(info.value)
        assert "SOCKS5" in text and "neither side could connect" in text
        assert "Connection refused" in text and "127.0.0.1:" in text  # what we tried
        assert "the contact tried ours: 127.0.0.1:" in text  # what the contact could not use
        # The receiver learns it from session-terminate <failed-transport/>.
        with pytest.raises(errors.TransportError, match="neither side could connect"):
            await asyncio.wait_for(got.wait(), BOUND)
        await settle(alice, bob)
        await assert_ports_closed(listeners)
    finally:
        await alice.aclose()
        await bob.aclose()


# -- peers that break the rules ----------------------------------------------------------------


class _BogusSignal(S5bNegotiator):
    """Offers and answers like the real negotiator, but its connect() only sends a
    hand-made transport-info and then waits for the session to end (the driver
    cancels it), so how the culprit's transfer ends depends on the victim alone."""

    payload: Callable[[str], S5bTransport]

    async def connect(self) -> Connected:
        assert self._neg is not None
        self.ctx.send_transport_info(self.payload(self._neg.sid))
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


BOGUS = {
    # XEP-0260 §2.3: candidate-used names one of *our* candidates.
    "candidate-used": (lambda sid: S5bTransport(sid=sid, candidate_used="no-such-cid"),
                       "candidate-used for 'no-such-cid', which we never offered"),
    # XEP-0260 §2.4: activated only for the nominated proxy candidate.
    "activated": (lambda sid: S5bTransport(sid=sid, activated="no-such-cid"),
                  "activated for 'no-such-cid' before a candidate was nominated"),
}


@pytest.mark.parametrize("signal", sorted(BOGUS))
@pytest.mark.parametrize("culprit", ["initiator", "responder"])
async def test_bogus_signal_ends_the_session(pair: tuple[Client, Client], tmp_path: Path,
                                             listeners: list[S5bListener],
                                             monkeypatch: pytest.MonkeyPatch,
                                             signal: str, culprit: str) -> None:
    alice, bob = pair
    make_payload, why = BOGUS[signal]
    bogus = type("Bogus", (_BogusSignal,), {"payload": staticmethod(make_payload)})
    if culprit == "initiator":
        monkeypatch.setitem(alice.factories, "s5b", bogus)
    else:
        monkeypatch.setitem(bob.negotiators, ns.S5B_TRANSPORT, bogus)
    src = make_file(tmp_path, "x.bin", 10_000)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="s5b")
    [got] = await (await first_offer(bob)).accept(inbox)
    victim, offender = (got, sent) if culprit == "initiator" else (sent, got)
    # The side that received the bad signal ends the session, saying why...
    with pytest.raises(errors.RemoteProtocolError, match=why):
        await asyncio.wait_for(victim.wait(), BOUND)
    # ...and the culprit learns the reason from session-terminate.
    with pytest.raises(errors.TransferError, match=why) as info:
        await asyncio.wait_for(offender.wait(), BOUND)
    assert "failed-application" in str(info.value)
    events = [e async for e in victim.events()]
    assert isinstance(events[-1], Failed) and why in events[-1].reason
    assert not any(isinstance(e, TransportSelected) for e in events)
    assert not (inbox / "x.bin").exists()
    await settle(alice, bob)
    await assert_ports_closed(listeners)


# -- listeners on decline ---------------------------------------------------------------------


async def test_decline_closes_the_listener(pair: tuple[Client, Client], tmp_path: Path,
                                           listeners: list[S5bListener]) -> None:
    alice, bob = pair
    src = make_file(tmp_path, "no.bin", 10)
    [sent] = await alice.send_files(bob.jid, [src], transport="s5b")
    offer = await first_offer(bob)
    [listener] = listeners  # alice listens from the offer on
    host, port = listener.addresses[0]
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), BOUND)
    writer.close()  # open while the offer is pending
    await offer.decline()
    with pytest.raises(errors.Declined):
        await asyncio.wait_for(sent.wait(), BOUND)
    await settle(alice)
    await assert_ports_closed(listeners)


# -- the command line ----------------------------------------------------------------------


def test_cli_transport_s5b(prosody: ProsodyServer, tmp_path: Path) -> None:
    """`jinglefs send --transport s5b` between two processes: a direct SOCKS5 path on both
    sides (the --json "transport" event) and the same bytes on disk."""
    src = make_file(tmp_path, "cli.bin", 1_000_003)
    run = cli_transfer(prosody, tmp_path, src, "s5b")
    assert (run.inbox / "cli.bin").read_bytes() == src.read_bytes()
    for events in (run.sent, run.received):
        assert [e["path"] for e in events if e["event"] == "transport"] == ["s5b-direct"]
