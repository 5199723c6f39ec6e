"""The ICE rung: a WebRTC data channel (ICE + DTLS + SCTP) driven straight from Jingle payloads.

Signalled like Conversations (docs/protocol.md §6.4):
:class:`~jinglefs.jingle.ice.WebRtcDataChannelTransport` carries ufrag/pwd, candidates and
the XEP-0320 fingerprint; no SDP is ever built.  The stack is aiortc's ORTC objects
(``RTCIceTransport`` → ``RTCDtlsTransport`` → ``RTCSctpTransport`` → ``RTCDataChannel``) on
top of an aioice agent with two additions (:class:`._aiortc.JingleIceConnection`):

* ``host_addresses``: gather host candidates on the given addresses only.  aioice's own
  ``get_host_addresses`` skips 127.0.0.1, so loopback tests and benchmarks pass
  ``host_addresses=["127.0.0.1"]`` instead of monkeypatching aioice globally.
* **Direct before relay.**  aioice nominates aggressively (the RFC 5245 mode that RFC 8445 §8.1.1
  dropped: the controlling agent puts USE-CANDIDATE on every check), so the first pair that
  answers wins.
  Behind a NAT the first direct check is often dropped and re-sent only after the 500 ms STUN
  RTO, while the relay pair answers in ~100 ms: natlab measured 12/20 relayed runs in a cone NAT
  where a direct path worked (natlab pitfall 3).  As *controlling* agent we therefore hold back
  the checks of every pair that involves a relay candidate (local or remote) for
  ``relay_delay`` seconds after connect() starts, or until every direct pair has failed and
  end-of-candidates was reached.  Held pairs stay Waiting, so a direct nomination removes them
  (RFC 8445 §8.1.2) and the controlled peer never sees USE-CANDIDATE on a relay pair first.
  Relay pairs have the lowest pair priorities (type preference 0, RFC 8445 §5.1.2.2), so
  holding them never delays a direct check.  Cost: a relay-only path connects
  ``relay_delay`` later (0 with ``relay_only=True``).  Measured in the NAT lab (cone NAT,
  STUN + TURN, 20 runs each): relayed 5/20 without the hold, 0/20 with 1 s; symmetric NAT
  (relay only) connect median 0.37 s -> 1.05 s.

The SCTP association acknowledges every second packet (delayed SACK, RFC 4960 §6.2) instead
of aiortc's one SACK per packet; see :class:`._aiortc.DelayedSackSctpTransport`.

Everything here uses the public API of aiortc and aioice; what needs their internals is in
:mod:`._aiortc` (the fence), each item with why and the versions it was checked against.

Roles: initiator = ICE controlling (docs/protocol.md §6.1); DTLS per RFC 5763 §5 / RFC 8842 §5: the
initiator offers ``setup='actpass'``, the responder answers ``active`` (DTLS client), or
``passive`` when the offer said ``active``.  The peer's certificate is checked against the
Jingle fingerprint inside the DTLS handshake, before SCTP starts, so no file byte can flow on a
mismatch (RFC 8122 §5).

Data channels (docs/protocol.md §6.5): each side opens one DCEP channel (RFC 8832), label ``test``,
protocol ``xmpp-jingle``; the stream writes binary messages into its own channel and reads from
the channel the peer announced (the last one, like Conversations).  No framing, no EOF marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
from collections import deque
from collections.abc import Sequence
from typing import Any

from aioice import Candidate, TransportPolicy
from aiortc import (
    RTCCertificate,
    RTCDataChannel,
    RTCDataChannelParameters,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceParameters,
    RTCIceTransport,
    RTCSctpCapabilities,
    RTCSctpTransport,
)

from ..errors import CandidatesFailed, StreamClosed, TransportError
from . import _aiortc as fence
from .backend import (
    AIORTC,
    CHANNEL_LABEL,
    CHANNEL_PROTOCOL,
    LOCAL_MAX_MESSAGE_SIZE,
    Cancellable,
    IceHooks,
    RemoteCandidates,
    SelectedPair,
)
from .protocol import (
    DtlsFingerprint,
    IceCandidate,
    IceServers,
    IceUdpTransport,
    Setup,
    WebRtcDataChannelTransport,
)

__all__ = [
    "IceDataChannelStream",
    "IceHooks",
    "IceServers",
    "IceSession",
    "SelectedPair",
    "BUFFER_LIMIT",
]

logger = logging.getLogger(__name__)

#: Conversations keeps ``bufferedAmount`` at or below 256 KiB (docs/protocol.md §6.5).
BUFFER_LIMIT = 256 * 1024
#: Longest wait for a delayed SACK (RFC 4960 §6.2 allows 200 ms).
SACK_DELAY = fence.SACK_DELAY
#: How long aclose() waits for sent data to be acknowledged before aborting SCTP.
DRAIN_TIMEOUT = 5.0


class _Stage(enum.Enum):
    ICE = "ICE connectivity checks"
    DTLS = "DTLS handshake"
    SCTP = "SCTP association / data channel"


def _to_aioice(c: IceCandidate) -> Candidate:
    return Candidate(
        foundation=c.foundation,
        component=c.component,
        transport="udp",
        priority=c.priority,
        host=c.ip,
        port=c.port,
        type=c.type,
        related_address=c.rel_addr,
        related_port=c.rel_port,
        generation=c.generation,
    )


def _from_aioice(c: Candidate, cid: str) -> IceCandidate:
    return IceCandidate(
        component=c.component,
        foundation=c.foundation,
        ip=c.host,
        port=c.port,
        priority=c.priority,
        type=c.type,
        protocol="udp",
        generation=c.generation or 0,
        id=cid,
        rel_addr=c.related_address,
        rel_port=c.related_port,
        network=0,
    )


# ---------------------------------------------------------------------------------------------


class IceSession:
    """One ICE + DTLS + SCTP data channel for one Jingle content (aiortc's
    :class:`~.backend.IceBackend`).

    Typical use (the Jingle driver)::

        ice = IceSession(initiator=True, servers=await fetch_ice_servers(xmpp, domain))
        offer = await ice.gather()            # put into session-initiate
        await ice.add_remote(answer)          # from session-accept
        await ice.add_remote(info)            # from each transport-info (trickle)
        stream = await ice.connect(10.0)      # ByteStream; TransportError / CandidatesFailed
        ice.selected_pair()                   # -> SelectedPair (ICE_DIRECT / ICE_RELAY)
        ...
        await stream.aclose()                 # also closes the session

    The responder calls ``add_remote(offer)`` *before* ``gather()`` so that its answer's DTLS
    ``setup`` can follow the offer.  Nothing here talks XMPP.

    :param initiator: Jingle initiator: ICE controlling, DTLS ``actpass``.
    :param servers: STUN/TURN (XEP-0215, :func:`jinglefs.xmpp.extdisco.fetch_ice_servers`).
    :param relay_only: gather relay candidates only (ICE transport policy ``relay``).
    :param relay_delay: seconds to hold relay checks so that a direct pair wins (controlling side).
    :param candidate_grace: Jingle has no end-of-candidates (XEP-0176): it is assumed once
        :meth:`connect` has run this many seconds without a new remote payload, so that ICE
        can fail before the timeout while a slow trickle is still heard.
    :param host_addresses: gather host candidates on these addresses only (default: all
        interfaces except loopback, aioice's choice).
    :param message_size: bytes per data channel message, capped by the peer's max-message-size.
        Conversations sends 4096; larger messages save per-message work.
    :param delayed_sack: acknowledge every second SCTP packet (RFC 4960 §6.2) instead of
        aiortc's one SACK per packet, see :class:`._aiortc.DelayedSackSctpTransport`.
    :param hooks: test seams (:class:`IceHooks`); the default is production behaviour.
    """

    implementation = AIORTC

    def __init__(
        self,
        *,
        initiator: bool,
        servers: IceServers | None = None,
        relay_only: bool = False,
        relay_delay: float = 1.0,
        candidate_grace: float = 3.0,
        host_addresses: Sequence[str] | None = None,
        use_ipv6: bool = False,
        sctp_port: int = 5000,
        message_size: int = 65536,
        delayed_sack: bool = True,
        hooks: IceHooks | None = None,
    ) -> None:
        hooks = hooks or IceHooks()
        self.initiator = initiator
        self.servers = servers or IceServers()
        self.relay_only = relay_only
        self._candidate_grace = candidate_grace
        self._sctp_port = sctp_port
        self._message_size = message_size
        self._delayed_sack = delayed_sack
        self._hooks = hooks
        kwargs: dict[str, Any] = {
            "ice_controlling": initiator,  # docs/protocol.md §6.1: the initiator is controlling
            "use_ipv4": True,
            "use_ipv6": use_ipv6,
            "transport_policy": TransportPolicy.RELAY if relay_only else TransportPolicy.ALL,
        }
        s = self.servers
        if s.stun_host:
            kwargs["stun_server"] = (s.stun_host, s.stun_port)
        if s.has_turn:
            kwargs.update(
                turn_server=(s.turn_host, s.turn_port),
                turn_username=s.turn_username,
                turn_password=s.turn_password,
                turn_transport=s.turn_transport,
                turn_ssl=s.turn_ssl,
            )
        self._conn = fence.JingleIceConnection(
            host_addresses=host_addresses,
            relay_delay=0.0 if relay_only else relay_delay,
            relay_gate=hooks.relay_gate,
            **kwargs,
        )
        self._cid_prefix = secrets.token_hex(3)
        self._certificate = RTCCertificate.generateCertificate()
        self._gather_task: asyncio.Future[None] | None = None
        self._ice: RTCIceTransport | None = None
        self._dtls: RTCDtlsTransport | None = None
        self._sctp: fence.DelayedSackSctpTransport | None = None
        self._gathered = False
        self._local_setup: Setup | None = None
        self._remote: WebRtcDataChannelTransport | None = None  # first full payload
        self._remote_candidates = RemoteCandidates()
        self._pending: list[IceCandidate] = []  # received before gathering finished
        self._eoc = False
        self._grace: Cancellable | None = None
        self._connecting = False
        self._eoc_task: asyncio.Task[None] | None = None
        self._stream: IceDataChannelStream | None = None
        self._closed = False

    # ------------------------------------------------------------------ signalling

    @property
    def local_fingerprint(self) -> DtlsFingerprint:
        fp = next(f for f in self._certificate.getFingerprints() if f.algorithm == "sha-256")
        return DtlsFingerprint("sha-256", fp.value, self._setup())

    def _setup(self) -> Setup:
        if self._local_setup is None:
            if self.initiator:
                self._local_setup = "actpass"  # RFC 5763 §5: the offerer MUST use actpass
            else:
                fp = self._remote.fingerprint if self._remote else None
                offered = fp.setup if fp else None
                # RFC 5763 §5: the answerer uses active (RECOMMENDED) or passive.
                self._local_setup = "passive" if offered == "active" else "active"
        return self._local_setup

    async def gather(self) -> WebRtcDataChannelTransport:
        """Gather local candidates (all at once: aioice does not trickle) and return our payload.

        Waits up to ~5 s when a STUN/TURN server does not answer (aioice, natlab pitfall 4).
        """
        if self._closed:
            raise StreamClosed("ICE session is closed")
        if self._gather_task is None:
            self._gather_task = asyncio.ensure_future(self._gather())
        await asyncio.shield(self._gather_task)
        return self.local_payload()

    async def _gather(self) -> None:
        self._ice = fence.ice_transport_for(self._conn)
        if self._hooks.gather_gate is not None:
            await self._hooks.gather_gate()
        await self._ice.iceGatherer.gather()
        self._gathered = True
        pending, self._pending = self._pending, []
        for c in pending:
            await self._conn.add_remote_candidate(_to_aioice(c))

    def local_payload(self) -> WebRtcDataChannelTransport:
        """Our transport for session-initiate / session-accept (after :meth:`gather`)."""
        if not self._gathered:
            raise TransportError("gather() has not run")
        candidates = tuple(
            _from_aioice(c, f"{self._cid_prefix}{i}")
            for i, c in enumerate(self._conn.local_candidates)
        )
        return self._payload(candidates)

    def credentials_payload(self) -> WebRtcDataChannelTransport:
        """Our transport without candidates: ufrag, pwd and fingerprint are known before
        gathering, and enough to start (XEP-0176 §5.5: candidates may follow by trickle)."""
        return self._payload(())

    def _payload(self, candidates: tuple[IceCandidate, ...]) -> WebRtcDataChannelTransport:
        return WebRtcDataChannelTransport(
            self._sctp_port,
            LOCAL_MAX_MESSAGE_SIZE,
            IceUdpTransport(
                self._conn.local_username,
                self._conn.local_password,
                candidates,
                self.local_fingerprint,
            ),
        )

    async def add_remote(self, payload: WebRtcDataChannelTransport) -> None:
        """Feed a peer payload: session-initiate/-accept or a trickled transport-info.

        The first payload must carry ufrag, pwd and the fingerprint.  Candidates of another
        ufrag (an ICE restart, XEP-0176) and candidates after end-of-candidates are ignored.
        """
        if self._closed:
            return
        ice = payload.ice
        if self._remote is None:
            if not ice.ufrag or not ice.pwd or ice.fingerprint is None:
                raise TransportError("the peer's ICE transport lacks ufrag, pwd or fingerprint")
            self._remote = payload
        elif ice.ufrag is not None and ice.ufrag != self._remote.ice.ufrag:
            logger.info("ignoring candidates of another ICE ufrag (restart is not supported)")
            return
        for c in ice.candidates:
            self._add_candidate(c)
        if self._connecting and not self._eoc:
            self._arm_grace()  # the peer is still trickling: restart the grace period
        if self._gathered:
            pending, self._pending = self._pending, []
            for c in pending:
                await self._conn.add_remote_candidate(_to_aioice(c))

    def _add_candidate(self, c: IceCandidate) -> None:
        if self._eoc:
            logger.info("ignoring candidate %s after end-of-candidates", c.id)
        elif self._remote_candidates.admit(c):
            self._pending.append(c)

    def _arm_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
        call_later = self._hooks.call_later or asyncio.get_running_loop().call_later
        self._grace = call_later(self._candidate_grace, self._grace_expired)

    def _grace_expired(self) -> None:
        if not self._remote_candidates:
            # Nothing to fail on yet: the peer may still reach us (peer-reflexive, RFC 8445
            # §7.3.1.3) or trickle late; aioice would give up at once on an empty check list.
            self._arm_grace()
        else:
            self.end_of_candidates()

    def end_of_candidates(self) -> None:
        """No more remote candidates will come (Jingle cannot say so; called after a grace)."""
        if self._eoc or self._closed:
            return
        self._eoc = True

        async def _signal() -> None:
            if not self._gathered:
                return
            pending, self._pending = self._pending, []
            for c in pending:
                await self._conn.add_remote_candidate(_to_aioice(c))
            with contextlib.suppress(ValueError):
                await self._conn.add_remote_candidate(None)

        self._eoc_task = asyncio.get_running_loop().create_task(_signal())  # keep a reference

    # ------------------------------------------------------------------ connect

    async def connect(self, timeout: float = 10.0) -> IceDataChannelStream:
        """Run ICE, DTLS and SCTP and open the data channels, all within ``timeout`` seconds.

        Returns the connected :class:`IceDataChannelStream`.  Raises
        :class:`~jinglefs.errors.CandidatesFailed` when no candidate pair works and
        :class:`~jinglefs.errors.TransportError` for DTLS (including a fingerprint mismatch)
        or SCTP failures and for time-outs.  On failure the session is closed.
        """
        if self._stream is not None:
            return self._stream
        if not self._gathered:
            await self.gather()
        if self._remote is None:
            raise TransportError("no ICE parameters from the peer yet")
        self._connecting = True
        self._arm_grace()
        stage = [_Stage.ICE]
        try:
            async with asyncio.timeout(timeout):
                self._stream = await self._connect(stage)
        except TimeoutError:
            await self.close()
            if stage[0] is _Stage.ICE:
                raise CandidatesFailed(
                    f"no ICE candidate pair answered within {timeout:g} s"
                ) from None
            raise TransportError(f"{stage[0].value} did not finish within {timeout:g} s") from None
        except BaseException:
            await self.close()
            raise
        finally:
            self._connecting = False
            if self._grace is not None:
                self._grace.cancel()
        return self._stream

    async def _connect(self, stage: list[_Stage]) -> IceDataChannelStream:
        assert self._ice is not None and self._remote is not None
        remote = self._remote
        fp = remote.fingerprint
        assert fp is not None
        if fp.hash not in fence.SUPPORTED_FINGERPRINT_HASHES:
            raise TransportError(f"unsupported DTLS fingerprint hash {fp.hash}")

        # ICE (RFC 8445); RTCIceTransport.start() wraps aioice's connect().
        await self._ice.start(
            RTCIceParameters(usernameFragment=remote.ice.ufrag, password=remote.ice.pwd)
        )
        if self._ice.state != "completed":
            raise CandidatesFailed("ICE failed: no candidate pair worked")
        pair = self.selected_pair()
        logger.info("ICE connected: %s", pair.detail if pair else "?")

        # DTLS (RFC 5763 §5, RFC 8842): who is the client follows the setup attributes.
        stage[0] = _Stage.DTLS
        self._dtls = RTCDtlsTransport(self._ice, [self._certificate])
        fence.set_dtls_role(self._dtls, client=self._dtls_client(fp))
        await self._dtls.start(
            RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint(fp.hash, fp.value)])
        )
        if self._dtls.state != "connected":
            if self._fingerprint_mismatch(fp):
                await fence.send_close_notify(self._dtls)
                raise TransportError(
                    "DTLS fingerprint mismatch: the peer's certificate is not the one announced"
                    " in Jingle (XEP-0320)"
                )
            raise TransportError("DTLS handshake failed")

        # SCTP (RFC 8841) and one DCEP channel per side (RFC 8832, docs/protocol.md §6.5).
        stage[0] = _Stage.SCTP
        self._sctp = fence.DelayedSackSctpTransport(
            self._dtls, self._sctp_port, self._delayed_sack
        )
        size = self._message_size
        if remote.max_message_size:  # 0 = unlimited (RFC 8841 §6)
            size = min(size, remote.max_message_size)
        stream = IceDataChannelStream(self, self._sctp, size)
        await self._sctp.start(
            RTCSctpCapabilities(maxMessageSize=remote.max_message_size), remote.sctp_port
        )
        await stream.opened()
        return stream

    def _dtls_client(self, remote: DtlsFingerprint) -> bool:
        if self.initiator:
            # We offered actpass; the answer picks (active is RECOMMENDED, RFC 5763 §5).
            return remote.setup == "passive"
        return self._setup() == "active"

    def _fingerprint_mismatch(self, fp: DtlsFingerprint) -> bool:
        assert self._dtls is not None
        digest = fence.peer_certificate_digest(self._dtls, fp.hash)
        return digest is not None and digest != fp.value.upper()

    # ------------------------------------------------------------------ state

    def selected_pair(self) -> SelectedPair | None:
        """The nominated pair, or None before ICE completes."""
        pair = fence.nominated_pair(self._conn)
        if pair is None:
            return None
        local, remote = pair
        rtype = remote.type
        if rtype == "prflx":
            # A relayed peer seen before its relay candidate was signalled.
            for c in self._remote_candidates.items:
                if c.type == "relay" and (c.ip, c.port) == (remote.host, remote.port):
                    rtype = "relay"
        return SelectedPair(local.type, (local.host, local.port), rtype, (remote.host, remote.port))

    @property
    def remote_candidates(self) -> tuple[IceCandidate, ...]:
        return tuple(self._remote_candidates.items)

    async def close(self) -> None:
        """Tear everything down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._grace is not None:
            self._grace.cancel()
        if self._gather_task is not None and not self._gather_task.done():
            self._gather_task.cancel()
        if self._stream is not None:
            self._stream.shutdown()
        if self._sctp is not None:
            with contextlib.suppress(Exception):
                await self._sctp.stop()
        if self._dtls is not None:
            with contextlib.suppress(Exception):
                await self._dtls.stop()
        if self._ice is not None:
            with contextlib.suppress(Exception):
                await self._ice.stop()
        else:
            await self._conn.close()


# ---------------------------------------------------------------------------------------------


class IceDataChannelStream:
    """:class:`~jinglefs.streams.ByteStream` over the data channels of an :class:`IceSession`.

    ``send`` writes binary messages of at most ``message_size`` bytes (and at most the peer's
    max-message-size) into our channel, waiting while ``bufferedAmount`` would exceed
    :data:`BUFFER_LIMIT`.  ``receive`` reads what arrived on the peer's channel and returns
    ``b""`` once that channel closes.
    """

    def __init__(self, session: IceSession, sctp: RTCSctpTransport, message_size: int) -> None:
        self._session = session
        self._sctp = sctp
        self.message_size = max(1, message_size)
        self._tx = RTCDataChannel(
            sctp, RTCDataChannelParameters(label=CHANNEL_LABEL, protocol=CHANNEL_PROTOCOL)
        )
        self._tx.bufferedAmountLowThreshold = max(
            0, min(BUFFER_LIMIT // 2, BUFFER_LIMIT - self.message_size)
        )
        self._tx_open = asyncio.Event()
        self._writable = asyncio.Event()
        self._tx.on("open", self._tx_open.set)
        self._tx.on("bufferedamountlow", self._writable.set)
        self._tx.on("close", self._on_tx_close)
        self._rx_channel: RTCDataChannel | None = None
        self._rx: deque[bytes] = deque()
        self._rx_event = asyncio.Event()
        self._eof = False
        self._broken: str | None = None
        self._closed = False
        sctp.on("datachannel", self._on_datachannel)
        dtls = sctp.transport
        dtls.on("statechange", self._on_dtls_state)

    @property
    def session(self) -> IceSession:
        return self._session

    # -- events

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        # Conversations keeps the last channel the peer announced; so do we.
        self._rx_channel = channel

        def on_message(message: bytes | str) -> None:
            if channel is not self._rx_channel:
                return
            if isinstance(message, str):
                message = message.encode()
            if message:
                self._rx.append(message)
                self._rx_event.set()

        def on_close() -> None:
            if channel is self._rx_channel:
                self._eof = True
                self._rx_event.set()

        channel.on("message", on_message)
        channel.on("close", on_close)

    def _on_tx_close(self) -> None:
        self._break("the data channel was closed")

    def _on_dtls_state(self) -> None:
        if self._sctp.transport.state in ("closed", "failed"):
            self._break("the DTLS connection was closed")

    def _break(self, why: str) -> None:
        if self._broken is None:
            self._broken = why
        self._rx_event.set()
        self._writable.set()
        self._tx_open.set()

    def shutdown(self) -> None:
        """Wake every waiting send/receive with :class:`StreamClosed` (the session closes)."""
        self._closed = True
        self._break("the stream is closed")

    async def opened(self) -> None:
        """Wait until our data channel is open (TransportError when it closed instead)."""
        await self._tx_open.wait()
        if self._tx.readyState != "open":
            raise TransportError(f"the data channel did not open ({self._broken or 'closed'})")

    # -- ByteStream

    async def send(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        size = self.message_size
        for start in range(0, len(view), size):
            chunk = bytes(view[start : start + size])
            while True:
                if self._broken is not None or self._tx.readyState != "open":
                    raise StreamClosed(self._broken or "the data channel is not open")
                if self._tx.bufferedAmount + len(chunk) <= BUFFER_LIMIT:
                    break
                self._writable.clear()
                await self._writable.wait()
            self._tx.send(chunk)

    async def receive(self, max_bytes: int) -> bytes:
        while not self._rx:
            if self._eof:
                return b""
            if self._broken is not None:
                if self._closed:
                    raise StreamClosed(self._broken)
                return b""  # the peer went away after its last message: end of stream
            self._rx_event.clear()
            await self._rx_event.wait()
        first = self._rx[0]
        if len(first) <= max_bytes and (
            len(self._rx) == 1 or len(first) + len(self._rx[1]) > max_bytes
        ):
            return self._rx.popleft()
        parts: list[bytes] = []
        want = max_bytes
        while self._rx and want > 0:
            piece = self._rx.popleft()
            if len(piece) > want:
                self._rx.appendleft(piece[want:])
                piece = piece[:want]
            parts.append(piece)
            want -= len(piece)
        return b"".join(parts)

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait until everything sent was acknowledged by the peer's SCTP (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and self._broken is None:
            if self._tx.bufferedAmount == 0 and fence.sctp_idle(self._sctp):
                return
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        """Flush what was sent (bounded by :data:`DRAIN_TIMEOUT`), then close the session."""
        if not self._closed and self._broken is None:
            await self.drain()
            with contextlib.suppress(Exception):
                self._tx.close()
        self._closed = True
        await self._session.close()
