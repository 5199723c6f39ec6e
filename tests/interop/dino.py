"""A Dino 0.4-shaped peer (docs/interop.md §4; dino/dino, xmpp-vala): its features and
caps, its offer and answer stanzas, and how it drives SOCKS5, IBB and the ending.

In short (each point from the doc section that names the source function):
* offer (§4.1): ``initiator`` on session-initiate and on every later action, one content
  named 'a-file-offer', creator/senders 'initiator', <file> with <name> and <size> only;
* SOCKS5 (§4.4): candidates at (126 << 16) + 32768 - i (direct) and (10 << 16) + 32768 - i
  (proxy); the transport always carries ``dstaddr``, ``mode='tcp'`` only from the side that
  created it; DST.ADDR owner-first on its listener, the peer's ``dstaddr`` for the peer's
  candidates; activates its own proxy and sends <activated/>;
* fallback (§4.4): when both sides sent candidate-error it sends transport-replace to IBB
  *whatever its role*; it answers every transport-replace it gets with transport-reject;
  the side that created the IBB transport element opens it; 4096-byte blocks, one data IQ
  in flight, strict seq modulo 65536, <close/> after the last block;
* ending (§4.5): the sender closes the stream right after its last byte and waits for our
  terminate; the receiver terminates 'success' after `size` bytes, no <received/>, no
  checksum either way (§4.3);
* strangers (§4.7): an offer from a JID without an open conversation is acked and then
  silently dropped.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from .bytestreams import Candidate, S5bSide, candidates_of, s5b_transport
from .peer import (
    CAPS,
    DISCO_INFO,
    FT,
    IBB,
    IBB_T,
    JINGLE,
    S5B,
    Listener,
    PeerError,
    ScriptedPeer,
    ServerLike,
    ibb_open,
    ibb_opened,
    ibb_receive,
    ibb_send,
    local,
    proxy65_address,
    read_exactly,
    reason_of,
    s5b_dstaddr,
    s5b_listen,
    scripted_peer,
)

FEATURES = [DISCO_INFO, CAPS, "urn:xmpp:ping", JINGLE, FT, S5B, IBB_T, IBB,
            "urn:xmpp:jingle:apps:rtp:1", "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:apps:rtp:video", "urn:xmpp:jingle:transports:ice-udp:1",
            "urn:xmpp:jingle:apps:dtls:0", "urn:xmpp:jingle-message:0"]
IDENTITY = ("client", "pc", "Dino")
CAPS_NODE = "https://dino.im"
CONTENT = "a-file-offer"
IBB_BLOCK = 4096
DIRECT_PRIORITY = (126 << 16) + 32768  # - index
PROXY_PRIORITY = (10 << 16) + 32768  # - index


def dino_peer(server: ServerLike, user: str, resource: str
              ) -> AbstractAsyncContextManager[ScriptedPeer]:
    return scripted_peer(server, user, resource, features=FEATURES, identity=IDENTITY,
                         caps_node=CAPS_NODE)


def new_id() -> str:
    return str(uuid.uuid4())


def jingle_xml(action: str, sid: str, initiator: str, inner: str) -> str:
    """build_outer_session_node: the initiator attribute on every action (§4.1)."""
    return (f"<jingle xmlns='{JINGLE}' action='{action}' initiator='{initiator}' "
            f"sid='{sid}'>{inner}</jingle>")


def file_xml(name: str, size: int) -> str:
    return f"<file xmlns='{FT}'><name>{name}</name><size>{size}</size></file>"


def s5b_transport_xml(tsid: str, dstaddr: str, candidates: list[Candidate], *,
                      creator: bool) -> str:
    mode = " mode='tcp'" if creator else ""
    return (f"<transport xmlns='{S5B}' dstaddr='{dstaddr}'{mode} sid='{tsid}'>"
            + "".join(c.xml() for c in candidates) + "</transport>")


def ibb_transport_xml(tsid: str, block_size: int = IBB_BLOCK) -> str:
    return f"<transport xmlns='{IBB_T}' block-size='{block_size}' sid='{tsid}'/>"


@dataclass
class Outcome:
    sid: str = ""
    transport: str = ""
    data: bytes = b""
    terminate_reason: str | None = None
    replies: list[ET.Element] = field(default_factory=list)
    #: actions of every <jingle/> of the session the peer received
    seen: list[str] = field(default_factory=list)
    #: reasons of the transport-rejects it sent
    rejected: int = 0


async def _candidates(peer: ScriptedPeer, proxy_jid: str | None, *, direct: bool,
                      dead_direct: bool) -> tuple[list[Candidate], Listener]:
    listener = await s5b_listen()
    out: list[Candidate] = []
    if proxy_jid is not None:  # get_proxies
        host, port = await proxy65_address(peer, proxy_jid)
        out.append(Candidate(new_id()[:8], host, port, proxy_jid, PROXY_PRIORITY, "proxy"))
    if direct:  # start_local_listeners
        port = listener.port
        if dead_direct:
            listener.close()
        out.append(Candidate(new_id()[:8], "127.0.0.1", port, peer.jid, DIRECT_PRIORITY))
    return sorted(out, key=lambda c: -c.priority), listener


def reject_replaces(peer: ScriptedPeer, out: Outcome, initiator: str) -> None:
    """Content.handle_transport_replace: ack, then transport-reject (§4.4)."""
    def answer(iq: ET.Element) -> ET.Element | None:
        jingle = iq.find(f"{{{JINGLE}}}jingle")
        if jingle is not None and jingle.get("action") == "transport-replace":
            content = jingle.find(f"{{{JINGLE}}}content")
            assert content is not None
            inner = ET.tostring(content, encoding="unicode")
            out.rejected += 1
            asyncio.ensure_future(peer.send_jingle(str(iq.get("from")), jingle_xml(
                "transport-reject", out.sid, initiator, inner)))
        return None
    peer.answer_jingle = answer


async def _replace_with_ibb(peer: ScriptedPeer, other: str, out: Outcome, initiator: str,
                            creator: str, content: str = CONTENT) -> str:
    """select_new_transport: transport-replace to IBB, whatever our role; wait for the
    transport-accept (§4.4). The new transport's sid."""
    tsid = new_id()
    out.replies.append(await peer.send_jingle(other, jingle_xml(
        "transport-replace", out.sid, initiator,
        f"<content creator='{creator}' name='{content}'>{ibb_transport_xml(tsid)}"
        f"</content>")))
    answer = await peer.next_jingle()
    while answer.get("action") not in ("transport-accept", "transport-reject",
                                       "session-terminate"):
        answer = await peer.next_jingle()
    if answer.get("action") != "transport-accept":
        raise PeerError(f"transport-replace answered by {answer.get('action')}")
    return tsid


