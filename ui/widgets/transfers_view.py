"""The Transfers panel: a table with a progress column, actions and a details line."""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from jinglefs.events import Direction

from ..models import FRACTION_ROLE, RECORD_ROLE, TransferListModel
from ..records import TransferRecord
from ..text import human_size, safe_text


def open_path(path: str) -> bool:
    """Open a file or folder with the desktop's default application."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


class ProgressDelegate(QStyledItemDelegate):
    """A flat progress bar with the byte count on it, coloured by outcome."""

    FILL = {"ok": QColor("#a6dca0"), "failed": QColor("#f2b8b0"), "live": QColor("#9ccbf2")}

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        fraction = index.data(FRACTION_ROLE)
        rec = index.data(RECORD_ROLE)
        if fraction is None or rec is None:
            super().paint(painter, option, index)
            return
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter,
                            option.widget)
        rect = QRectF(option.rect.adjusted(4, 4, -4, -4))
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor("#8d99a6"))
        painter.setBrush(QColor("#f4f6f8"))
        painter.drawRoundedRect(rect, 3, 3)
        kind = "ok" if rec.succeeded else "failed" if rec.is_finished else "live"
        width = rect.width() * max(0.0, min(1.0, float(fraction)))
        if width > 1:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self.FILL[kind])
            painter.drawRoundedRect(QRectF(rect.x() + 0.5, rect.y() + 0.5, width - 1,
                                           rect.height() - 1), 3, 3)
        painter.setPen(QColor("#1d2329"))
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter),
                         option.fontMetrics.elidedText(
                             text, Qt.TextElideMode.ElideMiddle, int(rect.width()) - 6))
        painter.restore()


def details_text(rec: TransferRecord) -> str:
    if rec.direction is Direction.SEND:
        head = f"{rec.display_name}: sent to {rec.display_peer}"
    else:
        head = f"{rec.display_name}: received from {rec.display_peer}"
    lines = [head + f" ({human_size(rec.size)})"]
    if rec.local_path:
        where = "From" if rec.direction is Direction.SEND else "Saved to"
        lines.append(f"{where}: {safe_text(rec.local_path, 200)}")
    if rec.path_kind is not None:
        enc = "encrypted" if rec.encrypted else "not end-to-end encrypted"
        detail = f" [{safe_text(rec.path_detail, 120)}]" if rec.path_detail else ""
        lines.append(f"Path: {rec.path_kind.label}, {enc}{detail}")
    lines.append(f"Status: {rec.status_text()}")
    return "\n".join(lines)


class TransfersPanel(QWidget):
    cancelRequested = Signal(str)
    #: Shown in the window's message bar (e.g. "the file is no longer there").
    notice = Signal(str)
    clearRequested = Signal()

    def __init__(self, model: TransferListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.table = QTableView()
        self.table.setModel(model)
        self.table.setItemDelegateForColumn(TransferListModel.PROGRESS, ProgressDelegate(self))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setAccessibleName("Transfers")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        m = TransferListModel
        for col, width in ((m.FILE, 160), (m.CONTACT, 110), (m.PROGRESS, 130), (m.STATUS, 165),
                           (m.SPEED, 130), (m.PATH, 175), (m.ENCRYPTION, 70)):
            self.table.setColumnWidth(col, width)

        self.cancel_button = QPushButton("&Cancel transfer")
        self.open_button = QPushButton("&Open file")
        self.folder_button = QPushButton("Open &folder")
        self.clear_button = QPushButton("C&lear finished")
        self.details = QLabel("Select a transfer to see its details.")
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumHeight(self.fontMetrics().lineSpacing() * 4 + 8)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        buttons = QHBoxLayout()
        for b in (self.cancel_button, self.open_button, self.folder_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Transfers</b>")
        layout.addWidget(title)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)

        self.cancel_button.clicked.connect(self._cancel)
        self.open_button.clicked.connect(self._open_file)
        self.folder_button.clicked.connect(self._open_folder)
        self.clear_button.clicked.connect(self.clearRequested)
        self.table.selectionModel().selectionChanged.connect(self.refresh)
        model.dataChanged.connect(self.refresh)
        model.rowsRemoved.connect(self.refresh)
        model.modelReset.connect(self.refresh)
        self.table.doubleClicked.connect(self._open_file)
        self.refresh()

    def selected(self) -> TransferRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.record(rows[0].row()) if rows else None

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def refresh(self) -> None:
        rec = self.selected()
        self.cancel_button.setEnabled(bool(rec and rec.can_cancel))
        has_file = bool(rec and rec.local_path and
                        (rec.succeeded or rec.direction is Direction.SEND))
        self.open_button.setEnabled(has_file)
        self.folder_button.setEnabled(has_file)
        self.details.setText(details_text(rec) if rec else
                             "Select a transfer to see its details.")

    def _cancel(self) -> None:
        rec = self.selected()
        if rec and rec.can_cancel:
            self.cancelRequested.emit(rec.id)

    def _open(self, folder: bool) -> None:
        rec = self.selected()
        if not rec or not rec.local_path:
            return
        path = rec.local_path
        if folder and not os.path.isdir(path):
            path = os.path.dirname(path)
        if not os.path.exists(path):
            self.notice.emit(f"{safe_text(path, 200)} is no longer there.")
            return
        if not open_path(path):
            self.notice.emit(f"No application could open {safe_text(path, 200)}.")

    def _open_file(self) -> None:
        self._open(folder=False)

    def _open_folder(self) -> None:
        self._open(folder=True)
