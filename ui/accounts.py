"""Where the app keeps its account: jinglefs.config (shared with the CLI) and the keyring.

The GUI only sees :class:`AccountStore`; tests pass an in-memory one.  Every method may
block (keyring over D-Bus, disk), so the window calls them in a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountInfo:
    jid: str
    server: str | None = None
    port: int | None = None
    ca_file: str | None = None
    allow_plaintext: bool = False


class AccountStore(Protocol):
    def load(self) -> list[AccountInfo]: ...

    def save(self, info: AccountInfo) -> None: ...

    def set_password(self, jid: str, password: str) -> bool:
        """Store the password; False when there is no system keyring to keep it in."""
        ...

    def password(self, jid: str) -> str | None: ...

    def state_dir(self) -> Path: ...

    def downloads_dir(self) -> Path: ...


class ConfigAccountStore:
    """The real store: ``jinglefs.config`` (imported lazily; it is Qt-free)."""

    def load(self) -> list[AccountInfo]:
        from jinglefs import config

        accounts = list(config.load_accounts())
        accounts.sort(key=lambda a: not getattr(a, "default", False))
        return [AccountInfo(jid=a.jid, server=a.server, port=a.port, ca_file=a.ca_file,
                            allow_plaintext=a.allow_plaintext) for a in accounts]

    def save(self, info: AccountInfo) -> None:
        from jinglefs import config

        config.save_account(config.StoredAccount(
            jid=info.jid, server=info.server, port=info.port, ca_file=info.ca_file,
            allow_plaintext=info.allow_plaintext, default=True))

    def set_password(self, jid: str, password: str) -> bool:
        from jinglefs import config

        try:
            config.store_password(jid, password)
        except config.KeyringUnavailable as exc:
            logger.info("no keyring: %s", exc)
            return False
        return True

    def password(self, jid: str) -> str | None:
        from jinglefs import config

        try:
            return config.get_password(jid)
        except Exception as exc:  # a broken keyring backend must not stop the app
            logger.warning("could not read the password from the keyring: %s", exc)
            return None

    def state_dir(self) -> Path:
        from jinglefs import config

        return Path(config.state_dir())

    def downloads_dir(self) -> Path:
        from jinglefs import config

        return Path(config.downloads_dir())
