"""One action of the sender, one accept dialog (docs/protocol.md §3.5).

The client hands the app one offer per action (a multi-content session, or one-file
sessions grouped by sender), so a folder of 6 files opens ONE dialog that lists every file
and the total size, and one click accepts them all, each written in its folder.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from jinglefs.events import FileInfo
from jinglefs_ui.text import human_size
from jinglefs_ui.widgets.offer_dialog import OfferDialog
from tests.fakes import HANG, FakeOffer
from tests.ui.fakes_gui import until
from tests.ui.test_main_window import COL, make_app, started

Run = Callable[[Coroutine[Any, Any, Any]], Any]
MB = 1024 * 1024

#: a folder of 6 files, two of them in a subfolder, as the sender's client offers it
FOLDER = [FileInfo("trip/itinerary.pdf", 182_000, "application/pdf"),
          FileInfo("trip/tickets.pdf", 96_500, "application/pdf"),
          FileInfo("trip/map.png", 2 * MB, "image/png"),
          FileInfo("trip/notes.txt", 1_234, "text/plain"),
          FileInfo("trip/day 2/fado.m4a", 18 * MB, "audio/mp4"),
          FileInfo("trip/day 2/tram.jpg", 3 * MB + 5, "image/jpeg")]
TOTAL = sum(f.size for f in FOLDER)


def rows(dlg: OfferDialog) -> list[tuple[str, str, str]]:
    items = [dlg.files.topLevelItem(i) for i in range(dlg.files.topLevelItemCount())]
    return [(it.text(0), it.text(1), it.text(2)) for it in items]


def test_the_dialog_lists_every_file_and_the_total(qtbot: Any, tmp_path: Path) -> None:
    dlg = OfferDialog(FakeOffer("bob@example.org/phone", FOLDER), "Bob", tmp_path)
    qtbot.addWidget(dlg)
    assert rows(dlg) == [(f.name, human_size(f.size), f.media_type) for f in FOLDER]
    assert dlg.windowTitle() == "Incoming files (6)"
    assert dlg.sender_label.text() == (f"Bob (bob@example.org, device phone) wants to send "
                                       f"you 6 files ({human_size(TOTAL)}).")
    assert dlg.total_label.text().startswith(f"6 files, {human_size(TOTAL)} in total, "
                                             "in 2 folders")
    assert dlg.accept_as_button.text() == "Accept &into…"


def test_a_folder_offer_is_one_dialog_and_one_accept(qtbot: Any, run: Run,
                                                     tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    contents = [bytes([i]) * (i + 1) for i in range(len(FOLDER))]
    offer = FakeOffer("alice@example.org/laptop", FOLDER, contents=contents)

    async def scenario() -> None:
        await started(app)
        app.client.push_offer(offer)
        await until(lambda: app.window.offer_dialogs, what="dialog")
        [dlg] = app.window.offer_dialogs  # one dialog for the six files
        assert [r[0] for r in rows(dlg)] == [f.name for f in FOLDER]
        assert human_size(TOTAL) in dlg.total_label.text()
        qtbot.mouseClick(dlg.accept_button, Qt.MouseButton.LeftButton)
        await until(lambda: app.model.rowCount() == 6 and all(
            s.startswith("Done") for s in app.statuses()), what="all six received")

    run(scenario())
    downloads = tmp_path / "Downloads"
    assert offer.accepted_into == downloads
    assert app.window.offer_dialogs == []
    for f, data in zip(FOLDER, contents, strict=True):
        assert downloads.joinpath(*f.name.split("/")).read_bytes() == data
    assert sorted(app.cell(r, COL.FILE) for r in range(6)) == sorted(f.name for f in FOLDER)


def test_the_transfers_panel_shows_the_total_of_the_running_files(qtbot: Any, run: Run,
                                                                  tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    slow = FOLDER[4]  # stops a quarter of the way (the fake's first Progress) until released
    offer = FakeOffer("alice@example.org/laptop", FOLDER, outcomes={slow.name: HANG})
    label = app.window.transfers.total_label

    async def scenario() -> None:
        await started(app)
        assert label.text() == "" and label.isHidden()  # nothing runs: no total
        app.client.push_offer(offer)
        await until(lambda: app.window.offer_dialogs, what="dialog")
        qtbot.mouseClick(app.window.offer_dialogs[0].accept_button, Qt.MouseButton.LeftButton)
        moved = TOTAL - slow.size + slow.size // 4
        expected = (f"Total: 5 of 6 files done, {human_size(moved)} of {human_size(TOTAL)} "
                    f"({moved * 100 // TOTAL}%)")
        await until(lambda: label.text() == expected, what=expected)
        assert not label.isHidden()
        [hung] = [t for t in offer.transfers if t.file.name == slow.name]
        hung.release()
        await until(lambda: label.text() == "", what="the total goes once all are done")

    run(scenario())
