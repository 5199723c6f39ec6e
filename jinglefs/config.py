"""Where jinglefs keeps things: stored accounts, state, downloads.

Accounts live in ``config_dir()/config.toml`` (``[[account]]`` tables).  The file never
holds a password: passwords are in the system keyring, see :mod:`jinglefs.login` (which
also picks the account and the password to log in with).

Environment overrides (tests and portable installs): ``JINGLEFS_CONFIG_DIR``,
``JINGLEFS_STATE_DIR``, ``JINGLEFS_DOWNLOADS_DIR``.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

from .errors import UsageError
from .jid import bare_jid

__all__ = [
    "APP_NAME",
    "StoredAccount",
    "config_dir",
    "config_file",
    "state_dir",
    "downloads_dir",
    "load_accounts",
    "save_account",
    "remove_account",
    "find_account",
]

APP_NAME = "jinglefs"
CONFIG_DIR_ENV = "JINGLEFS_CONFIG_DIR"
STATE_DIR_ENV = "JINGLEFS_STATE_DIR"
DOWNLOADS_DIR_ENV = "JINGLEFS_DOWNLOADS_DIR"


@dataclass
class StoredAccount:
    """One account in config.toml.  Never holds a password."""

    jid: str
    server: str | None = None
    port: int | None = None
    ca_file: str | None = None
    allow_plaintext: bool = False
    stun: tuple[str, ...] = ()
    turn: tuple[str, ...] = ()
    default: bool = False


# --------------------------------------------------------------------------- paths


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The settings directory (``JINGLEFS_CONFIG_DIR`` or the platform's user config dir)."""
    return _env_dir(CONFIG_DIR_ENV) or Path(platformdirs.user_config_dir(APP_NAME))


def config_file() -> Path:
    return config_dir() / "config.toml"


def state_dir() -> Path:
    """History and partial-download state (``JINGLEFS_STATE_DIR`` or user state dir)."""
    return _env_dir(STATE_DIR_ENV) or Path(platformdirs.user_state_dir(APP_NAME))


def downloads_dir() -> Path:
    """Where received files go by default (``JINGLEFS_DOWNLOADS_DIR`` or user Downloads)."""
    return _env_dir(DOWNLOADS_DIR_ENV) or Path(platformdirs.user_downloads_dir())


# --------------------------------------------------------------------------- accounts


def _str_tuple(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{config_file()}: {key!r} must be a list of strings")
    return tuple(value)


def _account_from_table(table: Mapping[str, Any]) -> StoredAccount:
    path = config_file()
    jid = table.get("jid")
    if not isinstance(jid, str) or not jid:
        raise UsageError(f"{path}: every [[account]] needs a jid = \"user@host\"")

    def opt_str(key: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{path}: {key!r} of {jid} must be a string")
        return value

    port = table.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 < port < 65536):
        raise UsageError(f"{path}: 'port' of {jid} must be a number from 1 to 65535")
    return StoredAccount(
        jid=jid,
        server=opt_str("server"),
        port=port,
        ca_file=opt_str("ca_file"),
        allow_plaintext=bool(table.get("allow_plaintext", False)),
        stun=_str_tuple(table.get("stun"), "stun"),
        turn=_str_tuple(table.get("turn"), "turn"),
        default=bool(table.get("default", False)),
    )


def load_accounts() -> list[StoredAccount]:
    """Every stored account, in file order.  A missing file means no accounts."""
    path = config_file()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return []
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from e
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    tables = data.get("account", [])
    if not isinstance(tables, list):
        raise UsageError(f"{path}: accounts must be [[account]] tables")
    return [_account_from_table(t) for t in tables if isinstance(t, dict)]


def _toml_str(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: str | int | bool | Iterable[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_str(value)
    return "[" + ", ".join(_toml_str(v) for v in value) + "]"


def _dump_accounts(accounts: Iterable[StoredAccount]) -> str:
    lines = ["# jinglefs accounts.  Passwords are never stored here (see `jinglefs account add`).",
             ""]
    for acc in accounts:
        lines.append("[[account]]")
        lines.append(f"jid = {_toml_value(acc.jid)}")
        if acc.server is not None:
            lines.append(f"server = {_toml_value(acc.server)}")
        if acc.port is not None:
            lines.append(f"port = {_toml_value(acc.port)}")
        if acc.ca_file is not None:
            lines.append(f"ca_file = {_toml_value(acc.ca_file)}")
        if acc.allow_plaintext:
            lines.append("allow_plaintext = true")
        if acc.stun:
            lines.append(f"stun = {_toml_value(acc.stun)}")
        if acc.turn:
            lines.append(f"turn = {_toml_value(acc.turn)}")
        if acc.default:
            lines.append("default = true")
        lines.append("")
    return "\n".join(lines)


def _write_accounts(accounts: list[StoredAccount]) -> None:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _dump_accounts(accounts)
    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_account(acc: StoredAccount) -> StoredAccount:
    """Add or replace (same bare JID) an account.

    The first account becomes the default; ``acc.default`` moves the default to it.
    Returns the account as stored.
    """
    accounts = load_accounts()
    key = bare_jid(acc.jid)
    others = [a for a in accounts if bare_jid(a.jid) != key]
    was_default = any(a.default for a in accounts if bare_jid(a.jid) == key)
    stored = replace(acc, default=acc.default or was_default or not any(a.default for a in others))
    if stored.default:
        others = [replace(a, default=False) for a in others]
    position = next((i for i, a in enumerate(accounts) if bare_jid(a.jid) == key), None)
    if position is None:
        others.append(stored)
    else:
        others.insert(min(position, len(others)), stored)
    _write_accounts(others)
    return stored


def remove_account(jid: str) -> bool:
    """Forget an account (not its keyring entry: see :func:`delete_password`).

    Returns False when there was no such account.  If it was the default and exactly one
    account is left, that one becomes the default.
    """
    accounts = load_accounts()
    key = bare_jid(jid)
    left = [a for a in accounts if bare_jid(a.jid) != key]
    if len(left) == len(accounts):
        return False
    if len(left) == 1 and not left[0].default:
        left[0] = replace(left[0], default=True)
    _write_accounts(left)
    return True


def find_account(jid: str | None = None) -> StoredAccount | None:
    """The stored account for ``jid``; for None, the default one (or the only one)."""
    accounts = load_accounts()
    if jid is not None:
        key = bare_jid(jid)
        return next((a for a in accounts if bare_jid(a.jid) == key), None)
    default = next((a for a in accounts if a.default), None)
    if default is not None:
        return default
    return accounts[0] if len(accounts) == 1 else None
