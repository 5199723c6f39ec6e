"""The resume state of partial downloads, kept in the state directory, never beside them.

The download folder holds the partial file alone (``NAME.jfs-part``).  What a later offer
must match to resume it (XEP-0234 §6.4 ranged transfer) is one small JSON record per
partial in ``config.state_dir()/partials`` (``$XDG_STATE_HOME/jinglefs/partials`` on
Linux; ``JINGLEFS_STATE_DIR`` overrides it): the folder and name of the partial with its
device and inode (so another file put under that name is never taken for it), the
sender's bare JID, the offered name, size, relative folder, hashes and date.

A record is written when the partial is created (at the first byte), so a crash leaves a
resumable partial; it is removed when the file is saved or the partial deleted.  Records
whose partial has gone (the user deleted it) are pruned whenever the store is read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import config
from .hashing import canonical_hashes

logger = logging.getLogger(__name__)

RECORD_VERSION = 2
RECORD_SUFFIX = ".json"
_MAX_RECORD = 64 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def default_dir() -> Path:
    """``config.state_dir()/partials`` (``JINGLEFS_STATE_DIR`` or the user state dir)."""
    return config.state_dir() / "partials"


def _utc(date: datetime) -> datetime:
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PartialRecord:
    """What is known about one partial file."""

    #: absolute path of the folder holding the partial
    folder: str
    #: the partial's file name in that folder (``NAME.jfs-part``)
    part_name: str
    #: ``st_dev`` and ``st_ino`` of the partial when it was created
    dev: int
    ino: int
    #: the sender's bare JID
    peer: str
    #: the name the sender offered, the name it will be saved as, its size
    name: str
    final_name: str
    size: int
    #: the folder transfer's relative folder, or None
    relative_dir: str | None
    #: XEP-0300 digests from the offer (canonical names; empty value = algorithm only)
    hashes: dict[str, bytes] = field(default_factory=dict)
    date: datetime | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def part_path(self) -> Path:
        return Path(self.folder) / self.part_name

    def to_json(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION, "folder": self.folder, "part_name": self.part_name,
            "dev": self.dev, "ino": self.ino, "peer": self.peer, "name": self.name,
            "final_name": self.final_name, "size": self.size,
            "relative_dir": self.relative_dir,
            "hashes": {k: base64.b64encode(v).decode("ascii")
                       for k, v in canonical_hashes(self.hashes).items()},
            "date": _utc(self.date).isoformat() if self.date is not None else None,
            "created": self.created.isoformat(),
        }

    @classmethod
    def from_json(cls, d: Any) -> PartialRecord | None:
        """The record, or None for anything that is not a well-formed record."""
        if not isinstance(d, dict) or d.get("v") != RECORD_VERSION:
            return None
        try:
            strings = [d["folder"], d["part_name"], d["peer"], d["name"], d["final_name"]]
            numbers = [d["dev"], d["ino"], d["size"]]
            if not all(isinstance(s, str) for s in strings) or \
                    not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
                return None
            rel = d.get("relative_dir")
            if rel is not None and not isinstance(rel, str):
                return None
            raw = d.get("hashes") or {}
            if not isinstance(raw, dict):
                return None
            hashes = {str(k): base64.b64decode(v, validate=True) for k, v in raw.items()}
            date = _utc(datetime.fromisoformat(d["date"])) if d.get("date") else None
            created = _utc(datetime.fromisoformat(d["created"])) if d.get("created") \
                else datetime.now(UTC)
        except (KeyError, TypeError, ValueError):
            return None
        if "/" in d["part_name"] or not os.path.isabs(d["folder"]):
            return None
        return cls(folder=d["folder"], part_name=d["part_name"], dev=d["dev"], ino=d["ino"],
                   peer=d["peer"], name=d["name"], final_name=d["final_name"],
                   size=d["size"], relative_dir=rel, hashes=hashes, date=date,
                   created=created)

    def matches(self, *, peer: str, name: str, size: int, relative_dir: str | None,
                hashes: Mapping[str, bytes], date: datetime | None) -> bool:
        """Is this the partial of that offer?  Same peer (case-insensitive), offered name,
        size and relative folder; when both carry digests, at least one algorithm in
        common and equal digests for every common one; when both carry a date, the same
        second."""
        if (self.peer.lower() != peer.lower() or self.name != name or self.size != size
                or self.relative_dir != relative_dir):
            return False
        want = canonical_hashes(hashes)
        have = canonical_hashes(self.hashes)
        if want and have:
            common = set(want) & set(have)
            if not common or any(want[a] != have[a] for a in common):
                return False
        if date is not None and self.date is not None and \
                int(self.date.timestamp()) != int(_utc(date).timestamp()):
            return False
        return True


class PartialStore:
    """The records of one state directory (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_dir()

    @staticmethod
    def key(folder: str, part_name: str) -> str:
        """The record's file name: a digest of where the partial is."""
        return hashlib.sha256(f"{folder}\0{part_name}".encode()).hexdigest()[:40] \
            + RECORD_SUFFIX

    def path_of(self, folder: str, part_name: str) -> Path:
        return self.directory / self.key(folder, part_name)

    def save(self, record: PartialRecord) -> None:
        """Write (or replace) the record atomically; raises OSError."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path_of(record.folder, record.part_name)
        tmp = self.directory / f".{secrets.token_hex(8)}.tmp"
        data = json.dumps(record.to_json(), indent=1).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                     0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self, folder: str, part_name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path_of(folder, part_name))

    def records(self) -> Iterator[PartialRecord]:
        """Every valid record whose partial still exists; prunes the others."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return
        for file_name in names:
            if not file_name.endswith(RECORD_SUFFIX) or file_name.startswith("."):
                continue
            record = self._read(self.directory / file_name)
            if record is None or self.key(record.folder, record.part_name) != file_name:
                logger.info("removing an unreadable resume record %s", file_name)
                self._unlink(file_name)
                continue
            try:
                st = os.lstat(record.part_path)
            except FileNotFoundError:
                self._unlink(file_name)  # the partial is gone: nothing to resume
                continue
            except OSError:
                continue  # e.g. a removable disk that is not mounted now: keep it
            if (st.st_dev, st.st_ino) != (record.dev, record.ino):
                self._unlink(file_name)  # another file took its name
                continue
            yield record

    def _unlink(self, file_name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.directory / file_name)

    @staticmethod
    def _read(path: Path) -> PartialRecord | None:
        try:
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
        except OSError:
            return None
        try:
            raw = os.read(fd, _MAX_RECORD + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(raw) > _MAX_RECORD:
            return None
        try:
            return PartialRecord.from_json(json.loads(raw))
        except ValueError:
            return None
