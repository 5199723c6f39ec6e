"""One row of the Transfers panel, fed by the façade's events (no Qt here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    verified: bool = False
    reason: str = ""
    error: str = ""
    local_path: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None
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
            self.done = ev.offset
        elif isinstance(ev, TransportSelected):
            self.path_kind = ev.path
            self.path_detail = ev.detail
            self.encrypted = ev.encrypted or ev.path.encrypted
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
        if st == TransferState.CONNECTING.value:
            return "Connecting…"
        if st == TransferState.TRANSFERRING.value:
            return "Sending" if sending else "Receiving"
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
            "verified": self.verified,
            "reason": self.reason,
            "error": self.error,
            "local_path": self.local_path,
            "started": self.started,
            "finished": self.finished,
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
            verified=bool(d.get("verified")),
            reason=str(d.get("reason") or ""),
            error=str(d.get("error") or ""),
            local_path=str(d.get("local_path") or ""),
            started=float(d.get("started") or 0.0),
            finished=d.get("finished"),
            live=False,
        )
        if not rec.is_finished:  # the app quit in the middle of it
            rec.fail("Interrupted: jinglefs was closed during the transfer", "interrupted")
        return rec
