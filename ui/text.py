"""Plain-text helpers: safe display of names that come from peers, sizes, speeds, times.

Everything a peer controls (file names, JIDs, descriptions) goes through
:func:`safe_text` before it reaches a widget or a notification, and widgets that show
it use ``Qt.PlainText`` so that nothing is ever interpreted as markup.
"""

from __future__ import annotations

import unicodedata

from jinglefs.transfer.names import display_name

#: Longest peer-supplied name we display before shortening it in the middle.
MAX_DISPLAY = 80

# Invisible or layout-changing categories that names.display_name does not already escape.
_HIDDEN = frozenset({"Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# Bidi embeddings/overrides/isolates and marks: they can make "exe.txt" look like "txt.exe".
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def safe_text(text: str, max_len: int = MAX_DISPLAY) -> str:
    """Make ``text`` safe to show: no control or format characters, bounded length.

    Control characters, bidi overrides and other invisible format characters (zero-width
    joiners, line separators…) are shown as ``\\uXXXX`` escapes, as the CLI shows them, so
    an RTLO trick is visible instead of obeyed.  Over-long text keeps its start and its
    end (usually the extension) around an ellipsis.
    """
    escaped = "".join(
        f"\\u{ord(ch):04x}" if (ch not in _BIDI and unicodedata.category(ch) in _HIDDEN)
        else ch
        for ch in text
    )
    shown = display_name(escaped, max_chars=max_len)
    return shown if shown.strip() else "(no name)"


def human_size(n: int | float | None) -> str:
    if n is None:
        return "?"
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def human_rate(bps: float | None) -> str:
    if not bps or bps <= 0:
        return ""
    return human_size(bps) + "/s"


def human_eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def bare_jid(jid: str) -> str:
    return jid.split("/", 1)[0]


def resource_of(jid: str) -> str:
    return jid.split("/", 1)[1] if "/" in jid else ""
