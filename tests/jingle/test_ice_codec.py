"""Codec of Conversations' webrtc-datachannel:1 (docs/protocol.md §6.4, XEP-0176, XEP-0320)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from jinglefs.errors import RemoteProtocolError
from jinglefs.ice.protocol import (
    MAX_CANDIDATES,
    DtlsFingerprint,
    IceCandidate,
    IceUdpTransport,
    WebRtcDataChannelTransport,
)
from jinglefs.jingle import ns
from jinglefs.jingle.transport import known_transports, parse_transport

FP = ":".join(["5A"] * 31 + ["E1"])

# Shaped like Conversations' session-initiate content (docs/protocol.md §6.4); values illustrative.
INITIATE = f"""
<transport xmlns='urn:xmpp:jingle:transports:webrtc-datachannel:1'
           sctp-port='5000' max-message-size='262144'>
  <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='aB3d' pwd='k9XqZ1mN0pQr7sTuVwXy2z'>
    <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256'
                 setup='actpass'>{FP}</fingerprint>
    <candidate component='1' foundation='1' generation='0' id='c0' ip='192.0.2.10'
               network='0' port='51000' priority='2122260223' protocol='udp' type='host'/>
    <candidate component='1' foundation='842163049' generation='0' id='c1' ip='198.51.100.7'
               network='0' port='40000' priority='1686052607' protocol='udp' type='srflx'
               rel-addr='192.0.2.10' rel-port='51000'/>
  </transport>
</transport>
"""

# Conversations' trickled transport-info: clone of the outer transport (attributes kept), inner
# transport with credentials and one candidate, no fingerprint.
TRICKLE = """
<transport xmlns='urn:xmpp:jingle:transports:webrtc-datachannel:1'
           sctp-port='5000' max-message-size='262144'>
  <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='aB3d' pwd='k9XqZ1mN0pQr7sTuVwXy2z'>
    <candidate component='1' foundation='2537043221' generation='0' id='0c3e9b6e-1b1f-4f4e'
               ip='203.0.113.5' network='0' port='49170' priority='41885439' protocol='udp'
               type='relay' rel-addr='0.0.0.0' rel-port='0'/>
  </transport>
