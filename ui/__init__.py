"""jinglefs desktop app (PySide6 + qasync).

Installed under the import name ``jinglefs_ui``; everything inside uses relative imports.
The app talks to the engine only through :mod:`jinglefs.api` (a :class:`ClientLike`).
"""

from __future__ import annotations

APP_ID = "org.jinglefs.JingleFS"
APP_NAME = "jinglefs"
