"""Receiving side: :class:`~jinglefs.streams.ByteStream` -> ``<name>.jfs-part`` -> verified file.

XEP-0234 §4: the bytes arrive unframed, so the receiver stops after exactly
``size`` bytes (``size - offset`` when resuming with an XEP-0234 §6.4
``<range offset=…>``).  The file is written under a partial name in the destination
folder, hashed as it arrives (XEP-0300), and renamed into place only after the
digests were checked (docs/protocol.md §9.2: all known algorithms are verified), so nothing
that looks complete ever holds unverified bytes.

A tidy folder: nothing is created on disk before the first byte arrives (not the
partial, not the sub-folders of a folder transfer), so an offer that is accepted but
never delivers leaves nothing behind.  From the first byte on, the folder holds exactly
one file for the transfer, ``<name>.jfs-part``; what a later offer of the same file must
match to resume it (peer, offered name, size, hashes, date) is a record in the state
directory (:mod:`jinglefs.transfer.partials`), never a sidecar beside the user's files.
:meth:`IncomingFile.find_resumable` finds it and asks only for the missing tail
(ux.md "Resume and auto-retry").

Safety: the destination folder is resolved once and opened as a directory fd; every
file and sub-folder is created relative to that fd with ``O_NOFOLLOW`` (and
``O_EXCL`` for new files), so a symlink planted in the folder, or as a component of
a folder transfer's relative path, never makes jinglefs write outside it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
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
from .partials import PartialRecord, PartialStore

logger = logging.getLogger(__name__)

PART_SUFFIX = ".jfs-part"
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


def _unsafe_part(part: str) -> bool:
    return part in ("", ".", "..") or "/" in part or "\\" in part


def _parts(relative_dir: PurePosixPath | None) -> tuple[str, ...]:
    parts = relative_dir.parts if relative_dir is not None else ()
    for part in parts:
        if _unsafe_part(part):
            raise StorageError(f"unsafe folder name {display_name(part)!r}")
    return parts


def _descend(root: _Dir, relative_dir: PurePosixPath | None, *, create: bool) -> _Dir:
    """The folder ``relative_dir`` under ``root`` (made if ``create``), never through a
    symlink.  ``root`` stays open; what is returned is ``root`` itself when there is no
    relative folder, else a new :class:`_Dir` the caller closes."""
    d = root
    try:
        for part in _parts(relative_dir):
            nxt = d.child(part, create=create)
            if d is not root:
                d.close()
            d = nxt
    except BaseException:
        if d is not root:
            d.close()
        raise
    return d


def _deepest_existing(root: _Dir, relative_dir: PurePosixPath | None) -> Path:
    """Check, creating nothing, that ``relative_dir`` can be made under ``root``: every
    component that exists already is a real folder (StorageError for a symlink).  Returns
    the deepest folder of it that exists."""
    d = root
    try:
        for part in _parts(relative_dir):
            try:
                if d.fd is not None:
                    os.stat(part, dir_fd=d.fd, follow_symlinks=False)
                else:
                    os.lstat(d.path / part)
            except FileNotFoundError:
                break
            except OSError as e:
                raise _storage_error(str(d.path / part), e) from e
            nxt = d.child(part, create=False)
            if d is not root:
                d.close()
            d = nxt
        return d.path
    finally:
        if d is not root:
            d.close()


def _open_dirs(dest_dir: str | os.PathLike[str], relative_dir: PurePosixPath | None,
               *, create: bool) -> tuple[_Dir, _Dir]:
    """(root, folder): the destination folder and ``relative_dir`` under it (which may be
    the same object)."""
    root = _Dir.open_root(dest_dir)
    try:
        return root, _descend(root, relative_dir, create=create)
    except BaseException:
        root.close()
        raise


def _lock(fd: int) -> bool:
    """Exclusive advisory lock so two transfers never write one partial."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _utc(date: datetime) -> datetime:
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


