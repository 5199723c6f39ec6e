"""The accept dialog for an incoming offer: who, what, how big; Accept / Accept as… / Decline.

One offer is one action of the sender (docs/protocol.md §3.5): a folder of 6 files is one
dialog listing the 6 files (with their folders) and the total size, answered once for all.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from jinglefs.api import OfferLike

from ..text import bare_jid, human_size, resource_of, safe_text

MB = 1024 * 1024
#: File rows the list shows before it scrolls.
MAX_ROWS = 8


def _label(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # peer-controlled text is never markup
    label.setWordWrap(True)
    return label


def _ask_save_path(parent: QWidget, suggested: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Save the file as", suggested)
    return path or None


def _ask_directory(parent: QWidget, start: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, "Save the files in", start)
    return path or None


class OfferDialog(QDialog):
    #: (destination folder, file names or None, auto-accept limit in bytes or None)
    acceptedInto = Signal(str, object, object)
    declined = Signal()

    def __init__(self, offer: OfferLike, contact_name: str, dest_dir: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.offer = offer
        self.dest_dir = dest_dir
        self._answered = False
        #: Replaced by tests; the defaults open the desktop's file dialogs.
        self.ask_save_path: Callable[[QWidget, str], str | None] = _ask_save_path
        self.ask_directory: Callable[[QWidget, str], str | None] = _ask_directory

        files = list(offer.files)
        total = sum(f.size for f in files)
        self.total = total
        count = len(files)
        self.setWindowTitle("Incoming file" if count == 1 else f"Incoming files ({count})")
        self.setMinimumWidth(580)

        bare = bare_jid(offer.peer)
        device = resource_of(offer.peer)
        extra = [] if contact_name in ("", bare) else [safe_text(bare, 60)]
        if device:
            extra.append(f"device {safe_text(device, 40)}")
        sender = safe_text(contact_name or bare, 60)
        if extra:
            sender += f" ({', '.join(extra)})"
        what = "a file" if count == 1 else f"{count} files"
        self.sender_label = _label(f"{sender} wants to send you {what} ({human_size(total)}).")
        font = self.sender_label.font()
        font.setBold(True)
        self.sender_label.setFont(font)

        layout = QVBoxLayout(self)
        layout.addWidget(self.sender_label)
        if not offer.from_contact:
            self.stranger_label = _label("⚠ This sender is not in your contacts. Only accept "
                                         "files you expected.")
            self.stranger_label.setStyleSheet("color: #8a4b00;")
            layout.addWidget(self.stranger_label)

        self.files = QTreeWidget()
        self.files.setHeaderLabels(["Name", "Size", "Type"])
        self.files.setRootIsDecorated(False)
        self.files.setAccessibleName("Offered files")
        for f in files:
            item = QTreeWidgetItem([safe_text(f.name), human_size(f.size),
                                    safe_text(f.media_type, 60)])
            item.setToolTip(0, safe_text(f.name, 300))
            if f.desc:
                item.setToolTip(2, safe_text(f.desc, 300))
            self.files.addTopLevelItem(item)
        self.files.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.files.setMaximumHeight(40 + 24 * min(count, MAX_ROWS))
        layout.addWidget(self.files)
        folders = sorted({f.name.rsplit("/", 1)[0] for f in files if "/" in f.name})
        total_text = f"{count} file{'s' if count != 1 else ''}, {human_size(total)} in total"
        if folders:
            total_text += (f", in {len(folders)} folder{'s' if len(folders) != 1 else ''}"
                           " (kept as they are, inside the folder you choose)")
        self.total_label = _label(total_text)
        self.total_label.setAccessibleName("Total size")
        layout.addWidget(self.total_label)

        self.dest_label = _label(self._dest_text())
        layout.addWidget(self.dest_label)

        self.remember = QCheckBox("Always accept from this contact up to")
        self.limit = QSpinBox()
        self.limit.setRange(1, 1_000_000)
        self.limit.setSuffix(" MB")
        self.limit.setValue(max(10, math.ceil(total / MB)))
        row = QHBoxLayout()
        row.addWidget(self.remember)
        row.addWidget(self.limit)
        row.addStretch(1)
        if offer.from_contact:
            layout.addLayout(row)
        else:
            self.remember.hide()
            self.limit.hide()

        self.accept_button = QPushButton("&Accept")
        self.accept_as_button = QPushButton("Accept &as…" if count == 1 else "Accept &into…")
        self.decline_button = QPushButton("&Decline")
        self.accept_button.setDefault(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.decline_button)
        buttons.addStretch(1)
        buttons.addWidget(self.accept_as_button)
        buttons.addWidget(self.accept_button)
        layout.addLayout(buttons)

        self.accept_button.clicked.connect(self._accept_default)
        self.accept_as_button.clicked.connect(self._accept_as)
        self.decline_button.clicked.connect(self.reject)

    def _dest_text(self) -> str:
        text = f"Will be saved in {safe_text(str(self.dest_dir), 120)}"
        try:
            free = shutil.disk_usage(self._existing(self.dest_dir)).free
        except OSError:
            return text
        text += f" ({human_size(free)} free)"
        if free < self.total:
            text += ": not enough space!"
        return text

    @staticmethod
    def _existing(path: Path) -> Path:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path

    def _limit(self) -> int | None:
        if self.offer.from_contact and self.remember.isChecked():
            return self.limit.value() * MB
        return None

    def _finish(self, dest: str, names: list[str] | None) -> None:
        self._answered = True
        self.acceptedInto.emit(dest, names, self._limit())
        self.accept()

    def _accept_default(self) -> None:
        self._finish(str(self.dest_dir), None)

    def _accept_as(self) -> None:
        files = list(self.offer.files)
        if len(files) == 1:
            suggested = os.path.join(str(self.dest_dir), safe_text(files[0].name, 200))
            path = self.ask_save_path(self, suggested)
            if path:
                self._finish(os.path.dirname(path), [os.path.basename(path)])
        else:
            folder = self.ask_directory(self, str(self.dest_dir))
            if folder:
                self._finish(folder, None)

    def reject(self) -> None:
        """Decline: the Decline button, Escape and closing the window all say no."""
        if not self._answered:
            self._answered = True
            self.declined.emit()
        super().reject()
