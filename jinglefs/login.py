"""Logging in, the same way for the command line and the desktop app.

* **Which account**: :func:`resolve_login` picks the account (the given JID, else
  ``JINGLEFS_ACCOUNT``, else the default one in ``config.toml``) and merges the stored
  server, certificate and STUN/TURN servers with what the user gave now.
* **Which password**, in this order (:func:`resolve_password`): a password file (first
  line), ``JINGLEFS_PASSWORD``, the system keyring, a prompt on a terminal.  Never the
  command line.  Passwords live in the system keyring (Secret Service / KWallet, Windows
  Credential Locker, macOS Keychain) under the service name ``jinglefs``; when there is none
  (headless Linux, SSH sessions) :func:`store_password` raises :class:`KeyringUnavailable`
  with the alternatives, and nothing is written to disk in plain text instead.
* **Which server**: :func:`make_account` builds the :class:`~jinglefs.api.Account` and
  refuses a missing certificate file, or an unencrypted connection to a server that is not
  on this machine.
* **STUN/TURN**: :func:`ice_settings` checks the servers given now and stored with the
  account (RFC 7064/7065 URIs, :mod:`jinglefs.stun_turn`); a TURN password only ever comes
  from a file.

Every error is a :class:`~jinglefs.errors.UsageError` whose text the CLI prints as it is;
:class:`AccountProblem` also says which field is wrong, so a dialog can phrase it its way.
"""

from __future__ import annotations

import dataclasses
import getpass
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import config
from .api import Account
from .errors import UsageError
from .jid import JidError, bare_jid, check_resource, parse_address, parse_jid
from .stun_turn import TurnUrl, parse_stun, parse_turn, turn_setting
from .text import safe_text

__all__ = [
    "ACCOUNT_ENV",
    "PASSWORD_ENV",
    "KEYRING_SERVICE",
    "KeyringUnavailable",
    "AccountProblem",
    "Login",
    "keyring_available",
    "keyring_problem",
    "store_password",
    "get_password",
    "delete_password",
    "read_password_file",
    "resolve_password",
    "parse_server",
    "is_loopback",
    "check_jid",
    "check_recipient",
    "check_resource_name",
    "check_connection",
    "make_account",
    "resolve_login",
    "check_stun",
    "check_turn",
    "ice_settings",
]

logger = logging.getLogger(__name__)

ACCOUNT_ENV = "JINGLEFS_ACCOUNT"
PASSWORD_ENV = "JINGLEFS_PASSWORD"
KEYRING_SERVICE = "jinglefs"

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


class AccountProblem(UsageError):
    """The account settings are not usable as given.

    :ivar field: what is wrong: ``"jid"``, ``"server"``, ``"ca_file"``, ``"plaintext"`` or
        ``"resource"``.
    """

    def __init__(self, msg: str, *, field: str) -> None:
        super().__init__(msg)
        self.field = field


# --------------------------------------------------------------------------- passwords


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
    except ValueError as e:  # a NUL in the name
        raise UsageError(f"cannot read the password file {safe_text(os.fspath(path))!r}: "
                         f"{e}") from e
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


# --------------------------------------------------------------------------- the account


