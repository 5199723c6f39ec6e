"""One row of the Transfers panel, fed by the façade's events (no Qt here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinglefs.errors import Cancelled, Declined, kind_of
from jinglefs.events import (
    FINAL_STATES,
    Accepted,
    Completed,
    Direction,
    Failed,
    PathKind,
    Progress,
    TransferEvent,
    TransferState,
    TransportSelected,
    Verified,
    next_state,
)

from .text import human_eta, human_rate, human_size, safe_text

#: A send that was dropped but whose offer has not been made yet.
PREPARING = "preparing"
FINISHED_STATES = tuple(s.value for s in FINAL_STATES)
_CANCELLED = kind_of(Cancelled)
_DECLINED = kind_of(Declined)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when_text(ts: float | None, now: float | None = None) -> str:
    """A short local date for a list: "today 14:02", "yesterday 09:10", "3 Dec",
    "3 Dec 2023"; empty when unknown."""
    if not ts or ts <= 0:
        return ""
    t = datetime.fromtimestamp(ts)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    hm = f"{t.hour:02d}:{t.minute:02d}"
    if t.date() == today:
        return f"today {hm}"
    if t.date() == today - timedelta(days=1):
        return f"yesterday {hm}"
    day = f"{t.day} {_MONTHS[t.month - 1]}"
    return day if t.year == today.year else f"{day} {t.year}"


def full_time_text(ts: float | None) -> str:
    """The whole local date and time: "3 Dec 2024, 14:02"; empty when unknown."""
    if not ts or ts <= 0:
        return ""
    t = datetime.fromtimestamp(ts)
    return f"{t.day} {_MONTHS[t.month - 1]} {t.year}, {t.hour:02d}:{t.minute:02d}"


def percent(part: int, whole: int) -> int:
    """``part`` of ``whole`` in whole percent, rounded down (41 for 41.9 %)."""
    return max(0, min(100, part * 100 // whole)) if whole > 0 else 0


@dataclass
class TransferRecord:
    id: str
    peer: str
    direction: Direction
    name: str
    size: int
    media_type: str = "application/octet-stream"
    state: str = TransferState.OFFERED.value
    done: int = 0
    rate: float = 0.0
    eta: float | None = None
    path_kind: PathKind | None = None
    path_detail: str = ""
    encrypted: bool = False
    #: what protected the bytes: "encrypted (OMEMO)", "encrypted (DTLS)", "not encrypted"
    protection: str = ""
    verified: bool = False
    reason: str = ""
    error: str = ""
    local_path: str = ""
    #: When the row began and ended (seconds since the epoch, kept in the history).
    started: float = field(default_factory=time.time)
    finished: float | None = None
    #: Bytes already on the receiver's disk when the transfer resumed (Accepted.offset).
    resumed_from: int = 0
    #: False for rows loaded from the history file (nothing can be done to them any more).
    live: bool = True

    # -- state -------------------------------------------------------------------------
    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == TransferState.COMPLETED.value

    @property
    def cancelled(self) -> bool:
        return self.error == _CANCELLED

    @property
    def transfer_state(self) -> TransferState:
        """``state`` as a TransferState (a placeholder counts as offered)."""
        try:
            return TransferState(self.state)
        except ValueError:
            return TransferState.OFFERED

    @property
    def can_cancel(self) -> bool:
        return self.live and not self.is_finished and self.state != PREPARING

    @property
    def fraction(self) -> float:
        if self.succeeded:
            return 1.0
        if self.size <= 0:
            return 0.0
        return max(0.0, min(1.0, self.done / self.size))

    def apply(self, ev: TransferEvent) -> None:
        """Update the row from one façade event; the state follows ``next_state``."""
        if self.is_finished:
            return  # the final event was the last one
        self.state = next_state(self.transfer_state, ev).value
        if isinstance(ev, Accepted):
            # XEP-0234 §6.4 (ranged transfer): the bytes before ``offset`` are already there.
            self.done = ev.offset
            self.resumed_from = max(0, ev.offset)
        elif isinstance(ev, TransportSelected):
            self.path_kind = ev.path
            self.path_detail = ev.detail
            self.encrypted = ev.encrypted or ev.path.encrypted
            self.protection = ev.protection.value
        elif isinstance(ev, Progress):
            self.done = ev.done
            if ev.total > 0:
                self.size = ev.total
            self.rate = ev.rate
            if ev.eta is not None:
                self.eta = ev.eta
            elif ev.rate > 0:
                self.eta = max(0.0, (self.size - self.done) / ev.rate)
            else:
                self.eta = None
        elif isinstance(ev, Verified):
            self.verified = True
        elif isinstance(ev, Completed):
            self.local_path = ev.path or self.local_path
            self.size = ev.size
            self.done = ev.size
            self.verified = self.verified or ev.verified
            if not self.verified and ev.reason:
                # e.g. "complete, not verified (the sender gave no hash)": the status's
                # tooltip shows it (docs/protocol.md §5.8)
                self.reason = ev.reason
            self._stop()
        elif isinstance(ev, Failed):
            self.fail(ev.reason, ev.error)

    def fail(self, reason: str, error: str = "failed") -> None:
        self.state = TransferState.FAILED.value
        self.reason = reason
        self.error = error
        self._stop()

    def _stop(self) -> None:
        self.rate = 0.0
        self.eta = None
        self.finished = time.time()

    # -- what the panel shows -------------------------------------------------------------
    @property
    def display_name(self) -> str:
        return safe_text(self.name)

    @property
    def display_peer(self) -> str:
        return safe_text(self.peer, 60)

    def speed_text(self) -> str:
        return human_rate(self.rate) if self.state == TransferState.TRANSFERRING.value else ""

    def eta_text(self) -> str:
        return human_eta(self.eta) if self.state == TransferState.TRANSFERRING.value else ""

    def path_text(self) -> str:
        return self.path_kind.label if self.path_kind else ""

    def encryption_text(self) -> str:
        if self.path_kind is None:
            return ""
        return "Encrypted" if self.encrypted else "Not encrypted"

    def protection_text(self) -> str:
        """What protected the file, as the CLI says it ("encrypted (OMEMO)", ...)."""
        if self.path_kind is None:
            return ""
        return self.protection or ("encrypted" if self.encrypted else "not encrypted")

    @property
    def resumed_percent(self) -> int | None:
        """How far the file already was when this transfer resumed, or None."""
        if self.resumed_from <= 0:
            return None
        return percent(self.resumed_from, self.size)

    def resumed_text(self) -> str:
        """"resumed at 41%" for a transfer that went on from a partial file, else ""."""
        pct = self.resumed_percent
        return "" if pct is None else f"resumed at {pct}%"

    def when_text(self, now: float | None = None) -> str:
        return when_text(self.started, now)

    def times_text(self) -> str:
        """"Started 3 Dec 2024, 14:02, finished 3 Dec 2024, 14:05" (what is known)."""
        started = full_time_text(self.started)
        if not started:
            return ""
        ended = full_time_text(self.finished) if self.is_finished else ""
        return f"Started {started}" + (f", finished {ended}" if ended else "")

    def progress_text(self) -> str:
        if self.succeeded:
            return human_size(self.size)
        return f"{int(self.fraction * 100)}% of {human_size(self.size)}"

    def status_text(self) -> str:
        sending = self.direction is Direction.SEND
        st = self.state
        if st == PREPARING:
            return "Preparing…"
        if st == TransferState.OFFERED.value:
            return "Waiting for an answer" if sending else "Offered"
        resumed = self.resumed_text()
        if st == TransferState.CONNECTING.value:
            return f"Connecting, {resumed}…" if resumed else "Connecting…"
        if st == TransferState.TRANSFERRING.value:
            verb = "Sending" if sending else "Receiving"
            return f"{verb}, {resumed}" if resumed else verb
        if st == TransferState.VERIFYING.value:
            return "Checking…"
        if st == TransferState.COMPLETED.value:
            return "Done, verified ✓" if self.verified else "Done (not verified)"
        if self.cancelled:
            return "Cancelled" + (f": {safe_text(self.reason, 200)}" if self.reason else "")
        if self.error == _DECLINED:
            return "Declined"
        return "Failed: " + safe_text(self.reason or "unknown error", 200)

    # -- history ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer": self.peer,
            "direction": self.direction.value,
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
            "state": self.state,
            "done": self.done,
            "path_kind": self.path_kind.value if self.path_kind else None,
            "path_detail": self.path_detail,
            "encrypted": self.encrypted,
            "protection": self.protection,
            "verified": self.verified,
            "reason": self.reason,
            "error": self.error,
            "local_path": self.local_path,
            "started": self.started,
            "finished": self.finished,
            "resumed_from": self.resumed_from,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferRecord:
        kind = d.get("path_kind")
        rec = cls(
            id=str(d["id"]),
            peer=str(d["peer"]),
            direction=Direction(d["direction"]),
            name=str(d["name"]),
            size=int(d["size"]),
            media_type=str(d.get("media_type") or "application/octet-stream"),
            state=str(d["state"]),
            done=int(d.get("done") or 0),
            path_kind=PathKind(kind) if kind else None,
            path_detail=str(d.get("path_detail") or ""),
            encrypted=bool(d.get("encrypted")),
            protection=str(d.get("protection") or ""),
            verified=bool(d.get("verified")),
            reason=str(d.get("reason") or ""),
            error=str(d.get("error") or ""),
            local_path=str(d.get("local_path") or ""),
            started=_time(d.get("started")) or 0.0,
            finished=_time(d.get("finished")),
            resumed_from=max(0, int(d.get("resumed_from") or 0)),
            live=False,
        )
        if not rec.is_finished:  # the app quit in the middle of it (when is not known)
            ended = rec.finished
            rec.fail("Interrupted: jinglefs was closed during the transfer", "interrupted")
            rec.finished = ended
        return rec


def _time(value: Any) -> float | None:
    """A timestamp read from the history file; None when missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value > 0 else None
