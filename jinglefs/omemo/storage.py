"""Where one account's OMEMO keys, sessions and trust live: one JSON file, owner-only.

``$XDG_DATA_HOME/jinglefs/omemo/<bare JID>/store.json`` (``JINGLEFS_DATA_DIR`` replaces
``$XDG_DATA_HOME/jinglefs``), the folder 0700 and the file 0600.  The file carries the
SHA-256 of its content: a store that does not parse or whose checksum does not match was
changed outside jinglefs (a hand edit, a broken disk, a half-copied backup), and
:class:`StoreDamaged` says so.  It is never replaced by a new identity: that would silently
give the contacts a new device and drop every verification.  The checksum is no defence
against someone who can write to the user's files (they could recompute it); it catches
every change made without it.

One process at a time owns a store (an exclusive ``flock`` on ``lock`` beside it): two
instances with the same device id would each advance its ratchets and break the other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, TextIO

import platformdirs
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import JSONType

from ..jid import bare_jid
from .errors import OmemoError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one instance by convention
    fcntl = None  # type: ignore[assignment]

__all__ = ["DATA_DIR_ENV", "FORMAT", "JsonStorage", "StoreBusy", "StoreDamaged",
           "account_dir", "data_dir"]

DATA_DIR_ENV = "JINGLEFS_DATA_DIR"
#: the ``format`` field of store.json
FORMAT = "jinglefs-omemo-store-1"
STORE_NAME = "store.json"
LOCK_NAME = "lock"


class StoreDamaged(OmemoError):
    """The OMEMO store exists but is not what jinglefs wrote (kept as it is)."""


class StoreBusy(OmemoError):
    """Another jinglefs process uses this account's OMEMO store right now."""


def data_dir() -> Path:
    """``JINGLEFS_DATA_DIR``, else the platform's user data folder for jinglefs."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path(platformdirs.user_data_dir("jinglefs"))


def account_dir(account_jid: str) -> Path:
    """The folder of one account's OMEMO store (the bare JID names it)."""
    name = bare_jid(account_jid)
    if not name or name in (".", "..") or "/" in name or "\0" in name or "\\" in name:
        raise OmemoError(f"{account_jid!r} is not an account name")
    return data_dir() / "omemo" / name


def _digest(data: dict[str, JSONType]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


class JsonStorage(Storage):
    """python-omemo's key/value storage in one checksummed JSON file, written atomically
    (temporary file, fsync, rename) after each batch of changes (see _changed)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(disable_cache=True)  # the whole store is in memory already
        self.folder = folder
        self.path = folder / STORE_NAME
        self._lock: TextIO | None = None
        #: changes not yet on disk, and the write queued for them (see _changed)
        self._dirty = False
        self._write_soon: asyncio.Handle | None = None
        self._data: dict[str, JSONType] = {}

    # ----------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Take the lock and read the store (a missing store is a new, empty one).

        Raises :class:`StoreBusy` or :class:`StoreDamaged`."""
        _private_dir(self.folder)
        lock = open(self.folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115
        os.chmod(self.folder / LOCK_NAME, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                raise StoreBusy(
                    f"another jinglefs process (the app, or a send or receive still running) "
                    f"is using the OMEMO keys in {self.folder}; close it and try again") from None
        self._lock = lock
        try:
            self._data = self._read()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._write_soon is not None:
            self._write_soon.cancel()
            self._write_soon = None
        if self._dirty and self._lock is not None:
            self._write()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    @property
    def is_new(self) -> bool:
        """No store on disk yet (this account's OMEMO identity is made on first use)."""
        return not self.path.exists()

    def _read(self) -> dict[str, JSONType]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise StoreDamaged(f"cannot read {self.path}: {e.strerror or e}") from None
        if os.stat(self.path).st_mode & 0o077:
            os.chmod(self.path, 0o600)  # keep it owner-only, whatever a copy did to it
        damaged = StoreDamaged(
            f"the OMEMO store {self.path} was changed outside jinglefs (its checksum does not "
            f"match); jinglefs keeps it as it is and runs without end-to-end encryption.  If "
            f"you restore it from a backup, encryption comes back with the same device and "
            f"trust; if you move it away, a new device is made and your contacts must verify "
            f"it again")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise damaged from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT \
                or not isinstance(doc.get("data"), dict) or not isinstance(doc.get("sha256"), str):
            raise damaged
        data: dict[str, JSONType] = doc["data"]
        if _digest(data) != doc["sha256"]:
            raise damaged
        return data

    def _write(self) -> None:
        if self._lock is None:
            raise StoreBusy("the OMEMO store is closed")
        doc: dict[str, Any] = {"format": FORMAT, "sha256": _digest(self._data),
                               "data": self._data}
        tmp = self.path.with_name(STORE_NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, sort_keys=True, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, self.path)
        self._dirty = False

    def _changed(self) -> None:
        """Write the store once for every change made in the same event-loop turn.

        python-omemo stores key by key (a new device is ~200 stores, a sealed message a
        few); each rewrite is a JSON dump, a digest and an fsync, so they are gathered and
        written before the loop runs anything else: before any stanza that depends on
        them can go out.  Outside a loop the write is immediate."""
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write()
            return
        if self._write_soon is None:
            self._write_soon = loop.call_soon(self._write_pending)

    def _write_pending(self) -> None:
        self._write_soon = None
        if self._dirty and self._lock is not None:
            self._write()

    # ------------------------------------------------------ omemo.storage.Storage

    async def _load(self, key: str) -> Maybe[JSONType]:
        if key in self._data:
            return Just(self._data[key])
        return Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self._data[key] = json.loads(json.dumps(value))  # a copy, plain JSON types only
        self._changed()

    async def _delete(self, key: str) -> None:
        if key in self._data:
            del self._data[key]
            self._changed()

    # ------------------------------------------------------------ our own records

    def get(self, key: str) -> JSONType:
        """A value stored under one of our own keys (``/jinglefs/...``), or None."""
        return self._data.get(key)

    def put(self, key: str, value: JSONType) -> None:
        self._data[key] = json.loads(json.dumps(value))
        self._changed()
