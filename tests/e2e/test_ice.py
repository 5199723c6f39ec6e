"""ICE data channels (Conversations' webrtc-datachannel:1, docs/protocol.md §6.4) end to end.

Two real jinglefs clients on the real loopback Prosody.  aioice and libjuice leave 127.0.0.1
out when they gather, so the clients gather on ``Settings.ice_host_addresses=("127.0.0.1",)``
(the CLI's ``--ice-address``).  Every test that is about the data channel runs with each
implementation (``Settings.ice_backend``: aiortc, native = libdatachannel; the native one is
skipped only where its wheel cannot exist, tests/ice/backends.py), and the two talk to each
other (native on one side, aiortc on the other).  Covered: files over ICE (path, encryption,
bytes, hashes), the ladder's choice, the fallback to SOCKS5 when ICE cannot connect or the
DTLS fingerprint is wrong, trickled candidates (ours after a slow gathering, the peer's
before we accept), the TURN relay announced by XEP-0215, sockets released however a session
ends, and the CLI.  What needs no server (STUN/TURN parsing and merging, the CLI's ICE
options) is in tests/test_stun_turn.py, tests/transports/test_ice_servers.py and
tests/test_cli_ice.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from jinglefs import errors
from jinglefs.client import Client, advertised_features
from jinglefs.events import PathKind
from jinglefs.ice import negotiator as ice_negotiation
from jinglefs.ice.backend import IceBackend
from jinglefs.ice.channel import IceHooks
from jinglefs.ice.negotiator import (
    ICE_SERVERS_SERVICE,
    UDP_PROBE_SERVICE,
    IceNegotiator,
)
from jinglefs.ice.protocol import (
    DtlsFingerprint,
    IceCandidate,
    IceServers,
    WebRtcDataChannelTransport,
)
from jinglefs.jingle import ns
from jinglefs.jingle.model import Action, Jingle
from jinglefs.jingle.transport import TransportPayload
from jinglefs.streams import ByteStream
from tests.ice.backends import BACKENDS, native_module, needs_native, session_class
from tests.servers.coturn import CoturnServer
from tests.servers.prosody import ProsodyServer

from .cli_run import cli_transfer
from .conftest import (
    BOUND,
    first_offer,
    logged_in,
    login,
    make_file,
    paths,
    settings,
    settle,
    transfer_file,
    two_clients,
)

pytestmark = pytest.mark.e2e
LO = ("127.0.0.1",)
#: direct_first=False: on loopback the fast path would replace ICE by SOCKS5 direct at
#: once (tests/e2e/test_fast_path.py); these tests are about the ICE rung itself.
ICE_LO = settings(ice_host_addresses=LO, direct_first=False)
#: Settings.ice_backend -> the implementation named in the transport event's detail.
IMPLEMENTATION = {"aiortc": "aiortc", "native": "libdatachannel"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The ICE implementation both clients use (Settings.ice_backend)."""
    value: str = request.param
    return value


@pytest.fixture
def ice_lo(backend: str) -> Any:
    return replace(ICE_LO, ice_backend=backend)


def patch_session_class(monkeypatch: pytest.MonkeyPatch, backend: str, cls: type) -> None:
    """Make the negotiators create ``cls`` where they would create ``backend``'s sessions."""
    if backend == "aiortc":
        monkeypatch.setattr(ice_negotiation, "IceSession", cls)
    else:
        monkeypatch.setattr(native_module(), "NativeIceSession", cls)


# -- helpers ---------------------------------------------------------------------------


@dataclass
class IceSpy:
    """Every IceSession the negotiators create, what its connect() gave, and its sockets."""

    sessions: list[IceBackend] = field(default_factory=list)
    #: (session, stream) for each connect() that returned a stream
    streams: list[tuple[IceBackend, ByteStream]] = field(default_factory=list)
    #: (session, exception) for each connect() that raised
    failures: list[tuple[IceBackend, BaseException]] = field(default_factory=list)

    def of(self, initiator: bool) -> list[IceBackend]:
        return [s for s in self.sessions if s.initiator is initiator]


