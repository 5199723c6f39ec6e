"""The scripted peer's side of a Jingle SOCKS5 negotiation (XEP-0260 §2.2–§2.4): offer
candidates, dial the other side's, report candidate-used / candidate-error, nominate,
activate a proxy, and hand back the one connection that carries the bytes.

Each client module (conversations.py, dino.py) chooses the shapes: priorities, whether
``dstaddr``/``mode`` are sent, the DST.ADDR it computes, whether an ``initiator`` attribute
goes on every action. The SOCKS5 bytes themselves are peer.py's.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from .peer import (
    JINGLE,
    S5B,
    Listener,
    PeerError,
    ScriptedPeer,
    proxy65_activate,
    s5b_connect,
    s5b_dstaddr,
)

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Candidate:
    """One <candidate/> (XEP-0260 §2.2)."""

    cid: str
    host: str
    port: int
    jid: str
    priority: int
    type: str = "direct"

    def xml(self) -> str:
        return (f"<candidate cid='{self.cid}' host='{self.host}' jid='{self.jid}' "
                f"port='{self.port}' priority='{self.priority}' type='{self.type}'/>")


def s5b_transport(jingle: ET.Element) -> ET.Element | None:
    return jingle.find(f"{{{JINGLE}}}content/{{{S5B}}}transport")


def candidates_of(jingle: ET.Element) -> list[Candidate]:
    """The candidates an offer (initiate, accept, replace) carries."""
    transport = s5b_transport(jingle)
    if transport is None:
        return []
    return [Candidate(str(c.get("cid")), str(c.get("host")), int(c.get("port", "1080")),
                      str(c.get("jid")), int(c.get("priority", "0")),
                      c.get("type", "direct"))
            for c in transport.findall(f"{{{S5B}}}candidate")]


def report_of(jingle: ET.Element) -> tuple[str, str | None] | None:
    """(kind, cid) of a transport-info: candidate-used / candidate-error / activated /
    proxy-error (XEP-0260 §2.3/§2.4); None for anything else."""
    transport = s5b_transport(jingle)
    if jingle.get("action") != "transport-info" or transport is None:
        return None
    for child in transport:
        kind = child.tag.rpartition("}")[2]
        if kind in ("candidate-used", "candidate-error", "activated", "proxy-error"):
            return kind, child.get("cid")
    return None


@dataclass
class S5bSide:
    """Our half of one SOCKS5 negotiation."""

    peer: ScriptedPeer
    other: str  # the jinglefs client's full JID
    sid: str  # Jingle session id
    tsid: str  # the transport's sid
    content: str
    creator: str
    we_initiate: bool  # we are the Jingle initiator
    ours: list[Candidate]
    listener: Listener | None
    proxy_jid: str | None = None
    #: attributes every outgoing <jingle/> carries (Dino: initiator=…)
    jingle_attrs: str = ""
    #: DST.ADDR for the other side's candidates, and the one our own candidates use
    dst_theirs: str = ""
    dst_ours: str = ""
    #: what was sent and received, for asserts
    sent_reports: list[str] = field(default_factory=list)
    dial_timeout: float = 3.0

    def __post_init__(self) -> None:
        # Owner-first on both sides by default (docs/interop.md §3.4, §4.4).
        self.dst_theirs = self.dst_theirs or s5b_dstaddr(self.tsid, self.other, self.peer.jid)
        self.dst_ours = self.dst_ours or s5b_dstaddr(self.tsid, self.peer.jid, self.other)

    async def transport_info(self, inner: str) -> ET.Element:
        self.sent_reports.append(inner)
        return await self.peer.send_jingle(self.other, (
            f"<jingle xmlns='{JINGLE}' action='transport-info' sid='{self.sid}'"
            f"{self.jingle_attrs}><content creator='{self.creator}' name='{self.content}'>"
            f"<transport xmlns='{S5B}' sid='{self.tsid}'>{inner}</transport>"
            f"</content></jingle>"))

    async def dial(self, theirs: list[Candidate]) -> tuple[Candidate, Conn] | None:
        """Their candidates one at a time, best priority first (XEP-0260 §2.3)."""
        for cand in sorted(theirs, key=lambda c: -c.priority):
            try:
                conn = await asyncio.wait_for(
                    s5b_connect(cand.host, cand.port, self.dst_theirs), self.dial_timeout)
            except (OSError, TimeoutError, PeerError, asyncio.IncompleteReadError):
                continue
            return cand, conn
        return None

    async def their_report(self, *kinds: str) -> tuple[str, str | None]:
        while True:
            el = await self.peer.next_jingle("transport-info")
            report = report_of(el)
            if report is not None and report[0] in kinds:
                return report

    async def negotiate(self, theirs: list[Candidate], *, dial: bool = True,
                        on_ours_won: Callable[[Candidate], None] | None = None
                        ) -> Conn | None:
        """Dial, report, nominate (XEP-0260 §2.4: the higher priority, equal -> the
        initiator's pick) and return the connection; None when both sides failed."""
        used = await self.dial(theirs) if dial else None
        if used is None:
            await self.transport_info("<candidate-error/>")
        else:
            await self.transport_info(f"<candidate-used cid='{used[0].cid}'/>")
        kind, cid = await self.their_report("candidate-used", "candidate-error")
        mine = next((c for c in self.ours if c.cid == cid), None) \
            if kind == "candidate-used" else None
        if kind == "candidate-used" and mine is None:
            raise PeerError(f"candidate-used names a cid we never offered: {cid}")
        if used is None and mine is None:
            return None
        if mine is None:
            ours_wins = False
        elif used is None:
            ours_wins = True
        elif mine.priority != used[0].priority:
            ours_wins = mine.priority > used[0].priority
        else:
            ours_wins = not self.we_initiate  # the initiator's pick is a responder cand.
        if ours_wins:
            assert mine is not None
            if used is not None:
                used[1][1].close()
            if on_ours_won is not None:
                on_ours_won(mine)
            if mine.type == "proxy":
                return await self._activate(mine)
            return await self._accepted()
        assert used is not None
        if used[0].type == "proxy":
            await self.their_report("activated", "proxy-error")
        return used[1]

    async def _accepted(self) -> Conn:
        assert self.listener is not None
        reader, writer, addr = await asyncio.wait_for(self.listener.accepted, 10)
        if addr != self.dst_ours:
            raise PeerError(f"DST.ADDR {addr}, expected {self.dst_ours}")
        return reader, writer

    async def _activate(self, mine: Candidate) -> Conn:
        """Connect to our own proxy, activate it (XEP-0065 §6.3.5) with the transport
        sid, then send <activated/> (XEP-0260 §2.4)."""
        conn = await s5b_connect(mine.host, mine.port, self.dst_ours)
        reply = await proxy65_activate(self.peer, mine.jid, self.tsid, self.other)
        if reply.get("type") != "result":
            raise PeerError(f"proxy activation failed: {ET.tostring(reply)!r}")
        await self.transport_info(f"<activated cid='{mine.cid}'/>")
        return conn
