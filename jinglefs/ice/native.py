"""The ICE rung's native data channel: libdatachannel (libjuice, OpenSSL, usrsctp) through
``aiolibdatachannel``.

Same Jingle transport as :mod:`.channel` (Conversations' webrtc-datachannel:1,
docs/protocol.md §6.4), same :class:`~.backend.IceBackend` interface, native DTLS and SCTP:
benchmarks/ice.py measures it at several times aiortc's throughput for a fraction of the CPU.
:mod:`.backend` says when it is used instead of aiortc.

**Signalling stays Jingle.**  libdatachannel speaks SDP offer/answer, so :mod:`.sdp` turns
the peer's Jingle payload into the remote description (ufrag, pwd, the XEP-0320 fingerprint
and setup, sctp-port, max-message-size) and reads ours out of libdatachannel's local
description; candidates go both ways one by one (XEP-0176 trickle, RFC 8838).  Roles: the
Jingle initiator makes the SDP offer, which makes it ICE controlling (docs/protocol.md §6.1)
and DTLS ``actpass``; the responder answers ``active`` (libdatachannel's choice, RFC 5763 §5),
or ``passive`` when the offer said ``active``.

**The fingerprint is checked before any byte.**  libdatachannel verifies the peer's DTLS
certificate against the remote description's ``a=fingerprint`` inside the handshake and
fails the connection on a mismatch (RFC 8122 §5); SCTP, hence every data channel, starts
only after that.  libdatachannel reports only "failed", not why; a DTLS failure after ICE
connected is reported as :data:`FINGERPRINT_MISMATCH` when libdatachannel logged a mismatch
for the fingerprint this session announced (``_on_rtc_log``), else as :data:`DTLS_FAILED`.

**Data channels** (docs/protocol.md §6.5): each side opens one DCEP channel (RFC 8832) labelled
``test``, protocol ``xmpp-jingle``, writes into it and reads from the last channel the peer
announced.  Sending waits while libdatachannel's own queue holds data (``bufferedAmount``
above 0: usrsctp's 1 MiB send buffer is full), so memory stays bounded.

**Closing without losing the tail.**  The sender closes its stream right after its last
byte; usrsctp may still hold up to 1 MiB that the peer has not acknowledged, and tearing the
peer connection down would drop it.  :meth:`NativeDataChannelStream.aclose` therefore resets
our channel's stream (RFC 8831 §6.7: the reset is queued behind the data) and keeps the peer
connection until the peer is done (its channel or the connection closes), the session is
closed (:meth:`NativeIceSession.close`, the negotiator's job once the session ended) or
:data:`LINGER` passed.

What aiolibdatachannel has no public API for is fenced at the end of this module
(``_fence_*``), each item with why; ``tests/ice/test_native_fence.py`` has a canary for each.
Checked against :data:`CHECKED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import re
import secrets
import socket
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiolibdatachannel as ldc

from ..errors import CandidatesFailed, StreamClosed, TransportError
from .backend import (
    CHANNEL_LABEL,
    CHANNEL_PROTOCOL,
    LOCAL_MAX_MESSAGE_SIZE,
    NATIVE,
    IceHooks,
    RemoteCandidates,
    SelectedPair,
)
from .protocol import IceCandidate, IceServers, WebRtcDataChannelTransport
from .sdp import (
    LocalDescription,
    candidate_address,
    candidate_attribute,
    parse_candidate,
    parse_description,
    remote_description,
)

__all__ = [
    "CHECKED",
    "DTLS_FAILED",
    "FINGERPRINT_MISMATCH",
    "NativeDataChannelStream",
    "NativeIceSession",
]

logger = logging.getLogger(__name__)

#: The release every fenced item was read against (and the canaries last passed on).
CHECKED = {"aiolibdatachannel": "2026.10.15"}

#: How long aclose() waits for libdatachannel's send queue to empty into usrsctp.
DRAIN_TIMEOUT = 5.0
#: How long a closed stream keeps its peer connection for the peer to take the tail.
LINGER = 30.0
#: RFC 8445 §5.1.2.1 type preference of host candidates.
_HOST_TYPE_PREFERENCE = 126

#: The same words as aiortc's side (.channel), so a forged fingerprint reads the same.
FINGERPRINT_MISMATCH = (
    "DTLS fingerprint mismatch: the peer's certificate is not the one announced in Jingle"
    " (XEP-0320)"
)
DTLS_FAILED = "DTLS handshake failed"

_rtc_logger = logging.getLogger(f"{__name__}.libdatachannel")
_RTC_LEVELS = {int(ldc.LogLevel.FATAL): logging.CRITICAL, int(ldc.LogLevel.ERROR): logging.ERROR,
               int(ldc.LogLevel.WARNING): logging.WARNING}
#: The fingerprints (as announced in Jingle) whose peer presented another certificate.
#: libdatachannel's DTLS reports only "failed"; its log line names the mismatch, with the
#: fingerprint it expected, which is what this session's remote description said.
_MISMATCH = re.compile(r'Invalid fingerprint "[0-9A-Fa-f:]+", expected "([0-9A-Fa-f:]+)"')
_mismatched: deque[str] = deque(maxlen=64)


def _on_rtc_log(level: int, message: str) -> None:
    """libdatachannel's log (on its threads): into logging, and fingerprint mismatches noted.

    Without a callback libdatachannel would print to stdout, where ``--json`` goes."""
    found = _MISMATCH.search(message)
    if found:
        _mismatched.append(found.group(1).upper())
    _rtc_logger.log(_RTC_LEVELS.get(level, logging.INFO), "%s", message.rstrip())


ldc.init_logger(ldc.LogLevel.WARNING, _on_rtc_log)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ice_servers(servers: IceServers) -> list[ldc.IceServerLike]:
    """STUN and (UDP) TURN for libjuice; TURN over TCP/TLS it cannot use (.backend)."""
    out: list[ldc.IceServerLike] = []
    if servers.stun_host:
        out.append(f"stun:{_url_host(servers.stun_host)}:{servers.stun_port}")
    port = servers.turn_udp_port
    if servers.has_turn and servers.turn_host and port is not None:
        out.append(ldc.IceServer(url=f"turn:{_url_host(servers.turn_host)}:{port}"
                                     "?transport=udp",
                                 username=servers.turn_username,
                                 credential=servers.turn_password))
    return out


def _free_udp_port() -> int:
    """A UDP port nobody uses right now (both families: libjuice binds ``::`` dual-stack)."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = "::"
    except OSError:  # no IPv6 here: libjuice binds 0.0.0.0
        probe, address = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), "0.0.0.0"
    with probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
        return port


