"""The desktop app end to end: the real client, a real Prosody, real files, real Qt events.

Alice runs the app (main window + bridge on a qasync loop, offscreen) and logs in with the
real ``jinglefs.client.connect``; Bob is a headless real client on the same loop.  Files are
sent by dropping them on Bob's row with real drag-and-drop events, and received by clicking
Accept in the offer dialog.  Nothing is faked between the widgets and the XMPP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from jinglefs.api import OfferLike, Settings, Timeouts, TransferLike
from jinglefs.client import Client, connect
from jinglefs.events import Completed, Direction, PathKind, TransferState, TransportSelected
from jinglefs_ui.accounts import AccountInfo
from jinglefs_ui.bridge import ONLINE, ClientBridge, default_connect
from jinglefs_ui.models import CAN_RECEIVE_ROLE, TransferListModel
from jinglefs_ui.records import TransferRecord
from jinglefs_ui.storage import History, Preferences
from jinglefs_ui.text import human_size
from jinglefs_ui.widgets.main_window import MainWindow
from jinglefs_ui.widgets.offer_dialog import OfferDialog
from tests.servers.prosody import ProsodyServer
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, until

pytestmark = pytest.mark.e2e

T = TypeVar("T")
COL = TransferListModel
#: Short limits so that a broken path fails the test instead of hanging it.
SETTINGS = Settings(timeouts=Timeouts(connect=15, accept=30, iq=15, transport=10, stall=20,
                                      peer_gone=3))
#: Bigger than one read/progress step on every transport, small enough for CI.
SIZE = 3 * 1024 * 1024 + 4099


@pytest.fixture
def e2e_run(qloop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Like ``run`` from conftest, with room for real logins and transfers (90 s)."""

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        return qloop.run_until_complete(asyncio.wait_for(coro, 90.0))

    return runner


@dataclass
class Bob:
    """A headless real client that accepts every offer into ``inbox``."""

    client: Client
    inbox: Path
    offers: list[OfferLike] = field(default_factory=list)
    transfers: list[TransferLike] = field(default_factory=list)

    async def accept_all(self) -> None:
        async for offer in self.client.offers():
            self.offers.append(offer)
            self.transfers.extend(await offer.accept(self.inbox))


#: The order in which a row's state may move (it may skip states, never go back).
STATE_ORDER = [s.value for s in TransferState]


@dataclass
class Gui:
    window: MainWindow
    bridge: ClientBridge
    notifier: RecordingNotifier
    downloads: Path
    #: (file name, state) for every transferChanged the bridge emitted, in order.
    changes: list[tuple[str, str]] = field(default_factory=list)

    def states(self, name: str) -> list[str]:
        """The distinct states the row of ``name`` went through, in order."""
        out: list[str] = []
        for n, st in self.changes:
            if n == name and (not out or out[-1] != st):
                out.append(st)
        return out

    @property
    def model(self) -> TransferListModel:
        return self.window.transfers_model

    def cell(self, row: int, col: int) -> str:
        return str(self.model.index(row, col).data() or "")

    def row_of(self, direction: Direction, name: str) -> int:
        for row in range(self.model.rowCount()):
            rec = self.model.record(row)
            if rec is not None and rec.direction is direction and rec.name == name:
                return row
        return -1

    def record(self, direction: Direction, name: str) -> TransferRecord | None:
        return self.model.record(self.row_of(direction, name))

    def finished(self, direction: Direction, name: str) -> bool:
        rec = self.record(direction, name)
        return rec is not None and rec.is_finished


