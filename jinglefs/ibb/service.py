"""In-Band Bytestreams over slixmpp: the XMPP side of :mod:`jinglefs.transports.ibb`.

The Jingle session owns each bytestream (XEP-0261 §2): after negotiating ``sid`` and
``block-size`` it calls :meth:`IbbService.expect` (the peer will send ``<open/>``) or
:meth:`IbbService.open` (we send it).  slixmpp's ``xep_0047`` plugin is not used (and
must not be loaded next to this): its streams open themselves, allow one IQ in flight
and check ``seq`` strictly.

Speed (perf-anchors.md, "IBB through Prosody"): outgoing ``<data/>`` IQs are written
as bytes with ``send_raw`` — base64 needs no XML escaping, only the JID/sid/id
attributes are escaped, once — instead of going through slixmpp's per-character
``tostring``.  Their answers are matched by id in one handler.  ``<open/>`` and
``<close/>`` go through slixmpp's send queue, so they stay ordered with the Jingle IQs
that the session sends the same way.

Incoming ``<open/>``, ``<data/>`` and ``<close/>`` (IQ ``set``), and ``<data/>`` in
``<message>`` (XEP-0047 §4), are read straight from the parsed XML and routed by
(sender, sid); the routing rules and error answers are :class:`IbbRouter`'s.
"""

from __future__ import annotations

import binascii
import itertools
import logging
import secrets
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

import slixmpp
from slixmpp import JID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

from ..errors import LocalProtocolError, RemoteProtocolError, StreamClosed
from ..jid import bare_jid
from ..jingle import ns
from .protocol import MAX_BLOCK_SIZE, validate_sid
from .stream import AckCallback, IbbError, IbbRouter, IbbStream, StreamState

__all__ = ["FEATURES", "IbbService", "IbbStream", "IbbError"]

log = logging.getLogger(__name__)

#: Disco features (XEP-0030) to advertise for receiving files over IBB.
FEATURES = (ns.IBB, ns.IBB_TRANSPORT)

_OPEN = f"{{{ns.IBB}}}open"
_DATA = f"{{{ns.IBB}}}data"
_CLOSE = f"{{{ns.IBB}}}close"
_IBB_TAGS = frozenset((_OPEN, _DATA, _CLOSE))
#: RFC 6120 §8.3.3 conditions we may answer with (they become element names).
_CONDITIONS = frozenset((
    "bad-request", "item-not-found", "not-acceptable", "resource-constraint",
    "unexpected-request", "service-unavailable", "feature-not-implemented",
))
_ERROR_TYPES = frozenset(("auth", "cancel", "continue", "modify", "wait"))


def _attr(value: str) -> str:
    """An XML attribute value, quoted with ``'`` and escaped."""
    return "'" + escape(value, {"'": "&apos;", '"': "&quot;"}) + "'"


def _normalize_jid(jid: str) -> str:
    try:
        return str(JID(jid).full)
    except Exception:  # noqa: BLE001 - slixmpp raises InvalidJID (and others) on junk
        return jid


class _IqReply:
    """Answers one incoming IQ with raw XML (RFC 6120 §8.2.3 result / §8.3 error)."""

    __slots__ = ("_service", "_head")

    def __init__(self, service: IbbService, to: str, iq_id: str) -> None:
        self._service = service
        self._head = f" to={_attr(to)} id={_attr(iq_id)}" if to else f" id={_attr(iq_id)}"

    def ack(self) -> None:
        self._service._write(f"<iq type='result'{self._head}/>")

    def reject(self, condition: str, error_type: str = "cancel", text: str = "") -> None:
        if condition not in _CONDITIONS:
            condition = "bad-request"
        if error_type not in _ERROR_TYPES:
            error_type = "cancel"
        body = f"<{condition} xmlns='{ns.STANZAS}'/>"
        if text:
            body += f"<text xmlns='{ns.STANZAS}'>{escape(text)}</text>"
        self._service._write(
            f"<iq type='error'{self._head}><error type='{error_type}'>{body}</error></iq>")


class _XmppPort:
    """:class:`~jinglefs.transports.ibb.IbbPort` for one (peer, sid) over slixmpp."""

    def __init__(self, service: IbbService, peer: str, sid: str) -> None:
        self._service = service
        self.peer = peer
        self.sid = sid
        to, sid_attr = _attr(peer), _attr(sid)
        self._to = to
        self._sid_attr = sid_attr
        # <iq type='set' to=… id='…'><data xmlns=… sid=… seq='…'>base64</data></iq>
        self._data_head = f"<iq type='set' to={to} id='".encode()
        self._data_mid = f"'><data xmlns='{ns.IBB}' sid={sid_attr} seq='".encode()

    def send_open(self, block_size: int, on_done: AckCallback) -> None:
        iq_id = self._service._expect_answer(self, on_done)
        # XEP-0047 §2.1; stanza='iq' is the default and the only mode we send.
        self._service._queue(
            f"<iq type='set' to={self._to} id='{iq_id}'><open xmlns='{ns.IBB}' "
            f"block-size='{block_size}' sid={self._sid_attr} stanza='iq'/></iq>")

    def send_data(self, seq: int, block: memoryview, on_done: AckCallback) -> None:
        service = self._service
        iq_id = service._expect_answer(self, on_done)
        service._write(b"".join((
            self._data_head, iq_id.encode(), self._data_mid, str(seq).encode(), b"'>",
            binascii.b2a_base64(block, newline=False), b"</data></iq>")))

    def send_close(self, on_done: AckCallback) -> None:
        iq_id = self._service._expect_answer(self, on_done)
        self._service._queue(f"<iq type='set' to={self._to} id='{iq_id}'>"
                             f"<close xmlns='{ns.IBB}' sid={self._sid_attr}/></iq>")

    def release(self) -> None:
        self._service._forget(self)


