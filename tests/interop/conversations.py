"""A Conversations 2.x-shaped peer (docs/interop.md §3; snikket-im/snikket-android, which
merges upstream Conversations): its disco features and caps, its offer and answer stanzas,
and how it drives SOCKS5, IBB and the ending, as that source does.

What it does, in short (each point cites the doc section that names the source function):
* offer (§3.1): no initiator/responder attribute, one content named by a UUID,
  creator/senders 'initiator', <file> with <name>, <size> and camelCase <mediaType>;
* one transport (§3.4): SOCKS5 when we advertise it, else IBB; SOCKS5 candidates without
  dstaddr or mode, direct at 8257536 + index, its proxy at 655360 (initiator) / 655375
  (responder); DST.ADDR owner-first both ways; on failure the *initiator* replaces the
  transport with IBB, the responder only waits;
* IBB (§3.4): block size min(8192, offer), the Jingle initiator opens, three data IQs in
  flight, seq never wraps, never a <close/>;
* ending (§3.3, §3.5): the sender sends a <checksum> (sha-1 + sha-256, no creator) right
  after its last byte and keeps the socket open until our terminate; the receiver sends
  <received/> and terminate 'success' right after `size` bytes, without waiting for a
  checksum; a user abort is 'cancel' (initiator) / 'decline' (responder).

The peer advertises the Tor variant of its features (no webrtc-datachannel, §3.8), so
jinglefs picks SOCKS5 or IBB for it.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from .bytestreams import Candidate, S5bSide, candidates_of
from .peer import (
    CAPS,
    DISCO_INFO,
    FT,
    HASHES,
    IBB,
    IBB_T,
    JINGLE,
    S5B,
    Listener,
    PeerError,
    ScriptedPeer,
    ServerLike,
    hash_b64,
    ibb_opened,
    ibb_receive,
    ibb_send,
    local,
    proxy65_address,
    read_exactly,
    reason_of,
    s5b_listen,
    scripted_peer,
)

#: DiscoManager.STATIC_FEATURES with Tor on (docs/interop.md §3.8): the Jingle part.
FEATURES = [DISCO_INFO, CAPS, "urn:xmpp:ping", "urn:xmpp:receipts", "urn:xmpp:chat-markers:0",
            JINGLE, FT, S5B, IBB_T, IBB, "urn:xmpp:jingle:jet:0",
            "urn:xmpp:jingle:jet-omemo:0"]
IDENTITY = ("client", "phone", "Conversations")
CAPS_NODE = "http://conversations.im"
#: InbandBytestreamsTransport: default and largest block size.
IBB_BLOCK = 8192
DIRECT_PRIORITY = 8257536  # + index
PROXY_PRIORITY_INITIATOR = 655360
PROXY_PRIORITY_RESPONDER = 655375


def conversations_peer(server: ServerLike, user: str, resource: str
                       ) -> AbstractAsyncContextManager[ScriptedPeer]:
    return scripted_peer(server, user, resource, features=FEATURES, identity=IDENTITY,
                         caps_node=CAPS_NODE)


def new_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------- stanza builders


def file_xml(name: str, size: int, media_type: str | None) -> str:
    """FileTransferDescription.of: name, size and mediaType, nothing else (§3.1)."""
    media = f"<mediaType>{media_type}</mediaType>" if media_type else ""
    return f"<file><name>{name}</name><size>{size}</size>{media}</file>"


def s5b_transport_xml(tsid: str, candidates: list[Candidate]) -> str:
    """No dstaddr, no mode (§3.4)."""
    return (f"<transport xmlns='{S5B}' sid='{tsid}'>"
            + "".join(c.xml() for c in candidates) + "</transport>")


def ibb_transport_xml(tsid: str, block_size: int = IBB_BLOCK) -> str:
    return f"<transport xmlns='{IBB_T}' block-size='{block_size}' sid='{tsid}'/>"


def content_xml(content: str, description: str, transport: str) -> str:
    return (f"<content creator='initiator' name='{content}' senders='initiator'>"
            f"<description xmlns='{FT}'>{description}</description>{transport}</content>")


def jingle_xml(action: str, sid: str, inner: str) -> str:
    return f"<jingle xmlns='{JINGLE}' action='{action}' sid='{sid}'>{inner}</jingle>"


def checksum_xml(content: str, data: bytes) -> str:
    """sendSessionInfoChecksum: sha-1 and sha-256, base64, no creator (§3.3)."""
    return (f"<checksum xmlns='{FT}' name='{content}'><file>"
            f"<hash xmlns='{HASHES}' algo='sha-1'>{hash_b64('sha-1', data)}</hash>"
            f"<hash xmlns='{HASHES}' algo='sha-256'>{hash_b64('sha-256', data)}</hash>"
            f"</file></checksum>")


def received_xml(content: str) -> str:
    return f"<received xmlns='{FT}' name='{content}'/>"


# ---------------------------------------------------------------- what it did


@dataclass
class Outcome:
    """How one scripted session went, for asserts."""

    sid: str = ""
    content: str = ""
    transport: str = ""  # the transport that carried the bytes: s5b or ibb
    data: bytes = b""  # bytes received (receiving side)
    terminate_reason: str | None = None  # the reason of the terminate we got, if any
    sent_terminate: str | None = None
    replies: list[ET.Element] = field(default_factory=list)
    #: the actions of every <jingle/> the peer received in the session
    seen: list[str] = field(default_factory=list)


async def _candidates(peer: ScriptedPeer, proxy_jid: str | None, *, direct: bool,
                      proxy_priority: int, dead_direct: bool = False
                      ) -> tuple[list[Candidate], Listener]:
    """Its ConnectionProvider: a listener on a random port, one direct candidate per local
    address (here loopback), and the server's proxy (§3.4)."""
    listener = await s5b_listen()
    out: list[Candidate] = []
    if direct:
        port = listener.port
        if dead_direct:  # an address the other side cannot reach (behind NAT)
            listener.close()
        out.append(Candidate(new_id()[:8], "127.0.0.1", port, peer.jid, DIRECT_PRIORITY))
    if proxy_jid is not None:
        host, port = await proxy65_address(peer, proxy_jid)
        out.append(Candidate(new_id()[:8], host, port, proxy_jid, proxy_priority, "proxy"))
    return out, listener


