"""First-run (and "Account…") dialog: JID, password, optional server, port and certificate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from jinglefs.api import Account
from jinglefs.jid import has_resource, is_jid
from jinglefs.login import AccountProblem

from ..accounts import AccountInfo
from ..aio import spawn
from ..text import safe_text
from .devices_dialog import fingerprint_label, two_lines

#: Tries the account; raises with a reason (AuthError, ConnectError…) when it does not work.
LoginFn = Callable[[Account], Awaitable[None]]
#: Saves the account and password; returns a remark for the user (e.g. no keyring) or "".
SaveFn = Callable[[AccountInfo, str, bool], Awaitable[str]]
#: Turns an exception from LoginFn into a sentence.
DescribeFn = Callable[[BaseException, Account], str]
#: Our OMEMO fingerprint while logged in (None: OMEMO is off); raises with a reason.
FingerprintFn = Callable[[], Awaitable[str | None]]

_ADDRESS_HINT = "Enter your address as name@server, for example alice@example.org."
#: What the dialog says for each jinglefs.login.AccountProblem field.
_PROBLEMS = {
    "jid": _ADDRESS_HINT,
    "ca_file": "The trusted certificate file does not exist.",
    "plaintext": "An unencrypted connection is only allowed to a server on this computer "
                 "(localhost, 127.0.0.1, ::1).",
}


def problem_text(exc: AccountProblem) -> str:
    """The dialog's sentence for an account that :mod:`jinglefs.login` refuses."""
    return _PROBLEMS.get(exc.field, str(exc))


