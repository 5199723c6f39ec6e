"""Canaries for jinglefs/ice/_aiortc.py: one per aiortc/aioice internal the fence relies on.

Each fails with the internal's name and the installed versions when a release renames it,
changes its signature or its behaviour, so that an upgrade breaks here, with a reason, and
not somewhere deep in a transfer.  Real objects throughout (loopback only, no servers).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections import deque
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

import aioice.ice
import pytest
from aioice import Candidate, Connection
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCSctpTransport,
)

from jinglefs.ice import _aiortc as fence
from jinglefs.ice.channel import IceDataChannelStream, IceSession

LO = ["127.0.0.1"]
INSTALLED = {"aiortc": version("aiortc"), "aioice": version("aioice")}
BOUND = 10.0  # only to fail instead of hanging


def broken(internal: str, what: str) -> str:
    """The failure message: which internal, what changed, which versions."""
    installed = ", ".join(f"{k} {v}" for k, v in INSTALLED.items())
    checked = ", ".join(f"{k} {v}" for k, v in fence.CHECKED.items())
    return (f"{internal}: {what} (installed: {installed}; the fence was checked against "
            f"{checked}); see jinglefs/ice/_aiortc.py")


def require_attr(obj: object, name: str, kind: type | tuple[type, ...], internal: str) -> Any:
    assert hasattr(obj, name), broken(internal, f"{type(obj).__name__}.{name} is gone")
    value = getattr(obj, name)
    assert isinstance(value, kind), broken(
        internal, f"{type(obj).__name__}.{name} is now {type(value).__name__}")
    return value


def require_signature(owner: type, name: str, params: list[str], internal: str, *,
                      coroutine: bool) -> None:
    func = getattr(owner, name, None)
    assert callable(func), broken(internal, f"{owner.__name__}.{name} is gone")
    sig = list(inspect.signature(func).parameters.values())
    assert [p.name for p in sig[: len(params)]] == params and all(
        p.default is not inspect.Parameter.empty for p in sig[len(params):]
    ), broken(internal, f"signature is now {[p.name for p in sig]}, the fence calls it with "
                        f"{params}")
    assert inspect.iscoroutinefunction(func) is coroutine, broken(
        internal, "is no longer a coroutine" if coroutine else "became a coroutine")


def agent(cls: type[fence.JingleIceConnection] = fence.JingleIceConnection, *,
          controlling: bool) -> fence.JingleIceConnection:
    return cls(host_addresses=LO, relay_delay=0.0, ice_controlling=controlling, use_ipv6=False)


async def connect_agents(a: Connection, b: Connection) -> None:
    """Two aioice agents on loopback, candidates and end-of-candidates exchanged."""
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for x, y in ((a, b), (b, a)):
        x.remote_username, x.remote_password = y.local_username, y.local_password
        for c in y.local_candidates:
            await x.add_remote_candidate(c)
        await x.add_remote_candidate(None)
    async with asyncio.timeout(BOUND):
        await asyncio.gather(a.connect(), b.connect())


@pytest.fixture
async def sessions() -> AsyncIterator[tuple[IceSession, IceSession, IceDataChannelStream,
                                            IceDataChannelStream]]:
    """Two connected IceSessions on loopback (ICE + DTLS + SCTP + data channels)."""
    a = IceSession(initiator=True, host_addresses=LO)
    b = IceSession(initiator=False, host_addresses=LO)
    await b.add_remote(await a.gather())
    await a.add_remote(await b.gather())
    async with asyncio.timeout(BOUND):
        sa, sb = await asyncio.gather(a.connect(BOUND), b.connect(BOUND))
    yield a, b, sa, sb
    await a.close()
    await b.close()


# ------------------------------------------------------------------ aioice


def snapshot(conn: Connection) -> dict[str, str]:
    return {k: repr(v) for k, v in vars(conn).items() if not k.startswith("_jfs_")}


async def test_gather_candidates_copy_matches_aioice(monkeypatch: pytest.MonkeyPatch) -> None:
    """JingleIceConnection.gather_candidates() is aioice's with another address list: the
    same private state must change in the same way."""
    internal = "aioice Connection.gather_candidates (_local_candidates_start/_end, " \
               "_local_candidates, _components, _transport_policy, get_component_candidates)"
    theirs = Connection(ice_controlling=True, use_ipv6=False)
    for name, kind in (("_local_candidates_start", bool), ("_local_candidates_end", bool),
                       ("_local_candidates", list), ("_components", set),
                       ("_transport_policy", aioice.TransportPolicy)):
        require_attr(theirs, name, kind, internal)
    require_signature(Connection, "get_component_candidates", ["self", "component", "addresses"],
                      "aioice Connection.get_component_candidates", coroutine=True)
    ours = agent(controlling=True)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **kw: list(LO))
    try:
        before_theirs, before_ours = snapshot(theirs), snapshot(ours)
        await theirs.gather_candidates()
        await ours.gather_candidates()
        changed_theirs = {k for k, v in snapshot(theirs).items() if before_theirs.get(k) != v}
        changed_ours = {k for k, v in snapshot(ours).items() if before_ours.get(k) != v}
        assert changed_ours == changed_theirs, broken(
            internal, f"aioice's gathering now changes {sorted(changed_theirs)}, "
                      f"the copy {sorted(changed_ours)}")
        strip = [(c.type, c.host, c.component, c.priority, c.foundation)
                 for c in theirs.local_candidates]
        assert strip == [(c.type, c.host, c.component, c.priority, c.foundation)
                         for c in ours.local_candidates] == [
            ("host", "127.0.0.1", 1, strip[0][3], strip[0][4])], broken(
            internal, "the copy gathers other candidates than aioice")
        assert ours._local_candidates_start and ours._local_candidates_end
    finally:
        await theirs.close()
        await ours.close()


async def test_check_start_runs_every_check_and_nominated_pair() -> None:
    """check_start(pair) is where every check runs (the relay hold sits in front of it), and
    _nominated holds the nominated CandidatePair once connect() returned."""
    started: list[Any] = []

    class Recording(fence.JingleIceConnection):
        async def check_start(self, pair: Any) -> None:
            started.append(pair)
            await super().check_start(pair)

    require_signature(Connection, "check_start", ["self", "pair"],
                      "aioice Connection.check_start", coroutine=True)
    a, b = agent(Recording, controlling=True), agent(Recording, controlling=False)
    try:
        require_attr(a, "_nominated", dict, "aioice Connection._nominated")
        assert fence.nominated_pair(a) is None
        await connect_agents(a, b)
        assert started, broken("aioice Connection.check_start",
                               "connect() ran no check through it (the relay hold is bypassed)")
        for pair in started:
            for name in ("local_candidate", "remote_candidate", "state"):
                require_attr(pair, name, object, f"aioice CandidatePair.{name}")
        nominated = require_attr(a, "_nominated", dict, "aioice Connection._nominated")
        assert set(nominated) == {1}, broken("aioice Connection._nominated",
                                             f"keys are {sorted(nominated)}, not components")
        pair = fence.nominated_pair(a)
        assert pair is not None and all(isinstance(c, Candidate) for c in pair), broken(
            "aioice Connection._nominated", "no (local, remote) candidates after connect()")
        assert (pair[0].host, pair[0].port) == (a.local_candidates[0].host,
                                                 a.local_candidates[0].port)
        assert (pair[1].host, pair[1].port) == (b.local_candidates[0].host,
                                                 b.local_candidates[0].port)
    finally:
        await a.close()
        await b.close()


async def test_check_list_and_remote_candidates_expected() -> None:
    """direct_pairs_exhausted() reads _remote_candidates_expected(), _check_list and
    CandidatePair.State.FAILED."""
    internal = "aioice Connection._remote_candidates_expected / _check_list / " \
               "CandidatePair.State.FAILED"
    require_attr(aioice.ice.CandidatePair.State, "FAILED", aioice.ice.CandidatePair.State,
                 internal)
    require_signature(Connection, "_remote_candidates_expected", ["self"], internal,
                      coroutine=False)
    conn = agent(controlling=True)
    try:
        await conn.gather_candidates()
        require_attr(conn, "_check_list", list, internal)
        assert conn._remote_candidates_expected() is True, broken(
            internal, "expects no candidates before end-of-candidates")
        assert conn.direct_pairs_exhausted() is False
        # ::1 pairs with nothing gathered on 127.0.0.1: no pair, nothing left to try.
        await conn.add_remote_candidate(
            Candidate("1", 1, "udp", 1, "::1", 9, "host"))
        assert conn._check_list == [] and conn.direct_pairs_exhausted() is False
        await conn.add_remote_candidate(None)
        assert conn._remote_candidates_expected() is False, broken(
            internal, "still expects candidates after end-of-candidates")
        assert conn.direct_pairs_exhausted() is True
    finally:
        await conn.close()


# ------------------------------------------------------------------ aiortc: ICE transport


async def test_gatherer_connection_swap() -> None:
    internal = "aiortc RTCIceGatherer._connection (read by RTCIceTransport.__init__)"
    assert "iceServers" in inspect.signature(RTCIceGatherer).parameters, broken(
        "aiortc RTCIceGatherer(iceServers=...)", "no longer takes iceServers")
    require_attr(RTCIceGatherer(iceServers=[]), "_connection", Connection, internal)
    conn = agent(controlling=True)
    transport = fence.ice_transport_for(conn)
    try:
        assert isinstance(transport, RTCIceTransport)
        params = transport.iceGatherer.getLocalParameters()
        assert (params.usernameFragment, params.password) == (
            conn.local_username, conn.local_password), broken(
            internal, "the gatherer does not use the swapped-in connection")
        assert transport.role == "controlling", broken(
            internal, "the transport does not use the swapped-in connection")
        await transport.iceGatherer.gather()
        assert [c.ip for c in transport.iceGatherer.getLocalCandidates()] == LO, broken(
            internal, "gathering did not run on the swapped-in connection")
    finally:
        await transport.stop()


# ------------------------------------------------------------------ aiortc: DTLS


def _dtls() -> RTCDtlsTransport:
    ice = fence.ice_transport_for(agent(controlling=True))
    return RTCDtlsTransport(ice, [RTCCertificate.generateCertificate()])


async def test_set_dtls_role() -> None:
    internal = "aiortc RTCDtlsTransport._set_role (read by start() and RTCSctpTransport.is_server)"
    require_signature(RTCDtlsTransport, "_set_role", ["self", "role"], internal,
                      coroutine=False)
    for client in (True, False):
        dtls = _dtls()
        fence.set_dtls_role(dtls, client=client)
        assert RTCSctpTransport(dtls).is_server is (not client), broken(
            internal, f"a DTLS {'client' if client else 'server'} is not one for SCTP")


def test_fingerprint_hashes() -> None:
    internal = "aiortc.rtcdtlstransport.X509_DIGEST_ALGORITHMS"
    offered = {f.algorithm for f in RTCCertificate.generateCertificate().getFingerprints()}
    assert fence.SUPPORTED_FINGERPRINT_HASHES == offered and "sha-256" in offered, broken(
        internal, f"{sorted(fence.SUPPORTED_FINGERPRINT_HASHES)} vs certificates' {offered}")


async def test_peer_certificate_digest_and_close_notify(
        sessions: tuple[IceSession, IceSession, IceDataChannelStream, IceDataChannelStream]
) -> None:
    a, b, sa, sb = sessions
    assert a._dtls is not None and b._dtls is not None
    internal = "aiortc RTCDtlsTransport._ssl + rtcdtlstransport.certificate_digest"
    assert getattr(_dtls(), "_ssl", "gone") is None, broken(internal, "no _ssl before start()")
    theirs = b.local_fingerprint
    assert fence.peer_certificate_digest(a._dtls, theirs.hash) == theirs.value.upper(), \
        broken(internal, "the peer certificate's digest is not the peer's fingerprint")
    assert fence.peer_certificate_digest(a._dtls, "md5") is None

    internal = "aiortc RTCDtlsTransport._write_ssl (close_notify)"
    require_signature(RTCDtlsTransport, "_write_ssl", ["self"], internal, coroutine=True)
    await fence.send_close_notify(a._dtls)
    async with asyncio.timeout(BOUND):
        assert await sb.receive(10) == b"", broken(internal, "the peer's stream did not end")
    assert b._dtls.state == "closed", broken(internal, f"the peer's DTLS is {b._dtls.state}")


# ------------------------------------------------------------------ aiortc: SCTP


async def test_sctp_internals_on_a_fresh_transport() -> None:
    sctp = RTCSctpTransport(_dtls())
    require_attr(sctp, "_sack_misordered", set, "aiortc RTCSctpTransport._sack_misordered")
    require_attr(sctp, "_sack_duplicates", list, "aiortc RTCSctpTransport._sack_duplicates")
    require_attr(sctp, "_sack_needed", bool, "aiortc RTCSctpTransport._sack_needed")
    require_signature(RTCSctpTransport, "_send_sack", ["self"],
                      "aiortc RTCSctpTransport._send_sack", coroutine=True)
    for name in ("_data_channel_queue", "_outbound_queue", "_sent_queue"):
        require_attr(sctp, name, deque, f"aiortc RTCSctpTransport.{name}")
    assert fence.sctp_idle(sctp)


async def test_delayed_sack_hook_and_idle_queues(
        sessions: tuple[IceSession, IceSession, IceDataChannelStream, IceDataChannelStream]
) -> None:
    a, b, sa, sb = sessions
    assert isinstance(b._sctp, fence.DelayedSackSctpTransport) and a._sctp is not None
    calls = 0
    held = 0
    base = b._sctp._send_sack

    async def counting() -> None:
        nonlocal calls, held
        calls += 1
        await base()
        held += b._sctp.sack_held  # type: ignore[union-attr]

    b._sctp._send_sack = counting  # type: ignore[method-assign]
    data = os.urandom(300_000)
    sa._tx.send(data[:200_000])
    assert not fence.sctp_idle(a._sctp), broken(
        "aiortc RTCSctpTransport._data_channel_queue/_outbound_queue/_sent_queue",
        "a message just sent is in none of them")
    await sa.send(data[200_000:])
    got = b""
    async with asyncio.timeout(BOUND):
        while len(got) < len(data):
            got += await sb.receive(1 << 20)
    assert got == data
    assert calls > 0, broken("aiortc RTCSctpTransport._send_sack",
                             "not called for received data (delayed SACKs are off)")
    assert held > 0, broken("aiortc RTCSctpTransport._sack_misordered/_sack_duplicates",
                            "no SACK was ever held")
    await sa.drain()
    assert fence.sctp_idle(a._sctp), broken(
        "aiortc RTCSctpTransport._data_channel_queue/_outbound_queue/_sent_queue",
        "not empty once everything was acknowledged")


async def test_gathering_waits_gather_timeout_for_servers(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """JingleIceConnection gathers with the fence's STUN/TURN wait (GATHER_TIMEOUT), not
    aioice's 5 s: gather_candidates() must still reach get_component_candidates through the
    override, for the copy (host_addresses) and aioice's own loop alike."""
    internal = "aioice Connection.get_component_candidates(component, addresses, timeout)"
    require_signature(Connection, "get_component_candidates",
                      ["self", "component", "addresses", "timeout"], internal, coroutine=True)
    seen: list[float] = []
    real = Connection.get_component_candidates

    async def spy(self: Connection, component: int, addresses: list[str],
                  timeout: float = 5) -> list[Candidate]:
        seen.append(timeout)
        return await real(self, component, addresses, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(Connection, "get_component_candidates", spy)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **kw: list(LO))
    fixed = agent(controlling=True)
    default = fence.JingleIceConnection(host_addresses=None, relay_delay=0.0,
                                        ice_controlling=True, use_ipv6=False)
    try:
        await fixed.gather_candidates()
        await default.gather_candidates()
    finally:
        await fixed.close()
        await default.close()
    assert seen == [fence.GATHER_TIMEOUT, fence.GATHER_TIMEOUT] and fence.GATHER_TIMEOUT < 5, \
        broken(internal, f"gathering waited {seen} s")