# ---------------------------------------------------------------- Conversations sends


async def send_file(peer: ScriptedPeer, to: str, data: bytes, name: str, *,
                    transport: str = "s5b", proxy_jid: str | None = None,
                    direct: bool = True, dead_direct: bool = False, dial: bool = True,
                    media_type: str | None = "application/octet-stream",
                    size: int | None = None,
                    security: Callable[[str], str] | None = None,
                    checksum_over: bytes | None = None) -> Outcome:
    """Conversations as initiator: offer, transfer, checksum right after the last byte,
    then wait for the receiver's terminate with the transport still open (§3.5).
    In an OMEMO chat (§9): ``data`` is the ciphertext and tag that travel, ``size`` the
    file's plaintext <size>, ``security(content name)`` the <security/> XML; its checksum
    is still over ``data``, the bytes it wrote (§3.3); ``checksum_over`` replaces those
    bytes in the checksum (a lying sender)."""
    out = Outcome(sid=new_id(), content=new_id())
    tsid = new_id()
    listener: Listener | None = None
    ours: list[Candidate] = []
    if transport == "s5b":
        ours, listener = await _candidates(peer, proxy_jid, direct=direct,
                                           proxy_priority=PROXY_PRIORITY_INITIATOR,
                                           dead_direct=dead_direct)
        offered = s5b_transport_xml(tsid, ours)
    else:
        offered = ibb_transport_xml(tsid)
    if security is not None:
        offered += security(out.content)
    reply = await peer.send_jingle(to, jingle_xml("session-initiate", out.sid, content_xml(
        out.content, file_xml(name, len(data) if size is None else size, media_type),
        offered)))
    out.replies.append(reply)
    if reply.get("type") != "result":
        raise PeerError(f"session-initiate refused: {ET.tostring(reply)!r}")
    accept = await peer.next_jingle("session-accept")
    conn = None
    try:
        if transport == "s5b":
            side = S5bSide(peer, to, out.sid, tsid, out.content, "initiator", True, ours,
                           listener)
            conn = await side.negotiate(candidates_of(accept), dial=dial)
            if conn is None:
                # onTransportSetupFailed: the initiator replaces with IBB (§3.4)
                tsid = new_id()
                reply = await peer.send_jingle(to, jingle_xml(
                    "transport-replace", out.sid,
                    f"<content creator='initiator' name='{out.content}'>"
                    f"{ibb_transport_xml(tsid)}</content>"))
                out.replies.append(reply)
                accept = await peer.next_jingle("transport-accept")
                transport = "ibb"
        out.transport = transport
        if conn is not None:
            conn[1].write(data)
            await conn[1].drain()
        else:
            offered_size = accept.find(f".//{{{IBB_T}}}transport")
            block = min(IBB_BLOCK, int(offered_size.get("block-size", IBB_BLOCK))
                        if offered_size is not None else IBB_BLOCK)
            # the Jingle initiator opens; 3 in flight; seq never wraps; no <close/>
            await ibb_send(peer, to, tsid, data, block_size=block, seq_modulo=1 << 62,
                           window=3, close=False)
        hashed = data if checksum_over is None else checksum_over
        await peer.session_info(to, out.sid, checksum_xml(out.content, hashed))
        terminate = await peer.next_jingle("session-terminate")
        out.terminate_reason = reason_of(terminate)
        out.seen = [str(el.get("action")) for el in peer.all_jingle
                    if el.get("sid") == out.sid]
    finally:
        if conn is not None:
            conn[1].close()
        if listener is not None:
            listener.close()
    return out


