"""Every cell of the session's rule table (jinglefs.jingle.rules), pinned twice.

1. ``rules.RULES`` must equal :data:`EXPECTED`, a table written here by hand, so a cell
   edited in rules.py without this file fails.
2. For every state x action x sender, a real :class:`JingleSession` is brought to that
   state between two sessions (tests/jingle/pair.py), the action crosses as XML through
   jinglefs.jingle.codec and the receiving SessionManager, and the IQ answer (result or
   the XEP-0166 §10 error) must be the one the cell means.  Cells that depend on a
   request of ours (ANSWER, TIE_*) are also played with that request open.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from jinglefs.errors import LocalProtocolError, RemoteProtocolError
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.jingle import rules
from jinglefs.jingle.model import (
    Action,
    Checksum,
    Content,
    FileDesc,
    FileTransferDescription,
    Jingle,
    Reason,
    ReasonInfo,
    Role,
)
from jinglefs.jingle.rules import BySender, Rule, SessionState
from jinglefs.jingle.session import (
    ContentAccepted,
    JingleSession,
    SessionEvent,
    TransportAccepted,
    TransportRejected,
    TransportReplaceReceived,
    TransportReplaceRefused,
)

from .pair import ALICE, BOB, SessionPair, drain, wire

# The table as it must be.  One line per (state, action): the rule when the action comes
# from the initiator, then from the responder.
EXPECTED_TEXT = """
pending  session-initiate   out-of-order     tie-by-jid
pending  session-accept     out-of-order     allow
pending  session-terminate  allow            allow
pending  session-info       allow            allow
pending  transport-info     allow            allow
pending  transport-replace  tie-yield        tie-refuse
pending  transport-accept   answer           answer
pending  transport-reject   answer           answer
pending  content-add        allow            allow
pending  content-accept     answer           answer
pending  content-reject     answer           answer
pending  content-remove     allow            allow
pending  content-modify     ignore           ignore
pending  description-info   ignore           ignore
pending  security-info      ignore           ignore
active   session-initiate   out-of-order     out-of-order
active   session-accept     out-of-order     out-of-order
active   session-terminate  allow            allow
active   session-info       allow            allow
active   transport-info     allow            allow
active   transport-replace  tie-yield        tie-refuse
active   transport-accept   answer           answer
active   transport-reject   answer           answer
active   content-add        allow            allow
active   content-accept     answer           answer
active   content-reject     answer           answer
active   content-remove     allow            allow
active   content-modify     ignore           ignore
active   description-info   ignore           ignore
active   security-info      ignore           ignore
ended    session-initiate   unknown-session  unknown-session
ended    session-accept     unknown-session  unknown-session
ended    session-terminate  unknown-session  unknown-session
ended    session-info       unknown-session  unknown-session
ended    transport-info     unknown-session  unknown-session
ended    transport-replace  unknown-session  unknown-session
ended    transport-accept   unknown-session  unknown-session
ended    transport-reject   unknown-session  unknown-session
ended    content-add        unknown-session  unknown-session
ended    content-accept     unknown-session  unknown-session
ended    content-reject     unknown-session  unknown-session
ended    content-remove     unknown-session  unknown-session
ended    content-modify     unknown-session  unknown-session
ended    description-info   unknown-session  unknown-session
ended    security-info      unknown-session  unknown-session
"""

Cell = tuple[str, str, Role]  # (state, action, sender)


def _expected() -> dict[Cell, str]:
    out: dict[Cell, str] = {}
    for line in EXPECTED_TEXT.strip().splitlines():
        state, action, from_initiator, from_responder = line.split()
        out[(state, action, Role.INITIATOR)] = from_initiator
        out[(state, action, Role.RESPONDER)] = from_responder
    return out


EXPECTED = _expected()
CELLS = sorted(EXPECTED, key=lambda c: (c[0], c[1], c[2].value))

#: What the receiver answers, by the cell's rule, when no request of its own is open...
BARE_OUTCOME = {
    "allow": "ack",                    # IQ result, and something happens (an event)
    "ignore": "ack-quiet",             # IQ result, nothing happens
    "answer": "out-of-order",          # nothing of ours to answer
    "tie-refuse": "ack",
    "tie-yield": "ack",
    "tie-by-jid": "tie-break",         # alice@ < bob@: the receiving initiator wins
    "out-of-order": "out-of-order",
    "unknown-session": "unknown-session",
}
#: ... and with a like request of the receiver's open for the same content.
OPEN_OUTCOME = {
    "answer": "ack",
    "tie-refuse": "tie-break",         # XEP-0166 §7.2.16: the initiator's own wins
    "tie-yield": "ack-overruled",      # the responder drops its own, takes the initiator's
}

FILE = FileDesc(name="a.bin", size=10, hash_used=("sha-256",))


def _ids(cell: Cell) -> str:
    return f"{cell[0]}-{cell[1]}-from-{cell[2].value}"


# ------------------------------------------------------------------------ building


def session_in(state: str, receiver: Role) -> tuple[SessionPair, JingleSession]:
    """A real session in ``state`` (offer of one content "f1" from alice to bob),
    seen from ``receiver``'s side, with its events and IQs drained."""
    pair = SessionPair()
    alice = pair.alice_mgr.create(BOB)
    alice.initiate([ft_content("f1", Role.INITIATOR)], pair.now)
    pair.pump()
    bob = pair.session(BOB, "sid1")
    if state in ("active", "ended"):
        bob.accept([ft_content("f1", Role.INITIATOR)], pair.now)
        pair.pump()
    mine = alice if receiver is Role.INITIATOR else bob
    if state == "ended":
        mine.terminate(ReasonInfo(Reason.SUCCESS), pair.now)
        pair.pump()
    assert mine.state is SessionState(state)
    drain(alice), drain(bob)
    assert pair.errors == []
    return pair, mine