def parse_server(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    t = text.strip()
    port_text: str | None = None
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise AccountProblem(f"--server {text!r}: use HOST, HOST:PORT or [IPv6]:PORT",
                                 field="server")
        port_text = rest[1:] if rest else None
    elif t.count(":") == 1:
        host, port_text = t.split(":")
    else:
        host = t
    if not host or any(c.isspace() or not c.isprintable() for c in host):
        raise AccountProblem(f"--server '{safe_text(text, 60)}': no host name",
                             field="server")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise AccountProblem(f"--server {text!r}: the port must be a number from 1 to "
                                 f"65535", field="server")
        port = int(port_text)
    return host, port


def is_loopback(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ``::1``: a server on this machine."""
    h = host.strip().lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h.strip("[]")).is_loopback
    except ValueError:
        return False


def check_jid(jid: str, what: str, *, bare: bool = False) -> str:
    """``jid`` without surrounding blanks; :class:`AccountProblem` when it is not a JID (or,
    with ``bare``, names a device).  ``what`` names the option in the message, which is one
    line saying what is wrong (:func:`jinglefs.jid.parse_jid`, RFC 7622)."""
    try:
        parsed = parse_jid(jid)
    except JidError as e:
        raise AccountProblem(f"{what} '{safe_text(jid, 60)}' is not an address like "
                             f"bob@example.org: {e}", field="jid") from None
    if bare and parsed.resource:
        raise AccountProblem(f"{what} must be a bare JID (without /resource): "
                             f"'{safe_text(jid, 60)}'", field="jid")
    return jid.strip()


def check_recipient(text: str, what: str = "recipient") -> str:
    """A JID or an ``xmpp:`` URI (RFC 5122: ``xmpp:bob@example.org?message``) as the JID
    it names; :class:`AccountProblem` (a usage error) in one line when it is malformed."""
    try:
        return str(parse_address(text))
    except JidError as e:
        raise AccountProblem(f"{what} '{safe_text(text, 60)}' is not an address like "
                             f"bob@example.org or xmpp:bob@example.org: {e}",
                             field="jid") from None


def check_resource_name(text: str, what: str = "--resource") -> str:
    """A resource (device name) as RFC 7622 §3.4 allows it; :class:`AccountProblem`."""
    try:
        return check_resource(text)
    except JidError as e:
        raise AccountProblem(f"{what} '{safe_text(text, 60)}': {e}", field="resource") from None


def check_connection(jid: str, *, server: str | None = None, ca_file: str | None = None,
                     allow_plaintext: bool = False) -> None:
    """:class:`AccountProblem` for a missing ``ca_file``, or for ``allow_plaintext`` towards a
    server that is not a loopback address (the password would cross the network in clear).
    Without ``server`` the JID's domain is the server."""
    if ca_file is not None and not os.path.isfile(ca_file):
        raise AccountProblem(f"--ca-file {ca_file}: no such file", field="ca_file")
    if allow_plaintext:
        target = server or bare_jid(jid).partition("@")[2]
        if not is_loopback(target):
            raise AccountProblem(
                f"--allow-plaintext is only allowed for a loopback server (localhost, "
                f"127.0.0.1, ::1), not {target!r}: the password and files would cross the "
                f"network unencrypted", field="plaintext")


def make_account(jid: str, password: str, *, server: str | None = None,
                 port: int | None = None, ca_file: str | None = None,
                 allow_plaintext: bool = False, resource: str | None = None) -> Account:
    """The checked :class:`~jinglefs.api.Account` to log in with (see
    :func:`check_connection`).  Its resource is ``resource``, else the full JID's, else a
    new ``jinglefs-<id>`` (:func:`jinglefs.jid.new_resource`): every instance its own."""
    bare, _, in_jid = check_jid(jid, "--account").partition("/")
    if resource is not None:
        check_resource_name(resource)
        if in_jid and in_jid != resource:
            raise AccountProblem(f"--account {safe_text(jid, 60)!r} names the resource "
                                 f"{safe_text(in_jid, 40)!r} and --resource another one: "
                                 f"give it once", field="resource")
    resource = resource or in_jid
    check_connection(bare, server=server, ca_file=ca_file, allow_plaintext=allow_plaintext)
    return Account(jid=bare, password=password, server=server, port=port, ca_file=ca_file,
                   allow_plaintext=allow_plaintext,
                   **({"resource": resource} if resource else {}))


@dataclass(frozen=True)
class Login:
    """An account ready to log in, with the STUN/TURN servers stored for it (no password:
    a stored TURN server needs a password file, see :func:`ice_settings`)."""

    account: Account
    stun: tuple[str, ...] = ()
    turn: tuple[str, ...] = ()


def resolve_login(jid: str | None = None, *, server: str | None = None,
                  ca_file: str | None = None, allow_plaintext: bool = False,
                  password_file: str | None = None, interactive: bool = False,
                  resource: str | None = None) -> Login:
    """The account to use and its password, from the arguments, the environment and
    ``config.toml``.

    :param jid: the account; default ``JINGLEFS_ACCOUNT``, then the default stored one.
    :param server: ``HOST[:PORT]`` overriding the stored server.
    :param resource: this run's device name (``--resource``); default a new random one.
    """
    wanted = jid or os.environ.get(ACCOUNT_ENV) or None
    stored = config.find_account(wanted)
    if wanted is None and stored is None:
        if config.load_accounts():
            raise UsageError("there are several accounts and none is the default: pass "
                             "--account JID, or run `jinglefs account add JID --default`")
        raise UsageError("no account configured.  Add one with\n"
                         "  jinglefs account add you@example.org\n"
                         "or pass --account JID (with --password-file or JINGLEFS_PASSWORD)")
    full = check_jid(wanted or (stored.jid if stored else ""), "--account")
    host: str | None = stored.server if stored else None
    port: int | None = stored.port if stored else None
    if server:
        host, port = parse_server(server)
    ca = ca_file or (stored.ca_file if stored else None)
    plaintext = bool(allow_plaintext or (stored.allow_plaintext if stored else False))
    check_connection(full, server=host, ca_file=ca, allow_plaintext=plaintext)  # before asking
    if resource is not None:
        check_resource_name(resource)
    password = resolve_password(full.partition("/")[0], password_file=password_file,
                                interactive=interactive)
    account = make_account(full, password, server=host, port=port, ca_file=ca,
                           allow_plaintext=plaintext, resource=resource)
    return Login(account, stun=stored.stun if stored else (), turn=stored.turn if stored else ())


# --------------------------------------------------------------------------- STUN/TURN


def check_stun(text: str) -> str:
    """``text`` when it is a STUN server (``HOST[:PORT]`` or ``stun:``); UsageError if not."""
    try:
        parse_stun(text)
    except ValueError as e:
        raise UsageError(f"STUN server {text!r}: {e}") from None
    return text


def check_turn(text: str) -> TurnUrl:
    """A TURN URL without password (the user info is the user name); UsageError if bad."""
    try:
        url = parse_turn(text, password_in_url=False)
    except ValueError as e:
        # The text is not echoed: someone may have typed a password into it after all.
        raise UsageError(f"TURN server: {e}") from None
    if not url.username:
        raise UsageError(f"TURN server {url.host}:{url.port}: give the user name, "
                         "turn:USER@HOST[:PORT]?transport=udp|tcp")
    return url


def ice_settings(login: Login, *, stun: Iterable[str] = (), turn: Iterable[str] = (),
                 turn_password_file: str | None = None,
                 ice_addresses: Iterable[str] = (), relay_only: bool = False,
                 warn: Callable[[str], None] = logger.warning) -> dict[str, Any]:
    """The ICE fields of :class:`~jinglefs.api.Settings` from the servers given now
    (``stun``/``turn``, they come first) and those stored with the account.

    TURN passwords never come from the command line or ``config.toml``: from XEP-0215 (the
    XMPP server mints them) or from ``turn_password_file``.
    """
    stuns = tuple(check_stun(t) for t in (*stun, *login.stun))  # the first one wins
    given = [check_turn(t) for t in turn]
    stored = [check_turn(t) for t in login.turn]
    turns: list[str] = []
    if turn_password_file is not None:
        if not given and not stored:
            raise UsageError("--turn-password-file without a TURN server (--turn URL)")
        password = read_password_file(turn_password_file)
        turns = [turn_setting(dataclasses.replace(u, password=password))
                 for u in (*given, *stored)]
    elif given:
        raise UsageError("--turn needs --turn-password-file PATH (a file whose first line is "
                         "the TURN password): passwords never go on the command line.  Most "
                         "XMPP servers hand out TURN credentials by themselves (XEP-0215).")
    elif stored:
        warn("the stored TURN server is not used without --turn-password-file")
    addresses = tuple(ice_addresses)
    for addr in addresses:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise UsageError(f"--ice-address {addr!r} is not an IP address") from None
    return {"stun": stuns, "turn": tuple(turns), "ice_host_addresses": addresses or None,
            "ice_relay_only": bool(relay_only)}
