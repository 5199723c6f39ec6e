"""The ICE data channel transport as Conversations signals it (docs/protocol.md §6.4).

``<transport xmlns='urn:xmpp:jingle:transports:webrtc-datachannel:1' sctp-port= max-message-size=>``
wraps an XEP-0176 ICE-UDP ``<transport ufrag= pwd=>`` that holds the XEP-0320 DTLS
``<fingerprint/>`` and the ``<candidate/>`` elements.  Pure stdlib: the I/O side is
:mod:`jinglefs.transports.ice`.

Validation policy for peer input (decided here, tested in ``tests/jingle/test_ice_codec.py``):

* Structural errors reject the whole payload with ``RemoteProtocolError(bad-request)``: no
  inner ICE-UDP transport, missing or non-numeric ``sctp-port`` / ``max-message-size``
  (Conversations refuses those too), a malformed ``ufrag`` / ``pwd`` (RFC 8839 §5.4 ice-chars),
  candidates without credentials (XEP-0176), a malformed or unknown-hash fingerprint.
* A bad *candidate* is dropped, not the stanza: Conversations accepts only ``protocol='udp'``
  and throws away what it cannot turn into an SDP line, so one TCP or garbled candidate must not
  kill an otherwise working offer.  Dropped: protocol other than udp, unknown ``type``, an ``ip``
  that is neither an IP literal nor an mDNS ``.local`` name, unspecified / multicast addresses,
  port outside 1..65535, priority outside 1..2^31-1 (RFC 8445 §5.1.2), bad component, foundation
  or related address.  The count is kept in ``dropped_candidates`` for logging.
* At most :data:`MAX_CANDIDATES` candidates are kept per payload (a flood is truncated).
"""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar, Literal

from ..errors import RemoteProtocolError
from ..jingle import ns
from ..jingle.transport import register_transport

#: Per payload; a real agent offers a handful (host per interface, srflx, relay).
MAX_CANDIDATES = 32

#: RFC 8445 §5.1.2.1: priority is a positive 32-bit integer below 2^31.
MAX_PRIORITY = (1 << 31) - 1

CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})  # XEP-0176 <candidate type>

#: RFC 8122 §5 / IANA "Hash Function Textual Names" -> digest length in bytes.
FINGERPRINT_HASHES: dict[str, int] = {
    "sha-1": 20,
    "sha-224": 28,
    "sha-256": 32,
    "sha-384": 48,
    "sha-512": 64,
}

Setup = Literal["actpass", "active", "passive"]
SETUPS: frozenset[str] = frozenset({"actpass", "active", "passive"})  # RFC 4145 §4 minus holdconn

_ICE_CHARS = r"[A-Za-z0-9+/]"  # RFC 8839 §5.4 ice-char
_UFRAG_RE = re.compile(rf"{_ICE_CHARS}{{4,256}}")
_PWD_RE = re.compile(rf"{_ICE_CHARS}{{22,256}}")
_FOUNDATION_RE = re.compile(rf"{_ICE_CHARS}{{1,32}}")  # RFC 8839 §5.1 foundation
_MDNS_RE = re.compile(r"[A-Za-z0-9-]{1,63}\.local")  # draft-ietf-mmusic-mdns-ice-candidates
_FINGERPRINT_RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*")


def _bad(msg: str) -> RemoteProtocolError:
    return RemoteProtocolError(msg, condition="bad-request")


