"""Whether two machines reach each other directly, read from their ICE candidates: the
ladder's fast path (README "How the ladder decides").

ICE's data channel runs DTLS and SCTP in user space (aiortc: ≈13-33 MB/s on a host pair);
SOCKS5 direct (XEP-0260 §2.1 direct candidates) is kernel TCP (hundreds of MB/s).  So when
the two machines can open a TCP connection to each other, bytes should not go through ICE.
The sender cannot know that before its offer, but the session-accept tells it: the
responder's ICE answer lists its candidates (XEP-0176 §5.3), and ours are in the offer.
RFC 8445 §5.1.1 candidates say where a machine is:

* a **host** candidate is an address of the machine's own interface;
* a **server-reflexive** (srflx) candidate is the address a STUN server saw
  (RFC 8445 §5.1.1.2); its ``rel-addr`` is the host address it was learned from.

From those, :func:`direct_path` says why a direct TCP connection is likely, or None:

* **same network**: a host address of the peer lies in one of our own interface networks
  (address and prefix length; loopback for two clients on one machine), and, when both
  sides learned their public address from STUN, it is the same one (two homes that both
  use 192.168.1.0/24 are not one LAN);
* **no NAT**: a side whose server-reflexive address is one of its host addresses (the STUN
  server saw the machine's own address), or, when it asked no STUN server, whose host
  address is a global one (:attr:`ipaddress.IPv4Address.is_global`): the other side can
  dial it.

A wrong guess (a firewall that drops inbound TCP) costs the short limit of the SOCKS5
direct rung, then ICE runs as usual.  mDNS names (``x.local``) are not addresses and say
nothing here.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence

from .protocol import IceCandidate

__all__ = ["Network", "direct_path", "local_networks"]

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def local_networks() -> list[Network]:
    """The networks of this machine's interfaces (address/prefix), loopback included."""
    import ifaddr  # aioice's own interface lister (a dependency of jinglefs)

    found: list[Network] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]  # IPv6: (addr, flow, scope)
            try:
                found.append(ipaddress.ip_interface(
                    f"{address.partition('%')[0]}/{ip.network_prefix}").network)
            except ValueError:
                continue
    return found


def _address(text: str | None) -> _Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:  # an mDNS name
        return None


def _of_type(candidates: Iterable[IceCandidate], kind: str) -> set[_Address]:
    return {a for c in candidates if c.type == kind and (a := _address(c.ip)) is not None}


def _without_nat(candidates: Sequence[IceCandidate]) -> _Address | None:
    """A host address the rest of the network can dial: one STUN saw as it is, or, when
    this side asked no STUN server, a global one."""
    hosts = _of_type(candidates, "host")
    reflexive = [c for c in candidates if c.type == "srflx"]
    for c in reflexive:
        seen = _address(c.ip)
        if seen is not None and (seen in hosts or seen == _address(c.rel_addr)):
            return seen
    if reflexive:
        return None  # STUN saw another address: this side is behind a NAT
    return next((a for a in sorted(hosts, key=str) if a.is_global), None)


def direct_path(ours: Sequence[IceCandidate], theirs: Sequence[IceCandidate],
                networks: Sequence[Network]) -> str | None:
    """Why a direct TCP connection between us and the peer is likely (a short reason for
    the log and the README's rule), or None when nothing says so."""
    our_public = _of_type(ours, "srflx")
    their_public = _of_type(theirs, "srflx")
    behind_other_nat = bool(our_public and their_public and not our_public & their_public)
    if not behind_other_nat:
        for address in sorted(_of_type(theirs, "host"), key=str):
            if address.is_link_local:  # every machine has fe80::/64: says nothing
                continue
            for net in networks:
                if address.version == net.version and address in net:
                    return f"the contact's address {address} is on our network {net}"
    if (open_peer := _without_nat(theirs)) is not None:
        return f"the contact has an address without NAT ({open_peer})"
    if (open_self := _without_nat(ours)) is not None:
        return f"we have an address without NAT ({open_self})"
    return None
