"""The Transfers panel's total line: how far the transfers running now have come together
(per-file progress is in each row).  No Qt here.

A *batch* is every transfer seen running since the last moment nothing ran: a folder of 6
files is one batch, so its total goes from 0 to 100 % once, even as files finish.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import TransferRecord
from .text import human_size

__all__ = ["TotalProgress"]


class TotalProgress:
    def __init__(self) -> None:
        self._batch: set[str] = set()

    def update(self, records: Iterable[TransferRecord]) -> str:
        """The total line for the current records; "" when nothing runs."""
        records = list(records)
        running = [r for r in records if r.live and not r.is_finished]
        if not running:
            self._batch.clear()
            return ""
        self._batch.update(r.id for r in running)
        batch = [r for r in records if r.id in self._batch]
        size = sum(r.size for r in batch)
        moved = sum(r.size if r.succeeded else min(r.done, r.size) for r in batch)
        done = sum(1 for r in batch if r.succeeded)
        percent = moved * 100 // size if size else 100
        return (f"Total: {done} of {len(batch)} file{'s' if len(batch) != 1 else ''} done, "
                f"{human_size(moved)} of {human_size(size)} ({percent}%)")
