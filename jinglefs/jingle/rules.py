"""Which peer action a Jingle session takes in which state: one table (XEP-0166).

:class:`~jinglefs.jingle.session.JingleSession` looks every incoming ``<jingle/>`` up
in :data:`RULES` before its handler runs, and every action it sends itself in the
same table (what we may send is what the peer's table allows from our role).  So a
cell changed here changes what the session does.

States are those of XEP-0166 §5.1 (PENDING → ACTIVE → ENDED).  Each cell names the
role of the *sender*: ``from initiator`` and ``from responder``.

What a cell means (the IQ answer is XEP-0166 §6.3 / §10, Error Handling):

``ALLOW``
    handled: acked with an empty result; a malformed payload is still answered
    ``bad-request`` and a content the session lacks ``item-not-found`` (RFC 6120 §8.3).
``IGNORE``
    acked, nothing changes (content-modify, description-info, security-info: no file
    transfer client uses them, docs/protocol.md §4.2).
``ANSWER``
    only the answer to a request of ours still open for that content (transport-accept /
    -reject answer our transport-replace, XEP-0166 §7.2.12 / §7.2.14; content-accept /
    -reject our content-add, §7.2.1 / §7.2.4); with nothing open: out-of-order.
``TIE_REFUSE``
    allowed; but if a transport-replace of ours for the same content is open, ours
    overrules it and theirs gets ``conflict`` + ``tie-break`` (XEP-0166 §7.2.16,
    "existing session": the initiator's action wins, so this is the initiator's cell).
``TIE_YIELD``
    allowed; if a like request of ours is open, theirs (the initiator's) overrules ours,
    which we drop (XEP-0166 §7.2.16; the responder's cell).
``TIE_BY_JID``
    both sides sent session-initiate with one sid: the lower JID's overrules the other
    (XEP-0166 §7.2.16, "no existing session"); the loser's gets ``tie-break``.
    :class:`~jinglefs.jingle.manager.SessionManager` settles it.
``OUT_OF_ORDER``
    ``unexpected-request`` + ``out-of-order`` (XEP-0166 §10).
``UNKNOWN_SESSION``
    ``item-not-found`` + ``unknown-session``: once ended, the sid is not live (§10).

``python -m jinglefs.jingle.rules`` prints the table as Markdown.
"""

from __future__ import annotations

import enum
import sys
from typing import NamedTuple

from .model import Action, Role


class SessionState(enum.Enum):
    """XEP-0166 §5.1 session states."""

    #: session-initiate sent or received; waiting for session-accept.
    PENDING = "pending"
    #: session-accept sent or received.
    ACTIVE = "active"
    #: session-terminate sent or received (or the session failed); nothing more happens.
    ENDED = "ended"


class Rule(enum.Enum):
    """What the session does with a peer action (see the module docstring)."""

    ALLOW = "allow"
    IGNORE = "ignore"
    ANSWER = "answer"
    TIE_REFUSE = "tie-refuse"
    TIE_YIELD = "tie-yield"
    TIE_BY_JID = "tie-by-jid"
    OUT_OF_ORDER = "out-of-order"
    UNKNOWN_SESSION = "unknown-session"


class BySender(NamedTuple):
    """One row of the table: the rule for the action from each role."""

    from_initiator: Rule
    from_responder: Rule

    def of(self, sender: Role) -> Rule:
        return self.from_initiator if sender is Role.INITIATOR else self.from_responder


ALLOW = Rule.ALLOW
IGNORE = Rule.IGNORE
ANSWER = Rule.ANSWER
TIE_REFUSE = Rule.TIE_REFUSE
TIE_YIELD = Rule.TIE_YIELD
TIE_BY_JID = Rule.TIE_BY_JID
OUT_OF_ORDER = Rule.OUT_OF_ORDER
UNKNOWN_SESSION = Rule.UNKNOWN_SESSION

_ENDED = BySender(UNKNOWN_SESSION, UNKNOWN_SESSION)

