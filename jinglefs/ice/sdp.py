"""Jingle ICE payloads <-> the SDP a WebRTC stack takes: pure, for :mod:`.native`.

libdatachannel is driven by session descriptions, while the signalling stays Jingle
(docs/protocol.md §6.4): the peer never sees SDP.  This module builds, from the peer's
:class:`~.protocol.WebRtcDataChannelTransport`, the one-section SDP (RFC 8866) with an
``m=application … UDP/DTLS/SCTP webrtc-datachannel`` line (RFC 8841 §4) that libdatachannel
applies as the remote description, and reads our credentials, fingerprint, SCTP parameters
and candidates back out of its local description.  It is the XEP-0176 / XEP-0320 ⇄ SDP
mapping of XEP-0176 §5 and XEP-0320 §3 (what Conversations does in ``SessionDescription``).

Pure stdlib, no I/O: tested on any Python (``tests/ice/test_sdp.py``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..jingle import ns
from .protocol import (
    SETUPS,
    DtlsFingerprint,
    IceCandidate,
    IceUdpTransport,
    Setup,
    WebRtcDataChannelTransport,
)

__all__ = [
    "LocalDescription",
    "candidate_address",
    "candidate_attribute",
    "parse_candidate",
    "parse_description",
    "remote_description",
]

#: The media id of our one section; libdatachannel's offers use "0" as well.
DEFAULT_MID = "0"


def candidate_attribute(c: IceCandidate) -> str:
    """RFC 8839 §5.1 ``candidate-attribute`` (without ``a=``) for one XEP-0176 candidate."""
    parts = [f"candidate:{c.foundation}", str(c.component), c.protocol.upper(),
             str(c.priority), c.ip, str(c.port), "typ", c.type]
    if c.type != "host":
        # RFC 8839 §5.1: rel-addr/rel-port are mandatory for srflx/prflx/relay; libwebrtc
        # hides them as 0.0.0.0 0 and so do we when the peer sent none.
        parts += ["raddr", c.rel_addr or "0.0.0.0", "rport", str(c.rel_port or 0)]
    parts += ["generation", str(c.generation)]
    return " ".join(parts)


def parse_candidate(text: str, cid: str) -> IceCandidate | None:
    """One ``[a=]candidate:…`` line as an XEP-0176 candidate, None when it is unusable.

    The result is validated exactly like a peer's ``<candidate/>`` (protocol.py): whatever we
    announce could have come from the wire.
    """
    text = text.strip()
    if text.startswith("a="):
        text = text[2:]
    if not text.startswith("candidate:"):
        return None
    fields = text[len("candidate:"):].split()
    if len(fields) < 8 or fields[6] != "typ":
        return None
    foundation, component, protocol, priority, ip, port, _, ctype = fields[:8]
    attrs = {
        "foundation": foundation, "component": component, "protocol": protocol.lower(),
        "priority": priority, "ip": ip, "port": port, "type": ctype, "id": cid,
        "generation": "0", "network": "0",
    }
    rest = fields[8:]
    for key, value in zip(rest[::2], rest[1::2], strict=False):
        if key == "raddr" and value not in ("0.0.0.0", "::"):
            attrs["rel-addr"] = value
        elif key == "rport" and value != "0" and "rel-addr" in attrs:
            attrs["rel-port"] = value
        elif key == "generation":
            attrs["generation"] = value
    el = ET.Element(f"{{{ns.ICE_UDP}}}candidate", attrs)
    try:
        return IceCandidate.from_element(el)
    except ValueError:
        return None


def candidate_address(text: str) -> tuple[str, str, int] | None:
    """(type, ip, port) of a ``[a=]candidate:…`` line, without validating the rest: what a
    stack reports about its own pairs (libjuice reports learnt ones with priority 0)."""
    fields = text.strip().removeprefix("a=").removeprefix("candidate:").split()
    if len(fields) < 8 or fields[6] != "typ" or not fields[5].isdigit():
        return None
    return fields[7], fields[4], int(fields[5])


def remote_description(payload: WebRtcDataChannelTransport, *, offer: bool,
                       mid: str = DEFAULT_MID) -> str:
    """The SDP (RFC 8866) of the peer's payload, for ``set_remote_description``.

    ``offer``: the peer is the Jingle initiator (its payload is the SDP offer).  Candidates
    are left out: they are added one by one as remote candidates (trickle, RFC 8838), so the
    description says ``a=ice-options:trickle`` and never ``a=end-of-candidates``.
    """
    ice = payload.ice
    fp = ice.fingerprint
    if not ice.ufrag or not ice.pwd or fp is None:
        raise ValueError("the peer's ICE transport lacks ufrag, pwd or fingerprint")
    # RFC 8842 §5.2/5.3: the offer says actpass; an answer active or passive.  A peer that
    # leaves setup out gets RFC 4145's defaults for its role.
    setup: Setup = fp.setup or ("actpass" if offer else "active")
    lines = [
        "v=0",
        "o=- 0 0 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {mid}",
        "a=ice-options:trickle",
        f"a=fingerprint:{fp.hash} {fp.value}",  # RFC 8122 §5
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",  # RFC 8841 §4.1
        "c=IN IP4 0.0.0.0",
        f"a=mid:{mid}",
        f"a=ice-ufrag:{ice.ufrag}",  # RFC 8839 §5.4
        f"a=ice-pwd:{ice.pwd}",
        f"a=setup:{setup}",  # RFC 4145 §4, RFC 8842
        f"a=sctp-port:{payload.sctp_port}",  # RFC 8841 §5
    ]
    if payload.max_message_size:
        # RFC 8841 §6: 0 means "any size"; left out, the default (64 KiB) applies, which is
        # all libdatachannel can send in one message to such a peer anyway.
        lines.append(f"a=max-message-size:{payload.max_message_size}")
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True)
class LocalDescription:
    """What our Jingle payload needs from libdatachannel's local description."""

    ufrag: str
    pwd: str
    fingerprint: DtlsFingerprint
    sctp_port: int
    max_message_size: int
    mid: str
    candidates: tuple[IceCandidate, ...]

    def payload(self, candidates: tuple[IceCandidate, ...] | None = None
                ) -> WebRtcDataChannelTransport:
        """Our webrtc-datachannel transport (docs/protocol.md §6.4) with ``candidates``."""
        return WebRtcDataChannelTransport(
            self.sctp_port, self.max_message_size,
            IceUdpTransport(self.ufrag, self.pwd,
                            self.candidates if candidates is None else candidates,
                            self.fingerprint))


