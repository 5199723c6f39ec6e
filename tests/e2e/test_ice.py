"""ICE data channels (Conversations' webrtc-datachannel:1, protocol.md §5.4) end to end.

Two real jinglefs clients on the real loopback Prosody.  aioice leaves 127.0.0.1 out when it
gathers, so the clients gather on ``Settings.ice_host_addresses=("127.0.0.1",)`` (the CLI's
``--ice-address``).  Covered: files over ICE (path, encryption, bytes, hashes), the ladder's
choice, the fallback to SOCKS5 when ICE cannot connect or the DTLS fingerprint is wrong,
trickled candidates (ours after a slow gathering, the peer's before we accept), the TURN
relay announced by XEP-0215, sockets released however a session ends, the CLI, and the
STUN/TURN settings.
"""

from __future__ import annotations

import asyncio
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keyring
import psutil
import pytest

from jinglefs import cli, config, errors
from jinglefs.api import Settings
from jinglefs.client import Client, advertised_features
from jinglefs.events import PathKind
from jinglefs.ice import negotiator as ice_negotiation
from jinglefs.ice.channel import IceSession
from jinglefs.ice.negotiator import (
    ICE_SERVERS_SERVICE,
    IceNegotiator,
    TurnUrl,
    announced_ice_servers,
    manual_ice_servers,
    merge_ice_servers,
    parse_stun,
    parse_turn,
    turn_setting,
)
from jinglefs.ice.protocol import DtlsFingerprint, IceServers, WebRtcDataChannelTransport
from jinglefs.jingle import ns
from jinglefs.jingle.codec import parse_jingle
from jinglefs.jingle.model import Action, Jingle, Role
from jinglefs.jingle.transport import TransportPayload
from jinglefs.negotiator import NegotiationContext
from jinglefs.streams import ByteStream
from jinglefs.xmpp.connection import XmppConnection
from tests.fakes import MemoryKeyring, fake_connect
from tests.servers.coturn import CoturnServer
from tests.servers.prosody import ProsodyServer

from .cli_run import cli_transfer, jinglefs
from .conftest import login, settings
from .test_s5b import paths, settle, transfer_file
from .test_transfer import first_offer, make_file

pytestmark = pytest.mark.e2e

BOUND = 60.0  # only to fail instead of hanging; never asserted as a duration
LO = ("127.0.0.1",)
ICE_LO = settings(ice_host_addresses=LO)


# -- helpers ---------------------------------------------------------------------------


@dataclass
class IceSpy:
    """Every IceSession the negotiators create, what its connect() gave, and its sockets."""

    sessions: list[IceSession] = field(default_factory=list)
    #: (session, stream) for each connect() that returned a stream
    streams: list[tuple[IceSession, ByteStream]] = field(default_factory=list)
    #: (session, exception) for each connect() that raised
    failures: list[tuple[IceSession, BaseException]] = field(default_factory=list)

    def of(self, initiator: bool) -> list[IceSession]:
        return [s for s in self.sessions if s.initiator is initiator]


@pytest.fixture
def ice_spy(monkeypatch: pytest.MonkeyPatch) -> IceSpy:
    spy = IceSpy()

    class Recording(IceSession):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            spy.sessions.append(self)

        async def connect(self, timeout: float = 10.0) -> Any:
            try:
                stream = await super().connect(timeout)
            except BaseException as e:
                spy.failures.append((self, e))
                raise
            spy.streams.append((self, stream))
            return stream

    monkeypatch.setattr(ice_negotiation, "IceSession", Recording)
    return spy


def udp_sockets() -> set[tuple[str, int]]:
    """The local addresses of this process's UDP sockets."""
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections(kind="udp")}


async def assert_udp_released(before: set[tuple[str, int]]) -> None:
    """Every UDP socket opened since ``before`` gets closed (TURN deallocation is async, so
    wait for it, bounded)."""
    deadline = time.monotonic() + 10
    while udp_sockets() - before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert udp_sockets() - before == set()


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