# ---------------------------------------------------------------- Conversations receives


def offered_file(initiate: ET.Element) -> tuple[str, str, int]:
    """(content name, creator, size) of the single content Conversations requires."""
    contents = initiate.findall(f"{{{JINGLE}}}content")
    if len(contents) != 1:
        raise PeerError("Only one file at a time is supported")
    size = contents[0].find(f"{{{FT}}}description/{{{FT}}}file/{{{FT}}}size")
    if size is None or not (size.text or "").isdigit():
        raise PeerError("offer without a parseable <size>")
    return str(contents[0].get("name")), contents[0].get("creator", "initiator"), \
        int(size.text or "0")


async def receive_file(peer: ScriptedPeer, initiate: ET.Element, *,
                       proxy_jid: str | None = None, direct: bool = True,
                       dead_direct: bool = False, dial: bool = True,
                       sink: Callable[[bytes], None] | None = None) -> Outcome:
    """Conversations as responder: accept, take exactly `size` bytes, then <received/>
    and terminate 'success' at once (§3.5). With a ``sink`` the SOCKS5 bytes go there as
    they come (benchmarks) instead of into ``Outcome.data``."""
    other = peer.from_of(initiate)
    content, creator, size = offered_file(initiate)
    out = Outcome(sid=str(initiate.get("sid")), content=content)
    transport = next(c for c in initiate.find(f"{{{JINGLE}}}content") or []
                     if local(c.tag) == "transport")
    tsid = str(transport.get("sid"))
    description = initiate.find(f"{{{JINGLE}}}content/{{{FT}}}description")
    children = list(description) if description is not None else []
    desc_xml = "".join(ET.tostring(c, encoding="unicode") for c in children)
    listener: Listener | None = None
    conn = None
    try:
        if transport.tag == f"{{{S5B}}}transport":
            out.transport = "s5b"
            ours, listener = await _candidates(peer, proxy_jid, direct=direct,
                                               proxy_priority=PROXY_PRIORITY_RESPONDER,
                                               dead_direct=dead_direct)
            answer = s5b_transport_xml(tsid, ours)
        else:
            out.transport = "ibb"
            block = min(IBB_BLOCK, int(transport.get("block-size", IBB_BLOCK)))
            answer = ibb_transport_xml(tsid, block)
        reply = await peer.send_jingle(other, jingle_xml("session-accept", out.sid,
            f"<content creator='{creator}' name='{content}' senders='initiator'>"
            f"<description xmlns='{FT}'>{desc_xml}</description>{answer}</content>"))
        out.replies.append(reply)
        if out.transport == "s5b":
            side = S5bSide(peer, other, out.sid, tsid, content, creator, False, ours,
                           listener)
            conn = await side.negotiate(candidates_of(initiate), dial=dial)
            if conn is None:
                # the responder only waits for the initiator's transport-replace (§3.4)
                replace = await peer.next_jingle("transport-replace")
                ibb = replace.find(f".//{{{IBB_T}}}transport")
                if ibb is None:
                    raise PeerError("transport-replace to something other than IBB")
                tsid = str(ibb.get("sid"))
                block = min(IBB_BLOCK, int(ibb.get("block-size", IBB_BLOCK)))
                out.replies.append(await peer.send_jingle(other, jingle_xml(
                    "transport-accept", out.sid,
                    f"<content creator='{creator}' name='{content}'>"
                    f"{ibb_transport_xml(tsid, block)}</content>")))
                out.transport = "ibb"
        if conn is not None and sink is not None:
            left = size
            while left:
                chunk = await conn[0].read(min(1 << 18, left))
                if not chunk:
                    raise PeerError(f"EOF with {left} of {size} bytes missing")
                sink(chunk)
                left -= len(chunk)
        elif conn is not None:
            out.data = await read_exactly(conn[0], size)
        else:
            await ibb_opened(peer, tsid)
            out.data = await ibb_receive(peer, tsid, size=size, expect_close=False)
        await peer.session_info(other, out.sid, received_xml(content))
        out.sent_terminate = "success"
        out.replies.append(await peer.terminate(other, out.sid, "success"))
    finally:
        if conn is not None:
            conn[1].close()
        if listener is not None:
            listener.close()
    return out


async def wait_terminate(peer: ScriptedPeer, timeout: float = 30) -> str | None:
    return reason_of(await peer.next_jingle("session-terminate", timeout=timeout))