#: (state, action) -> (rule from the initiator, rule from the responder).
RULES: dict[SessionState, dict[Action, BySender]] = {
    SessionState.PENDING: {
        #                                 from initiator   from responder
        # A session exists: a second initiate from the initiator is out of order; one
        # from our responder (same sid, both initiated at once) is a §7.2.16 tie.
        Action.SESSION_INITIATE:  BySender(OUT_OF_ORDER,   TIE_BY_JID),
        Action.SESSION_ACCEPT:    BySender(OUT_OF_ORDER,   ALLOW),
        Action.SESSION_TERMINATE: BySender(ALLOW,          ALLOW),
        Action.SESSION_INFO:      BySender(ALLOW,          ALLOW),
        # XEP-0176 trickle: candidates may come before session-accept (docs/protocol.md §6.4).
        Action.TRANSPORT_INFO:    BySender(ALLOW,          ALLOW),
        Action.TRANSPORT_REPLACE: BySender(TIE_YIELD,      TIE_REFUSE),
        Action.TRANSPORT_ACCEPT:  BySender(ANSWER,         ANSWER),
        Action.TRANSPORT_REJECT:  BySender(ANSWER,         ANSWER),
        Action.CONTENT_ADD:       BySender(ALLOW,          ALLOW),
        Action.CONTENT_ACCEPT:    BySender(ANSWER,         ANSWER),
        Action.CONTENT_REJECT:    BySender(ANSWER,         ANSWER),
        Action.CONTENT_REMOVE:    BySender(ALLOW,          ALLOW),
        Action.CONTENT_MODIFY:    BySender(IGNORE,         IGNORE),
        Action.DESCRIPTION_INFO:  BySender(IGNORE,         IGNORE),
        Action.SECURITY_INFO:     BySender(IGNORE,         IGNORE),
    },
    SessionState.ACTIVE: {
        #                                 from initiator   from responder
        Action.SESSION_INITIATE:  BySender(OUT_OF_ORDER,   OUT_OF_ORDER),
        Action.SESSION_ACCEPT:    BySender(OUT_OF_ORDER,   OUT_OF_ORDER),
        Action.SESSION_TERMINATE: BySender(ALLOW,          ALLOW),
        Action.SESSION_INFO:      BySender(ALLOW,          ALLOW),
        Action.TRANSPORT_INFO:    BySender(ALLOW,          ALLOW),
        Action.TRANSPORT_REPLACE: BySender(TIE_YIELD,      TIE_REFUSE),
        Action.TRANSPORT_ACCEPT:  BySender(ANSWER,         ANSWER),
        Action.TRANSPORT_REJECT:  BySender(ANSWER,         ANSWER),
        Action.CONTENT_ADD:       BySender(ALLOW,          ALLOW),
        Action.CONTENT_ACCEPT:    BySender(ANSWER,         ANSWER),
        Action.CONTENT_REJECT:    BySender(ANSWER,         ANSWER),
        Action.CONTENT_REMOVE:    BySender(ALLOW,          ALLOW),
        Action.CONTENT_MODIFY:    BySender(IGNORE,         IGNORE),
        Action.DESCRIPTION_INFO:  BySender(IGNORE,         IGNORE),
        Action.SECURITY_INFO:     BySender(IGNORE,         IGNORE),
    },
    SessionState.ENDED: {
        # XEP-0166 §10 unknown-session: "no longer live ... because the recipient
        # previously terminated the session"; crossing session-terminates land here.
        Action.SESSION_INITIATE:  _ENDED,
        Action.SESSION_ACCEPT:    _ENDED,
        Action.SESSION_TERMINATE: _ENDED,
        Action.SESSION_INFO:      _ENDED,
        Action.TRANSPORT_INFO:    _ENDED,
        Action.TRANSPORT_REPLACE: _ENDED,
        Action.TRANSPORT_ACCEPT:  _ENDED,
        Action.TRANSPORT_REJECT:  _ENDED,
        Action.CONTENT_ADD:       _ENDED,
        Action.CONTENT_ACCEPT:    _ENDED,
        Action.CONTENT_REJECT:    _ENDED,
        Action.CONTENT_REMOVE:    _ENDED,
        Action.CONTENT_MODIFY:    _ENDED,
        Action.DESCRIPTION_INFO:  _ENDED,
        Action.SECURITY_INFO:     _ENDED,
    },
}

#: Rules under which an action is refused whatever it carries.
REFUSED = frozenset({Rule.OUT_OF_ORDER, Rule.UNKNOWN_SESSION})


def rule(state: SessionState, action: Action, sender: Role) -> Rule:
    """The cell for ``action`` sent by ``sender`` to a session in ``state``."""
    return RULES[state][action].of(sender)


def may_send(state: SessionState, action: Action, role: Role) -> bool:
    """Whether we, in ``role``, may send ``action`` now: the peer's cell must not refuse it
    (the peer runs the same table; its state equals ours once our last action is acked)."""
    return rule(state, action, role) not in REFUSED


def markdown() -> str:
    """The table as Markdown: one block per state, one row per action."""
    lines: list[str] = []
    for state, row in RULES.items():
        lines += [f"### {state.name}", "", "| action | from initiator | from responder |",
                  "| --- | --- | --- |"]
        lines += [f"| {action.value} | {cell.from_initiator.value} | "
                  f"{cell.from_responder.value} |" for action, cell in row.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