def wire(log: list[tuple[str, Jingle]]) -> list[tuple[str, Action, str | None]]:
    return [(jid, j.action, type(j.contents[0].transport).__name__ if j.contents else None)
            for jid, j in log]


def ice_payloads(log: list[tuple[str, Jingle]], jid: str, action: Action
                 ) -> list[WebRtcDataChannelTransport]:
    return [c.transport for sender, j in log if sender == jid and j.action is action
            for c in j.contents if isinstance(c.transport, WebRtcDataChannelTransport)]


@pytest.fixture
async def pair(prosody: ProsodyServer) -> AsyncIterator[tuple[Client, Client]]:
    alice = await login(prosody, "alice", resource="ice-a", settings=ICE_LO)
    bob = await login(prosody, "bob", resource="ice-b", settings=ICE_LO)
    try:
        yield alice, bob
    finally:
        await alice.aclose()
        await bob.aclose()


@pytest.fixture
def silent_udp() -> Iterator[int]:
    """A bound UDP port that never answers (a STUN server or peer behind a firewall)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch, silent_udp: int) -> None:
    """Both sides advertise candidates that lead nowhere (UDP dropped on the way): every
    connectivity check goes to a port that never answers, so neither side learns a
    peer-reflexive address either."""
    real_gather = IceSession.gather

    async def gather(self: IceSession) -> WebRtcDataChannelTransport:
        payload = await real_gather(self)
        nowhere = tuple(replace(c, ip="127.0.0.1", port=silent_udp, id=f"{c.id}x")
                        for c in payload.candidates)
        return replace(payload, ice=replace(payload.ice, candidates=nowhere))

    monkeypatch.setattr(IceSession, "gather", gather)


def tampered(payload: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
    """The same payload with another DTLS fingerprint (XEP-0320): a man in the middle."""
    fp = payload.fingerprint
    assert fp is not None
    first = "00" if not fp.value.startswith("00") else "01"
    bad = DtlsFingerprint(fp.hash, first + fp.value[2:], fp.setup)
    return replace(payload, ice=replace(payload.ice, fingerprint=bad))


class _TamperedOffer(IceNegotiator):
    async def offer(self) -> TransportPayload:
        payload = await super().offer()
        assert isinstance(payload, WebRtcDataChannelTransport)
        return tampered(payload)


class _TamperedAnswer(IceNegotiator):
    async def answer(self, remote: TransportPayload) -> TransportPayload:
        payload = await super().answer(remote)
        assert isinstance(payload, WebRtcDataChannelTransport)
        return tampered(payload)


# -- files over ICE --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3 * 1024 * 1024 + 17])
async def test_ice_transfer(pair: tuple[Client, Client], tmp_path: Path, ice_spy: IceSpy,
                            size: int) -> None:
    alice, bob = pair
    before = udp_sockets()
    _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, size, transport="ice")
    for transfer in (sent, got):
        [selected] = await paths(transfer)
        assert selected.path is PathKind.ICE_DIRECT and selected.encrypted
        # "host 127.0.0.1:40123 -> host 127.0.0.1:51234": the nominated pair (RFC 8445 §8)
        local, arrow, remote = selected.detail.partition(" -> ")
        assert arrow and local.startswith("host 127.0.0.1:")
        assert remote.startswith("host 127.0.0.1:")
    assert [s.initiator for s in ice_spy.sessions] == [True, False]
    assert len(ice_spy.streams) == 2 and ice_spy.failures == []
    await settle(alice, bob)
    await assert_udp_released(before)


async def test_auto_picks_ice_first(pair: tuple[Client, Client], tmp_path: Path,
                                    jingle_log: list[tuple[str, Jingle]]) -> None:
    alice, bob = pair
    assert {ns.WEBRTC_DC, ns.ICE_UDP, ns.DTLS} <= set(advertised_features(alice.factories))
    features = await alice.connection.features(bob.jid)
    assert ns.WEBRTC_DC in features  # bob's disco
    assert alice._ladder(features, "auto") == ["ice", "s5b", "ibb"]
    _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 200_000, transport=None)
    for transfer in (sent, got):
        assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]
    actions = wire(jingle_log)
    assert actions[0] == (alice.jid, Action.SESSION_INITIATE, "WebRtcDataChannelTransport")
    assert (bob.jid, Action.SESSION_ACCEPT, "WebRtcDataChannelTransport") in actions
    assert not any(a is Action.TRANSPORT_REPLACE for _, a, _ in actions)
    # protocol.md §5.4 / trap 15: what Conversations requires on the wire.
    [offer] = ice_payloads(jingle_log, alice.jid, Action.SESSION_INITIATE)
    assert offer.sctp_port == 5000 and offer.max_message_size > 0
    assert offer.fingerprint is not None and offer.fingerprint.setup == "actpass"
    assert offer.candidates and all(c.protocol == "udp" for c in offer.candidates)
    [answer] = ice_payloads(jingle_log, bob.jid, Action.SESSION_ACCEPT)
    assert answer.fingerprint is not None and answer.fingerprint.setup == "active"


async def test_peer_with_ice_udp_for_calls_only_is_not_offered_ice(
        pair: tuple[Client, Client]) -> None:
    """Dino and Gajim advertise ice-udp:1 and dtls:0 for calls, not the data channel: the
    ladder must not open with a transport they would refuse."""
    alice, _ = pair
    dino = frozenset({ns.JINGLE, ns.FT, ns.ICE_UDP, ns.DTLS, ns.S5B_TRANSPORT,
                      ns.IBB_TRANSPORT})
    assert alice._ladder(dino, "auto") == ["s5b", "ibb"]
    assert alice._transports_of(dino) == {"s5b", "ibb"}
    assert alice._ladder(dino | {ns.WEBRTC_DC}, "auto") == ["ice", "s5b", "ibb"]


# -- when ICE cannot work --------------------------------------------------------------------


async def test_unreachable_ice_falls_back_to_s5b(
        prosody: ProsodyServer, tmp_path: Path, black_hole: None, ice_spy: IceSpy,
        jingle_log: list[tuple[str, Jingle]]) -> None:
    quick = settings(ice_host_addresses=LO, timeouts=replace(ICE_LO.timeouts, transport=4))
    alice = await login(prosody, "alice", resource="bh-a", settings=quick)
    bob = await login(prosody, "bob", resource="bh-b", settings=quick)
    before = udp_sockets()
    try:
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 500_000,
                                                 transport=None)
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.S5B_DIRECT]
        actions = wire(jingle_log)
        assert actions[0] == (alice.jid, Action.SESSION_INITIATE, "WebRtcDataChannelTransport")
        # The transport-replace comes after session-accept (protocol.md §16 trap 10).
        accept = actions.index((bob.jid, Action.SESSION_ACCEPT, "WebRtcDataChannelTransport"))
        replace_at = actions.index((alice.jid, Action.TRANSPORT_REPLACE, "S5bTransport"))
        assert accept < replace_at
        assert (bob.jid, Action.TRANSPORT_ACCEPT, "S5bTransport") in actions
        assert ice_spy.streams == []  # no ICE byte
        assert any(isinstance(e, errors.CandidatesFailed) for _, e in ice_spy.failures)
        await settle(alice, bob)
        await assert_udp_released(before)
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_forced_ice_that_fails_says_why(prosody: ProsodyServer, tmp_path: Path,
                                              black_hole: None) -> None:
    quick = settings(ice_host_addresses=LO, timeouts=replace(ICE_LO.timeouts, transport=3))
    alice = await login(prosody, "alice", resource="fi-a", settings=quick)
    bob = await login(prosody, "bob", resource="fi-b", settings=quick)
    before = udp_sockets()
    try:
        src = make_file(tmp_path, "never.bin", 1000)
        [sent] = await alice.send_files(bob.jid, [src], transport="ice")
        [got] = await (await first_offer(bob)).accept(tmp_path)
        with pytest.raises(errors.TransportError,
                           match=r"no transport worked: ICE: no ICE candidate pair answered"):
            await asyncio.wait_for(sent.wait(), BOUND)
        with pytest.raises(errors.TransportError):
            await asyncio.wait_for(got.wait(), BOUND)
        assert not (tmp_path / "never.bin").exists()
        await settle(alice, bob)
        await assert_udp_released(before)
    finally:
        await alice.aclose()
        await bob.aclose()


@pytest.mark.parametrize("victim", ["initiator", "responder"])
async def test_tampered_fingerprint_falls_back_without_ice_bytes(
        pair: tuple[Client, Client], tmp_path: Path, ice_spy: IceSpy,
        monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    """A fingerprint that does not match the DTLS certificate (XEP-0320; a man in the
    middle) fails the DTLS handshake before any data channel opens; the ladder then
    carries the file over SOCKS5."""
    alice, bob = pair
    if victim == "responder":  # bob checks alice's certificate against a forged offer
        monkeypatch.setitem(alice.factories, "ice", _TamperedOffer)
    else:  # alice checks bob's certificate against a forged answer
        monkeypatch.setitem(bob.negotiators, ns.WEBRTC_DC, _TamperedAnswer)
    before = udp_sockets()
    _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 300_000, transport=None)
    for transfer in (sent, got):
        assert [e.path for e in await paths(transfer)] == [PathKind.S5B_DIRECT]
    assert ice_spy.streams == []  # neither side ever had an ICE stream: no byte over ICE
    [checker] = ice_spy.of(initiator=victim == "initiator")
    mismatch = [e for s, e in ice_spy.failures if s is checker]
    assert [str(e) for e in mismatch] == [
        "DTLS fingerprint mismatch: the peer's certificate is not the one announced in Jingle"
        " (XEP-0320)"]
    await settle(alice, bob)
    await assert_udp_released(before)


async def test_relay_only_without_turn_fails_fast(pair: tuple[Client, Client],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Relay-only ICE with no TURN server at all (the shared Prosody announces none) cannot
    work: the negotiator says so instead of waiting for the transport timeout."""
    alice, bob = pair
    relay_only = replace(ICE_LO, ice_relay_only=True)
    monkeypatch.setattr(alice, "settings", relay_only)
    src = make_file(tmp_path, "r.bin", 10)
    [sent] = await alice.send_files(bob.jid, [src], transport="ice")
    [got] = await (await first_offer(bob)).accept(tmp_path)
    with pytest.raises(errors.TransportError, match="relay-only ICE needs a TURN server"):
        await asyncio.wait_for(sent.wait(), BOUND)
    with pytest.raises(errors.TransportError):
        await asyncio.wait_for(got.wait(), BOUND)
    await settle(alice, bob)


