"""Plain-text helpers for the app: the library's safe text, sizes and JIDs, and the app's
own wording of speeds and times.

Everything a peer controls (file names, JIDs, descriptions) goes through
:func:`~jinglefs.text.safe_text` before it reaches a widget or a notification, and widgets
that show it use ``Qt.PlainText`` so that nothing is ever interpreted as markup.
:func:`safe_text`, :func:`human_size` (:func:`jinglefs.text.format_size`), :func:`bare_jid`
and :func:`resource_of` are the library's, shared with the command line.
"""

from __future__ import annotations

from jinglefs.jid import bare_jid, resource_of
from jinglefs.text import MAX_DISPLAY, safe_text
from jinglefs.text import format_size as human_size

__all__ = ["MAX_DISPLAY", "safe_text", "human_size", "human_rate", "human_eta", "bare_jid",
           "resource_of"]


def human_rate(bps: float | None) -> str:
    """``"2.0 MiB/s"``; empty while the speed is unknown."""
    if not bps or bps <= 0:
        return ""
    return human_size(bps) + "/s"


def human_eta(seconds: float | None) -> str:
    """``"1 min 15 s"``, ``"2 h 01 min"``; empty while unknown."""
    if seconds is None or seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
