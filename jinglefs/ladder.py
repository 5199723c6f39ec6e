"""The transports jinglefs knows, in one table: which exist, their order on the ladder,
which disco features we announce for each, which show that a peer can take it, and how
long each may take to connect.

The ladder (README "How the ladder decides"): the sender offers the first rung both sides
support and replaces the transport with the next one when it fails (XEP-0166 §7.2.15).
IBB comes last: XEP-0234 §10.1 makes it the transport of last resort, and since every
Jingle file-transfer client must implement it, it is tried even when not advertised.

Each rung has its own connection limit (``Rung.connect_limit``), set where the rung's
negotiator is, from what the NAT lab measured (tests/natlab; 2026-12-06, 2 shared cores;
from the accept to the stream; aiortc, libdatachannel in brackets):

=====================  =========================================  =======================
rung                   measured when it works                     gives up
=====================  =========================================  =======================
ICE                    host 0.1 s, srflx (cone NAT) 0.6 s         no pair 2.5 s after the
                       (0.15 s), relay 1.1 s (0.35 s), relay      accept (late srflx/relay
                       over TURN/TCP 1.6 s, relay candidates      candidates: +2.5 s),
                       that come late 2.1 s                       10 s at most
SOCKS5                 direct 0.01 s, proxy 1.5 s                 both sides' dials end
                                                                  (1.5 s per direct
                                                                  candidate), 6 s at most
SOCKS5 direct (fast)   0.01 s                                     3.5 s at most
IBB                    one IQ round trip                          20 s (last rung)
=====================  =========================================  =======================

**The fast path** (:func:`fast_path`): ICE is what works behind NATs, so it is offered
first; but when the session-accept's ICE candidates show that the two machines reach each
other directly (same network, or an address without NAT: :mod:`jinglefs.ice.reachability`),
the sender replaces it at once with SOCKS5 direct-only (:data:`DIRECT`, kernel TCP: several
times the data channel's speed), and comes back to ICE, then the rest of the ladder, if
that fails.

A new transport (an encrypted wrapper, another data channel) is one package with a
negotiator (:class:`~jinglefs.negotiator.NegotiatorFactory`) and one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .api import Settings
from .ibb.negotiator import IbbNegotiator
from .ibb.service import IbbService
from .ice import negotiator as ice_negotiator
from .ice.negotiator import IceNegotiator
from .jingle import ns
from .negotiator import Negotiator, NegotiatorFactory
from .s5b.negotiator import S5bDirectNegotiator, S5bNegotiator

__all__ = ["DIRECT", "LADDER", "Rung", "advertised_transport_features", "connect_limit",
           "fast_path", "label", "peer_kinds", "rung", "rungs_for"]

#: IBB connects with one IQ round trip (its <open/>, XEP-0047 §2.1); it is the last rung,
#: so nothing is gained by giving up early.
IBB_CONNECT_LIMIT = 20.0


@dataclass(frozen=True)
class Rung:
    """One row: a transport on the ladder."""

    kind: str  # the short name used by --transport and in events: "ice", "s5b", "ibb"
    label: str  # what a person reads in an error: "ICE", "SOCKS5", "in-band"
    factory: NegotiatorFactory
    #: disco features (XEP-0030) we announce for it
    announce: tuple[str, ...]
    #: disco features that show a peer can take it (ICE: only the data channel; Dino and
    #: Gajim announce ice-udp and dtls for calls too)
    peer_features: tuple[str, ...]
    #: seconds its connection phase may take, from the accept (or transport-accept) to a
    #: stream, before the next rung: the negotiator's own limit (measured, see above);
    #: ``Timeouts.transport`` caps it
    connect_limit: float
    #: tried even when the peer does not announce it (IBB, mandatory to implement)
    always: bool = False
    #: a per-client service the negotiators share, made once per login from the slixmpp
    #: client (IBB: the router of <open/>/<data/>/<close/>); negotiators find it in
    #: ``NegotiationContext.services[kind]``
    service: Callable[[Any], object] | None = None


#: Ladder order: ICE first (works behind NAT, encrypted), then SOCKS5 (direct, then the
#: server's proxy), then IBB.
LADDER: tuple[Rung, ...] = (
    Rung("ice", "ICE", IceNegotiator, announce=(ns.WEBRTC_DC, ns.ICE_UDP, ns.DTLS),
         peer_features=(ns.WEBRTC_DC,), connect_limit=ice_negotiator.CONNECT_LIMIT),
    Rung("s5b", "SOCKS5", S5bNegotiator, announce=(ns.S5B_TRANSPORT, ns.BYTESTREAMS),
         peer_features=(ns.S5B_TRANSPORT,), connect_limit=S5bNegotiator.connect_limit),
    Rung("ibb", "in-band", IbbNegotiator, announce=(ns.IBB_TRANSPORT,),
         peer_features=(ns.IBB_TRANSPORT,), connect_limit=IBB_CONNECT_LIMIT, always=True,
         service=IbbService),
)

#: The fast path: SOCKS5 with direct candidates only, tried before ICE when ICE's
#: candidates show a direct path.  Not a row of LADDER: never offered first, never
#: forced, announces nothing of its own; the peer answers it as ordinary SOCKS5.
DIRECT = Rung("s5b-direct", "SOCKS5 direct", S5bDirectNegotiator, announce=(),
              peer_features=(ns.S5B_TRANSPORT,),
              connect_limit=S5bDirectNegotiator.connect_limit)

_RUNGS = {r.kind: r for r in (*LADDER, DIRECT)}
_LABELS = {r.kind: r.label for r in _RUNGS.values()}


def rung(kind: str) -> Rung | None:
    """The row of a rung kind (the fast path's too), None for an unknown one."""
    return _RUNGS.get(kind)


def connect_limit(kind: str, settings: Settings) -> float:
    """How long a rung's connection phase may take with these settings."""
    row = _RUNGS.get(kind)
    limit = row.connect_limit if row is not None else settings.timeouts.transport
    return min(limit, settings.timeouts.transport)


def fast_path(neg: Negotiator, rest: Sequence[str], settings: Settings) -> str | None:
    """Why SOCKS5 direct should go before the ICE transport the peer just accepted
    (README "How the ladder decides"), or None.  Only on ``auto`` (SOCKS5 is still on the
    ladder), never with ``ice_relay_only`` (the contact must not learn our addresses)."""
    if (not isinstance(neg, IceNegotiator) or "s5b" not in rest
            or not settings.direct_first or settings.ice_relay_only):
        return None
    return neg.direct_path()


def label(kind: str) -> str:
    """The human name of a rung ("SOCKS5" for "s5b")."""
    return _LABELS.get(kind, kind)


def advertised_transport_features(kinds: Iterable[str]) -> list[str]:
    """The disco features we announce for the rungs we have."""
    have = set(kinds)
    return [f for r in LADDER if r.kind in have for f in r.announce]


def peer_kinds(features: frozenset[str], kinds: Iterable[str]) -> frozenset[str]:
    """Which of our rungs (``kinds``) a peer with these disco features can take."""
    have = set(kinds)
    return frozenset(r.kind for r in LADDER if r.kind in have and
                     any(f in features for f in r.peer_features))


def rungs_for(features: frozenset[str], kinds: Iterable[str], forced: str = "auto"
              ) -> list[str]:
    """The rungs to try with a peer, in order; ``forced`` ("s5b"…) tries that one only."""
    if forced != "auto":
        return [forced]
    have = set(kinds)
    able = peer_kinds(features, have)
    return [r.kind for r in LADDER if r.kind in have and (r.kind in able or r.always)]