@pytest.fixture
def gui(qtbot: Any, prosody: ProsodyServer, tmp_path: Path) -> Generator[Gui, None, None]:
    """Alice's app: the account is stored (as after the first-run dialog), password too."""
    account = prosody.account("alice")
    info = AccountInfo(jid=account.jid, server=account.server, port=account.port,
                       ca_file=account.ca_file, allow_plaintext=account.allow_plaintext)
    store = MemoryStore(tmp_path / "alice-home", accounts=[info],
                        passwords={account.jid: account.password})
    downloads = tmp_path / "alice-downloads"
    prefs = Preferences(download_dir=str(downloads), path=tmp_path / "alice-prefs.json")
    notifier = RecordingNotifier()
    bridge = ClientBridge(default_connect, settings=SETTINGS)
    window = MainWindow(bridge, store, prefs, History(tmp_path / "alice-history.json"),
                        notifier=notifier)
    qtbot.addWidget(window)
    window.show()
    app = Gui(window, bridge, notifier, downloads)
    bridge.transferChanged.connect(lambda rec: app.changes.append((rec.name, rec.state)))
    yield app


def make_file(folder: Path, name: str, size: int = SIZE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def drop_files(window: MainWindow, jid: str, paths: list[Path]) -> bool:
    """Drag-enter, drag-move and drop file URLs on ``jid``'s row; True if the drop was taken."""
    view = window.contacts_view
    idx = window.contacts_model.find(jid)
    assert idx.isValid(), f"{jid} is not in the contacts view"
    view.scrollTo(idx)
    pos: QPoint = view.visualRect(idx).center()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), enter)
    if not enter.isAccepted():
        return False
    move = QDragMoveEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), move)
    if not move.isAccepted():
        return False
    ev = QDropEvent(QPointF(pos), actions, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), ev)
    return ev.isAccepted()


def bob_can_receive(gui: Gui, bob_bare: str) -> bool:
    idx = gui.window.contacts_model.find(bob_bare)
    return idx.isValid() and bool(idx.data(CAN_RECEIVE_ROLE))


@contextlib.asynccontextmanager
async def online(gui: Gui, prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Bob]:
    """Bob logged in; Alice's app started, online, and showing Bob as able to receive."""
    client = await connect(prosody.account("bob", resource="gui-e2e"), SETTINGS)
    bob = Bob(client, tmp_path / "bob-inbox")
    bob.inbox.mkdir()
    try:
        await gui.window.start()
        await until(lambda: gui.bridge.state == ONLINE, 30, "alice's app online")
        await until(lambda: bob_can_receive(gui, prosody.jid("bob")), 30,
                    "bob shown as able to receive files")
        yield bob
    finally:
        await gui.bridge.aclose()
        await client.aclose()


def test_drop_on_a_contact_sends_the_file_for_real(gui: Gui, prosody: ProsodyServer,
                                                   tmp_path: Path,
                                                   e2e_run: Callable[..., Any]) -> None:
    src = make_file(tmp_path / "alice-files", "holiday.bin")
    bob_bare = prosody.jid("bob")
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with online(gui, prosody, tmp_path) as bob:
            accepting = asyncio.ensure_future(bob.accept_all())
            try:
                assert drop_files(gui.window, bob_bare, [src])
                await until(lambda: gui.finished(Direction.SEND, src.name), 60,
                            "the send row finished")
                await until(lambda: len(bob.transfers) == 1, 10, "bob accepted")
                done = await asyncio.wait_for(bob.transfers[0].wait(), 30)
            finally:
                accepting.cancel()
            assert isinstance(done, Completed) and done.verified
            assert gui.bridge.client is not None
            assert [o.peer for o in bob.offers] == [gui.bridge.client.jid]
            seen["bob_path"] = [e.path async for e in bob.transfers[0].events()
                                if isinstance(e, TransportSelected)][-1]

    e2e_run(scenario())
    received = tmp_path / "bob-inbox" / src.name
    assert received.read_bytes() == src.read_bytes()
    row = gui.row_of(Direction.SEND, src.name)
    rec = gui.model.record(row)
    assert rec is not None and rec.succeeded, rec
    assert gui.cell(row, COL.FILE) == src.name
    # The roster name Prosody gave bob, and the device the app picked for the bare JID.
    assert gui.cell(row, COL.CONTACT) == "bob (gui-e2e)"
    assert gui.cell(row, COL.PROGRESS) == human_size(SIZE)
    # bob (jinglefs) checked the checksum and confirmed it (docs/protocol.md §5.8).
    assert gui.cell(row, COL.STATUS) == "Done, verified ✓"
    path: PathKind = seen["bob_path"]
    assert rec.path_kind is path
    assert gui.cell(row, COL.PATH) == path.label
    # both ends are jinglefs with OMEMO: the file itself is encrypted (JET), on any path
    assert rec.protection == "encrypted (OMEMO)"
    assert gui.cell(row, COL.ENCRYPTION) == "Yes"
    assert gui.model.index(row, COL.ENCRYPTION).data(Qt.ItemDataRole.ToolTipRole) == \
        "encrypted (OMEMO)"
    assert rec.local_path == str(src)
    assert gui.window.message.text() == ""
    assert gui.model.rowCount() == 1  # the "Preparing" placeholder was replaced
    states = gui.states(src.name)
    assert states == sorted(states, key=STATE_ORDER.index), states
    assert states[-1] == "completed" and "failed" not in states


