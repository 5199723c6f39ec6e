"""Where jinglefs keeps things: stored accounts, state, downloads, and passwords.

* Accounts live in ``config_dir()/config.toml`` (``[[account]]`` tables).  The file never
  holds a password.
* Passwords live in the system keyring (Secret Service / KWallet, Windows Credential
  Locker, macOS Keychain) under the service name ``jinglefs``.  When there is no keyring
  (headless Linux, SSH sessions) :func:`store_password` raises :class:`KeyringUnavailable`
  with the alternatives; nothing is ever written to disk in plain text instead.
* :func:`resolve_password` is the one order the CLI uses to find a password:
  ``--password-file`` > ``JINGLEFS_PASSWORD`` > keyring > interactive prompt.

Environment overrides (tests and portable installs): ``JINGLEFS_CONFIG_DIR``,
``JINGLEFS_STATE_DIR``, ``JINGLEFS_DOWNLOADS_DIR``.
"""

from __future__ import annotations

import getpass
import logging
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

from .errors import UsageError

__all__ = [
    "APP_NAME",
    "KEYRING_SERVICE",
    "PASSWORD_ENV",
    "StoredAccount",
    "KeyringUnavailable",
    "config_dir",
    "config_file",
    "state_dir",
    "downloads_dir",
    "load_accounts",
    "save_account",
    "remove_account",
    "find_account",
    "bare_jid",
    "keyring_available",
    "keyring_problem",
    "store_password",
    "get_password",
    "delete_password",
    "read_password_file",
    "resolve_password",
]

logger = logging.getLogger(__name__)

APP_NAME = "jinglefs"
KEYRING_SERVICE = "jinglefs"
PASSWORD_ENV = "JINGLEFS_PASSWORD"
CONFIG_DIR_ENV = "JINGLEFS_CONFIG_DIR"
STATE_DIR_ENV = "JINGLEFS_STATE_DIR"
DOWNLOADS_DIR_ENV = "JINGLEFS_DOWNLOADS_DIR"

_PASSWORD_HELP = (
    "Give the password in one of these ways:\n"
    "  --password-file PATH        a file whose first line is the password (chmod 600 it)\n"
    f"  {PASSWORD_ENV}=...   in the environment (less safe: child processes see it)\n"
    "  jinglefs account add JID    to store it in the system keyring\n"
    "  or run the command in a terminal to be asked for it."
)


class KeyringUnavailable(UsageError):
    """No system keyring is available to store the password."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def user_message(self) -> str:
        head = "No system keyring is available to store the password"
        if self.detail:
            head += f" ({self.detail})"
        return (
            f"{head}.\n"
            "This is usual on a server or over SSH.  The password was NOT saved anywhere.\n"
            "Use one of these instead when running jinglefs:\n"
            "  --password-file PATH   a file whose first line is the password (chmod 600 it)\n"
            f"  {PASSWORD_ENV}=...     in the environment (less safe)\n"
            "or install and unlock a keyring (GNOME Keyring, KWallet, or keyrings.alt's\n"
            "encrypted backend) and run `jinglefs account add` again."
        )


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


def bare_jid(jid: str) -> str:
    """``Alice@Example.org/phone`` -> ``alice@example.org`` (for comparisons)."""
    return jid.split("/", 1)[0].strip().lower()


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


# --------------------------------------------------------------------------- secrets


def keyring_problem() -> str | None:
    """Why the keyring cannot be used, or None when it can."""
    import keyring
    from keyring.backends import fail

    try:
        backend = keyring.get_keyring()
    except Exception as e:  # a broken keyring configuration
        return str(e) or type(e).__name__
    if isinstance(backend, fail.Keyring):
        return "no keyring backend found"
    cls = type(backend)
    # keyrings.alt's PlaintextKeyring writes the password unencrypted: never use it
    # silently as if it were a keyring.
    if cls.__module__.startswith("keyrings.alt") and "Plaintext" in cls.__name__:
        return "the only keyring backend stores passwords in plain text"
    return None


def keyring_available() -> bool:
    return keyring_problem() is None


def store_password(jid: str, password: str) -> None:
    """Save the password in the system keyring; :class:`KeyringUnavailable` if there is none."""
    import keyring
    import keyring.errors

    problem = keyring_problem()
    if problem is not None:
        raise KeyringUnavailable(problem)
    try:
        keyring.set_password(KEYRING_SERVICE, bare_jid(jid), password)
    except keyring.errors.NoKeyringError as e:
        raise KeyringUnavailable("no keyring backend found") from e
    except keyring.errors.KeyringError as e:
        raise KeyringUnavailable(str(e) or type(e).__name__) from e


def get_password(jid: str) -> str | None:
    """The stored password, or None when there is none or no keyring is available."""
    import keyring
    import keyring.errors

    if keyring_problem() is not None:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, bare_jid(jid))
    except keyring.errors.KeyringError as e:
        logger.debug("keyring lookup failed: %s", e)
        return None


def delete_password(jid: str) -> bool:
    """Remove the stored password.  False when there was none (or no keyring)."""
    import keyring
    import keyring.errors

    if keyring_problem() is not None:
        return False
    try:
        keyring.delete_password(KEYRING_SERVICE, bare_jid(jid))
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as e:
        logger.debug("keyring delete failed: %s", e)
        return False
    return True


def read_password_file(path: str | os.PathLike[str]) -> str:
    """The first line of ``path`` (line ending removed); UsageError if unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline()
    except OSError as e:
        raise UsageError(f"cannot read the password file {os.fspath(path)}: "
                         f"{e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"the password file {os.fspath(path)} is not UTF-8 text") from e
    password = line.rstrip("\r\n")
    if not password:
        raise UsageError(f"the first line of the password file {os.fspath(path)} is empty")
    return password


def resolve_password(
    jid: str,
    *,
    password_file: str | os.PathLike[str] | None = None,
    interactive: bool = False,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> str:
    """Find the password for ``jid``, in this order:

    1. ``password_file`` (first line);
    2. the ``JINGLEFS_PASSWORD`` environment variable;
    3. the system keyring;
    4. a prompt (``getpass``), only when ``interactive`` (stdin is a TTY and not --no-input).

    Otherwise raise :class:`UsageError` saying exactly how to provide it.
    """
    if password_file is not None:
        return read_password_file(password_file)
    env = os.environ if environ is None else environ
    from_env = env.get(PASSWORD_ENV)
    if from_env:
        return from_env
    stored = get_password(jid)
    if stored:
        return stored
    if interactive:
        ask = prompt or getpass.getpass
        try:
            password = ask(f"Password for {jid}: ")
        except EOFError:
            password = ""
        if password:
            return password
        raise UsageError(f"no password given for {jid}")
    raise UsageError(f"no password for {jid}.\n{_PASSWORD_HELP}")