def parse_description(sdp: str, *, cid_prefix: str = "") -> LocalDescription:
    """Read credentials, fingerprint, setup, SCTP parameters and candidates out of an SDP.

    Attributes may sit at session or media level (RFC 8839 §5.4, RFC 8122 §5); the first
    data channel section is the one read.  ValueError when something Jingle needs is missing.
    """
    attrs: dict[str, str] = {}
    candidates: list[str] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if name == "candidate":
            candidates.append(line)
        else:
            attrs.setdefault(name, value.strip())
    try:
        ufrag, pwd = attrs["ice-ufrag"], attrs["ice-pwd"]
        algo, _, value = attrs["fingerprint"].partition(" ")
        setup = attrs.get("setup", "actpass")
        if setup not in SETUPS:
            raise ValueError(f"unexpected DTLS setup {setup!r}")
        sctp_port = int(attrs.get("sctp-port", "5000"))
        max_message_size = int(attrs.get("max-message-size", "65536"))
    except (KeyError, ValueError) as e:
        raise ValueError(f"unusable local description: {e}") from None
    fp_el = ET.Element(f"{{{ns.DTLS}}}fingerprint", {"hash": algo.lower(), "setup": setup})
    fp_el.text = value.strip()
    fingerprint = DtlsFingerprint.from_element(fp_el)
    parsed = [parse_candidate(c, f"{cid_prefix}{i}") for i, c in enumerate(candidates)]
    return LocalDescription(ufrag, pwd, fingerprint, sctp_port, max_message_size,
                            attrs.get("mid", DEFAULT_MID),
                            tuple(c for c in parsed if c is not None))
