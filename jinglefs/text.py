"""Text shown to people, shared by the command line and the desktop app.

Everything a peer controls (file names, JIDs, reasons, descriptions) goes through
:func:`safe_text` before it reaches a terminal, a widget or a notification.
"""

from __future__ import annotations

import unicodedata

from .transfer.names import display_name

__all__ = ["MAX_DISPLAY", "safe_text", "format_size"]

#: Longest peer-supplied text shown before it is shortened in the middle.
MAX_DISPLAY = 80

# Invisible or layout-changing categories that display_name does not already escape
# (it escapes C0/C1 controls and the bidi controls).
_HIDDEN = frozenset({"Cf", "Zl", "Zp", "Cs", "Co", "Cn"})

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def safe_text(text: str, max_len: int = MAX_DISPLAY) -> str:
    """Make a peer-controlled string safe to show: visible, one line, bounded length.

    Control characters, bidi overrides and isolates, and other invisible format characters
    (zero-width joiners, line separators…) are shown as ``\\uXXXX`` escapes, so an RTLO
    trick (``"report\\u202etxt.exe"``) or a terminal escape sequence is visible instead of
    obeyed.  Over-long text keeps its start and its end (usually the extension) around an
    ellipsis.  Empty or blank text is shown as ``(no name)``.
    """
    escaped = "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _HIDDEN else ch for ch in text)
    shown = display_name(escaped, max_chars=max_len)
    return shown if shown.strip() else "(no name)"


def format_size(n: float | None) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units); ``None`` (unknown) -> ``"?"``."""
    if n is None:
        return "?"
    if abs(n) < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
