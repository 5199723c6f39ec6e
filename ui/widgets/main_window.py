"""The main window: contacts on the left (drop targets), transfers on the right.

In a narrow window (under :data:`NARROW_WIDTH`) the contacts go above the transfers, so
each transfer's status stays readable.  Quitting while transfers run asks first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStyle,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from jinglefs.api import Contact, OfferLike
from jinglefs.login import AccountProblem

from .. import APP_NAME
from ..accounts import AccountInfo, AccountStore
from ..aio import run_cpu, run_io, spawn
from ..bridge import (
    AUTH_FAILED,
    CONNECTING,
    LOST,
    ONLINE,
    ClientBridge,
    connect_error_text,
    failure_text,
)
from ..files import DroppedItem, check_items
from ..models import ContactModel, TransferListModel, dot_icon
from ..notify import (
    ACCEPT_ACTION,
    DECLINE_ACTION,
    DEFAULT_ACTION,
    ActionNotifier,
    Notifier,
    NullNotifier,
)
from ..records import TransferRecord
from ..storage import ACCEPT, DECLINE, History, Preferences, decide
from ..text import bare_jid, human_size, resource_of, safe_text
from .account_dialog import AccountDialog, problem_text
from .contacts_view import DEVICES_TEXT, ContactsView
from .devices_dialog import DevicesDialog
from .offer_dialog import OfferDialog
from .preferences_dialog import PreferencesDialog
from .transfers_view import TransfersPanel

_STATE_COLORS = {ONLINE: "#3a9d23", CONNECTING: "#d8a100", LOST: "#b3261e",
                 AUTH_FAILED: "#b3261e"}
#: Below this window width the contacts go above the transfers.
NARROW_WIDTH = 700
#: The narrowest the window gets (the layout fits it in the narrow arrangement).
MIN_WIDTH = 380


def _pick_files(parent: QWidget) -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, "Send files")
    return list(paths)


def _pick_folder(parent: QWidget) -> list[str]:
    path = QFileDialog.getExistingDirectory(parent, "Send a folder")
    return [path] if path else []


class MessageBar(QFrame):
    """A dismissable line above the panels for things the user should read."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAccessibleName("Dismiss message")
        close.setAutoRaise(True)
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.error = False
        self.hide()

    def show_text(self, text: str, error: bool = False) -> None:
        self.error = error
        self.label.setText(text)
        if error:
            self.setStyleSheet("MessageBar { background: #fde7e4; border: 1px solid #e8a49c; "
                               "border-radius: 4px; } QLabel { color: #5c1711; }")
        else:
            self.setStyleSheet("MessageBar { background: #e6f0fb; border: 1px solid #9dbde3; "
                               "border-radius: 4px; } QLabel { color: #0d2f57; }")
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def clear(self) -> None:
        self.label.clear()
        self.hide()