async def send_file(peer: ScriptedPeer, to: str, data: bytes, name: str, *,
                    proxy_jid: str | None = None, direct: bool = True,
                    dead_direct: bool = False, dial: bool = True,
                    size: int | None = None, security: str = "") -> Outcome:
    """Dino as initiator: offer over SOCKS5, fall back to IBB by its own transport-replace,
    close right after the last byte, wait for the receiver's terminate (§4.5).
    With JET (dino_jet.py): ``data`` is what travels, ``size`` the file's <size> and
    ``security`` the <security/> XML after the transport (§9)."""
    out = Outcome(sid=new_id())
    me = peer.jid
    reject_replaces(peer, out, me)
    tsid = new_id()
    ours, listener = await _candidates(peer, proxy_jid, direct=direct,
                                       dead_direct=dead_direct)
    dst_ours = s5b_dstaddr(tsid, me, to)
    reply = await peer.send_jingle(to, jingle_xml("session-initiate", out.sid, me, (
        f"<content creator='initiator' name='{CONTENT}' senders='initiator'>"
        f"<description xmlns='{FT}'>{file_xml(name, len(data) if size is None else size)}"
        f"</description>{s5b_transport_xml(tsid, dst_ours, ours, creator=True)}{security}"
        f"</content>")))
    out.replies.append(reply)
    if reply.get("type") != "result":
        raise PeerError(f"session-initiate refused: {ET.tostring(reply)!r}")
    accept = await peer.next_jingle("session-accept")
    theirs_el = s5b_transport(accept)
    side = S5bSide(peer, to, out.sid, tsid, CONTENT, "initiator", True, ours, listener,
                   jingle_attrs=f" initiator='{me}'", dst_ours=dst_ours,
                   dst_theirs=(theirs_el.get("dstaddr", "") if theirs_el is not None
                               else ""))
    conn = None
    try:
        conn = await side.negotiate(candidates_of(accept), dial=dial)
        if conn is not None:
            out.transport = "s5b"
            conn[1].write(data)
            await conn[1].drain()
            conn[1].close()  # the stream is closed right after the last byte
        else:
            out.transport = "ibb"
            ibb_sid = await _replace_with_ibb(peer, to, out, me, "initiator")
            # we created the IBB transport element: we open (§4.4)
            await ibb_send(peer, to, ibb_sid, data, block_size=IBB_BLOCK, window=1)
        out.terminate_reason = reason_of(await peer.next_jingle("session-terminate"))
        out.seen = [str(el.get("action")) for el in peer.all_jingle
                    if el.get("sid") == out.sid]
    finally:
        if conn is not None:
            conn[1].close()
        listener.close()
    return out


