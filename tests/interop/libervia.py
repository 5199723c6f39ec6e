"""A Libervia 0.8 test peer (libervia-backend 0.8.0, docs/interop.md §7): the stanzas its
Jingle file transfer builds, and how it answers.

What it does, as read (``sat/plugins/``, file and function in docs/interop.md §7):

* Offer (``plugin_xep_0234.py`` ``buildFileElement``): ``<file>`` with name, size,
  media-type, desc, date, an empty ``<range/>`` and ``<hash-used algo='sha-256'/>``;
  a UUID content name, ``senders='initiator'``, ``initiator`` on the initiate.
* It refuses an offer without ``<hash>``/``<hash-used>``; its hash values are base64 of
  the HEX digest (``plugin_xep_0300.py`` ``buildHashElt``/``parseHashElt``).
* After the last byte the sender sends ``<checksum creator name>`` with that hex-in-base64
  sha-256 (``_sendCheckSum``); the receiver ends with ``success`` after a checksum it can
  read, or 5 s after the last byte (a standard base64 value does not decode there).
* SOCKS5 (``plugin_xep_0260.py``): ``mode='tcp'`` from the initiator, every attribute on
  every candidate, ``dstaddr`` only with a proxy; owner-first DST.ADDR both ways; its own
  nominated proxy is activated (the answer waited for), then ``<activated/>``; only the
  initiator falls back, to IBB, by transport-replace.
* IBB (``plugin_xep_0047.py``, ``plugin_xep_0261.py``): block size 4096, the Jingle
  initiator opens, one IQ in flight, ``seq`` modulo 65535, ``<close/>`` at the end.
* JMI (``plugin_xep_0353.py``): to a bare JID it first sends ``<propose/>`` carrying an
  empty file-transfer ``<description/>``, then session-initiate with the propose id as
  sid to the full JID that sent ``<proceed/>``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from .bytestreams import Candidate
from .peer import CLIENT, FT, HASHES, IBB_T, JINGLE, S5B, ScriptedPeer, hash_hex_b64, s5b_dstaddr

IDENTITY = ("client", "pc", "Libervia")
CAPS_NODE = "https://salut-a-toi.org"
JMI = "urn:xmpp:jingle-message:0"
HINTS = "urn:xmpp:hints"
#: ``XEP_0300.ALGOS``: the only algorithms it knows.
ALGOS = ("md5", "sha-1", "sha-256", "sha-512")
FEATURES = [
    "http://jabber.org/protocol/bytestreams", "http://jabber.org/protocol/ibb",
    "http://jabber.org/protocol/disco#info", "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:file-transfer:5", "urn:xmpp:jingle:transports:s5b:1",
    "urn:xmpp:jingle:transports:ibb:1", "urn:xmpp:hashes:2", JMI,
    *(f"urn:xmpp:hash-function-text-names:{a}" for a in ALGOS),
]
#: ``Candidate.calculatePriority``: (type preference << 16) + local preference.
BEST_DIRECT_PRIORITY = (126 << 16) + 10000
PROXY_PRIORITY = 10 << 16
IBB_BLOCK = 4096
#: ``plugin_xep_0047``: seq wraps at 65535, not 65536
SEQ_MODULO = 65535
LIBERVIA_DATE = "2024-05-01T10:00:00Z"


def uid() -> str:
    return str(uuid.uuid4())


def file_xml(name: str, size: int, *, media_type: str, desc: str = "",
             date: str = LIBERVIA_DATE) -> str:
    """``buildFileElement``: name, size, media-type, desc, date, range, hash-used."""
    return (f"<file><name>{name}</name><size>{size}</size><media-type>{media_type}"
            f"</media-type><desc>{desc}</desc><date>{date}</date><range/>"
            f"<hash-used xmlns='{HASHES}' algo='sha-256'/></file>")


def candidate_xml(c: Candidate) -> str:
    """``_buildCandidates``: cid, host, jid, port, priority, type: all of them."""
    return (f"<candidate cid='{c.cid}' host='{c.host}' jid='{c.jid}' port='{c.port}' "
            f"priority='{c.priority}' type='{c.type}'/>")


def s5b_transport(sid: str, candidates: Sequence[Candidate], *, owner: str, peer: str,
                  mode: bool = True) -> str:
    """``dstaddr`` (owner first) only when a proxy is offered; ``mode='tcp'``."""
    attrs = f"sid='{sid}'"
    if any(c.type == "proxy" for c in candidates):
        attrs += f" dstaddr='{s5b_dstaddr(sid, owner, peer)}'"
    if mode:
        attrs += " mode='tcp'"
    return (f"<transport xmlns='{S5B}' {attrs}>"
            + "".join(candidate_xml(c) for c in candidates) + "</transport>")


def ibb_transport(sid: str) -> str:
    return f"<transport xmlns='{IBB_T}' block-size='{IBB_BLOCK}' sid='{sid}'/>"


def content(name: str, inner: str, creator: str = "initiator",
            senders: str | None = "initiator") -> str:
    s = f" senders='{senders}'" if senders else ""
    return f"<content creator='{creator}' name='{name}'{s}>{inner}</content>"


def description(file: str = "") -> str:
    return f"<description xmlns='{FT}'>{file}</description>"


def jingle(action: str, sid: str, inner: str, initiator: str = "") -> str:
    i = f" initiator='{initiator}'" if initiator else ""
    return f"<jingle xmlns='{JINGLE}' action='{action}' sid='{sid}'{i}>{inner}</jingle>"


def session_accept(sid: str, responder: str, initiate: ET.Element, transport: str) -> str:
    """``_onInitiateConfirmed``: ``responder``, each content with creator and name (no
    senders), the offered description as received, then our transport."""
    [c] = initiate.findall(f"{{{JINGLE}}}content")
    d = c.find(f"{{{FT}}}description")
    assert d is not None
    return (f"<jingle xmlns='{JINGLE}' action='session-accept' sid='{sid}' "
            f"responder='{responder}'>" + content(
                str(c.get("name")), ET.tostring(d, encoding="unicode") + transport,
                senders=None) + "</jingle>")


def checksum(creator: str, name: str, data: bytes) -> str:
    """``_sendCheckSum``: base64 of the hex sha-256."""
    return (f"<checksum xmlns='{FT}' creator='{creator}' name='{name}'><file>"
            f"<hash xmlns='{HASHES}' algo='sha-256'>{hash_hex_b64('sha-256', data)}</hash>"
            "</file></checksum>")


def transport_info(sid: str, content_name: str, transport_sid: str, signal: str,
                   creator: str = "initiator") -> str:
    return jingle("transport-info", sid, content(
        content_name, f"<transport xmlns='{S5B}' sid='{transport_sid}'>{signal}</transport>",
        creator, None))


def required_hash(file_el: ET.Element) -> tuple[str, str | None]:
    """``_fileReceivingRequestConf`` + ``parseHashElt``: (algo, hex value or None for
    hash-used); raises what Libervia would fail on."""
    for h in file_el.iter(f"{{{HASHES}}}hash"):
        return str(h.get("algo")), base64.b64decode(h.text or "").decode("utf-8")
    used = file_el.find(f"{{{HASHES}}}hash-used")
    if used is None:
        raise AssertionError("Libervia refuses an offer without <hash> or <hash-used>")
    algo = str(used.get("algo"))
    if algo not in ALGOS:
        raise AssertionError(f"Libervia does not know {algo}")
    return algo, None


def reads_checksum(checksum_el: ET.Element, data: bytes) -> bool:
    """``jingleSessionInfo``: True when Libervia can read the value and it matches (the
    value must base64-decode to UTF-8 hex text)."""
    h = checksum_el.find(f"{{{FT}}}file/{{{HASHES}}}hash")
    if h is None:
        return False
    try:
        text = base64.b64decode(h.text or "").decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return False
    return text == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- JMI (XEP-0353)


class JmiInbox:
    """The JMI elements Libervia's client receives in ``<message/>`` stanzas."""

    def __init__(self, peer: ScriptedPeer) -> None:
        self.got: asyncio.Queue[tuple[str, ET.Element]] = asyncio.Queue()
        peer.xmpp.register_handler(Callback("libervia jmi", MatchXPath(
            f"{{{CLIENT}}}message/{{{JMI}}}*"), self._on_message))

    def _on_message(self, msg: object) -> None:
        xml: ET.Element = msg.xml  # type: ignore[attr-defined]
        for child in xml:
            if child.tag.startswith(f"{{{JMI}}}"):
                self.got.put_nowait((str(xml.get("from")), child))

    async def next(self, verb: str, timeout: float = 15) -> tuple[str, ET.Element]:
        async with asyncio.timeout(timeout):
            while True:
                sender, el = await self.got.get()
                if el.tag == f"{{{JMI}}}{verb}":
                    return sender, el


def send_propose(peer: ScriptedPeer, bare: str, sid: str) -> None:
    """``_onInitiateTrigger``: a chat message to the bare JID with ``<propose id>`` holding
    an empty file-transfer ``<description/>``."""
    msg = peer.xmpp.make_message(mto=bare, mtype="chat")
    propose = ET.SubElement(msg.xml, f"{{{JMI}}}propose", {"id": sid})
    ET.SubElement(propose, f"{{{FT}}}description")
    msg.send()
