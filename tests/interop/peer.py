"""The shared base of the scripted test peers: a plain slixmpp client (no jinglefs on that
side) on a real server fixture that sends hand-written XML and answers like a given client.

    async with scripted_peer(prosody, "alice", "conv", features=[...],
                             identity=("client", "phone", "Conversations"),
                             caps_node="http://conversations.im") as peer:
        reply = await peer.send_jingle(bob.jid, "<jingle xmlns='urn:xmpp:jingle:1' .../>")
        accept = await peer.next_jingle("session-accept")

What is here, and nothing more: XEP-0030 disco#info and XEP-0115 caps like the client,
Jingle IQs in and out (every received <jingle/> is kept in ``peer.all_jingle``), raw
XEP-0047 IBB both ways, raw SOCKS5 (RFC 1928 as XEP-0065 §5.3 uses it, written here for the
tests: it does not import jinglefs' own S5B code), proxy65 address and activation, and
file/hash helpers. The clients' stanza shapes live in their own modules (conversations.py,
dino.py, ...).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jinglefs.api import Account

JINGLE = "urn:xmpp:jingle:1"
JINGLE_ERRORS = "urn:xmpp:jingle:errors:1"
FT = "urn:xmpp:jingle:apps:file-transfer:5"
HASHES = "urn:xmpp:hashes:2"
S5B = "urn:xmpp:jingle:transports:s5b:1"
IBB_T = "urn:xmpp:jingle:transports:ibb:1"
IBB = "http://jabber.org/protocol/ibb"
BYTESTREAMS = "http://jabber.org/protocol/bytestreams"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
CAPS = "http://jabber.org/protocol/caps"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
CLIENT = "jabber:client"

#: Only to fail instead of hanging; never asserted as a duration.
WAIT = 30.0


class ServerLike(Protocol):
    """What a server fixture offers (ProsodyServer; an ejabberd fixture has the same)."""

    proxy_jid: str

    def account(self, user: str, resource: str = ...) -> Account: ...


# ---------------------------------------------------------------- XEP-0115 caps


def caps_ver(identities: Sequence[tuple[str, str, str]], features: Sequence[str]) -> str:
    """The XEP-0115 §5.1 verification string (sha-1, no data forms), identities as
    (category, type, name) with no xml:lang."""
    text = "".join(f"{c}/{t}//{n}<" for c, t, n in sorted(identities))
    text += "".join(f"{f}<" for f in sorted(set(features)))
    return base64.b64encode(hashlib.sha1(text.encode()).digest()).decode()


# ---------------------------------------------------------------- errors, XML helpers


class PeerError(AssertionError):
    """The scripted exchange did not go the way the client would have it."""


def iq_error(condition: str, error_type: str = "cancel",
             app: ET.Element | None = None) -> ET.Element:
    """An <error/> child for an IQ reply (RFC 6120 §8.3), with an optional application
    condition such as ``<unknown-session xmlns='urn:xmpp:jingle:errors:1'/>``."""
    err = ET.Element(f"{{{CLIENT}}}error", {"type": error_type})
    ET.SubElement(err, f"{{{STANZAS}}}{condition}")
    if app is not None:
        err.append(app)
    return err


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def reason_of(jingle: ET.Element) -> str | None:
    """The condition of a <reason/> (XEP-0166 §7.4), or None without one."""
    reason = jingle.find(f"{{{JINGLE}}}reason")
    if reason is None:
        return None
    for child in reason:
        if local(child.tag) != "text":
            return local(child.tag)
    return ""


def error_condition(iq: ET.Element) -> str | None:
    """The defined condition of an IQ error reply, None for a result."""
    if iq.get("type") != "error":
        return None
    err = iq.find(f"{{{CLIENT}}}error")
    if err is None:
        return ""
    for child in err:
        if child.tag.startswith(f"{{{STANZAS}}}") and local(child.tag) != "text":
            return local(child.tag)
    return ""


# ---------------------------------------------------------------- the peer


@dataclass
class _IbbIn:
    """One inbound IBB stream as the peer sees it (XEP-0047 §2)."""

    sid: str
    peer_jid: str = ""
    block_size: int = 0
    opened_by_us: bool = False
    opened: bool = False
    next_seq: int = 0
    data: bytearray = field(default_factory=bytearray)
    closed: bool = False
    error: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class ScriptedPeer:
    """A logged-in slixmpp client that speaks Jingle by hand."""

    def __init__(self, xmpp: slixmpp.ClientXMPP, *, features: list[str],
                 identity: tuple[str, str, str], caps_node: str | None) -> None:
        self.xmpp = xmpp
        self.features = list(features)
        self.identity = identity
        self.caps_node = caps_node
        self.ver = caps_ver([identity], features)
        #: every <jingle/> received, in order (the IQs were answered already)
        self.all_jingle: list[ET.Element] = []
        #: the IQ of each element of all_jingle (same index): its from, id, ...
        self.jingle_iqs: list[ET.Element] = []
        #: decides the reply to an incoming Jingle IQ: None = result, else an <error/>
        #: (see iq_error) or a whole <iq/> whose type and children are used
        self.answer_jingle: Callable[[ET.Element], ET.Element | None] | None = None
        #: seq wrap of inbound IBB data (XEP-0047 §2.2: 65535 wraps to 0)
        self.ibb_seq_modulo = 65536
        #: decides the reply to an inbound IBB <open/>: None = accept, else an <error/>
        self.answer_ibb_open: Callable[[ET.Element], ET.Element | None] | None = None
        self._taken: set[int] = set()
        self._arrived = asyncio.Condition()
        self._ibb: dict[str, _IbbIn] = {}
        xmpp.register_handler(Callback("peer jingle", MatchXPath(
            f"{{{CLIENT}}}iq/{{{JINGLE}}}jingle"), self._on_jingle))
        xmpp.register_handler(Callback("peer disco", MatchXPath(
            f"{{{CLIENT}}}iq/{{{DISCO_INFO}}}query"), self._on_disco))
        for what in ("open", "data", "close"):
            xmpp.register_handler(Callback(f"peer ibb {what}", MatchXPath(
                f"{{{CLIENT}}}iq/{{{IBB}}}{what}"), self._on_ibb))

    @property
    def jid(self) -> str:
        return str(self.xmpp.boundjid.full)

    # ------------------------------------------------------------ disco and caps

    def _on_disco(self, iq: Any) -> None:
        if iq["type"] != "get":
            return
        node = iq.xml.find(f"{{{DISCO_INFO}}}query").get("node")
        if node not in (None, f"{self.caps_node}#{self.ver}"):
            self._reply(iq, iq_error("item-not-found"))
            return
        reply = iq.reply(clear=True)
        query = ET.SubElement(reply.xml, f"{{{DISCO_INFO}}}query")
        if node:
            query.set("node", node)
        category, kind, name = self.identity
        ET.SubElement(query, f"{{{DISCO_INFO}}}identity",
                      {"category": category, "type": kind, "name": name})
        for feature in self.features:
            ET.SubElement(query, f"{{{DISCO_INFO}}}feature", {"var": feature})
        reply.send()

    def send_presence(self) -> None:
        """Initial presence, with XEP-0115 §4 caps when the client has a caps node."""
        presence = self.xmpp.make_presence()
        if self.caps_node is not None:
            ET.SubElement(presence.xml, f"{{{CAPS}}}c",
                          {"hash": "sha-1", "node": self.caps_node, "ver": self.ver})
        presence.send()

    # ------------------------------------------------------------ Jingle in

    def _reply(self, iq: Any, answer: ET.Element | None) -> None:
        reply = iq.reply(clear=True)
        if answer is not None:
            if local(answer.tag) == "iq":
                reply["type"] = answer.get("type", "result")
                for child in answer:
                    reply.xml.append(child)
            else:
                reply["type"] = "error"
                reply.xml.append(answer)
        reply.send()

    def _on_jingle(self, iq: Any) -> None:
        if iq["type"] != "set":
            return
        el: ET.Element = iq.xml
        jingle = el.find(f"{{{JINGLE}}}jingle")
        assert jingle is not None
        answer = self.answer_jingle(el) if self.answer_jingle is not None else None
        self._reply(iq, answer)
        self.all_jingle.append(jingle)
        self.jingle_iqs.append(el)
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def next_jingle(self, action: str | None = None, timeout: float = WAIT
                          ) -> ET.Element:
        """The oldest received <jingle/> not returned before (of that action, if given)."""
        async def find() -> ET.Element:
            async with self._arrived:
                while True:
                    for i, el in enumerate(self.all_jingle):
                        if i not in self._taken and (action is None
                                                     or el.get("action") == action):
                            self._taken.add(i)
                            return el
                    await self._arrived.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            got = [el.get("action") for el in self.all_jingle]
            raise PeerError(f"no {action or 'Jingle'} within {timeout}s; got {got}") from None

    def from_of(self, jingle: ET.Element) -> str:
        """The full JID a received <jingle/> came from."""
        for el, iq in zip(self.all_jingle, self.jingle_iqs, strict=True):
            if el is jingle:
                return str(iq.get("from"))
        raise KeyError("not a received <jingle/>")

    # ------------------------------------------------------------ Jingle out

    async def send_iq(self, to: str, payload: ET.Element,
                      kind: Literal["get", "set"] = "set",
                      timeout: float = WAIT) -> ET.Element:
        """Send an IQ with that child; the reply IQ element (result or error)."""
        iq = self.xmpp.make_iq(ifrom=self.xmpp.boundjid, ito=to, itype=kind)
        iq.xml.append(payload)
        try:
            reply = await iq.send(timeout=timeout)  # type: ignore[no-untyped-call]
        except IqError as exc:
            return exc.iq.xml  # type: ignore[no-any-return]
        return reply.xml  # type: ignore[no-any-return]

    async def send_jingle(self, to: str, xml: str, timeout: float = WAIT) -> ET.Element:
        """An IQ set whose child is the given <jingle/> XML; the reply IQ element."""
        return await self.send_iq(to, ET.fromstring(xml), timeout=timeout)

    async def terminate(self, to: str, sid: str, reason: str, extra: str = "") -> ET.Element:
        """session-terminate with that reason (XEP-0166 §6.7); ``extra`` goes inside
        <reason/> after the condition (e.g. ``<text>…</text>``)."""
        return await self.send_jingle(to, (
            f"<jingle xmlns='{JINGLE}' action='session-terminate' sid='{sid}'>"
            f"<reason><{reason}/>{extra}</reason></jingle>"))

    async def session_info(self, to: str, sid: str, inner: str) -> ET.Element:
        """session-info (XEP-0166 §7.2.9) carrying ``inner`` XML."""
        return await self.send_jingle(to, (
            f"<jingle xmlns='{JINGLE}' action='session-info' sid='{sid}'>{inner}</jingle>"))

    # ------------------------------------------------------------ IBB in

    def ibb_state(self, sid: str) -> _IbbIn:
        return self._ibb.setdefault(sid, _IbbIn(sid))

    def _on_ibb(self, iq: Any) -> None:
        if iq["type"] != "set":
            return
        el: ET.Element = iq.xml
        child = next(c for c in el if c.tag.startswith(f"{{{IBB}}}"))
        what, sid = local(child.tag), child.get("sid", "")
        state = self._ibb.get(sid)
        if what == "open":
            refusal = self.answer_ibb_open(child) if self.answer_ibb_open else None
            if refusal is not None:
                self._reply(iq, refusal)
                return
            state = self.ibb_state(sid)
            state.peer_jid, state.opened = str(el.get("from")), True
            state.block_size = int(child.get("block-size", "0"))
            self._reply(iq, None)
        elif state is None or not state.opened:  # XEP-0047 §2.2: an unknown stream
            self._reply(iq, iq_error("item-not-found"))
            return
        elif what == "data":
            seq = int(child.get("seq", "-1"))
            if seq != state.next_seq:  # XEP-0047 §2.2: out of sequence closes the stream
                state.error = f"seq {seq}, expected {state.next_seq}"
                self._reply(iq, iq_error("unexpected-request"))
            else:
                block = base64.b64decode(child.text or "")
                if state.block_size and len(block) > state.block_size:
                    state.error = f"block of {len(block)} > block-size {state.block_size}"
                    self._reply(iq, iq_error("bad-request", "modify"))
                else:
                    state.data += block
                    state.next_seq = (seq + 1) % self.ibb_seq_modulo
                    self._reply(iq, None)
        else:  # close, XEP-0047 §2.3
            state.closed = True
            self._reply(iq, None)
        state.changed.set()


# ---------------------------------------------------------------- login


async def _login(account: Account, resource: str) -> slixmpp.ClientXMPP:
    xmpp = slixmpp.ClientXMPP(f"{account.jid.split('/')[0]}/{resource}", account.password)
    if account.ca_file:
        xmpp.ca_certs = Path(account.ca_file)
    xmpp.enable_direct_tls = False  # the fixtures' c2s port speaks STARTTLS
    xmpp.enable_plaintext = account.allow_plaintext
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_start(_: Any) -> None:
        if not started.done():
            started.set_result(None)

    def on_failed(_: Any) -> None:
        if not started.done():
            started.set_exception(PeerError(f"{account.jid}: authentication failed"))

    xmpp.add_event_handler("session_start", on_start)
    xmpp.add_event_handler("failed_auth", on_failed)
    xmpp.connect(account.server, account.port)
    await asyncio.wait_for(started, WAIT)
    return xmpp


@asynccontextmanager
async def scripted_peer(server: ServerLike, user: str, resource: str, *,
                        features: list[str], identity: tuple[str, str, str],
                        caps_node: str | None, presence: bool = True
                        ) -> AsyncIterator[ScriptedPeer]:
    """A logged-in scripted peer advertising that client's disco#info (XEP-0030 §3.1) and
    caps (XEP-0115 §4); disconnected at exit."""
    xmpp = await _login(server.account(user, resource), resource)
    peer = ScriptedPeer(xmpp, features=features, identity=identity, caps_node=caps_node)
    try:
        if presence:
            peer.send_presence()
        yield peer
    finally:
        with suppress(Exception):
            await asyncio.wait_for(xmpp.disconnect(), 10)


# ---------------------------------------------------------------- IBB (XEP-0047)


async def ibb_open(peer: ScriptedPeer, to: str, sid: str, block_size: int) -> None:
    """Open an IBB stream (XEP-0047 §2.1); data may then flow either way (§3)."""
    open_el = ET.Element(f"{{{IBB}}}open", {"block-size": str(block_size), "sid": sid,
                                            "stanza": "iq"})
    # Known before the <open/> leaves: the other side may send data as soon as it answers.
    state = peer.ibb_state(sid)
    state.opened_by_us, state.peer_jid, state.block_size = True, to, block_size
    state.opened = True
    reply = await peer.send_iq(to, open_el)
    if reply.get("type") != "result":
        raise PeerError(f"IBB open {sid} refused: {error_condition(reply)}")


async def ibb_close(peer: ScriptedPeer, to: str, sid: str) -> ET.Element:
    """<close/> (XEP-0047 §2.3); the reply IQ."""
    return await peer.send_iq(to, ET.Element(f"{{{IBB}}}close", {"sid": sid}))


async def ibb_send(peer: ScriptedPeer, to: str, sid: str, data: bytes, *, block_size: int,
                   seq_modulo: int = 65536, close: bool = True, window: int = 1,
                   open: bool = True) -> None:
    """Send ``data`` in IQ <data/> blocks (XEP-0047 §2.2), at most ``window`` unanswered;
    opens the stream first unless the other side did, closes it after the last block."""
    if open:
        await ibb_open(peer, to, sid, block_size)
    gate = asyncio.Semaphore(window)
    pending: list[asyncio.Future[Any]] = []
    for n, start in enumerate(range(0, len(data), block_size)):
        await gate.acquire()
        el = ET.Element(f"{{{IBB}}}data", {"seq": str(n % seq_modulo), "sid": sid})
        el.text = base64.b64encode(data[start:start + block_size]).decode()
        iq = peer.xmpp.make_iq_set(ito=to)
        iq.xml.append(el)
        fut: asyncio.Future[Any] = asyncio.ensure_future(
            iq.send(timeout=WAIT))  # type: ignore[no-untyped-call]
        fut.add_done_callback(lambda _f: gate.release())
        pending.append(fut)
        if pending[0].done():
            pending.pop(0).result()
    for fut in pending:
        try:
            await fut
        except IqError as exc:
            raise PeerError(f"IBB data refused: {error_condition(exc.iq.xml)}") from None
    if close:
        await ibb_close(peer, to, sid)


async def ibb_receive(peer: ScriptedPeer, sid: str, *, size: int | None = None,
                      expect_close: bool = True, timeout: float = WAIT) -> bytes:
    """The bytes of an inbound IBB stream (XEP-0047 §2.2): until the other side closes it,
    or until ``size`` bytes arrived when ``expect_close`` is False."""
    state = peer.ibb_state(sid)

    async def until_done() -> bytes:
        while True:
            if state.error:
                raise PeerError(f"IBB {sid}: {state.error}")
            if state.closed or (not expect_close and size is not None
                                and len(state.data) >= size):
                return bytes(state.data)
            state.changed.clear()
            await state.changed.wait()
    try:
        return await asyncio.wait_for(until_done(), timeout)
    except TimeoutError:
        raise PeerError(f"IBB {sid}: {len(state.data)} bytes, closed={state.closed} "
                        f"after {timeout}s") from None


async def ibb_opened(peer: ScriptedPeer, sid: str, timeout: float = WAIT) -> _IbbIn:
    """Wait until the other side opened IBB stream ``sid`` (XEP-0047 §2.1)."""
    state = peer.ibb_state(sid)

    async def until() -> _IbbIn:
        while not state.opened:
            state.changed.clear()
            await state.changed.wait()
        return state
    return await asyncio.wait_for(until(), timeout)


# ---------------------------------------------------------------- SOCKS5 (XEP-0065)


def s5b_dstaddr(sid: str, requester: str, target: str) -> str:
    """DST.ADDR: hex SHA-1 of SID + requester JID + target JID (XEP-0065 §5.3.2; for
    Jingle, XEP-0260 §2.2 uses initiator and responder in the candidates' direction)."""
    return hashlib.sha1(f"{sid}{requester}{target}".encode()).hexdigest()


async def _socks5_server_handshake(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter,
                                   check: Callable[[str], bool] | None = None) -> str:
    """The server side of RFC 1928 with no authentication and CONNECT to a domain name,
    as XEP-0065 §5.3.2 uses it; the requested DST.ADDR.  ``check`` refuses a DST.ADDR
    the client's listener would not take (reply 4, host unreachable)."""
    ver, nmethods = await reader.readexactly(2)
    methods = await reader.readexactly(nmethods)
    if ver != 5 or 0 not in methods:
        writer.write(b"\x05\xff")
        raise PeerError("SOCKS5: no acceptable method")
    writer.write(b"\x05\x00")
    ver, cmd, _rsv, atyp = await reader.readexactly(4)
    if (ver, cmd, atyp) != (5, 1, 3):
        raise PeerError(f"SOCKS5: request ver={ver} cmd={cmd} atyp={atyp}")
    addr = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
    await reader.readexactly(2)  # DST.PORT: 0 (XEP-0065 §10.2)
    if check is not None and not check(addr):
        writer.write(b"\x05\x04\x00\x03" + bytes([len(addr)]) + addr.encode() + b"\x00\x00")
        await writer.drain()
        raise PeerError(f"SOCKS5: DST.ADDR {addr} refused")
    writer.write(b"\x05\x00\x00\x03" + bytes([len(addr)]) + addr.encode() + b"\x00\x00")
    await writer.drain()
    return addr


@dataclass
class Listener:
    """A SOCKS5 streamhost of the peer's own: ``accepted`` resolves with the first
    connection that completed the handshake; later ones go to ``later``."""

    port: int
    server: asyncio.Server
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter, str]]
    later: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, str]]

    def close(self) -> None:
        self.server.close()


