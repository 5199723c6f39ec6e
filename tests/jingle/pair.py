"""Two sans-IO sessions wired back to back; every action crosses as real XML text."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

from jinglefs.errors import RemoteProtocolError
from jinglefs.jingle.codec import encode_jingle, parse_jingle
from jinglefs.jingle.manager import SessionManager
from jinglefs.jingle.model import Jingle
from jinglefs.jingle.session import JingleSession, SessionEvent

ALICE = "alice@example.org/laptop"
BOB = "bob@example.net/phone"


def wire(j: Jingle) -> Jingle:
    """Encode, serialise, parse: what the peer really sees."""
    return parse_jingle(ET.fromstring(ET.tostring(encode_jingle(j))))


def drain(session: JingleSession) -> list[SessionEvent]:
    out = []
    while (ev := session.next_event()) is not None:
        out.append(ev)
    return out


class SessionPair:
    def __init__(self) -> None:
        counter = itertools.count()
        self.alice_mgr = SessionManager(ALICE, new_id=lambda: f"a{next(counter)}",
                                        new_sid=lambda: "sid1", accept_timeout=100.0,
                                        iq_timeout=10.0, transport_timeout=10.0)
        self.bob_mgr = SessionManager(BOB, new_id=lambda: f"b{next(counter)}",
                                      new_sid=lambda: "sid2", accept_timeout=100.0,
                                      iq_timeout=10.0, transport_timeout=10.0)
        self.now = 0.0
        #: IQ errors the last pump produced, as (receiver, condition, jingle_condition)
        self.errors: list[tuple[str, str, str | None]] = []

    def session(self, jid: str, sid: str) -> JingleSession:
        mgr = self.alice_mgr if jid == ALICE else self.bob_mgr
        other = BOB if jid == ALICE else ALICE
        s = mgr.get(other, sid)
        assert s is not None
        return s

    def pump(self) -> None:
        """Deliver every pending IQ both ways (with its ack or error) until quiet."""
        for _ in range(50):
            moved = False
            for mgr, peer_mgr, me in ((self.alice_mgr, self.bob_mgr, ALICE),
                                      (self.bob_mgr, self.alice_mgr, BOB)):
                for session in list(mgr):
                    for iq in session.iqs_to_send():
                        moved = True
                        try:
                            peer_mgr.receive(me, wire(iq.jingle), self.now)
                        except RemoteProtocolError as e:
                            self.errors.append((session.peer_jid, e.condition,
                                                e.jingle_condition))
                            session.receive_iq_error(iq.id, e.condition, self.now,
                                                     e.jingle_condition)
                        else:
                            session.receive_iq_result(iq.id, self.now)
            if not moved:
                return
        raise AssertionError("too many round trips")

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for mgr in (self.alice_mgr, self.bob_mgr):
            for session in list(mgr):
                timer = session.get_timer()
                if timer is not None and timer <= self.now:
                    session.handle_timer(self.now)
