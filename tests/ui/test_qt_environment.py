"""The installed PySide6 must not have the Signal.emit refcount bug of 6.12.0."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from jinglefs_ui.qtfix import emit_leaks_true


class _Emitter(QObject):
    changed = Signal(str)


def test_signal_emit_keeps_reference_counts() -> None:
    # PySide6 6.12.0 drops a reference to True on every emit(); the app works around it
    # (jinglefs_ui.qtfix) but the supported versions must not need that.
    e = _Emitter()
    seen: list[str] = []
    e.changed.connect(seen.append)
    before = sys.getrefcount(True)
    for i in range(50):
        e.changed.emit(str(i))
    assert sys.getrefcount(True) - before > -50
    assert len(seen) == 50
    assert not emit_leaks_true()
