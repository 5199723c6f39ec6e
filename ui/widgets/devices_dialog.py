"""A contact's OMEMO devices: each device's id, fingerprint and trust, and "Verify…".

Trust follows what Conversations and Dino do (blind trust before verification, BTBV,
jinglefs.omemo.trust): until one of a contact's devices is verified, every device of
theirs is trusted as soon as it is seen; once one is verified, a device they add later
(or a device whose key changed) gets no file keys until it is verified too.  Verifying
means comparing the fingerprint shown here with the one the contact's own app shows for
that device, over a channel the two of you trust (in person, a call), or pasting what
they sent and letting the dialog compare.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from jinglefs.api import PeerDevice
from jinglefs.omemo.trust import normalize_fingerprint

from ..aio import spawn
from ..text import safe_text

#: Fetches a contact's devices (bare JID -> devices); raises with a reason.
DevicesFn = Callable[[str], Awaitable[list[PeerDevice]]]
#: Marks the device with this fingerprint verified (bare JID, fingerprint); raises.
VerifyFn = Callable[[str, str], Awaitable[PeerDevice]]

VERIFIED = "verified"
NEW_AFTER_VERIFIED = "new-after-verified"
#: How each trust state reads (PeerDevice.trust, jinglefs.omemo.trust).
TRUST_TEXT = {
    VERIFIED: "Verified",
    "blind": "Trusted until verified",
    NEW_AFTER_VERIFIED: "New device of a verified contact: not trusted until you verify it",
    "untrusted": "Untrusted",
}
_TRUST_COLORS = {VERIFIED: "#2e7d32", NEW_AFTER_VERIFIED: "#b3261e", "untrusted": "#b3261e"}
DEVICE_ROLE = Qt.ItemDataRole.UserRole + 1


def trust_text(trust: str) -> str:
    return TRUST_TEXT.get(trust, safe_text(trust, 40))


def two_lines(fingerprint: str) -> str:
    """``aaaaaaaa … (8 groups)`` as two lines of four groups, easier to compare aloud."""
    groups = fingerprint.split()
    if len(groups) != 8:
        return safe_text(fingerprint, 100)
    return " ".join(groups[:4]) + "\n" + " ".join(groups[4:])


def _label(text: str = "", *, selectable: bool = False, mono: bool = False) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # peer-controlled text is never markup
    label.setWordWrap(not mono)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                      | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    if mono:
        label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return label


def fingerprint_label(fingerprint: str) -> QLabel:
    """A fingerprint as people compare it: fixed-width, two lines, selectable."""
    label = _label(two_lines(fingerprint), selectable=True, mono=True)
    label.setAccessibleName("Fingerprint")
    return label


class VerifyDialog(QDialog):
    """Compare one device's fingerprint with what the contact's app shows, then verify."""

    def __init__(self, device: PeerDevice, contact_name: str, others: list[PeerDevice],
                 verify: VerifyFn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.others = others
        self._verify = verify
        #: the device as verified, once it is
        self.result_device: PeerDevice | None = None
        who = safe_text(contact_name, 60)
        self.setWindowTitle(f"Verify a device of {who}")
        self.setMinimumWidth(560)

        intro = _label(f"Device {device.device_id} of {who} ({safe_text(device.jid, 60)}) "
                       "has this fingerprint here:")
        self.fingerprint = fingerprint_label(device.fingerprint)
        how = _label(f"Ask {who} what their app shows for this device (Conversations: the "
                     "contact details; Dino: the conversation's encryption settings; "
                     "jinglefs: Account… or `jinglefs trust list`). Compare it group by "
                     "group in person or on a call, or paste what they sent you below. "
                     "Only verify it if every group is the same.")
        self.pasted = QLineEdit()
        self.pasted.setPlaceholderText("the fingerprint they sent you (optional)")
        self.pasted.setAccessibleName("Fingerprint from the contact")
        self.compared = QCheckBox("I compared every group with their device: they are the "
                                  "same")
        self.status = _label()
        self.status.setAccessibleName("Comparison")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.verify_button = self.buttons.addButton("&Mark as verified",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.verify_button.setEnabled(False)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.fingerprint)
        layout.addWidget(how)
        layout.addWidget(self.pasted)
        layout.addWidget(self.compared)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.pasted.textChanged.connect(self._check)
        self.compared.toggled.connect(self._check)
        self.adjustSize()

    def comparison(self) -> tuple[bool, str]:
        """(may verify, what the dialog says) for what is pasted and ticked now."""
        text = self.pasted.text().strip()
        if not text:
            return self.compared.isChecked(), ""
        wanted = normalize_fingerprint(text)
        if wanted is None:
            return False, ("That is not an OMEMO fingerprint: it has 64 hexadecimal digits "
                           "(0-9, a-f), usually shown as 8 groups of 8.")
        if wanted == self.device.fingerprint:
            return True, "✓ The fingerprints are the same."
        for other in self.others:
            if other.fingerprint == wanted and other.device_id != self.device.device_id:
                return False, (f"That fingerprint belongs to another device of this contact "
                               f"({other.device_id}), not to {self.device.device_id}. "
                               "Verify that device instead.")
        return False, ("✗ The fingerprints differ: this device's key is not the one they "
                       "sent you. Do not verify it. Ask them which devices their account "
                       "has; if they do not know this one, someone else may be using it.")

    def _check(self) -> None:
        ok, text = self.comparison()
        self.status.setText(text)
        error = bool(text) and not ok
        self.status.setStyleSheet("color: #b3261e;" if error else "color: #2e7d32;")
        self.verify_button.setEnabled(ok)
        # wrapped labels: adjustSize() is what sizes a window by their height for its width
        self.adjustSize()

    def submit(self) -> None:
        if self.comparison()[0]:
            spawn(self._submit())

    async def _submit(self) -> None:
        self.verify_button.setEnabled(False)
        try:
            self.result_device = await self._verify(self.device.jid, self.device.fingerprint)
        except Exception as exc:
            self.status.setText(f"Could not mark it verified: {safe_text(str(exc), 400)}")
            self.status.setStyleSheet("color: #b3261e;")
            self.verify_button.setEnabled(True)
            return
        self.accept()


class DevicesDialog(QDialog):
    """The OMEMO devices of one contact, with a Verify… action for the selected one."""

    def __init__(self, bare: str, contact_name: str, devices: DevicesFn, verify: VerifyFn,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bare = bare
        self.contact_name = contact_name or bare
        self._devices, self._verify = devices, verify
        self.devices: list[PeerDevice] = []
        self.verify_dialog: VerifyDialog | None = None
        who = safe_text(self.contact_name, 60)
        self.setWindowTitle(f"Devices and fingerprints of {who}")
        self.setMinimumWidth(720)

        title = _label(f"{who} ({safe_text(bare, 60)}): OMEMO devices")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        explain = _label("Files to this contact are encrypted for the devices trusted here. "
                         "Until you verify one of their devices, every device of theirs is "
                         "trusted as it appears; once you have verified one, a new device "
                         "gets no files until you verify it too.")
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Device", "Fingerprint", "Trust"])
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(False)
        self.table.setWordWrap(True)
        self.table.setAccessibleName("Devices")
        self.table.setFont(self.font())
        header = self.table.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.status = _label()
        self.status.setAccessibleName("Status")

        self.verify_button = QPushButton("&Verify…")
        self.verify_button.setEnabled(False)
        self.copy_button = QPushButton("&Copy fingerprint")
        self.copy_button.setEnabled(False)
        self.refresh_button = QPushButton("&Refresh")
        close = QPushButton("Close")
        row = QHBoxLayout()
        row.addWidget(self.verify_button)
        row.addWidget(self.copy_button)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        row.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(explain)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(row)

        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _i, _c: self.open_verify())
        self.verify_button.clicked.connect(lambda: self.open_verify())
        self.copy_button.clicked.connect(self.copy_fingerprint)
        self.refresh_button.clicked.connect(self.refresh)
        close.clicked.connect(self.reject)

    # -- loading --------------------------------------------------------------------------
    def refresh(self) -> None:
        spawn(self.load())

    async def load(self) -> None:
        """Fetch the contact's devices (their device list and keys, by PEP) and show them."""
        self.refresh_button.setEnabled(False)
        self._set_status("Fetching their devices…")
        try:
            devices = await self._devices(self.bare)
        except Exception as exc:
            self._set_status(f"Could not fetch the devices of {safe_text(self.bare)}: "
                             f"{safe_text(str(exc), 400)}", error=True)
            self.refresh_button.setEnabled(True)
            return
        self.refresh_button.setEnabled(True)
        self.show_devices(devices)

    def show_devices(self, devices: list[PeerDevice]) -> None:
        selected = self.selected()
        self.devices = list(devices)
        self.table.clear()
        for d in self.devices:
            item = QTreeWidgetItem([str(d.device_id), two_lines(d.fingerprint),
                                    trust_text(d.trust)])
            item.setData(0, DEVICE_ROLE, d.device_id)
            item.setFont(1, QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            item.setToolTip(1, d.fingerprint)
            color = _TRUST_COLORS.get(d.trust)
            if color:
                item.setForeground(2, QColor(color))
            self.table.addTopLevelItem(item)
            if selected is not None and d.device_id == selected.device_id:
                self.table.setCurrentItem(item)
        first = self.table.topLevelItem(0)
        if self.table.currentItem() is None and first is not None:
            self.table.setCurrentItem(first)
        self._selection_changed()
        new = [d for d in self.devices if d.trust == NEW_AFTER_VERIFIED]
        if not self.devices:
            self._set_status(f"{safe_text(self.contact_name, 60)} has no OMEMO device: "
                             "files to them cannot be end-to-end encrypted with OMEMO.")
        elif new:
            ids = ", ".join(str(d.device_id) for d in new)
            self._set_status(f"New since you verified this contact: device {ids}. Compare "
                             "its fingerprint with them before you verify it.", error=True)
        else:
            self._set_status("")

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b3261e;" if error else "")

    # -- selection and actions ------------------------------------------------------------
    def selected(self) -> PeerDevice | None:
        item = self.table.currentItem()
        if item is None:
            return None
        device_id = item.data(0, DEVICE_ROLE)
        return next((d for d in self.devices if d.device_id == device_id), None)

    def select(self, device_id: int) -> None:
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            if item is not None and item.data(0, DEVICE_ROLE) == device_id:
                self.table.setCurrentItem(item)

    def _selection_changed(self) -> None:
        device = self.selected()
        self.copy_button.setEnabled(device is not None)
        self.verify_button.setEnabled(device is not None and device.trust != VERIFIED)

    def copy_fingerprint(self) -> None:
        device = self.selected()
        if device is not None:
            QGuiApplication.clipboard().setText(device.fingerprint)

    def open_verify(self) -> VerifyDialog | None:
        device = self.selected()
        if device is None or device.trust == VERIFIED:
            return None
        dlg = VerifyDialog(device, self.contact_name, self.devices, self._verify, self)
        dlg.accepted.connect(lambda: self._verified(dlg))
        self.verify_dialog = dlg
        dlg.show()
        return dlg

    def _verified(self, dlg: VerifyDialog) -> None:
        done = dlg.result_device
        if done is None:
            return
        self.show_devices([done if d.device_id == done.device_id else d
                           for d in self.devices])
        if not self.status.text():
            self._set_status(f"Device {done.device_id} is verified.")
