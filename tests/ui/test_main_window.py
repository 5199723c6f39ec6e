"""The main window against the fake façade: roster, drops, transfers, offers, connection."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from jinglefs import errors
from jinglefs.api import ConnectionLost, Reconnected
from jinglefs.events import (
    Accepted,
    Completed,
    Direction,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    Protection,
    TransportSelected,
    Verified,
)
from jinglefs_ui.accounts import AccountInfo
from jinglefs_ui.bridge import AUTH_FAILED, CONNECTING, LOST, OFFLINE, ONLINE, ClientBridge
from jinglefs_ui.models import TransferListModel
from jinglefs_ui.storage import MB, History, Preferences
from jinglefs_ui.widgets.main_window import MainWindow
from jinglefs_ui.widgets.offer_dialog import OfferDialog
from tests.fakes import HANG, FakeClient, FakeConnect, FakeOffer
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, roster, until

Run = Callable[[Coroutine[Any, Any, Any]], Any]
COL = TransferListModel


@dataclass
class App:
    window: MainWindow
    client: FakeClient
    connect: FakeConnect
    store: MemoryStore
    notifier: RecordingNotifier
    tmp: Path

    @property
    def model(self) -> TransferListModel:
        return self.window.transfers_model

    def cell(self, row: int, col: int) -> str:
        return str(self.model.index(row, col).data() or "")

    def statuses(self) -> list[str]:
        return [self.cell(r, COL.STATUS) for r in range(self.model.rowCount())]


def make_app(qtbot: Any, tmp: Path, *, client: FakeClient | None = None,
             prefs: Preferences | None = None, stored: bool = True) -> App:
    client = client or FakeClient("me@example.org/jinglefs", contacts=roster())
    connect = FakeConnect(client)
    store = MemoryStore(tmp, accounts=[AccountInfo("me@example.org")] if stored else [],
                        passwords={"me@example.org": "pw"} if stored else {})
    notifier = RecordingNotifier()
    bridge = ClientBridge(connect)
    window = MainWindow(bridge, store, prefs or Preferences(path=tmp / "prefs.json"),
                        History(tmp / "history.json"), notifier=notifier)
    qtbot.addWidget(window)
    window.show()
    return App(window, client, connect, store, notifier, tmp)


async def started(app: App) -> None:
    await app.window.start()
    await until(lambda: app.window.bridge.state == ONLINE, what="online")


def contact_pos(app: App, jid: str) -> QPoint:
    view = app.window.contacts_view
    idx = app.window.contacts_model.find(jid)
    assert idx.isValid(), jid
    view.scrollTo(idx)
    return view.visualRect(idx).center()


def drop(app: App, jid: str | None, urls: list[QUrl], text: str | None = None) -> bool:
    """A real drag-enter, drag-move and drop on the contacts view; True if accepted."""
    view = app.window.contacts_view
    pos = contact_pos(app, jid) if jid else QPoint(5, view.viewport().height() - 3)
    mime = QMimeData()
    if urls:
        mime.setUrls(urls)
    if text is not None:
        mime.setText(text)
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), enter)
    if not enter.isAccepted():  # Qt would never deliver the drop
        return False
    move = QDragMoveEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), move)
    if not move.isAccepted():
        return False
    ev = QDropEvent(QPointF(pos), actions, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), ev)
    return ev.isAccepted()


# -- roster -------------------------------------------------------------------------------

def test_roster_shows_presence_and_which_devices_can_receive(qtbot: Any, run: Run,
                                                              tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    run(started(app))
    m = app.window.contacts_model
    texts = [m.item(r).text() for r in range(m.rowCount())]
    # Contacts that can receive come first, offline ones last.
    assert texts[0].startswith("Alice\nalice@example.org · can receive files")
    assert texts[1].startswith("Dave\n")
    assert texts[2] == "Carol\ncarol@example.net · online, no file transfer"
    assert texts[3] == "Bob\nbob@example.org · offline"
    alice = m.item(0)
    devices = [alice.child(i).text() for i in range(alice.rowCount())]
    assert devices == [
        "laptop (jinglefs) · ICE, SOCKS5, in-band",
        "phone (Chat app) · away · cannot receive files",
    ]
    assert "Online as me@example.org/jinglefs" in app.window.connection_label.text()


# -- sending ------------------------------------------------------------------------------

def test_dropping_files_and_a_folder_on_a_contact_sends_them(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    a = tmp_path / "a.txt"
    a.write_bytes(b"a" * 2048)
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "1.jpg").write_bytes(b"1" * 10)

    async def scenario() -> None:
        await started(app)
        accepted = drop(app, "alice@example.org",
                        [QUrl.fromLocalFile(str(a)), QUrl.fromLocalFile(str(folder))])
        assert accepted
        await until(lambda: app.client.sent, what="send_files called")
        await until(lambda: app.statuses().count("Done (not verified)") == 2, what="done")

    run(scenario())
    call = app.client.sent[0]
    assert call.recipient == "alice@example.org"
    assert call.paths == [a, folder]
    # a folder is sent as its files, named with their folder (as the real client does)
    assert {app.cell(r, COL.FILE) for r in range(2)} == {"a.txt", "album/1.jpg"}
    assert app.cell(0, COL.PATH) == PathKind.S5B_DIRECT.label
    assert app.cell(0, COL.ENCRYPTION) == "No"
    assert app.window.message.text() == ""


def test_dropping_on_one_device_sends_to_that_full_jid(qtbot: Any, run: Run,
                                                       tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "f.bin"
    f.write_bytes(b"0")

    async def scenario() -> None:
        await started(app)
        app.window.contacts_view.expandAll()
        assert drop(app, "alice@example.org/laptop", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.client.sent, what="send")

    run(scenario())
    assert app.client.sent[0].recipient == "alice@example.org/laptop"


@pytest.mark.parametrize("what", ["url", "broken-link", "device", "unreadable-dir"])
def test_bad_drops_show_a_message_and_send_nothing(qtbot: Any, run: Run, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   what: str) -> None:
    app = make_app(qtbot, tmp_path)
    good = tmp_path / "good.txt"
    good.write_text("ok")
    if what == "url":
        bad, expect = QUrl("https://example.org/movie.mkv"), "is not a file on this computer"
    elif what == "broken-link":
        link = tmp_path / "link"
        link.symlink_to(tmp_path / "nowhere")
        bad, expect = QUrl.fromLocalFile(str(link)), "is a broken link"
    elif what == "device":
        bad, expect = QUrl.fromLocalFile("/dev/zero"), "is a device, not a file"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        from jinglefs_ui import files

        real = files._readable
        monkeypatch.setattr(files, "_readable",
                            lambda p, d: False if Path(p) == locked else real(p, d))
        bad, expect = QUrl.fromLocalFile(str(locked)), "is a folder that cannot be read"

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(good)), bad])
        await until(lambda: app.window.message.text(), what="a message")

    run(scenario())
    text = app.window.message.text()
    assert text.startswith("Nothing was sent:") and expect in text
    assert app.window.message.error
    assert app.client.sent == [] and app.model.rowCount() == 0


def test_drop_on_a_contact_without_capable_device_is_refused(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "f.txt"
    f.write_text("x")

    async def scenario() -> None:
        await started(app)
        drop(app, "carol@example.net", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.window.message.text(), what="a message")

    run(scenario())
    assert app.window.message.text() == ("Carol has no online device that can receive files "
                                         "right now. Nothing was sent.")
    assert app.client.sent == []


def test_drop_of_text_explains_and_empty_space_refuses(qtbot: Any, run: Run,
                                                        tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "f.txt"
    f.write_text("x")

    async def scenario() -> None:
        await started(app)
        assert not drop(app, None, [QUrl.fromLocalFile(str(f))])  # below the last contact
        assert not drop(app, "alice@example.org", [], text="just some text")

    run(scenario())
    assert app.window.message.text() == "Only files and folders can be dropped on a contact."
    assert app.client.sent == []


def test_send_file_action_uses_the_selected_contact(qtbot: Any, run: Run,
                                                    tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "notes.md"
    f.write_text("# hi")
    app.window.pick_files = lambda parent: [str(f)]

    async def scenario() -> None:
        await started(app)
        app.window.send_file_action.trigger()
        assert app.window.message.text() == "Select a contact first, then choose what to send."
        app.window.contacts_view.setCurrentIndex(
            app.window.contacts_model.find("dave@example.com"))
        app.window.send_file_action.trigger()
        await until(lambda: app.client.sent, what="send")

    run(scenario())
    assert app.client.sent[0].recipient == "dave@example.com"
    assert app.client.sent[0].paths == [f]


def test_progress_updates_then_verified(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "video.mp4"
    f.write_bytes(b"v" * 4000)
    info = FileInfo("video.mp4", 4000)
    t = "tv"
    app.client.outcomes["video.mp4"] = [
        Offered(t, peer="alice@example.org", direction=Direction.SEND, file=info),
        Accepted(t),
        TransportSelected(t, path=PathKind.ICE_DIRECT, detail="host 10.0.0.2",
                          encrypted=True, protection=Protection.DTLS),
        Progress(t, done=1000, total=4000, rate=500.0),
        HANG,
        Progress(t, done=4000, total=4000, rate=500.0),
        Verified(t, algo="sha-256", digest=b"\x02" * 32),
        Completed(t, path=str(f), size=4000, verified=True),
    ]

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])
        # The script stops at HANG after its Progress event: wait until that event shows
        # (the status turns "Sending" one event earlier, on TransportSelected).
        await until(lambda: app.model.rowCount() == 1 and app.cell(0, COL.STATUS) == "Sending"
                    and app.cell(0, COL.PROGRESS).startswith("25%"), what="sending, 25%")
        assert app.cell(0, COL.PROGRESS) == "25% of 3.9 KiB"
        assert app.model.index(0, COL.PROGRESS).data(
            __import__("jinglefs_ui.models", fromlist=["FRACTION_ROLE"]).FRACTION_ROLE) == 0.25
        assert app.cell(0, COL.SPEED) == "500 B/s, 6 s left"
        assert app.cell(0, COL.PATH) == "Direct (ICE, encrypted)"
        assert app.cell(0, COL.ENCRYPTION) == "Yes"
        app.window.transfers.select_row(0)
        assert app.window.transfers.cancel_button.isEnabled()
        assert not app.window.transfers.open_button.isEnabled() or True
        app.client.transfers[0].release()
        await until(lambda: app.cell(0, COL.STATUS) == "Done, verified ✓", what="verified")

    run(scenario())
    assert app.cell(0, COL.SPEED) == ""
    details = app.window.transfers.details.text()
    assert "Path: Direct (ICE, encrypted), encrypted (DTLS) [host 10.0.0.2]" in details
    assert not app.window.transfers.cancel_button.isEnabled()


def test_cancel_button_cancels_the_transfer(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "huge.iso"
    f.write_bytes(b"0" * 100)
    info = FileInfo("huge.iso", 100)
    app.client.outcomes["huge.iso"] = [
        Offered("th", peer="alice@example.org", direction=Direction.SEND, file=info),
        Accepted("th"), Progress("th", done=10, total=100, rate=1.0), HANG]

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.model.rowCount() == 1 and app.cell(0, COL.STATUS) == "Sending",
                    what="sending")
        app.window.transfers.select_row(0)
        qtbot.mouseClick(app.window.transfers.cancel_button, Qt.MouseButton.LeftButton)
        await until(lambda: app.cell(0, COL.STATUS).startswith("Cancelled"), what="cancelled")

    run(scenario())
    assert app.client.transfers[0].cancel_calls == 1
    # what jinglefs.handles.TransferHandle.cancel reports
    assert app.cell(0, COL.STATUS) == "Cancelled: The transfer was cancelled. (cancelled here)"


@pytest.mark.parametrize("error, status", [
    (errors.Declined("no thanks"), "Declined"),
    (errors.ChecksumMismatch("sha-256 differs"),
     "Failed: The received file does not match the sender's checksum; it was not saved. "
     "(sha-256 differs)"),
    (errors.CandidatesFailed("3 candidates tried"),
     "Failed: None of the network paths to the contact worked. (3 candidates tried)"),
])
def test_failures_show_their_reason(qtbot: Any, run: Run, tmp_path: Path,
                                    error: errors.JingleFSError, status: str) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "doc.pdf"
    f.write_bytes(b"%PDF")
    app.client.outcomes["doc.pdf"] = error

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.model.rowCount() == 1 and app.model.record(0).is_finished,
                    what="finished")

    run(scenario())
    assert app.cell(0, COL.STATUS) == status
    app.window.transfers.select_row(0)
    assert f"Status: {status}" in app.window.transfers.details.text()
    if status != "Declined":
        assert app.notifier.sent[-1][0] == "Could not send doc.pdf to Alice"


def test_send_refused_by_the_client_marks_the_row_failed(qtbot: Any, run: Run,
                                                         tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "x.txt"
    f.write_text("x")
    app.client.send_error = errors.RecipientUnavailable("alice has no capable device")

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.model.rowCount() == 1 and app.model.record(0).is_finished,
                    what="failed row")

    run(scenario())
    assert app.cell(0, COL.FILE) == "x.txt"
    assert app.cell(0, COL.STATUS) == (
        "Failed: The contact has no online device that can receive files directly. "
        "(alice has no capable device)")


def test_history_survives_a_restart(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "keep.txt"
    f.write_text("keep")

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.statuses() == ["Done (not verified)"], what="done")
        await until(lambda: (tmp_path / "history.json").exists(), what="history written")
        await app.window.bridge.aclose()

    run(scenario())
    again = make_app(qtbot, tmp_path)
    assert again.model.rowCount() == 1
    assert again.cell(0, COL.FILE) == "keep.txt"
    assert again.cell(0, COL.STATUS) == "Done (not verified)"
    assert again.model.record(0).local_path == str(f)
    again.window.transfers.select_row(0)
    assert again.window.transfers.open_button.isEnabled()
    qtbot.mouseClick(again.window.transfers.clear_button, Qt.MouseButton.LeftButton)
    assert again.model.rowCount() == 0


def test_open_file_and_folder(qtbot: Any, run: Run, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from jinglefs_ui.widgets import transfers_view

    opened: list[str] = []
    monkeypatch.setattr(transfers_view, "open_path", lambda p: opened.append(p) or True)
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "sub" / "o.txt"
    f.parent.mkdir()
    f.write_text("o")

    async def scenario() -> None:
        await started(app)
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])
        await until(lambda: app.statuses() == ["Done (not verified)"], what="done")

    run(scenario())
    panel = app.window.transfers
    panel.select_row(0)
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.folder_button, Qt.MouseButton.LeftButton)
    assert opened == [str(f), str(f.parent)]
    f.unlink()
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert app.window.message.text() == f"{f} is no longer there."


# -- receiving -------------------------------------------------------------------------

def offer_dialog(app: App) -> OfferDialog:
    assert len(app.window.offer_dialogs) == 1
    return app.window.offer_dialogs[0]


def test_offer_dialog_accept(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    offer = FakeOffer("alice@example.org/laptop",
                      [FileInfo("holiday.jpg", 3 * MB, "image/jpeg")], contents=[b"jpeg"])

    async def scenario() -> None:
        await started(app)
        app.client.push_offer(offer)
        await until(lambda: app.window.offer_dialogs, what="dialog")
        dlg = offer_dialog(app)
        assert dlg.isVisible()
        assert dlg.sender_label.text() == ("Alice (alice@example.org, device laptop) wants to "
                                           "send you a file (3.0 MiB).")
        item = dlg.files.topLevelItem(0)
        assert [item.text(i) for i in range(3)] == ["holiday.jpg", "3.0 MiB", "image/jpeg"]
        assert dlg.dest_label.text().startswith(f"Will be saved in {tmp_path / 'Downloads'}")
        qtbot.mouseClick(dlg.accept_button, Qt.MouseButton.LeftButton)
        await until(lambda: app.statuses() == ["Done, verified ✓"], what="received")

    run(scenario())
    assert offer.accepted_into == tmp_path / "Downloads"
    assert (tmp_path / "Downloads" / "holiday.jpg").read_bytes() == b"jpeg"
    assert app.notifier.sent[0] == ("Alice wants to send you a file",
                                    "holiday.jpg (3.0 MiB, image/jpeg)")
    assert app.notifier.sent[-1] == ("Received from Alice", "holiday.jpg (3.0 MiB), verified")
    assert app.model.record(0).direction is Direction.RECEIVE
    assert app.window.offer_dialogs == []


def test_offer_dialog_decline_and_close(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    first = FakeOffer("alice@example.org/laptop", [FileInfo("a.txt", 1)])
    second = FakeOffer("alice@example.org/laptop", [FileInfo("b.txt", 1)])

    async def scenario() -> None:
        await started(app)
        app.client.push_offer(first)
        await until(lambda: app.window.offer_dialogs, what="dialog 1")
        qtbot.mouseClick(offer_dialog(app).decline_button, Qt.MouseButton.LeftButton)
        await until(lambda: first.declined, what="declined")
        app.client.push_offer(second)
        await until(lambda: app.window.offer_dialogs, what="dialog 2")
        offer_dialog(app).close()  # closing the window is a "no" too
        await until(lambda: second.declined, what="declined by closing")

    run(scenario())
    assert first.accepted_into is None and second.accepted_into is None
    assert app.model.rowCount() == 0


def test_accept_as_renames_and_always_accept_rule(qtbot: Any, run: Run,
                                                   tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    target = tmp_path / "elsewhere" / "renamed.txt"
    first = FakeOffer("alice@example.org/laptop", [FileInfo("orig.txt", 2 * MB)])
    second = FakeOffer("alice@example.org/phone", [FileInfo("next.txt", 4 * MB)])
    too_big = FakeOffer("alice@example.org/phone", [FileInfo("big.txt", 9 * MB)])

    async def scenario() -> None:
        await started(app)
        app.client.push_offer(first)
        await until(lambda: app.window.offer_dialogs, what="dialog")
        dlg = offer_dialog(app)
        dlg.ask_save_path = lambda parent, suggested: str(target)
        dlg.remember.setChecked(True)
        dlg.limit.setValue(5)
        qtbot.mouseClick(dlg.accept_as_button, Qt.MouseButton.LeftButton)
        await until(lambda: first.accepted_into is not None, what="accepted")
        app.client.push_offer(second)  # within 5 MB: accepted without asking
        await until(lambda: second.accepted_into is not None, what="auto-accepted")
        assert app.window.offer_dialogs == []
        app.client.push_offer(too_big)  # over the limit: asked again
        await until(lambda: app.window.offer_dialogs, what="asked")

    run(scenario())
    assert first.accepted_into == target.parent and first.filenames == ["renamed.txt"]
    assert second.accepted_into == tmp_path / "Downloads"
    assert app.window.prefs.auto_accept == {"alice@example.org": 5 * MB}
    assert Preferences.load(tmp_path / "prefs.json").auto_accept == {"alice@example.org": 5 * MB}
    assert ("Receiving from Alice", "next.txt (4.0 MiB)") in app.notifier.sent


def test_strangers_are_asked_with_a_warning_or_declined(qtbot: Any, run: Run,
                                                        tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    asked = FakeOffer("mallory@evil.example/x", [FileInfo("free.exe", 10)], from_contact=False)
    refused = FakeOffer("mallory@evil.example/x", [FileInfo("again.exe", 10)],
                        from_contact=False)

    async def scenario() -> None:
        await started(app)
        app.client.push_offer(asked)
        await until(lambda: app.window.offer_dialogs, what="dialog")
        dlg = offer_dialog(app)
        assert dlg.stranger_label.text().startswith("⚠ This sender is not in your contacts.")
        assert dlg.remember.isHidden()
        dlg.reject()
        app.window.prefs.strangers = "decline"
        app.client.push_offer(refused)
        await until(lambda: refused.declined, what="declined")

    run(scenario())
    assert asked.declined
    assert app.window.offer_dialogs == []
    assert app.window.message.text().startswith("Declined again.exe (10 B) from "
                                                "mallory@evil.example/x")


def test_hostile_peer_file_names_are_shown_safely(qtbot: Any, run: Run,
                                                  tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    evil = "<b>bold</b>\u202egpj.exe\n\x07" + "x" * 4000 + ".txt"
    offer = FakeOffer("alice@example.org/laptop\u202e", [FileInfo(evil, 1, "text/plain\x1b")])

    async def scenario() -> None:
        await started(app)
        app.client.push_offer(offer)
        await until(lambda: app.window.offer_dialogs, what="dialog")

    run(scenario())
    dlg = offer_dialog(app)
    shown = dlg.files.topLevelItem(0).text(0)
    assert shown.startswith("<b>bold</b>\\u202egpj.exe\\u000a\\u0007xxx")
    assert shown.endswith(".txt") and len(shown) <= 80
    assert dlg.files.topLevelItem(0).text(2) == "text/plain\\u001b"
    assert "\u202e" not in dlg.sender_label.text()
    assert dlg.sender_label.textFormat() == Qt.TextFormat.PlainText
    title, body = app.notifier.sent[0]
    assert "\u202e" not in body and "\n" not in body and len(body) < 120


# -- connection -------------------------------------------------------------------------

def test_connection_loss_is_shown_and_the_app_follows_the_clients_reconnects(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    """The client reconnects by itself; the window shows what its events say, and never
    logs in again on its own (one reconnect loop: jinglefs.client)."""
    app = make_app(qtbot, tmp_path)
    label = app.window.connection_label

    async def scenario() -> None:
        await started(app)
        app.client.push_event(ConnectionLost("network unreachable"))
        await until(lambda: app.window.bridge.state == LOST, what="lost")
        assert label.text() == "Connection lost (network unreachable). Reconnecting…"
        assert app.window.message.text().startswith(
            "Connection lost (network unreachable). Reconnecting…\nFiles cannot be sent")
        app.client.push_event(ConnectionLost("connection refused", retry_in=5.0))
        await until(lambda: "refused" in label.text(), what="next attempt")
        assert label.text() == "Connection lost (connection refused). Reconnecting in 5 s…"
        app.client.push_event(Reconnected())
        await until(lambda: app.window.bridge.state == ONLINE, what="back")
        assert label.text() == "Online as me@example.org/jinglefs"
        assert app.window.message.text() == ""
        # The client's event stream ends (the client was closed): offline, no new login.
        await app.client.aclose()
        await until(lambda: app.window.bridge.state == OFFLINE, what="offline")
        assert label.text() == "The connection to the server was closed."
        assert len(app.connect.calls) == 1

    run(scenario())


def test_offline_start_is_left_to_the_clients_reconnect_loop(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    app.client.online = False  # connect() returned a client still trying to log in
    states: list[str] = []
    app.window.bridge.stateChanged.connect(lambda s, d: states.append(s))

    async def scenario() -> None:
        await app.window.start()
        await until(lambda: app.window.bridge.client is app.client, what="client")
        app.client.push_event(ConnectionLost("connection refused", retry_in=2.0))
        await until(lambda: app.window.bridge.state == LOST, what="lost")
        assert app.window.connection_label.text() == (
            "Connection lost (connection refused). Reconnecting in 2 s…")
        app.client.online = True
        app.client.push_event(Reconnected())
        await until(lambda: app.window.bridge.state == ONLINE, what="online")

    run(scenario())
    assert states == [CONNECTING, LOST, ONLINE]  # never "online" before it was
    [(_account, settings)] = app.connect.calls
    assert settings.retry_first_login
    assert app.window.contacts_model.rowCount() == 4


def test_a_refused_reconnect_asks_for_the_password_again(qtbot: Any, run: Run,
                                                        tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)

    async def scenario() -> None:
        await started(app)
        app.client.push_event(ConnectionLost("not-authorized", refused=True))
        await until(lambda: app.window.account_dialog is not None, what="dialog")

    run(scenario())
    assert app.window.bridge.state == AUTH_FAILED
    dlg = app.window.account_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.status.text() == ("Wrong password, or the server refused the account "
                                 "me@example.org.")


def test_sending_while_offline_sends_nothing(qtbot: Any, run: Run, tmp_path: Path) -> None:
    app = make_app(qtbot, tmp_path)
    f = tmp_path / "f.txt"
    f.write_text("x")

    async def scenario() -> None:
        await started(app)
        app.client.push_event(ConnectionLost("gone"))
        await until(lambda: app.window.bridge.state == LOST, what="lost")
        drop(app, "alice@example.org", [QUrl.fromLocalFile(str(f))])

    run(scenario())
    assert app.window.message.text().startswith("You are not connected to the server")
    assert app.client.sent == []