async def test_decline_releases_the_ice_sockets(pair: tuple[Client, Client], tmp_path: Path,
                                                ice_spy: IceSpy) -> None:
    alice, bob = pair
    before = udp_sockets()
    src = make_file(tmp_path, "no.bin", 10)
    [sent] = await alice.send_files(bob.jid, [src], transport="ice")
    offer = await first_offer(bob)
    [session] = ice_spy.sessions
    assert session.local_payload().candidates  # alice gathered (and holds sockets)
    assert udp_sockets() - before
    await offer.decline()
    with pytest.raises(errors.Declined):
        await asyncio.wait_for(sent.wait(), BOUND)
    await settle(alice)
    await assert_udp_released(before)


# -- trickle (XEP-0176) ------------------------------------------------------------------------


async def test_candidates_trickle_when_gathering_is_slow(
        prosody: ProsodyServer, tmp_path: Path, silent_udp: int,
        jingle_log: list[tuple[str, Jingle]]) -> None:
    """A STUN server that never answers holds aioice's gathering for 5 s: the offer leaves
    without candidates (ufrag, pwd and fingerprint only) and they follow by transport-info."""
    slow = settings(ice_host_addresses=LO, stun=(f"127.0.0.1:{silent_udp}",))
    alice = await login(prosody, "alice", resource="tr-a", settings=slow)
    bob = await login(prosody, "bob", resource="tr-b", settings=ICE_LO)
    try:
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 100_000,
                                                 transport="ice")
        for transfer in (sent, got):
            assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]
        [offer] = ice_payloads(jingle_log, alice.jid, Action.SESSION_INITIATE)
        assert offer.candidates == () and offer.fingerprint is not None
        assert offer.ice.ufrag and offer.ice.pwd
        trickled = ice_payloads(jingle_log, alice.jid, Action.TRANSPORT_INFO)
        assert [c.ip for t in trickled for c in t.candidates] == ["127.0.0.1"]
        assert all(t.ice.ufrag == offer.ice.ufrag for t in trickled)
        # Bob's answer was gathered in time: all its candidates in session-accept.
        [answer] = ice_payloads(jingle_log, bob.jid, Action.SESSION_ACCEPT)
        assert answer.candidates
        assert ice_payloads(jingle_log, bob.jid, Action.TRANSPORT_INFO) == []
    finally:
        await alice.aclose()
        await bob.aclose()


