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
XEP-0166 §6.3.1: ack first, everything else later) or raises
:class:`~jinglefs.errors.RemoteProtocolError` carrying the IQ error to answer with
(XEP-0166 §6.3 / docs/protocol.md §4.3).  So an IQ the session produces in reaction to an
input is always sent *after* the ack of that input.

States (XEP-0166 §5.1: PENDING → ACTIVE → ENDED)::

    PENDING --session-accept--> ACTIVE --session-terminate--> ENDED
       \\_____________session-terminate / timeout___________/

Which (state, action, sender) is allowed, ignored, or answered ``out-of-order`` /
``unknown-session`` / ``tie-break`` is not decided here but in ONE table,
:data:`jinglefs.jingle.rules.RULES`: :meth:`receive` looks every peer action up there
before its handler runs, and every action we send is checked against the same table.
Transport negotiation inside a content (candidates, IBB open...) is opaque here: the
session forwards transport payloads to the driver as events and sends the driver's
replies.

A peer's transport-replace is always answered (XEP-0166 §7.2.15: "it MUST send a
transport-accept ... if not, it MUST send a transport-reject"): with ``tie-break`` when
it crosses ours and we are the initiator (§7.2.16); otherwise it reaches the driver as
:class:`TransportReplaceReceived` only for a content the driver said it can switch
(:meth:`expect_replace`), and is rejected at once for any other content (the initiator's
own contents, a content whose bytes already flow).  :meth:`refuse_replace` rejects one
that is still unanswered when the driver stops listening.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

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
from .rules import Rule, SessionState, may_send, rule
from .transport import TransportPayload, UnknownTransport

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
class TransportReplaceRefused(SessionEvent):
    """(informational) The peer's transport-replace for a content nobody here can switch
    was answered with transport-reject at once."""

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
    """XEP-0234 §8 checksum / received."""

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
    """XEP-0166 §10 (and docs/protocol.md §4.3): unexpected-request + out-of-order."""
    return RemoteProtocolError(msg, condition="unexpected-request",
                               jingle_condition="out-of-order")


def unknown_session(msg: str = "unknown session") -> RemoteProtocolError:
    """XEP-0166 §10: item-not-found + unknown-session."""
    return RemoteProtocolError(msg, condition="item-not-found",
                               jingle_condition="unknown-session")