</transport>
"""


def parse(text: str) -> WebRtcDataChannelTransport:
    payload = parse_transport(ET.fromstring(text))
    assert isinstance(payload, WebRtcDataChannelTransport)
    return payload


def candidate_xml(**overrides: str) -> str:
    attrs = {
        "component": "1",
        "foundation": "1",
        "generation": "0",
        "id": "x",
        "ip": "192.0.2.1",
        "port": "5000",
        "priority": "2122260223",
        "protocol": "udp",
        "type": "host",
    }
    attrs.update(overrides)
    attrs = {k: v for k, v in attrs.items() if v != "<absent>"}
    rendered = " ".join(f"{k}='{v}'" for k, v in attrs.items())
    return (
        f"<transport xmlns='{ns.WEBRTC_DC}' sctp-port='5000' max-message-size='262144'>"
        f"<transport xmlns='{ns.ICE_UDP}' ufrag='aB3d' pwd='k9XqZ1mN0pQr7sTuVwXy2z'>"
        f"<candidate {rendered}/></transport></transport>"
    )


def test_registered_for_conversations_namespace() -> None:
    assert ns.WEBRTC_DC in known_transports()
    assert ns.ICE_UDP not in known_transports()  # ICE-UDP alone: no files (docs/protocol.md §3.1)


def test_parses_conversations_initiate() -> None:
    p = parse(INITIATE)
    assert (p.sctp_port, p.max_message_size) == (5000, 262144)
    assert (p.ice.ufrag, p.ice.pwd) == ("aB3d", "k9XqZ1mN0pQr7sTuVwXy2z")
    assert p.fingerprint == DtlsFingerprint("sha-256", FP, "actpass")
    host, srflx = p.candidates
    assert host == IceCandidate(
        component=1,
        foundation="1",
        ip="192.0.2.10",
        port=51000,
        priority=2122260223,
        type="host",
        protocol="udp",
        generation=0,
        id="c0",
        network=0,
    )
    assert (srflx.type, srflx.rel_addr, srflx.rel_port) == ("srflx", "192.0.2.10", 51000)
    assert p.dropped_candidates == 0


@pytest.mark.parametrize("text", [INITIATE, TRICKLE])
def test_round_trip(text: str) -> None:
    p = parse(text)
    again = parse(ET.tostring(p.to_element(), encoding="unicode"))
    assert again == p


def test_output_shape_matches_conversations() -> None:
    el = parse(INITIATE).to_element()
    assert el.tag == f"{{{ns.WEBRTC_DC}}}transport"
    assert el.attrib == {"sctp-port": "5000", "max-message-size": "262144"}
    (inner,) = list(el)
    assert inner.tag == f"{{{ns.ICE_UDP}}}transport"
    assert [c.tag for c in inner] == [
        f"{{{ns.DTLS}}}fingerprint",
        f"{{{ns.ICE_UDP}}}candidate",
        f"{{{ns.ICE_UDP}}}candidate",
    ]
    cand = inner[1]
    # every XEP-0176 §5.3 attribute, all as strings
    assert cand.attrib == {
        "component": "1",
        "foundation": "1",
        "generation": "0",
        "id": "c0",
        "ip": "192.0.2.10",
        "network": "0",
        "port": "51000",
        "priority": "2122260223",
        "protocol": "udp",
        "type": "host",
    }
    assert inner[0].text == FP and inner[0].get("setup") == "actpass"


def test_trickle_clone_keeps_outer_attributes_and_credentials() -> None:
    offer = parse(INITIATE)
    info = offer.trickle(offer.candidates[1:])
    el = info.to_element()
    assert el.get("sctp-port") == "5000" and el.get("max-message-size") == "262144"
    inner = el[0]
    assert inner.get("ufrag") == "aB3d" and inner.get("pwd") == "k9XqZ1mN0pQr7sTuVwXy2z"
    assert inner.find(f"{{{ns.DTLS}}}fingerprint") is None
    assert len(inner.findall(f"{{{ns.ICE_UDP}}}candidate")) == 1


def test_trickled_relay_with_hidden_related_address() -> None:
    (relay,) = parse(TRICKLE).candidates
    assert (relay.type, relay.rel_addr, relay.rel_port) == ("relay", "0.0.0.0", 0)
    assert parse(TRICKLE).fingerprint is None


def test_ipv6_is_canonicalised() -> None:
    (c,) = parse(candidate_xml(ip="2001:DB8:0:0::1")).candidates
    assert c.ip == "2001:db8::1"


def test_mdns_hostname_kept() -> None:
    (c,) = parse(candidate_xml(ip="1f4712db-ea17-4bcf-a596-105139dfd8bf.local")).candidates
    assert c.ip.endswith(".local")


def test_missing_optional_attributes_are_defaulted() -> None:
    (c,) = parse(candidate_xml(generation="<absent>", id="<absent>")).candidates
    assert c.generation == 0 and c.id  # an id is synthesised, schema requires one on output


@pytest.mark.parametrize(
    "overrides",
    [
        {"protocol": "tcp"},  # Conversations: udp only
        {"protocol": "<absent>"},
        {"type": "bogus"},
        {"type": "<absent>"},
        {"ip": "not-an-ip"},
        {"ip": "evil.example.com"},
        {"ip": "0.0.0.0"},
        {"ip": "224.0.0.1"},
        {"ip": "<absent>"},
        {"port": "0"},
        {"port": "65536"},
        {"port": "-1"},
        {"port": "12ab"},
        {"port": "<absent>"},
        {"priority": "0"},
        {"priority": str(1 << 31)},
        {"priority": "<absent>"},
        {"component": "0"},
        {"component": "x"},
        {"foundation": "has space"},
        {"foundation": "x" * 33},
        {"generation": "-3"},
        {"rel-addr": "nope"},
        {"rel-port": "70000"},
        {"network": "n"},
    ],
)
def test_bad_candidate_dropped_not_stanza(overrides: dict[str, str]) -> None:
    p = parse(candidate_xml(**overrides))
    assert p.candidates == ()
    assert p.dropped_candidates == 1


def test_tcp_candidate_dropped_but_udp_kept() -> None:
    text = INITIATE.replace(
        "</transport>\n</transport>",
        "<candidate component='1' foundation='3' generation='0' id='t' ip='192.0.2.10' port='9'"
        " priority='1518280447' protocol='tcp' type='host'/></transport>\n</transport>",
    )
    p = parse(text)
    assert len(p.candidates) == 2 and p.dropped_candidates == 1


def test_candidate_flood_is_capped() -> None:
    cands = "".join(
        f"<candidate component='1' foundation='1' generation='0' id='c{i}' ip='192.0.2.1'"
        f" port='{1000 + i}' priority='1' protocol='udp' type='host'/>"
        for i in range(1000)
    )
    text = (
        f"<transport xmlns='{ns.WEBRTC_DC}' sctp-port='5000' max-message-size='1'>"
        f"<transport xmlns='{ns.ICE_UDP}' ufrag='aB3d' pwd='k9XqZ1mN0pQr7sTuVwXy2z'>{cands}"
        "</transport></transport>"
    )
    p = parse(text)
    assert len(p.candidates) == MAX_CANDIDATES
    assert p.dropped_candidates == 1000 - MAX_CANDIDATES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (INITIATE.replace("sctp-port='5000'", ""), "missing sctp-port"),
        (INITIATE.replace("max-message-size='262144'", ""), "missing max-message-size"),
        (INITIATE.replace("sctp-port='5000'", "sctp-port='x'"), "sctp-port is not a number: 'x'"),
        (INITIATE.replace("sctp-port='5000'", "sctp-port='0'"), "sctp-port out of range: 0"),
        (
            f"<transport xmlns='{ns.WEBRTC_DC}' sctp-port='5000' max-message-size='1'/>",
            "webrtc-datachannel transport without an ICE-UDP transport",
        ),
        (INITIATE.replace("ufrag='aB3d'", "ufrag='a b'"), "malformed ICE ufrag"),
        (INITIATE.replace("pwd='k9XqZ1mN0pQr7sTuVwXy2z'", "pwd='short'"), "malformed ICE pwd"),
        (INITIATE.replace("ufrag='aB3d'", ""), "ICE candidates without ufrag/pwd"),
        (INITIATE.replace("hash='sha-256'", "hash='md5'"), "unsupported fingerprint hash 'md5'"),
        (INITIATE.replace(FP, FP[:-3]), "malformed DTLS fingerprint"),
        (INITIATE.replace(FP, "zz" + FP[2:]), "malformed DTLS fingerprint"),
        (
            INITIATE.replace("setup='actpass'", "setup='holdconn'"),
            "unsupported DTLS setup 'holdconn'",
        ),
    ],
)
def test_structural_errors_rejected(text: str, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse(text)
    assert str(info.value) == message
    assert info.value.condition == "bad-request"


def test_fingerprint_case_normalised() -> None:
    p = parse(INITIATE.replace(FP, FP.lower()))
    assert p.fingerprint is not None and p.fingerprint.value == FP


def test_setup_optional() -> None:
    p = parse(INITIATE.replace("setup='actpass'", ""))
    assert p.fingerprint is not None and p.fingerprint.setup is None


def test_zero_max_message_size_allowed() -> None:
    # RFC 8841 §6: 0 means the peer accepts messages of any size.
    text = INITIATE.replace("max-message-size='262144'", "max-message-size='0'")
    assert parse(text).max_message_size == 0


def test_built_payload_round_trips() -> None:
    p = WebRtcDataChannelTransport(
        5000,
        262144,
        IceUdpTransport(
            "abcd",
            "a" * 22,
            (IceCandidate(1, "f", "127.0.0.1", 4000, 100, "host", id="h"),),
            DtlsFingerprint("sha-256", FP, "active"),
        ),
    )
    assert parse(ET.tostring(p.to_element(), encoding="unicode")) == p