class _EarlyTrickle(IceNegotiator):
    """Like Conversations as initiator: the offer carries no candidates; they are sent by
    transport-info right after session-initiate, before the peer accepted."""

    async def offer(self) -> TransportPayload:
        payload = await super().offer()
        assert isinstance(payload, WebRtcDataChannelTransport) and payload.candidates
        asyncio.get_running_loop().call_soon(self.ctx.send_transport_info,
                                             payload.trickle(payload.candidates))
        return replace(payload, ice=replace(payload.ice, candidates=()))


async def test_candidates_trickled_before_accept_are_used(
        pair: tuple[Client, Client], tmp_path: Path, ice_spy: IceSpy,
        monkeypatch: pytest.MonkeyPatch, jingle_log: list[tuple[str, Jingle]]) -> None:
    alice, bob = pair
    monkeypatch.setitem(alice.factories, "ice", _EarlyTrickle)
    src = make_file(tmp_path, "early.bin", 50_000)
    [sent] = await alice.send_files(bob.jid, [src], transport="ice")
    offer = await first_offer(bob)

    async def trickle_arrived() -> None:
        while not any(d._early_info for d in bob._drivers.values()):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(trickle_arrived(), BOUND)  # before bob accepts
    (tmp_path / "in").mkdir()
    [got] = await offer.accept(tmp_path / "in")
    await asyncio.wait_for(got.wait(), BOUND)
    await asyncio.wait_for(sent.wait(), BOUND)
    assert (tmp_path / "in" / "early.bin").read_bytes() == src.read_bytes()
    [trickle] = ice_payloads(jingle_log, alice.jid, Action.TRANSPORT_INFO)
    [responder] = ice_spy.of(initiator=False)
    # Bob learnt alice's candidates from the early transport-info, not only as
    # peer-reflexive addresses from her checks.
    assert {(c.ip, c.port) for c in trickle.candidates} <= {
        (c.ip, c.port) for c in responder.remote_candidates}
    for transfer in (sent, got):
        assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]


