"""Desktop details: the quit question, Enter in the password field, a narrow window, dates
in the history, "resumed at N%", and Accept / Decline on an offer's notification."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, Qt, QUrl
from PySide6.QtWidgets import QFileDialog, QMessageBox

from jinglefs.cli.output import HumanView
from jinglefs.events import (
    Accepted,
    Direction,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    TransportSelected,
)
from jinglefs_ui.accounts import AccountInfo
from jinglefs_ui.bridge import ONLINE, ClientBridge
from jinglefs_ui.models import TransferListModel
from jinglefs_ui.notify import (
    ACCEPT_ACTION,
    DECLINE_ACTION,
    DEFAULT_ACTION,
    DesktopNotifier,
    SessionBusNotifications,
)
from jinglefs_ui.records import TransferRecord, full_time_text, when_text
from jinglefs_ui.storage import MB, History, Preferences
from jinglefs_ui.widgets.main_window import NARROW_WIDTH, MainWindow
from jinglefs_ui.widgets.transfers_view import COLUMN_WIDTHS, details_text, fit_columns
from tests.fakes import HANG, FakeClient, FakeConnect, FakeOffer
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, roster, until

Run = Callable[[Coroutine[Any, Any, Any]], Any]
COL = TransferListModel


@dataclass
class App:
    window: MainWindow
    client: FakeClient
    connect: FakeConnect
    notifier: Any
    quits: list[int] = field(default_factory=list)

    @property
    def model(self) -> TransferListModel:
        return self.window.transfers_model

    def cell(self, row: int, col: int) -> str:
        return str(self.model.index(row, col).data() or "")


def make(qtbot: Any, tmp: Path, *, notifier: Any = None, tray: bool = False,
         history: History | None = None) -> App:
    client = FakeClient("me@example.org/jinglefs", contacts=roster())
    connect = FakeConnect(client)
    store = MemoryStore(tmp, accounts=[AccountInfo("me@example.org")],
                        passwords={"me@example.org": "pw"})
    notifier = notifier if notifier is not None else RecordingNotifier()
    window = MainWindow(ClientBridge(connect), store, Preferences(path=tmp / "prefs.json"),
                        history or History(tmp / "history.json"), notifier=notifier,
                        tray_available=tray)
    qtbot.addWidget(window)
    app = App(window, client, connect, notifier)
    window.quitRequested.connect(lambda: app.quits.append(1))
    window.show()
    return app


async def online(app: App) -> None:
    await app.window.start()
    await until(lambda: app.window.bridge.state == ONLINE, what="online")


async def send_hanging(app: App, tmp: Path, name: str = "big.iso") -> None:
    """Drop a file on Alice whose transfer stays in the middle of its bytes."""
    f = tmp / name
    f.write_bytes(b"x" * 1000)
    app.client.outcomes[name] = HANG
    app.window.send_items("alice@example.org", True, [_item(f)])
    await until(lambda: app.model.rowCount() == 1 and app.cell(0, COL.STATUS) == "Sending",
                what="sending")


def _item(path: Path) -> Any:
    from jinglefs_ui.files import DroppedItem

    return DroppedItem(url=QUrl.fromLocalFile(str(path)).toString(), local_path=str(path))


def button(box: QMessageBox, text: str) -> Any:
    [found] = [b for b in box.buttons() if b.text().replace("&", "") == text]
    return found


# -- quitting while transfers run ---------------------------------------------------------

def test_quit_with_a_running_transfer_asks_and_keep_running_keeps_it(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)

    async def scenario() -> None:
        await online(app)
        await send_hanging(app, tmp_path)
        app.window.quit_action.trigger()
        box = app.window.quit_prompt
        assert box is not None and box.isVisible()
        assert box.text() == "1 transfer is still running."
        assert "Quitting stops them" in box.informativeText()
        assert box.defaultButton() is button(box, "Keep running")  # Enter keeps running
        qtbot.mouseClick(button(box, "Keep running"), Qt.MouseButton.LeftButton)
        await until(lambda: app.window.quit_prompt is None, what="prompt closed")

    run(scenario())
    assert app.quits == []
    assert app.cell(0, COL.STATUS) == "Sending"
    assert app.client.transfers[0].cancel_calls == 0
    assert app.window.isVisible()


def test_quit_confirmed_quits_once(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)

    async def scenario() -> None:
        await online(app)
        await send_hanging(app, tmp_path, "a.iso")
        await send_hanging_second(app, tmp_path)
        app.window.quit_action.trigger()
        app.window.quit_action.trigger()  # a second Quit raises the same question
        box = app.window.quit_prompt
        assert box is not None
        assert box.text() == "2 transfers are still running."
        assert len([w for w in app.window.findChildren(QMessageBox) if w.isVisible()]) == 1
        qtbot.mouseClick(button(box, "Quit"), Qt.MouseButton.LeftButton)
        await until(lambda: app.quits, what="quit")

    run(scenario())
    assert app.quits == [1]


async def send_hanging_second(app: App, tmp: Path) -> None:
    f = tmp / "b.iso"
    f.write_bytes(b"y" * 10)
    app.client.outcomes["b.iso"] = HANG
    app.window.send_items("alice@example.org", True, [_item(f)])
    await until(lambda: [app.cell(r, COL.STATUS) for r in range(app.model.rowCount())]
                == ["Sending", "Sending"], what="two sending")


def test_quit_without_running_transfers_does_not_ask(qtbot: Any, run: Run,
                                                      tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)
    f = tmp_path / "done.txt"
    f.write_text("done")

    async def scenario() -> None:
        await online(app)
        app.window.send_items("alice@example.org", True, [_item(f)])
        await until(lambda: app.model.rowCount() == 1 and app.model.record(0).is_finished,
                    what="finished")
        app.window.quit_action.trigger()

    run(scenario())
    assert app.window.quit_prompt is None
    assert app.quits == [1]


def test_closing_the_window_without_a_tray_asks_first(qtbot: Any, run: Run,
                                                      tmp_path: Path) -> None:
    app = make(qtbot, tmp_path, tray=False)

    async def scenario() -> None:
        await online(app)
        await send_hanging(app, tmp_path)
        assert not app.window.close()  # the close is refused while the question is open
        box = app.window.quit_prompt
        assert box is not None and box.isVisible() and app.window.isVisible()
        qtbot.mouseClick(button(box, "Keep running"), Qt.MouseButton.LeftButton)
        await until(lambda: app.window.quit_prompt is None, what="answered")
        assert app.quits == [] and app.window.isVisible()
        app.client.transfers[0].release()  # it finishes; closing now just quits
        await until(lambda: app.model.record(0).is_finished, what="finished")
        assert app.window.close()

    run(scenario())
    assert app.window.quit_prompt is None
    assert app.quits == [1]


def test_quit_from_the_tray_shows_the_window_and_asks(qtbot: Any, run: Run,
                                                      tmp_path: Path) -> None:
    app = make(qtbot, tmp_path, tray=True)

    async def scenario() -> None:
        await online(app)
        await send_hanging(app, tmp_path)
        app.window.close()  # to the tray: the transfer goes on
        assert not app.window.isVisible() and app.quits == []
        app.window.quit_action.trigger()  # the tray menu's Quit
        box = app.window.quit_prompt
        assert box is not None and box.isVisible()
        assert app.window.isVisible()  # what is still running is in view
        qtbot.mouseClick(button(box, "Quit"), Qt.MouseButton.LeftButton)
        await until(lambda: app.quits, what="quit")

    run(scenario())
    assert app.quits == [1]


# -- Enter in the password field -------------------------------------------------------

@pytest.mark.parametrize("field_name", ["password", "jid"])
def test_enter_in_the_account_dialog_connects(qtbot: Any, run: Run, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              field_name: str) -> None:
    opened: list[object] = []

    def no_file_dialog(*args: object, **kwargs: object) -> tuple[str, str]:
        opened.append(args)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(no_file_dialog))
    connect = FakeConnect(FakeClient("me@example.org/jinglefs", contacts=roster()))
    store = MemoryStore(tmp_path)
    window = MainWindow(ClientBridge(connect), store, Preferences(path=tmp_path / "p.json"),
                        History(None), notifier=RecordingNotifier())
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None and dlg.isVisible()
        qtbot.keyClicks(dlg.jid, "me@example.org")
        qtbot.keyClicks(dlg.password, "s3cret")
        target = getattr(dlg, field_name)
        target.setFocus()
        qtbot.keyClick(target, Qt.Key.Key_Return)
        await until(lambda: not dlg.isVisible(), what="dialog closed")
        await until(lambda: window.bridge.state == ONLINE, what="online")

    run(scenario())
    assert opened == []  # Enter never opens the certificate file dialog
    [(account, _settings)] = connect.calls
    assert (account.jid, account.password) == ("me@example.org", "s3cret")
    assert store.saved == [AccountInfo("me@example.org")]


def test_enter_with_a_bad_address_says_why_and_connects_nothing(qtbot: Any, run: Run,
                                                                tmp_path: Path) -> None:
    connect = FakeConnect(FakeClient())
    window = MainWindow(ClientBridge(connect), MemoryStore(tmp_path), Preferences(),
                        History(None), notifier=RecordingNotifier())
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None
        qtbot.keyClicks(dlg.jid, "not-an-address")
        qtbot.keyClicks(dlg.password, "pw")
        qtbot.keyClick(dlg.password, Qt.Key.Key_Enter)  # the keypad's Enter too

    run(scenario())
    dlg = window.account_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.status.text() == "Enter your address as name@server, for example alice@example.org."
    assert connect.calls == []


# -- a narrow window --------------------------------------------------------------------

def test_fit_columns_hides_the_contact_then_narrows_file_and_progress() -> None:
    wide = fit_columns(1000, COLUMN_WIDTHS)
    assert wide == (frozenset(), {COL.FILE: 160, COL.CONTACT: 110, COL.PROGRESS: 130,
                                  COL.STATUS: 165})
    # File + Progress + Status fit without the contact
    assert fit_columns(460, COLUMN_WIDTHS) == (frozenset({COL.CONTACT}), {
        COL.FILE: 160, COL.PROGRESS: 130, COL.STATUS: 165})
    # narrower: the file name gives way first, then the progress bar, the status last
    assert fit_columns(400, COLUMN_WIDTHS)[1] == {COL.FILE: 105, COL.PROGRESS: 130,
                                                  COL.STATUS: 165}
    assert fit_columns(330, COLUMN_WIDTHS)[1] == {COL.FILE: 80, COL.PROGRESS: 85,
                                                  COL.STATUS: 165}
    assert fit_columns(300, COLUMN_WIDTHS)[1] == {COL.FILE: 80, COL.PROGRESS: 70,
                                                  COL.STATUS: 150}
    for available in range(260, 1200, 7):
        hidden, widths = fit_columns(available, COLUMN_WIDTHS)
        assert COL.STATUS not in hidden and widths[COL.STATUS] >= 110
        if available >= 80 + 70 + 110:
            assert sum(widths.values()) <= available


def _status_fully_visible(app: App, row: int) -> tuple[bool, str]:
    table = app.window.transfers.table
    idx = app.model.index(row, COL.STATUS)
    text = app.cell(row, COL.STATUS)
    rect: QRect = table.visualRect(idx)
    needed = table.fontMetrics().horizontalAdvance(text) + 8  # the cell's margins
    inside = table.viewport().rect().contains(rect)
    return (not table.isColumnHidden(COL.STATUS) and inside and rect.width() >= needed,
            f"{text!r} in {rect} of {table.viewport().rect()}, needs {needed}")


def test_a_narrow_window_still_shows_each_transfers_status(qtbot: Any, run: Run,
                                                           tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)
    app.window.resize(1100, 640)

    async def scenario() -> None:
        await online(app)
        await send_hanging(app, tmp_path, "a-long-file-name-for-a-narrow-window.iso")

    run(scenario())
    win, panel = app.window, app.window.transfers
    assert not win.narrow and not panel.table.isColumnHidden(COL.CONTACT)
    ok, why = _status_fully_visible(app, 0)
    assert ok, why

    win.resize(420, 640)
    qtbot.waitUntil(lambda: win.width() == 420)
    assert win.narrow  # contacts above the transfers
    assert win.splitter.orientation() == Qt.Orientation.Vertical
    assert panel.table.isColumnHidden(COL.CONTACT)
    assert panel.table.viewport().width() < sum(COLUMN_WIDTHS.values())
    ok, why = _status_fully_visible(app, 0)
    assert ok, why
    assert app.cell(0, COL.STATUS) == "Sending"
    # every button is still on screen, inside the panel
    for b in (panel.cancel_button, panel.open_button, panel.folder_button,
              panel.clear_button):
        assert b.isVisible()
        top_left = b.mapTo(panel, b.rect().topLeft())
        assert panel.rect().contains(QRect(top_left, b.size())), b.text()

    win.resize(380, 640)
    qtbot.waitUntil(lambda: win.width() == 380)
    assert panel.compact  # the buttons went on two rows
    ok, why = _status_fully_visible(app, 0)
    assert ok, why

    win.resize(NARROW_WIDTH + 300, 640)  # wide again: side by side, every column back
    qtbot.waitUntil(lambda: not win.narrow)
    assert not panel.table.isColumnHidden(COL.CONTACT)
    assert panel.table.columnWidth(COL.FILE) == COLUMN_WIDTHS[COL.FILE]


def test_a_column_the_user_widened_is_kept_when_the_window_grows_again(
        qtbot: Any, tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)
    app.window.resize(1200, 640)
    panel = app.window.transfers
    qtbot.waitUntil(lambda: app.window.width() == 1200)
    panel.table.setColumnWidth(COL.FILE, 240)  # as a drag on the header does
    app.window.resize(420, 640)
    qtbot.waitUntil(lambda: app.window.narrow)
    assert panel.table.columnWidth(COL.FILE) < 240
    app.window.resize(1200, 640)
    qtbot.waitUntil(lambda: not app.window.narrow)
    assert panel.table.columnWidth(COL.FILE) == 240


# -- dates in the history ------------------------------------------------------------------

def _ts(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute).timestamp()  # local, as the app shows


def test_when_text_says_today_yesterday_or_the_date() -> None:
    now = _ts(2025, 12, 3, 18, 30)
    assert when_text(_ts(2025, 12, 3, 14, 2), now) == "today 14:02"
    assert when_text(_ts(2025, 12, 2, 9, 5), now) == "yesterday 09:05"
    assert when_text(_ts(2025, 11, 28, 23, 59), now) == "28 Nov"
    assert when_text(_ts(2024, 12, 3, 14, 2), now) == "3 Dec 2024"
    assert when_text(_ts(2026, 1, 1, 0, 0), _ts(2026, 1, 1, 0, 1)) == "today 00:00"
    assert when_text(0.0, now) == "" and when_text(None, now) == ""
    assert full_time_text(_ts(2024, 12, 3, 14, 2)) == "3 Dec 2024, 14:02"


def test_history_keeps_start_and_end_and_shows_the_date(qtbot: Any, tmp_path: Path) -> None:
    history = History(tmp_path / "history.json")
    old = TransferRecord(id="r1", peer="alice@example.org/laptop", direction=Direction.RECEIVE,
                         name="minutes.pdf", size=2048, state="completed", verified=True,
                         started=_ts(2024, 12, 3, 14, 2), finished=_ts(2024, 12, 3, 14, 5))
    history.add(old)
    interrupted = TransferRecord(id="r2", peer="bob@example.org/pc", direction=Direction.SEND,
                                 name="cut.mkv", size=10, state="transferring", done=4,
                                 started=_ts(2024, 12, 4, 9, 0))
    history.add(interrupted)

    again = History(tmp_path / "history.json").records()
    assert [(r.id, r.started, r.finished) for r in again] == [
        ("r1", _ts(2024, 12, 3, 14, 2), _ts(2024, 12, 3, 14, 5)),
        ("r2", _ts(2024, 12, 4, 9, 0), None),  # its end is not known: not "when loaded"
    ]
    app = make(qtbot, tmp_path, history=History(tmp_path / "history.json"))
    assert app.model.headerData(COL.WHEN, Qt.Orientation.Horizontal) == "When"
    # newest first; an older year shows the year
    assert [app.cell(r, COL.WHEN) for r in range(2)] == ["4 Dec 2024", "3 Dec 2024"]
    tip = app.model.index(1, COL.WHEN).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == "Started 3 Dec 2024, 14:02, finished 3 Dec 2024, 14:05"
    app.window.transfers.select_row(1)
    assert app.window.transfers.details.text().endswith(
        "Started 3 Dec 2024, 14:02, finished 3 Dec 2024, 14:05")
    assert not app.window.transfers.table.isColumnHidden(COL.WHEN)


def test_a_transfer_of_today_says_today(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)
    f = tmp_path / "now.txt"
    f.write_text("now")

    async def scenario() -> None:
        await online(app)
        app.window.send_items("alice@example.org", True, [_item(f)])
        await until(lambda: app.model.rowCount() == 1 and app.model.record(0).is_finished,
                    what="finished")
        await until(lambda: History(tmp_path / "history.json").records(), what="saved")

    run(scenario())
    rec = app.model.record(0)
    assert rec is not None and rec.finished is not None and rec.finished >= rec.started
    assert app.cell(0, COL.WHEN) == when_text(rec.started)
    assert app.cell(0, COL.WHEN).startswith("today ")
    [saved] = History(tmp_path / "history.json").records()
    assert (saved.started, saved.finished) == (rec.started, rec.finished)


# -- resumed transfers -----------------------------------------------------------------------

def test_a_resumed_transfer_says_resumed_at(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make(qtbot, tmp_path)
    f = tmp_path / "movie.mkv"
    f.write_bytes(b"m" * 1000)
    t = "tr"
    info = FileInfo("movie.mkv", 1000)
    app.client.outcomes["movie.mkv"] = [
        Offered(t, peer="alice@example.org", direction=Direction.SEND, file=info),
        Accepted(t, offset=419),  # the receiver already had 41.9 %
        TransportSelected(t, path=PathKind.S5B_DIRECT),
        Progress(t, done=600, total=1000, rate=100.0),
        HANG,
    ]

    async def scenario() -> None:
        await online(app)
        app.window.send_items("alice@example.org", True, [_item(f)])
        await until(lambda: app.model.rowCount() == 1
                    and app.cell(0, COL.PROGRESS) == "60% of 1000 B", what="progress")

    run(scenario())
    assert app.cell(0, COL.STATUS) == "Sending, resumed at 41%"
    app.window.transfers.select_row(0)
    details = app.window.transfers.details.text()
    assert "Resumed at 41%: 419 B were already there from an earlier attempt" in details
    rec = app.model.record(0)
    assert rec is not None and rec.resumed_from == 419


def test_resumed_status_in_each_state_and_in_the_history(tmp_path: Path) -> None:
    rec = TransferRecord(id="x", peer="bob@example.org/pc", direction=Direction.RECEIVE,
                         name="iso", size=2000)
    rec.apply(Accepted("x", offset=820))
    assert (rec.done, rec.fraction) == (820, 0.41)
    assert rec.status_text() == "Connecting, resumed at 41%…"
    rec.apply(Progress("x", done=900, total=2000))
    assert rec.status_text() == "Receiving, resumed at 41%"
    fresh = TransferRecord(id="y", peer="p@h/r", direction=Direction.RECEIVE, name="n",
                           size=10)
    fresh.apply(Accepted("y"))
    assert fresh.resumed_text() == "" and fresh.status_text() == "Connecting…"
    rec.fail("network gone")
    history = History(tmp_path / "h.json")
    history.add(rec)
    [back] = History(tmp_path / "h.json").records()
    assert back.resumed_from == 820 and back.resumed_percent == 41
    assert "Resumed at 41%: 820 B were already there" in details_text(back)


def test_the_cli_says_resumed_at_too() -> None:
    out = io.StringIO()
    view = HumanView(out, tty=False, color=False)
    view.event(Offered("c", peer="bob@example.org/pc", direction=Direction.RECEIVE,
                       file=FileInfo("big.iso", 10 * MB)))
    view.event(Accepted("c", offset=4_300_000))  # 41.0 % of 10 MiB
    view.event(Accepted("d"))  # a fresh start says nothing
    assert out.getvalue() == "big.iso: resumed at 41% (4.1 MiB already there)\n"


# -- Accept / Decline on the offer's notification ---------------------------------------------

@dataclass
class Shown:
    id: int
    summary: str
    body: str
    actions: dict[str, str]


class FakeNotificationServer:
    """org.freedesktop.Notifications as the Desktop Notifications Specification 1.2 says a
    server behaves: ids from 1 and never reused; actions are key/label pairs and shown
    only by a server with the "actions" capability; pressing one sends ActionInvoked then
    NotificationClosed (reason 2, dismissed); CloseNotification closes with reason 3 and
    is an error for a notification that is gone.  Replies come on a later loop turn, as
    over the bus."""

    def __init__(self, capabilities: tuple[str, ...] = ("actions", "body")) -> None:
        self.capabilities = list(capabilities)
        self.shown: dict[int, Shown] = {}
        self.log: list[Shown] = []
        self.closed: list[tuple[int, int]] = []
        self.close_calls: list[int] = []
        self._next = 1
        self._listeners: list[tuple[Callable[[int, str], None],
                                    Callable[[int, int], None]]] = []

    async def get_capabilities(self) -> list[str]:
        await asyncio.sleep(0)
        return list(self.capabilities)

    async def notify(self, summary: str, body: str, actions: Any) -> int:
        actions = list(actions)
        assert all(isinstance(a, str) for a in actions) and len(actions) % 2 == 0, actions
        keys = actions[0::2]
        assert len(set(keys)) == len(keys), f"duplicate action keys {keys}"
        await asyncio.sleep(0)
        nid, self._next = self._next, self._next + 1
        shown = Shown(nid, summary, body, dict(zip(keys, actions[1::2], strict=True))
                      if "actions" in self.capabilities else {})
        self.shown[nid] = shown
        self.log.append(shown)
        return nid

    async def close_notification(self, notification_id: int) -> None:
        self.close_calls.append(notification_id)
        await asyncio.sleep(0)
        if notification_id not in self.shown:
            raise OSError("D-Bus error: no such notification")
        self._close(notification_id, 3)

    def listen(self, action_invoked: Callable[[int, str], None],
               notification_closed: Callable[[int, int], None]) -> None:
        self._listeners.append((action_invoked, notification_closed))

    async def aclose(self) -> None:
        self._listeners.clear()

    # -- what the user (or another application) does --
    def press(self, nid: int, key: str) -> None:
        shown = self.shown[nid]  # KeyError: not on screen
        if key not in shown.actions:
            raise AssertionError(f"notification {nid} has no button {key!r}: {shown}")
        for invoked, _closed in self._listeners:
            invoked(nid, key)
        self._close(nid, 2)

    def dismiss(self, nid: int) -> None:
        self._close(nid, 2)

    def signal_for_another_app(self, nid: int, key: str) -> None:
        for invoked, _closed in self._listeners:
            invoked(nid, key)

    def _close(self, nid: int, reason: int) -> None:
        del self.shown[nid]
        self.closed.append((nid, reason))
        for _invoked, closed in self._listeners:
            closed(nid, reason)


def notified_app(qtbot: Any, run: Run, tmp: Path, capabilities: tuple[str, ...] = (
        "actions", "body")) -> tuple[App, FakeNotificationServer, RecordingNotifier]:
    server = FakeNotificationServer(capabilities)
    plain = RecordingNotifier()
    notifier = DesktopNotifier(server, plain)
    run(notifier.start())
    return make(qtbot, tmp, notifier=notifier), server, plain


OFFER_ACTIONS = {DEFAULT_ACTION: "Show", ACCEPT_ACTION: "Accept", DECLINE_ACTION: "Decline"}


def test_accept_on_the_notification_accepts_into_the_download_folder(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, plain = notified_app(qtbot, run, tmp_path)
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("song.flac", 3 * MB, "audio/flac")],
                      contents=[b"flac"])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: server.shown, what="notification")
        [shown] = server.shown.values()
        assert shown.summary == "Alice wants to send you a file"
        assert shown.body == "song.flac (3.0 MiB, audio/flac)"
        assert shown.actions == OFFER_ACTIONS
        assert len(app.window.offer_dialogs) == 1  # the dialog is there as well
        server.press(shown.id, ACCEPT_ACTION)
        await until(lambda: offer.accepted_into is not None, what="accepted")
        await until(lambda: app.model.rowCount() == 1 and app.model.record(0).is_finished,
                    what="received")

    run(scenario())
    assert offer.accepted_into == tmp_path / "Downloads" and offer.filenames is None
    assert (tmp_path / "Downloads" / "song.flac").read_bytes() == b"flac"
    assert app.window.offer_dialogs == []  # the dialog closed without declining
    assert not offer.declined
    assert app.window.prefs.auto_accept == {}  # no "always accept" rule from a button
    assert server.close_calls == []  # the server closed it itself
    assert plain.sent[0] == ("Received from Alice", "song.flac (3.0 MiB), verified")


def test_decline_on_the_notification_declines(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, _plain = notified_app(qtbot, run, tmp_path)
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("a.txt", 1), FileInfo("b.txt", 2)])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: server.shown, what="notification")
        [shown] = server.shown.values()
        assert shown.summary == "Alice wants to send you 2 files"
        server.press(shown.id, DECLINE_ACTION)
        await until(lambda: offer.declined, what="declined")

    run(scenario())
    assert offer.accepted_into is None
    assert app.window.offer_dialogs == [] and app.model.rowCount() == 0


def test_answering_in_the_dialog_withdraws_the_notification(qtbot: Any, run: Run,
                                                            tmp_path: Path) -> None:
    app, server, _plain = notified_app(qtbot, run, tmp_path)
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("x.txt", 1)])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: server.shown, what="notification")
        [nid] = server.shown
        qtbot.mouseClick(app.window.offer_dialogs[0].decline_button,
                         Qt.MouseButton.LeftButton)
        await until(lambda: not server.shown, what="withdrawn")
        assert server.closed == [(nid, 3)]  # CloseNotification
        # a late press (a server that showed it elsewhere) changes nothing
        server.signal_for_another_app(nid, ACCEPT_ACTION)

    run(scenario())
    assert offer.declined and offer.accepted_into is None


def test_the_dialog_answered_before_the_server_replied_still_withdraws(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, _plain = notified_app(qtbot, run, tmp_path)
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("quick.txt", 1)])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: app.window.offer_dialogs, what="dialog")
        app.window.offer_dialogs[0].reject()  # before Notify's reply came
        await until(lambda: server.log and not server.shown, what="shown, then withdrawn")

    run(scenario())
    assert [s.summary for s in server.log] == ["Alice wants to send you a file"]
    assert server.closed == [(server.log[0].id, 3)]
    assert offer.declined


def test_a_strangers_offer_has_no_accept_button(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, _plain = notified_app(qtbot, run, tmp_path)
    offer = FakeOffer("mallory@evil.example/x", [FileInfo("free.exe", 10)], from_contact=False)

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: server.shown, what="notification")
        [shown] = server.shown.values()
        assert shown.actions == {DEFAULT_ACTION: "Show", DECLINE_ACTION: "Decline"}
        with pytest.raises(AssertionError, match="no button 'accept'"):
            server.press(shown.id, ACCEPT_ACTION)
        app.window.hide()
        server.press(shown.id, DEFAULT_ACTION)  # clicking the notification shows the dialog

    run(scenario())
    assert app.window.isVisible()
    assert len(app.window.offer_dialogs) == 1 and app.window.offer_dialogs[0].isVisible()
    assert not offer.answered


def test_accept_that_the_dialog_would_not_allow_opens_the_dialog(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, _plain = notified_app(qtbot, run, tmp_path)
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("big.bin", 10)])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: server.shown, what="notification")
        dlg = app.window.offer_dialogs[0]
        dlg.accept_button.setEnabled(False)  # e.g. nothing chosen, or no room
        dlg.hide()
        server.press(next(iter(server.shown)), ACCEPT_ACTION)

    run(scenario())
    assert not offer.answered
    assert app.window.offer_dialogs[0].isVisible()


def test_without_the_actions_capability_the_notification_is_plain(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, plain = notified_app(qtbot, run, tmp_path, capabilities=("body",))
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("p.jpg", 5, "image/jpeg")])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: app.window.offer_dialogs, what="dialog")

    run(scenario())
    assert server.log == []  # nothing through the server: today's notifier
    assert plain.sent == [("Alice wants to send you a file", "p.jpg (5 B, image/jpeg)")]


def test_markup_servers_get_an_escaped_body(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app, server, _plain = notified_app(qtbot, run, tmp_path,
                                       capabilities=("actions", "body", "body-markup"))
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("<b>a&b</b>.txt", 1, "text/x")])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: server.shown, what="notification")

    run(scenario())
    assert server.log[0].body == "&lt;b&gt;a&amp;b&lt;/b&gt;.txt (1 B, text/x)"


def test_a_refused_notification_falls_back_to_the_plain_one(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    app, server, plain = notified_app(qtbot, run, tmp_path)

    async def refuse(summary: str, body: str, actions: Any) -> int:
        raise OSError("D-Bus error: org.freedesktop.DBus.Error.ServiceUnknown")

    server.notify = refuse  # type: ignore[method-assign]
    offer = FakeOffer("alice@example.org/laptop", [FileInfo("r.txt", 1, "text/plain")])

    async def scenario() -> None:
        await online(app)
        app.client.push_offer(offer)
        await until(lambda: plain.sent, what="plain notification")

    run(scenario())
    assert plain.sent == [("Alice wants to send you a file", "r.txt (1 B, text/plain)")]
    assert len(app.window.offer_dialogs) == 1


# -- the session-bus adapter, against a notification server on a private bus -----------------

def test_the_session_bus_adapter_speaks_the_specs_signatures(
        run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private dbus-daemon and a jeepney notification server that, like GDBus servers,
    refuses calls whose signature differs from the spec's (Notify ``susssasa{sv}i``,
    CloseNotification ``u``)."""
    assert shutil.which("dbus-daemon"), "dbus-daemon missing: bash scripts/setup installs it"
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        assert address.startswith("unix:")
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        server = _BusNotificationServer(address)
        server.start()
        try:
            events: list[tuple[str, int, Any]] = []

            async def scenario() -> None:
                bus = await SessionBusNotifications.open()
                bus.listen(lambda n, k: events.append(("action", n, k)),
                           lambda n, r: events.append(("closed", n, r)))
                assert await bus.get_capabilities() == ["actions", "body"]
                nid = await bus.notify("Alice wants to send you a file", "a.txt (1 B)",
                                       ["default", "Show", "accept", "Accept"])
                assert nid == 1
                await until(lambda: len(events) == 2, what="ActionInvoked and closed")
                await bus.close_notification(7)
                await until(lambda: len(events) == 3, what="closed by us")
                await bus.aclose()

            run(scenario())
        finally:
            server.stop()
        assert events == [("action", 1, "accept"), ("closed", 1, 2), ("closed", 7, 3)]
        assert server.calls == [("GetCapabilities", ""),
                                ("Notify", "susssasa{sv}i"), ("CloseNotification", "u")]
        assert server.notified[0][5] == ["default", "Show", "accept", "Accept"]
        assert server.notified[0][6] == {"desktop-entry": ("s", "org.jinglefs.JingleFS")}
    finally:
        daemon.terminate()
        daemon.wait(10)