class IncomingFile:
    """One file being received into ``dest_dir`` (see the module docstring).

    Build it with :meth:`create`, :meth:`find_resumable` or :meth:`open`; then
    ``await receive(stream)``, then :meth:`finish` (or :meth:`abort`).  ``offset`` is
    the number of bytes already on disk: accept the offer with
    ``<range offset=…>`` (XEP-0234 §6.4) when it is > 0.  A new file has no partial on
    disk (``part_name`` is None) until :meth:`receive` gets its first byte.
    """

    def __init__(self, *, root: _Dir, name: str, final_name: str, size: int, offset: int,
                 peer: str, relative_dir: PurePosixPath | None, hashes: Mapping[str, bytes],
                 date: datetime | None, algos: tuple[str, ...], store: PartialStore,
                 directory: _Dir | None = None, part_name: str | None = None,
                 fd: int | None = None) -> None:
        self._root = root
        #: the folder holding the partial, once it exists
        self._dir = directory
        self.part_name = part_name
        self._fd = fd
        self._store = store
        #: the resume record of the partial is in the state directory
        self._recorded = directory is not None
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
        #: after :meth:`finish`: our digests of every algorithm the sender's hashes used
        #: (all of them matched), e.g. to confirm them to the sender
        self.checked: dict[str, bytes] = {}

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
               algos: tuple[str, ...] = (),
               state_dir: str | os.PathLike[str] | None = None) -> IncomingFile:
        """A new file for an offer (never reuses an existing partial).

        Nothing is created yet: the partial and any folders come with the first byte.
        The destination folder must exist and ``relative_dir`` must be creatable in it
        (no symlink on the way, permission to write): :class:`StorageError` otherwise.
        ``relative_dir`` must come from :func:`~jinglefs.transfer.names.safe_relative_path`.
        ``hashes`` are the offer's XEP-0300 digests (empty values = algorithm announced
        only).  ``state_dir`` holds the resume records (default
        :func:`jinglefs.transfer.partials.default_dir`).
        """
        if size < 0:
            raise ValueError("negative size")
        hashes = dict(hashes or {})
        root = _Dir.open_root(dest_dir)
        try:
            where = _deepest_existing(root, relative_dir)
            if not os.access(where, os.W_OK | os.X_OK):
                raise StorageError(f"could not create a file in {where}: permission denied")
        except BaseException:
            root.close()
            raise
        return cls(root=root, name=name, final_name=safe_filename(name), size=size, offset=0,
                   peer=peer, relative_dir=relative_dir, hashes=hashes, date=date,
                   algos=cls._algos(hashes, algos), store=PartialStore(state_dir))

    @classmethod
    def find_resumable(cls, dest_dir: str | os.PathLike[str], name: str, size: int, *,
                       peer: str, relative_dir: PurePosixPath | None = None,
                       hashes: Mapping[str, bytes] | None = None, date: datetime | None = None,
                       algos: tuple[str, ...] = (),
                       state_dir: str | os.PathLike[str] | None = None) -> IncomingFile | None:
        """A partial of this very offer left by an earlier attempt, opened for appending.

        Its record (:class:`~jinglefs.transfer.partials.PartialRecord`) must name this
        folder and match the offer (:meth:`PartialRecord.matches`: peer, name, size,
        relative folder, digests, date), and the partial must still be the file the
        record was written for (same device and inode), a regular file no larger than
        ``size`` that no other transfer holds.  Returns None otherwise.
        """
        hashes = dict(hashes or {})
        store = PartialStore(state_dir)
        try:
            root, d = _open_dirs(dest_dir, relative_dir, create=False)
        except StorageError:
            return None
        rel = str(relative_dir) if relative_dir is not None else None
        folder = str(d.path)
        for record in store.records():
            if record.folder != folder or not record.matches(
                    peer=peer, name=name, size=size, relative_dir=rel, hashes=hashes,
                    date=date):
                continue
            try:
                fd = d.open(record.part_name, os.O_RDWR)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != \
                        (record.dev, record.ino) or st.st_size > size or not _lock(fd):
                    os.close(fd)
                    continue
                offset = os.lseek(fd, 0, os.SEEK_END)
            except OSError:
                os.close(fd)
                continue
            return cls(root=root, directory=d, part_name=record.part_name, fd=fd, name=name,
                       final_name=safe_filename(name), size=size, offset=offset, peer=peer,
                       relative_dir=relative_dir, hashes=hashes, date=date,
                       algos=cls._algos(hashes, algos), store=store)
        d.close()
        root.close()
        return None

    @classmethod
    def open(cls, dest_dir: str | os.PathLike[str], name: str, size: int, *, peer: str,
             relative_dir: PurePosixPath | None = None,
             hashes: Mapping[str, bytes] | None = None, date: datetime | None = None,
             algos: tuple[str, ...] = (), resume: bool = True,
             state_dir: str | os.PathLike[str] | None = None) -> IncomingFile:
        """:meth:`find_resumable` (if ``resume``), else :meth:`create`."""
        if resume:
            found = cls.find_resumable(dest_dir, name, size, peer=peer, relative_dir=relative_dir,
                                       hashes=hashes, date=date, algos=algos,
                                       state_dir=state_dir)
            if found is not None:
                return found
        return cls.create(dest_dir, name, size, peer=peer, relative_dir=relative_dir,
                          hashes=hashes, date=date, algos=algos, state_dir=state_dir)

    # -- state --------------------------------------------------------------------

    @property
    def part_path(self) -> Path | None:
        """Where the partial is, or None while nothing is on disk."""
        if self._dir is None or self.part_name is None:
            return None
        return self._dir.path / self.part_name

    @property
    def _where(self) -> str:
        path = self.part_path
        return str(path) if path is not None else f"{self.final_name} in {self._root.path}"

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

    def _materialize(self) -> None:
        """Create the partial (and the folders of a folder transfer) and its resume
        record: called with the first byte, so an offer that never delivers leaves
        nothing on disk."""
        d = _descend(self._root, self.relative_dir, create=True)
        try:
            stem, ext = split_extension(self.final_name)
            room = MAX_NAME_BYTES - len(PART_SUFFIX)
            base = fit_name(stem, ext, room)
            for n in range(_MAX_COLLISIONS):
                part = numbered_name(base, n, max_bytes=room) + PART_SUFFIX
                try:
                    fd = d.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    continue
                break
            else:
                raise StorageError(f"too many partial files named like {self.final_name} "
                                   f"in {d.path}")
        except OSError as e:
            if d is not self._root:
                d.close()
            raise _storage_error(f"could not create a file in {d.path}", e) from e
        except BaseException:
            if d is not self._root:
                d.close()
            raise
        _lock(fd)
        self._dir, self.part_name, self._fd = d, part, fd
        self._record(fd)

    def _record(self, fd: int) -> None:
        assert self._dir is not None and self.part_name is not None
        try:
            st = os.fstat(fd)
            self._store.save(PartialRecord(
                folder=str(self._dir.path), part_name=self.part_name, dev=st.st_dev,
                ino=st.st_ino, peer=self.peer, name=self.name, final_name=self.final_name,
                size=self.size,
                relative_dir=str(self.relative_dir) if self.relative_dir is not None else None,
                hashes=canonical_hashes(self.hashes), date=self.date,
                created=datetime.now(UTC)))
        except OSError as e:
            # Not fatal: the file still arrives; an interruption just cannot be resumed.
            logger.warning("cannot keep the resume state of %s in %s: %s", self._where,
                           self._store.directory, e)
            return
        self._recorded = True

    def _hash_prefix(self) -> None:
        fd = self._require_fd()
        os.lseek(fd, 0, os.SEEK_SET)
        left = self.offset
        while left > 0:
            data = os.read(fd, min(READ_SIZE, left))
            if not data:
                raise StorageError(f"{self._where} became shorter while resuming")
            self._hasher.update(data)
            left -= len(data)
        os.lseek(fd, self.offset, os.SEEK_SET)

    def _consume(self, chunks: list[bytes]) -> None:
        if self._dir is None:
            self._materialize()
        for c in chunks:
            self._hasher.update(c)
        fd = self._require_fd()
        try:
            self._written += _write_all(fd, chunks)
        except OSError as e:
            raise _storage_error(f"could not write {self._where}", e) from e
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
        if self._dir is None:  # an empty file: no byte made the partial
            self._materialize()
        try:
            os.fsync(self._require_fd())
        except OSError as e:
            raise _storage_error(f"could not write {self._where}", e) from e

    def _require_fd(self) -> int:
        if self._fd is None:
            raise StorageError(f"{self._where} is closed")
        return self._fd

    def _require_dir(self) -> tuple[_Dir, str]:
        if self._dir is None or self.part_name is None:
            raise StorageError(f"{self._where} was never created")
        return self._dir, self.part_name

    # -- the transfer -------------------------------------------------------------

    async def receive(self, stream: ByteStream, *, on_progress: ProgressCallback | None = None,
                      threaded: bool = True) -> None:
        """Read the remaining ``size - offset`` bytes from ``stream`` into the partial.

        Never asks the stream for more than is still missing.  Hashing and writing run
        on a worker thread (``threaded=False`` runs them inline, for benchmarks),
        pipelined with receiving through a queue of at most ``MAX_PENDING`` batches.
        Ends with an fsync.  ``on_progress(done, size)`` after every read.

        The partial is created with the first byte (an empty file: at the end).
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
            raise _storage_error(f"could not write {self._where}", e) from e
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

    def _close_dirs(self) -> None:
        if self._dir is not None:
            self._dir.close()
        self._root.close()

    def _forget(self) -> None:
        """Remove the resume record (the partial is saved or deleted)."""
        if self._dir is not None and self.part_name is not None:
            self._store.remove(str(self._dir.path), self.part_name)

    def _discard(self) -> None:
        """Delete the partial and its record; close everything."""
        self._close_file()
        try:
            if self._dir is not None and self.part_name is not None:
                self._dir.unlink(self.part_name)
                self._forget()
        finally:
            self._close_dirs()

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
        second pass (sha-256 is checked).  On a mismatch the partial and its resume record are
        deleted and
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
            folder, part = self._require_dir()
            if self.date is not None:
                ts = _utc(self.date).timestamp()
                os.utime(fd if os.utime in os.supports_fd else folder.path / part, (ts, ts))
            os.fsync(fd)
            # Still open and locked while it is renamed: no resumer can grab it meanwhile.
            final = self._place(folder, part)
            self._forget()
            folder.fsync()
            self._close_file()
        except OSError as e:
            self._state = "failed"
            raise _storage_error(f"could not save {self.final_name} in {self._where}", e) from e
        self._close_dirs()
        self._state = "finished"
        self.verification = result
        self.checked = {a: actual[a] for a in sorted(given) if a in actual}
        return final

    def _place(self, folder: _Dir, part: str) -> Path:
        """Give the partial its final name, never replacing an existing entry."""
        linking = True
        for n in range(_MAX_COLLISIONS):
            candidate = numbered_name(self.final_name, n)
            if linking:
                try:
                    folder.link(part, candidate)
                except FileExistsError:
                    continue
                except OSError as e:
                    if e.errno not in _LINK_UNSUPPORTED:
                        raise
                    linking = False  # e.g. FAT/exFAT: reserve the name, then rename over it
                else:
                    folder.unlink(part)
                    return folder.path / candidate
            try:
                os.close(folder.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            folder.replace(part, candidate)
            return folder.path / candidate
        raise StorageError(f"no free name for {self.final_name} in {folder.path}")

    def abort(self, *, keep_partial: bool = False) -> None:
        """Stop: delete the partial and its resume record, or keep both so a later offer
        can resume.  A partial is kept only if it holds at least one byte and its record
        could be written (anything else could never be resumed): an offer that delivered
        nothing leaves nothing on disk.

        Idempotent; a no-op after :meth:`finish` succeeded.  Cancel a running
        :meth:`receive` first.
        """
        if self._state in ("finished", "aborted"):
            return
        self._state = "aborted"
        try:
            self._worker.shutdown(wait=True)  # no job may touch the fd after this
            holds_bytes = self._fd is not None and os.fstat(self._fd).st_size > 0
            if keep_partial and holds_bytes and self._recorded:
                self._close_file()
                self._close_dirs()
            else:
                self._discard()
        except OSError as e:
            raise _storage_error(f"could not clean up {self._where}", e) from e


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
