"""The fence: every use of aiortc and aioice internals, and nothing else.

jinglefs drives aiortc's ORTC objects (no ``RTCPeerConnection``, no SDP) from Jingle payloads,
and a few things that needs are not in either library's public API.  They all live here, each
with why it is needed; :mod:`.channel` uses only public API plus this module
(``tests/test_architecture.py`` checks that).  ``tests/ice/test_aiortc_fence.py`` has one
canary per item: it fails naming the internal and the installed version when a release
renames, re-signs or changes it.  pyproject.toml pins ``aiortc~=1.16`` and ``aioice~=0.13``.

Checked against :data:`CHECKED` (aiortc 1.16.0, aioice 0.13.0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aioice import Candidate, Connection, TransportPolicy
from aiortc import RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCSctpTransport
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS, certificate_digest

__all__ = [
    "CHECKED",
    "SUPPORTED_FINGERPRINT_HASHES",
    "DelayedSackSctpTransport",
    "JingleIceConnection",
    "ice_transport_for",
    "nominated_pair",
    "peer_certificate_digest",
    "sctp_idle",
    "send_close_notify",
    "set_dtls_role",
]

logger = logging.getLogger(__name__)

#: The releases every item below was read against (and the canaries last passed on).
CHECKED = {"aiortc": "1.16.0", "aioice": "0.13.0"}

#: Longest wait for a delayed SACK (RFC 4960 §6.2 allows 200 ms).
SACK_DELAY = 0.01
#: How long gathering waits for the STUN and TURN servers (aioice: 5 s, the ``timeout`` of
#: ``Connection.get_component_candidates``; aioice reports every candidate at once, so the
#: host candidates wait too).  A STUN answer takes one round trip, a TURN/TCP allocation
#: three (TCP, 401, Allocate): 2-40 ms in the NAT lab, ≈1 s at a 300 ms RTT.  A server that
#: has not answered in 2.5 s will not: without this the ladder lost 5 s on every network
#: that drops UDP before ICE could fail or relay (README "How the ladder decides").
GATHER_TIMEOUT = 2.5


# ------------------------------------------------------------------ aioice: the ICE agent


def _involves_relay(pair: Any) -> bool:
    return bool(pair.local_candidate.type == "relay" or pair.remote_candidate.type == "relay")


class JingleIceConnection(Connection):
    """aioice's ``Connection`` with fixed host addresses and "direct before relay".

    * ``host_addresses``: gather host candidates on these addresses only.  aioice's
      ``gather_candidates()`` takes its list from ``get_host_addresses()``, which skips
      127.0.0.1 and cannot be told otherwise; this override is the same loop over
      ``_components`` with our list, setting ``_local_candidates_start/_end`` and
      ``_local_candidates`` as aioice does (checked: aioice 0.13.0).
    * **Direct before relay** (see :mod:`.channel`): as controlling agent, hold the checks of
      every pair that involves a relay candidate for ``relay_delay`` seconds after
      :meth:`connect` starts, or until every direct pair failed and end-of-candidates was
      reached.  aioice has no hook for this; ``check_start(pair)`` is the coroutine every
      check (ordinary and triggered) runs in its own task (checked: aioice 0.13.0).  Held pairs
      stay Waiting, so a direct nomination cancels them (RFC 8445 §8.1.2).  Deciding
      "every direct pair failed" reads ``_check_list`` (``CandidatePair.state``) and
      ``_remote_candidates_expected()`` (checked: aioice 0.13.0).
    * ``relay_gate``: when given, awaited by each held relay check instead of the
      ``relay_delay`` hold (tests decide when relay checks may start).
    * Gathering waits :data:`GATHER_TIMEOUT` for STUN/TURN instead of aioice's 5 s:
      ``get_component_candidates(component, addresses, timeout)`` is what
      ``gather_candidates()`` (aioice's and the copy) calls per component (checked: aioice
      0.13.0).
    """

    def __init__(
        self,
        *,
        host_addresses: Sequence[str] | None,
        relay_delay: float,
        relay_gate: Callable[[], Awaitable[object]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._jfs_host_addresses = list(host_addresses) if host_addresses is not None else None
        self._jfs_relay_delay = relay_delay
        self._jfs_relay_gate = relay_gate
        self._jfs_relay_release_at: float | None = None

    async def gather_candidates(self) -> None:
        if self._jfs_host_addresses is None:
            await super().gather_candidates()
            return
        # aioice's gather_candidates() except for the address list.
        if self._local_candidates_start:
            return
        self._local_candidates_start = True
        all_ = self._transport_policy == TransportPolicy.ALL
        addresses = self._jfs_host_addresses if all_ else []
        for component in sorted(self._components):
            self._local_candidates += await self.get_component_candidates(
                component=component, addresses=addresses
            )
        self._local_candidates_end = True

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: float = GATHER_TIMEOUT) -> list[Candidate]:
        return await super().get_component_candidates(
            component=component, addresses=addresses, timeout=timeout)  # type: ignore[arg-type]

    async def connect(self) -> None:
        self._jfs_relay_release_at = asyncio.get_running_loop().time() + self._jfs_relay_delay
        await super().connect()

    def direct_pairs_exhausted(self) -> bool:
        """No more remote candidates will come and every direct pair failed."""
        if self._remote_candidates_expected():
            return False
        failed = [p.state == p.State.FAILED for p in self._check_list if not _involves_relay(p)]
        return all(failed)

    async def check_start(self, pair: Any) -> None:
        if (
            self.ice_controlling
            and self._jfs_relay_release_at is not None
            and _involves_relay(pair)
        ):
            # The pair stays Waiting: a direct nomination cancels this task (RFC 8445 §8.1.2).
            if self._jfs_relay_gate is not None:
                await self._jfs_relay_gate()
            else:
                loop = asyncio.get_running_loop()
                release_at = self._jfs_relay_release_at
                while loop.time() < release_at and not self.direct_pairs_exhausted():
                    await asyncio.sleep(min(0.05, release_at - loop.time()))
        await super().check_start(pair)


def nominated_pair(conn: Connection, component: int = 1) -> tuple[Candidate, Candidate] | None:
    """(local, remote) candidate of the nominated pair, None before ICE completes.

    aioice keeps it in ``Connection._nominated`` (component -> ``CandidatePair``) and has no
    public accessor; aiortc's RTCIceTransport neither (checked: aioice 0.13.0).
    """
    pair = conn._nominated.get(component)
    if pair is None:
        return None
    return pair.local_candidate, pair.remote_candidate


# ------------------------------------------------------------------ aiortc: ICE transport


def ice_transport_for(conn: Connection) -> RTCIceTransport:
    """An RTCIceTransport (with its RTCIceGatherer, ``.iceGatherer``) that runs ``conn``.

    RTCIceGatherer builds its own aioice Connection from RTCIceServer URLs: no host address
    choice, no relay hold, one TURN transport per URL.  Ours is swapped in as
    ``RTCIceGatherer._connection`` before RTCIceTransport.__init__ copies it; the ICE role is
    the connection's ``ice_controlling``, which only RTCPeerConnection would change
    (checked: aiortc 1.16.0).
    """
    gatherer = RTCIceGatherer(iceServers=[])
    gatherer._connection = conn
    return RTCIceTransport(gatherer)


# ------------------------------------------------------------------ aiortc: DTLS

#: Fingerprint hashes aiortc's DTLS checks (RFC 8122 §5): the keys of
#: ``aiortc.rtcdtlstransport.X509_DIGEST_ALGORITHMS`` (sha-256/384/512; checked: aiortc 1.16.0).
#: A Jingle fingerprint with another hash would fail as a "mismatch"; we refuse it first.
SUPPORTED_FINGERPRINT_HASHES: frozenset[str] = frozenset(X509_DIGEST_ALGORITHMS)


def set_dtls_role(dtls: RTCDtlsTransport, *, client: bool) -> None:
    """Make ``dtls`` the DTLS client or server before ``start()``.

    ORTC derives the role from the ICE role (controlling = server); Jingle follows the
    setup attributes (RFC 5763 §5, RFC 8842), which may say otherwise.  RTCPeerConnection
    sets it with ``RTCDtlsTransport._set_role`` and so do we (checked: aiortc 1.16.0).
    RTCSctpTransport.is_server follows it (RFC 8832 stream ids).
    """
    dtls._set_role("client" if client else "server")


def peer_certificate_digest(dtls: RTCDtlsTransport, algorithm: str) -> str | None:
    """The peer certificate's fingerprint (``AA:BB:...``), None before a handshake.

    aiortc reports a failed fingerprint check only as state ``failed``; telling a forged
    fingerprint (XEP-0320) from a broken handshake needs the certificate.  It is read from
    the pyOpenSSL connection ``RTCDtlsTransport._ssl`` and hashed like aiortc does
    (``aiortc.rtcdtlstransport.certificate_digest``) (checked: aiortc 1.16.0).
    """
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None or algorithm not in X509_DIGEST_ALGORITHMS:
        return None
    cert = ssl.get_peer_certificate(as_cryptography=True)
    return None if cert is None else str(certificate_digest(cert, algorithm))


async def send_close_notify(dtls: RTCDtlsTransport) -> None:
    """Send a DTLS close_notify now, so the peer stops at once instead of timing out.

    RTCDtlsTransport.stop() sends it only in state connecting/connected, not after a failed
    fingerprint check; so shut ``_ssl`` down and flush it with ``_write_ssl()``
    (checked: aiortc 1.16.0).  Errors are ignored: the peer may be gone.
    """
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None:
        return
    with contextlib.suppress(Exception):
        ssl.shutdown()
    with contextlib.suppress(Exception):
        await dtls._write_ssl()


# ------------------------------------------------------------------ aiortc: SCTP


class DelayedSackSctpTransport(RTCSctpTransport):
    """aiortc's SCTP with optional delayed SACKs (RFC 4960 §6.2).

    aiortc acknowledges every DATA packet at once, which costs one DTLS record + sendto on the
    receiver and one SACK parse on the sender per ~1.2 kB.  With ``delayed_sack`` the SACK for
    an odd packet waits for the next packet or :data:`SACK_DELAY` seconds, whichever comes
    first ("at least every second packet", well within the 200 ms limit); gaps and duplicates
    are still reported at once (RFC 4960 §6.7).  This is what usrsctp/dcsctp (libwebrtc) do as
    receivers anyway.  benchmarks/ice.py measured 1.4-1.5x more bytes per CPU-second with it
    (the receiver's SACK path was ~35 % of its busy time).

    aiortc has no SACK policy to set: this overrides ``_send_sack()`` (called after every
    received packet that needs one, with ``_sack_needed`` set) and reads ``_sack_misordered``
    and ``_sack_duplicates`` (checked: aiortc 1.16.0).
    """

    def __init__(self, transport: RTCDtlsTransport, port: int, delayed_sack: bool) -> None:
        super().__init__(transport, port)
        self._jfs_delayed_sack = delayed_sack
        self._jfs_sack_held = False
        self._jfs_sack_timer: asyncio.TimerHandle | None = None
        self._jfs_sack_task: asyncio.Future[None] | None = None  # a reference keeps it alive

    @property
    def sack_held(self) -> bool:
        """A SACK is owed and waits for the next packet or the timer."""
        return self._jfs_sack_held

    async def _send_sack(self) -> None:
        if (
            self._jfs_delayed_sack
            and not self._jfs_sack_held
            and not self._sack_misordered
            and not self._sack_duplicates
        ):
            self._jfs_sack_held = True
            if self._jfs_sack_timer is None:
                loop = asyncio.get_running_loop()
                self._jfs_sack_timer = loop.call_later(SACK_DELAY, self._sack_timer_fired)
            return
        self._jfs_sack_held = False
        await super()._send_sack()

    def _sack_timer_fired(self) -> None:
        self._jfs_sack_timer = None
        if (
            self._jfs_sack_held
            and self._sack_needed
            and self.state == "connected"
            and self.transport.state == "connected"
        ):
            self._jfs_sack_task = asyncio.ensure_future(self.flush_held_sack())

    async def flush_held_sack(self) -> None:
        """Send the held SACK now (the timer's job); quiet when DTLS has ended."""
        try:
            await self._send_sack()
        except Exception:  # DTLS ended meanwhile (close_notify, ICE consent lost): nothing to ack
            logger.debug("delayed SACK not sent", exc_info=True)

    async def stop(self) -> None:
        if self._jfs_sack_timer is not None:
            self._jfs_sack_timer.cancel()
            self._jfs_sack_timer = None
        await super().stop()


def sctp_idle(sctp: RTCSctpTransport) -> bool:
    """Nothing waits to be sent or acknowledged on ``sctp``.

    RTCDataChannel.bufferedAmount drops when a message is handed to SCTP, not when the peer
    acknowledged it; closing then would lose the tail.  aiortc keeps the rest in
    ``_data_channel_queue`` (not yet chunked), ``_outbound_queue`` (not yet sent) and
    ``_sent_queue`` (not yet acknowledged) (checked: aiortc 1.16.0).
    """
    return not (sctp._data_channel_queue or sctp._outbound_queue or sctp._sent_queue)