class _BusNotificationServer(threading.Thread):
    """A strict org.freedesktop.Notifications on a bus (blocking jeepney, own thread):
    presses "accept" on every notification that offers it."""

    SIGNATURES = {"GetCapabilities": "", "Notify": "susssasa{sv}i", "CloseNotification": "u"}

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        self.calls: list[tuple[str, str]] = []
        self.notified: list[tuple[Any, ...]] = []
        self._stop_flag = False
        from jeepney import message_bus

        self.conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.Notifications"))

    def stop(self) -> None:
        self._stop_flag = True
        self.join(10)
        self.conn.close()

    def run(self) -> None:
        from jeepney import (
            DBusAddress,
            HeaderFields,
            MessageType,
            new_error,
            new_method_return,
            new_signal,
        )

        emitter = DBusAddress("/org/freedesktop/Notifications",
                              interface="org.freedesktop.Notifications")
        while not self._stop_flag:
            try:
                msg = self.conn.receive(timeout=0.2)
            except TimeoutError:
                continue
            if msg.header.message_type != MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            signature = msg.header.fields.get(HeaderFields.signature, "")
            self.calls.append((member, signature))
            if self.SIGNATURES.get(member) != signature:
                self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs"))
            elif member == "GetCapabilities":
                self.conn.send(new_method_return(msg, "as", (["actions", "body"],)))
            elif member == "Notify":
                self.notified.append(tuple(msg.body))
                nid = len(self.notified)
                self.conn.send(new_method_return(msg, "u", (nid,)))
                if "accept" in msg.body[5]:
                    self.conn.send(new_signal(emitter, "ActionInvoked", "us", (nid, "accept")))
                    self.conn.send(new_signal(emitter, "NotificationClosed", "uu", (nid, 2)))
            elif member == "CloseNotification":
                self.conn.send(new_method_return(msg))
                self.conn.send(new_signal(emitter, "NotificationClosed", "uu",
                                          (msg.body[0], 3)))


def test_no_session_bus_means_no_buttons(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from jinglefs_ui.notify import make_notifier

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/jinglefs-test-bus")
    notifier = make_notifier(None)
    assert isinstance(notifier, DesktopNotifier)
    run(until(lambda: notifier.capabilities is not None, what="capabilities"))
    assert notifier.capabilities == frozenset()
    assert not notifier.supports_actions
    assert notifier.ask("t", "b", [(ACCEPT_ACTION, "Accept")], lambda k: None) is None

