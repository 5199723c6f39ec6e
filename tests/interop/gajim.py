"""A Gajim 1.9.5 test peer (docs/interop.md §5; gajim tag 1.9.5 with python-nbxmpp): the
stanzas its Jingle file transfer builds, and how it answers.

What it does, as read (file and function in docs/interop.md §5):

* Offer (``jingle_content.py`` ``_fill_content``): ``<file>`` with name, date, size, a
  ``<hash>`` (files under 10 MB, algorithm chosen from the peer's features by
  ``Jingle.__hash_support``, which tests nbxmpp's ``id-blake2b512`` spellings) and an empty
  ``<desc/>``; the date is an aware ISO string with ``Z`` appended.  ``initiator`` on every
  action, never ``responder``.  Files of 10 MB or more: the hash comes as a
  ``<checksum>`` without ``name`` or ``creator`` right after session-accept.
* SOCKS5 (``jingle_transport.py``): direct candidates on one port, type preference 126 <<
  16 for all; its listener takes any DST.ADDR; as a client it hashes initiator-first; it
  sends ``<activated/>`` together with the activation IQ, before the proxy has answered.
  Only the initiator falls back, to IBB, by transport-replace.
* IBB (``modules/ibb.py``): the file's sender opens with block size 4096; the receiver
  counts ``seq`` without wrapping and finishes only on ``<close/>``.
* Ending: the receiver terminates ``success``; a ``<received/>`` (or any session-info it
  cannot use) gets a result and then a ``feature-not-implemented`` error.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .bytestreams import Candidate, Conn, S5bSide
from .peer import (
    CLIENT,
    FT,
    HASHES,
    IBB_T,
    JINGLE,
    JINGLE_ERRORS,
    S5B,
    STANZAS,
    Listener,
    ScriptedPeer,
    hash_b64,
    local,
    proxy65_activate,
    s5b_connect,
    s5b_dstaddr,
)

IDENTITY = ("client", "pc", "Gajim")
CAPS_NODE = "https://gajim.org"
#: Its COMMON_FEATURES (gajim/common/const.py, 1.9.5), the Jingle FT part and hashes
#: under nbxmpp's spellings (nbxmpp/namespaces.py).
FEATURES = [
    "http://jabber.org/protocol/bytestreams", "http://jabber.org/protocol/disco#info",
    "urn:xmpp:hashes:2", "urn:xmpp:hash-function-text-names:md5",
    "urn:xmpp:hash-function-text-names:sha-1", "urn:xmpp:hash-function-text-names:sha-256",
    "urn:xmpp:hash-function-text-names:sha-512",
    "urn:xmpp:hash-function-text-names:sha3-256",
    "urn:xmpp:hash-function-text-names:sha3-512",
    "urn:xmpp:hash-function-text-names:id-blake2b256",
    "urn:xmpp:hash-function-text-names:id-blake2b512",
    "urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:file-transfer:5",
    "urn:xmpp:jingle:transports:s5b:1", "urn:xmpp:jingle:transports:ibb:1",
]
#: nbxmpp Hashes2.supported: the checksum algorithms it takes.
CHECKSUM_ALGOS = frozenset({"sha-256", "sha-512", "sha3-256", "sha3-512", "blake2b-256",
                            "blake2b-512"})
#: Below this size the hash goes in the offer; from it on, in a checksum after the accept.
SMALL_FILE = 10_000_000
#: Every direct candidate: type preference 126 << 16, no local preference.
DIRECT_PRIORITY = 126 << 16
PROXY_PRIORITY = 10 << 16
IBB_BLOCK = 4096
#: A date as Gajim writes it: isoformat() of an aware datetime with "Z" appended.
GAJIM_DATE = "2024-05-01T10:00:00.123456+00:00Z"


def hash_algo_for(features: Sequence[str]) -> str | None:
    """``Jingle.__hash_support``: the algorithm Gajim uses with a peer of these features.
    It tests the blake2b features under nbxmpp's ``id-`` spellings but then writes
    ``blake2b-512``/``blake2b-256``."""
    have = set(features)
    if HASHES not in have:
        return None
    names = "urn:xmpp:hash-function-text-names:"
    for feature, algo in (("id-blake2b512", "blake2b-512"), ("id-blake2b256", "blake2b-256"),
                          ("sha3-512", "sha3-512"), ("sha3-256", "sha3-256"),
                          ("sha-512", "sha-512"), ("sha-256", "sha-256")):
        if names + feature in have:
            return algo
    return None


async def disco_features(peer: ScriptedPeer, jid: str) -> list[str]:
    """The contact's disco#info features (Gajim reads them from caps; same answer)."""
    query = ET.Element("{http://jabber.org/protocol/disco#info}query")
    reply = await peer.send_iq(jid, query, kind="get")
    return [str(f.get("var")) for f in reply.iter(
        "{http://jabber.org/protocol/disco#info}feature")]


