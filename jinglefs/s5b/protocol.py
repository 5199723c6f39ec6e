"""XEP-0260 Jingle SOCKS5 Bytestreams: the ``<transport/>`` payload and the negotiation logic.

Pure: no I/O, no clock, no randomness (the caller picks cids and the transport sid).

Theory of operation
-------------------

Each side offers candidates (XEP-0260 §2.2): its own listening sockets (``direct``)
and maybe a SOCKS5 proxy of its server (``proxy``).  Each side then connects to the
*peer's* candidates, best priority first, and reports the outcome in a transport-info:
``<candidate-used cid=…/>`` for the first one that completed the SOCKS5 handshake,
or ``<candidate-error/>`` if none did (§2.3).

Once both reports are known, both sides compute the same *nominated* candidate
(§2.4):

* both sent candidate-error     -> S5B failed, fall back (§3);
* one used, one error          -> the used one;
* both used                    -> the higher priority; equal priorities -> the one
  the initiator picked (i.e. the responder's candidate the initiator connected to).

If the nominated candidate is a proxy, the party that *offered* it connects to the
proxy itself, asks it to activate the bytestream (XEP-0065 §6.3.5) and then sends
``<activated cid=…/>``; the other party must not send data before that (§2.4).
Failure to reach or activate the proxy is signalled with ``<proxy-error/>``.

:class:`S5bNegotiation` tracks this for one content.  Inputs are method calls (what
our connector observed, what the peer sent); outputs are transport-info payloads to
send (:meth:`S5bNegotiation.payloads_to_send`) and the :attr:`S5bNegotiation.state`.

DST.ADDR (XEP-0065 §5.3.2) is the lowercase hex SHA-1 of ``sid + requester + target``.
For direct candidates clients disagree on the order of the two JIDs (owner of the
candidate first, or initiator first; docs/protocol.md §7.5), so a listener accepts both
and a client that is refused retries once with the other order.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Literal

from ..errors import LocalProtocolError, RemoteProtocolError
from ..jingle.ns import S5B_TRANSPORT
from ..jingle.transport import register_transport

__all__ = [
    "CANDIDATE_TYPES",
    "TYPE_PREFERENCE",
    "Nomination",
    "Role",
    "S5bCandidate",
    "S5bNegotiation",
    "S5bState",
    "S5bTransport",
    "candidate_priority",
    "dstaddr",
    "sort_by_priority",
]

Role = Literal["initiator", "responder"]

#: XEP-0260 §2.2 "Defined Types" with their suggested type preference.
TYPE_PREFERENCE: dict[str, int] = {"direct": 126, "assisted": 120, "tunnel": 110, "proxy": 10}
CANDIDATE_TYPES = frozenset(TYPE_PREFERENCE)

_MAX_PRIORITY = 2**32 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")
_TOKEN = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")  # cid and sid: no whitespace or controls
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?"
)
# Loose RFC 7622 shape: [local@]domain[/resource]; resources may contain spaces.
_JID = re.compile(r"(?:[^@/\s\x00-\x1f]+@)?[^@/\s\x00-\x1f]+(?:/[^\x00-\x1f]+)?")


def candidate_priority(type_: str, local_preference: int = 0) -> int:
    """XEP-0260 §2.2: ``priority = 2^16 * type preference + local preference``."""
    if type_ not in TYPE_PREFERENCE:
        raise ValueError(f"unknown S5B candidate type {type_!r}")
    if not 0 <= local_preference <= 0xFFFF:
        raise ValueError(f"local preference {local_preference} is outside 0..65535")
    return (TYPE_PREFERENCE[type_] << 16) | local_preference


def dstaddr(sid: str, requester_jid: str, target_jid: str) -> str:
    """DST.ADDR for the SOCKS5 CONNECT: lowercase hex SHA-1(sid + requester + target).

    XEP-0065 §5.3.2.  The JIDs must be the exact (full, already normalised) JIDs of
    the Jingle exchange, and ``sid`` the *transport* sid, not the Jingle session id.
    """
    data = (sid + requester_jid + target_jid).encode("utf-8")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _bad(msg: str) -> RemoteProtocolError:
    return RemoteProtocolError(msg, condition="bad-request")  # type cancel, docs/protocol.md §4.3


def _required(el: ET.Element, name: str) -> str:
    value = el.get(name)
    if value is None or value == "":
        raise _bad(f"S5B <{_local(el.tag)}/> without '{name}'")
    return value


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse_int(text: str, what: str, low: int, high: int) -> int:
    if not _DIGITS.fullmatch(text):
        raise _bad(f"S5B {what} {text!r} is not a decimal number")
    value = int(text)
    if not low <= value <= high:
        raise _bad(f"S5B {what} {value} is outside {low}..{high}")
    return value


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None
    return True


@dataclass(frozen=True)
class S5bCandidate:
    """One ``<candidate/>`` (XEP-0260 §2.2): a SOCKS5 server to try."""

    cid: str
    host: str
    #: The owner's full JID for direct candidates, the proxy's JID for proxies.
    jid: str
    port: int
    priority: int
    type: str = "direct"

    TAG: ClassVar[str] = f"{{{S5B_TRANSPORT}}}candidate"

    @property
    def is_proxy(self) -> bool:
        return self.type == "proxy"

    @classmethod
    def from_element(cls, el: ET.Element) -> S5bCandidate:
        """Parse a ``<candidate/>``; RemoteProtocolError(condition="bad-request") if invalid."""
        cid = _required(el, "cid")
        if not _TOKEN.fullmatch(cid):
            raise _bad(f"S5B candidate cid {cid!r} is not a valid identifier")
        host = _required(el, "host")
        if not _valid_host(host):
            raise _bad(f"S5B candidate host {host!r} is neither an IP address nor a host name")
        # Only a proxy's jid is needed (its activation goes there, XEP-0065 §6.3.5); Psi
        # writes none on direct candidates (docs/interop.md §6.4), whose owner is the peer.
        jid = el.get("jid", "") if el.get("type", "direct") != "proxy" else _required(el, "jid")
        if jid and (len(jid) > 3071 or not _JID.fullmatch(jid)):
            raise _bad(f"S5B candidate jid {jid!r} is not a JID")
        # The schema makes 'port' optional, but a candidate without one cannot be dialled.
        port = _parse_int(_required(el, "port"), "candidate port", 1, 65535)
        priority = _parse_int(_required(el, "priority"), "candidate priority", 0, _MAX_PRIORITY)
        # The schema defaults 'type' to direct (XEP-0260 §9); anything else is unknown.
        type_ = el.get("type", "direct")
        if type_ not in CANDIDATE_TYPES:
            raise _bad(f"S5B candidate type {type_!r} is unknown")
        return cls(cid=cid, host=host, jid=jid, port=port, priority=priority, type=type_)

    def to_element(self) -> ET.Element:
        # Every attribute, always: Conversations drops candidates lacking any of them,
        # 'type' included (docs/protocol.md §15.2).
        return ET.Element(
            self.TAG,
            {
                "cid": self.cid,
                "host": self.host,
                "jid": self.jid,
                "port": str(self.port),
                "priority": str(self.priority),
                "type": self.type,
            },
        )


@register_transport
@dataclass(frozen=True)
class S5bTransport:
    """A ``<transport xmlns='urn:xmpp:jingle:transports:s5b:1'/>``.

    It carries either the candidate offer (session-initiate, session-accept,
    transport-replace, transport-info with more candidates) or exactly one of the
    transport-info signals of XEP-0260 §2.3/§2.4.
    """

    #: The bytestream sid: the DST.ADDR hash and the proxy activation use this one.
    sid: str
    #: ``tcp`` (the default) or ``udp``; only the initiator may set it.
    mode: str = "tcp"
    #: The DST.ADDR the sender computed (sent when it offers a proxy candidate).
    dstaddr: str | None = None
    candidates: tuple[S5bCandidate, ...] = ()
    candidate_used: str | None = None
    candidate_error: bool = False
    activated: str | None = None
    proxy_error: bool = False

    namespace: ClassVar[str] = S5B_TRANSPORT

    @property
    def is_signal(self) -> bool:
        """True for candidate-used / candidate-error / activated / proxy-error."""
        return (
            self.candidate_used is not None
            or self.candidate_error
            or self.activated is not None
            or self.proxy_error
        )

    @classmethod
    def from_element(cls, el: ET.Element) -> S5bTransport:
        """Parse a ``<transport/>``; RemoteProtocolError(condition="bad-request") if malformed."""
        if el.tag != f"{{{S5B_TRANSPORT}}}transport":
            raise _bad(f"not an S5B transport element: {el.tag}")
        sid = el.get("sid")
        if not sid or not _TOKEN.fullmatch(sid):
            raise _bad("S5B transport without a valid 'sid'")
        mode = el.get("mode", "tcp")
        if mode not in ("tcp", "udp"):
            raise _bad(f"S5B transport mode {mode!r} is neither tcp nor udp")
        dst = el.get("dstaddr")
        if dst is not None:
            if not _HEX40.fullmatch(dst):
                raise _bad(f"S5B dstaddr {dst!r} is not a hex SHA-1")
            dst = dst.lower()

        candidates: list[S5bCandidate] = []
        signals: list[str] = []
        used: str | None = None
        activated: str | None = None
        for child in el:
            if not child.tag.startswith(f"{{{S5B_TRANSPORT}}}"):
                continue  # foreign extensions are allowed and ignored
            name = _local(child.tag)
            if name == "candidate":
                candidates.append(S5bCandidate.from_element(child))
            elif name in ("candidate-used", "activated"):
                cid = _required(child, "cid")
                if not _TOKEN.fullmatch(cid):
                    raise _bad(f"S5B <{name}/> cid {cid!r} is not a valid identifier")
                signals.append(name)
                if name == "candidate-used":
                    used = cid
                else:
                    activated = cid
            elif name in ("candidate-error", "proxy-error"):
                signals.append(name)
            # Unknown elements in our namespace: ignored, like foreign ones.
        # XEP-0260 §9 schema: an <xs:choice/> of candidates or one single signal.
        if len(signals) > 1:
            raise _bad(f"S5B transport carries several signals: {', '.join(signals)}")
        if signals and candidates:
            raise _bad(f"S5B transport mixes candidates with <{signals[0]}/>")
        cids = [c.cid for c in candidates]
        if len(set(cids)) != len(cids):
            raise _bad("S5B transport repeats a candidate cid")
        return cls(
            sid=sid,
            mode=mode,
            dstaddr=dst,
            candidates=tuple(candidates),
            candidate_used=used,
            candidate_error="candidate-error" in signals,
            activated=activated,
            proxy_error="proxy-error" in signals,
        )

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{S5B_TRANSPORT}}}transport", {"sid": self.sid})
        if self.mode != "tcp":
            el.set("mode", self.mode)
        if self.dstaddr is not None:
            el.set("dstaddr", self.dstaddr)
        for cand in self.candidates:
            el.append(cand.to_element())
        if self.candidate_used is not None:
            ET.SubElement(el, f"{{{S5B_TRANSPORT}}}candidate-used", {"cid": self.candidate_used})
        if self.candidate_error:
            ET.SubElement(el, f"{{{S5B_TRANSPORT}}}candidate-error")
        if self.activated is not None:
            ET.SubElement(el, f"{{{S5B_TRANSPORT}}}activated", {"cid": self.activated})
        if self.proxy_error:
            ET.SubElement(el, f"{{{S5B_TRANSPORT}}}proxy-error")
        return el


class S5bState(Enum):
    #: Waiting for our own and/or the peer's candidate-used / candidate-error.
    CONNECTING = "connecting"
    #: Our proxy candidate was nominated: connect to it, activate, then call
    #: :meth:`S5bNegotiation.proxy_activated` (or ``proxy_activation_failed``).
    ACTIVATING = "activating"
    #: The peer's proxy candidate was nominated: wait for its ``<activated/>``.
    AWAITING_ACTIVATED = "awaiting-activated"
    #: The nominated candidate may carry data.
    READY = "ready"
    #: S5B did not work (both candidate-error, or proxy-error): fall back (XEP-0260 §3).
    FAILED = "failed"
    #: The peer broke XEP-0260; :attr:`S5bNegotiation.error` says how.
    ERROR = "error"


_TERMINAL = (S5bState.FAILED, S5bState.ERROR)


@dataclass(frozen=True)
class Nomination:
    candidate: S5bCandidate
    #: True if we offered it (the peer connected to our listener or our proxy);
    #: False if it is the peer's candidate and our outgoing connection is the one to use.
    ours: bool


class S5bNegotiation:
    """Sans-IO XEP-0260 candidate nomination for one content (see the module docstring).

    :param role: our Jingle role in the session.
    :param sid: the S5B transport sid (the initiator's; the responder echoes it).
    :param local_jid: our full JID; :param peer_jid: the peer's full JID.
    :param local_candidates: what we offer (ours to listen on / our proxy).
    :param remote_candidates: what the peer offered so far (more may come later).
    :param remote_dstaddr: the ``dstaddr`` attribute of the peer's transport, if any.
    """

    def __init__(
        self,
        *,
        role: Role,
        sid: str,
        local_jid: str,
        peer_jid: str,
        local_candidates: Iterable[S5bCandidate] = (),
        remote_candidates: Iterable[S5bCandidate] = (),
        remote_dstaddr: str | None = None,
    ) -> None:
        if role not in ("initiator", "responder"):
            raise ValueError(f"role must be 'initiator' or 'responder', not {role!r}")
        self.role: Role = role
        self.sid = sid
        self.local_jid = local_jid
        self.peer_jid = peer_jid
        self.remote_dstaddr = remote_dstaddr
        self._local: dict[str, S5bCandidate] = {}
        for cand in local_candidates:
            if cand.cid in self._local:
                raise LocalProtocolError(f"duplicate local S5B candidate cid {cand.cid!r}")
            self._local[cand.cid] = cand
        self._remote: dict[str, S5bCandidate] = {}
        self._outbox: list[S5bTransport] = []
        #: What we reported: a cid of the peer's candidate, "" for candidate-error, None yet.
        self._our_report: str | None = None
        #: What the peer reported about our candidates, same encoding.
        self._their_report: str | None = None
        self.state = S5bState.CONNECTING
        self.nomination: Nomination | None = None
        #: Set in state ERROR: what to answer the offending IQ with, and why.
        self.error: RemoteProtocolError | None = None
        #: Set in state FAILED: a human-readable reason.
        self.failure_reason: str | None = None
        self.add_remote_candidates(remote_candidates)

    # -- derived values ---------------------------------------------------------

    @property
    def initiator_jid(self) -> str:
        return self.local_jid if self.role == "initiator" else self.peer_jid

    @property
    def responder_jid(self) -> str:
        return self.peer_jid if self.role == "initiator" else self.local_jid

    @property
    def local_candidates(self) -> tuple[S5bCandidate, ...]:
        return tuple(self._local.values())

    @property
    def remote_candidates(self) -> tuple[S5bCandidate, ...]:
        """The peer's candidates, best priority first (the order to try them in)."""
        return tuple(sort_by_priority(list(self._remote.values())))

    @property
    def must_activate(self) -> bool:
        """We offered the nominated proxy: we must connect to it and activate it."""
        return self.state is S5bState.ACTIVATING

    @property
    def ready(self) -> bool:
        """Data may flow on the nominated candidate."""
        return self.state is S5bState.READY

    @property
    def finished(self) -> bool:
        return self.state in (S5bState.READY, *_TERMINAL)

    def offer(self) -> S5bTransport:
        """Our transport element for session-initiate / session-accept."""
        has_proxy = any(c.is_proxy for c in self._local.values())
        return S5bTransport(
            sid=self.sid,
            dstaddr=self.proxy_dstaddr() if has_proxy else None,
            candidates=self.local_candidates,
        )

    def listener_dstaddrs(self) -> frozenset[str]:
        """DST.ADDR values our own listener accepts for this session.

        Owner-first (our JID first) and the other order, which is what
        "initiator-first" clients (Psi, Gajim) send to a responder's candidate
        (docs/protocol.md §7.5).
        """
        return frozenset(
            {
                dstaddr(self.sid, self.local_jid, self.peer_jid),
                dstaddr(self.sid, self.peer_jid, self.local_jid),
            }
        )

    def proxy_dstaddr(self) -> str:
        """DST.ADDR for *our own* proxy candidate: owner (us) first (XEP-0260 §2.2)."""
        return dstaddr(self.sid, self.local_jid, self.peer_jid)

    def dstaddrs_for(self, candidate: S5bCandidate) -> tuple[str, ...]:
        """The DST.ADDR values to try, in order, when connecting to a peer's candidate.

        Owner-first for everything.  For a proxy the peer's announced ``dstaddr``
        wins: both ends must meet at the proxy with the same hash, and a proxy
        accepts any hash at CONNECT time, so there is no point in a second try.
        A direct candidate of the responder gets initiator-first as the retry
        (docs/protocol.md §7.5; both orders are equal for the initiator's candidates).
        """
        owner_first = dstaddr(self.sid, self.peer_jid, self.local_jid)
        if candidate.is_proxy:
            return (self.remote_dstaddr or owner_first,)
        initiator_first = dstaddr(self.sid, self.initiator_jid, self.responder_jid)
        if initiator_first == owner_first:
            return (owner_first,)
        return (owner_first, initiator_first)

    @property
    def min_useful_priority(self) -> int | None:
        """Only peer candidates with a priority above this can still matter.

        XEP-0260 §2.3: after the peer's candidate-used, trying candidates that
        cannot beat its pick is pointless (ties go to the initiator's pick, but a
        tie never changes which priority is used, so "strictly above").  None:
        every candidate is still useful.
        """
        if self._their_report:
            return self._local[self._their_report].priority
        return None

    def payloads_to_send(self) -> list[S5bTransport]:
        """Transport-info payloads to send, in order (drains the queue)."""
        out, self._outbox = self._outbox, []
        return out

    # -- inputs from our connector ---------------------------------------------

    def add_remote_candidates(self, candidates: Iterable[S5bCandidate]) -> None:
        """More candidates from the peer (session-accept or transport-info)."""
        for cand in candidates:
            if cand.cid in self._remote and self._remote[cand.cid] != cand:
                self._fail_protocol(f"peer reused S5B candidate cid {cand.cid!r}")
                return
            self._remote[cand.cid] = cand

    def local_candidate_connected(self, cid: str) -> None:
        """We completed the SOCKS5 handshake with the peer's candidate ``cid``."""
        if self.state in _TERMINAL:
            return  # a late connection after the negotiation ended: nothing to say
        self._check_can_report()
        if cid not in self._remote:
            raise LocalProtocolError(f"{cid!r} is not one of the peer's S5B candidates")
        self._our_report = cid
        self._outbox.append(S5bTransport(sid=self.sid, candidate_used=cid))
        self._maybe_nominate()

    def local_candidates_failed(self) -> None:
        """None of the peer's candidates worked (or none is left worth trying)."""
        if self.state in _TERMINAL:
            return
        self._check_can_report()
        self._our_report = ""
        self._outbox.append(S5bTransport(sid=self.sid, candidate_error=True))
        self._maybe_nominate()

    def proxy_activated(self) -> None:
        """The proxy answered our XEP-0065 activation with a result: tell the peer."""
        self._check_activating()
        assert self.nomination is not None
        self._outbox.append(S5bTransport(sid=self.sid, activated=self.nomination.candidate.cid))
        self.state = S5bState.READY

    def proxy_activation_failed(self, reason: str = "could not activate the proxy") -> None:
        """Connecting to or activating our proxy failed: tell the peer, then fall back."""
        self._check_activating()
        self._outbox.append(S5bTransport(sid=self.sid, proxy_error=True))
        self._set_failed(reason)

    # -- inputs from the peer ----------------------------------------------------

    def receive(self, payload: S5bTransport) -> None:
        """Feed a transport-info payload from the peer (candidates or one signal)."""
        if self.state in _TERMINAL:
            return  # too late, ignore (the session acts on the outcome already)
        if payload.sid != self.sid:
            self._fail_protocol(f"S5B sid {payload.sid!r} does not match {self.sid!r}")
            return
        if payload.candidates:
            self.add_remote_candidates(payload.candidates)
        if payload.candidate_used is not None:
            self.remote_candidate_used(payload.candidate_used)
        elif payload.candidate_error:
            self.remote_candidate_error()
        elif payload.activated is not None:
            self.remote_activated(payload.activated)
        elif payload.proxy_error:
            self.remote_proxy_error()

    def remote_candidate_used(self, cid: str) -> None:
        """The peer connected to our candidate ``cid``."""
        if self.state in _TERMINAL:
            return
        if cid not in self._local:
            self._fail_protocol(f"peer sent candidate-used for {cid!r}, which we never offered")
            return
        self._set_their_report(cid, f"candidate-used {cid!r}")

    def remote_candidate_error(self) -> None:
        """The peer could not connect to any of our candidates."""
        if self.state in _TERMINAL:
            return
        self._set_their_report("", "candidate-error")

    def remote_activated(self, cid: str) -> None:
        """The peer activated its proxy candidate ``cid``: data may flow."""
        if self.state in _TERMINAL:
            return
        nom = self.nomination
        if nom is None:
            self._fail_protocol(
                f"peer sent activated for {cid!r} before a candidate was nominated",
                condition="unexpected-request",
                jingle_condition="out-of-order",
            )
        elif nom.candidate.cid != cid:
            self._fail_protocol(
                f"peer sent activated for {cid!r}, but the nominated candidate is "
                f"{nom.candidate.cid!r}"
            )
        elif nom.ours or not nom.candidate.is_proxy:
            self._fail_protocol(
                f"peer sent activated for {cid!r}, which is not a proxy candidate it offered"
            )
        elif self.state is S5bState.AWAITING_ACTIVATED:
            self.state = S5bState.READY
        # else: READY already, a duplicate activated is harmless.

    def remote_proxy_error(self) -> None:
        """The peer could not reach or activate the nominated proxy (XEP-0260 §2.4)."""
        if self.state in _TERMINAL:
            return
        nom = self.nomination
        if nom is None or not nom.candidate.is_proxy:
            self._fail_protocol("peer sent proxy-error, but no proxy candidate is nominated")
            return
        self._set_failed(f"the peer could not use the proxy {nom.candidate.jid}")

    # -- internals ---------------------------------------------------------------

    def _check_can_report(self) -> None:
        if self._our_report is not None:
            raise LocalProtocolError("our S5B candidate-used/candidate-error was already sent")

    def _check_activating(self) -> None:
        if self.state is not S5bState.ACTIVATING:
            raise LocalProtocolError(f"no proxy activation pending (state {self.state.value})")

    def _set_their_report(self, report: str, what: str) -> None:
        if self._their_report is not None:
            if self._their_report == report:
                return  # a retransmitted duplicate
            self._fail_protocol(f"peer sent {what} after it had already reported")
            return
        self._their_report = report
        self._maybe_nominate()

    def _maybe_nominate(self) -> None:
        ours, theirs = self._our_report, self._their_report
        if ours is None or theirs is None or self.state is not S5bState.CONNECTING:
            return
        # XEP-0260 §2.4 "Completing the Negotiation".
        mine = self._remote[ours] if ours else None  # the peer's candidate we connected to
        peers = self._local[theirs] if theirs else None  # our candidate the peer connected to
        if mine is None and peers is None:
            self._set_failed("neither side could connect to any S5B candidate")
            return
        nom: Nomination
        if peers is None:
            assert mine is not None
            nom = Nomination(mine, ours=False)
        elif mine is None:
            nom = Nomination(peers, ours=True)
        elif mine.priority != peers.priority:
            # Rule 3: the higher priority wins.
            nom = (
                Nomination(mine, False)
                if mine.priority > peers.priority
                else Nomination(peers, True)
            )
        else:
            # Rule 4: equal priorities -> the candidate the initiator picked.
            nom = Nomination(mine, False) if self.role == "initiator" else Nomination(peers, True)
        self.nomination = nom
        if not nom.candidate.is_proxy:
            self.state = S5bState.READY
        elif nom.ours:
            self.state = S5bState.ACTIVATING
        else:
            self.state = S5bState.AWAITING_ACTIVATED

    def _set_failed(self, reason: str) -> None:
        self.state = S5bState.FAILED
        self.failure_reason = reason

    def _fail_protocol(
        self,
        msg: str,
        *,
        condition: str = "bad-request",
        jingle_condition: str | None = None,
    ) -> None:
        self.state = S5bState.ERROR
        self.error = RemoteProtocolError(
            msg,
            condition=condition,
            jingle_condition=jingle_condition,
        )


def sort_by_priority(candidates: Sequence[S5bCandidate]) -> list[S5bCandidate]:
    """Candidates best first; equal priorities keep their order (XEP-0260 §4 rule 1)."""
    return sorted(candidates, key=lambda c: -c.priority)
