"""XEP-0353 elements and decisions (jinglefs.jmi.protocol), on the shapes Libervia sends."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from jinglefs.jingle import ns
from jinglefs.jmi.protocol import (
    HINTS,
    NS,
    Answer,
    JmiMessage,
    Verb,
    answer_propose,
    element,
    hints,
    parse,
    proceeded_by,
    proposes_files,
    rejected_by,
)

RTP = "urn:xmpp:jingle:apps:rtp:1"


def message(*children: str) -> ET.Element:
    return ET.fromstring(f"<message xmlns='jabber:client' type='chat'>{''.join(children)}"
                         "</message>")


def test_libervia_propose_is_a_file_proposal() -> None:
    """docs/interop.md §7.5: an empty file-transfer description, no <file/>."""
    msg = parse(message(f"<propose xmlns='{NS}' id='sid-1'>"
                        f"<description xmlns='{ns.FT}'/></propose>",
                        "<body>x</body>"))
    assert msg == JmiMessage(Verb.PROPOSE, "sid-1", (ns.FT,))
    assert proposes_files(msg)


@pytest.mark.parametrize("descriptions", [
    f"<description xmlns='{RTP}' media='audio'/>",
    f"<description xmlns='{RTP}' media='audio'/><description xmlns='{ns.FT}'/>",
    "",
])
def test_calls_and_empty_proposals_are_not_ours(descriptions: str) -> None:
    msg = parse(message(f"<propose xmlns='{NS}' id='s'>{descriptions}</propose>"))
    assert msg is not None and not proposes_files(msg)
    assert answer_propose(msg, contact=True, allowed=True, refused=False) is Answer.IGNORE


def test_retract_with_its_reason() -> None:
    """XEP-0353 §3.3 example."""
    msg = parse(message(f"<retract xmlns='{NS}' id='s'><reason xmlns='{ns.JINGLE}'><cancel/>"
                        "<text>Retracted</text></reason></retract>",
                        f"<store xmlns='{HINTS}'/>"))
    assert msg == JmiMessage(Verb.RETRACT, "s", reason="cancel", text="Retracted")


@pytest.mark.parametrize("child", [
    f"<propose xmlns='{NS}'><description xmlns='{ns.FT}'/></propose>",  # no id
    f"<dance xmlns='{NS}' id='s'/>",  # no such element
    "<propose xmlns='urn:xmpp:jingle:jingle-message:1' id='s'/>",  # 0.4/0.5 namespace
    "<body>hi</body>",
])
def test_what_is_not_a_jmi_message(child: str) -> None:
    assert parse(message(child)) is None


@pytest.mark.parametrize("msg", [
    JmiMessage(Verb.PROPOSE, "a", (ns.FT,)),
    JmiMessage(Verb.PROCEED, "b"),
    JmiMessage(Verb.ACCEPT, "c"),
    JmiMessage(Verb.REJECT, "d", reason="busy", text="Busy"),
    JmiMessage(Verb.RETRACT, "e", reason="cancel"),
    JmiMessage(Verb.FINISH, "f", reason="success"),
])
def test_round_trip(msg: JmiMessage) -> None:
    el = element(msg)
    assert el.tag == f"{{{NS}}}{msg.verb.value}" and el.get("id") == msg.sid
    wrapper = ET.Element("{jabber:client}message")
    wrapper.extend([el, hints()])
    assert parse(ET.fromstring(ET.tostring(wrapper))) == msg


def test_propose_xml_matches_the_xep_shape() -> None:
    """XEP-0353 §3.1: one <description/> per application in <propose id=…/>."""
    el = element(JmiMessage(Verb.PROPOSE, "id-1", (ns.FT,)))
    assert [c.tag for c in el] == [f"{{{ns.FT}}}description"] and el.attrib == {"id": "id-1"}
    assert hints().tag == f"{{{HINTS}}}store"


def test_who_gets_an_answer() -> None:
    """XEP-0353 §6: only contacts or senders the user allowed get a proceed."""
    files = JmiMessage(Verb.PROPOSE, "s", (ns.FT,))
    assert answer_propose(files, contact=True, allowed=False, refused=False) is Answer.PROCEED
    assert answer_propose(files, contact=False, allowed=True, refused=False) is Answer.PROCEED
    assert answer_propose(files, contact=False, allowed=False, refused=False) is Answer.IGNORE
    assert answer_propose(files, contact=True, allowed=False, refused=True) is Answer.REJECT


def test_proceed_and_reject_for_our_proposal() -> None:
    proceed = JmiMessage(Verb.PROCEED, "s")
    assert proceeded_by(proceed, "bob@x.org/laptop", "s", "Bob@X.org")
    assert not proceeded_by(proceed, "bob@x.org", "s", "bob@x.org")  # needs a device
    assert not proceeded_by(proceed, "eve@x.org/laptop", "s", "bob@x.org")
    assert not proceeded_by(proceed, "bob@x.org/laptop", "other", "bob@x.org")
    reject = JmiMessage(Verb.REJECT, "s", reason="busy")
    assert rejected_by(reject, "bob@x.org/phone", "s", "bob@x.org")
    assert not rejected_by(reject, "eve@x.org/phone", "s", "bob@x.org")
    assert not rejected_by(proceed, "bob@x.org/phone", "s", "bob@x.org")
