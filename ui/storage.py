"""Preferences and transfer history, kept as small JSON files (no Qt here)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinglefs.api import ENCRYPTION_CHOICES, OfferLike
from jinglefs.jid import JidError, check_resource, new_resource

from .records import TransferRecord
from .text import bare_jid

logger = logging.getLogger(__name__)

STRANGERS_ASK = "ask"
STRANGERS_DECLINE = "decline"

ACCEPT = "accept"
ASK = "ask"
DECLINE = "decline"

#: Rows kept in the history file.
HISTORY_LIMIT = 500

MB = 1024 * 1024


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return None


@dataclass
class Preferences:
    """What the user chose in the app.  ``auto_accept`` maps a bare JID to a byte limit.

    ``resource`` is this install's device name on the account (the XMPP resource,
    ``jinglefs-`` and an id made once, :meth:`ensure_resource`).  It is kept here, in the
    state folder of this machine, and not in ``config.toml``: that file is shared with the
    command line (whose every run takes a new random resource) and is the kind of file
    people copy or sync between machines, and two installs with one resource would
    replace each other on the server.  Stable per install, so that contacts see the same
    device after every restart and a reconnect replaces our own stale session.

    ``encryption`` is ``Settings.encryption`` (``jinglefs.api.ENCRYPTION_CHOICES``):
    "auto" (encrypt whenever the contact's device can), "required", "off".
    """

    download_dir: str = ""
    strangers: str = STRANGERS_ASK
    auto_accept: dict[str, int] = field(default_factory=dict)
    close_to_tray: bool = True
    resource: str = ""
    encryption: str = "auto"
    path: Path | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: Path) -> Preferences:
        data = _read_json(path)
        prefs = cls(path=path)
        if isinstance(data, dict):
            prefs.download_dir = str(data.get("download_dir") or "")
            if data.get("strangers") in (STRANGERS_ASK, STRANGERS_DECLINE):
                prefs.strangers = data["strangers"]
            rules = data.get("auto_accept")
            if isinstance(rules, dict):
                prefs.auto_accept = {
                    str(k): int(v) for k, v in rules.items() if isinstance(v, int) and v >= 0
                }
            prefs.close_to_tray = bool(data.get("close_to_tray", True))
            if data.get("encryption") in ENCRYPTION_CHOICES:
                prefs.encryption = data["encryption"]
            resource = data.get("resource")
            if isinstance(resource, str):
                try:
                    prefs.resource = check_resource(resource)
                except JidError as exc:
                    logger.warning("ignoring the stored device name: %s", exc)
        return prefs

    def ensure_resource(self) -> bool:
        """Make this install's resource if there is none yet; True when it was made (the
        caller saves the preferences)."""
        if self.resource:
            return False
        self.resource = new_resource()
        return True

    def save(self) -> None:
        if self.path is None:
            return
        _write_json(self.path, {
            "download_dir": self.download_dir,
            "strangers": self.strangers,
            "auto_accept": self.auto_accept,
            "close_to_tray": self.close_to_tray,
            "resource": self.resource,
            "encryption": self.encryption,
        })

    def set_auto_accept(self, jid: str, max_bytes: int | None) -> None:
        """Always accept from ``jid`` up to ``max_bytes`` per offer; None removes the rule."""
        if max_bytes is None:
            self.auto_accept.pop(bare_jid(jid), None)
        else:
            self.auto_accept[bare_jid(jid)] = max_bytes


def decide(prefs: Preferences, offer: OfferLike) -> str:
    """What to do with an incoming offer: :data:`ACCEPT`, :data:`ASK` or :data:`DECLINE`.

    Auto-accept never applies to senders outside the roster; strangers are declined or
    asked about, as the user chose.
    """
    if not offer.from_contact:
        return DECLINE if prefs.strangers == STRANGERS_DECLINE else ASK
    limit = prefs.auto_accept.get(bare_jid(offer.peer))
    total = sum(f.size for f in offer.files)
    if limit is not None and total <= limit:
        return ACCEPT
    return ASK


class History:
    """Finished transfers, newest last, surviving restarts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._rows: list[dict[str, Any]] = []
        if path is not None:
            data = _read_json(path)
            if isinstance(data, list):
                self._rows = [r for r in data if isinstance(r, dict)]

    def records(self) -> list[TransferRecord]:
        out = []
        for row in self._rows:
            try:
                out.append(TransferRecord.from_dict(row))
            except (KeyError, ValueError, TypeError) as exc:
                logger.warning("skipping a bad history row: %s", exc)
        return out

    def add(self, rec: TransferRecord) -> None:
        self._rows = [r for r in self._rows if r.get("id") != rec.id]
        self._rows.append(rec.to_dict())
        del self._rows[:-HISTORY_LIMIT]
        self._save()

    def remove_finished(self) -> None:
        self._rows = []
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            _write_json(self.path, self._rows)
        except OSError as exc:
            logger.warning("could not save the history: %s", exc)
