"""The Transfers panel: a table with a progress column, actions and a details line.

The table keeps each transfer's status readable however narrow the window: when the
columns up to Status do not fit, the Contact column is hidden and the File and Progress
columns give up width before the Status column does (:func:`fit_columns`); the buttons
go on two rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRectF,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QDesktopServices, QPainter, QResizeEvent
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
from ..totals import TotalProgress


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


#: The ICE implementations the transport event names (jinglefs/ice/backend.py).
ICE_STACKS = ("libdatachannel", "aiortc")


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
        enc = rec.protection or ("encrypted" if rec.encrypted else "not end-to-end encrypted")
        # ICE names the stack that carried it last in the detail: "... (libdatachannel)".
        pair, stack = rec.path_detail, ""
        for name in ICE_STACKS:
            if pair.endswith(f"({name})"):
                pair, stack = pair[: -len(name) - 2].rstrip(), f" over {name}"
        detail = f" [{safe_text(pair, 120)}]" if pair else ""
        lines.append(f"Path: {rec.path_kind.label}{stack}, {enc}{detail}")
    lines.append(f"Status: {rec.status_text()}")
    if rec.resumed_from > 0:
        lines.append(f"Resumed at {rec.resumed_percent}%: {human_size(rec.resumed_from)} "
                     "were already there from an earlier attempt")
    when = rec.times_text()
    if when:
        lines.append(when)
    return "\n".join(lines)


_M = TransferListModel
#: Column widths at first start (the user may drag them; the panel remembers).
COLUMN_WIDTHS: Mapping[int, int] = {
    _M.FILE: 160, _M.CONTACT: 110, _M.PROGRESS: 130, _M.STATUS: 165, _M.WHEN: 105,
    _M.SPEED: 130, _M.PATH: 175, _M.ENCRYPTION: 70}
#: How narrow the File and Progress columns may get to leave the Status column its room.
_FLOOR = {_M.FILE: 80, _M.PROGRESS: 70, _M.STATUS: 110}


def fit_columns(available: int, wanted: Mapping[int, int]) -> tuple[frozenset[int],
                                                                    dict[int, int]]:
    """Which columns to hide and how wide the leading ones are so that the Status column
    fits in ``available`` pixels: (hidden columns, widths of File, Contact, Progress,
    Status).  Columns right of Status keep their width and scroll into view."""
    lead = (_M.FILE, _M.CONTACT, _M.PROGRESS, _M.STATUS)
    widths = {c: wanted[c] for c in lead}
    hidden: set[int] = set()
    if sum(widths.values()) > available:
        hidden.add(_M.CONTACT)
        del widths[_M.CONTACT]
    deficit = sum(widths.values()) - available
    for col in (_M.FILE, _M.PROGRESS, _M.STATUS):  # the status gives up width last
        if deficit <= 0:
            break
        cut = min(deficit, max(0, widths[col] - _FLOOR[col]))
        widths[col] -= cut
        deficit -= cut
    return frozenset(hidden), widths


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
        #: The widths the user wants (dragged); fit_columns may show less when narrow.
        self.wanted_widths = dict(COLUMN_WIDTHS)
        self._fitting = False
        for col, width in COLUMN_WIDTHS.items():
            self.table.setColumnWidth(col, width)
        header.sectionResized.connect(self._section_resized)
        self.table.viewport().installEventFilter(self)

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

        #: one row of buttons, or two when the panel is narrow (:meth:`set_compact`)
        self._button_rows = (QHBoxLayout(), QHBoxLayout())
        self.compact = True
        self.set_compact(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Transfers</b>")
        layout.addWidget(title)
        #: per-file progress is in the rows; this is all running files together
        self.totals = TotalProgress()
        self.total_label = QLabel("")
        self.total_label.setTextFormat(Qt.TextFormat.PlainText)
        self.total_label.setAccessibleName("Total progress")
        layout.addWidget(self.total_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        for row in self._button_rows:
            layout.addLayout(row)

        self.cancel_button.clicked.connect(self._cancel)
        self.open_button.clicked.connect(self._open_file)
        self.folder_button.clicked.connect(self._open_folder)
        self.clear_button.clicked.connect(self.clearRequested)
        self.table.selectionModel().selectionChanged.connect(self.refresh)
        model.dataChanged.connect(self.refresh)
        model.rowsRemoved.connect(self.refresh)
        model.rowsInserted.connect(self.refresh)
        model.modelReset.connect(self.refresh)
        self.table.doubleClicked.connect(self._open_file)
        self.refresh()

    # -- narrow windows -------------------------------------------------------------------
    def set_compact(self, compact: bool) -> None:
        """Buttons on two rows (``compact``) or one."""
        if compact == self.compact:
            return
        self.compact = compact
        first, second = self._button_rows
        for row in self._button_rows:
            while row.count():
                row.takeAt(0)
        first.addWidget(self.cancel_button)
        first.addWidget(self.open_button)
        if compact:
            first.addStretch(1)
            second.addWidget(self.folder_button)
            second.addStretch(1)
            second.addWidget(self.clear_button)
        else:
            first.addWidget(self.folder_button)
            first.addStretch(1)
            first.addWidget(self.clear_button)

    def _one_row_width(self) -> int:
        buttons = (self.cancel_button, self.open_button, self.folder_button, self.clear_button)
        spacing = max(0, self._button_rows[0].spacing())
        return sum(b.sizeHint().width() for b in buttons) + 4 * spacing

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.set_compact(event.size().width() < self._one_row_width())
        super().resizeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self.fit_columns()
        return super().eventFilter(watched, event)

    def _section_resized(self, col: int, _old: int, new: int) -> None:
        if not self._fitting and (col in _FLOOR or col == _M.CONTACT):
            self.wanted_widths[col] = new  # the user dragged it

    def fit_columns(self) -> None:
        """Keep the Status column in view (see :func:`fit_columns`)."""
        hidden, widths = fit_columns(self.table.viewport().width(), self.wanted_widths)
        self._fitting = True
        try:
            self.table.setColumnHidden(_M.CONTACT, _M.CONTACT in hidden)
            for col, width in widths.items():
                if self.table.columnWidth(col) != width:
                    self.table.setColumnWidth(col, width)
        finally:
            self._fitting = False

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
        total = self.totals.update(self.model.records())
        self.total_label.setText(total)
        self.total_label.setVisible(bool(total))

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