def _host_priority(local_preference: int, component: int = 1) -> int:
    """RFC 8445 §5.1.2.1 priority of a host candidate."""
    return (_HOST_TYPE_PREFERENCE << 24) + (local_preference << 8) + (256 - component)


class NativeIceSession:
    """One libdatachannel peer connection for one Jingle content (:class:`~.backend.IceBackend`).

    Takes the same arguments as :class:`~.channel.IceSession`; those that only make sense
    for aioice are accepted and ignored: ``relay_delay`` (libjuice checks pairs in priority
    order and relay pairs have the lowest, RFC 8445 §6.1.2.3), ``candidate_grace`` (libjuice
    keeps checking until connect()'s timeout: Jingle has no end-of-candidates), ``delayed_sack``
    (usrsctp delays SACKs itself) and the hooks other than ``gather_gate``.

    :param host_addresses: announce host candidates on these addresses only.  libjuice
        binds one wildcard socket (both families) and gathers every interface but loopback;
        an address it did not list (127.0.0.1) is announced with that socket's port, which
        receives on every local address.  The port is chosen here (a free one, given to
        libjuice as a one-port range), so that it is known even where libjuice finds no
        interface at all (a network namespace with only ``lo``).
    """

    implementation = NATIVE

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
        del relay_delay, candidate_grace, delayed_sack  # aioice's knobs, see the docstring
        self.initiator = initiator
        self.servers = servers or IceServers()
        self.relay_only = relay_only
        self._host_addresses = list(host_addresses) if host_addresses is not None else None
        self._use_ipv6 = use_ipv6
        self._sctp_port = sctp_port
        self._message_size = message_size
        self._hooks = hooks or IceHooks()
        self._cid_prefix = secrets.token_hex(3)
        self._port: int | None = None  # libjuice's socket, when we chose it
        self._pc: ldc.PeerConnection | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._describe_task: asyncio.Future[LocalDescription] | None = None
        self._gather_task: asyncio.Future[None] | None = None
        self._apply_task: asyncio.Future[None] | None = None
        self._local: LocalDescription | None = None
        self._gathered_lines: list[str] = []
        self._gathering_done = asyncio.Event()
        self._gathered = False
        self._remote: WebRtcDataChannelTransport | None = None
        self._remote_candidates = RemoteCandidates()
        self._unsent: list[IceCandidate] = []  # known before the peer connection existed
        self._ice_connected = False
        self._dtls_connected = False
        self._failure: asyncio.Future[BaseException] = (
            asyncio.get_running_loop().create_future())
        self._stream: NativeDataChannelStream | None = None
        self._connected = False
        self._linger_task: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ signalling

    async def gather(self) -> WebRtcDataChannelTransport:
        """Make our local description and gather; return our payload with the candidates.

        The responder must have fed the offer first (:meth:`add_remote`).
        """
        if self._closed:
            raise StreamClosed("ICE session is closed")
        if self._gather_task is None:
            self._gather_task = asyncio.ensure_future(self._gather())
        await asyncio.shield(self._gather_task)
        return self.local_payload()

    async def _gather(self) -> None:
        await self._describe()
        if self._hooks.gather_gate is not None:
            await self._hooks.gather_gate()
        await self._gathering_done.wait()
        self._gathered = True

    def _describe(self) -> asyncio.Future[LocalDescription]:
        if self._describe_task is None:
            self._describe_task = asyncio.ensure_future(self._make_description())
        return self._describe_task

    async def _make_description(self) -> LocalDescription:
        """The peer connection, our data channel and the SDP offer/answer (RFC 8829 §5)."""
        if not self.initiator and self._remote is None:
            raise TransportError("the responder needs the peer's offer before gathering")
        if self._host_addresses is not None:
            self._port = _free_udp_port()
        config = ldc.RTCConfiguration(
            ice_servers=_ice_servers(self.servers),
            max_message_size=LOCAL_MAX_MESSAGE_SIZE,
            ice_transport_policy=(ldc.TransportPolicy.RELAY if self.relay_only
                                  else ldc.TransportPolicy.ALL),
            port_range_begin=self._port or 0,
            port_range_end=self._port or 0,
        )
        pc = self._pc = ldc.PeerConnection(config)
        self._stream = NativeDataChannelStream(self)
        self._events_task = asyncio.ensure_future(self._follow(pc))
        if not self.initiator:
            await self._apply_remote()
        tx = await pc.create_data_channel(
            CHANNEL_LABEL, ldc.DataChannelOptions(protocol=CHANNEL_PROTOCOL))
        self._stream.attach_tx(tx)
        description = await pc.set_local_description("offer" if self.initiator else "answer")
        self._local = parse_description(description.sdp, cid_prefix=self._cid_prefix)
        return self._local

    def local_payload(self) -> WebRtcDataChannelTransport:
        """Our transport for session-initiate / session-accept (after :meth:`gather`)."""
        if not self._gathered or self._local is None:
            raise TransportError("gather() has not run")
        return self._local.payload(self._local_candidates())

    def credentials_payload(self) -> WebRtcDataChannelTransport:
        """Our transport without candidates (XEP-0176 §5.5: they may follow by trickle)."""
        if self._local is None:
            raise TransportError("the local description is not ready yet")
        return self._local.payload(())

    def _local_candidates(self) -> tuple[IceCandidate, ...]:
        parsed = [parse_candidate(line, f"{self._cid_prefix}{i}")
                  for i, line in enumerate(self._gathered_lines)]
        out = [c for c in parsed if c is not None
               and (self._use_ipv6 or ":" not in c.ip)]
        if self._host_addresses is None:
            return tuple(out)
        hosts = [c for c in out if c.type == "host"]
        kept = [c for c in out if c.type != "host" or c.ip in self._host_addresses]
        ports = {":" in c.ip: c.port for c in hosts}  # libjuice: one socket, one port
        for i, address in enumerate(self._host_addresses):
            if any(c.type == "host" and c.ip == address for c in kept):
                continue
            port = self._port or ports.get(":" in address) or next(iter(ports.values()), None)
            if port is None or self.relay_only:  # relay-only: no host candidate at all
                continue
            kept.insert(0, IceCandidate(1, f"9{i}", address, port,
                                        _host_priority(65535 - i), "host",
                                        id=f"{self._cid_prefix}h{i}", network=0))
        return tuple(kept)

    async def add_remote(self, payload: WebRtcDataChannelTransport) -> None:
        """Feed a peer payload: session-initiate/-accept or a trickled transport-info.

        The first payload must carry ufrag, pwd and the fingerprint.  Candidates of another
        ufrag (an ICE restart, XEP-0176) are ignored.
        """
        if self._closed:
            return
        ice = payload.ice
        if self._remote is None:
            if not ice.ufrag or not ice.pwd or ice.fingerprint is None:
                raise TransportError("the peer's ICE transport lacks ufrag, pwd or fingerprint")
            self._remote = payload
            if self.initiator:
                await self._describe()
                await self._apply_remote()
        elif ice.ufrag is not None and ice.ufrag != self._remote.ice.ufrag:
            logger.info("ignoring candidates of another ICE ufrag (restart is not supported)")
            return
        for c in ice.candidates:
            await self._add_candidate(c)

    def _apply_remote(self) -> asyncio.Future[None]:
        if self._apply_task is None:
            self._apply_task = asyncio.ensure_future(self._set_remote())
        return self._apply_task

    async def _set_remote(self) -> None:
        assert self._pc is not None and self._remote is not None
        mid = self._local.mid if self._local is not None else "0"
        try:
            sdp = remote_description(self._remote, offer=not self.initiator, mid=mid)
            await self._pc.set_remote_description(sdp, "answer" if self.initiator else "offer")
        except (ValueError, ldc.RTCError) as e:
            raise TransportError(f"libdatachannel refused the peer's ICE parameters: {e}"
                                 ) from None
        unsent, self._unsent = self._unsent, []
        for c in unsent:
            await self._send_candidate(c)

    async def _add_candidate(self, c: IceCandidate) -> None:
        if c.ip.endswith(".local"):
            logger.info("ignoring mDNS candidate %s (not resolved here)", c.id)
        elif self._remote_candidates.admit(c):
            if self._pc is None:  # a responder fed the offer before gathering
                self._unsent.append(c)
            else:  # the binding holds it until the remote description is applied
                await self._send_candidate(c)

    async def _send_candidate(self, c: IceCandidate) -> None:
        assert self._pc is not None
        mid = self._local.mid if self._local is not None else "0"
        try:
            await self._pc.add_remote_candidate(candidate_attribute(c), mid)
        except ldc.RTCError as e:
            logger.info("libdatachannel refused candidate %s: %s", c.id, e)

    # ------------------------------------------------------------------ events

    async def _follow(self, pc: ldc.PeerConnection) -> None:
        """Every event of the peer connection, in order (one consumer: us)."""
        async for event in pc.events():
            if isinstance(event, ldc.LocalCandidateEvent):
                self._gathered_lines.append(event.candidate.candidate)
            elif isinstance(event, ldc.GatheringStateChangeEvent):
                if event.state is ldc.GatheringState.COMPLETE:
                    self._gathering_done.set()
            elif isinstance(event, ldc.IceStateChangeEvent):
                logger.debug("ICE state %s", event.state.name)
                if event.state in (ldc.ICEState.CONNECTED, ldc.ICEState.COMPLETED):
                    self._ice_connected = True
                elif event.state is ldc.ICEState.FAILED and not self._ice_connected:
                    self._fail(CandidatesFailed("ICE failed: no candidate pair worked"))
            elif isinstance(event, ldc.StateChangeEvent):
                self._on_state(event.state)
            elif isinstance(event, ldc.DataChannelEvent) and self._stream is not None:
                self._stream.on_datachannel(event.channel)
        self._gathering_done.set()

    def _on_state(self, state: ldc.RTCState) -> None:
        logger.debug("peer connection state %s", state.name)
        if state is ldc.RTCState.CONNECTED:
            self._ice_connected = self._dtls_connected = True
        elif state is ldc.RTCState.FAILED:
            if not self._ice_connected:
                self._fail(CandidatesFailed("ICE failed: no candidate pair worked"))
            elif not self._dtls_connected:
                self._fail(TransportError(FINGERPRINT_MISMATCH if self._mismatch()
                                          else DTLS_FAILED))
            else:
                self._fail(TransportError("the peer connection failed"))
        elif state in (ldc.RTCState.DISCONNECTED, ldc.RTCState.CLOSED):
            self._fail(TransportError("the peer connection was closed"))

    def _fail(self, error: BaseException) -> None:
        if not self._failure.done():
            self._failure.set_result(error)
        self._gathering_done.set()  # a failed connection gathers no more
        if self._stream is not None:
            self._stream.peer_gone(str(error))

    # ------------------------------------------------------------------ connect

    async def connect(self, timeout: float = 10.0) -> NativeDataChannelStream:
        """ICE, DTLS (fingerprint checked), SCTP and our data channel within ``timeout``.

        Raises :class:`~jinglefs.errors.CandidatesFailed` when no candidate pair works and
        :class:`~jinglefs.errors.TransportError` for DTLS (a fingerprint mismatch among them)
        or SCTP failures.  On failure the session is closed.
        """
        if self._connected and self._stream is not None:
            return self._stream
        try:
            async with asyncio.timeout(timeout):
                if not self._gathered:
                    await self.gather()
                if self._remote is None:
                    raise TransportError("no ICE parameters from the peer yet")
                await self._apply_remote()
                assert self._stream is not None
                opened = asyncio.ensure_future(self._stream.opened())
                waiters: set[asyncio.Future[Any]] = {opened, self._failure}
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    opened.cancel()
                if self._failure.done():
                    raise self._failure.result()
                await opened
        except TimeoutError:
            await self.close()
            if not self._ice_connected:
                raise CandidatesFailed(
                    f"no ICE candidate pair answered within {timeout:g} s") from None
            if not self._dtls_connected:
                raise TransportError(f"DTLS handshake did not finish within {timeout:g} s"
                                     ) from None
            raise TransportError(f"SCTP association / data channel did not finish within "
                                 f"{timeout:g} s") from None
        except BaseException:
            await self.close()
            raise
        self._connected = self._ice_connected = self._dtls_connected = True
        pair = self.selected_pair()
        logger.info("ICE connected (libdatachannel): %s", pair.detail if pair else "?")
        return self._stream

    # ------------------------------------------------------------------ state

    def selected_pair(self) -> SelectedPair | None:
        """The nominated pair, or None before ICE completes."""
        if self._pc is None or not self._ice_connected or self._closed:
            return None
        lines = _fence_selected_pair(self._pc)
        if lines is None:
            return None
        local, remote = candidate_address(lines[0]), candidate_address(lines[1])
        if local is None or remote is None:
            return None
        # libjuice names a side by how it learnt it (often prflx: the address as seen in the
        # checks); what was announced says better what it is.
        ours = {(c.ip, c.port): c.type for c in self._local_candidates()}
        theirs = {(c.ip, c.port): c.type for c in self._remote_candidates.items}
        (ltype, lip, lport), (rtype, rip, rport) = local, remote
        return SelectedPair(ours.get((lip, lport), ltype), (lip, lport),
                            theirs.get((rip, rport), rtype), (rip, rport))

    @property
    def remote_candidates(self) -> tuple[IceCandidate, ...]:
        return tuple(self._remote_candidates.items)

    @property
    def failure(self) -> BaseException | None:
        """Why the connection failed, also when nobody was in :meth:`connect` to hear it
        (libdatachannel runs ICE and DTLS as soon as both descriptions are set)."""
        if self._failure.done():
            return self._failure.result()
        return TransportError(FINGERPRINT_MISMATCH) if self._mismatch() else None

    def _mismatch(self) -> bool:
        """libdatachannel logged a mismatch for the fingerprint the peer announced."""
        fp = self._remote.fingerprint if self._remote is not None else None
        return fp is not None and fp.value.upper() in _mismatched

    async def linger(self) -> None:
        """Close now if the peer is done with what we sent, else once it is (or at
        :meth:`close`, or after :data:`LINGER`), see the module docstring."""
        if self._closed or self._linger_task is not None:
            return
        if self._stream is None or self._stream.peer_done:
            await self.close()  # nothing of ours in flight
            return

        async def wait_then_close() -> None:
            assert self._stream is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LINGER):
                    await self._stream.wait_peer_done()
            await self.close()

        self._linger_task = asyncio.ensure_future(wait_then_close())

    async def close(self) -> None:
        """Tear everything down (idempotent): data channels, peer connection, sockets."""
        if self._closed:
            return
        self._closed = True
        if self._linger_task is not None and self._linger_task is not asyncio.current_task():
            self._linger_task.cancel()
        for task in (self._gather_task, self._describe_task, self._apply_task):
            if task is not None and not task.done():
                task.cancel()
        if self._stream is not None:
            await self._stream.shutdown()
        self._gathering_done.set()
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await self._pc.aclose()
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(BaseException):
                await self._events_task
        for task in (self._gather_task, self._describe_task, self._apply_task):
            if task is not None and task.done() and not task.cancelled():
                task.exception()  # retrieved: close() is how failures end


