"""Guard against PySide6 6.12.0's ``SignalInstance.emit()`` refcount bug.

In PySide6 6.12.0, every ``signal.emit(...)`` made from Python returns ``True`` without
taking a reference to it, so each emission drops ``True``'s reference count by one; after
a few thousand emissions the interpreter aborts ("bool_dealloc: deallocating True or
False").  6.11.x and earlier do not have this bug; pyproject should exclude 6.12.0.

When the bug is detected, :func:`protect_bools` gives ``True`` and ``False`` a reference
count so large that it can never reach zero (what CPython 3.12 does for them anyway).
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

logger = logging.getLogger(__name__)

_RESERVE = 1 << 40


class _Probe(QObject):
    ping = Signal()


def emit_leaks_true() -> bool:
    """True when ``Signal.emit`` drops a reference to ``True`` (and repays what it took)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost > 0:
        for _ in range(lost):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return lost >= 8


def protect_bools() -> bool:
    """Apply the workaround if this PySide6 needs it; True when it was applied."""
    if not emit_leaks_true():
        return False
    for value in (True, False):
        ctypes.c_ssize_t.from_address(id(value)).value += _RESERVE
    logger.warning("this PySide6 leaks references on Signal.emit; working around it "
                   "(install PySide6-Essentials 6.11 to avoid the bug)")
    return True
