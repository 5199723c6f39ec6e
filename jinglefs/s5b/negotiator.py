"""SOCKS5 Bytestreams as a Jingle transport (XEP-0260 over XEP-0065), the middle rung.

One :class:`S5bNegotiator` per content and attempt.  It glues three finished pieces
together, in the order their author prescribes:

* :class:`~jinglefs.jingle.s5b.S5bNegotiation` – the sans-IO candidate exchange and
  nomination (XEP-0260 §2.3/§2.4);
* :mod:`jinglefs.transports.socks5` – our listener for *direct* candidates and the
  staggered dialler for the peer's candidates;
* :mod:`jinglefs.xmpp.s5b` – proxy discovery and activation (XEP-0065 §4, §6.3.5).

Flow (both roles)::

    offer()/answer()  start the listener, allow our DST.ADDRs, add the server's proxy,
                      build the negotiation, return our <transport/> (candidates)
    connect()         dial the peer's candidates (staggered), report candidate-used or
                      candidate-error, wait for the peer's report, then:
                        READY       -> our outgoing stream, or the one the peer opened
                                       to our listener (nomination.ours)
                        ACTIVATING  -> connect to our own proxy, activate it with the
                                       *transport* sid, send <activated/>
                        AWAITING_ACTIVATED -> no data until the peer's <activated/>
                        FAILED      -> CandidatesFailed (the driver falls back to IBB)
                        ERROR       -> RemoteProtocolError (the driver ends the session)
    aclose()          listener, dialler and every stream, however it ended

The responder's connect() only runs after session-accept went out (the driver calls
it after accepting): docs/protocol.md §15.18.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import replace

from ..errors import CandidatesFailed, RemoteProtocolError, TransportError
from ..events import PathKind
from ..jid import bare_jid
from ..jingle import ns
from ..jingle.model import Role
from ..jingle.transport import TransportPayload
from ..negotiator import Connected, NegotiationContext
from .network import S5bListener, TcpStream, connect_candidate, connect_first
from .protocol import Role as S5bRole
from .protocol import S5bCandidate, S5bNegotiation, S5bState, S5bTransport
from .proxy import activate, discover_proxy

__all__ = ["PROXY_SERVICE", "S5bDirectNegotiator", "S5bNegotiator"]

logger = logging.getLogger(__name__)

#: Key in ``NegotiationContext.services``: the per-client proxy discovery (a future that
#: resolves to our server's proxy candidate or None).  XEP-0065 §4 discovery costs a
#: few round trips, so it is done once per client, not once per session.
PROXY_SERVICE = "s5b-proxy"

#: XEP-0260 §4 / docs/protocol.md §7.3: start the next candidate this long after the
#: previous one, and wait a bit more before the first proxy (direct paths first).
STAGGER = 0.2
PROXY_DELAY = 0.3
#: Per direct candidate and DST.ADDR.  A TCP handshake plus the two SOCKS5 round trips
#: (XEP-0065 §5.3.2) are 3 RTTs: 1-5 ms in the NAT lab and on a LAN, ≈0.9 s at a 300 ms
#: RTT; Linux re-sends a lost SYN after 1 s.  A refused connection (nothing listens there)
#: fails at once; only an address that drops the SYN (a private address behind another
#: NAT: what every NATed pair offers each other) waits the whole limit, and the sender
#: cannot nominate a proxy before its own direct attempts ended (XEP-0260 §2.4), so this
#: limit is paid whenever the proxy carries the file (NAT lab: s5b-proxy 3.0 s with 3 s
#: here, 1.5 s with 1.5 s).  Conversations waits 3 s (docs/protocol.md §7.6).
DIRECT_ATTEMPT_TIMEOUT = 1.5
#: Per proxy candidate (a server on the internet, reached through any NAT).
PROXY_ATTEMPT_TIMEOUT = 3.0
#: Connecting to our own proxy once it is nominated, and its activation IQ (XEP-0065
#: §6.3.5; Prosody answers in ≈2 ms in the NAT lab).
PROXY_CONNECT_TIMEOUT = 3.0
PROXY_ACTIVATE_TIMEOUT = 3.0
#: The whole connection phase, from the accept (or transport-accept) to a stream (also the
#: ladder's limit for the rung, jinglefs.ladder): our dials, the peer's report (its dials:
#: 1.5 s for jinglefs, 3 s per candidate for Conversations), proxy activation.  NAT lab
#: (2026-12-06): direct 0.01 s, proxy 1.5 s; both sides' candidates unreachable
#: (candidate-error both ways) 1.5 s.
CONNECT_LIMIT = 6.0
#: The same for SOCKS5 with direct candidates only, the ladder's fast path: both machines
#: seem to reach each other, so it connects in milliseconds (NAT lab "open": 0.01 s), or
#: fails once both sides' dials ended (≈1.5 s); a Conversations peer that still dials our
#: candidates reports within 3 s.  A wrong guess (a firewall that drops inbound TCP) costs
#: at most this.
DIRECT_ONLY_CONNECT_LIMIT = 3.5
#: The peer reported candidate-used for one of our direct candidates: it had finished the
#: handshake before saying so, so the connection is normally already there.
ACCEPTED_WAIT = 5.0
#: Before the first byte through the contact's proxy: the activation it announced with
#: <activated/> may still be on its way to the proxy (Gajim, docs/interop.md §5.4).
ACTIVATED_GRACE = 0.25
#: Upper bound for the disco walk of XEP-0065 §4.
DISCOVERY_TIMEOUT = 10.0


def _where(cand: S5bCandidate) -> str:
    """``host:port`` of a candidate (IPv6 in brackets)."""
    try:
        is_v6 = ipaddress.ip_address(cand.host).version == 6
    except ValueError:
        is_v6 = False
    return f"[{cand.host}]:{cand.port}" if is_v6 else f"{cand.host}:{cand.port}"


def _describe(cand: S5bCandidate) -> str:
    return f"proxy {cand.jid} ({_where(cand)})" if cand.is_proxy else _where(cand)


class S5bNegotiator:
    """XEP-0260 for one content: implements :class:`~jinglefs.negotiation.base.Negotiator`."""

    namespace = ns.S5B_TRANSPORT
    kind = "s5b"
    #: XEP-0260 §5: both the Jingle transport and XEP-0065 itself.
    features = (ns.S5B_TRANSPORT, ns.BYTESTREAMS)
    #: How long connect() may take (seconds; Timeouts.transport caps it).
    connect_limit = CONNECT_LIMIT
    #: Offer and dial direct candidates only (:class:`S5bDirectNegotiator`).
    direct_only = False

    def __init__(self, ctx: NegotiationContext) -> None:
        self.ctx = ctx
        self._neg: S5bNegotiation | None = None
        self._listener: S5bListener | None = None
        self._listener_closing: asyncio.Future[None] | None = None
        #: transport-info payloads that arrived before our negotiation existed
        self._early: list[S5bTransport] = []
        self._changed = asyncio.Event()
        self._dial: asyncio.Task[None] | None = None
        self._reported = False
        #: why our own attempts failed (for the error message), None if they did not
        self._dial_failure: str | None = None
        #: the peer's candidate we connected to, and that connection
        self._outgoing: tuple[S5bCandidate, TcpStream] | None = None
        #: every stream we opened or took from the listener (closed by aclose)
        self._streams: list[TcpStream] = []
        self._chosen: TcpStream | None = None
        #: a reason not to dial at all (e.g. the initiator asked for mode='udp')
        self._no_dial: str | None = None
        #: the peer's answer broke XEP-0260 (reported by connect())
        self._answer_error: RemoteProtocolError | None = None
        self._closed = False

    # ----------------------------------------------------------- offer / answer

    async def offer(self) -> TransportPayload:
        # XEP-0260 §2.2: the transport sid is ours to pick as initiator (or when we
        # propose S5B in a transport-replace); it is *not* the Jingle sid.
        local = await self._local_candidates(exclude=set())
        return self._start(S5bNegotiation(
            role=self._role, sid=self.ctx.new_id(), local_jid=self.ctx.local_jid,
            peer_jid=self.ctx.peer_jid, local_candidates=local))

    async def answer(self, remote: TransportPayload) -> TransportPayload:
        assert isinstance(remote, S5bTransport)
        remote_candidates = remote.candidates
        if remote.mode != "tcp":
            # XEP-0260 §2.2: only the initiator sets the mode; jinglefs (like Dino)
            # speaks TCP only.  We answer, report candidate-error, and let the
            # initiator fall back (§3).
            self._no_dial = f"the contact asked for SOCKS5 over {remote.mode}, not TCP"
            remote_candidates = ()
        # docs/protocol.md §7.2: the responder must not offer a host:port the initiator
        # already offered (typically the same server proxy).
        taken = {(c.host, c.port) for c in remote.candidates}
        local = await self._local_candidates(exclude=taken)
        # The responder echoes the initiator's transport sid (XEP-0260 §2.2).
        return self._start(S5bNegotiation(
            role=self._role, sid=remote.sid, local_jid=self.ctx.local_jid,
            peer_jid=self.ctx.peer_jid, local_candidates=local,
            remote_candidates=remote_candidates, remote_dstaddr=remote.dstaddr))

    def remote_answer(self, remote: TransportPayload) -> None:
        neg = self._neg
        assert neg is not None
        if not isinstance(remote, S5bTransport):
            self._answer_error = RemoteProtocolError(
                "the contact answered our SOCKS5 offer with another transport")
        elif remote.sid != neg.sid:
            # XEP-0260 §2.2: the responder MUST echo the sid; both DST.ADDR hashes and
            # the proxy activation depend on it.
            self._answer_error = RemoteProtocolError(
                f"the contact answered with SOCKS5 sid {remote.sid!r} instead of {neg.sid!r}")
        else:
            neg.remote_dstaddr = remote.dstaddr
            neg.add_remote_candidates(remote.candidates)
        self._changed.set()

    def transport_info(self, payload: TransportPayload) -> None:
        if not isinstance(payload, S5bTransport) or self._closed:
            return
        if self._neg is None:
            self._early.append(payload)  # e.g. candidates sent while we discover the proxy
            return
        self._feed(payload)

    # ------------------------------------------------------------------ connect

    async def connect(self) -> Connected:
        neg = self._neg
        assert neg is not None
        try:
            connected = await self._connect(neg)
        except BaseException:
            self._abort_streams()
            raise
        finally:
            if self._dial is not None and not self._dial.done():
                self._dial.cancel()
                with contextlib.suppress(BaseException):
                    await self._dial
            # Our ports are closed as soon as the connection phase is over, however
            # it went (the chosen stream, if accepted by the listener, stays open).
            self._close_listener_soon()
        # Everything but the chosen stream goes (losers, the unused outgoing stream).
        self._abort_streams(keep=self._chosen)
        return connected

    async def _connect(self, neg: S5bNegotiation) -> Connected:
        if self._answer_error is not None:
            raise self._answer_error
        self._dial = asyncio.ensure_future(self._dial_and_report(neg))
        self._dial.add_done_callback(lambda _: self._changed.set())
        # Our own bound (the driver's is a little longer), for a clearer reason.
        limit = min(self.connect_limit, max(1.0, self.ctx.settings.timeouts.transport))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            self._changed.clear()
            dial = self._dial
            if dial.done() and not dial.cancelled():
                failure = dial.exception()
                if failure is not None:
                    raise failure  # a bug, not a network failure (those are reported)
            if neg.state is S5bState.ERROR:
                assert neg.error is not None
                raise RemoteProtocolError(
                    f"the contact broke the SOCKS5 negotiation: {neg.error}",
                    condition=neg.error.condition,
                    jingle_condition=neg.error.jingle_condition)
            if neg.state is S5bState.FAILED:
                raise CandidatesFailed(self._failure_text(neg))
            if neg.state is S5bState.ACTIVATING:
                return await self._activate(neg)
            if neg.state is S5bState.READY:
                return await self._take(neg)
            # CONNECTING (a report is missing) or AWAITING_ACTIVATED (XEP-0260 §2.4: no
            # data before the peer's <activated/>).
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CandidatesFailed(self._stuck_text(neg, limit))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _dial_and_report(self, neg: S5bNegotiation) -> None:
        """XEP-0260 §2.3: try the peer's candidates, best first, then report."""
        if self._no_dial is not None:
            self._dial_failure = self._no_dial
            self._report(neg, None)
            return
        floor = neg.min_useful_priority
        candidates = [c for c in neg.remote_candidates if (floor is None or c.priority > floor)
                      and not (self.direct_only and c.is_proxy)]
        if not candidates:
            if not neg.remote_candidates:
                self._dial_failure = "it offered none"
            elif self.direct_only and all(c.is_proxy for c in neg.remote_candidates):
                self._dial_failure = "it offered no direct candidate"
            else:
                self._dial_failure = "not needed, it already reached a better one of ours"
            self._report(neg, None)
            return
        try:
            cand, stream = await connect_first(candidates, neg.dstaddrs_for, stagger=STAGGER,
                                               proxy_delay=PROXY_DELAY,
                                               timeout=DIRECT_ATTEMPT_TIMEOUT,
                                               proxy_timeout=PROXY_ATTEMPT_TIMEOUT)
        except TransportError as e:
            self._dial_failure = str(e)
            self._report(neg, None)
            return
        self._streams.append(stream)
        self._outgoing = (cand, stream)
        self._report(neg, cand)

    def _report(self, neg: S5bNegotiation, cand: S5bCandidate | None) -> None:
        """Our candidate-used / candidate-error, exactly once (XEP-0260 §2.3)."""
        if self._reported:
            return
        self._reported = True
        if cand is not None:
            neg.local_candidate_connected(cand.cid)
        else:
            neg.local_candidates_failed()
        self._flush(neg)
        self._changed.set()

    def _feed(self, payload: S5bTransport) -> None:
        neg = self._neg
        assert neg is not None
        neg.receive(payload)
        self._flush(neg)
        self._prune(neg)
        self._changed.set()

    def _prune(self, neg: S5bNegotiation) -> None:
        """XEP-0260 §2.3: after the peer's candidate-used, only the peer's candidates
        with a higher priority than its pick are worth waiting for; if none is left,
        stop dialling and report candidate-error so the peer's pick is nominated."""
        floor = neg.min_useful_priority
        dial = self._dial
        if floor is None or dial is None or dial.done() or self._reported:
            return
        if any(c.priority > floor for c in neg.remote_candidates):
            return
        dial.cancel()
        self._dial_failure = "not needed, it already reached a better one of ours"
        self._report(neg, None)

    async def _activate(self, neg: S5bNegotiation) -> Connected:
        """XEP-0260 §2.4: our proxy was nominated; connect to it ourselves with the
        owner-first DST.ADDR, activate the bytestream with the *transport* sid
        (docs/protocol.md §15.17), then tell the peer with <activated cid=…/>."""
        assert neg.nomination is not None
        proxy = neg.nomination.candidate
        try:
            stream = await connect_candidate(proxy.host, proxy.port, neg.proxy_dstaddr(),
                                             PROXY_CONNECT_TIMEOUT)
            self._streams.append(stream)
            await activate(self.ctx.connection.xmpp, proxy.jid, neg.sid, self.ctx.peer_jid,
                           timeout=min(PROXY_ACTIVATE_TIMEOUT, self.ctx.settings.timeouts.iq))
        except TransportError as e:
            # XEP-0260 §2.4: <proxy-error/>, then both sides fall back (§3).
            neg.proxy_activation_failed(f"could not use our proxy {proxy.jid}: {e}")
            self._flush(neg)
            raise CandidatesFailed(f"could not use the proxy {_describe(proxy)}: {e}") from None
        neg.proxy_activated()
        self._flush(neg)  # <activated/> leaves before any byte of ours
        self._chosen = stream
        logger.debug("S5B %s: activated our proxy %s", neg.sid, proxy.jid)
        # the bare JID: ejabberd's streamhost JID carries a resource (its cluster node)
        return Connected(stream, PathKind.S5B_PROXY, f"via {bare_jid(proxy.jid)}")

    async def _take(self, neg: S5bNegotiation) -> Connected:
        """READY: the stream of the nominated candidate (XEP-0260 §2.4)."""
        nom = neg.nomination
        assert nom is not None
        cand = nom.candidate
        if nom.ours:
            # The peer connected to our listener (an <activated/> we sent ourselves
            # returns from _activate, so an own proxy never gets here).
            assert self._listener is not None and not cand.is_proxy
            stream = await self._listener.wait_for(*neg.listener_dstaddrs(), cid=cand.cid,
                                                   timeout=ACCEPTED_WAIT)
            self._streams.append(stream)
        else:
            assert self._outgoing is not None and self._outgoing[0].cid == cand.cid
            stream = self._outgoing[1]
            if cand.is_proxy and self.ctx.role is Role.INITIATOR:
                # We write first through the contact's proxy: Gajim sends <activated/>
                # with its activation IQ, before the proxy confirmed it (docs/interop.md
                # §5.4), so give the activation a moment to land before the first byte.
                await asyncio.sleep(ACTIVATED_GRACE)
        self._chosen = stream
        logger.debug("S5B %s: nominated %s candidate %s (%s)", neg.sid,
                     "our" if nom.ours else "the contact's", cand.cid, _describe(cand))
        if cand.is_proxy:
            return Connected(stream, PathKind.S5B_PROXY, f"via {bare_jid(cand.jid)}")
        return Connected(stream, PathKind.S5B_DIRECT, _where(cand))

    # ------------------------------------------------------------------- close

    async def aclose(self) -> None:
        self._closed = True
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
            with contextlib.suppress(BaseException):
                await self._dial
        self._abort_streams(keep=self._chosen)
        if self._chosen is not None:
            with contextlib.suppress(Exception):
                await self._chosen.aclose()  # flushes; idempotent after the driver's close
        self._close_listener_soon()
        if self._listener_closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._listener_closing), 10.0)

    def _abort_streams(self, keep: TcpStream | None = None) -> None:
        for stream in self._streams:
            if stream is not keep:
                stream.abort()
        self._streams = [keep] if keep is not None and keep in self._streams else []

    def _close_listener_soon(self) -> None:
        """Close the listening sockets now; don't wait here for connections it accepted.

        S5bListener.aclose() ends with Server.wait_closed(), which (Python ≥ 3.12.1)
        waits until every accepted connection is gone, the chosen stream included.
        The sockets stop listening in the task's first step.
        """
        if self._listener is not None and self._listener_closing is None:
            self._listener_closing = asyncio.ensure_future(self._listener.aclose())

    # ----------------------------------------------------------------- helpers

    @property
    def _role(self) -> S5bRole:
        return "initiator" if self.ctx.role is Role.INITIATOR else "responder"

    def _start(self, neg: S5bNegotiation) -> S5bTransport:
        """The recipe's step 1: allow our DST.ADDRs before the offer leaves."""
        self._neg = neg
        if self._listener is not None:
            self._listener.allow(*neg.listener_dstaddrs())
        early, self._early = self._early, []
        for payload in early:
            self._feed(payload)
        return neg.offer()

    async def _local_candidates(self, exclude: set[tuple[str, int]]) -> list[S5bCandidate]:
        """XEP-0260 §2.1: our own listener on every usable address (loopback included:
        peers on one machine are common) and the server's proxy."""
        settings = self.ctx.settings
        found: list[S5bCandidate] = []
        if settings.s5b_direct:
            try:
                self._listener = await S5bListener.start(include_loopback=True)
            except TransportError as e:
                logger.info("no direct SOCKS5 candidates: %s", e)
            else:
                found.extend(self._listener.candidates(self.ctx.local_jid))
        if settings.use_proxy and not self.direct_only:
            proxy = await self._proxy()
            if proxy is not None:
                # A fresh cid per session: the discovered candidate is shared.
                found.append(replace(proxy, cid=self.ctx.new_id()))
        return [c for c in found if (c.host, c.port) not in exclude]

    async def _proxy(self) -> S5bCandidate | None:
        """Our server's XEP-0065 proxy, discovered once per client (ctx.services)."""
        services = self.ctx.services
        pending = services.get(PROXY_SERVICE)
        if not isinstance(pending, asyncio.Future) or (
                pending.done() and (pending.cancelled() or pending.exception() is not None)):
            timeout = min(DISCOVERY_TIMEOUT, self.ctx.settings.timeouts.iq)
            pending = asyncio.ensure_future(discover_proxy(self.ctx.connection.xmpp,
                                                           timeout=timeout))
            services[PROXY_SERVICE] = pending
        try:
            # shielded: one session giving up must not cancel the shared discovery
            proxy = await asyncio.shield(pending)
        except Exception as e:  # noqa: BLE001 - no proxy only removes one candidate
            logger.info("SOCKS5 proxy discovery failed: %s", e)
            return None
        return proxy if isinstance(proxy, S5bCandidate) else None

    def _flush(self, neg: S5bNegotiation) -> None:
        """The recipe's step 5: every payload the negotiation queued, as transport-info."""
        for payload in neg.payloads_to_send():
            self.ctx.send_transport_info(payload)

    def _failure_text(self, neg: S5bNegotiation) -> str:
        reason = neg.failure_reason or "SOCKS5 failed"
        if neg.nomination is not None:
            return reason  # the nominated proxy failed (<proxy-error/>, XEP-0260 §2.4)
        ours = self._dial_failure or "none answered"
        offered = ", ".join(_describe(c) for c in neg.local_candidates) or "we offered none"
        return (f"{reason} (we tried the contact's candidates: {ours}; "
                f"the contact tried ours: {offered})")

    def _stuck_text(self, neg: S5bNegotiation, limit: float) -> str:
        if neg.state is S5bState.AWAITING_ACTIVATED and neg.nomination is not None:
            return (f"the contact did not activate its proxy {neg.nomination.candidate.jid} "
                    f"within {limit:.0f} s")
        if not self._reported:
            return f"no SOCKS5 candidate of the contact answered within {limit:.0f} s"
        return f"the contact did not say within {limit:.0f} s whether it reached our candidates"


class S5bDirectNegotiator(S5bNegotiator):
    """SOCKS5 between the two machines only: the ladder's fast path (README "How the
    ladder decides"), tried before ICE when ICE's candidates show that the machines reach
    each other (:mod:`jinglefs.ice.reachability`).  No proxy candidate is offered or
    dialled (XEP-0260 §2.1 direct candidates only), so it either connects machine to
    machine or fails within :data:`DIRECT_ONLY_CONNECT_LIMIT`, and the ladder goes on with
    ICE.  The peer sees an ordinary XEP-0260 transport (and may offer its proxy, which we
    never use, so it can never be nominated)."""

    kind = "s5b-direct"
    connect_limit = DIRECT_ONLY_CONNECT_LIMIT
    direct_only = True