class _RequestMatcher(MatcherBase):
    """IQ-set with an IBB child, or a non-error <message> carrying <data/>."""

    def __init__(self, default_ns: str) -> None:
        super().__init__(None)
        self._iq = f"{{{default_ns}}}iq"
        self._message = f"{{{default_ns}}}message"

    def match(self, xml: Any) -> bool:
        el = xml.xml
        if el.tag == self._iq:
            if el.get("type") != "set":
                return False
            return any(child.tag in _IBB_TAGS for child in el)
        if el.tag == self._message and el.get("type") != "error":
            return any(child.tag == _DATA for child in el)
        return False


class _AnswerMatcher(MatcherBase):
    """The result or error answering one of our IQs (by id)."""

    def __init__(self, default_ns: str, pending: dict[str, tuple[_XmppPort, AckCallback]]
                 ) -> None:
        super().__init__(None)
        self._iq = f"{{{default_ns}}}iq"
        self._pending = pending

    def match(self, xml: Any) -> bool:
        el = xml.xml
        return (el.tag == self._iq and el.get("id") in self._pending
                and el.get("type") in ("result", "error"))


class IbbService:
    """XEP-0047 bytestreams for the Jingle session, on one slixmpp connection.

    ``window``: data IQs kept outstanding per stream (XEP-0047 §2.2 lets the sender
    not wait, docs/protocol.md §8.3: Conversations uses 3).  ``max_block_size``: the largest
    block size we agree to (≤ 65535).  ``iq_timeout``: how long any of our IQs may go
    unanswered.  ``recv_buffer``: received bytes held for a slow reader before acks stop.
    Call :meth:`expect` / :meth:`open` from the connection's running event loop.
    """

    def __init__(self, xmpp: slixmpp.BaseXMPP, *, window: int = 8,
                 max_block_size: int = MAX_BLOCK_SIZE, iq_timeout: float = 30.0,
                 recv_buffer: int = 256 * 1024) -> None:
        if not 1 <= max_block_size <= MAX_BLOCK_SIZE:
            raise ValueError(f"max_block_size must be within 1..{MAX_BLOCK_SIZE}")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.xmpp = xmpp
        self.window = window
        self.max_block_size = max_block_size
        self.iq_timeout = iq_timeout
        self.recv_buffer = recv_buffer
        self._router = IbbRouter(normalize=_normalize_jid)
        self._pending: dict[str, tuple[_XmppPort, AckCallback]] = {}
        self._id_prefix = f"ibb{secrets.token_hex(6)}-"
        self._ids = itertools.count()
        default_ns = xmpp.default_ns
        self._client_ns = default_ns
        self._handler_names = (f"jinglefs ibb requests {self._id_prefix}",
                               f"jinglefs ibb answers {self._id_prefix}")
        xmpp.register_handler(Callback(self._handler_names[0], _RequestMatcher(default_ns),
                                       self._on_request))
        xmpp.register_handler(Callback(self._handler_names[1],
                                       _AnswerMatcher(default_ns, self._pending),
                                       self._on_answer))
        xmpp.add_event_handler("disconnected", self._on_disconnected)

    # ------------------------------------------------------------------ public API

    def expect(self, peer: str, sid: str, block_size: int) -> IbbStream:
        """Jingle agreed on (sid, block_size) with ``peer`` (full JID), who will send <open/>."""
        return self._new_stream(peer, sid, block_size, StreamState.EXPECTING)

    async def open(self, peer: str, sid: str, block_size: int, *,
                   timeout: float | None = None) -> IbbStream:
        """Send ``<open stanza='iq'/>`` to ``peer`` and wait for the result (XEP-0047 §2.1)."""
        stream = self._new_stream(peer, sid, block_size, StreamState.OPENING)
        await stream.open(self.iq_timeout if timeout is None else timeout)
        return stream

    def close_all(self) -> None:
        """Abort every stream (a ``<close/>`` goes out for the open ones, unanswered)."""
        for stream in self._router.streams():
            if stream.state is StreamState.OPEN:
                try:
                    stream.port.send_close(lambda err: None)
                except StreamClosed:
                    pass
            stream.abort(StreamClosed("In-Band Bytestreams were shut down"))

    def detach(self) -> None:
        """Close everything and unregister from the slixmpp connection."""
        self.close_all()
        for name in self._handler_names:
            self.xmpp.remove_handler(name)
        self.xmpp.del_event_handler("disconnected", self._on_disconnected)

    @property
    def streams(self) -> list[IbbStream]:
        return self._router.streams()

    # ------------------------------------------------------------------ internals

    def _new_stream(self, peer: str, sid: str, block_size: int,
                    state: StreamState) -> IbbStream:
        try:
            validate_sid(sid)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None
        if not 1 <= block_size <= self.max_block_size:
            raise LocalProtocolError(f"block size {block_size} outside 1..{self.max_block_size}")
        peer = _normalize_jid(peer)
        if "/" not in peer:  # XEP-0047 streams run between two full JIDs
            raise LocalProtocolError(f"{peer!r} is not a full JID")
        port = _XmppPort(self, peer, sid)
        stream = IbbStream(port, peer=peer, sid=sid, block_size=block_size, window=self.window,
                           recv_buffer=self.recv_buffer, ack_timeout=self.iq_timeout,
                           state=state, on_release=self._router.remove)
        try:
            self._router.add(stream)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from None
        return stream

    def _expect_answer(self, port: _XmppPort, on_done: AckCallback) -> str:
        iq_id = f"{self._id_prefix}{next(self._ids)}"
        self._pending[iq_id] = (port, on_done)
        return iq_id

    def _forget(self, port: _XmppPort) -> None:
        for iq_id in [k for k, (p, _) in self._pending.items() if p is port]:
            del self._pending[iq_id]

    def _write(self, data: str | bytes) -> None:
        """Write right now (bypasses slixmpp's queue; used for data and answers)."""
        try:
            self.xmpp.send_raw(data)
        except Exception as exc:  # slixmpp's NotConnectedError, or a closed transport
            raise StreamClosed(f"the XMPP connection is gone ({exc or type(exc).__name__})"
                               ) from exc

    def _queue(self, data: str) -> None:
        """Send through slixmpp's queue, in order with the Jingle IQs."""
        if self.xmpp.transport is None:
            raise StreamClosed("the XMPP connection is gone")
        self.xmpp.send(data)

    def _on_request(self, stanza: Any) -> None:
        el: ET.Element = stanza.xml
        sender = el.get("from") or ""
        child = next((c for c in el if c.tag in _IBB_TAGS), None)
        if child is None:
            return
        try:
            if el.tag.endswith("}message"):
                # XEP-0047 §4: message mode has no per-chunk answer.
                if child.tag == _DATA:
                    self._router.dispatch_data(sender, child.get("sid"), child.get("seq"),
                                               child.text, None)
                return
            reply = _IqReply(self, sender, el.get("id") or "")
            if child.tag == _DATA:
                self._router.dispatch_data(sender, child.get("sid"), child.get("seq"),
                                           child.text, reply)
            elif child.tag == _OPEN:
                self._router.dispatch_open(sender, child.get("sid"), child.get("block-size"),
                                           child.get("stanza"), reply)
            else:
                self._router.dispatch_close(sender, child.get("sid"), reply)
        except StreamClosed:
            log.debug("IBB: could not answer %s, connection gone", child.tag)

    def _on_answer(self, stanza: Any) -> None:
        el: ET.Element = stanza.xml
        iq_id = el.get("id") or ""
        entry = self._pending.get(iq_id)
        if entry is None:
            return
        port, on_done = entry
        sender = el.get("from") or ""
        if sender and not self._from_peer(sender, port.peer):
            log.debug("IBB: ignoring answer to %s from %s (sent to %s)", iq_id, sender,
                      port.peer)
            return
        del self._pending[iq_id]
        if el.get("type") == "result":
            on_done(None)
        else:
            on_done(self._stanza_error(el))

    @staticmethod
    def _from_peer(sender: str, peer: str) -> bool:
        """Answers come from the peer, or from its server on its behalf (RFC 6120 §10.5.3)."""
        if sender == peer:
            return True
        sender = _normalize_jid(sender)
        return sender in (peer, bare_jid(peer), bare_jid(peer).rpartition("@")[2])

    def _stanza_error(self, el: ET.Element) -> IbbError:
        error = el.find(f"{{{self._client_ns}}}error")
        condition, error_type, text = "undefined-condition", "cancel", ""
        if error is not None:
            error_type = error.get("type", "cancel")
            for child in error:
                ns_uri, _, local = child.tag[1:].partition("}")
                if ns_uri != ns.STANZAS:
                    continue
                if local == "text":
                    text = child.text or ""
                else:
                    condition = local
        detail = f"the contact answered {condition}" + (f" ({text})" if text else "")
        return IbbError(detail, condition=condition, error_type=error_type)

    def _on_disconnected(self, _reason: Any) -> None:
        self._router.abort_all(StreamClosed("the XMPP connection was lost"))
        self._pending.clear()
