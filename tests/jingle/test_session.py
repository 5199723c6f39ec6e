from __future__ import annotations

import pytest

from jinglefs.errors import LocalProtocolError, RemoteProtocolError
from jinglefs.ibb.protocol import IbbTransport
from jinglefs.jingle.model import (
    Action,
    Checksum,
    Content,
    FileDesc,
    FileTransferDescription,
    Jingle,
    Reason,
    ReasonInfo,
    Received,
    Role,
    UnknownDescription,
)
from jinglefs.jingle.session import (
    InfoReceived,
    SessionAccepted,
    SessionEnded,
    SessionInitiated,
    SessionState,
    TransportAccepted,
    TransportInfoReceived,
    TransportRejected,
    TransportReplaceReceived,
)
from jinglefs.jingle.transport import UnknownTransport

from .pair import ALICE, BOB, SessionPair, drain, wire

FILE = FileDesc(name="report.pdf", size=1048576, media_type="application/pdf",
                hash_used=("sha-256",))


def offer(name: str = "f1", transport: object | None = None) -> Content:
    return Content(Role.INITIATOR, name, senders=Role.INITIATOR,
                   description=FileTransferDescription(FILE),
                   transport=transport or IbbTransport("ibb-1", 4096))  # type: ignore[arg-type]


def started() -> SessionPair:
    pair = SessionPair()
    alice = pair.alice_mgr.create(BOB)
    alice.initiate([offer()], pair.now)
    pair.pump()
    return pair


def test_offer_reaches_responder_with_file_metadata() -> None:
    pair = started()
    bob = pair.session(BOB, "sid1")
    [event] = drain(bob)
    assert isinstance(event, SessionInitiated)
    [content] = event.contents
    assert isinstance(content.description, FileTransferDescription)
    assert content.description.file == FILE
    assert content.transport == IbbTransport("ibb-1", 4096)
    assert bob.role is Role.RESPONDER and bob.state is SessionState.PENDING


def test_accept_transfer_info_and_success_terminate() -> None:
    pair = started()
    alice, bob = pair.session(ALICE, "sid1"), pair.session(BOB, "sid1")
    drain(bob)
    bob.accept([offer(transport=IbbTransport("ibb-1", 2048))], pair.now)
    pair.pump()
    [accepted] = drain(alice)
    assert isinstance(accepted, SessionAccepted)
    assert accepted.contents[0].transport == IbbTransport("ibb-1", 2048)
    assert alice.state is bob.state is SessionState.ACTIVE

    digest = bytes(range(32))
    alice.send_info(Checksum(Role.INITIATOR, "f1", FileDesc(hashes=(("sha-256", digest),))),
                    pair.now)
    pair.pump()
    [info] = drain(bob)
    assert isinstance(info, InfoReceived) and isinstance(info.info, Checksum)
    assert info.info.file.hashes == (("sha-256", digest),)

    bob.send_info(Received(Role.INITIATOR, "f1"), pair.now)
    bob.terminate(ReasonInfo(Reason.SUCCESS), pair.now)
    pair.pump()
    events = drain(alice)
    assert isinstance(events[0], InfoReceived) and isinstance(events[0].info, Received)
    assert events[1] == SessionEnded(ReasonInfo(Reason.SUCCESS), by_peer=True)
    assert alice.state is SessionState.ENDED
    assert pair.errors == []


def test_decline() -> None:
    pair = started()
    bob = pair.session(BOB, "sid1")
    bob.terminate(ReasonInfo(Reason.DECLINE), pair.now)
    pair.pump()
    [ended] = drain(pair.session(ALICE, "sid1"))
    assert ended == SessionEnded(ReasonInfo(Reason.DECLINE), by_peer=True)