def test_offer_from_a_contact_is_accepted_in_the_dialog(qtbot: Any, gui: Gui,
                                                        prosody: ProsodyServer, tmp_path: Path,
                                                        e2e_run: Callable[..., Any]) -> None:
    src = make_file(tmp_path / "bob-files", "report.pdf")
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with online(gui, prosody, tmp_path) as bob:
            [sent] = await bob.client.send_files(prosody.jid("alice"), [src])
            await until(lambda: gui.window.offer_dialogs, 30, "the accept dialog")
            [dlg] = gui.window.offer_dialogs
            assert isinstance(dlg, OfferDialog) and dlg.isVisible()
            seen["sender"] = dlg.sender_label.text()
            item = dlg.files.topLevelItem(0)
            seen["files"] = [dlg.files.topLevelItemCount()] + [item.text(i) for i in range(3)]
            seen["dest"] = dlg.dest_label.text()
            seen["stranger"] = hasattr(dlg, "stranger_label")
            qtbot.mouseClick(dlg.accept_button, Qt.MouseButton.LeftButton)
            await until(lambda: gui.finished(Direction.RECEIVE, src.name), 60,
                        "the receive row finished")
            done = await asyncio.wait_for(sent.wait(), 30)
            assert isinstance(done, Completed)
            seen["bob_path"] = [e.path async for e in sent.events()
                                if isinstance(e, TransportSelected)][-1]

    e2e_run(scenario())
    assert seen["sender"] == (f"bob ({prosody.jid('bob')}, device gui-e2e) wants to send you "
                              f"a file ({human_size(SIZE)}).")
    assert seen["files"] == [1, "report.pdf", human_size(SIZE), "application/pdf"]
    assert seen["dest"].startswith(f"Will be saved in {gui.downloads}")
    assert not seen["stranger"]
    received = gui.downloads / src.name
    assert received.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in gui.downloads.iterdir()) == [src.name]  # no partials left
    row = gui.row_of(Direction.RECEIVE, src.name)
    rec = gui.model.record(row)
    assert rec is not None and rec.succeeded and rec.verified, rec
    assert rec.local_path == str(received)
    assert gui.cell(row, COL.STATUS) == "Done, verified ✓"
    assert rec.path_kind is seen["bob_path"]
    assert gui.cell(row, COL.PATH) == seen["bob_path"].label
    assert gui.window.offer_dialogs == []
    states = gui.states(src.name)
    assert states == sorted(states, key=STATE_ORDER.index), states
    assert states[-1] == "completed" and "failed" not in states
    assert gui.notifier.sent[-1] == ("Received from bob",
                                     f"report.pdf ({human_size(SIZE)}), verified")
