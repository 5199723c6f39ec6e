"""Jingle ICE payloads <-> SDP (jinglefs/ice/sdp.py): what the native data channel hands
libdatachannel and what it reads back.  Pure: runs on every Python."""

from __future__ import annotations

import pytest

from jinglefs.ice.protocol import (
    DtlsFingerprint,
    IceCandidate,
    IceUdpTransport,
    WebRtcDataChannelTransport,
)
from jinglefs.ice.sdp import (
    candidate_address,
    candidate_attribute,
    parse_candidate,
    parse_description,
    remote_description,
)

FP = ("80:B1:23:E4:74:3F:28:A1:75:3F:E1:DC:14:F4:C8:1A:6A:5F:A2:D1:A5:70:1B:49:76:76:FF:09:"
      "A8:E6:2D:06")

#: A local description as libdatachannel 0.24 (aiolibdatachannel 2026.10.15) writes it once
#: gathering is over (captured on this machine; CRLF as libdatachannel writes it).
LIBDATACHANNEL_OFFER = "\r\n".join([
    "v=0",
    "o=rtc 1651134343 0 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic:WMS *",
    "a=ice-options:ice2 trickle",
    f"a=fingerprint:sha-256 {FP}",
    "m=application 41666 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 192.0.2.2",
    "a=mid:0",
    "a=sendrecv",
    "a=sctp-port:5000",
    "a=max-message-size:262144",
    "a=setup:actpass",
    "a=ice-ufrag:LoiS",
    "a=ice-pwd:iQ9HP7T63Mwsevjh2ek48p",
    "a=candidate:2 1 UDP 2116026111 fd00::2 41666 typ host",
    "a=candidate:1 1 UDP 2114977791 192.0.2.2 41666 typ host",
    "a=candidate:4 1 UDP 1047807 203.0.113.7 58962 typ relay raddr 0.0.0.0 rport 0",
    "a=end-of-candidates",
]) + "\r\n"


def test_reads_libdatachannels_description() -> None:
    d = parse_description(LIBDATACHANNEL_OFFER, cid_prefix="c")
    assert (d.ufrag, d.pwd, d.mid) == ("LoiS", "iQ9HP7T63Mwsevjh2ek48p", "0")
    assert d.fingerprint == DtlsFingerprint("sha-256", FP, "actpass")
    assert (d.sctp_port, d.max_message_size) == (5000, 262144)
    assert [(c.ip, c.port, c.type, c.priority, c.id) for c in d.candidates] == [
        ("fd00::2", 41666, "host", 2116026111, "c0"),
        ("192.0.2.2", 41666, "host", 2114977791, "c1"),
        ("203.0.113.7", 58962, "relay", 1047807, "c2"),
    ]
    relay = d.candidates[2]
    assert (relay.rel_addr, relay.rel_port) == (None, None)  # 0.0.0.0 0: hidden
    payload = d.payload()
    assert payload.ice.candidates == d.candidates and payload.fingerprint == d.fingerprint


def test_description_without_what_jingle_needs_is_refused() -> None:
    broken = LIBDATACHANNEL_OFFER.replace("a=ice-pwd:iQ9HP7T63Mwsevjh2ek48p\r\n", "")
    with pytest.raises(ValueError, match="ice-pwd"):
        parse_description(broken)


def payload(setup: str | None, max_message_size: int = 262144) -> WebRtcDataChannelTransport:
    return WebRtcDataChannelTransport(
        5000, max_message_size,
        IceUdpTransport("abcd", "p" * 22,
                        (IceCandidate(1, "1", "10.0.0.2", 4000, 2122260223, "host", id="a"),),
                        DtlsFingerprint("sha-256", FP, setup)))  # type: ignore[arg-type]