def test_actions_after_terminate_get_unknown_session() -> None:
    pair = started()
    alice, bob = pair.session(ALICE, "sid1"), pair.session(BOB, "sid1")
    bob.terminate(ReasonInfo(Reason.DECLINE), pair.now)
    pair.pump()
    with pytest.raises(RemoteProtocolError) as err:
        bob.receive(Jingle(Action.SESSION_INFO, "sid1"), pair.now)
    assert (err.value.condition, err.value.jingle_condition) == ("item-not-found",
                                                                  "unknown-session")
    with pytest.raises(LocalProtocolError):
        alice.send_info(None, pair.now)


def test_stranger_cannot_touch_a_session() -> None:
    pair = started()
    with pytest.raises(RemoteProtocolError) as err:
        pair.bob_mgr.receive("mallory@evil.example/x",
                             Jingle(Action.SESSION_TERMINATE, "sid1",
                                    reason=ReasonInfo(Reason.SUCCESS)), pair.now)
    assert err.value.jingle_condition == "unknown-session"
    assert pair.session(BOB, "sid1").state is SessionState.PENDING


def test_session_accept_out_of_order() -> None:
    pair = started()
    alice = pair.session(ALICE, "sid1")
    # The initiator cannot receive a second accept once active, nor the responder any.
    bob = pair.session(BOB, "sid1")
    with pytest.raises(RemoteProtocolError) as err:
        bob.receive(wire(Jingle(Action.SESSION_ACCEPT, "sid1", contents=(offer(),))), 0)
    assert err.value.jingle_condition == "out-of-order"
    bob.accept([offer()], pair.now)
    pair.pump()
    with pytest.raises(RemoteProtocolError) as err:
        alice.receive(wire(Jingle(Action.SESSION_ACCEPT, "sid1", contents=(offer(),))), 0)
    assert (err.value.condition, err.value.jingle_condition) == ("unexpected-request",
                                                                  "out-of-order")


def test_transport_accept_without_replace_is_out_of_order() -> None:
    pair = started()
    with pytest.raises(RemoteProtocolError) as err:
        pair.session(ALICE, "sid1").receive(wire(Jingle(
            Action.TRANSPORT_ACCEPT, "sid1", contents=(offer(),))), 0)
    assert err.value.jingle_condition == "out-of-order"


def test_transport_replace_accept() -> None:
    pair = started()
    alice, bob = pair.session(ALICE, "sid1"), pair.session(BOB, "sid1")
    drain(bob)
    bob.accept([offer()], pair.now)
    bob.expect_replace("f1")  # bob's flow is still connecting: it can switch
    pair.pump()
    drain(alice)
    alice.replace_transport("f1", IbbTransport("ibb-2", 8192), pair.now)
    pair.pump()
    [ev] = drain(bob)
    assert ev == TransportReplaceReceived("f1", IbbTransport("ibb-2", 8192))
    bob.accept_transport("f1", IbbTransport("ibb-2", 4096), pair.now)
    pair.pump()
    assert drain(alice) == [TransportAccepted("f1", IbbTransport("ibb-2", 4096))]
    assert alice.contents["f1"].transport == IbbTransport("ibb-2", 4096)


def test_simultaneous_transport_replace_initiator_wins() -> None:
    pair = started()
    alice, bob = pair.session(ALICE, "sid1"), pair.session(BOB, "sid1")
    bob.accept([offer()], pair.now)
    bob.expect_replace("f1")
    pair.pump()
    drain(alice), drain(bob)
    alice.replace_transport("f1", IbbTransport("from-alice"), pair.now)
    bob.replace_transport("f1", IbbTransport("from-bob"), pair.now)
    pair.pump()
    # XEP-0166 §7.2.16: Bob's replace was refused with tie-break; Alice's went through
    # and overruled Bob's own.
    assert pair.errors == [(ALICE, "conflict", "tie-break")]
    assert drain(bob) == [
        TransportRejected("f1", "overruled by the initiator's transport-replace"),
        TransportReplaceReceived("f1", IbbTransport("from-alice"))]
    assert bob.unanswered_replace("f1") == IbbTransport("from-alice")
    assert not any(isinstance(e, TransportReplaceReceived) for e in drain(alice))


