"""ICE data channels as a Jingle transport, the first rung of the ladder (docs/protocol.md §6.4).

One :class:`IceNegotiator` per content and attempt.  It speaks Conversations'
``urn:xmpp:jingle:transports:webrtc-datachannel:1`` (an XEP-0176 ICE-UDP transport with the
XEP-0320 DTLS fingerprint inside) and glues three finished pieces together:

* an :class:`~jinglefs.ice.backend.IceBackend` – libdatachannel (:mod:`.native`) or aioice +
  aiortc (:class:`~jinglefs.ice.channel.IceSession`): ICE, DTLS, SCTP, one data channel per
  side; the fingerprint is checked inside the DTLS handshake, before any file byte.  Which
  one follows :func:`~jinglefs.ice.backend.choose_implementation` (``Settings.ice_backend``);
  it is named in the ``transport`` event's detail;
* :func:`~jinglefs.xmpp.extdisco.fetch_ice_servers` – STUN/TURN from our own server
  (XEP-0215), fetched once per client and fetched again once the TURN credentials expire;
* the manual servers of :class:`~jinglefs.api.Settings` (``stun`` / ``turn``), which win over
  the announced ones of the same kind: aioice takes one STUN and one TURN server only
  (docs/protocol.md §6.7, §15.20).

Flow::

    offer()      (initiator) servers, IceSession, start gathering; our payload with the
                 candidates gathered within OFFER_GATHER_WAIT (ufrag/pwd/fingerprint only
                 when gathering is slower, e.g. an unresponsive STUN/TURN server)
    answer()     (responder) the same, after feeding the offer: the DTLS setup of the
                 answer follows the offer's (RFC 5763 §5)
    remote_answer() / transport_info()
                 the peer's payloads are fed to the IceSession in arrival order (XEP-0176
                 trickle); transport-info before the offer/answer is kept until then
    connect()    wait for our gathering, trickle what the offer/answer lacked (XEP-0176:
                 candidates may follow in transport-info), then ICE + DTLS + SCTP
                 within the limits measured in the NAT lab (NO_PAIR_LIMIT,
                 AFTER_NEW_CANDIDATE, CONNECT_LIMIT below): Jingle has no
                 end-of-candidates, and aioice alone would retry for a minute
                 (docs/protocol.md §15.20).  The driver then replaces the transport
                 (SOCKS5, then IBB; XEP-0166 §7.2.15).
    direct_path()
                 (initiator, after the answer) whether the candidates show that the
                 machines reach each other directly: the ladder's fast path
    aclose()     every socket, whatever happened

Trickle timing: the initiator may trickle as soon as its offer has left (XEP-0176 §5.5: the
session is live once session-initiate is sent; the driver sends it right after offer()
returns).  The responder trickles only from connect() on, i.e. after session-accept
(docs/protocol.md §15.18), never before its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ..errors import CandidatesFailed, JingleFSError, TransportError
from ..events import PathKind
from ..jingle import ns
from ..jingle.model import Role
from ..jingle.transport import TransportPayload
from ..negotiator import Connected, NegotiationContext
from ..streams import ByteStream
from ..stun_turn import parse_stun, parse_turn
from .backend import (
    NATIVE,
    IceBackend,
    IceBackendFactory,
    choose_implementation,
    native_session_class,
)
from .channel import IceSession
from .probe import udp_reachable
from .protocol import IceCandidate, IceServers, WebRtcDataChannelTransport
from .reachability import direct_path, local_networks
from .servers import fetch_ice_servers

__all__ = [
    "ICE_SERVERS_SERVICE",
    "IceNegotiator",
    "manual_ice_servers",
    "merge_ice_servers",
]

logger = logging.getLogger(__name__)

#: Key in ``NegotiationContext.services``: the per-client XEP-0215 lookup (:class:`_Announced`).
ICE_SERVERS_SERVICE = "ice-servers"
#: Key in ``NegotiationContext.services``: per TURN server, whether UDP reaches it (.probe).
UDP_PROBE_SERVICE = "ice-udp-probe"
#: A UDP probe result is asked again after this many seconds (the network may change).
PROBE_RETRY = 300.0

#: How long offer()/answer() wait for our candidates before sending the payload without
#: them (they follow by transport-info).  Host candidates take milliseconds; a STUN or TURN
#: server that does not answer holds aioice's gathering for 5 s.
OFFER_GATHER_WAIT = 1.0
#: How long one session waits for the XEP-0215 lookup (it goes on for later sessions).
DISCOVERY_WAIT = 5.0
#: Fetch the servers again this long before the TURN credentials expire (XEP-0215 §2
#: ``expires``; TURN REST credentials are minted with a short lifetime).
EXPIRY_MARGIN = timedelta(seconds=60)
#: A lookup that found nothing (or failed) is tried again after this many seconds.
RETRY_NOTHING = 600.0
#: transport-info payloads kept while the peer's offer/answer is not known yet.
MAX_EARLY = 32

# How long connect() may take (README "How the ladder decides").  Measured in the NAT lab
# (tests/natlab/test_natlab_transfer.py, 2 shared cores, 2026-12-06), from the accept to
# the data channel open on the sender; aiortc (Python 3.11) / libdatachannel (3.12):
#
#   host pair (tests/e2e, loopback) ........................... 0.1 s
#   cone NAT, srflx pair (hole punch) ......................... 0.6 s / 0.15 s
#   symmetric NAT, relay (aiortc: 1 s relay hold included) .... 1.1 s / 0.35 s
#   UDP blocked, relay over TURN/TCP (aiortc on both) ......... 1.6 s
#   UDP blocked, STUN/UDP unanswered, then TURN/TCP relay ..... 4.6 s with aioice's 5 s
#       gathering wait (both relay candidates arrive late, by trickle); 2.1 s with the
#       fence's GATHER_TIMEOUT of 2.5 s
#   ICE that cannot work (UDP blocked, no TURN/TCP) ........... never: checks are not
#       refused, they go unanswered (aioice retransmits for 31.5 s)
#
#: No candidate pair answered this long after connect() started: give up (unless new
#: candidates arrived, below).  ≈2× the slowest pair that had its candidates at the accept
#: (TURN/TCP relay: its checks answer ≈1.2 s in, DTLS and SCTP follow).
NO_PAIR_LIMIT = 2.5
#: A server-reflexive or relayed candidate (ours, or the peer's by trickle) that arrives
#: during connect() gives the pairs it makes this long: the 4.6 s case above (its relay
#: pair connected ≈1 s after the last relay candidate).  Late *host* candidates do not:
#: they arrive late only when STUN and TURN did not answer (aioice reports every candidate
#: at once), and a host pair between two networks cannot work (on one network the fast
#: path or SOCKS5 direct connects).
AFTER_NEW_CANDIDATE = 2.5
#: The most connect() ever takes (also the ladder's limit for the rung, jinglefs.ladder):
#: a pair answered, DTLS and SCTP over it, or candidates that keep arriving.
CONNECT_LIMIT = 10.0
#: The responder gives up this much later than the initiator, which then replaces the
#: transport (XEP-0166 §7.2.15): never the responder's agent closing under a pair the
#: initiator is about to nominate.
RESPONDER_SLACK = 1.0


# ------------------------------------------------------------------ STUN/TURN settings


def manual_ice_servers(stun: tuple[str, ...], turn: tuple[str, ...]) -> IceServers | None:
    """The first usable ``Settings.stun`` and ``Settings.turn`` entries (aioice takes one
    of each); unusable entries are logged and skipped."""
    servers = IceServers()
    found = False
    for text in stun:
        try:
            host, port = parse_stun(text)
        except ValueError as e:
            logger.warning("ignoring STUN server %r: %s", text, e)
            continue
        servers = replace(servers, stun_host=host, stun_port=port)
        found = True
        break
    for text in turn:
        try:
            url = parse_turn(text)
        except ValueError as e:
            logger.warning("ignoring TURN server: %s", e)  # the text may hold a password
            continue
        if not url.username or not url.password:
            logger.warning("ignoring TURN server %s:%d: no user name and password",
                           url.host, url.port)
            continue
        servers = replace(servers, turn_host=url.host, turn_port=url.port,
                          turn_username=url.username, turn_password=url.password,
                          turn_transport=url.transport, turn_ssl=url.ssl, turn_expires=None)
        found = True
        break
    return servers if found else None


def merge_ice_servers(manual: IceServers | None, announced: IceServers | None
                      ) -> IceServers | None:
    """Manual servers win over the announced (XEP-0215) ones of the same kind; each kind the
    user did not configure comes from the server."""
    if manual is None or announced is None:
        return manual or announced
    merged = manual
    if not manual.stun_host and announced.stun_host:
        merged = replace(merged, stun_host=announced.stun_host, stun_port=announced.stun_port)
    if not manual.has_turn and announced.has_turn:
        merged = replace(merged, turn_host=announced.turn_host, turn_port=announced.turn_port,
                         turn_username=announced.turn_username,
                         turn_password=announced.turn_password,
                         turn_transport=announced.turn_transport, turn_ssl=announced.turn_ssl,
                         turn_expires=announced.turn_expires,
                         turn_also_udp_port=announced.turn_also_udp_port)
    return merged


# ------------------------------------------------------------------ XEP-0215, per client


@dataclass
class _Announced:
    """One XEP-0215 lookup of our server, shared by every session of a client."""

    pending: asyncio.Future[IceServers | None]
    started: float  # time.monotonic()

    def stale(self) -> bool:
        if not self.pending.done():
            return False  # in flight: share it
        if self.pending.cancelled() or self.pending.exception() is not None:
            return True
        servers = self.pending.result()
        if servers is None:
            return time.monotonic() - self.started > RETRY_NOTHING
        expires = servers.turn_expires
        if expires is None:
            return False
        if expires.tzinfo is None:  # XEP-0082 says UTC
            expires = expires.replace(tzinfo=UTC)
        return datetime.now(UTC) >= expires - EXPIRY_MARGIN


async def announced_ice_servers(ctx: NegotiationContext) -> IceServers | None:
    """STUN/TURN our own server announces (XEP-0215), looked up once per client and again
    when the TURN credentials are about to expire.  None when there are none."""
    cache = ctx.services.get(ICE_SERVERS_SERVICE)
    if not isinstance(cache, _Announced) or cache.stale():
        domain = ctx.local_jid.partition("@")[2].partition("/")[0] or ctx.local_jid
        timeout = min(DISCOVERY_WAIT, ctx.settings.timeouts.iq)
        cache = _Announced(asyncio.ensure_future(
            fetch_ice_servers(ctx.connection.xmpp, domain, timeout=timeout)), time.monotonic())
        ctx.services[ICE_SERVERS_SERVICE] = cache
    try:
        # shielded: one session giving up must not cancel the shared lookup
        return await asyncio.wait_for(asyncio.shield(cache.pending), DISCOVERY_WAIT)
    except TimeoutError:
        logger.info("XEP-0215: no answer yet from our server; ICE without its servers")
        return None
    except Exception as e:  # noqa: BLE001 - no servers only removes candidates
        logger.info("XEP-0215 lookup failed: %s", e)
        return None


async def turn_udp_reachable(ctx: NegotiationContext, host: str, port: int) -> bool:
    """Whether UDP reaches our TURN server (:mod:`.probe`), asked once per client and server
    and again after :data:`PROBE_RETRY`; a session that needs it while it runs shares it."""
    probes = ctx.services.setdefault(UDP_PROBE_SERVICE, {})
    assert isinstance(probes, dict)
    entry = probes.get((host, port))
    if entry is None or (entry[0].done() and time.monotonic() - entry[1] > PROBE_RETRY):
        entry = (asyncio.ensure_future(udp_reachable(host, port)), time.monotonic())
        probes[(host, port)] = entry
    try:
        return bool(await asyncio.shield(entry[0]))
    except Exception as e:  # noqa: BLE001 - unknown means "try UDP", the faster stack
        logger.info("UDP probe failed: %s", e)
        return True


# ------------------------------------------------------------------ the negotiator


def _key(c: IceCandidate) -> tuple[str, int]:
    return (c.ip, c.port)


class IceNegotiator:
    """Conversations' WebRTC data channel transport for one content (docs/protocol.md §6.4):
    implements :class:`~jinglefs.negotiation.base.Negotiator`."""

    namespace = ns.WEBRTC_DC
    kind = "ice"
    #: What we advertise (docs/protocol.md §13.1): the DC transport, and ICE-UDP + DTLS it is
    #: made of.
    features = (ns.WEBRTC_DC, ns.ICE_UDP, ns.DTLS)
    #: What tells us that a *peer* can take this transport: the DC feature alone, as in
    #: Conversations' own choice (docs/protocol.md §6.4).  Dino and Gajim advertise ice-udp:1
    #: and dtls:0 for calls and would refuse a data channel offer.
    peer_features = (ns.WEBRTC_DC,)

    def __init__(self, ctx: NegotiationContext) -> None:
        self.ctx = ctx
        self._ice: IceBackend | None = None
        self._servers: IceServers | None = None
        self._gathering: asyncio.Task[WebRtcDataChannelTransport] | None = None
        #: local candidates the peer already has (in the offer/answer or a transport-info)
        self._signalled: set[tuple[str, int]] = set()
        self._may_trickle = False
        #: the peer's offer/answer was handed to the IceSession (or it was refused)
        self._remote_known = False
        self._early: list[WebRtcDataChannelTransport] = []
        self._inbox: list[WebRtcDataChannelTransport] = []
        self._feeder: asyncio.Task[None] | None = None
        #: why this attempt cannot work, found before connect() (reported by connect())
        self._failure: str | None = None
        self._stream: ByteStream | None = None
        self._closed = False
        #: every candidate of the peer so far (answer/offer and trickle): the fast path
        self._peer_candidates: list[IceCandidate] = []
        #: when a new srflx/relay candidate last arrived (ours or the peer's), and a wake-up
        #: for connect() (AFTER_NEW_CANDIDATE)
        self._news_at: float | None = None
        self._news = asyncio.Event()

    # ----------------------------------------------------------- offer / answer

    async def offer(self) -> TransportPayload:
        ice = await self._start(initiator=True)
        payload = await self._payload(ice)
        # The driver sends session-initiate / transport-replace before it awaits anything
        # else, so a trickle from a later gathering callback follows the offer on the wire.
        self._may_trickle = True
        return payload

    async def answer(self, remote: TransportPayload) -> TransportPayload:
        ice = await self._start(initiator=False)
        if not isinstance(remote, WebRtcDataChannelTransport):
            self._failure = "the contact's offer is not a WebRTC data channel transport"
        else:
            try:
                # Before gathering: the DTLS setup of our answer follows the offer's.
                await ice.add_remote(remote)
            except TransportError as e:
                self._failure = f"unusable ICE offer: {e}"
            self._log_dropped(remote)
        self._remote_known = True
        if self._failure is None:
            self._feed(*self._early)
        self._early.clear()
        return await self._payload(ice)

    def remote_answer(self, remote: TransportPayload) -> None:
        if not isinstance(remote, WebRtcDataChannelTransport):
            self._failure = "the contact answered our ICE offer with another transport"
            return
        self._log_dropped(remote)
        self._heard(remote.candidates)
        self._remote_known = True
        self._feed(remote, *self._early)  # the answer first: it carries ufrag/pwd/fingerprint
        self._early.clear()

    def transport_info(self, payload: TransportPayload) -> None:
        """XEP-0176 trickle: the peer's candidates, possibly before its offer/answer is known."""
        if self._closed or not isinstance(payload, WebRtcDataChannelTransport):
            return  # e.g. a late transport-info of a replaced transport
        self._log_dropped(payload)
        self._heard(payload.candidates)
        if not self._remote_known:
            if len(self._early) < MAX_EARLY:
                self._early.append(payload)
            return
        self._feed(payload)

    # ------------------------------------------------------------------ connect

    async def connect(self) -> Connected:
        ice = self._ice
        assert ice is not None and self._gathering is not None
        # Responder: session-accept has left (the driver connects only after it), so our
        # late candidates may follow now (docs/protocol.md §15.18).
        self._may_trickle = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        slack = 0.0 if self.ctx.role is Role.INITIATOR else RESPONDER_SLACK
        cap = min(CONNECT_LIMIT, max(1.0, self.ctx.settings.timeouts.transport)) + slack
        work = asyncio.ensure_future(self._connect_steps(ice, started + cap))
        try:
            while not work.done():
                # The deadline moves while candidates keep coming (NO_PAIR_LIMIT and
                # AFTER_NEW_CANDIDATE), and to the cap once a pair answered.
                deadline = started + min(cap, NO_PAIR_LIMIT + slack)
                if self._news_at is not None:
                    deadline = max(deadline, min(started + cap,
                                                 self._news_at + AFTER_NEW_CANDIDATE + slack))
                if loop.time() >= deadline and ice.selected_pair() is not None:
                    deadline = started + cap  # DTLS and SCTP over a pair that answered
                if loop.time() >= deadline:
                    raise CandidatesFailed(self._why_not(ice, loop.time() - started))
                self._news.clear()
                news = asyncio.ensure_future(self._news.wait())
                await asyncio.wait({work, news}, timeout=deadline - loop.time(),
                                   return_when=asyncio.FIRST_COMPLETED)
                news.cancel()
            stream = work.result()
        except TimeoutError:
            await ice.close()
            raise CandidatesFailed(self._why_not(ice, loop.time() - started)) from None
        except BaseException:
            if not work.done():
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work
            await ice.close()  # the backend's connect closes itself; the other steps do not
            raise
        self._stream = stream
        pair = ice.selected_pair()
        path = pair.path if pair is not None else PathKind.ICE_DIRECT
        # Which stack carried it, always last: "host a:p -> host b:q (libdatachannel)".
        detail = (f"{pair.detail} " if pair is not None else "") + f"({ice.implementation})"
        logger.info("ICE connected (%s): %s", path.value, detail)
        return Connected(stream, path, detail)

    async def _connect_steps(self, ice: IceBackend, until: float) -> ByteStream:
        """What connect() bounds: our gathering, the peer's payloads fed to the backend,
        then its ICE, DTLS and SCTP with what is left until ``until`` (loop time)."""
        if self._failure is not None:
            raise CandidatesFailed(self._failure)
        if self.ctx.settings.ice_relay_only and not (self._servers and
                                                     self._servers.has_turn):
            raise CandidatesFailed("relay-only ICE needs a TURN server, and neither our "
                                   "server (XEP-0215) nor the settings name one")
        assert self._gathering is not None
        try:
            await asyncio.shield(self._gathering)
        except Exception as e:  # noqa: BLE001 - whatever it was, the next rung may work
            raise CandidatesFailed(f"could not gather ICE candidates: {e}") from None
        self._trickle()
        if self._feeder is not None:  # the peer's offer/answer is in the backend
            await asyncio.shield(self._feeder)
        if self._failure is not None:
            raise CandidatesFailed(self._failure)
        loop = asyncio.get_running_loop()
        return await ice.connect(timeout=max(0.1, until - loop.time()))

    def _why_not(self, ice: IceBackend, elapsed: float) -> str:
        """Why connect() gave up after ``elapsed`` seconds, by the step it was in."""
        gathering = self._gathering
        if gathering is not None and not gathering.done():
            return f"gathering ICE candidates took over {elapsed:.1f} s"
        pair = ice.selected_pair()
        if pair is not None:
            return (f"the ICE pair {pair.detail} answered, but DTLS and SCTP did not finish "
                    f"within {elapsed:.1f} s")
        return f"no ICE candidate pair answered within {elapsed:.1f} s"

    def _heard(self, candidates: tuple[IceCandidate, ...]) -> None:
        """The peer's candidates (offer/answer or trickle), for the fast path and the
        connect() deadline."""
        if len(self._peer_candidates) < MAX_EARLY * 2:
            self._peer_candidates.extend(candidates)
        self._note_news(candidates)

    def _note_news(self, candidates: tuple[IceCandidate, ...]) -> None:
        """A server-reflexive or relayed candidate arrived: AFTER_NEW_CANDIDATE restarts."""
        if any(c.type in ("srflx", "relay") for c in candidates):
            self._news_at = asyncio.get_running_loop().time()
            self._news.set()

    def direct_path(self) -> str | None:
        """After the peer's answer: why the two machines should reach each other directly
        (same network, or a side without NAT; :mod:`.reachability`), or None.  The ladder
        then tries SOCKS5 direct before this transport (README "How the ladder decides")."""
        if self._failure is not None or not self._peer_candidates:
            return None
        ours: tuple[IceCandidate, ...] = ()
        task = self._gathering
        if task is not None and task.done() and not task.cancelled() \
                and task.exception() is None:
            ours = task.result().candidates
        try:
            networks = local_networks()
        except Exception as e:  # noqa: BLE001 - no interface list: no fast path
            logger.info("cannot list our networks: %s", e)
            networks = []
        return direct_path(ours, self._peer_candidates, networks)

    # ------------------------------------------------------------------- close

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._feeder, self._gathering):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.aclose()  # idempotent after the driver's close
        if self._ice is not None:
            await self._ice.close()  # every socket: aioice's, TURN allocations, DTLS

    # ----------------------------------------------------------------- helpers

    async def _start(self, *, initiator: bool) -> IceBackend:
        settings = self.ctx.settings
        manual = manual_ice_servers(settings.stun, settings.turn)
        announced = await announced_ice_servers(self.ctx)
        self._servers = merge_ice_servers(manual, announced)
        host_addresses = (list(settings.ice_host_addresses)
                          if settings.ice_host_addresses is not None else None)
        native = native_session_class()
        reachable = None
        if (native is not None and settings.ice_backend == "auto"
                and not settings.ice_relay_only and self._servers is not None
                and self._servers.turn_transport == "tcp" and self._servers.turn_host
                and self._servers.turn_udp_port is not None):
            reachable = await turn_udp_reachable(self.ctx, self._servers.turn_host,
                                                 self._servers.turn_udp_port)
        choice = choose_implementation(settings.ice_backend, native=native is not None,
                                       servers=self._servers,
                                       relay_only=settings.ice_relay_only,
                                       turn_udp_reachable=reachable)
        logger.info("ICE over %s: %s", choice.implementation, choice.why)
        cls: IceBackendFactory = (native if choice.implementation == NATIVE
                                  and native is not None else IceSession)
        self._ice = cls(initiator=initiator, servers=self._servers,
                        relay_only=settings.ice_relay_only, host_addresses=host_addresses)
        return self._ice

    async def _payload(self, ice: IceBackend) -> WebRtcDataChannelTransport:
        """Our offer/answer: with the candidates if gathering finishes within
        OFFER_GATHER_WAIT, else credentials and fingerprint only (candidates trickle)."""
        self._gathering = asyncio.ensure_future(ice.gather())
        self._gathering.add_done_callback(self._gathered)
        # asyncio.wait: a failed gathering must not fail offer()/answer(); connect() reports
        # it and the driver moves to the next rung.
        await asyncio.wait({self._gathering}, timeout=OFFER_GATHER_WAIT)
        gathering = self._gathering
        if gathering.done() and not gathering.cancelled() and gathering.exception() is None:
            payload = gathering.result()
            self._signalled.update(_key(c) for c in payload.candidates)
            return payload
        # XEP-0176: ufrag and pwd (and here the XEP-0320 fingerprint) are enough to start;
        # aioice knows its credentials before gathering.
        return ice.credentials_payload()

    def _gathered(self, task: asyncio.Task[WebRtcDataChannelTransport]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            logger.info("ICE gathering failed: %s", error)
            return
        self._trickle()

    def _trickle(self) -> None:
        """Send, in one transport-info, the local candidates the peer does not have yet."""
        task = self._gathering
        if (not self._may_trickle or self._closed or task is None or not task.done()
                or task.cancelled() or task.exception() is not None):
            return
        payload = task.result()
        new = tuple(c for c in payload.candidates if _key(c) not in self._signalled)
        if not new:
            return
        self._signalled.update(_key(c) for c in new)
        self._note_news(new)
        logger.debug("ICE: trickling %d candidate(s)", len(new))
        with contextlib.suppress(JingleFSError):  # the session ended meanwhile
            self.ctx.send_transport_info(payload.trickle(new))

    def _feed(self, *payloads: WebRtcDataChannelTransport) -> None:
        """Hand the peer's payloads to the IceSession, one after the other, in order."""
        if not payloads or self._closed:
            return
        self._inbox.extend(payloads)
        if self._feeder is None or self._feeder.done():
            self._feeder = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        ice = self._ice
        assert ice is not None
        while self._inbox and not self._closed:
            payload = self._inbox.pop(0)
            try:
                await ice.add_remote(payload)
            except TransportError as e:
                # Only the first payload can be refused (no ufrag/pwd/fingerprint).
                self._failure = f"unusable ICE answer: {e}"

    @staticmethod
    def _log_dropped(payload: WebRtcDataChannelTransport) -> None:
        if payload.dropped_candidates:
            logger.info("ICE: ignored %d unusable candidate(s) of the contact",
                        payload.dropped_candidates)