def ft_content(name: str, creator: Role, transport: str = "ibb-1") -> Content:
    return Content(creator, name, senders=Role.INITIATOR,
                   description=FileTransferDescription(FILE),
                   transport=IbbTransport(transport, 4096))


def action_from(action: Action, sender: Role) -> Jingle:
    """A well-formed ``action`` as ``sender`` would send it in session sid1."""
    f1 = Content(Role.INITIATOR, "f1", transport=IbbTransport("ibb-new", 4096))
    f2 = ft_content("f2", sender)
    answer_f2 = ft_content("f2", sender.other)  # a content the receiver added
    contents: dict[Action, tuple[Content, ...]] = {
        Action.SESSION_INITIATE: (ft_content("f1", Role.INITIATOR),),
        Action.SESSION_ACCEPT: (ft_content("f1", Role.INITIATOR),),
        Action.TRANSPORT_INFO: (f1,),
        Action.TRANSPORT_REPLACE: (f1,),
        Action.TRANSPORT_ACCEPT: (f1,),
        Action.TRANSPORT_REJECT: (f1,),
        Action.CONTENT_ADD: (f2,),
        Action.CONTENT_ACCEPT: (answer_f2,),
        Action.CONTENT_REJECT: (Content(answer_f2.creator, "f2"),),
        Action.CONTENT_REMOVE: (Content(Role.INITIATOR, "f1"),),
        Action.CONTENT_MODIFY: (Content(Role.INITIATOR, "f1", senders=Role.RESPONDER),),
    }
    jid = ALICE if sender is Role.INITIATOR else BOB
    info = Checksum(Role.INITIATOR, "f1", FileDesc(hashes=(("sha-256", bytes(32)),))) \
        if action is Action.SESSION_INFO else None
    reason = ReasonInfo(Reason.SUCCESS) if action is Action.SESSION_TERMINATE else None
    return Jingle(action, "sid1",
                  initiator=jid if action is Action.SESSION_INITIATE else None,
                  responder=jid if action is Action.SESSION_ACCEPT else None,
                  contents=contents.get(action, ()), reason=reason, info=info)


def open_request_of(receiver: JingleSession, action: Action, now: float) -> None:
    """The receiver's own request that ``action`` answers or crosses, lost in flight."""
    if action.value.startswith("transport-"):
        receiver.replace_transport("f1", IbbTransport("ours", 4096), now)
    else:
        receiver.add_contents([ft_content("f2", receiver.role)], now)
    [iq] = receiver.iqs_to_send()
    assert iq.jingle.contents[0].name in ("f1", "f2")