def test_transport_replace_unanswered_times_out() -> None:
    pair = started()
    alice = pair.session(ALICE, "sid1")
    alice.replace_transport("f1", IbbTransport("ibb-2"), pair.now)
    alice.iqs_to_send()  # lost: never delivered, never answered
    pair.advance(11)
    events = drain(alice)
    # The IQ timed out first (iq_timeout == transport_timeout here): one rejection only.
    assert [e for e in events if isinstance(e, TransportRejected)] == [
        TransportRejected("f1", "remote-server-timeout")]


def test_accept_timeout_terminates() -> None:
    pair = started()
    pair.advance(101)
    alice = pair.session(ALICE, "sid1")
    assert alice.state is SessionState.ENDED
    [ended] = [e for e in drain(alice) if isinstance(e, SessionEnded)]
    assert ended.reason.condition is Reason.TIMEOUT and not ended.by_peer
    [iq] = alice.iqs_to_send()
    assert iq.jingle.action is Action.SESSION_TERMINATE


def test_iq_error_on_initiate_ends_session() -> None:
    pair = SessionPair()
    alice = pair.alice_mgr.create(BOB)
    alice.initiate([offer()], pair.now)
    [iq] = alice.iqs_to_send()
    alice.receive_iq_error(iq.id, "feature-not-implemented", pair.now, "unsupported-info")
    [ended] = drain(alice)
    assert isinstance(ended, SessionEnded) and ended.by_peer
    assert "feature-not-implemented" in (ended.reason.text or "")


def test_unknown_application_is_acked_then_terminated() -> None:
    pair = SessionPair()
    j = Jingle(Action.SESSION_INITIATE, "s9", contents=(Content(
        Role.INITIATOR, "c", Role.INITIATOR, UnknownDescription("urn:xmpp:jingle:apps:rtp:1"),
        IbbTransport("x")),))
    session, created = pair.bob_mgr.receive(ALICE, wire(j), 0)
    assert created and session.state is SessionState.ENDED
    [iq] = session.iqs_to_send()
    assert iq.jingle.reason == ReasonInfo(Reason.UNSUPPORTED_APPLICATIONS)


def test_unknown_transport_terminated_with_unsupported_transports() -> None:
    import xml.etree.ElementTree as ET

    unknown = UnknownTransport("urn:example:weird", ET.Element("{urn:example:weird}transport"))
    pair = SessionPair()
    session, _ = pair.bob_mgr.receive(ALICE, wire(Jingle(
        Action.SESSION_INITIATE, "s9", contents=(offer(transport=unknown),))), 0)
    [iq] = session.iqs_to_send()
    assert iq.jingle.reason == ReasonInfo(Reason.UNSUPPORTED_TRANSPORTS)


def test_initiate_without_transport_is_bad_request() -> None:
    pair = SessionPair()
    bad = Jingle(Action.SESSION_INITIATE, "s9", contents=(Content(
        Role.INITIATOR, "c", Role.INITIATOR, FileTransferDescription(FILE), None),))
    with pytest.raises(RemoteProtocolError) as err:
        pair.bob_mgr.receive(ALICE, wire(bad), 0)
    assert err.value.condition == "bad-request"
    assert len(pair.bob_mgr) == 0


