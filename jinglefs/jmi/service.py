"""Jingle Message Initiation (XEP-0353) over slixmpp: answer file-transfer proposals, and
ring a bare JID's devices before sending to it.

Receiving: a ``<propose/>`` of a file transfer from a roster contact (or a sender the user
listed in ``Settings.accept_from``) is answered at once with ``<accept/>`` to our own bare
JID and ``<proceed/>`` to the proposer (docs/interop.md §7.5: what Libervia waits for); the
session-initiate that follows, with the proposal's id as sid, is an ordinary offer.  The
proposal stays *pending* until that session-initiate, a ``<retract/>``, another of our
devices answering, or ``Timeouts.accept``; it never shows anything to the user.  A sender
the accept policy refuses gets ``<reject/>``; anyone else, and any proposal that is not
purely a file transfer (calls), gets no answer (XEP-0353 §6).

Sending: :meth:`JmiService.propose` sends ``<propose/>`` to a bare JID and waits (bounded)
for the device that proceeds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from .. import errors
from ..accept_policy import refusal
from ..api import Settings
from ..jid import bare_jid
from ..jingle import ns
from .protocol import (
    NS,
    Answer,
    JmiMessage,
    Verb,
    answer_propose,
    element,
    hints,
    parse,
    proceeded_by,
    rejected_by,
)

__all__ = ["JmiService", "Pending"]

logger = logging.getLogger(__name__)


@dataclass
class Pending:
    """A proposal we proceeded with, waiting for its session-initiate."""

    #: the proposer's full JID
    peer: str
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Ringing:
    """A proposal of ours, waiting for a device to proceed."""

    target: str  # bare JID
    answer: asyncio.Future[str]  # resolves to the full JID that proceeded


class JmiService:
    """XEP-0353 for one slixmpp client (its handlers live as long as the client)."""

    def __init__(self, xmpp: Any, settings: Settings,
                 in_roster: Callable[[str], bool]) -> None:
        self.xmpp = xmpp
        self.settings = settings
        self._in_roster = in_roster
        #: proposals we proceeded with, by sid
        self.pending: dict[str, Pending] = {}
        #: our own proposals, by sid
        self._ringing: dict[str, _Ringing] = {}
        for verb in Verb:
            xmpp.register_handler(Callback(
                f"jinglefs jmi {verb.value}",
                MatchXPath(f"{{jabber:client}}message/{{{NS}}}{verb.value}"), self._received))
        xmpp.register_handler(Callback(
            "jinglefs jmi bounce", MatchXPath("{jabber:client}message/{jabber:client}error"),
            self._bounced))

    @property
    def _own(self) -> str:
        return str(self.xmpp.boundjid.full)

    def _send(self, to: str, msg: JmiMessage) -> None:
        """A ``<message type='chat'/>`` with the JMI element and a store hint (XEP-0353
        §3); its id is the sid, so that a bounce names the proposal."""
        stanza = self.xmpp.make_message(mto=to, mtype="chat")
        stanza["id"] = msg.sid
        stanza.xml.append(element(msg))
        stanza.xml.append(hints())
        stanza.send()

    # ---------------------------------------------------------------- receiving

    def _received(self, stanza: Any) -> None:
        if stanza["type"] == "error":
            return
        msg = parse(stanza.xml)
        sender = str(stanza["from"])
        if msg is None or sender == self._own:
            return  # nothing usable, or our own <accept/> coming back to us
        if msg.verb is Verb.PROPOSE:
            self._proposed(sender, msg)
        elif msg.verb in (Verb.PROCEED, Verb.REJECT):
            if not self._answered(sender, msg):
                self._elsewhere(sender, msg)
        elif msg.verb in (Verb.RETRACT, Verb.ACCEPT):
            self._elsewhere(sender, msg)

    def _proposed(self, sender: str, msg: JmiMessage) -> None:
        bare = bare_jid(sender)
        allowed = bare in {bare_jid(j) for j in self.settings.accept_from}
        answer = answer_propose(msg, contact=self._in_roster(bare), allowed=allowed,
                                refused=refusal(self.settings, sender, ()) is not None)
        if answer is Answer.IGNORE:
            logger.info("JMI proposal %s from %s left unanswered", msg.sid, sender)
            return
        if answer is Answer.REJECT:
            # XEP-0353 §3.5, with its default reason (§6: nothing more is said)
            self._send(sender, JmiMessage(Verb.REJECT, msg.sid, reason="busy"))
            return
        # XEP-0353 §3.4: our other devices stop ringing, the proposer gets our full JID
        self._send(str(self.xmpp.boundjid.bare), JmiMessage(Verb.ACCEPT, msg.sid))
        self._send(sender, JmiMessage(Verb.PROCEED, msg.sid))
        if not self._in_roster(bare):
            # XEP-0353 §3.4: directed presence (with our caps) when we share none
            self.xmpp.send_presence(pto=sender)
        self._drop(msg.sid)
        loop = asyncio.get_running_loop()
        self.pending[msg.sid] = Pending(sender, loop.call_later(
            self.settings.timeouts.accept, self._drop, msg.sid))

    def _elsewhere(self, sender: str, msg: JmiMessage) -> None:
        """A retract from the proposer (XEP-0353 §3.3), or another device of ours that
        accepted or rejected (§3.4, §3.5): the proposal is over here."""
        pending = self.pending.get(msg.sid)
        if pending is None:
            return
        ours = bare_jid(sender) == bare_jid(self._own)
        proposer = bare_jid(sender) == bare_jid(pending.peer)
        if (msg.verb is Verb.RETRACT and proposer) or (msg.verb is not Verb.RETRACT and ours):
            logger.info("JMI proposal %s from %s: %s by %s", msg.sid, pending.peer,
                        msg.verb.value, sender)
            self._drop(msg.sid)

    def _drop(self, sid: str) -> None:
        pending = self.pending.pop(sid, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()

    def session_initiated(self, peer: str, sid: str) -> bool:
        """A session-initiate arrived (XEP-0353 §3.6): its proposal is no longer pending.
        True when it followed a proposal of ``peer``'s."""
        pending = self.pending.get(sid)
        if pending is None or bare_jid(pending.peer) != bare_jid(peer):
            return False
        self._drop(sid)
        return True

    # ------------------------------------------------------------------ sending

    async def propose(self, bare: str, timeout: float, *, contact: bool,
                      online: int = 0) -> tuple[str, str]:
        """Ring every device of ``bare`` (XEP-0353 §3.1) and wait up to ``timeout`` seconds
        for one to proceed: (its full JID, the sid to initiate the session with).

        Raises :class:`~jinglefs.errors.Declined` on ``<reject/>``,
        :class:`~jinglefs.errors.RecipientUnavailable` when the server bounces the message,
        :class:`~jinglefs.errors.Unanswered` when nobody answers (then, or when the caller
        gives up, the proposal is retracted: XEP-0353 §3.3).
        """
        sid = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        ringing = _Ringing(bare_jid(bare), loop.create_future())
        self._ringing[sid] = ringing
        try:
            if not contact:
                # XEP-0353 §3.1: directed presence first when we share no presence, so the
                # contact's devices see our caps
                self.xmpp.send_presence(pto=bare)
            self._send(bare, JmiMessage(Verb.PROPOSE, sid, (ns.FT,)))
            try:
                async with asyncio.timeout(timeout):
                    return await ringing.answer, sid
            except TimeoutError:
                self._send(bare, JmiMessage(Verb.RETRACT, sid, reason="cancel"))
                raise errors.Unanswered(_unanswered(bare, timeout, contact, online),
                                        reason="timeout") from None
            except asyncio.CancelledError:
                self._send(bare, JmiMessage(Verb.RETRACT, sid, reason="cancel"))
                raise
        finally:
            del self._ringing[sid]

    def _answered(self, sender: str, msg: JmiMessage) -> bool:
        ringing = self._ringing.get(msg.sid)
        if ringing is None or ringing.answer.done():
            return False
        if proceeded_by(msg, sender, msg.sid, ringing.target):
            ringing.answer.set_result(sender)
            return True
        if rejected_by(msg, sender, msg.sid, ringing.target):
            text = f": {msg.text}" if msg.text else ""
            ringing.answer.set_exception(errors.Declined(
                f"{ringing.target} declined the file{text}", reason=msg.reason or "decline"))
            return True
        return False

    def _bounced(self, stanza: Any) -> None:
        """RFC 6121 §8.5.2.1.1: a message to a bare JID without an available resource (and
        no offline storage) comes back as an error."""
        if stanza["type"] != "error":
            return
        ringing = self._ringing.get(str(stanza["id"]))
        if ringing is None or ringing.answer.done():
            return
        ringing.answer.set_exception(errors.RecipientUnavailable(
            f"{ringing.target} has no online device that can receive files"))


def _unanswered(bare: str, timeout: float, contact: bool, online: int) -> str:
    why = (f"{online} online device(s), none announcing file transfer" if contact else
           "not in your contacts, so their devices are not visible: give a full JID "
           "(user@host/resource)")
    return (f"no device of {bare} answered the file proposal within {timeout:.0f} s ({why}); "
            f"{errors.UNANSWERED_HELP}")
