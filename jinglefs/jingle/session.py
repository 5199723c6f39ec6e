"""One Jingle session (XEP-0166) as a sans-IO state machine.

Theory of operation
-------------------
A :class:`JingleSession` is fed three kinds of input and never does I/O itself
(aioquic's shape):

* the local user's decisions: :meth:`initiate`, :meth:`accept`, :meth:`terminate`,
  :meth:`send_transport_info`, :meth:`replace_transport`, ...;
* what the peer sent: :meth:`receive` (a parsed ``<jingle/>``) and the answers to
  our IQs, :meth:`receive_iq_result` / :meth:`receive_iq_error`;
* time: every method takes ``now`` and :meth:`handle_timer` fires the deadline
  returned by :meth:`get_timer`.

Its outputs are IQ-sets to send (:meth:`iqs_to_send`, each with a fresh id from the
injected ``new_id``) and an ordered queue of :class:`SessionEvent` (:meth:`next_event`).

:meth:`receive` either returns (the caller then acks the IQ with an empty result,
XEP-0166 §6.2: ack first, everything else later) or raises
:class:`~jinglefs.errors.RemoteProtocolError` carrying the IQ error to answer with
(XEP-0166 §6.3 / protocol.md §3.3).  So an IQ the session produces in reaction to an
input is always sent *after* the ack of that input.

States (XEP-0166 §6: PENDING → ACTIVE → ENDED)::

    PENDING --session-accept--> ACTIVE --session-terminate--> ENDED
       \\_____________session-terminate / timeout___________/

Every (state, action) pair is handled on purpose: allowed, ignored with a comment,
or answered with ``out-of-order``; ENDED answers ``unknown-session``.  Transport
negotiation inside a content (candidates, IBB open...) is opaque here: the session
forwards transport payloads to the driver as events and sends the driver's replies.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ..errors import LocalProtocolError, RemoteProtocolError
from .model import (
    Action,
    Checksum,
    Content,
    FileTransferDescription,
    Jingle,
    OutgoingIq,
    Reason,
    ReasonInfo,
    Received,
    Role,
    SessionInfoPayload,
    UnknownDescription,
    UnknownInfo,
)
from .transport import TransportPayload, UnknownTransport


class SessionState(enum.Enum):
    #: session-initiate sent or received; waiting for session-accept.
    PENDING = "pending"
    #: session-accept sent or received.
    ACTIVE = "active"
    #: session-terminate sent or received (or the session failed); nothing more happens.
    ENDED = "ended"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class SessionEvent:
    pass


@dataclass(frozen=True)
class SessionInitiated(SessionEvent):
    """(responder) The peer offered these contents; decide with accept() or terminate()."""

    contents: tuple[Content, ...]


@dataclass(frozen=True)
class SessionAccepted(SessionEvent):
    """(initiator) The peer accepted these contents (with its transport parameters)."""

    contents: tuple[Content, ...]


@dataclass(frozen=True)
class TransportInfoReceived(SessionEvent):
    content: str
    transport: TransportPayload


@dataclass(frozen=True)
class TransportReplaceReceived(SessionEvent):
    """The peer wants another transport; answer with accept_transport() / reject_transport()."""

    content: str
    transport: TransportPayload


@dataclass(frozen=True)
class TransportAccepted(SessionEvent):
    content: str
    transport: TransportPayload


@dataclass(frozen=True)
class TransportRejected(SessionEvent):
    content: str
    detail: str = ""


@dataclass(frozen=True)
class InfoReceived(SessionEvent):
    """XEP-0234 §7 checksum / received."""

    info: Checksum | Received


@dataclass(frozen=True)
class ContentAddReceived(SessionEvent):
    contents: tuple[Content, ...]


@dataclass(frozen=True)
class ContentAccepted(SessionEvent):
    contents: tuple[Content, ...]


@dataclass(frozen=True)
class ContentRejected(SessionEvent):
    names: tuple[str, ...]


@dataclass(frozen=True)
class ContentRemoved(SessionEvent):
    names: tuple[str, ...]
    reason: ReasonInfo | None


@dataclass(frozen=True)
class IqFailed(SessionEvent):
    """An IQ we sent (other than those the session handles itself) got an error or timed out."""

    action: Action
    condition: str


@dataclass(frozen=True)
class SessionEnded(SessionEvent):
    reason: ReasonInfo
    #: True when the peer terminated (or refused); False when we did.
    by_peer: bool
    detail: str = ""


# ------------------------------------------------------------------------------ helpers


def out_of_order(msg: str) -> RemoteProtocolError:
    """XEP-0166 §6.3 (and protocol.md §3.3): unexpected-request + out-of-order."""
    return RemoteProtocolError(msg, condition="unexpected-request",
                               jingle_condition="out-of-order")


def unknown_session(msg: str = "unknown session") -> RemoteProtocolError:
    """XEP-0166 §7.2.16-style: item-not-found + unknown-session."""
    return RemoteProtocolError(msg, condition="item-not-found",
                               jingle_condition="unknown-session")


def tie_break(msg: str) -> RemoteProtocolError:
    """XEP-0166 §7.2.16 / §6.4: conflict + tie-break."""
    return RemoteProtocolError(msg, condition="conflict", jingle_condition="tie-break")


@dataclass
class _PendingIq:
    jingle: Jingle
    deadline: float


class JingleSession:
    """One session with one peer (full JID); see the module docstring."""

    def __init__(self, *, sid: str, role: Role, local_jid: str, peer_jid: str,
                 new_id: Callable[[], str], iq_timeout: float = 30.0,
                 accept_timeout: float = 300.0, transport_timeout: float = 30.0) -> None:
        self.sid = sid
        self.role = role
        self.local_jid = local_jid
        self.peer_jid = peer_jid
        self.state = SessionState.PENDING
        #: contents of the session by name, as last agreed (or offered, while pending)
        self.contents: dict[str, Content] = {}
        self._new_id = new_id
        self._iq_timeout = iq_timeout
        self._accept_timeout = accept_timeout
        self._transport_timeout = transport_timeout
        self._outgoing: list[OutgoingIq] = []
        self._events: deque[SessionEvent] = deque()
        self._pending_iqs: dict[str, _PendingIq] = {}
        self._accept_deadline: float | None = None
        #: content name -> (our proposed transport, deadline) while a transport-replace
        #: of ours is unanswered
        self._replacing: dict[str, tuple[TransportPayload, float]] = {}
        #: content names of a content-add of ours that is unanswered
        self._adding: dict[str, Content] = {}
        #: contents the peer added (content-add) and we have not answered
        self._peer_adding: dict[str, Content] = {}
        self.ended_reason: ReasonInfo | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_initiate(cls, jingle: Jingle, *, local_jid: str, peer_jid: str,
                      new_id: Callable[[], str], now: float, **timeouts: float
                      ) -> JingleSession:
        """Create the responder's session from a peer's session-initiate (XEP-0166 §6.2).

        Raises RemoteProtocolError(bad-request) when the initiate is malformed; the
        caller answers the IQ with that error and keeps no session.
        """
        if jingle.action is not Action.SESSION_INITIATE:
            raise unknown_session(f"{jingle.action.value} for a session that does not exist")
        if not jingle.contents:
            raise RemoteProtocolError("session-initiate without content",
                                      condition="bad-request")
        for c in jingle.contents:
            if c.description is None or c.transport is None:
                raise RemoteProtocolError(
                    f"content {c.name!r} lacks a description or a transport",
                    condition="bad-request")
            if c.creator is not Role.INITIATOR:
                raise RemoteProtocolError("session-initiate content not created by initiator",
                                          condition="bad-request")
        session = cls(sid=jingle.sid, role=Role.RESPONDER, local_jid=local_jid,
                      peer_jid=peer_jid, new_id=new_id, **timeouts)
        session.contents = {c.name: c for c in jingle.contents}
        if all(isinstance(c.description, UnknownDescription) for c in jingle.contents):
            # XEP-0166 §6.3.3: ack, then terminate with unsupported-applications.
            session.terminate(ReasonInfo(Reason.UNSUPPORTED_APPLICATIONS), now)
        elif all(isinstance(c.transport, UnknownTransport) for c in jingle.contents):
            session.terminate(ReasonInfo(Reason.UNSUPPORTED_TRANSPORTS), now)
        else:
            session._events.append(SessionInitiated(jingle.contents))
        return session

    # --------------------------------------------------------------------- outputs

    def iqs_to_send(self) -> list[OutgoingIq]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> SessionEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        deadlines = [p.deadline for p in self._pending_iqs.values()]
        deadlines += [d for _, d in self._replacing.values()]
        if self._accept_deadline is not None:
            deadlines.append(self._accept_deadline)
        return min(deadlines) if deadlines else None

    @property
    def has_pending_iqs(self) -> bool:
        return bool(self._pending_iqs)

    # ---------------------------------------------------------------- local inputs

    def initiate(self, contents: Iterable[Content], now: float) -> None:
        """(initiator) Send session-initiate (XEP-0166 §6.2)."""
        contents = tuple(contents)
        if self.role is not Role.INITIATOR or self.contents or self.state is not \
                SessionState.PENDING:
            raise LocalProtocolError("initiate() only once, by the initiator")
        if not contents:
            raise LocalProtocolError("a session needs at least one content")
        self.contents = {c.name: c for c in contents}
        self._send(Jingle(Action.SESSION_INITIATE, self.sid, initiator=self.local_jid,
                          contents=contents), now)
        self._accept_deadline = now + self._accept_timeout

    def accept(self, contents: Iterable[Content], now: float) -> None:
        """(responder) Send session-accept with the contents we take (XEP-0166 §6.2)."""
        contents = tuple(contents)
        self._require(SessionState.PENDING, "accept")
        if self.role is not Role.RESPONDER:
            raise LocalProtocolError("only the responder accepts a session")
        unknown = [c.name for c in contents if c.name not in self.contents]
        if unknown or not contents:
            raise LocalProtocolError(f"cannot accept contents {unknown or '(none)'}")
        for c in contents:
            self.contents[c.name] = c
        # Contents left out of session-accept are rejected (XEP-0166 §7.2.8).
        for name in [n for n in self.contents if n not in {c.name for c in contents}]:
            del self.contents[name]
        self.state = SessionState.ACTIVE
        self._send(Jingle(Action.SESSION_ACCEPT, self.sid, responder=self.local_jid,
                          contents=contents), now)

    def terminate(self, reason: ReasonInfo, now: float) -> None:
        """Send session-terminate (XEP-0166 §6.7); the session is ENDED at once."""
        if self.state is SessionState.ENDED:
            return
        self._send(Jingle(Action.SESSION_TERMINATE, self.sid, reason=reason), now)
        self._end(reason, by_peer=False)

    def send_transport_info(self, content: str, transport: TransportPayload,
                            now: float) -> None:
        """XEP-0166 §7.2.15 transport-info (candidates, candidate-used, activated...)."""
        self._live("transport-info")
        c = self._content(content)
        self._send(Jingle(Action.TRANSPORT_INFO, self.sid, contents=(
            Content(c.creator, c.name, transport=transport),)), now)

    def replace_transport(self, content: str, transport: TransportPayload,
                          now: float) -> None:
        """XEP-0166 §7.2.17 transport-replace: propose another transport for a content."""
        self._live("transport-replace")
        c = self._content(content)
        self._replacing[content] = (transport, now + self._transport_timeout)
        self._send(Jingle(Action.TRANSPORT_REPLACE, self.sid, contents=(
            Content(c.creator, c.name, senders=c.senders, transport=transport),)), now)

    def accept_transport(self, content: str, transport: TransportPayload, now: float) -> None:
        """XEP-0166 §7.2.14 transport-accept of the peer's transport-replace."""
        self._live("transport-accept")
        c = self._content(content)
        self.contents[content] = replace(c, transport=transport)
        self._send(Jingle(Action.TRANSPORT_ACCEPT, self.sid, contents=(
            Content(c.creator, c.name, senders=c.senders, transport=transport),)), now)

    def reject_transport(self, content: str, transport: TransportPayload, now: float) -> None:
        """XEP-0166 §7.2.16 transport-reject."""
        self._live("transport-reject")
        c = self._content(content)
        self._send(Jingle(Action.TRANSPORT_REJECT, self.sid, contents=(
            Content(c.creator, c.name, transport=transport),)), now)

    def send_info(self, info: SessionInfoPayload | None, now: float) -> None:
        """XEP-0166 §7.2.9 session-info (XEP-0234 §7 checksum / received; None = ping)."""
        self._live("session-info")
        self._send(Jingle(Action.SESSION_INFO, self.sid, info=info), now)

    def add_contents(self, contents: Iterable[Content], now: float) -> None:
        """XEP-0166 §7.2.2 content-add."""
        self._live("content-add")
        contents = tuple(contents)
        for c in contents:
            if c.name in self.contents or c.name in self._adding:
                raise LocalProtocolError(f"content {c.name!r} exists already")
            self._adding[c.name] = c
        self._send(Jingle(Action.CONTENT_ADD, self.sid, contents=contents), now)

    def accept_contents(self, contents: Iterable[Content], now: float) -> None:
        """XEP-0166 §7.2.1 content-accept of the peer's content-add."""
        self._live("content-accept")
        contents = tuple(contents)
        for c in contents:
            if self._peer_adding.pop(c.name, None) is None:
                raise LocalProtocolError(f"the peer did not add {c.name!r}")
            self.contents[c.name] = c
        self._send(Jingle(Action.CONTENT_ACCEPT, self.sid, contents=contents), now)

    def reject_contents(self, names: Iterable[str], now: float,
                        reason: ReasonInfo | None = None) -> None:
        """XEP-0166 §7.2.5 content-reject of the peer's content-add."""
        self._live("content-reject")
        rejected = []
        for name in names:
            c = self._peer_adding.pop(name, None)
            if c is None:
                raise LocalProtocolError(f"the peer did not add {name!r}")
            rejected.append(Content(c.creator, c.name))
        self._send(Jingle(Action.CONTENT_REJECT, self.sid, contents=tuple(rejected),
                          reason=reason), now)

    def remove_contents(self, names: Iterable[str], now: float,
                        reason: ReasonInfo | None = None) -> None:
        """XEP-0166 §7.2.6 content-remove (e.g. cancel one file of several)."""
        self._live("content-remove")
        removed = [self.contents.pop(n) for n in names if n in self.contents]
        if not removed:
            return
        if not self.contents:
            # Removing the last content ends the session (XEP-0166 §7.2.6).
            self.terminate(reason or ReasonInfo(Reason.CANCEL), now)
            return
        self._send(Jingle(Action.CONTENT_REMOVE, self.sid, reason=reason, contents=tuple(
            Content(c.creator, c.name) for c in removed)), now)

    # --------------------------------------------------------------- remote inputs

    def receive(self, j: Jingle, now: float) -> None:
        """Process a ``<jingle/>`` from the peer; raise RemoteProtocolError to refuse it."""
        if j.sid != self.sid:
            raise unknown_session()
        if self.state is SessionState.ENDED:
            # XEP-0166 §6.7: after terminate, the sid is unknown.
            raise unknown_session("session already ended")
        handler = _HANDLERS[j.action]
        handler(self, j, now)

    def receive_iq_result(self, iq_id: str, now: float) -> bool:
        """The peer acked one of our IQs.  Returns False if the id is not ours."""
        return self._pending_iqs.pop(iq_id, None) is not None

    def receive_iq_error(self, iq_id: str, condition: str, now: float,
                         jingle_condition: str | None = None) -> bool:
        """One of our IQs got an error (or timed out: condition remote-server-timeout)."""
        pending = self._pending_iqs.pop(iq_id, None)
        if pending is None:
            return False
        action = pending.jingle.action
        detail = condition + (f"/{jingle_condition}" if jingle_condition else "")
        if action in (Action.SESSION_INITIATE, Action.SESSION_ACCEPT):
            # The peer cannot (or will not) take part; Conversations and Dino answer
            # unknown applications this way (protocol.md §3.3).  Nothing more to send.
            cond = Reason.TIMEOUT if condition == "remote-server-timeout" else \
                Reason.FAILED_APPLICATION
            self._end(ReasonInfo(cond, f"peer answered {action.value} with {detail}"),
                      by_peer=True, detail=detail)
        elif action is Action.SESSION_TERMINATE:
            pass  # nothing left to do: the session is over for us already
        elif action is Action.TRANSPORT_REPLACE:
            for content in pending.jingle.contents:
                if self._replacing.pop(content.name, None) is not None:
                    self._events.append(TransportRejected(content.name, detail))
        elif self.state is not SessionState.ENDED:
            self._events.append(IqFailed(action, detail))
        return True

    def handle_timer(self, now: float) -> None:
        for iq_id, pending in list(self._pending_iqs.items()):
            if pending.deadline <= now:
                self.receive_iq_error(iq_id, "remote-server-timeout", now)
        for content, (_, deadline) in list(self._replacing.items()):
            if deadline <= now and self._replacing.pop(content, None) is not None:
                # Some clients never answer a transport-replace (dino#1554): give up on it.
                self._events.append(TransportRejected(content, "no answer"))
        if self._accept_deadline is not None and self._accept_deadline <= now \
                and self.state is SessionState.PENDING:
            self._accept_deadline = None
            self.terminate(ReasonInfo(Reason.TIMEOUT, "the offer was not answered in time"),
                           now)

    # ------------------------------------------------------------------ internals

    def _send(self, j: Jingle, now: float) -> None:
        iq_id = self._new_id()
        self._pending_iqs[iq_id] = _PendingIq(j, now + self._iq_timeout)
        self._outgoing.append(OutgoingIq(iq_id, j))

    def _end(self, reason: ReasonInfo, *, by_peer: bool, detail: str = "") -> None:
        if self.state is SessionState.ENDED:
            return
        self.state = SessionState.ENDED
        self.ended_reason = reason
        self._accept_deadline = None
        self._replacing.clear()
        self._events.append(SessionEnded(reason, by_peer, detail))

    def _require(self, state: SessionState, what: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot {what} in state {self.state.value}")

    def _live(self, what: str) -> None:
        if self.state is SessionState.ENDED:
            raise LocalProtocolError(f"cannot send {what}: the session has ended")

    def _content(self, name: str) -> Content:
        try:
            return self.contents[name]
        except KeyError:
            raise LocalProtocolError(f"no content named {name!r}") from None

    def _peer_contents(self, j: Jingle) -> list[Content]:
        """The contents a peer action refers to, all of which must exist."""
        if not j.contents:
            raise RemoteProtocolError(f"{j.action.value} without content",
                                      condition="bad-request")
        for c in j.contents:
            if c.name not in self.contents:
                raise RemoteProtocolError(f"{j.action.value} for unknown content {c.name!r}",
                                          condition="item-not-found")
        return list(j.contents)

    # One handler per action; every state is considered in each.

    def _on_session_initiate(self, j: Jingle, now: float) -> None:
        # A second initiate for a live session (the manager creates sessions).
        raise out_of_order("session-initiate for a session that exists")

    def _on_session_accept(self, j: Jingle, now: float) -> None:
        if self.role is not Role.INITIATOR or self.state is not SessionState.PENDING:
            raise out_of_order("unexpected session-accept")
        accepted = []
        for c in j.contents:
            ours = self.contents.get(c.name)
            if ours is None:
                raise RemoteProtocolError(f"session-accept for unknown content {c.name!r}",
                                          condition="bad-request")
            if c.transport is None:
                raise RemoteProtocolError("session-accept content without transport",
                                          condition="bad-request")
            description = c.description if isinstance(
                c.description, FileTransferDescription) else ours.description
            accepted.append(replace(ours, transport=c.transport, description=description))
        if not accepted:
            raise RemoteProtocolError("session-accept without content", condition="bad-request")
        self.contents = {c.name: c for c in accepted}
        self.state = SessionState.ACTIVE
        self._accept_deadline = None
        self._events.append(SessionAccepted(tuple(accepted)))

    def _on_session_terminate(self, j: Jingle, now: float) -> None:
        self._end(j.reason or ReasonInfo(Reason.GENERAL_ERROR), by_peer=True)

    def _on_session_info(self, j: Jingle, now: float) -> None:
        if j.info is None:
            return  # an empty session-info is a ping (XEP-0166 §7.2.9): just ack
        if isinstance(j.info, UnknownInfo):
            raise RemoteProtocolError("session-info payload not understood",
                                      condition="feature-not-implemented",
                                      jingle_condition="unsupported-info", error_type="modify")
        self._events.append(InfoReceived(j.info))

    def _on_transport_info(self, j: Jingle, now: float) -> None:
        for c in self._peer_contents(j):
            if c.transport is None:
                raise RemoteProtocolError("transport-info without transport",
                                          condition="bad-request")
            self._events.append(TransportInfoReceived(c.name, c.transport))

    def _on_transport_replace(self, j: Jingle, now: float) -> None:
        for c in self._peer_contents(j):
            if c.transport is None:
                raise RemoteProtocolError("transport-replace without transport",
                                          condition="bad-request")
            if c.name in self._replacing:
                # XEP-0166 §7.2.17: both replaced at once; the initiator's request wins.
                if self.role is Role.INITIATOR:
                    raise tie_break("simultaneous transport-replace")
                del self._replacing[c.name]
            self._events.append(TransportReplaceReceived(c.name, c.transport))

    def _on_transport_accept(self, j: Jingle, now: float) -> None:
        for c in self._peer_contents(j):
            if c.name not in self._replacing:
                raise out_of_order("transport-accept without transport-replace")
        for c in j.contents:
            proposed, _ = self._replacing.pop(c.name)
            transport = c.transport or proposed
            self.contents[c.name] = replace(self.contents[c.name], transport=transport)
            self._events.append(TransportAccepted(c.name, transport))

    def _on_transport_reject(self, j: Jingle, now: float) -> None:
        for c in self._peer_contents(j):
            if c.name not in self._replacing:
                raise out_of_order("transport-reject without transport-replace")
        for c in j.contents:
            del self._replacing[c.name]
            self._events.append(TransportRejected(c.name, "rejected by peer"))

    def _on_content_add(self, j: Jingle, now: float) -> None:
        if not j.contents:
            raise RemoteProtocolError("content-add without content", condition="bad-request")
        for c in j.contents:
            if c.name in self.contents or c.name in self._peer_adding:
                raise RemoteProtocolError(f"content {c.name!r} exists", condition="conflict")
            if c.description is None or c.transport is None:
                raise RemoteProtocolError("content-add content lacks description/transport",
                                          condition="bad-request")
        for c in j.contents:
            self._peer_adding[c.name] = c
        self._events.append(ContentAddReceived(j.contents))

    def _on_content_accept(self, j: Jingle, now: float) -> None:
        if not j.contents or any(c.name not in self._adding for c in j.contents):
            raise out_of_order("content-accept without content-add")
        accepted = []
        for c in j.contents:
            ours = self._adding.pop(c.name)
            merged = replace(ours, transport=c.transport or ours.transport)
            self.contents[c.name] = merged
            accepted.append(merged)
        self._events.append(ContentAccepted(tuple(accepted)))

    def _on_content_reject(self, j: Jingle, now: float) -> None:
        if not j.contents or any(c.name not in self._adding for c in j.contents):
            raise out_of_order("content-reject without content-add")
        for c in j.contents:
            del self._adding[c.name]
        self._events.append(ContentRejected(tuple(c.name for c in j.contents)))

    def _on_content_remove(self, j: Jingle, now: float) -> None:
        names = tuple(c.name for c in self._peer_contents(j))
        for name in names:
            del self.contents[name]
        self._events.append(ContentRemoved(names, j.reason))
        if not self.contents:
            # XEP-0166 §7.2.6: no content left, so the session ends.
            self.terminate(j.reason or ReasonInfo(Reason.CANCEL), now)

    def _on_ignored(self, j: Jingle, now: float) -> None:
        # content-modify, description-info, security-info: acked, not used by file
        # transfer clients (protocol.md §3.2); nothing changes.
        return


_HANDLERS: dict[Action, Callable[[JingleSession, Jingle, float], None]] = {
    Action.SESSION_INITIATE: JingleSession._on_session_initiate,
    Action.SESSION_ACCEPT: JingleSession._on_session_accept,
    Action.SESSION_TERMINATE: JingleSession._on_session_terminate,
    Action.SESSION_INFO: JingleSession._on_session_info,
    Action.TRANSPORT_INFO: JingleSession._on_transport_info,
    Action.TRANSPORT_REPLACE: JingleSession._on_transport_replace,
    Action.TRANSPORT_ACCEPT: JingleSession._on_transport_accept,
    Action.TRANSPORT_REJECT: JingleSession._on_transport_reject,
    Action.CONTENT_ADD: JingleSession._on_content_add,
    Action.CONTENT_ACCEPT: JingleSession._on_content_accept,
    Action.CONTENT_REJECT: JingleSession._on_content_reject,
    Action.CONTENT_REMOVE: JingleSession._on_content_remove,
    Action.CONTENT_MODIFY: JingleSession._on_ignored,
    Action.DESCRIPTION_INFO: JingleSession._on_ignored,
    Action.SECURITY_INFO: JingleSession._on_ignored,
}