# ---------------------------------------------------------------------------------------------


class NativeDataChannelStream:
    """:class:`~jinglefs.streams.ByteStream` over the data channels of a
    :class:`NativeIceSession`.

    ``send`` writes binary messages of at most ``message_size`` bytes (and the peer's
    max-message-size) into our channel, waiting while libdatachannel queues data.
    ``receive`` reads what arrived on the peer's channel and returns ``b""`` once that
    channel closes.
    """

    def __init__(self, session: NativeIceSession) -> None:
        self._session = session
        self.message_size = max(1, session._message_size)
        self._tx: ldc.DataChannel | None = None
        self._rx: ldc.DataChannel | None = None
        self._rx_changed = asyncio.Event()
        self._pending: bytes = b""
        self._offset = 0
        self._sent = 0
        self._rx_ended: ldc.DataChannel | None = None  # its end-of-channel mark was taken
        self._peer_done = asyncio.Event()
        self._watchers: set[asyncio.Task[None]] = set()
        self._broken: str | None = None
        self._closed = False

    @property
    def session(self) -> NativeIceSession:
        return self._session

    @property
    def peer_done(self) -> bool:
        """The peer closed its channel or the connection (it has taken what it wanted), or
        we never sent anything it could still be waiting for."""
        return self._peer_done.is_set() or self._sent == 0

    async def wait_peer_done(self) -> None:
        await self._peer_done.wait()

    # -- wiring (NativeIceSession)

    def attach_tx(self, channel: ldc.DataChannel) -> None:
        self._tx = channel

    def on_datachannel(self, channel: ldc.DataChannel) -> None:
        # Conversations keeps the last channel the peer announced; so do we.
        _fence_unbounded_receive(channel)
        self._rx = channel
        self._rx_changed.set()
        watcher = asyncio.ensure_future(self._watch(channel))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, channel: ldc.DataChannel) -> None:
        """The peer closed its channel (RFC 8831 §6.7): it is done with ours too."""
        await channel.wait_closed()
        if channel is self._rx and not self._closed:
            self._peer_done.set()

    def peer_gone(self, why: str) -> None:
        """The peer connection ended: wake waiting sends; receive ends after what arrived."""
        if self._broken is None:
            self._broken = why
        self._peer_done.set()
        self._rx_changed.set()
        for channel in (self._tx, self._rx):
            if channel is not None:
                channel.close()  # the receive queue ends after its messages

    async def shutdown(self) -> None:
        """Wake every waiting send/receive with :class:`StreamClosed` (the session closes)."""
        self._closed = True
        self.peer_gone("the stream is closed")
        for watcher in list(self._watchers):
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher

    async def opened(self) -> None:
        if self._tx is None:
            raise TransportError("no data channel")
        try:
            await self._tx.wait_open()
        except ldc.RTCError as e:
            raise TransportError(f"the data channel did not open ({e})") from None
        # The peer's max-message-size (RFC 8841 §6), 64 KiB when it gave none.
        if self.message_size > self._tx.max_message_size > 0:
            self.message_size = self._tx.max_message_size

    # -- ByteStream

    async def send(self, data: bytes | memoryview) -> None:
        tx = self._tx
        view = memoryview(data).cast("B")
        size = self.message_size
        for start in range(0, len(view), size):
            if self._closed or self._broken is not None or tx is None:
                raise StreamClosed(self._broken or "the data channel is not open")
            try:
                # wait_for_drain: waits while libdatachannel's queue holds data (usrsctp's
                # send buffer is full), with the default low-water mark of 0.
                await tx.send(bytes(view[start:start + size]))
                self._sent += 1
            except ldc.RTCError as e:  # ConnectionClosedError included
                raise StreamClosed(self._broken or f"the data channel closed ({e})") from None

    async def receive(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes``: the messages already queued are joined (the transfer engine
        reads 1 MiB at a time; one call per 64 KiB message would cost more than the copy)."""
        while self._offset >= len(self._pending):
            if self._closed:
                raise StreamClosed(self._broken or "the stream is closed")
            rx = self._rx
            if rx is None:
                if self._broken is not None:
                    return b""
                self._rx_changed.clear()
                await self._rx_changed.wait()
                continue
            if rx is self._rx_ended:
                self._peer_done.set()
                return b""  # the peer closed its channel after its last message
            try:
                message = await rx.recv()
            except ldc.ConnectionClosedError:
                if rx is not self._rx:
                    continue  # an older channel; the peer announced another
                if self._closed:
                    raise StreamClosed(self._broken or "the stream is closed") from None
                self._rx_ended = rx
                continue
            if rx is self._rx:
                self._pending = message.encode() if isinstance(message, str) else message
                self._offset = 0
                self._pending = self._gather_queued(rx, max_bytes)
        start, pending = self._offset, self._pending
        if start == 0 and len(pending) <= max_bytes:
            self._pending = b""
            return pending  # no copy when it fits
        end = min(len(pending), start + max_bytes)
        self._offset = end
        return pending[start:end]

    def _gather_queued(self, rx: ldc.DataChannel, max_bytes: int) -> bytes:
        """The pending message and the ones queued behind it, up to ``max_bytes``."""
        queue: asyncio.Queue[Any] = _fence_receive_queue(rx)
        parts = [self._pending]
        size = len(self._pending)
        while size < max_bytes and not queue.empty():
            item = queue.get_nowait()
            if not isinstance(item, (bytes, str)):  # the binding's end-of-channel mark
                self._rx_ended = rx
                break
            data = item.encode() if isinstance(item, str) else item
            parts.append(data)
            size += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait until libdatachannel handed everything sent to usrsctp (bounded)."""
        tx = self._tx
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (tx is not None and self._broken is None and not tx.is_closed
               and tx.buffered_amount > 0 and loop.time() < deadline):
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        """Close our channel after the data (RFC 8831 §6.7); the peer connection follows
        once the peer is done (:meth:`NativeIceSession.linger`)."""
        if self._closed:
            return
        if self._broken is None:
            await self.drain()
        self._closed = True
        if self._tx is not None:
            self._tx.close()
        await self._session.linger()


# ------------------------------------------------------------------ the fence
#
# aiolibdatachannel wraps the part of libdatachannel's C API its authors needed; jinglefs
# needs two things more.  Each reaches into the binding, says why, and has a canary in
# tests/ice/test_native_fence.py (checked: aiolibdatachannel 2026.10.15).

_selected_pair_fn: Any = None


def _fence_selected_pair(pc: ldc.PeerConnection) -> tuple[str, str] | None:
    """(local, remote) ``a=candidate`` lines of the selected pair, None when there is none.

    The path badge needs to know whether the pair is relayed (RFC 8445 §8.1.1), and the
    binding does not wrap ``rtcGetSelectedCandidatePair`` (rtc.h), which its extension
    module exports: it is called through ctypes on that module with the peer connection's
    id, ``PeerConnection._native.handle``.
    """
    global _selected_pair_fn
    if _selected_pair_fn is None:
        library = ctypes.CDLL(importlib.import_module("aiolibdatachannel._native").__file__)
        fn = library.rtcGetSelectedCandidatePair
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                       ctypes.c_int]
        fn.restype = ctypes.c_int
        _selected_pair_fn = fn
    local, remote = ctypes.create_string_buffer(512), ctypes.create_string_buffer(512)
    if _selected_pair_fn(pc._native.handle, local, 512, remote, 512) < 0:
        return None
    return local.value.decode(errors="replace"), remote.value.decode(errors="replace")


def _fence_unbounded_receive(channel: ldc.DataChannel) -> None:
    """Keep every received message: swap the channel's receive queue for an unbounded one.

    ``DataChannel`` queues received messages in ``_recv_queue``, an ``asyncio.Queue`` of
    1024 entries that *drops the oldest* when full; a file transfer must lose nothing.
    libdatachannel itself has no receive-side flow control once a message callback is set,
    so the bound would only turn a slow disk into corrupted files.  The messages already
    queued move over in order; ``_handle_message`` looks the queue up at each call, on the
    loop thread, so nothing is lost or reordered.
    """
    old: asyncio.Queue[Any] = channel._recv_queue
    new: asyncio.Queue[Any] = asyncio.Queue()
    while not old.empty():
        new.put_nowait(old.get_nowait())
    channel._recv_queue = new


def _fence_receive_queue(channel: ldc.DataChannel) -> asyncio.Queue[Any]:
    """The queue :func:`_fence_unbounded_receive` put in: messages (bytes or str) and, once
    the channel closed, the binding's end-of-channel object (``recv()`` raises on it), so
    whatever is queued can be taken at once."""
    queue: asyncio.Queue[Any] = channel._recv_queue
    return queue