# -- XEP-0215: STUN/TURN from our server ----------------------------------------------------------


async def test_relay_only_through_turn_announced_by_the_server(
        prosody_factory: Callable[..., ProsodyServer], coturn: CoturnServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = prosody_factory(turn=coturn, proxy65=False)
    fetched: list[str] = []
    real_fetch = ice_negotiation.fetch_ice_servers

    async def fetch(xmpp: Any, domain: str, **kw: Any) -> IceServers | None:
        fetched.append(domain)
        return await real_fetch(xmpp, domain, **kw)

    monkeypatch.setattr(ice_negotiation, "fetch_ice_servers", fetch)
    relay = settings(ice_host_addresses=LO, ice_relay_only=True)
    alice = await login(server, "alice", resource="turn-a", settings=relay)
    bob = await login(server, "bob", resource="turn-b", settings=relay)
    before = udp_sockets()
    try:
        for round_ in range(2):
            (tmp_path / str(round_)).mkdir()
            _, _, _, sent, got = await transfer_file(alice, bob, tmp_path / str(round_),
                                                     400_000 + round_, transport="ice")
            for transfer in (sent, got):
                [selected] = await paths(transfer)
                assert selected.path is PathKind.ICE_RELAY and selected.encrypted
                assert selected.detail.startswith("relay 127.0.0.1:")
        # XEP-0215 once per client (both rounds), from our own server.
        assert fetched == [server.domain, server.domain]
        for client in (alice, bob):
            cached = client.services[ICE_SERVERS_SERVICE]
            servers = cached.pending.result()  # type: ignore[attr-defined]
            assert (servers.turn_host, servers.turn_port) == (coturn.host, coturn.port)
            assert servers.turn_expires is not None
        await settle(alice, bob)
        await assert_udp_released(before)
    finally:
        await alice.aclose()
        await bob.aclose()


def _ctx(services: dict[str, object], settings_: Settings | None = None
         ) -> NegotiationContext:
    return NegotiationContext(
        role=Role.INITIATOR, local_jid="alice@example.org/res", peer_jid="bob@example.org/x",
        settings=settings_ or Settings(), connection=SimpleNamespace(xmpp="xmpp"),  # type: ignore[arg-type]
        send_transport_info=lambda payload: None, new_id=lambda: "id", services=services)


@pytest.mark.parametrize("expires, again", [
    (timedelta(hours=1), False),  # credentials still valid: cached
    (timedelta(seconds=30), True),  # about to expire (EXPIRY_MARGIN): fetched again
    (-timedelta(hours=1), True),  # expired
    (None, False),  # no expiry: cached for the client's life
])
async def test_announced_servers_are_fetched_once_until_expiry(
        monkeypatch: pytest.MonkeyPatch, expires: timedelta | None, again: bool) -> None:
    calls: list[tuple[object, str]] = []

    async def fetch(xmpp: object, domain: str, **kw: Any) -> IceServers:
        calls.append((xmpp, domain))
        return IceServers(turn_host="turn.example.org", turn_username="u", turn_password="p",
                          turn_expires=None if expires is None else datetime.now(UTC) + expires)

    monkeypatch.setattr(ice_negotiation, "fetch_ice_servers", fetch)
    services: dict[str, object] = {}
    first = await announced_ice_servers(_ctx(services))
    second = await announced_ice_servers(_ctx(services))
    assert first is not None and first.turn_host == "turn.example.org" and second is not None
    assert calls == [("xmpp", "example.org")] * (2 if again else 1)


async def test_failed_lookup_is_retried_and_nothing_found_is_cached(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def fetch(xmpp: object, domain: str, **kw: Any) -> IceServers | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("stream closed")
        return None

    monkeypatch.setattr(ice_negotiation, "fetch_ice_servers", fetch)
    services: dict[str, object] = {}
    assert await announced_ice_servers(_ctx(services)) is None  # the error: no servers
    assert calls == 1
    assert await announced_ice_servers(_ctx(services)) is None  # asked again: none offered
    assert calls == 2
    assert await announced_ice_servers(_ctx(services)) is None  # cached (RETRY_NOTHING)
    assert calls == 2


# -- STUN/TURN settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("stun.example.org", ("stun.example.org", 3478)),
    ("stun.example.org:19302", ("stun.example.org", 19302)),
    ("stun:stun.example.org:3479", ("stun.example.org", 3479)),
    ("STUN:192.0.2.1", ("192.0.2.1", 3478)),
    ("[2001:db8::1]:3480", ("2001:db8::1", 3480)),
    ("2001:db8::1", ("2001:db8::1", 3478)),
])
def test_parse_stun(text: str, expected: tuple[str, int]) -> None:
    assert parse_stun(text) == expected


