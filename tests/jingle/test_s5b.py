"""XEP-0260 pure logic: codec, priorities, DST.ADDR, nomination (no event loop)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from jinglefs.errors import LocalProtocolError, RemoteProtocolError
from jinglefs.jingle.ns import S5B_TRANSPORT
from jinglefs.jingle.transport import known_transports, parse_transport
from jinglefs.s5b.protocol import (
    Nomination,
    S5bCandidate,
    S5bNegotiation,
    S5bState,
    S5bTransport,
    candidate_priority,
    dstaddr,
)

ROMEO = "romeo@montague.lit/orchard"
JULIET = "juliet@capulet.lit/balcony"
SID = "vj3hs98y"

# XEP-0260 §2.2 example 1 (session-initiate), as a transport element.
XEP_OFFER = f"""
<transport xmlns='{S5B_TRANSPORT}' mode='tcp' sid='vj3hs98y'>
  <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.lit/orchard'
             port='5086' priority='8257636' type='direct'/>
  <candidate cid='hutr46fe' host='24.24.24.1' jid='romeo@montague.lit/orchard'
             port='5087' priority='8258636' type='direct'/>
</transport>
"""


def parse(xml: str) -> S5bTransport:
    payload = parse_transport(ET.fromstring(xml))
    assert isinstance(payload, S5bTransport)
    return payload


def roundtrip(payload: S5bTransport) -> S5bTransport:
    return parse(ET.tostring(payload.to_element(), encoding="unicode"))


def cand(cid: str, priority: int, type_: str = "direct", jid: str = ROMEO) -> S5bCandidate:
    return S5bCandidate(
        cid=cid, host="192.0.2.1", jid=jid, port=5000, priority=priority, type=type_
    )


# -- DST.ADDR (XEP-0065 §5.3.2; vectors from docs/protocol.md §7.5 / XEP-0260) -------------


def test_dstaddr_initiator_first_vector() -> None:
    assert dstaddr(SID, ROMEO, JULIET) == "972b7bf47291ca609517f67f86b5081086052dad"


def test_dstaddr_responder_first_vector() -> None:
    assert dstaddr(SID, JULIET, ROMEO) == "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"


def test_dstaddr_is_utf8_lowercase_hex() -> None:
    value = dstaddr("s", "jüliet@capulet.lit/bälcony", "romeo@montague.lit/é")
    assert len(value) == 40 and value == value.lower()
    assert value != dstaddr("s", "juliet@capulet.lit/balcony", "romeo@montague.lit/e")


# -- priorities (XEP-0260 §2.2) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "local", "expected"),
    [
        ("direct", 0, 126 << 16),
        ("direct", 100, 8257636),  # the XEP example's first candidate
        ("assisted", 0, 7864320),
        ("tunnel", 0, 110 << 16),
        ("proxy", 0, 655360),  # Conversations' own proxy value
        ("proxy", 65535, (10 << 16) + 65535),
    ],
)
def test_candidate_priority(type_: str, local: int, expected: int) -> None:
    assert candidate_priority(type_, local) == expected


def test_any_direct_beats_any_proxy() -> None:
    assert candidate_priority("direct", 0) > candidate_priority("proxy", 65535)


@pytest.mark.parametrize(("type_", "local"), [("relay", 0), ("direct", -1), ("direct", 65536)])
def test_candidate_priority_rejects(type_: str, local: int) -> None:
    with pytest.raises(ValueError):
        candidate_priority(type_, local)


# -- codec -------------------------------------------------------------------------------


def test_registered_for_the_s5b_namespace() -> None:
    assert S5B_TRANSPORT in known_transports()


def test_parse_xep_example() -> None:
    t = parse(XEP_OFFER)
    assert t.sid == SID and t.mode == "tcp" and t.dstaddr is None
    assert [c.cid for c in t.candidates] == ["hft54dqy", "hutr46fe"]
    assert t.candidates[1] == S5bCandidate("hutr46fe", "24.24.24.1", ROMEO, 5087, 8258636)
    assert not t.is_signal
    assert roundtrip(t) == t


def test_to_element_always_writes_every_candidate_attribute() -> None:
    # docs/protocol.md §15.2: Conversations drops candidates lacking type (or any other).
    t = parse(
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s1'>"
        f"<candidate cid='c1' host='::1' jid='a@b/c' port='1' priority='7'/></transport>"
    )
    [el] = t.to_element()
    assert el.attrib == {
        "cid": "c1",
        "host": "::1",
        "jid": "a@b/c",
        "port": "1",
        "priority": "7",
        "type": "direct",
    }


def test_canonical_xml_of_an_offer_with_proxy() -> None:
    t = S5bTransport(
        sid="s1",
        dstaddr="ab" * 20,
        candidates=(cand("c1", 8257536), cand("p1", 655360, "proxy", "proxy.example.org")),
    )
    expected = (
        f'<transport xmlns="{S5B_TRANSPORT}" dstaddr="{"ab" * 20}" sid="s1">'
        '<candidate cid="c1" host="192.0.2.1" jid="romeo@montague.lit/orchard" port="5000" '
        'priority="8257536" type="direct"></candidate>'
        '<candidate cid="p1" host="192.0.2.1" jid="proxy.example.org" port="5000" '
        'priority="655360" type="proxy"></candidate></transport>'
    )
    got = ET.canonicalize(ET.tostring(t.to_element(), encoding="unicode"), rewrite_prefixes=True)
    assert got == ET.canonicalize(expected, rewrite_prefixes=True)
    assert roundtrip(t) == t


@pytest.mark.parametrize(
    ("child", "field", "value"),
    [
        ("<candidate-used cid='hr65dqyd'/>", "candidate_used", "hr65dqyd"),
        ("<candidate-error/>", "candidate_error", True),
        ("<activated cid='xmdh4b7i'/>", "activated", "xmdh4b7i"),
        ("<proxy-error/>", "proxy_error", True),
    ],
)
def test_signals_roundtrip(child: str, field: str, value: object) -> None:
    t = parse(f"<transport xmlns='{S5B_TRANSPORT}' sid='{SID}'>{child}</transport>")
    assert getattr(t, field) == value
    assert t.is_signal and not t.candidates
    assert roundtrip(t) == t


def test_mode_udp_kept_tcp_omitted() -> None:
    t = parse(f"<transport xmlns='{S5B_TRANSPORT}' sid='s' mode='udp'/>")
    assert t.mode == "udp" and t.to_element().get("mode") == "udp"
    assert S5bTransport(sid="s").to_element().get("mode") is None


def test_dstaddr_is_normalised_to_lowercase() -> None:
    t = parse(f"<transport xmlns='{S5B_TRANSPORT}' sid='s' dstaddr='{'AB' * 20}'/>")
    assert t.dstaddr == "ab" * 20


def test_foreign_children_are_ignored() -> None:
    t = parse(
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s'><x xmlns='urn:example'/>"
        f"<candidate-error/></transport>"
    )
    assert t.candidate_error


def test_missing_type_defaults_to_direct() -> None:
    t = parse(
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s'>"
        "<candidate cid='c' host='h.example' jid='a@b/c' port='1' priority='1'/></transport>"
    )
    assert t.candidates[0].type == "direct"


GOOD = {
    "cid": "c1",
    "host": "192.0.2.7",
    "jid": "a@example.org/r",
    "port": "5086",
    "priority": "8257636",
    "type": "direct",
}


def _one_candidate() -> str:
    return "<candidate " + " ".join(f'{k}="{v}"' for k, v in GOOD.items()) + "/>"


def _candidate_xml(**changes: str | None) -> str:
    attrs = {**GOOD, **changes}
    text = " ".join(f'{k}="{v}"' for k, v in attrs.items() if v is not None)
    return f"<transport xmlns='{S5B_TRANSPORT}' sid='s'><candidate {text}/></transport>"


@pytest.mark.parametrize(
    "changes",
    [
        {"cid": None},
        {"cid": ""},
        {"cid": "a b"},
        {"host": None},
        {"host": ""},
        {"host": "not a host"},
        {"host": "-bad-.example..org"},
        {"jid": None, "type": "proxy"},  # a proxy is activated at its jid
        {"jid": "", "type": "proxy"},
        {"jid": "a@b@c"},
        {"jid": "a b@c"},
        {"port": None},
        {"port": "0"},
        {"port": "65536"},
        {"port": "-1"},
        {"port": "80a"},
        {"port": "+80"},
        {"port": " 80"},
        {"priority": None},
        {"priority": "-5"},
        {"priority": "1.5"},
        {"priority": "99999999999"},
        {"priority": "x"},
        {"type": "relay"},
        {"type": ""},
    ],
)
def test_malformed_candidate_is_bad_request(changes: dict[str, str | None]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse(_candidate_xml(**changes))
    assert info.value.condition == "bad-request"


def test_a_direct_candidate_without_jid_is_the_peers() -> None:
    # Psi writes neither jid nor type on its direct candidates (docs/interop.md §6.4).
    [cand] = parse(_candidate_xml(jid=None, type=None)).candidates
    assert (cand.type, cand.jid, cand.port) == ("direct", "", 5086)


def test_good_candidate_template_parses() -> None:
    # The malformed cases above differ from this one by a single attribute.
    assert parse(_candidate_xml()).candidates[0].port == 5086


@pytest.mark.parametrize(
    "xml",
    [
        f"<transport xmlns='{S5B_TRANSPORT}'/>",  # no sid
        f"<transport xmlns='{S5B_TRANSPORT}' sid=''/>",
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s' mode='sctp'/>",
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s' dstaddr='xyz'/>",
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s'><candidate-used/></transport>",
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s'><activated cid=''/></transport>",
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s'><candidate-error/><proxy-error/></transport>",
        f"<transport xmlns='{S5B_TRANSPORT}' sid='s'><candidate-used cid='a'/>"
        "<candidate-used cid='b'/></transport>",
        _candidate_xml().replace("</transport>", "<candidate-error/></transport>"),
        _candidate_xml().replace("</transport>", _one_candidate() + "</transport>"),
    ],
)
def test_malformed_transport_is_bad_request(xml: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse(xml)
    assert info.value.condition == "bad-request"


def test_duplicate_cid_case_really_duplicates() -> None:
    # Guard for the last malformed case above: two candidates, identical cids.
    xml = _candidate_xml().replace("</transport>", _one_candidate() + "</transport>")
    assert len(ET.fromstring(xml)) == 2 and xml.count('cid="c1"') == 2


# -- negotiation ---------------------------------------------------------------------------

# Both sides offer the same shape of candidates (so every exchange has a mirror image):
# a direct one at local preference 100, a low and a high one, and a proxy.
OURS_DIRECT = cand("o-direct", candidate_priority("direct", 100), jid=ROMEO)
OURS_LOW = cand("o-low", candidate_priority("direct", 5), jid=ROMEO)
OURS_HIGH = cand("o-high", candidate_priority("direct", 200), jid=ROMEO)
OURS_PROXY = cand("o-proxy", candidate_priority("proxy"), "proxy", "proxy.montague.lit")
THEIRS_DIRECT = cand("t-direct", candidate_priority("direct", 100), jid=JULIET)
THEIRS_LOW = cand("t-low", candidate_priority("direct", 5), jid=JULIET)
THEIRS_HIGH = cand("t-high", candidate_priority("direct", 200), jid=JULIET)
THEIRS_PROXY = cand("t-proxy", candidate_priority("proxy"), "proxy", "proxy.capulet.lit")


def negotiation(role: str = "initiator") -> S5bNegotiation:
    return S5bNegotiation(
        role=role,  # type: ignore[arg-type]
        sid=SID,
        local_jid=ROMEO if role == "initiator" else JULIET,
        peer_jid=JULIET if role == "initiator" else ROMEO,
        local_candidates=(OURS_DIRECT, OURS_LOW, OURS_HIGH, OURS_PROXY),
        remote_candidates=(THEIRS_DIRECT, THEIRS_LOW, THEIRS_HIGH, THEIRS_PROXY),
    )


def signals(n: S5bNegotiation) -> list[S5bTransport]:
    return n.payloads_to_send()


def test_remote_candidates_best_first() -> None:
    assert [c.cid for c in negotiation().remote_candidates] == [
        "t-high",
        "t-direct",
        "t-low",
        "t-proxy",
    ]


def test_we_report_candidate_used_then_wait() -> None:
    n = negotiation()
    n.local_candidate_connected("t-direct")
    assert signals(n) == [S5bTransport(sid=SID, candidate_used="t-direct")]
    assert n.state is S5bState.CONNECTING and n.nomination is None and not n.ready


def test_we_report_candidate_error() -> None:
    n = negotiation()
    n.local_candidates_failed()
    assert signals(n) == [S5bTransport(sid=SID, candidate_error=True)]


# (our report, their report, role) -> (nominated cid, ours?)   XEP-0260 §2.4
NOMINATION_TABLE = [
    # one used + one error -> the used one
    ("t-direct", "error", "initiator", "t-direct", False),
    ("error", "o-direct", "initiator", "o-direct", True),
    ("t-direct", "error", "responder", "t-direct", False),
    ("error", "o-low", "responder", "o-low", True),
    # both used, different priorities -> the higher priority
    ("t-high", "o-direct", "initiator", "t-high", False),
    ("t-high", "o-direct", "responder", "t-high", False),
    ("t-direct", "o-low", "initiator", "t-direct", False),
    ("t-proxy", "o-low", "responder", "o-low", True),
    ("t-direct", "o-proxy", "initiator", "t-direct", False),
    # both used, equal priority -> the initiator's pick
    ("t-direct", "o-direct", "initiator", "t-direct", False),  # we are initiator: ours pick
    ("t-direct", "o-direct", "responder", "o-direct", True),  # peer is initiator: its pick
    ("t-proxy", "o-proxy", "initiator", "t-proxy", False),
    ("t-proxy", "o-proxy", "responder", "o-proxy", True),
]


@pytest.mark.parametrize(("ours", "theirs", "role", "nominated", "is_ours"), NOMINATION_TABLE)
@pytest.mark.parametrize("we_report_first", [True, False])
def test_nomination_table(
    ours: str, theirs: str, role: str, nominated: str, is_ours: bool, we_report_first: bool
) -> None:
    n = negotiation(role)

    def ours_report() -> None:
        if ours == "error":
            n.local_candidates_failed()
        else:
            n.local_candidate_connected(ours)

    def theirs_report() -> None:
        if theirs == "error":
            n.remote_candidate_error()
        else:
            n.remote_candidate_used(theirs)

    first, second = (
        (ours_report, theirs_report) if we_report_first else (theirs_report, ours_report)
    )
    first()
    assert n.nomination is None
    second()
    assert n.error is None
    assert n.nomination is not None
    assert (n.nomination.candidate.cid, n.nomination.ours) == (nominated, is_ours)
    # Both sides must agree: run the mirror image from the peer's point of view.
    assert _peer_view(ours, theirs, role) == (nominated, not is_ours)


def _peer_view(ours: str, theirs: str, role: str) -> tuple[str, bool]:
    """The same exchange computed by the other party (cids swap owners)."""
    flip = {"t": "o", "o": "t"}

    def swap(cid: str) -> str:
        return cid if cid == "error" else flip[cid[0]] + cid[1:]

    peer_role = "responder" if role == "initiator" else "initiator"
    n = negotiation(peer_role)
    their_report, my_report = swap(ours), swap(theirs)
    if my_report == "error":
        n.local_candidates_failed()
    else:
        n.local_candidate_connected(my_report)
    if their_report == "error":
        n.remote_candidate_error()
    else:
        n.remote_candidate_used(their_report)
    assert n.nomination is not None
    return swap(n.nomination.candidate.cid), n.nomination.ours


def test_both_error_fails() -> None:
    n = negotiation()
    n.local_candidates_failed()
    n.remote_candidate_error()
    assert n.state is S5bState.FAILED and n.nomination is None and n.error is None
    assert n.failure_reason and "neither side" in n.failure_reason


def test_direct_nomination_is_ready_at_once() -> None:
    n = negotiation()
    n.local_candidate_connected("t-direct")
    n.remote_candidate_error()
    assert n.state is S5bState.READY and n.ready and not n.must_activate


def test_our_proxy_nominated_we_activate_then_ready() -> None:
    n = negotiation("responder")
    n.local_candidates_failed()
    n.remote_candidate_used("o-proxy")
    signals(n)
    assert n.state is S5bState.ACTIVATING and n.must_activate and not n.ready
    assert n.nomination == Nomination(OURS_PROXY, ours=True)
    n.proxy_activated()
    assert signals(n) == [S5bTransport(sid=SID, activated="o-proxy")]
    assert n.ready


def test_our_proxy_activation_failure_sends_proxy_error() -> None:
    n = negotiation()
    n.local_candidates_failed()
    n.remote_candidate_used("o-proxy")
    signals(n)
    n.proxy_activation_failed("proxy said not-allowed")
    assert signals(n) == [S5bTransport(sid=SID, proxy_error=True)]
    assert n.state is S5bState.FAILED and n.failure_reason == "proxy said not-allowed"


def test_their_proxy_no_data_before_activated() -> None:
    n = negotiation()
    n.local_candidate_connected("t-proxy")
    n.remote_candidate_error()
    assert n.state is S5bState.AWAITING_ACTIVATED and not n.ready and not n.must_activate
    n.remote_activated("t-proxy")
    assert n.ready
    n.remote_activated("t-proxy")  # duplicate: harmless
    assert n.ready and n.error is None


def test_their_proxy_error_fails() -> None:
    n = negotiation()
    n.local_candidate_connected("t-proxy")
    n.remote_candidate_error()
    n.remote_proxy_error()
    assert n.state is S5bState.FAILED and n.error is None


def test_candidate_used_for_unknown_cid_is_protocol_error() -> None:
    n = negotiation()
    n.remote_candidate_used("t-direct")  # the peer's own cid, not one of ours
    assert n.state is S5bState.ERROR
    assert n.error is not None and n.error.condition == "bad-request"
    assert "never offered" in str(n.error) and "'t-direct'" in str(n.error)


def test_activated_for_non_nominated_cid_is_protocol_error() -> None:
    n = negotiation()
    n.local_candidate_connected("t-proxy")
    n.remote_candidate_error()
    n.remote_activated("t-direct")
    assert n.state is S5bState.ERROR and n.error is not None
    assert "nominated candidate is 't-proxy'" in str(n.error)


def test_activated_before_nomination_is_out_of_order() -> None:
    n = negotiation()
    n.remote_activated("t-proxy")
    assert n.error is not None
    assert (n.error.condition, n.error.jingle_condition) == ("unexpected-request", "out-of-order")


def test_activated_for_direct_nomination_is_protocol_error() -> None:
    n = negotiation()
    n.local_candidate_connected("t-direct")
    n.remote_candidate_error()
    n.remote_activated("t-direct")
    assert n.state is S5bState.ERROR and "not a proxy candidate" in str(n.error)


def test_activated_for_our_own_proxy_is_protocol_error() -> None:
    n = negotiation()
    n.local_candidates_failed()
    n.remote_candidate_used("o-proxy")
    n.remote_activated("o-proxy")  # we are the one who activates it
    assert n.state is S5bState.ERROR


def test_proxy_error_without_proxy_nomination_is_protocol_error() -> None:
    n = negotiation()
    n.remote_proxy_error()
    assert n.state is S5bState.ERROR


def test_conflicting_second_report_is_protocol_error() -> None:
    n = negotiation()
    n.remote_candidate_used("o-direct")
    n.remote_candidate_used("o-direct")  # retransmission: fine
    assert n.error is None
    n.remote_candidate_error()
    assert n.state is S5bState.ERROR


def test_late_input_after_failure_is_ignored() -> None:
    n = negotiation()
    n.local_candidates_failed()
    n.remote_candidate_error()
    signals(n)
    n.local_candidate_connected("t-direct")  # a connect that finished too late
    n.remote_candidate_used("nonsense")
    assert n.state is S5bState.FAILED and signals(n) == []


def test_local_misuse_raises() -> None:
    n = negotiation()
    with pytest.raises(LocalProtocolError):
        n.local_candidate_connected("o-direct")  # ours, not the peer's
    n.local_candidates_failed()
    with pytest.raises(LocalProtocolError):
        n.local_candidate_connected("t-direct")  # already reported
    with pytest.raises(LocalProtocolError):
        n.proxy_activated()  # nothing to activate


def test_receive_dispatches_and_checks_sid() -> None:
    n = negotiation()
    n.receive(S5bTransport(sid=SID, candidate_used="o-direct"))
    n.local_candidates_failed()
    assert n.nomination == Nomination(OURS_DIRECT, ours=True)
    other = negotiation()
    other.receive(S5bTransport(sid="other", candidate_error=True))
    assert other.state is S5bState.ERROR and "does not match" in str(other.error)


def test_receive_more_candidates() -> None:
    n = S5bNegotiation(role="responder", sid=SID, local_jid=JULIET, peer_jid=ROMEO)
    n.receive(S5bTransport(sid=SID, candidates=(cand("late", 5),)))
    assert [c.cid for c in n.remote_candidates] == ["late"]
    n.receive(S5bTransport(sid=SID, candidates=(cand("late", 6),)))  # same cid, new content
    assert n.state is S5bState.ERROR


def test_min_useful_priority_after_peer_pick() -> None:
    n = negotiation()
    assert n.min_useful_priority is None
    n.remote_candidate_used("o-low")
    assert n.min_useful_priority == OURS_LOW.priority


def test_offer_carries_dstaddr_only_with_a_proxy() -> None:
    n = negotiation()
    offer = n.offer()
    assert offer.dstaddr == dstaddr(SID, ROMEO, JULIET)
    assert [c.cid for c in offer.candidates] == ["o-direct", "o-low", "o-high", "o-proxy"]
    plain = S5bNegotiation(
        role="initiator", sid=SID, local_jid=ROMEO, peer_jid=JULIET, local_candidates=[OURS_LOW]
    )
    assert plain.offer().dstaddr is None


def test_listener_accepts_both_orders() -> None:
    for role in ("initiator", "responder"):
        assert negotiation(role).listener_dstaddrs() == {
            "972b7bf47291ca609517f67f86b5081086052dad",
            "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba",
        }


def test_dstaddrs_for_direct_candidates() -> None:
    initiator_first = "972b7bf47291ca609517f67f86b5081086052dad"  # sid+romeo+juliet
    responder_first = "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"  # sid+juliet+romeo
    # Romeo (initiator) dialling Juliet's candidate: owner-first, then initiator-first.
    assert negotiation("initiator").dstaddrs_for(THEIRS_DIRECT) == (
        responder_first,
        initiator_first,
    )
    # Juliet (responder) dialling Romeo's candidate: both orders coincide.
    assert negotiation("responder").dstaddrs_for(THEIRS_DIRECT) == (initiator_first,)


def test_dstaddrs_for_proxy_prefers_announced_dstaddr() -> None:
    n = negotiation()
    assert n.dstaddrs_for(THEIRS_PROXY) == (dstaddr(SID, JULIET, ROMEO),)
    n.remote_dstaddr = "cd" * 20
    assert n.dstaddrs_for(THEIRS_PROXY) == ("cd" * 20,)
    assert n.proxy_dstaddr() == dstaddr(SID, ROMEO, JULIET)