async def receive_file(peer: ScriptedPeer, initiate: ET.Element, *,
                       proxy_jid: str | None = None, direct: bool = True,
                       dead_direct: bool = False, dial: bool = True,
                       trailer: int = 0) -> Outcome:
    """Dino as responder: accept, read exactly `size` bytes, terminate 'success' (§4.5);
    after candidate-errors on both sides it sends the transport-replace itself.
    ``trailer``: bytes that follow the file (JET's 16-byte tag, dino_jet.py)."""
    other = peer.from_of(initiate)
    initiator = initiate.get("initiator") or other
    out = Outcome(sid=str(initiate.get("sid")))
    reject_replaces(peer, out, initiator)
    content = initiate.find(f"{{{JINGLE}}}content")
    assert content is not None
    name, creator = str(content.get("name")), content.get("creator", "initiator")
    files = content.findall(f"{{{FT}}}description/{{{FT}}}file")
    size_el = files[0].find(f"{{{FT}}}size") if len(files) == 1 else None
    if size_el is None or not (size_el.text or "").isdigit():
        raise PeerError("Parameters.parse: exactly one <file> with a size")
    size = int(size_el.text or "0")
    transport = next(c for c in content if local(c.tag) == "transport")
    tsid = str(transport.get("sid"))
    listener: Listener | None = None
    conn = None
    file_name = str(files[0].findtext(f"{{{FT}}}name"))
    desc = f"<description xmlns='{FT}'>{file_xml(file_name, size)}</description>"
    try:
        if transport.tag == f"{{{S5B}}}transport":
            out.transport = "s5b"
            ours, listener = await _candidates(peer, proxy_jid, direct=direct,
                                               dead_direct=dead_direct)
            dst_ours = s5b_dstaddr(tsid, peer.jid, other)
            answer = s5b_transport_xml(tsid, dst_ours, ours, creator=False)
        else:
            out.transport = "ibb"
            answer = ibb_transport_xml(tsid, int(transport.get("block-size", IBB_BLOCK)))
        out.replies.append(await peer.send_jingle(other, jingle_xml(
            "session-accept", out.sid, initiator,
            f"<content creator='{creator}' name='{name}' senders='initiator'>{desc}"
            f"{answer}</content>")))
        if out.transport == "s5b":
            assert listener is not None
            side = S5bSide(peer, other, out.sid, tsid, name, creator, False, ours, listener,
                           jingle_attrs=f" initiator='{initiator}'", dst_ours=dst_ours,
                           dst_theirs=transport.get("dstaddr", ""))
            conn = await side.negotiate(candidates_of(initiate), dial=dial)
            if conn is None:
                out.transport = "ibb"
                tsid = await _replace_with_ibb(peer, other, out, initiator, creator, name)
                # the side that created the IBB transport opens it, here the responder
                await ibb_open(peer, other, tsid, IBB_BLOCK)
        if conn is not None:
            out.data = await read_exactly(conn[0], size + trailer)
        else:
            if out.transport == "ibb" and transport.tag == f"{{{IBB_T}}}transport":
                await ibb_opened(peer, tsid)
            out.data = await ibb_receive(peer, tsid, size=size + trailer,
                                         expect_close=False)
        out.replies.append(await peer.send_jingle(other, jingle_xml(
            "session-terminate", out.sid, initiator, "<reason><success/></reason>")))
        out.seen = [str(el.get("action")) for el in peer.all_jingle
                    if el.get("sid") == out.sid]
    finally:
        if conn is not None:
            conn[1].close()
        if listener is not None:
            listener.close()
    return out