@pytest.mark.parametrize("text", ["", "stun:", "host:0", "host:70000", "host:x", "stuns:h",
                                  "stun:h?transport=udp", "a b", "[2001:db8::1", "u@host"])
def test_parse_stun_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_stun(text)


def test_parse_turn() -> None:
    assert parse_turn("turn:turn.example.org") == TurnUrl("turn.example.org", 3478, "udp")
    assert parse_turn("turns:t.example.org") == TurnUrl("t.example.org", 5349, "tcp", True)
    # TURN REST user names contain colons; the password is after the last one.
    url = parse_turn("turn:1700000000%3Aalice:c2VjcmV0/+=@[2001:db8::2]:3479?transport=tcp")
    assert url == TurnUrl("2001:db8::2", 3479, "tcp", False, "1700000000:alice", "c2VjcmV0/+=")
    assert parse_turn("turn:1700000000:alice:pw@h") == TurnUrl(
        "h", 3478, "udp", False, "1700000000:alice", "pw")
    # On the command line (no passwords there) the whole user info is the user name.
    assert parse_turn("turn:1700000000:alice@h:3478?transport=udp",
                      password_in_url=False) == TurnUrl(
        "h", 3478, "udp", False, "1700000000:alice", None)
    assert parse_turn("turn:alice@example.org@h", password_in_url=False).username == \
        "alice@example.org"
    for bad in ("stun:h", "turn:h?transport=sctp", "turns:h?transport=udp", "turn:@h",
                "turn:u@", "turn:h?foo=bar", "h:3478"):
        with pytest.raises(ValueError):
            parse_turn(bad)


