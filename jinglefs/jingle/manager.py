"""Routes incoming ``<jingle/>`` actions to sessions (XEP-0166 §6-7).  Sans-IO.

Sessions are keyed by (peer full JID, sid), as Conversations does
(docs/protocol.md §4.1): an action from anyone but the session's peer never reaches
that session; it finds no session and is answered ``unknown-session``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .model import Action, Jingle, Role
from .rules import Rule, rule
from .session import JingleSession, tie_break, unknown_session

SessionKey = tuple[str, str]


class SessionManager:
    def __init__(self, local_jid: str, *, new_id: Callable[[], str],
                 new_sid: Callable[[], str], **timeouts: float) -> None:
        self.local_jid = local_jid
        self._new_id = new_id
        self._new_sid = new_sid
        self._timeouts = timeouts
        self._sessions: dict[SessionKey, JingleSession] = {}

    def __iter__(self) -> Iterator[JingleSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, peer: str, sid: str) -> JingleSession | None:
        return self._sessions.get((peer, sid))

    def create(self, peer: str, sid: str | None = None) -> JingleSession:
        """A new outgoing session (we are the initiator); call ``initiate()`` on it.
        ``sid``: the id a Jingle Message Initiation proposal fixed (XEP-0353 §3.6)."""
        if sid is None or (peer, sid) in self._sessions:
            sid = self._new_sid()
        while (peer, sid) in self._sessions:
            sid = self._new_sid()
        session = JingleSession(sid=sid, role=Role.INITIATOR, local_jid=self.local_jid,
                                peer_jid=peer, new_id=self._new_id, **self._timeouts)
        self._sessions[(peer, sid)] = session
        return session

    def receive(self, peer: str, jingle: Jingle, now: float) -> tuple[JingleSession, bool]:
        """Deliver an action from ``peer``; returns (session, created).

        Raises RemoteProtocolError for the IQ error to answer (unknown-session,
        tie-break, bad-request, out-of-order, ...).
        """
        key = (peer, jingle.sid)
        session = self._sessions.get(key)
        if session is not None and \
                rule(session.state, jingle.action, session.role.other) is Rule.TIE_BY_JID:
            # Both sides sent session-initiate with the same sid (XEP-0166 §7.2.16, "no
            # existing session"): the lower JID, compared byte-wise, keeps its session; the
            # other side drops its own and answers the winner's as responder.
            if session.wins_initiate_tie:
                raise tie_break("simultaneous session-initiate")
            del self._sessions[key]
            session = None
        if session is None:
            if jingle.action is not Action.SESSION_INITIATE:
                raise unknown_session()
            session = JingleSession.from_initiate(jingle, local_jid=self.local_jid,
                                                  peer_jid=peer, new_id=self._new_id,
                                                  now=now, **self._timeouts)
            self._sessions[key] = session
            return session, True
        session.receive(jingle, now)
        return session, False

    def forget(self, session: JingleSession) -> None:
        """Drop an ended session (its sid becomes unknown)."""
        self._sessions.pop((session.peer_jid, session.sid), None)