def test_unknown_session_info_is_unsupported_info() -> None:
    import xml.etree.ElementTree as ET

    from jinglefs.jingle.codec import parse_jingle

    pair = started()
    el = ET.fromstring("<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='sid1'>"
                       "<ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/></jingle>")
    with pytest.raises(RemoteProtocolError) as err:
        pair.session(BOB, "sid1").receive(parse_jingle(el), 0)
    assert (err.value.condition, err.value.jingle_condition, err.value.error_type) == (
        "feature-not-implemented", "unsupported-info", "modify")
    # An empty session-info is a ping: accepted silently.
    pair.session(BOB, "sid1").receive(parse_jingle(ET.fromstring(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='sid1'/>")), 0)


def test_transport_info_for_unknown_content() -> None:
    pair = started()
    with pytest.raises(RemoteProtocolError) as err:
        pair.session(BOB, "sid1").receive(wire(Jingle(
            Action.TRANSPORT_INFO, "sid1", contents=(offer("nope"),))), 0)
    assert err.value.condition == "item-not-found"
    pair.session(ALICE, "sid1").send_transport_info("f1", IbbTransport("i"), 0)
    pair.pump()
    assert TransportInfoReceived("f1", IbbTransport("i")) in drain(pair.session(BOB, "sid1"))


def test_content_remove_of_last_content_ends_session() -> None:
    pair = started()
    alice, bob = pair.session(ALICE, "sid1"), pair.session(BOB, "sid1")
    alice.initiate  # noqa: B018 - already initiated with one content
    bob.accept([offer()], pair.now)
    pair.pump()
    bob.remove_contents(["f1"], pair.now, ReasonInfo(Reason.CANCEL))
    pair.pump()
    assert alice.state is SessionState.ENDED and bob.state is SessionState.ENDED


def test_multi_content_partial_accept() -> None:
    pair = SessionPair()
    alice = pair.alice_mgr.create(BOB)
    alice.initiate([offer("a"), offer("b")], 0)
    pair.pump()
    bob = pair.session(BOB, "sid1")
    bob.accept([offer("b")], 0)
    pair.pump()
    [acc] = [e for e in drain(alice) if isinstance(e, SessionAccepted)]
    assert [c.name for c in acc.contents] == ["b"]
    assert list(alice.contents) == ["b"]


def test_simultaneous_initiate_same_sid_lower_jid_wins() -> None:
    pair = SessionPair()
    pair.bob_mgr._new_sid = lambda: "same"
    pair.alice_mgr._new_sid = lambda: "same"
    a = pair.alice_mgr.create(BOB)
    b = pair.bob_mgr.create(ALICE)
    a.initiate([offer()], 0)
    b.initiate([offer()], 0)
    [a_iq], [b_iq] = a.iqs_to_send(), b.iqs_to_send()  # both on the wire at once
    pair.bob_mgr.receive(ALICE, wire(a_iq.jingle), 0)  # Bob yields: he is the higher JID
    with pytest.raises(RemoteProtocolError) as err:
        pair.alice_mgr.receive(BOB, wire(b_iq.jingle), 0)
    assert (err.value.condition, err.value.jingle_condition) == ("conflict", "tie-break")
    assert pair.bob_mgr.get(ALICE, "same") is not None
    assert pair.bob_mgr.get(ALICE, "same").role is Role.RESPONDER  # type: ignore[union-attr]


def test_the_initiator_takes_a_dino_responders_transport_replace_when_it_expects_one() -> None:
    """Dino replaces a failed transport itself as responder (docs/interop.md §4.4): an
    initiator that expects it (jinglefs.sending, facing Dino) accepts it; otherwise it
    is rejected at once, never left unanswered (XEP-0166 §7.2.15)."""
    for expecting in (True, False):
        pair = started()
        alice, bob = pair.session(ALICE, "sid1"), pair.session(BOB, "sid1")
        bob.accept([offer()], pair.now)
        pair.pump()
        drain(alice), drain(bob)
        if expecting:
            alice.expect_replace("f1")
        bob.replace_transport("f1", IbbTransport("from-dino", 4096), pair.now)
        pair.pump()
        if not expecting:
            assert drain(bob) == [TransportRejected("f1", "rejected by peer")]
            continue
        assert drain(alice) == [TransportReplaceReceived("f1", IbbTransport("from-dino", 4096))]
        alice.accept_transport("f1", IbbTransport("from-dino", 4096), pair.now)
        pair.pump()
        assert drain(bob) == [TransportAccepted("f1", IbbTransport("from-dino", 4096))]
        assert alice.contents["f1"].transport == bob.contents["f1"].transport == \
            IbbTransport("from-dino", 4096)
        assert pair.errors == []