def recording(spy: IceSpy, base: Any) -> type:
    """``base`` (a session class) that reports to ``spy``."""

    class Recording(base):  # type: ignore[misc, valid-type]
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

    return Recording


@pytest.fixture
def ice_spy(monkeypatch: pytest.MonkeyPatch) -> IceSpy:
    """Records the sessions of both implementations (whichever the test's clients use)."""
    spy = IceSpy()
    for name in ("aiortc", "native"):
        if name == "native" and request_no_native():
            continue
        patch_session_class(monkeypatch, name, recording(spy, session_class(name)))
    return spy


def request_no_native() -> bool:
    from tests.ice.backends import NO_WHEEL

    return NO_WHEEL


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


def wire(log: list[tuple[str, Jingle]]) -> list[tuple[str, Action, str | None]]:
    return [(jid, j.action, type(j.contents[0].transport).__name__ if j.contents else None)
            for jid, j in log]


def ice_payloads(log: list[tuple[str, Jingle]], jid: str, action: Action
                 ) -> list[WebRtcDataChannelTransport]:
    return [c.transport for sender, j in log if sender == jid and j.action is action
            for c in j.contents if isinstance(c.transport, WebRtcDataChannelTransport)]


@pytest.fixture
async def pair(prosody: ProsodyServer, ice_lo: Any) -> AsyncIterator[tuple[Client, Client]]:
    async with two_clients(prosody, "ice", ice_lo) as clients:
        yield clients


