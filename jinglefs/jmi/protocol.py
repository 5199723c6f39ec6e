"""Jingle Message Initiation (XEP-0353) for file transfer: the elements and the decisions.

Pure: no I/O, no clock.  The ``<message/>`` itself is the service's; this module reads and
writes the one JMI element inside it (``<propose/>``, ``<retract/>``, ``<accept/>``,
``<proceed/>``, ``<reject/>``, ``<ringing/>``, ``<finish/>``; namespace
``urn:xmpp:jingle-message:0``, XEP-0353 §9.2) and decides what to answer.

What deployed clients do (docs/interop.md §7.5, §3.9, §4.7): only Libervia proposes file
transfers.  Its ``<propose/>`` goes from its full JID to our bare JID and carries one empty
file-transfer ``<description/>`` (no ``<file/>``); it takes the first ``<proceed/>`` and
sends session-initiate with the propose id as sid to the full JID that proceeded.  Its own
answer to a proposal is ``<accept/>`` to its bare JID plus ``<proceed/>`` to the proposer,
and a refusal goes to its own bare JID only.  Conversations and Dino act on RTP proposals
only.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..jid import bare_jid, has_resource
from ..jingle import ns

__all__ = ["HINTS", "NS", "Answer", "JmiMessage", "Verb", "answer_propose", "element",
           "hints", "parse", "proceeded_by", "proposes_files", "rejected_by"]

NS = "urn:xmpp:jingle-message:0"  # XEP-0353 §9.2 (:0 again since version 0.6)
HINTS = "urn:xmpp:hints"  # XEP-0334 <store/>, which XEP-0353 §3 asks for


class Verb(enum.Enum):
    """The JMI elements (XEP-0353 §3.1-§3.7)."""

    PROPOSE = "propose"
    RINGING = "ringing"
    RETRACT = "retract"
    ACCEPT = "accept"  # the pre-0.5 "stop ringing" note to one's own bare JID (Libervia)
    PROCEED = "proceed"
    REJECT = "reject"
    FINISH = "finish"


_VERBS = {v.value: v for v in Verb}


@dataclass(frozen=True)
class JmiMessage:
    """One JMI element."""

    verb: Verb
    #: the propose id, which becomes the Jingle sid (XEP-0353 §3.1)
    sid: str
    #: propose only: the namespace of each ``<description/>``
    descriptions: tuple[str, ...] = ()
    #: retract / reject / finish: the XEP-0166 §7.4 condition of its ``<reason/>``, if any
    reason: str | None = None
    text: str = ""


def parse(message: ET.Element) -> JmiMessage | None:
    """The JMI element of a ``<message/>``, or None when it has none we can use (no id, an
    unknown element)."""
    for child in message:
        uri, _, local = child.tag[1:].partition("}")
        if uri != NS:
            continue
        verb = _VERBS.get(local)
        sid = child.get("id")
        if verb is None or not sid:
            return None
        descriptions = tuple(d.tag[1:].partition("}")[0] for d in child
                             if d.tag.endswith("}description"))
        reason, text = _reason(child.find(f"{{{ns.JINGLE}}}reason"))
        return JmiMessage(verb, sid, descriptions, reason, text)
    return None


def _reason(el: ET.Element | None) -> tuple[str | None, str]:
    if el is None:
        return None, ""
    condition: str | None = None
    text = ""
    for child in el:
        uri, _, local = child.tag[1:].partition("}")
        if uri != ns.JINGLE:
            continue
        if local == "text":
            text = child.text or ""
        elif condition is None:
            condition = local
    return condition, text


def element(msg: JmiMessage) -> ET.Element:
    """The JMI element for a ``<message type='chat'/>`` (XEP-0353 §3)."""
    el = ET.Element(f"{{{NS}}}{msg.verb.value}", {"id": msg.sid})
    for namespace in msg.descriptions:
        # Like Libervia's: an empty description names the application (XEP-0353 §3.1)
        ET.SubElement(el, f"{{{namespace}}}description")
    if msg.reason is not None:
        reason = ET.SubElement(el, f"{{{ns.JINGLE}}}reason")
        ET.SubElement(reason, f"{{{ns.JINGLE}}}{msg.reason}")
        if msg.text:
            ET.SubElement(reason, f"{{{ns.JINGLE}}}text").text = msg.text
    return el


def hints() -> ET.Element:
    """``<store/>``: every JMI message carries it (XEP-0353 §3)."""
    return ET.Element(f"{{{HINTS}}}store")


def proposes_files(msg: JmiMessage) -> bool:
    """A proposal of a file transfer: every description is XEP-0234's (a mixed or RTP
    proposal is a call, not ours)."""
    return (msg.verb is Verb.PROPOSE and bool(msg.descriptions)
            and all(d == ns.FT for d in msg.descriptions))


class Answer(enum.Enum):
    """What a responder does with a proposal."""

    PROCEED = "proceed"  # <proceed/> to the proposer, <accept/> to our own bare JID
    REJECT = "reject"  # <reject/> to the proposer
    IGNORE = "ignore"  # no answer at all


def answer_propose(msg: JmiMessage, *, contact: bool, allowed: bool, refused: bool) -> Answer:
    """Whether to proceed with a proposal.

    ``contact``: the proposer is in our roster; ``allowed``: the user listed it
    (``Settings.accept_from``); ``refused``: the accept policy declines it.  XEP-0353 §6: a
    responder answers on its own only to roster contacts (or whom the user allowed), since
    any answer tells the proposer that we are online; everyone else gets no answer.
    """
    if not proposes_files(msg):
        return Answer.IGNORE
    if refused:
        return Answer.REJECT
    return Answer.PROCEED if contact or allowed else Answer.IGNORE


def proceeded_by(msg: JmiMessage, sender: str, sid: str, target: str) -> bool:
    """``msg`` from ``sender`` is a device of ``target`` (a bare JID) proceeding with our
    proposal ``sid`` (XEP-0353 §3.4): the session goes to that full JID."""
    return (msg.verb is Verb.PROCEED and msg.sid == sid and has_resource(sender)
            and bare_jid(sender) == bare_jid(target))


def rejected_by(msg: JmiMessage, sender: str, sid: str, target: str) -> bool:
    """``msg`` from ``sender`` is ``target`` rejecting our proposal ``sid`` (XEP-0353
    §3.5)."""
    return (msg.verb is Verb.REJECT and msg.sid == sid
            and bare_jid(sender) == bare_jid(target))