class AccountDialog(QDialog):
    def __init__(self, login: LoginFn, save: SaveFn, describe: DescribeFn,
                 initial: AccountInfo | None = None, message: str = "",
                 parent: QWidget | None = None, *,
                 fingerprint: FingerprintFn | None = None) -> None:
        """``fingerprint``: given while logged in, the dialog shows our OMEMO fingerprint
        (what contacts compare to verify this device)."""
        super().__init__(parent)
        self._login, self._save, self._describe = login, save, describe
        #: our OMEMO fingerprint once loaded ("" until then, or without one)
        self.own_fingerprint = ""
        self.setWindowTitle("jinglefs account")
        self.setMinimumWidth(460)
        self.remark = ""

        intro = QLabel("Sign in with your XMPP account. Files go straight to your contacts; "
                       "the server only helps them find each other.")
        intro.setWordWrap(True)
        self.jid = QLineEdit()
        self.jid.setPlaceholderText("you@example.org")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox("Remember the password in the system keyring")
        self.remember.setChecked(True)
        self.server = QLineEdit()
        self.server.setPlaceholderText("found automatically")
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("default")
        self.ca_file = QLineEdit()
        self.ca_file.setPlaceholderText("only for servers with a self-signed certificate")
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)  # Enter in a field never opens the file dialog
        browse.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file, 1)
        ca_row.addWidget(browse)
        self.plaintext = QCheckBox("Allow an unencrypted connection (local test servers only)")

        form = QFormLayout()
        form.addRow("&Address (JID):", self.jid)
        form.addRow("&Password:", self.password)
        form.addRow("", self.remember)
        form.addRow("&Server:", self.server)
        form.addRow("P&ort:", self.port)
        form.addRow("Trusted certificate:", ca_row)
        form.addRow("", self.plaintext)

        self.status = QLabel(message)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self._set_error(bool(message))

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.connect_button = self.buttons.addButton(
            "&Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        # This device's OMEMO fingerprint: what contacts compare to verify us.
        self.fingerprint_title = QLabel("This device's OMEMO fingerprint (your contacts "
                                        "compare it to verify this device):")
        self.fingerprint_title.setWordWrap(True)
        self.fingerprint = fingerprint_label("")
        self.fingerprint.setAccessibleName("This device's OMEMO fingerprint")
        self.copy_fingerprint = QPushButton("Cop&y")
        self.copy_fingerprint.setAutoDefault(False)
        self.copy_fingerprint.setEnabled(False)
        self.copy_fingerprint.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.own_fingerprint))
        fp_row = QHBoxLayout()
        fp_row.addWidget(self.fingerprint, 1)
        fp_row.addWidget(self.copy_fingerprint, 0, Qt.AlignmentFlag.AlignTop)
        self.fingerprint_box = QWidget()
        fp_layout = QVBoxLayout(self.fingerprint_box)
        fp_layout.setContentsMargins(0, 6, 0, 0)
        fp_layout.addWidget(self.fingerprint_title)
        fp_layout.addLayout(fp_row)
        self.fingerprint_box.setVisible(fingerprint is not None)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.fingerprint_box)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        # Enter in any field (the password above all) presses Connect: the default button
        # only counts once the button is inside the dialog, so it is set here.
        self.connect_button.setDefault(True)

        if initial is not None:
            self.jid.setText(initial.jid)
            self.server.setText(initial.server or "")
            self.port.setValue(initial.port or 0)
            self.ca_file.setText(initial.ca_file or "")
            self.plaintext.setChecked(initial.allow_plaintext)
            self.password.setFocus()
        if fingerprint is not None:
            self.fingerprint.setText("Reading…")
            spawn(self._show_fingerprint(fingerprint))

    async def _show_fingerprint(self, fingerprint: FingerprintFn) -> None:
        try:
            text = await fingerprint()
        except Exception as exc:
            self.fingerprint.setWordWrap(True)
            self.fingerprint.setFont(self.font())
            self.fingerprint.setText(f"No OMEMO key on this device: {safe_text(str(exc), 300)}")
            return
        if text is None:
            self.fingerprint.setWordWrap(True)
            self.fingerprint.setFont(self.font())
            self.fingerprint.setText("OMEMO is off for this account: files are not "
                                     "end-to-end encrypted with OMEMO.")
            return
        self.own_fingerprint = text
        self.fingerprint.setText(two_lines(text))
        self.copy_fingerprint.setEnabled(True)

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Trusted certificate", "",
                                              "PEM certificates (*.pem *.crt);;All files (*)")
        if path:
            self.ca_file.setText(path)

    def _set_error(self, error: bool) -> None:
        self.status.setStyleSheet("color: #b3261e;" if error else "")

    def info(self) -> AccountInfo:
        return AccountInfo(
            jid=self.jid.text().strip(),
            server=self.server.text().strip() or None,
            port=self.port.value() or None,
            ca_file=self.ca_file.text().strip() or None,
            allow_plaintext=self.plaintext.isChecked(),
        )

    def validate(self) -> str:
        """What is wrong before connecting (the same checks as the CLI's), or ""."""
        jid = self.jid.text().strip()
        if not is_jid(jid) or has_resource(jid):
            return _ADDRESS_HINT
        if not self.password.text():
            return "Enter your password."
        try:
            self.info().account(self.password.text())
        except AccountProblem as exc:
            return problem_text(exc)
        return ""

    def _busy(self, busy: bool) -> None:
        for w in (self.jid, self.password, self.server, self.port, self.ca_file,
                  self.connect_button, self.remember, self.plaintext):
            w.setEnabled(not busy)

    def submit(self) -> None:
        problem = self.validate()
        if problem:
            self.status.setText(problem)
            self._set_error(True)
            return
        spawn(self._try())

    async def _try(self) -> None:
        info = self.info()
        password = self.password.text()
        account = info.account(password)  # checked by validate()
        self._busy(True)
        self._set_error(False)
        self.status.setText(f"Connecting as {safe_text(info.jid)}…")
        try:
            await self._login(account)
        except Exception as exc:
            self.status.setText(self._describe(exc, account))
            self._set_error(True)
            self._busy(False)
            self.password.setFocus()
            return
        self.remark = await self._save(info, password, self.remember.isChecked())
        self._busy(False)
        self.accept()