def tie_break(msg: str) -> RemoteProtocolError:
    """XEP-0166 §7.2.16 (tie breaking) and §10: conflict + tie-break."""
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
        #: content name -> the peer's proposed transport while its transport-replace is
        #: unanswered (the driver answers with accept_transport() / reject_transport())
        self._peer_replacing: dict[str, TransportPayload] = {}
        #: contents whose transport the driver can still switch (expect_replace())
        self._switchable: set[str] = set()
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
            # XEP-0166 §6.3.1: ack, then terminate with unsupported-applications.
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

    @property
    def is_over(self) -> bool:
        """The one answer to "is this session over?": ENDED (terminated by either side,
        refused, timed out or failed); nothing can be sent or received on it any more."""
        return self.state is SessionState.ENDED

    @property
    def wins_initiate_tie(self) -> bool:
        """XEP-0166 §7.2.16, "no existing session": with equal sids, the session-initiate
        of the lower JID (i;octet, byte-wise) overrules the other."""
        return self.local_jid.encode() < self.peer_jid.encode()

    def unanswered_replace(self, content: str) -> TransportPayload | None:
        """The peer's transport-replace for ``content`` that we have not answered yet."""
        return self._peer_replacing.get(content)

    # ---------------------------------------------------------------- local inputs
    # Every action we send is checked against the table in rules.py (rules.may_send):
    # we may send what the peer's table takes from our role in our state.

    def initiate(self, contents: Iterable[Content], now: float) -> None:
        """(initiator) Send session-initiate (XEP-0166 §6.2).  The one action outside the
        table: it creates the session on the peer's side."""
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
        """(responder) Send session-accept with the contents we take (XEP-0166 §6.5)."""
        contents = tuple(contents)
        self._check_send(Action.SESSION_ACCEPT)
        unknown = [c.name for c in contents if c.name not in self.contents]
        if unknown or not contents:
            raise LocalProtocolError(f"cannot accept contents {unknown or '(none)'}")
        for c in contents:
            self.contents[c.name] = c
        # Contents left out of session-accept are rejected (XEP-0166 §7.2.8).
        for name in [n for n in self.contents if n not in {c.name for c in contents}]:
            self._drop_content(name)
        self.state = SessionState.ACTIVE
        self._send(Jingle(Action.SESSION_ACCEPT, self.sid, responder=self.local_jid,
                          contents=contents), now)

    def terminate(self, reason: ReasonInfo, now: float) -> None:
        """Send session-terminate (XEP-0166 §6.7); the session is ENDED at once.  A no-op
        on a session that is over already."""
        if self.is_over:
            return
        self._send(Jingle(Action.SESSION_TERMINATE, self.sid, reason=reason), now)
        self._end(reason, by_peer=False)

    def send_transport_info(self, content: str, transport: TransportPayload,
                            now: float) -> None:
        """XEP-0166 §7.2.13 transport-info (candidates, candidate-used, activated...)."""
        self._check_send(Action.TRANSPORT_INFO)
        c = self._content(content)
        self._send(Jingle(Action.TRANSPORT_INFO, self.sid, contents=(
            Content(c.creator, c.name, transport=transport),)), now)

    def replace_transport(self, content: str, transport: TransportPayload,
                          now: float) -> None:
        """XEP-0166 §7.2.15 transport-replace: propose another transport for a content."""
        self._check_send(Action.TRANSPORT_REPLACE)
        c = self._content(content)
        if content in self._peer_replacing:
            raise LocalProtocolError(f"answer the peer's transport-replace of {content!r} first")
        if content in self._replacing:
            raise LocalProtocolError(f"our transport-replace of {content!r} is unanswered")
        self._replacing[content] = (transport, now + self._transport_timeout)
        self._send(Jingle(Action.TRANSPORT_REPLACE, self.sid, contents=(
            Content(c.creator, c.name, senders=c.senders, transport=transport),)), now)

    def accept_transport(self, content: str, transport: TransportPayload, now: float) -> None:
        """XEP-0166 §7.2.12 transport-accept of the peer's transport-replace."""
        self._check_send(Action.TRANSPORT_ACCEPT)
        c = self._content(content)
        if self._peer_replacing.pop(content, None) is None:
            raise LocalProtocolError(f"no transport-replace of {content!r} to accept")
        self.contents[content] = replace(c, transport=transport)
        self._send(Jingle(Action.TRANSPORT_ACCEPT, self.sid, contents=(
            Content(c.creator, c.name, senders=c.senders, transport=transport),)), now)

    def reject_transport(self, content: str, transport: TransportPayload, now: float) -> None:
        """XEP-0166 §7.2.14 transport-reject of the peer's transport-replace."""
        self._check_send(Action.TRANSPORT_REJECT)
        self._content(content)
        if self._peer_replacing.pop(content, None) is None:
            raise LocalProtocolError(f"no transport-replace of {content!r} to reject")
        self._send_transport_reject(content, transport, now)

    def expect_replace(self, content: str) -> None:
        """The driver can switch ``content`` to another transport now: the peer's
        transport-replace for it comes out as :class:`TransportReplaceReceived`, to be
        answered with :meth:`accept_transport` or :meth:`reject_transport`.  For any other
        content the session rejects it at once (XEP-0166 §7.2.15 wants an answer)."""
        self._content(content)
        if not self.is_over:
            self._switchable.add(content)

    def refuse_replace(self, content: str, now: float) -> None:
        """The driver cannot switch ``content`` any more (its bytes flow, or its flow is
        over): from now on the peer's transport-replace for it is rejected at once, and
        one still unanswered is rejected now."""
        self._switchable.discard(content)
        transport = self._peer_replacing.pop(content, None)
        if transport is not None and not self.is_over:
            self._send_transport_reject(content, transport, now)

    def send_info(self, info: SessionInfoPayload | None, now: float) -> None:
        """XEP-0166 §7.2.9 session-info (XEP-0234 §8 checksum / received; None = ping)."""
        self._check_send(Action.SESSION_INFO)
        self._send(Jingle(Action.SESSION_INFO, self.sid, info=info), now)

    def add_contents(self, contents: Iterable[Content], now: float) -> None:
        """XEP-0166 §7.2.2 content-add."""
        self._check_send(Action.CONTENT_ADD)
        contents = tuple(contents)
        for c in contents:
            if c.name in self.contents or c.name in self._adding:
                raise LocalProtocolError(f"content {c.name!r} exists already")
            self._adding[c.name] = c
        self._send(Jingle(Action.CONTENT_ADD, self.sid, contents=contents), now)

    def accept_contents(self, contents: Iterable[Content], now: float) -> None:
        """XEP-0166 §7.2.1 content-accept of the peer's content-add."""
        self._check_send(Action.CONTENT_ACCEPT)
        contents = tuple(contents)
        for c in contents:
            if self._peer_adding.pop(c.name, None) is None:
                raise LocalProtocolError(f"the peer did not add {c.name!r}")
            self.contents[c.name] = c
        self._send(Jingle(Action.CONTENT_ACCEPT, self.sid, contents=contents), now)

    def reject_contents(self, names: Iterable[str], now: float,
                        reason: ReasonInfo | None = None) -> None:
        """XEP-0166 §7.2.4 content-reject of the peer's content-add."""
        self._check_send(Action.CONTENT_REJECT)
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
        """XEP-0166 §7.2.5 content-remove (e.g. cancel one file of several)."""
        self._check_send(Action.CONTENT_REMOVE)
        removed = [self._drop_content(n) for n in names if n in self.contents]
        if not removed:
            return
        if not self.contents:
            # Removing the last content ends the session (XEP-0166 §7.2.5).
            self.terminate(reason or ReasonInfo(Reason.CANCEL), now)
            return
        self._send(Jingle(Action.CONTENT_REMOVE, self.sid, reason=reason, contents=tuple(
            Content(c.creator, c.name) for c in removed)), now)

    # --------------------------------------------------------------- remote inputs

    def receive(self, j: Jingle, now: float) -> None:
        """Process a ``<jingle/>`` from the peer; raise RemoteProtocolError to refuse it.

        The cell of rules.RULES for (state, action, the peer's role) decides first; the
        action's handler runs only for the cells that let it through.
        """
        if j.sid != self.sid:
            raise unknown_session()
        sender = self.role.other
        verdict = rule(self.state, j.action, sender)
        if verdict is Rule.UNKNOWN_SESSION:
            raise unknown_session(f"{j.action.value}: the session has ended")
        if verdict is Rule.OUT_OF_ORDER:
            raise out_of_order(f"{j.action.value} from the {sender.value} while the "
                               f"session is {self.state.value}")
        if verdict is Rule.IGNORE:
            return
        if verdict is Rule.TIE_BY_JID:
            if self.wins_initiate_tie:
                raise tie_break(f"simultaneous {j.action.value}")
            # We lose: the peer's session-initiate overrules this session, which only the
            # SessionManager (which holds the sessions) can replace.
            raise out_of_order(f"{j.action.value} overrules this session: the manager "
                               "replaces it")
        if verdict is Rule.ANSWER:
            self._check_answer(j)
        _HANDLERS[j.action](self, j, now, verdict)

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
            # unknown applications this way (docs/protocol.md §4.3).  Nothing more to send.
            cond = Reason.TIMEOUT if condition == "remote-server-timeout" else \
                Reason.FAILED_APPLICATION
            self._end(ReasonInfo(cond, f"peer answered {action.value} with {detail}"),
                      by_peer=True, detail=detail)
        elif action is Action.SESSION_TERMINATE:
            pass  # nothing left to do: the session is over for us already
        elif action is Action.TRANSPORT_REPLACE:
            # Refused (tie-break from the initiator included, XEP-0166 §7.2.16) or lost.
            for content in pending.jingle.contents:
                if self._replacing.pop(content.name, None) is not None:
                    self._events.append(TransportRejected(content.name, detail))
        elif not self.is_over:
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

    def _send_transport_reject(self, content: str, transport: TransportPayload,
                               now: float) -> None:
        c = self.contents.get(content)
        creator = c.creator if c is not None else Role.INITIATOR
        self._send(Jingle(Action.TRANSPORT_REJECT, self.sid, contents=(
            Content(creator, content, transport=transport),)), now)

    def _end(self, reason: ReasonInfo, *, by_peer: bool, detail: str = "") -> None:
        if self.is_over:
            return
        self.state = SessionState.ENDED
        self.ended_reason = reason
        self._accept_deadline = None
        self._replacing.clear()
        self._peer_replacing.clear()
        self._switchable.clear()
        self._events.append(SessionEnded(reason, by_peer, detail))

    def _check_send(self, action: Action) -> None:
        if not may_send(self.state, action, self.role):
            raise LocalProtocolError(f"cannot send {action.value} as the {self.role.value} "
                                     f"while the session is {self.state.value}")

    def _content(self, name: str) -> Content:
        try:
            return self.contents[name]
        except KeyError:
            raise LocalProtocolError(f"no content named {name!r}") from None

    def _drop_content(self, name: str) -> Content:
        """Forget a content and whatever was open on it."""
        self._replacing.pop(name, None)
        self._peer_replacing.pop(name, None)
        self._switchable.discard(name)
        return self.contents.pop(name)

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

    def _requests_of_ours(self, action: Action) -> dict[str, Any]:
        """Our open requests that ``action`` answers or crosses, by content name."""
        if action in (Action.TRANSPORT_REPLACE, Action.TRANSPORT_ACCEPT,
                      Action.TRANSPORT_REJECT):
            return self._replacing
        if action in (Action.CONTENT_ADD, Action.CONTENT_ACCEPT, Action.CONTENT_REJECT):
            return self._adding
        return {}

    def _check_answer(self, j: Jingle) -> None:
        """Rule.ANSWER: the action must answer a request of ours open for each content."""
        if not j.contents:
            raise RemoteProtocolError(f"{j.action.value} without content",
                                      condition="bad-request")
        ours = self._requests_of_ours(j.action)
        unasked = [c.name for c in j.contents if c.name not in ours]
        if unasked:
            raise out_of_order(f"{j.action.value} for {unasked}: we asked nothing")

    def _settle_tie(self, j: Jingle, verdict: Rule) -> None:
        """XEP-0166 §7.2.16, existing session: the same action from both sides at once;
        the initiator's overrules the responder's."""
        ours = self._requests_of_ours(j.action)
        crossing = [c.name for c in j.contents if c.name in ours]
        if not crossing or verdict not in (Rule.TIE_REFUSE, Rule.TIE_YIELD):
            return
        if verdict is Rule.TIE_REFUSE:
            raise tie_break(f"{j.action.value} for {crossing} crossed ours, which wins")
        for name in crossing:
            del ours[name]
            if j.action is Action.TRANSPORT_REPLACE:
                self._events.append(TransportRejected(
                    name, "overruled by the initiator's transport-replace"))
            else:
                self._events.append(ContentRejected((name,)))

    # One handler per action, reached only through a cell of rules.RULES that lets the
    # action through (ALLOW, ANSWER, TIE_*); the checks left here are about the payload.

    def _on_session_initiate(self, j: Jingle, now: float, verdict: Rule) -> None:
        # A session exists: the manager creates sessions, never this one.
        raise out_of_order("session-initiate for a session that exists")

    def _on_session_accept(self, j: Jingle, now: float, verdict: Rule) -> None:
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
        for name in [n for n in self.contents if n not in {c.name for c in accepted}]:
            self._drop_content(name)  # left out of session-accept: rejected (§7.2.8)
        self.contents = {c.name: c for c in accepted}
        self.state = SessionState.ACTIVE
        self._accept_deadline = None
        self._events.append(SessionAccepted(tuple(accepted)))

    def _on_session_terminate(self, j: Jingle, now: float, verdict: Rule) -> None:
        self._end(j.reason or ReasonInfo(Reason.GENERAL_ERROR), by_peer=True)

    def _on_session_info(self, j: Jingle, now: float, verdict: Rule) -> None:
        if j.info is None:
            return  # an empty session-info is a ping (XEP-0166 §6.8): just ack
        if isinstance(j.info, UnknownInfo):
            raise RemoteProtocolError("session-info payload not understood",
                                      condition="feature-not-implemented",
                                      jingle_condition="unsupported-info", error_type="modify")
        self._events.append(InfoReceived(j.info))

    def _on_transport_info(self, j: Jingle, now: float, verdict: Rule) -> None:
        for c in self._peer_contents(j):
            if c.transport is None:
                raise RemoteProtocolError("transport-info without transport",
                                          condition="bad-request")
            self._events.append(TransportInfoReceived(c.name, c.transport))

    def _on_transport_replace(self, j: Jingle, now: float, verdict: Rule) -> None:
        """XEP-0166 §7.2.15: every transport-replace gets transport-accept or -reject (or,
        crossing ours while we are the initiator, tie-break from _settle_tie)."""
        contents = self._peer_contents(j)
        for c in contents:
            if c.transport is None:
                raise RemoteProtocolError("transport-replace without transport",
                                          condition="bad-request")
            if c.name in self._peer_replacing:
                raise out_of_order(f"transport-replace for {c.name!r} before we answered "
                                   "the previous one")
        self._settle_tie(j, verdict)
        for c in contents:
            assert c.transport is not None
            if c.name in self._switchable:
                self._peer_replacing[c.name] = c.transport
                self._events.append(TransportReplaceReceived(c.name, c.transport))
            else:
                # Nobody here can switch this content (we are its initiator, or its bytes
                # flow already): reject now, after the ack, rather than never answer.
                self._send_transport_reject(c.name, c.transport, now)
                self._events.append(TransportReplaceRefused(c.name, c.transport))

    def _on_transport_accept(self, j: Jingle, now: float, verdict: Rule) -> None:
        for c in self._peer_contents(j):
            proposed = self._replacing.pop(c.name, None)
            transport = c.transport or (proposed[0] if proposed is not None else None)
            if transport is None:
                raise RemoteProtocolError("transport-accept without transport",
                                          condition="bad-request")
            self.contents[c.name] = replace(self.contents[c.name], transport=transport)
            self._events.append(TransportAccepted(c.name, transport))

    def _on_transport_reject(self, j: Jingle, now: float, verdict: Rule) -> None:
        for c in self._peer_contents(j):
            self._replacing.pop(c.name, None)
            self._events.append(TransportRejected(c.name, "rejected by peer"))

    def _on_content_add(self, j: Jingle, now: float, verdict: Rule) -> None:
        if not j.contents:
            raise RemoteProtocolError("content-add without content", condition="bad-request")
        for c in j.contents:
            if c.name in self.contents or c.name in self._peer_adding:
                raise RemoteProtocolError(f"content {c.name!r} exists", condition="conflict")
            if c.description is None or c.transport is None:
                raise RemoteProtocolError("content-add content lacks description/transport",
                                          condition="bad-request")
        self._settle_tie(j, verdict)
        for c in j.contents:
            self._peer_adding[c.name] = c
        self._events.append(ContentAddReceived(j.contents))

    def _on_content_accept(self, j: Jingle, now: float, verdict: Rule) -> None:
        accepted = []
        for c in j.contents:
            ours = self._adding.pop(c.name, None)
            if ours is None:
                continue  # not asked (only a cell other than ANSWER lets that through)
            merged = replace(ours, transport=c.transport or ours.transport)
            self.contents[c.name] = merged
            accepted.append(merged)
        self._events.append(ContentAccepted(tuple(accepted)))

    def _on_content_reject(self, j: Jingle, now: float, verdict: Rule) -> None:
        for c in j.contents:
            self._adding.pop(c.name, None)
        self._events.append(ContentRejected(tuple(c.name for c in j.contents)))

    def _on_content_remove(self, j: Jingle, now: float, verdict: Rule) -> None:
        names = tuple(c.name for c in self._peer_contents(j))
        for name in names:
            self._drop_content(name)
        self._events.append(ContentRemoved(names, j.reason))
        if not self.contents:
            # XEP-0166 §7.2.5: no content left, so the session ends.
            self.terminate(j.reason or ReasonInfo(Reason.CANCEL), now)

    def _on_ignored(self, j: Jingle, now: float, verdict: Rule) -> None:
        # content-modify, description-info, security-info: not used by file transfer
        # clients (docs/protocol.md §4.2).  Rule.IGNORE acks them before this; a cell that lets
        # them through still changes nothing.
        return


_HANDLERS: dict[Action, Callable[[JingleSession, Jingle, float, Rule], None]] = {
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
