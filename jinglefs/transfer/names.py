"""Turning a peer's file name into something safe to create and to show.

XEP-0234 §5 (docs/protocol.md §5.1): the ``<name>`` of an offer MUST NOT be trusted as a
path.  Everything here is pure string work.  The rules are the same on every OS, so a
name saved on Linux can be copied to Windows unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

#: NAME_MAX of every common file system (ext4, btrfs, APFS, NTFS in UTF-16 units ≥ this).
MAX_NAME_BYTES = 255
#: Deepest folder structure accepted in a folder transfer.
MAX_DEPTH = 32

# Bidirectional formatting characters: LRE RLE PDF LRO RLO, LRI RLI FSI PDI, LRM RLM, ALM.
# They let "gpj.exe" render as "exe.jpg" ("RTLO spoofing").
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_BIDI_RE = re.compile(f"[{_BIDI}]")
# C0, DEL, C1 control characters.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
# Characters Windows forbids in names (besides the separators handled separately).
_WINDOWS_BAD_RE = re.compile(r'[<>:"|?*]')
_SEPARATOR_RE = re.compile(r"[/\\]")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{p}{n}" for p in ("COM", "LPT") for n in (*"123456789", "\u00b9", "\u00b2", "\u00b3")]
)
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_VISIBLE_RE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_FALLBACK = "file"


class UnsafePathError(ValueError):
    """A relative path from a peer tries to leave the destination folder."""


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


def _truncate_utf8(s: str, max_bytes: int) -> str:
    """``s`` cut to at most ``max_bytes`` UTF-8 bytes, on a character boundary."""
    return s.encode("utf-8")[:max(max_bytes, 0)].decode("utf-8", "ignore")


def split_extension(name: str) -> tuple[str, str]:
    """``("archive.tar", ".gz")``-style split; ``.tar.xx`` stays together, dotfiles have none."""
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return name, ""
    stem, ext = name[:dot], name[dot:]
    if stem.lower().endswith(".tar") and len(stem) > 4:
        stem, ext = stem[:-4], stem[-4:] + ext
    return stem, ext


def fit_name(stem: str, ext: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """``stem + ext`` shortened to ``max_bytes`` UTF-8 bytes, cutting the stem first."""
    if _utf8_len(ext) > max_bytes // 2:  # absurd "extension": treat it as part of the name
        stem, ext = stem + ext, ""
    stem = _truncate_utf8(stem, max_bytes - _utf8_len(ext)).rstrip(". ")
    return stem + ext if stem else _truncate_utf8(ext.lstrip("."), max_bytes)


def safe_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A single, harmless file name derived from an untrusted ``name``.

    Removes control characters (NUL included) and bidi overrides/isolates, keeps only
    the last ``/`` or ``\\`` separated component (so ``../../x`` and ``C:\\x`` become
    ``x``), drops a drive prefix, replaces ``<>:"|?*`` with ``_``, strips leading dots
    (no hidden files) and trailing dots/spaces, prefixes Windows device names
    (``CON``, ``com1.txt`` ...) with ``_``, and caps the UTF-8 length at ``max_bytes``
    keeping the extension.  Never returns ``""``, ``.`` or ``..``: the fallback is
    ``"file"``.
    """
    s = unicodedata.normalize("NFC", name)
    s = _CONTROL_RE.sub("", _BIDI_RE.sub("", s))
    s = _SEPARATOR_RE.split(s)[-1]
    s = _DRIVE_RE.sub("", s)
    s = _WINDOWS_BAD_RE.sub("_", s)
    s = s.strip().lstrip(".").rstrip(". ").strip()
    if not s:
        return _FALLBACK
    if s.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        s = "_" + s
    stem, ext = split_extension(s)
    s = fit_name(stem, ext, max_bytes)
    return s if s.strip(". ") else _FALLBACK


def safe_relative_path(path: str) -> PurePosixPath:
    """A relative folder path from a peer (folder transfers), each component sanitized.

    Empty and ``.`` components are dropped (``a//./b`` is ``a/b``).  Nothing else is
    silently dropped: an absolute path, a drive prefix, a ``..`` component or more
    than :data:`MAX_DEPTH` levels raise :class:`UnsafePathError`.  The empty path gives
    ``PurePosixPath(".")`` (no sub-folder).  The result is never absolute and has no
    ``..``.
    """
    cleaned = _CONTROL_RE.sub("", _BIDI_RE.sub("", unicodedata.normalize("NFC", path)))
    if cleaned.startswith(("/", "\\")) or _DRIVE_RE.match(cleaned):
        raise UnsafePathError(f"absolute path refused: {display_name(path)}")
    parts: list[str] = []
    for comp in _SEPARATOR_RE.split(cleaned):
        stripped = comp.strip()
        if stripped in ("", "."):
            continue
        if set(stripped) == {"."}:  # "..", and "..." which Windows treats alike
            raise UnsafePathError(f"'..' in path refused: {display_name(path)}")
        parts.append(safe_filename(comp))
    if len(parts) > MAX_DEPTH:
        raise UnsafePathError(f"path deeper than {MAX_DEPTH} folders refused")
    return PurePosixPath(*parts)


def display_name(name: str, *, max_chars: int = 80) -> str:
    """``name`` made safe to print in a terminal or a UI label.

    Control and bidi characters become visible ``\\u202e``-style escapes (so an
    RTLO trick is shown, not obeyed), and a long name is shortened in the middle so
    that its real extension stays visible.
    """
    shown = _VISIBLE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", name)
    if len(shown) > max_chars:
        keep = max(max_chars - 1, 2)
        head, tail = keep - keep // 3, keep // 3
        shown = shown[:head] + "\u2026" + (shown[-tail:] if tail else "")
    return shown


def numbered_name(name: str, n: int, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """``"name (n).ext"`` (or ``name`` itself for n == 0), within ``max_bytes``."""
    if n == 0:
        return fit_name(*split_extension(name), max_bytes)
    stem, ext = split_extension(name)
    suffix = f" ({n})"
    return fit_name(_truncate_utf8(stem, max_bytes - _utf8_len(ext + suffix)) + suffix, ext,
                    max_bytes)
