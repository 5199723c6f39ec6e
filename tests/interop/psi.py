"""A Psi test peer (iris, docs/interop.md §6; psi-im/iris HEAD 870c5cc): the stanzas its
Jingle file transfer builds, and how it answers.

What it does, as read (file and function in docs/interop.md §6):

* Offer (``jingle-file.cpp`` ``File::toXml``): ``<file>`` with date (Qt ISO), desc (if
  any), the hash (value below 10 MB, else ``<hash-used/>``; the first algorithm the peer
  announces in the order blake2b-512, blake2b-256, sha-1, sha-512, sha-256, sha3-512,
  sha3-256: ``Hash::fastestHash``), media-type, name, size and an empty ``<range/>``;
  ``senders`` always; several files as several contents of one session.
* It needs ``senders`` in what it receives; ``<checksum>``/``<received>`` are matched by
  content name AND creator (``ContentBase::toXml`` writes both, no ``senders``).
* SOCKS5 (``jingle-s5b.cpp``): a direct candidate carries no ``jid`` and no ``type``
  (``Candidate::toXml``); direct DST.ADDR is SHA-1(sid + initiator + responder) both when
  dialling and on its listener; proxies are owner-first with ``dstaddr`` on the transport.
* IBB (``jingle-ibb.cpp``): the Jingle initiator opens, block size 4096.
* Ending: the receiver waits for the checksum after a ``<hash-used/>`` offer, sends
  ``<received/>``, and terminates ``success`` when the last content is done; the sender
  waits for ``<received/>``.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .bytestreams import Candidate, Conn, S5bSide
from .gajim import new_id
from .peer import (
    FT,
    HASHES,
    IBB_T,
    JINGLE,
    S5B,
    Listener,
    PeerError,
    ScriptedPeer,
    hash_b64,
    s5b_connect,
    s5b_dstaddr,
)

IDENTITY = ("client", "pc", "Psi")
CAPS_NODE = "https://psi-im.org"
#: ``Hash::populateFeatures``, in its order.
HASH_ORDER = ("blake2b-512", "blake2b-256", "sha-1", "sha-512", "sha-256", "sha3-512",
              "sha3-256")
FEATURES = [
    "http://jabber.org/protocol/bytestreams", "http://jabber.org/protocol/ibb",
    "http://jabber.org/protocol/disco#info", "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:file-transfer:5", "urn:xmpp:jingle:transports:s5b:1",
    "urn:xmpp:jingle:transports:ibb:1",
    # XEP-0371 ICE with DTLS and SCTP: not the data channel jinglefs speaks
    "urn:xmpp:jingle:transports:ice:0", "urn:xmpp:jingle:apps:dtls:0",
    "urn:xmpp:jingle:transports:dtls-sctp:1", "urn:xmpp:hashes:2",
    *(f"urn:xmpp:hash-function-text-names:{a}" for a in HASH_ORDER),
]
SMALL_FILE = 10_000_000
DIRECT_PRIORITY = (126 << 16) + 65535
PROXY_PRIORITY = 10 << 16
IBB_BLOCK = 4096
#: ``QDateTime::toString(Qt::ISODate)`` of a UTC mtime
PSI_DATE = "2024-05-01T10:00:00Z"


def fastest_hash(features: Sequence[str]) -> str | None:
    """``Hash::fastestHash``: the first of HASH_ORDER the peer announces."""
    have = set(features)
    return next((a for a in HASH_ORDER
                 if f"urn:xmpp:hash-function-text-names:{a}" in have), None)


def file_xml(name: str, data: bytes, algo: str | None, *, media_type: str,
             desc: str = "", date: str = PSI_DATE) -> str:
    """``File::toXml``: date, desc, hash (value below 10 MB, else hash-used), media-type,
    name, size, range."""
    if algo is None:
        hash_el = ""
    elif len(data) < SMALL_FILE:
        hash_el = f"<hash xmlns='{HASHES}' algo='{algo}'>{hash_b64(algo, data)}</hash>"
    else:
        hash_el = f"<hash-used xmlns='{HASHES}' algo='{algo}'/>"
    desc_el = f"<desc>{desc}</desc>" if desc else ""
    return (f"<file xmlns='{FT}'><date>{date}</date>{desc_el}{hash_el}"
            f"<media-type>{media_type}</media-type><name>{name}</name>"
            f"<size>{len(data)}</size><range/></file>")


def candidate_xml(c: Candidate) -> str:
    """``Candidate::toXml``: ``jid`` only for a proxy, ``type`` only when not direct."""
    if c.type == "proxy":
        return (f"<candidate cid='{c.cid}' jid='{c.jid}' host='{c.host}' port='{c.port}' "
                f"priority='{c.priority}' type='proxy'/>")
    return (f"<candidate cid='{c.cid}' host='{c.host}' port='{c.port}' "
            f"priority='{c.priority}'/>")


def s5b_transport(sid: str, candidates: Sequence[Candidate], *, owner: str = "",
                  peer: str = "", initial: bool = True) -> str:
    """``Transport::takeOutgoingUpdate``: sid, block-size on the first one, the
    candidates, and an owner-first ``dstaddr`` when a proxy is among them."""
    attrs = f"sid='{sid}'"
    if initial:
        attrs += " block-size='8192'"
    if any(c.type == "proxy" for c in candidates):
        attrs += f" dstaddr='{s5b_dstaddr(sid, owner, peer)}'"
    return (f"<transport xmlns='{S5B}' {attrs}>"
            + "".join(candidate_xml(c) for c in candidates) + "</transport>")


def ibb_transport(sid: str, block_size: int = IBB_BLOCK) -> str:
    return f"<transport xmlns='{IBB_T}' sid='{sid}' block-size='{block_size}'/>"


def content(name: str, inner: str, creator: str = "initiator",
            senders: str = "initiator") -> str:
    return f"<content creator='{creator}' name='{name}' senders='{senders}'>{inner}</content>"


def description(file: str) -> str:
    return f"<description xmlns='{FT}'>{file}</description>"


def jingle(action: str, sid: str, inner: str, *, initiator: str = "",
           responder: str = "") -> str:
    attrs = f"action='{action}' sid='{sid}'"
    if initiator:
        attrs += f" initiator='{initiator}'"
    if responder:
        attrs += f" responder='{responder}'"
    return f"<jingle xmlns='{JINGLE}' {attrs}>{inner}</jingle>"


def session_accept(sid: str, responder: str, initiate: ET.Element,
                   transports: dict[str, str]) -> str:
    """session-accept of every content: its description as offered, our transport."""
    parts = []
    for c in initiate.findall(f"{{{JINGLE}}}content"):
        d = c.find(f"{{{FT}}}description")
        assert d is not None
        parts.append(content(str(c.get("name")), ET.tostring(d, encoding="unicode")
                             + transports[str(c.get("name"))], str(c.get("creator")),
                             str(c.get("senders"))))
    return jingle("session-accept", sid, "".join(parts), responder=responder)


def checksum(creator: str, name: str, algo: str, data: bytes) -> str:
    """A ``<checksum>`` as iris writes it: creator and name, the hash in a ``<file>``."""
    return (f"<checksum xmlns='{FT}' creator='{creator}' name='{name}'><file>"
            f"<hash xmlns='{HASHES}' algo='{algo}'>{hash_b64(algo, data)}</hash></file>"
            "</checksum>")


def received(creator: str, name: str) -> str:
    return f"<received xmlns='{FT}' creator='{creator}' name='{name}'/>"


def direct_dstaddr(sid: str, initiator: str, responder: str) -> str:
    """Psi's direct DST.ADDR, dialling and listening alike (``Transport::directAddr``)."""
    return s5b_dstaddr(sid, initiator, responder)


