"""The roster as a drop target: drag files or folders onto a contact (or one device); its
context menu opens the contact's OMEMO devices and fingerprints."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QContextMenuEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QAbstractItemView, QMenu, QTreeView, QWidget

from ..files import DroppedItem
from ..models import CAN_RECEIVE_ROLE, JID_ROLE
from ..text import bare_jid

#: The context menu's entry for a contact's OMEMO devices (ui/widgets/devices_dialog.py).
DEVICES_TEXT = "Devices and &fingerprints…"


class ContactsView(QTreeView):
    #: (target JID: bare for a contact or full for a device, it can receive files, items)
    filesDropped = Signal(str, bool, list)
    #: A drop that cannot be used at all (no target, no URLs); the text says why.
    dropRejected = Signal(str)
    #: (bare JID) the user asked for the contact's OMEMO devices and fingerprints
    devicesRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setUniformRowHeights(False)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setAnimated(True)
        self.setIconSize(self.iconSize().expandedTo(self.iconSize()))
        self.setAccessibleName("Contacts")
        self.setAccessibleDescription("Drop files on a contact to send them")

    def selected_jid(self) -> tuple[str, bool] | None:
        idx = self.currentIndex()
        if not idx.isValid():
            return None
        return str(idx.data(JID_ROLE)), bool(idx.data(CAN_RECEIVE_ROLE))

    def menu_for(self, idx: QModelIndex) -> QMenu | None:
        """The context menu of a contact or device row (None elsewhere)."""
        if not idx.isValid():
            return None
        bare = bare_jid(str(idx.data(JID_ROLE)))
        menu = QMenu(self)
        action = menu.addAction(DEVICES_TEXT)
        action.triggered.connect(lambda: self.devicesRequested.emit(bare))
        return menu

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        idx = self.indexAt(event.pos())
        menu = self.menu_for(idx)
        if menu is None:
            event.ignore()
            return
        self.setCurrentIndex(idx)
        menu.exec(event.globalPos())
        menu.deleteLater()

    def _target(self, pos: object) -> QModelIndex:
        return self.indexAt(pos)  # type: ignore[arg-type]

    # Text drags are accepted too, only so that dropping one can explain what works.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasText():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        mime = event.mimeData()
        if not (mime.hasUrls() or mime.hasText()):
            event.ignore()
            return
        idx = self._target(event.position().toPoint())
        if idx.isValid():
            self.setCurrentIndex(idx)
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        idx = self._target(event.position().toPoint())
        if not mime.hasUrls():
            event.ignore()
            self.dropRejected.emit("Only files and folders can be dropped on a contact.")
            return
        if not idx.isValid():
            event.ignore()
            self.dropRejected.emit("Drop the files on a contact to send them.")
            return
        items = [DroppedItem(url=u.toDisplayString(),
                             local_path=u.toLocalFile() if u.isLocalFile() else None)
                 for u in mime.urls()]
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.setCurrentIndex(idx)
        self.filesDropped.emit(str(idx.data(JID_ROLE)), bool(idx.data(CAN_RECEIVE_ROLE)), items)
