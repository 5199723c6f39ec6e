"""Preferences: where files go, what to do with strangers, the auto-accept rules, this
install's device name on the account (the XMPP resource), and end-to-end encryption."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from jinglefs.jid import JidError, check_resource

from ..storage import STRANGERS_ASK, STRANGERS_DECLINE, Preferences
from ..text import human_size, safe_text

#: The Encryption choices, as ``Settings.encryption`` values (README "End-to-end encryption").
ENCRYPTION_ITEMS = (("Required", "required"), ("When possible (default)", "auto"),
                    ("Off", "off"))


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, default_download_dir: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.setWindowTitle("jinglefs preferences")
        self.setMinimumWidth(560)

        self.download_dir = QLineEdit(prefs.download_dir)
        self.download_dir.setPlaceholderText(default_download_dir)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.download_dir, 1)
        row.addWidget(browse)

        self.strangers = QComboBox()
        self.strangers.addItem("Ask me", STRANGERS_ASK)
        self.strangers.addItem("Decline without asking", STRANGERS_DECLINE)
        self.strangers.setCurrentIndex(max(0, self.strangers.findData(prefs.strangers)))

        self.close_to_tray = QCheckBox("Keep receiving when the window is closed")
        self.close_to_tray.setToolTip("jinglefs stays in the system tray. Desktops without a "
                                      "tray (stock GNOME) quit when the window closes.")
        self.close_to_tray.setChecked(prefs.close_to_tray)

        self.resource = QLineEdit(prefs.resource)
        self.resource.setAccessibleName("Device name")
        self.resource.setToolTip(
            "How this computer appears on your account (the XMPP resource). Every jinglefs "
            "app and command on one account needs its own, so that they all stay online "
            "together. Changing it reconnects.")
        self.resource_error = QLabel("")
        self.resource_error.setTextFormat(Qt.TextFormat.PlainText)
        self.resource_error.setStyleSheet("color: #b3261e;")
        self.resource_error.hide()

        self.encryption = QComboBox()
        self.encryption.setAccessibleName("Encryption")
        for text, value in ENCRYPTION_ITEMS:
            self.encryption.addItem(text, value)
        self.encryption.setCurrentIndex(max(0, self.encryption.findData(prefs.encryption)))
        self.encryption.setToolTip(
            "When possible: files are end-to-end encrypted (OMEMO) whenever the contact's "
            "device can take them so, and the ICE path is always encrypted (DTLS).\n"
            "Required: nothing is sent or accepted that would travel unencrypted.\n"
            "Off: no OMEMO encryption; encrypted offers are declined.")

        self.rules = QListWidget()
        self.rules.setAccessibleName("Always accept from")
        for jid, limit in sorted(prefs.auto_accept.items()):
            item = QListWidgetItem(f"{safe_text(jid)}: up to {human_size(limit)}")
            item.setData(256, jid)
            self.rules.addItem(item)
        remove = QPushButton("&Remove rule")
        remove.clicked.connect(self._remove_rule)

        form = QFormLayout()
        form.addRow("Save received files in:", row)
        form.addRow("Files from people not in my contacts:", self.strangers)
        form.addRow("", self.close_to_tray)
        form.addRow("&Device name:", self.resource)
        form.addRow("", self.resource_error)
        form.addRow("&Encryption:", self.encryption)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Always accept files from these contacts (set in the accept "
                                "dialog):"))
        layout.addWidget(self.rules)
        row2 = QHBoxLayout()
        row2.addWidget(remove)
        row2.addStretch(1)
        layout.addLayout(row2)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Save received files in",
                                                self.download_dir.text())
        if path:
            self.download_dir.setText(path)

    def _remove_rule(self) -> None:
        for item in self.rules.selectedItems():
            self.rules.takeItem(self.rules.row(item))

    def resource_problem(self) -> str:
        """Why the device name cannot be used (RFC 7622 §3.4), or ""."""
        try:
            check_resource(self.resource.text().strip())
        except JidError as exc:
            return f"Device name: {exc}."
        return ""

    def accept(self) -> None:
        problem = self.resource_problem()
        if problem:
            self.resource_error.setText(problem)
            self.resource_error.show()
            self.resource.setFocus()
            return
        super().accept()

    def apply(self) -> None:
        """Copy the dialog's choices into the preferences (the caller saves them)."""
        self.prefs.download_dir = self.download_dir.text().strip()
        self.prefs.strangers = str(self.strangers.currentData())
        self.prefs.close_to_tray = self.close_to_tray.isChecked()
        self.prefs.encryption = str(self.encryption.currentData())
        if not self.resource_problem():
            self.prefs.resource = self.resource.text().strip()
        kept = {self.rules.item(i).data(256) for i in range(self.rules.count())}
        self.prefs.auto_accept = {j: v for j, v in self.prefs.auto_accept.items() if j in kept}