def content_name() -> str:
    return "fileoffer_" + new_id()[:4]


class PsiS5b(S5bSide):
    """Psi's side of XEP-0260 (``jingle-s5b.cpp``): direct DST.ADDR is SHA-1(sid +
    initiator + responder) both when dialling and on its listener; a proxy (its own or
    the contact's) is owner-first; activation waits for the proxy's answer."""

    def __init__(self, peer: ScriptedPeer, other: str, *, sid: str, tsid: str, content: str,
                 we_initiate: bool, ours: list[Candidate], listener: Listener | None) -> None:
        initiator, responder = (peer.jid, other) if we_initiate else (other, peer.jid)
        direct = direct_dstaddr(tsid, initiator, responder)
        super().__init__(peer, other, sid, tsid, content, "initiator", we_initiate, ours,
                         listener, dst_theirs=direct, dst_ours=direct)

    async def dial(self, theirs: list[Candidate]) -> tuple[Candidate, Conn] | None:
        for cand in sorted(theirs, key=lambda c: -c.priority):
            dst = (s5b_dstaddr(self.tsid, self.other, self.peer.jid) if cand.type == "proxy"
                   else self.dst_theirs)
            try:
                conn = await asyncio.wait_for(s5b_connect(cand.host, cand.port, dst),
                                              self.dial_timeout)
            except (OSError, TimeoutError, PeerError, asyncio.IncompleteReadError):
                continue
            return cand, conn
        return None

    async def _activate(self, mine: Candidate) -> Conn:
        self.dst_ours = s5b_dstaddr(self.tsid, self.peer.jid, self.other)  # owner first
        return await super()._activate(mine)
