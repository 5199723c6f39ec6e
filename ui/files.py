"""Checking what the user dropped (or picked) before anything is sent.

The rule is simple: if any dropped item is not something we can send, nothing is sent
and the user gets one message listing every problem.  This runs in a worker thread
(walking a big folder must not freeze the window), so it uses no Qt.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .text import safe_text

#: Stop listing problems after this many; the message says how many more there were.
MAX_PROBLEMS = 8


@dataclass(frozen=True)
class DroppedItem:
    """One URL from a drop: ``local_path`` is None when it is not a local file URL."""

    url: str
    local_path: str | None


@dataclass
class DropCheck:
    #: Top-level files and folders to hand to ``send_files`` (folders as folders).
    paths: list[Path] = field(default_factory=list)
    #: For each of :attr:`paths`: (number of files, bytes).
    sizes: list[tuple[int, int]] = field(default_factory=list)
    file_count: int = 0
    total_size: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.paths)

    def message(self) -> str:
        """The text shown to the user when :attr:`ok` is false."""
        if not self.problems:
            return "There was nothing to send."
        shown = self.problems[:MAX_PROBLEMS]
        more = len(self.problems) - len(shown)
        lines = ["Nothing was sent:"] + [f"• {p}" for p in shown]
        if more:
            lines.append(f"• …and {more} more")
        return "\n".join(lines)


def _readable(path: str, is_dir: bool) -> bool:
    return os.access(path, os.R_OK | (os.X_OK if is_dir else 0))


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_items(items: Sequence[DroppedItem]) -> DropCheck:
    """Validate dropped items.  Folders are walked to find unreadable or odd entries."""
    result = DropCheck()
    seen: set[str] = set()
    for item in items:
        if item.local_path is None:
            result.problems.append(f"{safe_text(item.url)} is not a file on this computer")
            continue
        path = item.local_path
        shown = safe_text(path)
        try:
            lst = os.lstat(path)
        except OSError as exc:
            result.problems.append(f"{shown}: {exc.strerror or 'cannot be read'}")
            continue
        try:
            st = os.stat(path)
        except OSError:
            if stat.S_ISLNK(lst.st_mode):
                result.problems.append(f"{shown} is a broken link")
            else:
                result.problems.append(f"{shown} cannot be read")
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        if stat.S_ISREG(st.st_mode):
            if not _readable(path, False):
                result.problems.append(f"{shown} is not readable (permission denied)")
                continue
            result.paths.append(Path(path))
            result.sizes.append((1, st.st_size))
            result.file_count += 1
            result.total_size += st.st_size
        elif stat.S_ISDIR(st.st_mode):
            _check_folder(Path(path), result)
        else:
            result.problems.append(f"{shown} is {_kind(st.st_mode)}, not a file")
    return result


def _check_folder(top: Path, result: DropCheck) -> None:
    shown_top = safe_text(str(top))
    if not _readable(str(top), True):
        result.problems.append(f"{shown_top} is a folder that cannot be read (permission denied)")
        return
    count = 0
    size = 0
    problems: list[str] = []

    def onerror(exc: OSError) -> None:
        problems.append(f"{safe_text(str(exc.filename or top))} cannot be read")

    for dirpath, dirnames, filenames in os.walk(top, onerror=onerror, followlinks=False):
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                problems.append(f"{safe_text(full)} is a link inside the folder")
                dirnames.remove(d)
            elif not _readable(full, True):
                problems.append(f"{safe_text(full)} is a folder that cannot be read")
                dirnames.remove(d)
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                problems.append(f"{safe_text(full)} cannot be read")
                continue
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{safe_text(full)} is a link inside the folder")
            elif not stat.S_ISREG(st.st_mode):
                problems.append(f"{safe_text(full)} is {_kind(st.st_mode)}, not a file")
            elif not _readable(full, False):
                problems.append(f"{safe_text(full)} is not readable (permission denied)")
            else:
                count += 1
                size += st.st_size
    if problems:
        result.problems.extend(problems)
    elif count == 0:
        result.problems.append(f"{shown_top} is an empty folder")
    else:
        result.paths.append(top)
        result.sizes.append((count, size))
        result.file_count += count
        result.total_size += size