# ---------------------------------------------------------------- stanza builders


def file_xml(name: str, size: int, *, algo: str | None = None, digest_b64: str = "",
             date: str = GAJIM_DATE, desc: str = "") -> str:
    """``_fill_content``: name, date, size, the hash (if any), then ``<desc>`` always."""
    hash_el = (f"<hash xmlns='{HASHES}' algo='{algo}'>{digest_b64}</hash>"
               if algo and digest_b64 else "")
    return (f"<file><name>{name}</name><date>{date}</date><size>{size}</size>{hash_el}"
            f"<desc>{desc}</desc></file>" if desc else
            f"<file><name>{name}</name><date>{date}</date><size>{size}</size>{hash_el}"
            "<desc/></file>")


def s5b_transport(sid: str, candidates: Sequence[Candidate] = ()) -> str:
    """``JingleTransportSocks5.make_transport``: sid, every attribute on each candidate."""
    return (f"<transport xmlns='{S5B}' sid='{sid}'>"
            + "".join(c.xml() for c in candidates) + "</transport>")


def ibb_transport(sid: str) -> str:
    """``JingleTransportIBB.make_transport``: block-size first, always 4096."""
    return f"<transport xmlns='{IBB_T}' block-size='{IBB_BLOCK}' sid='{sid}'/>"


def jingle(action: str, sid: str, initiator: str, inner: str) -> str:
    """``__make_jingle``: action, sid, initiator on every action (no responder)."""
    return (f"<jingle xmlns='{JINGLE}' action='{action}' sid='{sid}' "
            f"initiator='{initiator}'>{inner}</jingle>")


def content(name: str, description: str, transport: str, creator: str = "initiator",
            senders: str = "initiator") -> str:
    return (f"<content name='{name}' creator='{creator}' senders='{senders}'>"
            f"{description}{transport}</content>")


def description(file: str) -> str:
    return f"<description xmlns='{FT}'>{file}</description>"


def session_initiate(sid: str, initiator: str, content_name: str, file: str,
                     transport: str) -> str:
    return jingle("session-initiate", sid, initiator,
                  content(content_name, description(file), transport))


def session_accept(sid: str, initiator: str, received: ET.Element, transport: str) -> str:
    """Gajim's session-accept repeats the offered ``<file>`` (``_fill_content`` of the
    received file props) and adds its own transport."""
    c = received.find(f"{{{JINGLE}}}content")
    assert c is not None
    file_el = c.find(f"{{{FT}}}description/{{{FT}}}file")
    assert file_el is not None
    name = file_el.findtext(f"{{{FT}}}name", "")
    size = file_el.findtext(f"{{{FT}}}size", "0")
    return jingle("session-accept", sid, initiator, content(
        str(c.get("name")), description(
            f"<file><name>{name}</name><size>{size}</size><desc/></file>"), transport,
        creator=str(c.get("creator")), senders=str(c.get("senders", "initiator"))))


def checksum_without_name(algo: str, data: bytes) -> str:
    """``__send_hash``: ``<checksum><file><hash/></file></checksum>``, no name, no creator."""
    return (f"<checksum xmlns='{FT}'><file><hash xmlns='{HASHES}' algo='{algo}'>"
            f"{hash_b64(algo, data)}</hash></file></checksum>")


