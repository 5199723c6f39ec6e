"""The transports jinglefs knows, in one table: which exist, their order on the ladder,
which disco features we announce for each and which show that a peer can take it.

The ladder (README "How a file travels"): the sender offers the first rung both sides
support and replaces the transport with the next one when it fails (XEP-0166 §7.2.15).
IBB comes last: XEP-0234 §10.1 makes it the transport of last resort, and since every
Jingle file-transfer client must implement it, it is tried even when not advertised.

A new transport (an encrypted wrapper, another data channel) is one package with a
negotiator (:class:`~jinglefs.negotiator.NegotiatorFactory`) and one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .ibb.negotiator import IbbNegotiator
from .ibb.service import IbbService
from .ice.negotiator import IceNegotiator
from .jingle import ns
from .negotiator import NegotiatorFactory
from .s5b.negotiator import S5bNegotiator

__all__ = ["LADDER", "Rung", "advertised_transport_features", "label", "peer_kinds",
           "rungs_for"]


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
         peer_features=(ns.WEBRTC_DC,)),
    Rung("s5b", "SOCKS5", S5bNegotiator, announce=(ns.S5B_TRANSPORT, ns.BYTESTREAMS),
         peer_features=(ns.S5B_TRANSPORT,)),
    Rung("ibb", "in-band", IbbNegotiator, announce=(ns.IBB_TRANSPORT,),
         peer_features=(ns.IBB_TRANSPORT,), always=True, service=IbbService),
)

_LABELS = {r.kind: r.label for r in LADDER}


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
