"""The Transfers panel says what "verified" means on each side (docs/protocol.md §5.8):
"Done, verified ✓" only when a digest was compared, else "Done (not verified)" with the
reason in the status's tooltip, kept in the history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from jinglefs.events import Direction, FileInfo, Verification
from jinglefs_ui.models import TransferListModel
from jinglefs_ui.records import TransferRecord
from jinglefs_ui.storage import History
from tests.fakes import success_script

CASES = [
    (Direction.SEND, True, "Done, verified ✓", None),
    (Direction.SEND, False, "Done (not verified)", Verification.NOT_CONFIRMED),
    (Direction.RECEIVE, True, "Done, verified ✓", None),
    (Direction.RECEIVE, False, "Done (not verified)", Verification.NO_SENDER_HASH),
]


@pytest.mark.parametrize("direction, verified, status, why", CASES)
def test_status_and_its_tooltip(qapp: Any, tmp_path: Path, direction: Direction,
                                verified: bool, status: str, why: Verification | None) -> None:
    info = FileInfo("x.bin", 10)
    rec = TransferRecord("t1", "bob@example.org/pc", direction, info.name, info.size)
    for step in success_script("t1", info, peer=rec.peer, direction=direction,
                               verified=verified):
        rec.apply(step)  # type: ignore[arg-type]
    assert rec.succeeded and rec.verified is verified
    assert rec.status_text() == status
    model = TransferListModel()
    model.add(rec)
    tip = model.data(model.index(0, TransferListModel.STATUS), Qt.ItemDataRole.ToolTipRole)
    assert tip == (status if why is None else f"{status}: {why.text}")
    History(tmp_path / "h.json").add(rec)
    [again] = History(tmp_path / "h.json").records()
    assert again.status_text() == status and again.reason == rec.reason
    assert again.reason == ("" if why is None else why.text)
