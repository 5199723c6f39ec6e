"""Desktop notifications: ``notify-send`` (freedesktop) where present, else the tray icon."""

from __future__ import annotations

import html
import logging
import shutil
from typing import Protocol

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import QSystemTrayIcon

from . import APP_ID, APP_NAME

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    def notify(self, title: str, body: str) -> None: ...


class NullNotifier:
    def notify(self, title: str, body: str) -> None:
        logger.info("notification: %s: %s", title, body)


class TrayNotifier:
    def __init__(self, tray: QSystemTrayIcon) -> None:
        self.tray = tray

    def notify(self, title: str, body: str) -> None:
        self.tray.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 8000)


class NotifySend:
    """freedesktop notifications through ``notify-send``, started detached (never waits)."""

    def __init__(self, program: str) -> None:
        self.program = program

    def notify(self, title: str, body: str) -> None:
        # Notification servers may read the body as markup: escape it.
        QProcess.startDetached(self.program, [f"--app-name={APP_NAME}", f"--icon={APP_ID}",
                                              "--", title, html.escape(body)])


def make_notifier(tray: QSystemTrayIcon | None) -> Notifier:
    program = shutil.which("notify-send")
    if program:
        return NotifySend(program)
    if tray is not None:
        return TrayNotifier(tray)
    return NullNotifier()