def deliver(pair: SessionPair, receiver: JingleSession, j: Jingle
            ) -> tuple[str, list[SessionEvent]]:
    """Send ``j`` as XML from the receiver's peer; the answer as one word, and events."""
    mgr = pair.alice_mgr if receiver.local_jid == ALICE else pair.bob_mgr
    try:
        mgr.receive(receiver.peer_jid, wire(j), pair.now)
    except RemoteProtocolError as e:
        words = {("unexpected-request", "out-of-order"): "out-of-order",
                 ("item-not-found", "unknown-session"): "unknown-session",
                 ("conflict", "tie-break"): "tie-break",
                 ("bad-request", None): "bad-request"}
        return words.get((e.condition, e.jingle_condition),
                         f"{e.condition}/{e.jingle_condition}"), drain(receiver)
    events = drain(receiver)
    if any(isinstance(e, TransportRejected) and "overruled" in e.detail for e in events):
        return "ack-overruled", events
    quiet = not events and not receiver.iqs_to_send()
    return ("ack-quiet" if quiet else "ack"), events


# ---------------------------------------------------------------------- the table


def test_expected_covers_every_state_action_and_sender() -> None:
    assert set(EXPECTED) == {(s.value, a.value, r) for s in SessionState for a in Action
                             for r in Role}
    assert set(rules.RULES) == set(SessionState)
    for row in rules.RULES.values():
        assert set(row) == set(Action)


@pytest.mark.parametrize("cell", CELLS, ids=_ids)
def test_rules_table_is_the_expected_one(cell: Cell) -> None:
    state, action, sender = cell
    assert rules.rule(SessionState(state), Action(action), sender).value == EXPECTED[cell]


@pytest.mark.parametrize("cell", CELLS, ids=_ids)
def test_cell_behaves_as_the_table_says(cell: Cell) -> None:
    state, action, sender = cell
    pair, receiver = session_in(state, sender.other)
    outcome, _ = deliver(pair, receiver, action_from(Action(action), sender))
    assert outcome == BARE_OUTCOME[EXPECTED[cell]]
    table_rule = rules.rule(SessionState(state), Action(action), sender)
    assert outcome == BARE_OUTCOME[table_rule.value]


OPEN_CELLS = [c for c in CELLS if EXPECTED[c] in OPEN_OUTCOME]


@pytest.mark.parametrize("cell", OPEN_CELLS, ids=_ids)
def test_cell_with_our_request_open(cell: Cell) -> None:
    state, action, sender = cell
    pair, receiver = session_in(state, sender.other)
    open_request_of(receiver, Action(action), pair.now)
    outcome, events = deliver(pair, receiver, action_from(Action(action), sender))
    assert outcome == OPEN_OUTCOME[EXPECTED[cell]]
    if Action(action) is Action.TRANSPORT_ACCEPT:
        assert events == [TransportAccepted("f1", IbbTransport("ibb-new", 4096))]
        assert receiver.contents["f1"].transport == IbbTransport("ibb-new", 4096)
    elif Action(action) is Action.CONTENT_ACCEPT:
        [accepted] = events
        assert isinstance(accepted, ContentAccepted) and "f2" in receiver.contents


def test_open_cells_are_every_answer_and_tie_cell() -> None:
    """The with-a-request-open play covers 2 live states x 5 actions (transport-replace,
    -accept, -reject, content-accept, -reject) x 2 senders."""
    assert len(OPEN_CELLS) == 2 * 5 * 2


@pytest.mark.parametrize("cell", [c for c in CELLS if EXPECTED[c] not in
                                  ("out-of-order", "unknown-session", "ignore",
                                   "tie-by-jid")
                                  and Action(c[1]) not in (Action.SESSION_TERMINATE,
                                                           Action.SESSION_INFO)],
                         ids=_ids)
def test_let_through_but_without_content_is_bad_request(cell: Cell) -> None:
    """A cell that lets an action through still checks its payload (XEP-0166 §7.2):
    every such action carries contents, and one without any is a bad-request."""
    state, action, sender = cell
    pair, receiver = session_in(state, sender.other)
    outcome, _ = deliver(pair, receiver, Jingle(Action(action), "sid1"))
    assert outcome == "bad-request"


# ------------------------------------------------------- the session obeys the table