def transport_info(sid: str, initiator: str, content_name: str, transport_sid: str,
                   signal: str) -> str:
    """A transport-info with one XEP-0260 signal (candidate-used, candidate-error,
    activated); Gajim writes ``creator='initiator'`` on every content."""
    return jingle("transport-info", sid, initiator,
                  f"<content creator='initiator' name='{content_name}'>"
                  f"<transport xmlns='{S5B}' sid='{transport_sid}'>{signal}</transport>"
                  "</content>")


def new_id() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------- behaviour


def unusable_session_info(jingle_el: ET.Element) -> bool:
    """``JingleSession.__on_session_info``: a checksum of a supported algorithm is taken;
    anything else (``<received/>``, a sha-1 checksum) gets a second answer, an error."""
    if jingle_el.get("action") != "session-info":
        return False
    for child in jingle_el:
        if local(child.tag) == "checksum":
            h = child.find(f"{{{FT}}}file/{{{HASHES}}}hash")
            if h is not None and h.get("algo") in CHECKSUM_ALGOS:
                return False
    return True


def install_session_info_errors(peer: ScriptedPeer) -> list[ET.Element]:
    """Answer Jingle IQs like Gajim: a result first, then, for a session-info it cannot
    use, a second answer: an IQ error ``feature-not-implemented`` +
    ``unsupported-info`` with the same id.  The list holds the session-infos answered so."""
    doubled: list[ET.Element] = []

    def answer(iq: ET.Element) -> ET.Element | None:
        j = iq.find(f"{{{JINGLE}}}jingle")
        if j is not None and unusable_session_info(j):
            doubled.append(j)
            asyncio.get_running_loop().call_soon(_send_error_twin, peer, iq)
        return None

    peer.answer_jingle = answer
    return doubled


def _send_error_twin(peer: ScriptedPeer, iq: ET.Element) -> None:
    err = peer.xmpp.make_iq_error(  # type: ignore[no-untyped-call]
        str(iq.get("id")), ito=str(iq.get("from")))
    err.xml.remove(err.xml.find(f"{{{CLIENT}}}error"))  # make_iq_error adds an empty one
    error = ET.SubElement(err.xml, f"{{{CLIENT}}}error", {"type": "modify"})
    ET.SubElement(error, f"{{{STANZAS}}}feature-not-implemented")
    ET.SubElement(error, f"{{{JINGLE_ERRORS}}}unsupported-info")
    err.send()


class GajimS5b(S5bSide):
    """Gajim's side of XEP-0260: as a client it hashes DST.ADDR initiator first whoever
    owns the candidate (``_get_sha1_auth``), and for its own nominated proxy it sends the
    activation IQ and ``<activated/>`` at once (``_on_proxy_auth_ok``)."""

    def __init__(self, peer: ScriptedPeer, other: str, *, sid: str, tsid: str, content: str,
                 we_initiate: bool, ours: list[Candidate], listener: Listener | None) -> None:
        initiator, responder = (peer.jid, other) if we_initiate else (other, peer.jid)
        super().__init__(peer, other, sid, tsid, content, "initiator", we_initiate, ours,
                         listener, jingle_attrs=f" initiator='{initiator}'",
                         dst_theirs=s5b_dstaddr(tsid, initiator, responder))
        #: the proxy's answer to our activation, which Gajim does not wait for
        self.activation: asyncio.Future[ET.Element] | None = None

    async def _activate(self, mine: Candidate) -> Conn:
        conn = await s5b_connect(mine.host, mine.port, self.dst_ours)
        self.activation = asyncio.ensure_future(
            proxy65_activate(self.peer, mine.jid, self.tsid, self.other))
        await self.transport_info(f"<activated cid='{mine.cid}'/>")
        return conn


async def send_and_disconnect(writer: asyncio.StreamWriter, data: bytes) -> None:
    """``Socks5Sender.write_next``: once every byte is handed to the socket, Gajim
    disconnects (the receiver, ``get_file_contents``, does the same on the last byte)."""
    writer.write(data)
    await writer.drain()
    writer.close()
