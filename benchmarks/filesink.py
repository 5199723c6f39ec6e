"""The receiving side's file work for the IBB and ICE baselines, as jinglefs does it.

jinglefs' receiver (jinglefs/transfer/receiver.py) hashes what arrives with sha-256,
writes it in 1 MiB batches (one writev each), starts the writeback and drops the written
part from the page cache every 8 MiB (``POSIX_FADV_DONTNEED``), and fsyncs at the end.
:class:`FileSink` does the same with no threads and no framing, so that a baseline that
uses it does the same work.
"""

from __future__ import annotations

import hashlib
import os

#: Small writes (an IBB block, a data channel message) are gathered up to this size.
BATCH = 1 << 20
#: Page-cache recycling step, the same as jinglefs' receiver.
WRITE_BEHIND = 8 << 20


class FileSink:
    """sha-256 + write + page-cache recycling; :meth:`close` fsyncs and returns the digest."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._written = 0
        self._behind = 0
        self.received = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.received += len(data)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        total = self._pending_bytes
        done = os.writev(self._fd, self._pending)  # one writev per batch, as jinglefs
        if done < total:  # a short write (rare on a regular file): write the rest
            view = memoryview(b"".join(self._pending))[done:]
            while view:
                view = view[os.write(self._fd, view):]
        self._pending.clear()
        self._pending_bytes = 0
        self._written += total
        if self._written - self._behind >= WRITE_BEHIND and hasattr(os, "posix_fadvise"):
            self._behind = self._written
            os.posix_fadvise(self._fd, 0, self._written, os.POSIX_FADV_DONTNEED)

    def close(self) -> str:
        """Write what is left, fsync, close; the sha-256 of everything written (hex)."""
        self._flush()
        os.fsync(self._fd)
        os.close(self._fd)
        return self._hash.hexdigest()
