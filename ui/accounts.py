"""Where the app keeps its account: ``jinglefs.config`` and ``jinglefs.login`` (shared with
the CLI: the same ``config.toml``, the same keyring entries, the same checks).

The GUI only sees :class:`AccountStore`; tests pass an in-memory one.  Every method may
block (keyring over D-Bus, disk), so the window calls them in a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jinglefs.api import Account

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountInfo:
    jid: str
    server: str | None = None
    port: int | None = None
    ca_file: str | None = None
    allow_plaintext: bool = False

    def account(self, password: str) -> Account:
        """The account to log in with, checked like the CLI's (:func:`jinglefs.login.
        make_account`): raises :class:`~jinglefs.login.AccountProblem` when unusable."""
        from jinglefs import login

        return login.make_account(self.jid, password, server=self.server, port=self.port,
                                  ca_file=self.ca_file, allow_plaintext=self.allow_plaintext)


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
    """The real store: ``jinglefs.config`` and ``jinglefs.login`` (imported lazily; Qt-free)."""

    def load(self) -> list[AccountInfo]:
        from jinglefs import config

        accounts = list(config.load_accounts())
        accounts.sort(key=lambda a: not a.default)
        return [AccountInfo(jid=a.jid, server=a.server, port=a.port, ca_file=a.ca_file,
                            allow_plaintext=a.allow_plaintext) for a in accounts]

    def save(self, info: AccountInfo) -> None:
        """Store the account as the default; STUN/TURN servers stored for it (``jinglefs
        account add --stun/--turn``) are kept."""
        from jinglefs import config

        old = config.find_account(info.jid)
        config.save_account(config.StoredAccount(
            jid=info.jid, server=info.server, port=info.port, ca_file=info.ca_file,
            allow_plaintext=info.allow_plaintext, stun=old.stun if old else (),
            turn=old.turn if old else (), default=True))

    def set_password(self, jid: str, password: str) -> bool:
        from jinglefs import login

        try:
            login.store_password(jid, password)
        except login.KeyringUnavailable as exc:
            logger.info("no keyring: %s", exc)
            return False
        return True

    def password(self, jid: str) -> str | None:
        from jinglefs import login

        try:
            return login.get_password(jid)
        except Exception as exc:  # a broken keyring backend must not stop the app
            logger.warning("could not read the password from the keyring: %s", exc)
            return None

    def state_dir(self) -> Path:
        from jinglefs import config

        return Path(config.state_dir())

    def downloads_dir(self) -> Path:
        from jinglefs import config

        return Path(config.downloads_dir())