def test_remote_description_of_an_offer() -> None:
    sdp = remote_description(payload("actpass"), offer=True)
    lines = sdp.split("\r\n")
    assert sdp.endswith("\r\n") and lines[0] == "v=0"
    for expected in ("a=group:BUNDLE 0", "a=ice-options:trickle",
                     f"a=fingerprint:sha-256 {FP}",
                     "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:0",
                     "a=ice-ufrag:abcd", f"a=ice-pwd:{'p' * 22}", "a=setup:actpass",
                     "a=sctp-port:5000", "a=max-message-size:262144"):
        assert expected in lines
    # Candidates go one by one (trickle); the description never ends them.
    assert not any(line.startswith("a=candidate") for line in lines)
    assert "a=end-of-candidates" not in lines


@pytest.mark.parametrize("setup,offer,expected", [
    (None, True, "actpass"),  # RFC 4145 defaults for a peer that says nothing
    (None, False, "active"),
    ("passive", False, "passive"),
    ("active", True, "active"),
])
def test_remote_setup(setup: str | None, offer: bool, expected: str) -> None:
    assert f"a=setup:{expected}" in remote_description(payload(setup), offer=offer).split("\r\n")


def test_max_message_size_zero_is_left_out() -> None:
    # RFC 8841 §6: 0 = any size; without the attribute the 64 KiB default applies.
    sdp = remote_description(payload("actpass", max_message_size=0), offer=True, mid="data")
    assert "max-message-size" not in sdp and "a=mid:data" in sdp and "BUNDLE data" in sdp


def test_remote_description_needs_credentials_and_fingerprint() -> None:
    p = payload("actpass")
    bare = WebRtcDataChannelTransport(5000, 0, IceUdpTransport("abcd", "p" * 22))
    with pytest.raises(ValueError):
        remote_description(bare, offer=True)
    assert remote_description(p, offer=True)


@pytest.mark.parametrize("candidate,line", [
    (IceCandidate(1, "1", "10.0.0.2", 4000, 2122260223, "host", id="a", generation=0),
     "candidate:1 1 UDP 2122260223 10.0.0.2 4000 typ host generation 0"),
    (IceCandidate(1, "7", "198.51.100.9", 5000, 1686052607, "srflx", id="b",
                  rel_addr="10.0.0.2", rel_port=4000),
     "candidate:7 1 UDP 1686052607 198.51.100.9 5000 typ srflx raddr 10.0.0.2 rport 4000"
     " generation 0"),
    (IceCandidate(1, "9", "203.0.113.1", 6000, 41885439, "relay", id="c"),
     "candidate:9 1 UDP 41885439 203.0.113.1 6000 typ relay raddr 0.0.0.0 rport 0"
     " generation 0"),
])
def test_candidate_lines_both_ways(candidate: IceCandidate, line: str) -> None:
    assert candidate_attribute(candidate) == line  # RFC 8839 §5.1
    back = parse_candidate("a=" + line, candidate.id)
    assert back is not None
    assert back == candidate.__class__(**{**candidate.__dict__, "network": 0})


@pytest.mark.parametrize("line", [
    "candidate:1 1 TCP 2122260223 10.0.0.2 4000 typ host tcptype passive",  # udp only
    "candidate:1 1 UDP 2122260223 224.0.0.1 4000 typ host",  # multicast
    "candidate:1 1 UDP 0 10.0.0.2 4000 typ host",  # priority 0 (RFC 8445 §5.1.2.1)
    "candidate:1 1 UDP 2122260223 10.0.0.2 4000 typ weird",
    "candidate:1 1 UDP 2122260223 10.0.0.2",
    "a=end-of-candidates",
])
def test_unusable_candidate_lines_are_dropped(line: str) -> None:
    assert parse_candidate(line, "x") is None


def test_candidate_address_reads_what_a_stack_reports() -> None:
    # libjuice reports a learnt remote with priority 0, which a signalled one may not have.
    assert candidate_address("a=candidate:1 1 UDP 0 127.0.0.1 33424 typ prflx") == (
        "prflx", "127.0.0.1", 33424)
    assert candidate_address("garbage") is None