@pytest.fixture
def silent_udp() -> Iterator[int]:
    """A bound UDP port that never answers (a STUN server or peer behind a firewall)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch, silent_udp: int, backend: str) -> None:
    """Both sides advertise candidates that lead nowhere (UDP dropped on the way): every
    connectivity check goes to a port that never answers, so neither side learns a
    peer-reflexive address either."""
    cls: Any = session_class(backend)
    real_gather = cls.gather

    async def gather(self: IceBackend) -> WebRtcDataChannelTransport:
        payload = await real_gather(self)
        nowhere = tuple(replace(c, ip="127.0.0.1", port=silent_udp, id=f"{c.id}x")
                        for c in payload.candidates)
        return replace(payload, ice=replace(payload.ice, candidates=nowhere))

    monkeypatch.setattr(cls, "gather", gather)


@pytest.fixture
def no_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """ICE candidates that show no direct path (hosts behind NATs): the ladder does not
    jump to SOCKS5 direct (jinglefs/ladder.py fast_path), so ICE itself is tried."""
    monkeypatch.setattr(IceNegotiator, "direct_path", lambda self: None)


def tampered(payload: WebRtcDataChannelTransport) -> WebRtcDataChannelTransport:
    """The same payload with another DTLS fingerprint (XEP-0320): a man in the middle."""
    fp = payload.fingerprint
    assert fp is not None
    first = "00" if not fp.value.startswith("00") else "01"
    bad = DtlsFingerprint(fp.hash, first + fp.value[2:], fp.setup)
    return replace(payload, ice=replace(payload.ice, fingerprint=bad))


MISMATCH = ("DTLS fingerprint mismatch: the peer's certificate is not the one announced in"
            " Jingle (XEP-0320)")


def what_the_checker_found(checker: IceBackend, spy: IceSpy) -> str:
    """Why the checker's connect() failed.  libdatachannel checks as soon as both
    descriptions are set, so the other side can fail on the checker's alert and end the
    session while the checker's connect() still waits (it is cancelled): the native session
    keeps what it found all the same (``NativeIceSession.failure``)."""
    [error] = [e for s, e in spy.failures if s is checker]
    if isinstance(error, asyncio.CancelledError):
        assert checker.implementation == "libdatachannel", "aiortc checks inside connect()"
        error = checker.failure  # type: ignore[attr-defined]
    return str(error)


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
                            size: int, backend: str) -> None:
    alice, bob = pair
    before = udp_sockets()
    _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, size, transport="ice")
    for transfer in (sent, got):
        [selected] = await paths(transfer)
        assert selected.path is PathKind.ICE_DIRECT and selected.encrypted
        # "host 127.0.0.1:40123 -> host 127.0.0.1:51234 (aiortc)": the nominated pair
        # (RFC 8445 §8) and the implementation that carried it
        local, arrow, remote = selected.detail.partition(" -> ")
        assert arrow and local.startswith("host 127.0.0.1:")
        assert remote.startswith("host 127.0.0.1:")
        assert remote.endswith(f" ({IMPLEMENTATION[backend]})")
    assert [s.initiator for s in ice_spy.sessions] == [True, False]
    assert {s.implementation for s in ice_spy.sessions} == {IMPLEMENTATION[backend]}
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
    # docs/protocol.md §6.4 / §15.15: what Conversations requires on the wire.
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
        jingle_log: list[tuple[str, Jingle]], ice_lo: Any, no_fast_path: None) -> None:
    quick = replace(ice_lo, timeouts=replace(ICE_LO.timeouts, transport=4))
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
        # The transport-replace comes after session-accept (docs/protocol.md §15.10).
        accept = actions.index((bob.jid, Action.SESSION_ACCEPT, "WebRtcDataChannelTransport"))
        replace_at = actions.index((alice.jid, Action.TRANSPORT_REPLACE, "S5bTransport"))
        assert accept < replace_at
        assert (bob.jid, Action.TRANSPORT_ACCEPT, "S5bTransport") in actions
        assert ice_spy.streams == []  # no ICE byte
        # Both connects ended without a stream: the negotiator gave up on its own limit
        # (jinglefs.ice.negotiator NO_PAIR_LIMIT cancels the backend's connect).
        assert len(ice_spy.failures) == 2
        await settle(alice, bob)
        await assert_udp_released(before)
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_forced_ice_that_fails_says_why(prosody: ProsodyServer, tmp_path: Path,
                                              black_hole: None, ice_lo: Any) -> None:
    quick = replace(ice_lo, timeouts=replace(ICE_LO.timeouts, transport=3))
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
        monkeypatch: pytest.MonkeyPatch, victim: str, no_fast_path: None) -> None:
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
    assert what_the_checker_found(checker, ice_spy) == MISMATCH
    await settle(alice, bob)
    await assert_udp_released(before)


async def test_relay_only_without_turn_fails_fast(pair: tuple[Client, Client],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Relay-only ICE with no TURN server at all (the shared Prosody announces none) cannot
    work: the negotiator says so instead of waiting for the transport timeout."""
    alice, bob = pair
    relay_only = replace(alice.settings, ice_relay_only=True)
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
    assert session.implementation == alice.settings.ice_backend.replace(
        "native", "libdatachannel")
    assert udp_sockets() - before
    await offer.decline()
    with pytest.raises(errors.Declined):
        await asyncio.wait_for(sent.wait(), BOUND)
    await settle(alice)
    await assert_udp_released(before)


# -- trickle (XEP-0176) ------------------------------------------------------------------------