def _int_attr(el: ET.Element, name: str, lo: int, hi: int) -> int:
    """A mandatory integer attribute in [lo, hi]; ValueError otherwise."""
    raw = el.get(name)
    if raw is None:
        raise ValueError(f"missing {name}")
    raw = raw.strip()
    if not raw.isdigit():  # rejects signs, spaces, non-ASCII digits
        raise ValueError(f"{name} is not a number: {raw!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise ValueError(f"{name} out of range: {value}")
    return value


def _opt_int_attr(el: ET.Element, name: str, lo: int, hi: int) -> int | None:
    return None if el.get(name) is None else _int_attr(el, name, lo, hi)


def _check_address(value: str, *, allow_unspecified: bool = False) -> str:
    """An IP literal (canonical form) or an mDNS ``.local`` name."""
    if _MDNS_RE.fullmatch(value):
        return value
    addr = ipaddress.ip_address(value)  # ValueError when not an IP literal
    if addr.is_multicast or (addr.is_unspecified and not allow_unspecified):
        raise ValueError(f"unusable address {value}")
    return str(addr)


# ---------------------------------------------------------------------------------------------
# XEP-0176 <candidate/>


@dataclass(frozen=True)
class IceCandidate:
    """One XEP-0176 ``<candidate/>`` (RFC 8445 §5.1 candidate)."""

    component: int
    foundation: str
    ip: str
    port: int
    priority: int
    type: str
    protocol: str = "udp"
    generation: int = 0
    id: str = ""
    rel_addr: str | None = None
    rel_port: int | None = None
    network: int | None = None

    @classmethod
    def from_element(cls, el: ET.Element) -> IceCandidate:
        """Parse and validate; raise ValueError when the candidate must be dropped."""
        protocol = (el.get("protocol") or "").lower()
        if protocol != "udp":  # Conversations: Candidate.toSdpAttribute accepts udp only
            raise ValueError(f"unsupported protocol {protocol!r}")
        ctype = el.get("type") or ""
        if ctype not in CANDIDATE_TYPES:
            raise ValueError(f"unknown candidate type {ctype!r}")
        foundation = el.get("foundation") or ""
        if not _FOUNDATION_RE.fullmatch(foundation):
            raise ValueError(f"bad foundation {foundation!r}")
        rel_addr = el.get("rel-addr")
        if rel_addr is not None:
            # libwebrtc hides related addresses as 0.0.0.0 (RFC 8839 §5.1), so allow it here.
            rel_addr = _check_address(rel_addr, allow_unspecified=True)
        component = _int_attr(el, "component", 1, 256)  # RFC 8445 §5.1.2.1
        port = _int_attr(el, "port", 1, 65535)
        return cls(
            component=component,
            foundation=foundation,
            ip=_check_address(el.get("ip") or ""),
            port=port,
            priority=_int_attr(el, "priority", 1, MAX_PRIORITY),
            type=ctype,
            protocol=protocol,
            generation=_opt_int_attr(el, "generation", 0, 255) or 0,
            # XEP-0176 requires an id; synthesise a stable one when a peer omits it.
            id=(el.get("id") or "")[:64] or f"{foundation}-{component}-{port}",
            rel_addr=rel_addr,
            rel_port=_opt_int_attr(el, "rel-port", 0, 65535),
            network=_opt_int_attr(el, "network", 0, 65535),
        )

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.ICE_UDP}}}candidate")
        el.set("component", str(self.component))
        el.set("foundation", self.foundation)
        el.set("generation", str(self.generation))
        el.set("id", self.id)
        el.set("ip", self.ip)
        if self.network is not None:
            el.set("network", str(self.network))
        el.set("port", str(self.port))
        el.set("priority", str(self.priority))
        el.set("protocol", self.protocol)
        if self.rel_addr is not None:
            el.set("rel-addr", self.rel_addr)
        if self.rel_port is not None:
            el.set("rel-port", str(self.rel_port))
        el.set("type", self.type)
        return el


# ---------------------------------------------------------------------------------------------
# XEP-0320 <fingerprint/>


@dataclass(frozen=True)
class DtlsFingerprint:
    """The peer's DTLS certificate fingerprint (RFC 8122 §5) and ``setup`` role (RFC 4145 §4)."""

    hash: str
    value: str  # upper-case hex pairs separated by colons
    setup: Setup | None = None

    @classmethod
    def from_element(cls, el: ET.Element) -> DtlsFingerprint:
        algo = (el.get("hash") or "").lower()
        if algo not in FINGERPRINT_HASHES:
            raise _bad(f"unsupported fingerprint hash {algo!r}")
        value = (el.text or "").strip().upper()
        if (
            not _FINGERPRINT_RE.fullmatch(value)
            or (len(value) + 1) // 3 != FINGERPRINT_HASHES[algo]
        ):
            raise _bad("malformed DTLS fingerprint")
        setup = el.get("setup")
        if setup is not None and setup not in SETUPS:
            raise _bad(f"unsupported DTLS setup {setup!r}")
        return cls(algo, value, setup)  # type: ignore[arg-type]

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.DTLS}}}fingerprint")
        el.set("hash", self.hash)
        if self.setup is not None:
            el.set("setup", self.setup)
        el.text = self.value
        return el


# ---------------------------------------------------------------------------------------------
# XEP-0176 inner <transport/>