async def s5b_listen(host: str = "127.0.0.1",
                     check: Callable[[str], bool] | None = None) -> Listener:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter, str]] = \
        loop.create_future()
    later: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            addr = await _socks5_server_handshake(reader, writer, check)
        except (PeerError, OSError, asyncio.IncompleteReadError):
            writer.close()
            return
        if accepted.done():
            later.append((reader, writer, addr))
        else:
            accepted.set_result((reader, writer, addr))

    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    return Listener(port, server, accepted, later)


async def s5b_connect(host: str, port: int, dstaddr: str, timeout: float = WAIT
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect as a SOCKS5 client (XEP-0065 §5.3.2) and request ``dstaddr``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.write(b"\x05\x01\x00")
    if await reader.readexactly(2) != b"\x05\x00":
        writer.close()
        raise PeerError("SOCKS5: method refused")
    writer.write(b"\x05\x01\x00\x03" + bytes([len(dstaddr)]) + dstaddr.encode()
                 + struct.pack("!H", 0))
    head = await reader.readexactly(4)
    if head[:2] != b"\x05\x00":
        writer.close()
        raise PeerError(f"SOCKS5: connect refused ({head[1]})")
    if head[3] == 3:
        await reader.readexactly((await reader.readexactly(1))[0] + 2)
    elif head[3] == 1:
        await reader.readexactly(6)
    else:
        await reader.readexactly(18)
    return reader, writer


async def proxy65_address(peer: ScriptedPeer, proxy_jid: str) -> tuple[str, int]:
    """The proxy's streamhost (XEP-0065 §4)."""
    reply = await peer.send_iq(proxy_jid, ET.Element(f"{{{BYTESTREAMS}}}query"), kind="get")
    host = reply.find(f"{{{BYTESTREAMS}}}query/{{{BYTESTREAMS}}}streamhost")
    if host is None:
        raise PeerError(f"no streamhost from {proxy_jid}: {ET.tostring(reply)!r}")
    return str(host.get("host")), int(host.get("port", "1080"))


async def proxy65_activate(peer: ScriptedPeer, proxy_jid: str, sid: str,
                           target_jid: str) -> ET.Element:
    """Ask the proxy to join the two connections (XEP-0065 §6.3.5); the reply IQ."""
    query = ET.Element(f"{{{BYTESTREAMS}}}query", {"sid": sid})
    ET.SubElement(query, f"{{{BYTESTREAMS}}}activate").text = target_jid
    return await peer.send_iq(proxy_jid, query)


async def read_exactly(reader: asyncio.StreamReader, size: int, chunk: int = 1 << 16,
                       on_chunk: Callable[[bytes], Awaitable[None] | None] | None = None
                       ) -> bytes:
    """``size`` bytes from a stream (fails on an early EOF)."""
    out = bytearray()
    while len(out) < size:
        got = await reader.read(min(chunk, size - len(out)))
        if not got:
            raise PeerError(f"EOF after {len(out)} of {size} bytes")
        out += got
        if on_chunk is not None:
            maybe = on_chunk(got)
            if maybe is not None:
                await maybe
    return bytes(out)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while chunk := await reader.read(1 << 16):
        out += chunk
    return bytes(out)


# ---------------------------------------------------------------- files and hashes


def random_data(size: int) -> bytes:
    return os.urandom(size)


def random_file(path: Path, size: int) -> bytes:
    """Write ``size`` random bytes to ``path``; the bytes."""
    data = random_data(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash_b64(algo: str, data: bytes) -> str:
    """A XEP-0300 hash value: base64 of the digest (sha-1, sha-256, blake2b-256, ...)."""
    return base64.b64encode(_digest(algo, data)).decode()


def hash_hex_b64(algo: str, data: bytes) -> str:
    """Libervia 0.8's form: base64 of the HEX digest (docs/interop.md §7.3)."""
    return base64.b64encode(_digest(algo, data).hex().encode()).decode()


def _digest(algo: str, data: bytes) -> bytes:
    if algo.startswith("blake2b-"):
        return hashlib.blake2b(data, digest_size=int(algo.split("-")[1]) // 8).digest()
    # sha-256 -> sha256, sha3-512 -> sha3_512 (hashlib's names)
    return hashlib.new(algo.replace("sha-", "sha").replace("-", "_"), data).digest()