class MainWindow(QMainWindow):
    #: The user wants the app to end (Quit, or closing the window without a tray).
    quitRequested = Signal()

    def __init__(self, bridge: ClientBridge, store: AccountStore, prefs: Preferences,
                 history: History, notifier: Notifier | None = None,
                 tray_available: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.store = store
        self.prefs = prefs
        self.history = history
        self.notifier: Notifier = notifier or NullNotifier()
        self.tray_available = tray_available
        self.account_info: AccountInfo | None = None
        self.default_downloads = Path.home() / "Downloads"
        self.account_dialog: AccountDialog | None = None
        self.offer_dialogs: list[OfferDialog] = []
        #: open "Devices and fingerprints" dialogs, by the contact's bare JID
        self.devices_dialogs: dict[str, DevicesDialog] = {}
        self._told_about_tray = False
        self._connection_message = ""
        self._quitting = False
        #: The "Quit while transfers run?" question, while it is open.
        self.quit_prompt: QMessageBox | None = None
        #: Replaced by tests; the defaults open the desktop's file dialogs.
        self.pick_files: Callable[[QWidget], list[str]] = _pick_files
        self.pick_folder: Callable[[QWidget], list[str]] = _pick_folder

        self.setWindowTitle(APP_NAME)
        self.resize(1100, 640)

        # left: contacts
        self.contacts_model = ContactModel()
        self.contacts_view = ContactsView()
        self.contacts_view.setModel(self.contacts_model)
        self.contacts_view.setIconSize(QSize(14, 14))
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Contacts</b>"))
        hint = QLabel("Drop files or folders on a contact to send them.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        lv.addWidget(hint)
        lv.addWidget(self.contacts_view, 1)

        # right: transfers
        self.transfers_model = TransferListModel()
        self.transfers_model.peer_label = self.peer_label
        self.transfers = TransfersPanel(self.transfers_model)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.transfers)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([310, 970])
        self.splitter = splitter
        self.setMinimumSize(MIN_WIDTH, 420)

        self.message = MessageBar()
        central = QWidget()
        cv = QVBoxLayout(central)
        cv.setContentsMargins(8, 8, 8, 8)
        cv.addWidget(self.message)
        cv.addWidget(splitter, 1)
        self.setCentralWidget(central)

        # status bar: connection
        self.connection_icon = QLabel()
        self.connection_label = QLabel("Offline")
        self.connection_label.setTextFormat(Qt.TextFormat.PlainText)
        self.statusBar().addWidget(self.connection_icon)
        self.statusBar().addWidget(self.connection_label, 1)
        self._show_state("offline", "Offline")

        # actions
        style = self.style()
        self.send_file_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_FileIcon),
                                        "Send &file…", self)
        self.send_file_action.setShortcut(QKeySequence.StandardKey.Open)
        self.send_folder_action = QAction(
            style.standardIcon(QStyle.StandardPixmap.SP_DirIcon), "Send f&older…", self)
        self.account_action = QAction("&Account…", self)
        self.prefs_action = QAction("&Preferences…", self)
        self.devices_action = QAction(DEVICES_TEXT, self)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.about_action = QAction("&About jinglefs", self)
        toolbar = QToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.send_file_action)
        toolbar.addAction(self.send_folder_action)
        toolbar.addSeparator()
        toolbar.addAction(self.account_action)
        toolbar.addAction(self.prefs_action)
        self.addToolBar(toolbar)
        menu = self.menuBar().addMenu("&File")
        menu.addAction(self.send_file_action)
        menu.addAction(self.send_folder_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        menu = self.menuBar().addMenu("&Contact")
        menu.addAction(self.devices_action)
        menu = self.menuBar().addMenu("&Settings")
        menu.addAction(self.account_action)
        menu.addAction(self.prefs_action)
        self.menuBar().addMenu("&Help").addAction(self.about_action)

        # wiring
        self.send_file_action.triggered.connect(lambda: self._send_picked(self.pick_files))
        self.send_folder_action.triggered.connect(lambda: self._send_picked(self.pick_folder))
        self.account_action.triggered.connect(lambda: self.open_account_dialog())
        self.prefs_action.triggered.connect(self.open_preferences)
        self.devices_action.triggered.connect(self._devices_of_selected)
        self.contacts_view.devicesRequested.connect(self.open_devices_dialog)
        self.quit_action.triggered.connect(self.request_quit)
        self.about_action.triggered.connect(self._about)
        self.contacts_view.filesDropped.connect(self._on_drop)
        self.contacts_view.dropRejected.connect(lambda text: self.message.show_text(text, True))
        self.transfers.cancelRequested.connect(self.bridge.cancel)
        self.transfers.notice.connect(lambda text: self.message.show_text(text, True))
        self.transfers.clearRequested.connect(self._clear_finished)
        bridge.stateChanged.connect(self._on_state)
        bridge.contactsChanged.connect(self._on_contacts)
        bridge.offerReceived.connect(self.on_offer)
        bridge.transferAdded.connect(self._on_transfer_added)
        bridge.transferChanged.connect(self.transfers_model.changed)
        bridge.transferRemoved.connect(self.transfers_model.remove)
        bridge.transferFinished.connect(self._on_transfer_finished)
        bridge.notice.connect(self.message.show_text)

        self.transfers_model.extend_history(history.records())

    # -- start-up and account ----------------------------------------------------------
    async def start(self) -> None:
        """Load the stored account and connect, or ask for one (first run)."""
        try:
            self.default_downloads = await run_io(self.store.downloads_dir)
        except Exception:
            pass
        try:
            infos = await run_io(self.store.load)
        except Exception as exc:
            self.message.show_text(f"Could not read the saved accounts: {exc}", True)
            infos = []
        if not infos:
            self.open_account_dialog()
            return
        info = self.account_info = infos[0]
        password = await run_io(self.store.password, info.jid)
        if not password:
            self.open_account_dialog(f"Enter the password for {safe_text(info.jid)}.")
            return
        try:
            account = info.account(password)
        except AccountProblem as exc:  # config.toml edited by hand since
            self.open_account_dialog(problem_text(exc))
            return
        self.bridge.start(account)

    def open_account_dialog(self, message: str = "") -> AccountDialog:
        if self.account_dialog is not None and self.account_dialog.isVisible():
            self.account_dialog.raise_()
            return self.account_dialog
        online = self.bridge.state == ONLINE and self.bridge.client is not None
        dlg = AccountDialog(self.bridge.login, self._save_account, connect_error_text,
                            initial=self.account_info, message=message, parent=self,
                            fingerprint=self.bridge.own_fingerprint if online else None)

        def accepted() -> None:
            if dlg.remark:
                self.message.show_text(dlg.remark)

        dlg.accepted.connect(accepted)
        self.account_dialog = dlg
        dlg.show()
        dlg.raise_()
        return dlg

    async def _save_account(self, info: AccountInfo, password: str, remember: bool) -> str:
        self.account_info = info
        try:
            await run_io(self.store.save, info)
        except Exception as exc:
            return f"Connected, but the account could not be saved: {exc}"
        if not remember:
            return ""
        try:
            stored = await run_io(self.store.set_password, info.jid, password)
        except Exception as exc:
            return f"The password could not be stored in the keyring: {exc}"
        if not stored:
            return ("No system keyring was found, so the password is kept only until jinglefs "
                    "quits. You will be asked again next time.")
        return ""

    def open_preferences(self) -> None:
        dlg = PreferencesDialog(self.prefs, str(self.default_downloads), self)

        def done() -> None:
            dlg.apply()
            spawn(run_io(self.prefs.save))
            self.bridge.set_resource(self.prefs.resource)  # a new device name reconnects
            self.bridge.set_encryption(self.prefs.encryption)  # from the next offer on

        dlg.accepted.connect(done)
        dlg.show()

    # -- a contact's OMEMO devices -----------------------------------------------------
    def _devices_of_selected(self) -> None:
        target = self.contacts_view.selected_jid()
        if target is None:
            self.message.show_text("Select a contact first, then open its devices and "
                                   "fingerprints.", True)
            return
        self.open_devices_dialog(bare_jid(target[0]))

    def open_devices_dialog(self, bare: str) -> DevicesDialog | None:
        """The contact's OMEMO devices with their fingerprints, and Verify…."""
        if self.bridge.state != ONLINE:
            self.message.show_text("You are not connected to the server, so the devices of "
                                   "your contacts cannot be fetched. jinglefs reconnects by "
                                   "itself; try again then.", True)
            return None
        dlg = self.devices_dialogs.get(bare)
        if dlg is not None:
            dlg.raise_()
            dlg.activateWindow()
            return dlg
        contact = self.contact_for(bare)
        dlg = DevicesDialog(bare, contact.name if contact and contact.name else bare,
                            self.bridge.devices_of, self.bridge.verify_device, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.devices_dialogs[bare] = dlg
        dlg.finished.connect(lambda _r: self.devices_dialogs.pop(bare, None))
        dlg.show()
        dlg.refresh()
        return dlg

    # -- connection and contacts --------------------------------------------------------
    def _show_state(self, state: str, detail: str) -> None:
        self.connection_icon.setPixmap(dot_icon(_STATE_COLORS.get(state, "#9a9a9a"))
                                       .pixmap(14, 14))
        self.connection_label.setText(detail or state)

    def _on_state(self, state: str, detail: str) -> None:
        self._show_state(state, detail)
        if state == AUTH_FAILED:
            self.open_account_dialog(detail)
        elif state == LOST:
            self.message.show_text(f"{detail}\nFiles cannot be sent or received until the "
                                   "connection is back.", True)
            self._connection_message = self.message.label.text()
        elif state == ONLINE and self._connection_message:
            if self.message.text() == self._connection_message:
                self.message.clear()
            self._connection_message = ""

    def _on_contacts(self) -> None:
        current = self.contacts_view.selected_jid()
        self.contacts_model.set_contacts(self.bridge.contacts)
        self.contacts_view.expandAll()
        if current:
            idx = self.contacts_model.find(current[0])
            if idx.isValid():
                self.contacts_view.setCurrentIndex(idx)

    def contact_for(self, jid: str) -> Contact | None:
        bare = bare_jid(jid)
        for c in self.bridge.contacts:
            if c.jid == bare:
                return c
        return None

    def peer_label(self, jid: str) -> str:
        """"Alice" for a contact, "Alice (laptop)" for one of her devices, else the JID."""
        c = self.contact_for(jid)
        if c is None or not c.name:
            return safe_text(jid, 60)
        device = resource_of(jid)
        name = safe_text(c.name, 40)
        return f"{name} ({safe_text(device, 30)})" if device else name

    def _who(self, jid: str) -> str:
        c = self.contact_for(jid)
        return safe_text(c.name if c and c.name else bare_jid(jid), 60)

    # -- sending ----------------------------------------------------------------------------
    def _on_drop(self, jid: str, can_receive: bool, items: list[DroppedItem]) -> None:
        self.send_items(jid, can_receive, items)

    def _send_picked(self, picker: Callable[[QWidget], list[str]]) -> None:
        target = self.contacts_view.selected_jid()
        if target is None:
            self.message.show_text("Select a contact first, then choose what to send.", True)
            return
        paths = picker(self)
        if paths:
            self.send_items(target[0], target[1],
                            [DroppedItem(url=p, local_path=p) for p in paths])

    def send_items(self, jid: str, can_receive: bool, items: list[DroppedItem]) -> None:
        if not can_receive:
            self.message.show_text(f"{self._who(jid)} has no online device that can receive "
                                   "files right now. Nothing was sent.", True)
            return
        if self.bridge.state != ONLINE:
            self.message.show_text("You are not connected to the server, so nothing was "
                                   "sent. jinglefs reconnects by itself; try again then.", True)
            return
        spawn(self._check_and_send(jid, items))

    async def _check_and_send(self, jid: str, items: list[DroppedItem]) -> None:
        check = await run_cpu(check_items, items)
        if not check.ok:
            self.message.show_text(check.message(), True)
            return
        self.message.clear()
        self.bridge.send(jid, check)

    # -- receiving -------------------------------------------------------------------------
    def download_dir(self) -> Path:
        return Path(self.prefs.download_dir) if self.prefs.download_dir else \
            self.default_downloads

    def on_offer(self, offer: OfferLike) -> None:
        decision = decide(self.prefs, offer)
        files = list(offer.files)
        who = self._who(offer.peer)
        first = safe_text(files[0].name, 60) if files else "(nothing)"
        what = first if len(files) == 1 else f"{first} and {len(files) - 1} more"
        total = human_size(sum(f.size for f in files))
        title = (f"{who} wants to send you a file" if len(files) == 1
                 else f"{who} wants to send you {len(files)} files")
        body = (f"{what} ({total}, {safe_text(files[0].media_type, 40)})" if files else "")
        if decision == DECLINE:
            spawn(self._decline(offer))
            self.message.show_text(f"Declined {what} ({total}) from {safe_text(offer.peer)}: "
                                   "not in your contacts (see Preferences).")
            return
        if decision == ACCEPT:
            spawn(self._accept(offer, str(self.download_dir()), None, None))
            self.notifier.notify(f"Receiving from {who}", f"{what} ({total})")
            return
        dlg = OfferDialog(offer, self._who(offer.peer), self.download_dir(), self)
        dlg.acceptedInto.connect(lambda d, n, lim: spawn(self._accept(offer, d, n, lim)))
        dlg.declined.connect(lambda: spawn(self._decline(offer)))
        dlg.finished.connect(lambda _r: self._forget_dialog(dlg))
        self.offer_dialogs.append(dlg)
        dlg.show()
        dlg.raise_()
        self._notify_offer(dlg, offer, title, body)

    def _notify_offer(self, dlg: OfferDialog, offer: OfferLike, title: str,
                      body: str) -> None:
        """The desktop notification for an offer the dialog asks about; with Accept and
        Decline buttons where the notification server shows actions."""
        prompt = None
        if isinstance(self.notifier, ActionNotifier) and self.notifier.supports_actions:
            actions = [(DEFAULT_ACTION, "Show")]
            if offer.from_contact:  # a stranger's offer is answered in the dialog only
                actions.append((ACCEPT_ACTION, "Accept"))
            actions.append((DECLINE_ACTION, "Decline"))
            prompt = self.notifier.ask(title, body, actions,
                                       lambda key: self._offer_action(dlg, offer, key))
        if prompt is None:
            self.notifier.notify(title, body)
            return
        dlg.finished.connect(lambda _r: prompt.close())  # answered in the dialog

    def _offer_action(self, dlg: OfferDialog, offer: OfferLike, key: str) -> None:
        """A button of the offer's notification: the same as the dialog's own buttons."""
        if dlg not in self.offer_dialogs:
            return  # already answered
        if key == ACCEPT_ACTION and offer.from_contact and dlg.accept_button.isEnabled():
            dlg.accept_button.click()  # into the default folder, by the dialog's rules
        elif key == DECLINE_ACTION:
            dlg.reject()
        else:  # the notification itself was clicked, or Accept needs the dialog
            self.show_and_raise()
            dlg.show()
            dlg.raise_()
            dlg.activateWindow()

    def _forget_dialog(self, dlg: OfferDialog) -> None:
        if dlg in self.offer_dialogs:
            self.offer_dialogs.remove(dlg)
        dlg.deleteLater()

    async def _accept(self, offer: OfferLike, dest: str, names: list[str] | None,
                      limit: int | None) -> None:
        if limit is not None:
            self.prefs.set_auto_accept(offer.peer, limit)
            spawn(run_io(self.prefs.save))
        try:
            await run_io(lambda: os.makedirs(dest, exist_ok=True))
            await self.bridge.accept(offer, Path(dest), names)
        except Exception as exc:
            self.message.show_text(f"Could not accept the file from {self._who(offer.peer)}: "
                                   f"{failure_text(exc)}", True)

    async def _decline(self, offer: OfferLike) -> None:
        try:
            await self.bridge.decline(offer)
        except Exception as exc:
            self.message.show_text(f"Could not decline: {failure_text(exc)}", True)

    # -- transfers ---------------------------------------------------------------------------
    def _on_transfer_added(self, rec: TransferRecord) -> None:
        self.transfers_model.add(rec)
        self.transfers.select_row(0)

    def _on_transfer_finished(self, rec: TransferRecord) -> None:
        self.transfers_model.changed(rec)
        spawn(run_io(self.history.add, rec))
        who = self._who(rec.peer)
        if rec.direction.value == "receive":
            if rec.succeeded:
                self.notifier.notify(f"Received from {who}", f"{rec.display_name} "
                                     f"({human_size(rec.size)})"
                                     + (", verified" if rec.verified else ""))
            else:
                self.notifier.notify(f"Could not receive {rec.display_name}",
                                     rec.status_text())
        elif not rec.succeeded and not rec.cancelled:
            self.notifier.notify(f"Could not send {rec.display_name} to {who}",
                                 rec.status_text())

    def _clear_finished(self) -> None:
        self.transfers_model.clear_finished()
        spawn(run_io(self.history.remove_finished))

    # -- window ----------------------------------------------------------------------------
    def show_and_raise(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def on_second_instance(self, args: list[str]) -> None:
        self.show_and_raise()
        files = [a for a in args if not a.startswith("-")]
        if files:
            self.message.show_text(f"To send {len(files)} item(s), select a contact and use "
                                   "Send file…, or drop them on the contact.")

    def running_transfers(self) -> list[TransferRecord]:
        """Transfers of this run that have not ended (quitting would stop them)."""
        return [r for r in self.transfers_model.records() if r.live and not r.is_finished]

    def request_quit(self) -> None:
        """Quit (menu, tray, Ctrl+Q, closing the window without a tray); while transfers
        run, ask first: Quit or Keep running."""
        if not self._quitting and self.running_transfers():
            self._ask_before_quitting()
            return
        self._quit_now()

    def _quit_now(self) -> None:
        self._quitting = True
        if self.quit_prompt is not None:
            self.quit_prompt.close()
        self.quitRequested.emit()

    def _ask_before_quitting(self) -> None:
        if self.quit_prompt is not None:
            self.quit_prompt.show()
            self.quit_prompt.raise_()
            return
        if not self.isVisible():  # asked from the tray: show what is running
            self.show_and_raise()
        n = len(self.running_transfers())
        box = QMessageBox(QMessageBox.Icon.Question, f"Quit {APP_NAME}?",
                          "1 transfer is still running." if n == 1
                          else f"{n} transfers are still running.", parent=self)
        box.setInformativeText("Quitting stops them, and the other side is told they were "
                               f"cancelled. Keep {APP_NAME} running to let them finish.")
        quit_button = box.addButton("&Quit", QMessageBox.ButtonRole.DestructiveRole)
        keep_button = box.addButton("&Keep running", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep_button)
        box.setEscapeButton(keep_button)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered() -> None:
            self.quit_prompt = None
            if box.clickedButton() is quit_button:
                self._quit_now()

        box.finished.connect(lambda _r: answered())
        self.quit_prompt = box
        box.open()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.tray_available and self.prefs.close_to_tray and not self._quitting:
            event.ignore()
            self.hide()
            if not self._told_about_tray:
                self._told_about_tray = True
                self.notifier.notify("jinglefs is still running",
                                     "Files can still be received. Use the tray icon to open "
                                     "the window or quit.")
            return
        if not self._quitting and self.running_transfers():
            event.ignore()  # the window stays until the user says Quit
            self._ask_before_quitting()
            return
        event.accept()
        self.request_quit()

    # -- narrow windows ---------------------------------------------------------------
    @property
    def narrow(self) -> bool:
        return self.splitter.orientation() == Qt.Orientation.Vertical

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._arrange(event.size().width())
        super().resizeEvent(event)

    def _arrange(self, width: int) -> None:
        """Contacts beside the transfers, or above them when the window is narrow."""
        narrow = width < NARROW_WIDTH
        if narrow == self.narrow:
            return
        if narrow:
            self.splitter.setOrientation(Qt.Orientation.Vertical)
            height = max(self.splitter.height(), 300)
            self.splitter.setSizes([height // 3, height - height // 3])
        else:
            self.splitter.setOrientation(Qt.Orientation.Horizontal)
            self.splitter.setSizes([310, max(width - 310, 300)])

    def _about(self) -> None:
        from jinglefs import __version__

        QMessageBox.about(self, "About jinglefs",
                          f"jinglefs {__version__}\nSend files directly between XMPP contacts "
                          "(Jingle File Transfer).")