@dataclass(frozen=True)
class IceUdpTransport:
    """The inner ICE-UDP transport: credentials, fingerprint, candidates."""

    ufrag: str | None
    pwd: str | None
    candidates: tuple[IceCandidate, ...] = ()
    fingerprint: DtlsFingerprint | None = None
    dropped_candidates: int = field(default=0, compare=False)

    @classmethod
    def from_element(cls, el: ET.Element) -> IceUdpTransport:
        ufrag, pwd = el.get("ufrag"), el.get("pwd")
        if ufrag is not None and not _UFRAG_RE.fullmatch(ufrag):
            raise _bad("malformed ICE ufrag")
        if pwd is not None and not _PWD_RE.fullmatch(pwd):
            raise _bad("malformed ICE pwd")
        fingerprint = None
        candidates: list[IceCandidate] = []
        dropped = 0
        for child in el:
            if child.tag == f"{{{ns.DTLS}}}fingerprint":
                if fingerprint is None:
                    fingerprint = DtlsFingerprint.from_element(child)
            elif child.tag == f"{{{ns.ICE_UDP}}}candidate":
                if len(candidates) >= MAX_CANDIDATES:
                    dropped += 1
                    continue
                try:
                    candidates.append(IceCandidate.from_element(child))
                except ValueError:
                    dropped += 1
        if (candidates or dropped) and (ufrag is None or pwd is None):
            # XEP-0176: ufrag and pwd MUST accompany candidates (transport-info too).
            raise _bad("ICE candidates without ufrag/pwd")
        return cls(ufrag, pwd, tuple(candidates), fingerprint, dropped)

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.ICE_UDP}}}transport")
        if self.ufrag is not None:
            el.set("ufrag", self.ufrag)
        if self.pwd is not None:
            el.set("pwd", self.pwd)
        if self.fingerprint is not None:
            el.append(self.fingerprint.to_element())
        for candidate in self.candidates:
            el.append(candidate.to_element())
        return el


# ---------------------------------------------------------------------------------------------
# Conversations' outer transport (docs/protocol.md §6.4)


@register_transport
@dataclass(frozen=True)
class WebRtcDataChannelTransport:
    """``urn:xmpp:jingle:transports:webrtc-datachannel:1``: SCTP parameters + inner ICE-UDP.

    Used in session-initiate / session-accept (credentials, fingerprint, maybe candidates)
    and in transport-info (a clone of the outer element whose inner transport carries only
    credentials and the trickled candidate(s): :meth:`trickle`).
    """

    namespace: ClassVar[str] = ns.WEBRTC_DC

    sctp_port: int
    max_message_size: int  # RFC 8841 §6: 0 means "any size"
    ice: IceUdpTransport

    @property
    def candidates(self) -> tuple[IceCandidate, ...]:
        return self.ice.candidates

    @property
    def fingerprint(self) -> DtlsFingerprint | None:
        return self.ice.fingerprint

    @property
    def dropped_candidates(self) -> int:
        return self.ice.dropped_candidates

    def trickle(self, candidates: tuple[IceCandidate, ...]) -> WebRtcDataChannelTransport:
        """The transport-info payload announcing ``candidates`` (outer clone, no fingerprint)."""
        return replace(self, ice=IceUdpTransport(self.ice.ufrag, self.ice.pwd, candidates))

    @classmethod
    def from_element(cls, el: ET.Element) -> WebRtcDataChannelTransport:
        if el.tag != f"{{{ns.WEBRTC_DC}}}transport":
            raise _bad("not a webrtc-datachannel transport")
        try:
            # Both are mandatory for Conversations (docs/protocol.md §6.4, §15.15).
            sctp_port = _int_attr(el, "sctp-port", 1, 65535)
            max_message_size = _int_attr(el, "max-message-size", 0, (1 << 32) - 1)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        inner = el.find(f"{{{ns.ICE_UDP}}}transport")
        if inner is None:
            raise _bad("webrtc-datachannel transport without an ICE-UDP transport")
        return cls(sctp_port, max_message_size, IceUdpTransport.from_element(inner))

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.WEBRTC_DC}}}transport")
        el.set("sctp-port", str(self.sctp_port))
        el.set("max-message-size", str(self.max_message_size))
        el.append(self.ice.to_element())
        return el


# ---------------------------------------------------------------------------------------------
# STUN/TURN servers (XEP-0215 result, input to the ICE agent)


@dataclass(frozen=True)
class IceServers:
    """One STUN and one TURN server: all aioice can use (docs/protocol.md §6.7)."""

    stun_host: str | None = None
    stun_port: int = 3478
    turn_host: str | None = None
    turn_port: int = 3478
    turn_username: str | None = None
    turn_password: str | None = None
    turn_transport: Literal["udp", "tcp"] = "udp"
    #: ``turns`` (TURN over TLS, RFC 7065); only over tcp.
    turn_ssl: bool = False
    #: When the TURN credentials expire (XEP-0215 ``expires``); fetch new ones after that.
    turn_expires: datetime | None = None
    #: The same TURN server (host and credentials) also announced over UDP on this port,
    #: beside the TCP service taken above (what the native data channel can use, see
    #: :mod:`.backend`).
    turn_also_udp_port: int | None = None

    @property
    def has_turn(self) -> bool:
        return bool(self.turn_host and self.turn_username and self.turn_password)

    @property
    def turn_udp_port(self) -> int | None:
        """The port of this TURN server over plain UDP, None when it is not offered so."""
        if not self.has_turn:
            return None
        if self.turn_transport == "udp" and not self.turn_ssl:
            return self.turn_port
        return self.turn_also_udp_port