def test_turn_setting_round_trip() -> None:
    url = TurnUrl("2001:db8::3", 443, "tcp", True, "1700000000:bob@x", "p:w/d@")
    assert parse_turn(turn_setting(url)) == url
    assert turn_setting(TurnUrl("h", 3478, "udp", False, "u", "p")) == \
        "turn:u:p@h:3478?transport=udp"


def test_manual_servers_and_merge_with_announced() -> None:
    manual = manual_ice_servers(("bad host", "stun:s.example.org:3479", "s2.example.org"),
                                ("turn:nopass@t0", "turn:u:p@t.example.org?transport=tcp"))
    assert manual == IceServers(stun_host="s.example.org", stun_port=3479,
                                turn_host="t.example.org", turn_port=3478, turn_username="u",
                                turn_password="p", turn_transport="tcp")
    assert manual_ice_servers((), ()) is None
    expiry = datetime.now(UTC) + timedelta(hours=1)
    announced = IceServers(stun_host="stun.server", turn_host="turn.server",
                           turn_username="su", turn_password="sp", turn_expires=expiry)
    # Manual wins per kind; what the user did not configure comes from the server.
    assert merge_ice_servers(manual, announced) == manual
    stun_only = manual_ice_servers(("mine.example",), ())
    merged = merge_ice_servers(stun_only, announced)
    assert merged is not None and merged.stun_host == "mine.example"
    assert (merged.turn_host, merged.turn_username, merged.turn_expires) == (
        "turn.server", "su", expiry)
    assert merge_ice_servers(None, announced) == announced
    assert merge_ice_servers(stun_only, None) == stun_only


# -- the command line ----------------------------------------------------------------------------


def test_cli_transport_ice(prosody: ProsodyServer, tmp_path: Path) -> None:
    """`jinglefs send --transport ice` between two processes: "ice-direct", encrypted, on
    both sides (the --json "transport" event) and the same bytes on disk."""
    src = make_file(tmp_path, "cli.bin", 1_000_003)
    run = cli_transfer(prosody, tmp_path, src, "ice", "--ice-address", "127.0.0.1")
    assert (run.inbox / "cli.bin").read_bytes() == src.read_bytes()
    for events in (run.sent, run.received):
        transport = [e for e in events if e["event"] == "transport"]
        assert [(e["path"], e["encrypted"]) for e in transport] == [("ice-direct", True)]