async def test_candidates_trickle_when_gathering_is_slow(
        pair: tuple[Client, Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        jingle_log: list[tuple[str, Jingle]], backend: str) -> None:
    """Gathering that outlasts OFFER_GATHER_WAIT (a STUN or TURN server that does not answer
    holds aioice's for 5 s): the offer leaves without candidates (ufrag, pwd and fingerprint
    only) and they follow by transport-info.  Alice's gathering is held (IceHooks.gather_gate)
    until bob has the offer, so the offer cannot carry any."""
    alice, bob = pair
    gathered = asyncio.Event()
    sessions: list[IceBackend] = []
    base: Any = session_class(backend)

    class HeldGathering(base):  # type: ignore[misc, valid-type]
        def __init__(self, **kw: Any) -> None:
            if kw["initiator"]:
                kw["hooks"] = IceHooks(gather_gate=gathered.wait)
            super().__init__(**kw)
            sessions.append(self)
            self.candidates: tuple[IceCandidate, ...] = ()

        async def gather(self) -> WebRtcDataChannelTransport:
            payload = await super().gather()
            self.candidates = payload.candidates  # closing forgets them
            return payload

    patch_session_class(monkeypatch, backend, HeldGathering)
    src = make_file(tmp_path, "slow.bin", 100_000)
    [sent] = await alice.send_files(bob.jid, [src], transport="ice")
    offer = await first_offer(bob)
    [initiate] = ice_payloads(jingle_log, alice.jid, Action.SESSION_INITIATE)
    assert initiate.candidates == () and initiate.fingerprint is not None
    assert initiate.ice.ufrag and initiate.ice.pwd
    assert ice_payloads(jingle_log, alice.jid, Action.TRANSPORT_INFO) == []
    gathered.set()
    (tmp_path / "in").mkdir()
    [got] = await offer.accept(tmp_path / "in")
    await asyncio.wait_for(got.wait(), BOUND)
    await asyncio.wait_for(sent.wait(), BOUND)
    assert (tmp_path / "in" / "slow.bin").read_bytes() == src.read_bytes()
    for transfer in (sent, got):
        assert [e.path for e in await paths(transfer)] == [PathKind.ICE_DIRECT]
    trickled = ice_payloads(jingle_log, alice.jid, Action.TRANSPORT_INFO)
    assert [c.ip for t in trickled for c in t.candidates] == ["127.0.0.1"]
    assert all(t.ice.ufrag == initiate.ice.ufrag for t in trickled)
    # Bob sent each of its candidates once: in session-accept, or trickled after it.
    initiator, responder = sessions
    assert initiator.initiator and not responder.initiator
    assert isinstance(responder, HeldGathering) and responder.candidates
    [answer] = ice_payloads(jingle_log, bob.jid, Action.SESSION_ACCEPT)
    bob_sent = [(c.ip, c.port) for p in (answer, *ice_payloads(
        jingle_log, bob.jid, Action.TRANSPORT_INFO)) for c in p.candidates]
    assert sorted(bob_sent) == sorted((c.ip, c.port) for c in responder.candidates)


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
    """Bob accepts only once it has acknowledged alice's early transport-info, which it does
    after handling it (XEP-0166 §6.2: the ack and the handling are one step): the candidates
    reach bob before it accepts, always."""
    alice, bob = pair
    monkeypatch.setitem(alice.factories, "ice", _EarlyTrickle)
    acked = asyncio.Event()
    connection_class = type(alice.connection)
    real_send_iq = connection_class.send_iq

    async def send_iq(self: Any, to: str, payload: Any, **kw: Any) -> Any:
        result = await real_send_iq(self, to, payload, **kw)
        if (self.jid == alice.jid and payload.tag == f"{{{ns.JINGLE}}}jingle"
                and payload.get("action") == "transport-info"):
            acked.set()
        return result

    monkeypatch.setattr(connection_class, "send_iq", send_iq)
    src = make_file(tmp_path, "early.bin", 50_000)
    [sent] = await alice.send_files(bob.jid, [src], transport="ice")
    offer = await first_offer(bob)
    await asyncio.wait_for(acked.wait(), BOUND)
    assert any(d._early_info for d in bob._drivers.values())  # kept until bob accepts
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
                # relay-only is aiortc's, whatever is installed (jinglefs/ice/backend.py)
                assert selected.detail.endswith(" (aiortc)")
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


@needs_native
async def test_native_relays_through_turn_announced_by_the_server(
        prosody_factory: Callable[..., ProsodyServer], coturn: CoturnServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, ice_spy: IceSpy) -> None:
    """The native data channel relays through coturn over UDP with the credentials Prosody
    hands out (XEP-0215 announces TURN over UDP and TCP: native is taken once a STUN
    binding over UDP reached the server).  Both sides announce their relay candidates only
    (hosts behind NATs whose direct paths do not work), so alice's pair ends on bob's
    allocation."""
    server = prosody_factory(turn=coturn, proxy65=False)
    native = native_module()
    real_gather = native.NativeIceSession.gather

    async def relays_only(self: IceBackend) -> WebRtcDataChannelTransport:
        payload = await real_gather(self)
        kept = tuple(c for c in payload.candidates if c.type == "relay")
        return replace(payload, ice=replace(payload.ice, candidates=kept))

    monkeypatch.setattr(native.NativeIceSession, "gather", relays_only)
    auto = settings(ice_host_addresses=LO)  # ice_backend="auto"
    alice = await login(server, "alice", resource="nturn-a", settings=auto)
    bob = await login(server, "bob", resource="nturn-b", settings=auto)
    before = udp_sockets()
    try:
        _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 700_001,
                                                 transport="ice")
        [selected] = await paths(sent)
        assert selected.path is PathKind.ICE_RELAY and selected.encrypted
        assert " -> relay 127.0.0.1:" in selected.detail
        assert selected.detail.endswith(" (libdatachannel)")
        [received] = await paths(got)
        assert received.detail.endswith(" (libdatachannel)")
        assert {s.implementation for s in ice_spy.sessions} == {"libdatachannel"}
        for client in (alice, bob):  # UDP reached coturn: asked once per client
            assert client.services[UDP_PROBE_SERVICE].keys() == {  # type: ignore[attr-defined]
                (coturn.host, coturn.port)}
        await settle(alice, bob)
        await assert_udp_released(before)
    finally:
        await alice.aclose()
        await bob.aclose()