@pytest.fixture
def patched_rules() -> Iterator[dict[SessionState, dict[Action, BySender]]]:
    saved = {state: dict(row) for state, row in rules.RULES.items()}
    yield rules.RULES
    for state, row in saved.items():
        rules.RULES[state].clear()
        rules.RULES[state].update(row)


def test_changing_a_cell_changes_what_the_session_answers(
        patched_rules: dict[SessionState, dict[Action, BySender]]) -> None:
    j = action_from(Action.SESSION_INFO, Role.INITIATOR)
    pair, bob = session_in("active", Role.RESPONDER)
    assert deliver(pair, bob, j)[0] == "ack"
    patched_rules[SessionState.ACTIVE][Action.SESSION_INFO] = BySender(
        Rule.OUT_OF_ORDER, Rule.ALLOW)
    assert deliver(pair, bob, j)[0] == "out-of-order"
    patched_rules[SessionState.ACTIVE][Action.SESSION_INFO] = BySender(
        Rule.IGNORE, Rule.ALLOW)
    assert deliver(pair, bob, j)[0] == "ack-quiet"


def test_changing_a_cell_changes_what_we_may_send(
        patched_rules: dict[SessionState, dict[Action, BySender]]) -> None:
    pair, alice = session_in("active", Role.INITIATOR)
    alice.send_info(None, pair.now)
    assert [iq.jingle.action for iq in alice.iqs_to_send()] == [Action.SESSION_INFO]
    patched_rules[SessionState.ACTIVE][Action.SESSION_INFO] = BySender(
        Rule.OUT_OF_ORDER, Rule.ALLOW)
    with pytest.raises(LocalProtocolError):
        alice.send_info(None, pair.now)
    assert alice.iqs_to_send() == []


@pytest.mark.parametrize("state,role,action", [
    ("active", Role.RESPONDER, "accept"),      # session-accept twice
    ("pending", Role.INITIATOR, "accept"),     # session-accept from the initiator
    ("ended", Role.INITIATOR, "send_info"),
    ("ended", Role.RESPONDER, "replace_transport"),
    ("active", Role.INITIATOR, "accept_transport"),  # nothing of the peer's to answer
    ("active", Role.RESPONDER, "reject_transport"),
])
def test_local_actions_the_table_refuses(state: str, role: Role, action: str) -> None:
    pair, mine = session_in(state, role)
    calls = {
        "accept": lambda: mine.accept([ft_content("f1", Role.INITIATOR)], pair.now),
        "send_info": lambda: mine.send_info(None, pair.now),
        "replace_transport": lambda: mine.replace_transport("f1", IbbTransport("x"),
                                                            pair.now),
        "accept_transport": lambda: mine.accept_transport("f1", IbbTransport("x"),
                                                          pair.now),
        "reject_transport": lambda: mine.reject_transport("f1", IbbTransport("x"),
                                                          pair.now),
    }
    with pytest.raises(LocalProtocolError):
        calls[action]()
    assert mine.iqs_to_send() == []


def test_tie_by_jid_the_higher_jid_yields_to_the_peer_session() -> None:
    """(pending, session-initiate, from responder) with the receiver the higher JID:
    bob drops his own offer and becomes the responder of alice's (XEP-0166 §7.2.16)."""
    pair = SessionPair()
    pair.bob_mgr._new_sid = lambda: "sid1"
    bob = pair.bob_mgr.create(ALICE)
    bob.initiate([ft_content("f1", Role.INITIATOR)], pair.now)
    bob.iqs_to_send()  # in flight, crossing alice's
    assert rules.rule(bob.state, Action.SESSION_INITIATE, Role.RESPONDER) is Rule.TIE_BY_JID
    session, created = pair.bob_mgr.receive(
        ALICE, wire(action_from(Action.SESSION_INITIATE, Role.INITIATOR)), pair.now)
    assert created and session is not bob and session.role is Role.RESPONDER
    assert pair.bob_mgr.get(ALICE, "sid1") is session


# ------------------------------------------- a peer's transport-replace is answered


