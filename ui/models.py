"""Qt item models: the roster (contacts and their devices) and the transfers list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QApplication, QStyle

from jinglefs.api import Contact, Resource
from jinglefs.events import Direction

from .records import TransferRecord
from .text import resource_of, safe_text

JID_ROLE = Qt.ItemDataRole.UserRole + 1
CAN_RECEIVE_ROLE = Qt.ItemDataRole.UserRole + 2
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 3
RECORD_ROLE = Qt.ItemDataRole.UserRole + 4

_TRANSPORT_NAMES = {"ice": "ICE", "s5b": "SOCKS5", "ibb": "in-band"}

AnyIndex = QModelIndex | QPersistentModelIndex


def dot_icon(color: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(color))
    p.setPen(QColor(color).darker(140))
    p.drawEllipse(2, 2, 10, 10)
    p.end()
    return QIcon(pix)


def contact_status(c: Contact) -> str:
    if not c.online:
        return "offline"
    if c.can_receive_files:
        return "can receive files"
    return "online, no file transfer"


def resource_text(r: Resource) -> str:
    name = safe_text(resource_of(r.jid) or r.jid, 40)
    if r.client_name:
        name += f" ({safe_text(r.client_name, 40)})"
    if r.can_receive_files:
        order = list(_TRANSPORT_NAMES)
        known = sorted(r.transports, key=lambda t: (order.index(t) if t in order else 9, t))
        via = ", ".join(_TRANSPORT_NAMES.get(t, safe_text(t, 10)) for t in known)
        files = via or "receives files"
    else:
        files = "cannot receive files"
    show = "" if r.show == "available" else f" · {safe_text(r.show, 12)}"
    return f"{name}{show} · {files}"


class ContactModel(QStandardItemModel):
    """Contacts with one child row per online device (resource)."""

    def __init__(self) -> None:
        super().__init__()
        self._green = dot_icon("#3a9d23")
        self._amber = dot_icon("#d8a100")
        self._grey = dot_icon("#9a9a9a")

    def set_contacts(self, contacts: list[Contact]) -> None:
        self.clear()
        ordered = sorted(contacts, key=lambda c: (not c.can_receive_files, not c.online,
                                                  (c.name or c.jid).casefold()))
        for c in ordered:
            title = safe_text(c.name or c.jid, 60)
            item = QStandardItem(f"{title}\n{safe_text(c.jid, 60)} · {contact_status(c)}")
            item.setEditable(False)
            item.setData(c.jid, JID_ROLE)
            item.setData(c.can_receive_files, CAN_RECEIVE_ROLE)
            item.setIcon(self._green if c.can_receive_files else
                         self._amber if c.online else self._grey)
            item.setToolTip(f"{safe_text(c.jid, 200)}\n{contact_status(c)}\n"
                            "Drop files here to send them.")
            item.setAccessibleText(f"{title}, {contact_status(c)}")
            for r in sorted(c.resources, key=lambda r: (-r.priority, r.jid)):
                child = QStandardItem(resource_text(r))
                child.setToolTip(f"{safe_text(r.jid, 200)}\n{resource_text(r)}")
                child.setEditable(False)
                child.setData(r.jid, JID_ROLE)
                child.setData(r.can_receive_files, CAN_RECEIVE_ROLE)
                child.setIcon(self._green if r.can_receive_files else self._amber)
                item.appendRow(child)
            self.appendRow(item)

    def find(self, jid: str) -> QModelIndex:
        """The index of a contact (bare JID) or device (full JID), or an invalid index."""
        for row in range(self.rowCount()):
            item = self.item(row)
            if item.data(JID_ROLE) == jid:
                return item.index()
            for sub in range(item.rowCount()):
                child = item.child(sub)
                if child.data(JID_ROLE) == jid:
                    return child.index()
        return QModelIndex()


class TransferListModel(QAbstractTableModel):
    """Transfers, newest first: the live ones and those loaded from history."""

    COLUMNS = ("File", "Contact", "Progress", "Status", "When", "Speed", "Path", "Encrypted")
    FILE, CONTACT, PROGRESS, STATUS, WHEN, SPEED, PATH, ENCRYPTION = range(8)

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[TransferRecord] = []
        #: How to show a peer (full JID): the window sets it to use roster names.
        self.peer_label: Callable[[str], str] = lambda jid: safe_text(jid, 60)
        style = QApplication.style()
        self._up = style.standardIcon(QStyle.StandardPixmap.SP_ArrowUp)
        self._down = style.standardIcon(QStyle.StandardPixmap.SP_ArrowDown)

    # -- content ----------------------------------------------------------------------
    def add(self, rec: TransferRecord) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, rec)
        self.endInsertRows()

    def extend_history(self, records: list[TransferRecord]) -> None:
        """Append old rows (oldest first in ``records``) below the live ones."""
        if not records:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(records) - 1)
        self._rows.extend(reversed(records))
        self.endInsertRows()

    def row_of(self, record_id: str) -> int:
        for i, r in enumerate(self._rows):
            if r.id == record_id:
                return i
        return -1

    def changed(self, rec: TransferRecord) -> None:
        row = self.row_of(rec.id)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def remove(self, record_id: str) -> None:
        row = self.row_of(record_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()

    def clear_finished(self) -> None:
        keep = [r for r in self._rows if not r.is_finished]
        if len(keep) != len(self._rows):
            self.beginResetModel()
            self._rows = keep
            self.endResetModel()

    def record(self, row: int) -> TransferRecord | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def records(self) -> list[TransferRecord]:
        return list(self._rows)

    # -- Qt model API -------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        rec = self.record(index.row())
        if rec is None:
            return None
        col = index.column()
        if role == RECORD_ROLE:
            return rec
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(rec, col)
        if role == FRACTION_ROLE and col == self.PROGRESS:
            return rec.fraction
        if role == Qt.ItemDataRole.DecorationRole and col == self.FILE:
            return self._up if rec.direction is Direction.SEND else self._down
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == self.PATH and rec.path_detail:
                return safe_text(rec.path_detail, 200)
            if col == self.FILE:
                verb = "Sent to" if rec.direction is Direction.SEND else "Received from"
                return f"{rec.display_name}\n{verb} {rec.display_peer}"
            if col == self.CONTACT:
                return rec.display_peer
            if col == self.STATUS and rec.succeeded and rec.reason:
                return f"{rec.status_text()}: {safe_text(rec.reason, 200)}"
            if col == self.WHEN:
                return rec.times_text() or None
            if col == self.ENCRYPTION and rec.path_kind is not None:
                return rec.protection_text()  # "encrypted (OMEMO)", as the CLI says it
            return self._text(rec, col) or None
        if role == Qt.ItemDataRole.ForegroundRole and col == self.STATUS:
            if rec.is_finished and not rec.succeeded:
                return QColor("#b3261e")
            if rec.succeeded and rec.verified:
                return QColor("#2e7d32")
        return None

    def _text(self, rec: TransferRecord, col: int) -> str:
        if col == self.FILE:
            return rec.display_name
        if col == self.CONTACT:
            return self.peer_label(rec.peer)
        if col == self.PROGRESS:
            return rec.progress_text()
        if col == self.SPEED:
            speed, eta = rec.speed_text(), rec.eta_text()
            return f"{speed}, {eta} left" if speed and eta else speed
        if col == self.PATH:
            return rec.path_text()
        if col == self.ENCRYPTION:
            return {"Encrypted": "Yes", "Not encrypted": "No"}.get(rec.encryption_text(), "")
        if col == self.STATUS:
            return rec.status_text()
        if col == self.WHEN:
            return rec.when_text()
        return ""