# -- the two implementations together --------------------------------------------------------


@needs_native
@pytest.mark.parametrize("alice_backend,bob_backend", [("native", "aiortc"), ("aiortc", "native")])
@pytest.mark.parametrize("victim", [None, "initiator", "responder"])
async def test_native_and_aiortc_interoperate(
        prosody: ProsodyServer, tmp_path: Path, ice_spy: IceSpy,
        monkeypatch: pytest.MonkeyPatch, alice_backend: str, bob_backend: str,
        victim: str | None) -> None:
    """libdatachannel on one side, aiortc on the other: the file crosses (each side names
    its own implementation), and a forged fingerprint is caught by whichever checks it."""
    alice_settings = replace(ICE_LO, ice_backend=alice_backend)
    bob_settings = replace(ICE_LO, ice_backend=bob_backend)
    async with (logged_in(prosody, "alice", "mix-a", alice_settings) as alice,
                logged_in(prosody, "bob", "mix-b", bob_settings) as bob):
        if victim is None:
            _, _, _, sent, got = await transfer_file(alice, bob, tmp_path, 2_000_003,
                                                     transport="ice")
            for transfer, backend in ((sent, alice_backend), (got, bob_backend)):
                [selected] = await paths(transfer)
                assert selected.path is PathKind.ICE_DIRECT
                assert selected.detail.endswith(f" ({IMPLEMENTATION[backend]})")
            return
        if victim == "responder":
            monkeypatch.setitem(alice.factories, "ice", _TamperedOffer)
        else:
            monkeypatch.setitem(bob.negotiators, ns.WEBRTC_DC, _TamperedAnswer)
        src = make_file(tmp_path, "forged.bin", 1000)
        (tmp_path / "in").mkdir()
        [sent] = await alice.send_files(bob.jid, [src], transport="ice")
        [got] = await (await first_offer(bob)).accept(tmp_path / "in")
        with pytest.raises(errors.TransportError):
            await asyncio.wait_for(sent.wait(), BOUND)
        with pytest.raises(errors.TransportError):
            await asyncio.wait_for(got.wait(), BOUND)
        assert ice_spy.streams == []  # no stream on either side: no byte over ICE
        assert not (tmp_path / "in" / "forged.bin").exists()
        [checker] = ice_spy.of(initiator=victim == "initiator")
        assert what_the_checker_found(checker, ice_spy) == MISMATCH
        await settle(alice, bob)


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