def answer_to_replace(pair: SessionPair, receiver: JingleSession) -> str:
    """Deliver the peer's transport-replace for f1; the receiver's answer, in one word:
    an IQ error's condition, or the action of the Jingle IQ it sends back."""
    sender = receiver.role.other
    outcome, _ = deliver(pair, receiver, action_from(Action.TRANSPORT_REPLACE, sender))
    if not outcome.startswith("ack"):
        return outcome
    [iq] = receiver.iqs_to_send()
    assert [c.name for c in iq.jingle.contents] == ["f1"]
    assert iq.jingle.contents[0].transport == IbbTransport("ibb-new", 4096)
    return iq.jingle.action.value


@pytest.mark.parametrize("state,receiver", itertools.product(
    ["pending", "active", "ended"], [Role.INITIATOR, Role.RESPONDER]))
def test_transport_replace_for_a_content_nobody_can_switch_is_rejected(
        state: str, receiver: Role) -> None:
    """As initiator (our contents never switch) or as a responder whose bytes flow:
    transport-reject at once, after the ack; ENDED answers with the IQ error."""
    pair, mine = session_in(state, receiver)
    expected = "unknown-session" if state == "ended" else "transport-reject"
    assert answer_to_replace(pair, mine) == expected
    assert mine.unanswered_replace("f1") is None


@pytest.mark.parametrize("state", ["pending", "active"])
def test_transport_replace_while_switchable_waits_for_the_driver(state: str) -> None:
    pair, bob = session_in(state, Role.RESPONDER)
    bob.expect_replace("f1")
    outcome, events = deliver(pair, bob, action_from(Action.TRANSPORT_REPLACE,
                                                     Role.INITIATOR))
    assert (outcome, events) == ("ack", [TransportReplaceReceived(
        "f1", IbbTransport("ibb-new", 4096))])
    assert bob.iqs_to_send() == []  # the driver decides ...
    assert bob.unanswered_replace("f1") == IbbTransport("ibb-new", 4096)
    # ... and a second one before that answer is out of order.
    assert deliver(pair, bob, action_from(Action.TRANSPORT_REPLACE,
                                          Role.INITIATOR))[0] == "out-of-order"
    # The bytes start to flow: the one still open is rejected now.
    bob.refuse_replace("f1", pair.now)
    [iq] = bob.iqs_to_send()
    assert iq.jingle.action is Action.TRANSPORT_REJECT
    assert iq.jingle.contents[0].transport == IbbTransport("ibb-new", 4096)
    assert bob.unanswered_replace("f1") is None
    # and later ones too, at once.
    assert answer_to_replace(pair, bob) == "transport-reject"


def test_accepting_a_replace_answers_it_once() -> None:
    pair, bob = session_in("active", Role.RESPONDER)
    bob.expect_replace("f1")
    deliver(pair, bob, action_from(Action.TRANSPORT_REPLACE, Role.INITIATOR))
    bob.accept_transport("f1", IbbTransport("ibb-new", 2048), pair.now)
    [iq] = bob.iqs_to_send()
    assert iq.jingle.action is Action.TRANSPORT_ACCEPT
    assert bob.contents["f1"].transport == IbbTransport("ibb-new", 2048)
    bob.refuse_replace("f1", pair.now)  # nothing left open: nothing more is sent
    assert bob.iqs_to_send() == []
    with pytest.raises(LocalProtocolError):
        bob.reject_transport("f1", IbbTransport("ibb-new"), pair.now)


@pytest.mark.parametrize("state", ["pending", "active"])
def test_crossing_transport_replaces_over_the_wire(state: str) -> None:
    """Both replace f1 at once (XEP-0166 §7.2.16): alice (initiator) answers bob's with
    conflict + tie-break; bob drops his and answers alice's with transport-reject (his
    flow cannot switch); alice learns the outcome as TransportRejected."""
    pair, alice = session_in(state, Role.INITIATOR)
    bob = pair.session(BOB, "sid1")
    alice.replace_transport("f1", IbbTransport("from-alice"), pair.now)
    bob.replace_transport("f1", IbbTransport("from-bob"), pair.now)
    pair.pump()
    assert pair.errors == [(ALICE, "conflict", "tie-break")]
    assert drain(alice) == [TransportRejected("f1", "rejected by peer")]
    assert drain(bob) == [
        TransportRejected("f1", "overruled by the initiator's transport-replace"),
        TransportReplaceRefused("f1", IbbTransport("from-alice"))]
    assert not alice.has_pending_iqs and not bob.has_pending_iqs