def test_cli_turn_password_never_on_the_command_line(prosody: ProsodyServer,
                                                     tmp_path: Path) -> None:
    """--turn without --turn-password-file is a usage error (exit 2) that never echoes the
    URL (someone may have typed a password into it)."""
    proc = jinglefs(prosody, "alice", tmp_path, "send", "--turn",
                "turn:alice:s3cret@turn.example.org", str(make_file(tmp_path, "x", 1)),
                prosody.jid("bob"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.EXIT_USAGE
    assert "--turn-password-file" in err and "s3cret" not in out + err


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI in-process against tests/fakes.py: no network, a private config dir and an
    in-memory keyring."""
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JINGLEFS_ACCOUNT", "alice@example.org")
    monkeypatch.setenv("JINGLEFS_PASSWORD", "env-pw")
    monkeypatch.setattr(cli, "_stdin_isatty", lambda: False)
    afile = tmp_path / "a.bin"
    afile.write_bytes(b"x" * 100)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield afile
    keyring.set_keyring(previous)


def test_cli_ice_options_reach_the_settings(cli_env: Path, tmp_path: Path) -> None:
    pw = tmp_path / "turn.pw"
    pw.write_text("c2VjcmV0/+=\n")
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org",
                     "--stun", "stun.example.org:19302",
                     "--turn", "turn:1700000000:alice@turn.example.org?transport=tcp",
                     "--turn-password-file", str(pw), "--ice-address", "127.0.0.1",
                     "--ice-relay-only"], connect=connect) == 0
    _, got = connect.calls[0]
    assert got.stun == ("stun.example.org:19302",)
    assert got.ice_host_addresses == ("127.0.0.1",) and got.ice_relay_only
    [turn] = got.turn
    assert parse_turn(turn) == TurnUrl("turn.example.org", 3478, "tcp", False,
                                       "1700000000:alice", "c2VjcmV0/+=")
    assert manual_ice_servers(got.stun, got.turn) == IceServers(
        stun_host="stun.example.org", stun_port=19302, turn_host="turn.example.org",
        turn_username="1700000000:alice", turn_password="c2VjcmV0/+=", turn_transport="tcp")


@pytest.mark.parametrize("argv, message", [
    (["--turn", "turn:u@t.example.org"], "--turn needs --turn-password-file"),
    (["--turn", "turn:t.example.org", "--turn-password-file", "{pw}"], "give the user name"),
    (["--turn", "stun:t.example.org", "--turn-password-file", "{pw}"], "turn: or turns:"),
    (["--turn-password-file", "{pw}"], "without a TURN server"),
    (["--stun", "stun.example.org:99999"], "bad port"),
    (["--ice-address", "eth0"], "is not an IP address"),
])
def test_cli_bad_ice_options(cli_env: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str], argv: list[str],
                             message: str) -> None:
    pw = tmp_path / "turn.pw"
    pw.write_text("pw\n")
    argv = [a.replace("{pw}", str(pw)) for a in argv]
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org", *argv],
                    connect=connect) == errors.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert connect.calls == []


def test_cli_stored_turn_server(cli_env: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """`account add --turn` stores the server without a password; send uses it only with
    --turn-password-file (and says so otherwise)."""
    assert cli.main(["account", "add", "alice@example.org", "--no-input",
                     "--turn", "turn:alice@turn.example.org:3479"]) == 0
    assert config.find_account("alice@example.org") is not None
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org"], connect=connect) == 0
    assert connect.calls[0][1].turn == ()
    assert "stored TURN server is not used without --turn-password-file" in \
        capsys.readouterr().err
    pw = tmp_path / "turn.pw"
    pw.write_text("pw\n")
    assert cli.main(["send", str(cli_env), "bob@example.org", "--turn-password-file",
                     str(pw)], connect=connect) == 0
    assert connect.calls[1][1].turn == ("turn:alice:pw@turn.example.org:3479?transport=udp",)
    # A URL that is not a TURN server is refused before anything is stored.
    assert cli.main(["account", "add", "carol@example.org", "--no-input",
                     "--turn", "turn:turn.example.org"]) == errors.EXIT_USAGE
    assert config.find_account("carol@example.org") is None
