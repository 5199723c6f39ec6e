"""What one send action offers: the files of the given paths, with the names to offer.

A folder becomes its files, each named by its path relative to the folder's parent
(``photos/2024/a.jpg``), so the receiver rebuilds the folder under the folder it chose
(names are cleaned there again: :func:`jinglefs.transfer.names.safe_relative_path`).
Symlinks are never followed out of a folder.  The façade and the fake façade
(``tests/fakes.py``) both use this, so both offer the same files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError
from .sender import open_for_sending

__all__ = ["files_to_send"]


def files_to_send(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """(file, name to offer) for every file of ``paths``, folders expanded in sorted
    order; raises StorageError for an unreadable file, UsageError when nothing is left."""
    out: list[tuple[Path, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir() and not path.is_symlink():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
                for name in sorted(names):
                    full = Path(root) / name
                    if full.is_symlink() or not full.is_file():
                        continue
                    out.append((full, str(full.relative_to(path.parent).as_posix())))
        else:
            open_for_sending(path).close()  # raises StorageError with a clear reason
            out.append((path, path.name))
    if not out:
        raise UsageError("nothing to send")
    return out
