"""Receiving side: :class:`~jinglefs.streams.ByteStream` -> ``<name>.jfs-part`` -> verified file.

XEP-0234 §4: the bytes arrive unframed, so the receiver stops after exactly
``size`` bytes (``size - offset`` when resuming with an XEP-0234 §6.4
``<range offset=…>``).  The file is written under a partial name in the destination
folder, hashed as it arrives (XEP-0300), and renamed into place only after the
digests were checked (docs/protocol.md §9.2: all known algorithms are verified), so nothing
that looks complete ever holds unverified bytes.

Next to ``<name>.jfs-part`` sits ``<name>.jfs-part.json`` (peer, offered name, size,
hashes, date, creation time).  A later offer of the same file from the same peer
finds it with :meth:`IncomingFile.find_resumable` and asks only for the missing
tail (ux.md "Resume and auto-retry").

Safety: the destination folder is resolved once and opened as a directory fd; every
file and sub-folder is created relative to that fd with ``O_NOFOLLOW`` (and
``O_EXCL`` for new files), so a symlink planted in the folder, or as a component of
a folder transfer's relative path, never makes jinglefs write outside it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ChecksumMismatch, SizeMismatch, StorageError, TransportError
from ..streams import ByteStream
from ._worker import OrderedWorker
from .hashing import (
    DEFAULT_ALGO,
    MultiHasher,
    Verification,
    canonical_hashes,
    normalize_algo,
    pick_strongest,
    verify,
)
from .names import (
    MAX_NAME_BYTES,
    display_name,
    fit_name,
    numbered_name,
    safe_filename,
    split_extension,
)

PART_SUFFIX = ".jfs-part"
SIDECAR_SUFFIX = PART_SUFFIX + ".json"
SIDECAR_VERSION = 1
#: Largest read asked of the stream (never more than what is still missing).
READ_SIZE = 1 << 20
#: Received bytes handed to the worker thread per job (one writev + hash updates).
#: Measured: 1 MiB beats 256/512 KiB (fewer hand-offs); 4 MiB batches cost 3x the CPU
#: (allocator churn of many large buffers in flight).
BATCH_BYTES = 1 << 20
#: Jobs queued for the worker before receiving pauses (memory ~ MAX_PENDING x BATCH_BYTES).
MAX_PENDING = 4
#: Every this many bytes written, the worker starts their writeback and evicts the part
#: of the partial that is on disk from the page cache (see IncomingFile._write_behind).
WRITE_BEHIND = 8 << 20
_MAX_IOV = 512
_MAX_SIDECAR = 64 * 1024
_MAX_COLLISIONS = 10_000

ProgressCallback = Callable[[int, int], None]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_DONTNEED: int | None = (getattr(os, "POSIX_FADV_DONTNEED", None)
                         if hasattr(os, "posix_fadvise") else None)
_HAVE_DIR_FD = {os.open, os.mkdir, os.link, os.unlink, os.rename} <= os.supports_dir_fd
_LINK_UNSUPPORTED = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.ENOTSUP,
                     getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)}


def _storage_error(what: str, e: OSError) -> StorageError:
    if e.errno == errno.ELOOP:
        return StorageError(f"{what} is a symbolic link; refusing to follow it")
    return StorageError(f"{what}: {e.strerror or e}")


class _Dir:
    """A folder we write into: an open directory fd where the OS supports ``dir_fd``."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def open_root(cls, dest_dir: str | os.PathLike[str]) -> _Dir:
        try:
            path = Path(dest_dir).resolve(strict=True)  # the user's own folder: resolved once
            if not _HAVE_DIR_FD:
                if not path.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, "not a folder")
                return cls(path, None)
            return cls(path, os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC))
        except OSError as e:
            raise _storage_error(f"destination folder {dest_dir}", e) from e

    def child(self, name: str, *, create: bool) -> _Dir:
        """Sub-folder ``name`` (a single sanitized component), never through a symlink."""
        path = self.path / name
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name if self.fd is not None else path, 0o777,
                             **({"dir_fd": self.fd} if self.fd is not None else {}))
            if self.fd is None:
                if os.path.islink(path) or not os.path.isdir(path):
                    raise OSError(errno.ELOOP, "symbolic link or not a folder")
                return _Dir(path, None)
            flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
            return _Dir(path, os.open(name, flags, dir_fd=self.fd))
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StorageError(f"{path} is a symbolic link or not a folder; refusing to "
                                   "write through it") from e
            raise _storage_error(str(path), e) from e

    def _args(self, name: str) -> tuple[str | Path, dict[str, Any]]:
        if self.fd is None:
            return self.path / name, {}
        return name, {"dir_fd": self.fd}

    def open(self, name: str, flags: int, mode: int = 0o666) -> int:
        target, kw = self._args(name)
        if self.fd is None and os.path.islink(target):  # racy fallback (no dir_fd, e.g. Windows)
            if flags & os.O_EXCL:
                raise FileExistsError(errno.EEXIST, "exists", str(target))
            raise OSError(errno.ELOOP, "symbolic link", str(target))
        return os.open(target, flags | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, mode, **kw)

    def unlink(self, name: str) -> None:
        target, kw = self._args(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target, **kw)

    def link(self, src: str, dst: str) -> None:
        """Hard-link ``src`` as ``dst``; FileExistsError if ``dst`` exists (atomic)."""
        if self.fd is None:
            os.link(self.path / src, self.path / dst)
        else:
            os.link(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)

    def replace(self, src: str, dst: str) -> None:
        if self.fd is None:
            os.replace(self.path / src, self.path / dst)
        else:
            os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def names(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.path)

    def fsync(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def _open_dirs(dest_dir: str | os.PathLike[str], relative_dir: PurePosixPath | None,
               *, create: bool) -> _Dir:
    d = _Dir.open_root(dest_dir)
    for part in (relative_dir.parts if relative_dir is not None else ()):
        if part in ("", ".", "..") or "/" in part or "\\" in part:
            d.close()
            raise StorageError(f"unsafe folder name {display_name(part)!r}")
        try:
            nxt = d.child(part, create=create)
        finally:
            d.close()
        d = nxt
    return d


def _lock(fd: int) -> bool:
    """Exclusive advisory lock so two transfers never write one partial."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _utc(date: datetime) -> datetime:
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


def _b64(hashes: Mapping[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode("ascii") for k, v in hashes.items()}


class IncomingFile:
    """One file being received into ``dest_dir`` (see the module docstring).

    Build it with :meth:`create`, :meth:`find_resumable` or :meth:`open`; then
    ``await receive(stream)``, then :meth:`finish` (or :meth:`abort`).  ``offset`` is
    the number of bytes already on disk: accept the offer with
    ``<range offset=…>`` (XEP-0234 §6.4) when it is > 0.
    """

    def __init__(self, *, directory: _Dir, part_name: str, fd: int, name: str, final_name: str,
                 size: int, offset: int, peer: str, relative_dir: PurePosixPath | None,
                 hashes: Mapping[str, bytes], date: datetime | None,
                 algos: tuple[str, ...]) -> None:
        self._dir = directory
        self.part_name = part_name
        self._fd: int | None = fd
        self.name = name
        self.final_name = final_name
        self.size = size
        self.offset = offset
        self.peer = peer
        self.relative_dir = relative_dir
        self.hashes = dict(hashes)
        self.date = date
        self._hasher = MultiHasher(algos)
        self._worker = OrderedWorker("jinglefs-recv")
        self._done = offset
        #: worker thread only: end of what was written, and of the last _write_behind
        self._written = offset
        self._behind = offset
        self._state = "open"  # open -> receiving -> received -> finished | aborted | failed
        self.verification: Verification | None = None

    # -- construction -------------------------------------------------------------

    @staticmethod
    def _algos(hashes: Mapping[str, bytes], extra: tuple[str, ...]) -> tuple[str, ...]:
        # Always sha-256 (what Conversations' <checksum> carries, XEP-0414 MUST), plus
        # every known algorithm the offer named, even as <hash-used/> (empty value).
        names = [DEFAULT_ALGO, *hashes, *extra]
        return tuple(dict.fromkeys(c for c in map(normalize_algo, names) if c is not None))

    @classmethod
    def create(cls, dest_dir: str | os.PathLike[str], name: str, size: int, *, peer: str,
               relative_dir: PurePosixPath | None = None,
               hashes: Mapping[str, bytes] | None = None, date: datetime | None = None,
               algos: tuple[str, ...] = ()) -> IncomingFile:
        """Start a new partial file for an offer (never reuses an existing one).

        ``relative_dir`` must come from :func:`~jinglefs.transfer.names.safe_relative_path`;
        its folders are created under ``dest_dir``.  ``hashes`` are the offer's
        XEP-0300 digests (empty values = algorithm announced only).
        """
        if size < 0:
            raise ValueError("negative size")
        hashes = dict(hashes or {})
        final_name = safe_filename(name)
        d = _open_dirs(dest_dir, relative_dir, create=True)
        try:
            stem, ext = split_extension(final_name)
            base = fit_name(stem, ext, MAX_NAME_BYTES - len(SIDECAR_SUFFIX))
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
            for n in range(_MAX_COLLISIONS):
                part = numbered_name(base, n, max_bytes=MAX_NAME_BYTES - len(SIDECAR_SUFFIX))
                part += PART_SUFFIX
                try:
                    fd = d.open(part, flags)
                except FileExistsError:
                    continue
                try:
                    side = d.open(part + ".json", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                except FileExistsError:  # an orphaned sidecar: leave it, take the next name
                    os.close(fd)
                    d.unlink(part)
                    continue
                except BaseException:
                    os.close(fd)
                    d.unlink(part)
                    raise
                try:
                    meta = {
                        "v": SIDECAR_VERSION, "peer": peer, "name": name,
                        "final_name": final_name, "size": size,
                        "relative_dir": str(relative_dir) if relative_dir is not None else None,
                        "hashes": _b64(canonical_hashes(hashes)),
                        "date": _utc(date).isoformat() if date is not None else None,
                        "created": datetime.now(UTC).isoformat(),
                    }
                    os.write(side, json.dumps(meta, indent=1).encode("utf-8"))
                    _lock(fd)
                except BaseException:
                    os.close(fd)
                    d.unlink(part)
                    d.unlink(part + ".json")
                    raise
                finally:
                    os.close(side)
                return cls(directory=d, part_name=part, fd=fd, name=name,
                           final_name=final_name, size=size, offset=0, peer=peer,
                           relative_dir=relative_dir, hashes=hashes, date=date,
                           algos=cls._algos(hashes, algos))
            raise StorageError(f"too many partial files named like {final_name} in {d.path}")
        except OSError as e:
            d.close()
            raise _storage_error(f"could not create a file in {d.path}", e) from e
        except BaseException:
            d.close()
            raise

    @classmethod
    def find_resumable(cls, dest_dir: str | os.PathLike[str], name: str, size: int, *,
                       peer: str, relative_dir: PurePosixPath | None = None,
                       hashes: Mapping[str, bytes] | None = None, date: datetime | None = None,
                       algos: tuple[str, ...] = ()) -> IncomingFile | None:
        """A partial of this very offer left by an earlier attempt, opened for appending.

        It matches when the sidecar has the same peer (case-insensitive), offered name,
        size and relative folder; when both sides carry digests of a common algorithm
        they must be equal (and at least one algorithm must be common); when both
        carry a date it must be the same second.  The partial must be a regular file
        no larger than ``size`` that no other transfer holds.  Returns None otherwise.
        """
        hashes = dict(hashes or {})
        want = canonical_hashes(hashes)
        try:
            d = _open_dirs(dest_dir, relative_dir, create=False)
        except StorageError:
            return None
        try:
            candidates = sorted(n for n in d.names() if n.endswith(SIDECAR_SUFFIX))
        except OSError:
            d.close()
            return None
        rel = str(relative_dir) if relative_dir is not None else None
        for side_name in candidates:
            meta = _read_sidecar(d, side_name)
            if meta is None or not _matches(meta, peer, name, size, rel, want, date):
                continue
            part = side_name[: -len(".json")]
            try:
                fd = d.open(part, os.O_RDWR)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size > size or not _lock(fd):
                    os.close(fd)
                    continue
                offset = os.lseek(fd, 0, os.SEEK_END)
            except OSError:
                os.close(fd)
                continue
            return cls(directory=d, part_name=part, fd=fd, name=name,
                       final_name=safe_filename(name), size=size, offset=offset, peer=peer,
                       relative_dir=relative_dir, hashes=hashes, date=date,
                       algos=cls._algos(hashes, algos))
        d.close()
        return None

    @classmethod
    def open(cls, dest_dir: str | os.PathLike[str], name: str, size: int, *, peer: str,
             relative_dir: PurePosixPath | None = None,
             hashes: Mapping[str, bytes] | None = None, date: datetime | None = None,
             algos: tuple[str, ...] = (), resume: bool = True) -> IncomingFile:
        """:meth:`find_resumable` (if ``resume``), else :meth:`create`."""
        if resume:
            found = cls.find_resumable(dest_dir, name, size, peer=peer, relative_dir=relative_dir,
                                       hashes=hashes, date=date, algos=algos)
            if found is not None:
                return found
        return cls.create(dest_dir, name, size, peer=peer, relative_dir=relative_dir,
                          hashes=hashes, date=date, algos=algos)

    # -- state --------------------------------------------------------------------

    @property
    def part_path(self) -> Path:
        return self._dir.path / self.part_name

    @property
    def received(self) -> int:
        """Bytes of the file received so far, including ``offset``."""
        return self._done

    @property
    def digests(self) -> dict[str, bytes]:
        """Digests of the whole file so far (complete once :meth:`receive` returned)."""
        return self._hasher.digests()

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.verified

    # -- worker-thread jobs ---------------------------------------------------------

    def _hash_prefix(self) -> None:
        fd = self._require_fd()
        os.lseek(fd, 0, os.SEEK_SET)
        left = self.offset
        while left > 0:
            data = os.read(fd, min(READ_SIZE, left))
            if not data:
                raise StorageError(f"{self.part_path} became shorter while resuming")
            self._hasher.update(data)
            left -= len(data)
        os.lseek(fd, self.offset, os.SEEK_SET)

    def _consume(self, chunks: list[bytes]) -> None:
        for c in chunks:
            self._hasher.update(c)
        fd = self._require_fd()
        try:
            self._written += _write_all(fd, chunks)
        except OSError as e:
            raise _storage_error(f"could not write {self.part_path}", e) from e
        if self._written - self._behind >= WRITE_BEHIND:
            self._write_behind(fd)

    def _write_behind(self, fd: int) -> None:
        """Start the writeback of what was written since the last call, and evict from
        the page cache whatever of the partial is on disk already.  Linux's
        POSIX_FADV_DONTNEED does both: it starts writeback of the range, then drops only
        the pages that are clean (pages still dirty or being written are kept, and are
        dropped by a later call once on disk).

        Two gains, measured on the project's VMs: the final fsync flushes a few MiB
        instead of the whole file (80 ms -> 3 ms per 200 MB), and writes land in recycled
        page-cache pages.  Pages the guest frees are handed back to the host
        (virtio-balloon free page reporting), so writing into fresh ones costs
        1-2.5 s/GB instead of ~0.3.  Durability is unchanged: receive() ends with fsync.
        """
        self._behind = self._written
        if _DONTNEED is not None:  # no posix_fadvise (Windows, macOS): fsync does it all
            with contextlib.suppress(OSError):  # only a hint
                os.posix_fadvise(fd, 0, self._written, _DONTNEED)

    def _fsync(self) -> None:
        try:
            os.fsync(self._require_fd())
        except OSError as e:
            raise _storage_error(f"could not write {self.part_path}", e) from e

    def _require_fd(self) -> int:
        if self._fd is None:
            raise StorageError(f"{self.part_path} is closed")
        return self._fd

    # -- the transfer -------------------------------------------------------------

    async def receive(self, stream: ByteStream, *, on_progress: ProgressCallback | None = None,
                      threaded: bool = True) -> None:
        """Read the remaining ``size - offset`` bytes from ``stream`` into the partial.

        Never asks the stream for more than is still missing.  Hashing and writing run
        on a worker thread (``threaded=False`` runs them inline, for benchmarks),
        pipelined with receiving through a queue of at most ``MAX_PENDING`` batches.
        Ends with an fsync.  ``on_progress(done, size)`` after every read.

        Raises :class:`SizeMismatch` if the stream ends early, :class:`StorageError`
        on a write error, and whatever the stream raises.  The partial is kept either
        way: call :meth:`abort` (optionally keeping it for a resume).
        """
        if self._state != "open":
            raise RuntimeError(f"receive() called in state {self._state}")
        self._state = "receiving"
        worker = self._worker

        async def run(job: Callable[..., None], *args: Any) -> None:
            if threaded:
                await worker.submit(job, *args, max_pending=MAX_PENDING)
            else:
                job(*args)

        batch: list[bytes] = []
        batch_bytes = 0
        try:
            if self.offset:
                await run(self._hash_prefix)
            remaining = self.size - self._done
            while remaining > 0:
                data = await stream.receive(min(READ_SIZE, remaining))
                if not data:
                    raise SizeMismatch(f"received {self._done} of {self.size} bytes")
                if len(data) > remaining:  # a transport bug; the extra bytes are not ours
                    data = data[:remaining]
                remaining -= len(data)
                self._done += len(data)
                batch.append(data)
                batch_bytes += len(data)
                if batch_bytes >= BATCH_BYTES or len(batch) >= _MAX_IOV or not remaining:
                    await run(self._consume, batch)
                    batch, batch_bytes = [], 0
                if on_progress is not None:
                    on_progress(self._done, self.size)
            await run(self._fsync)
            await worker.drain()
        except OSError as e:
            self._state = "failed"
            await worker.settle()
            raise _storage_error(f"could not write {self.part_path}", e) from e
        except (SizeMismatch, TransportError):
            # The link dropped: keep every byte that did arrive, for a later resume.
            self._state = "failed"
            try:
                if batch:
                    await run(self._consume, batch)
                await worker.drain()
            finally:
                await worker.settle()
            raise
        except BaseException:  # cancelled, or a write failed: the file stays a clean prefix
            self._state = "failed"
            await worker.settle()
            raise
        self._state = "received"

    def _close_file(self) -> None:
        self._worker.shutdown(wait=True)  # no job may touch the fd after this
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _discard(self) -> None:
        self._close_file()
        self._dir.unlink(self.part_name)
        self._dir.unlink(self.part_name + ".json")
        self._dir.close()

    def _hash_from_disk(self, algos: list[str]) -> dict[str, bytes]:
        h = MultiHasher(algos)
        fd = self._require_fd()
        os.lseek(fd, 0, os.SEEK_SET)
        while data := os.read(fd, READ_SIZE):
            h.update(data)
        return h.digests()

    def finish(self, expected: Mapping[str, bytes] | None = None) -> Path:
        """Verify, then move the partial into place without overwriting; return the path.

        ``expected`` are digests from the sender's ``<checksum>`` (XEP-0234 §8.2); the
        offer's own digests are checked as well.  Every known algorithm that was
        computed while receiving (sha-256, plus those the offer named) is verified.
        Only if none of the given algorithms was computed is the partial hashed again
        from disk, with the strongest one given; so Conversations' extra sha-1 costs no
        second pass (sha-256 is checked).  On a mismatch the partial and sidecar are deleted and
        :class:`ChecksumMismatch` is raised.  Without any usable digest the file is
        still saved and ``verified`` is False.  The final name is ``final_name``, or
        ``"name (1).ext"`` ... if taken (hard link + unlink, so a file that appears
        meanwhile is never replaced).  The mtime is set from the offer's date.

        Blocking (an fsync of the folder, maybe a re-hash): call it with
        ``asyncio.to_thread`` from the event loop for large files.
        """
        if self._state != "received":
            raise RuntimeError(f"finish() called in state {self._state}")
        self._worker.shutdown(wait=True)
        try:
            actual = self._hasher.digests()
            checks = [canonical_hashes(self.hashes), canonical_hashes(expected or {})]
            given = {a for c in checks for a in c}
            strongest = pick_strongest(given)
            if strongest is not None and not given & set(actual):
                actual.update(self._hash_from_disk([strongest]))
            result = Verification(None, True)
            for want in checks:
                r = verify(want, actual)
                if not r.ok:
                    self._state = "failed"
                    self._discard()
                    assert r.algo is not None
                    raise ChecksumMismatch(
                        f"{r.algo} of {display_name(self.final_name)} is "
                        f"{actual[r.algo].hex()}, expected {want[r.algo].hex()}",
                        algo=r.algo, expected=want[r.algo], actual=actual[r.algo])
                if r.algo is not None and (result.algo is None or want is checks[1]):
                    result = r
            fd = self._require_fd()
            if self.date is not None:
                ts = _utc(self.date).timestamp()
                os.utime(fd if os.utime in os.supports_fd else self.part_path, (ts, ts))
            os.fsync(fd)
            # Still open and locked while it is renamed: no resumer can grab it meanwhile.
            final = self._place()
            self._dir.unlink(self.part_name + ".json")
            self._dir.fsync()
            self._close_file()
        except OSError as e:
            self._state = "failed"
            raise _storage_error(f"could not save {self.final_name} in {self._dir.path}", e) from e
        self._dir.close()
        self._state = "finished"
        self.verification = result
        return final

    def _place(self) -> Path:
        """Give the partial its final name, never replacing an existing entry."""
        linking = True
        for n in range(_MAX_COLLISIONS):
            candidate = numbered_name(self.final_name, n)
            if linking:
                try:
                    self._dir.link(self.part_name, candidate)
                except FileExistsError:
                    continue
                except OSError as e:
                    if e.errno not in _LINK_UNSUPPORTED:
                        raise
                    linking = False  # e.g. FAT/exFAT: reserve the name, then rename over it
                else:
                    self._dir.unlink(self.part_name)
                    return self._dir.path / candidate
            try:
                os.close(self._dir.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            self._dir.replace(self.part_name, candidate)
            return self._dir.path / candidate
        raise StorageError(f"no free name for {self.final_name} in {self._dir.path}")

    def abort(self, *, keep_partial: bool = False) -> None:
        """Stop: delete the partial and sidecar, or keep both so a later offer can resume.

        Idempotent; a no-op after :meth:`finish` succeeded.  Cancel a running
        :meth:`receive` first.
        """
        if self._state in ("finished", "aborted"):
            return
        self._state = "aborted"
        try:
            if keep_partial:
                self._close_file()
                self._dir.close()
            else:
                self._discard()
        except OSError as e:
            raise _storage_error(f"could not clean up {self.part_path}", e) from e


def _write_all(fd: int, chunks: list[bytes]) -> int:
    """Write every chunk (in order); returns the number of bytes written."""
    total = sum(map(len, chunks))
    if not hasattr(os, "writev"):
        for c in chunks:
            view = memoryview(c)
            while view:
                view = view[os.write(fd, view):]
        return total
    written = os.writev(fd, chunks)
    if written == total:
        return total
    rest = memoryview(b"".join(chunks))[written:]  # rare: a short write
    while rest:
        rest = rest[os.write(fd, rest):]
    return total


def _read_sidecar(d: _Dir, name: str) -> dict[str, Any] | None:
    try:
        fd = d.open(name, os.O_RDONLY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, _MAX_SIDECAR + 1)
        meta = json.loads(raw) if len(raw) <= _MAX_SIDECAR else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return meta if isinstance(meta, dict) and meta.get("v") == SIDECAR_VERSION else None


def _matches(meta: dict[str, Any], peer: str, name: str, size: int, rel: str | None,
             want: dict[str, bytes], date: datetime | None) -> bool:
    if (not isinstance(meta.get("peer"), str) or meta["peer"].lower() != peer.lower()
            or meta.get("name") != name or meta.get("size") != size
            or meta.get("relative_dir") != rel):
        return False
    try:
        have = canonical_hashes({k: base64.b64decode(v, validate=True)
                                 for k, v in (meta.get("hashes") or {}).items()})
        if want and have:
            common = set(want) & set(have)
            if not common or any(want[a] != have[a] for a in common):
                return False
        if date is not None and meta.get("date"):
            then = _utc(datetime.fromisoformat(meta["date"]))
            if int(then.timestamp()) != int(_utc(date).timestamp()):
                return False
    except (ValueError, TypeError, AttributeError):
        return False
    return True
