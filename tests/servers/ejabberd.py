"""A real, throwaway ejabberd on loopback: the same tests as on Prosody, on a second server.

    with EjabberdServer(tmp_path / "xmpp") as server:     # add accounts before or after start
        server.add_account("alice", "pw-a", roster=["bob"])   # alice <-> bob, subscription both
        server.add_account("bob", "pw-b")
        account = server.account("alice")    # jinglefs.api.Account: 127.0.0.1:<port>, ca_file

Same interface as :class:`~tests.servers.prosody.ProsodyServer` (see
:class:`~tests.servers.xmpp_server.XmppServer`). Everything lives in one work directory
(config, Mnesia spool, certificate, logs, crash dump, HOME); c2s, the ``mod_proxy65`` relay
(XEP-0065) and an HTTP listener for ``mod_http_api`` listen on free ports of 127.0.0.1 only.
Nothing of Debian's /etc/ejabberd applies and ``ejabberdctl`` is not used (as root it would
``su`` to the ejabberd user): the Erlang VM runs ``-s ejabberd`` as the current user, as an
undistributed node (``nonode@nohost``), so there is no epmd, no cookie and no node name for
parallel runs to collide on. Accounts and roster items go through the HTTP API
(``register``, ``add_rosteritem``), allowed from 127.0.0.1 only.

Set up as a plain deployment would be except where a test run needs otherwise: c2s has no
shaper (the stock config's ``c2s_shaper`` caps normal users at 3000 B/s), ``max_stanza_size``
is the stock 262144, proxy65 relays unshaped. PEP comes from ``mod_pubsub``'s ``pep`` plugin
(ejabberd has no ``mod_pep``); XEP-0215 (``mod_stun_disco``) is loaded when a
:class:`~tests.servers.coturn.CoturnServer` is given, announcing it with TURN REST credentials.

Demo/foreground use (prints one JSON line, stops on SIGTERM/SIGINT)::

    python -m tests.servers.ejabberd run --dir /tmp/demo-ejabberd --accounts alice,bob
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import secrets
import signal
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from jinglefs.api import Account

from . import LOOPBACK, ManagedServer, ServerError, free_port, require_binary
from .certs import make_self_signed
from .coturn import CoturnServer
from .xmpp_server import XmppAccounts

__all__ = ["EjabberdServer", "DEFAULT_DOMAIN", "ejabberd_lib_dir"]

DEFAULT_DOMAIN = "jinglefs.test"
_USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: Where Debian's package puts the ejabberd OTP application (ebin/, priv/).
_LIB_GLOB = "/usr/lib/*/ejabberd-*/ebin/ejabberd.app"


def ejabberd_lib_dir() -> str:
    """The ERL_LIBS directory holding Debian's ejabberd application, or a ServerError."""
    require_binary("erl", "ejabberd")
    found = sorted(glob.glob(_LIB_GLOB))
    if not found:
        raise ServerError(
            "ejabberd is not installed (no ejabberd.app under /usr/lib/*/ejabberd-*); the "
            "real-server tests need it. Install it with `bash scripts/setup` "
            "(or `sudo apt-get install ejabberd`)."
        )
    return str(Path(found[-1]).parent.parent.parent)


def _erl_string(value: str) -> str:
    """An Erlang string term for *value* (a command-line ``-mnesia dir`` argument)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EjabberdServer(XmppAccounts, ManagedServer):
    """ejabberd 23.01 with its own config, Mnesia spool and TLS certificate on 127.0.0.1.

    Attributes others use: ``domain``, ``host`` (127.0.0.1), ``port`` (c2s, STARTTLS),
    ``proxy_jid``, ``proxy65_port``, ``api_port`` (mod_http_api), ``ca_file``, ``dir``,
    ``log_file``, ``config_file``, ``passwords`` (user -> password), ``turn``. The spool
    survives ``stop()``; with a fixed ``c2s_port``, ``start()`` again brings the server back
    where clients left it.
    """

    NAME = "ejabberd"
    PORT_RACE = ("eaddrinuse", "address already in use")

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        domain: str = DEFAULT_DOMAIN,
        require_encryption: bool = True,
        proxy65: bool = True,
        turn: CoturnServer | None = None,
        c2s_port: int | None = None,
        proxy65_port: int | None = None,
        log_level: str = "info",
        start_timeout: float = 30.0,
    ) -> None:
        self.dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="ejabberd-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domain = domain
        self.proxy_jid = f"proxy.{domain}"
        self.host = LOOPBACK
        self.require_encryption = require_encryption
        self.proxy65 = proxy65
        self.turn = turn
        self._fixed_c2s_port = c2s_port
        self._fixed_proxy65_port = proxy65_port
        self.port = c2s_port or 0
        self.proxy65_port = proxy65_port or 0
        self.api_port = 0
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.spool_dir = self.dir / "spool"
        self.cert_dir = self.dir / "certs"
        self.config_file = self.dir / "ejabberd.yml"
        self.log_file = self.dir / "ejabberd.log"
        self.ca_file = self.cert_dir / f"{domain}.crt"
        self.key_file = self.cert_dir / f"{domain}.key"
        self.passwords: dict[str, str] = {}
        self._rosters: dict[str, dict[str, str]] = {}  # user -> {contact bare JID: name}
        self._registered: set[str] = set()  # users in the spool (it survives restarts)
        self._pushed: set[tuple[str, str]] = set()  # roster items in the spool
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ accounts
    def add_account(
        self, user: str, password: str | None = None, roster: Iterable[str] = ()
    ) -> Account:
        """Create *user* (before start or while running) and return its :class:`Account`.

        Each roster entry (a local username or a bare JID) is made mutual with subscription
        ``both``. Before start the accounts wait until the server is up; while it runs they
        are made at once (online clients get roster pushes; presence flows after their next
        presence broadcast, so add accounts before logging in).
        """
        if not _USER_RE.match(user):
            raise ValueError(f"username {user!r}: use lowercase letters, digits, '.', '_', '-'")
        password = password if password is not None else secrets.token_urlsafe(12)
        with self._lock:
            if user in self._registered and self.passwords.get(user) != password:
                raise ValueError(f"account {user!r} exists with another password")
            self.passwords[user] = password
            self._rosters.setdefault(user, {})
            for contact in roster:
                cjid = contact if "@" in contact else self.jid(contact)
                local, _, domain = cjid.partition("@")
                self._rosters[user][cjid] = local
                if domain == self.domain and local != user:
                    self._rosters.setdefault(local, {})[self.jid(user)] = user
            if self.running:
                self._sync_accounts()
        return self.account(user)

    def _sync_accounts(self) -> None:
        """Register the accounts and add the roster items the spool does not hold yet."""
        for user, password in self.passwords.items():
            if user not in self._registered:
                try:
                    self.api("register", user=user, host=self.domain, password=password)
                except ServerError as exc:  # in a spool kept from an earlier run
                    if "already registered" not in str(exc):
                        raise
                    self.api("change_password", user=user, host=self.domain,
                             newpass=password)
                self._registered.add(user)
        for owner, items in self._rosters.items():
            if owner not in self._registered:
                continue  # a contact that has no account here (yet)
            for cjid, name in items.items():
                if (owner, cjid) in self._pushed:
                    continue
                local, _, domain = cjid.partition("@")
                self.api(
                    "add_rosteritem", localuser=owner, localhost=self.domain, user=local,
                    host=domain, nick=name, group="", subs="both",
                )
                self._pushed.add((owner, cjid))

    def api(self, command: str, **args: object) -> Any:
        """Run one ejabberd command through mod_http_api (POST /api/COMMAND, JSON)."""
        if not self.running:
            raise ServerError("ejabberd is not running")
        request = urllib.request.Request(
            f"http://{self.host}:{self.api_port}/api/{command}",
            data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as reply:
                body = reply.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ServerError(f"ejabberd API {command} failed ({exc.code}): {detail}") from exc
        except OSError as exc:
            raise ServerError(f"ejabberd API {command}: {exc}") from exc
        result = json.loads(body) if body else None
        if command == "add_rosteritem" and result != 0:  # rescode: 0 = ok
            raise ServerError(f"ejabberd API {command} failed: {body}")
        return result

    # ------------------------------------------------------------------ config
    def _config(self) -> dict[str, Any]:
        c2s: dict[str, Any] = {
            "port": self.port,
            "ip": self.host,
            "module": "ejabberd_c2s",
            "starttls": True,
            "starttls_required": self.require_encryption,
            "shaper": "none",  # a deployment's c2s_shaper would throttle IBB
            "max_stanza_size": 262144,  # the stock config's value
        }
        api: dict[str, Any] = {
            "port": self.api_port,
            "ip": self.host,
            "module": "ejabberd_http",
            "request_handlers": {"/api": "mod_http_api"},
        }
        modules: dict[str, Any] = {
            "mod_admin_extra": {},  # add_rosteritem
            "mod_caps": {},
            "mod_disco": {},
            "mod_ping": {},
            "mod_roster": {},
            "mod_pubsub": {"plugins": ["flat", "pep"]},  # PEP (XEP-0163)
        }
        if self.proxy65:
            modules["mod_proxy65"] = {
                "hosts": [self.proxy_jid],
                "ip": self.host,
                "port": self.proxy65_port,
                "shaper": "none",
            }
        if self.turn is not None:
            # XEP-0215: the coturn next door, with TURN REST credentials from its secret.
            turn = {"host": self.turn.host, "port": self.turn.port, "restricted": True}
            modules["mod_stun_disco"] = {
                "offer_local_services": False,
                "secret": self.turn.secret,
                "credentials_lifetime": "1 day",
                "services": [
                    {"host": self.turn.host, "port": self.turn.port, "type": "stun",
                     "transport": "udp", "restricted": False},
                    {**turn, "type": "turn", "transport": "udp"},
                    {**turn, "type": "turn", "transport": "tcp"},
                ],
            }
        return {
            "loglevel": self.log_level,
            "log_rotate_count": 0,
            "hosts": [self.domain],
            "certfiles": [str(self.ca_file), str(self.key_file)],
            "listen": [c2s, api],
            # the stock config's "local" rule: mod_stun_disco answers only what it allows
            "acl": {"loopback": {"ip": ["127.0.0.0/8"]}, "local": {"user_regexp": ""}},
            "api_permissions": {
                "test fixture": {
                    "from": ["mod_http_api"],
                    "who": {"ip": "127.0.0.1/32"},
                    "what": "*",
                }
            },
            "access_rules": {"c2s": {"allow": "all"}, "local": {"allow": "local"}},
            "auth_method": "internal",
            "acme": {"auto": False},  # no certificate requests from a test server
            "modules": modules,
        }

    # ------------------------------------------------------------------ lifecycle
    def _prepare(self) -> None:
        ejabberd_lib_dir()
        super()._prepare()
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        if not (self.ca_file.exists() and self.key_file.exists()):
            names = [self.domain, self.proxy_jid, f"pubsub.{self.domain}"]  # mod_pubsub's host
            make_self_signed(self.ca_file, self.key_file, names)
        if self.turn is not None and not self.turn.port:
            raise ServerError("start the CoturnServer before the EjabberdServer that points at it")

    def _pick_ports(self) -> None:
        taken: set[int] = set()

        def pick(fixed: int | None) -> int:
            port = fixed or free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        self.port = pick(self._fixed_c2s_port)
        self.proxy65_port = pick(self._fixed_proxy65_port)
        self.api_port = pick(None)

    def _write_config(self) -> None:
        # YAML is a superset of JSON: a JSON document needs no YAML quoting rules.
        header = "# generated by tests/servers/ejabberd.py for one test run; do not edit\n"
        self.config_file.write_text(header + json.dumps(self._config(), indent=1) + "\n")

    def _argv(self) -> list[str]:
        env = {
            "HOME": str(self.dir),
            "ERL_LIBS": ejabberd_lib_dir(),
            "EJABBERD_CONFIG_PATH": str(self.config_file),
            "EJABBERD_LOG_PATH": str(self.log_file),  # error.log and crash.log go next to it
            "ERL_CRASH_DUMP": str(self.dir / "erl_crash.dump"),
        }
        return [
            "/usr/bin/env", *(f"{k}={v}" for k, v in env.items()),
            require_binary("erl", "ejabberd"),
            "-noinput",
            # schedulers that sleep instead of spinning: the test machine is shared
            "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
            "-mnesia", "dir", _erl_string(str(self.spool_dir)),
            "-s", "ejabberd",
        ]  # fmt: skip

    def _ready_checks(self) -> list[tuple[int, str]]:
        checks = [(self.port, "tcp"), (self.api_port, "tcp")]
        return checks + ([(self.proxy65_port, "tcp")] if self.proxy65 else [])

    def _may_retry(self, exc: ServerError) -> bool:
        return super()._may_retry(exc) and not self._fixed_c2s_port

    def start(self) -> Self:
        if self.running:
            return self
        super().start()
        try:
            with self._lock:
                self._sync_accounts()
        except ServerError:
            self.stop()
            raise
        return self


# ---------------------------------------------------------------------- CLI
def _run(args: argparse.Namespace) -> int:
    users = [u.strip() for u in args.accounts.split(",") if u.strip()]
    server = EjabberdServer(args.dir, require_encryption=not args.plaintext, c2s_port=args.port)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for u in users:  # everybody in the demo knows everybody
            server.add_account(u, roster=[o for o in users if o != u])
        server.start()
        pw_file = Path(args.dir) / "passwords.json"
        pw_file.write_text(json.dumps(server.passwords) + "\n")
        pw_file.chmod(0o600)
        info = {
            "domain": server.domain,
            "host": server.host,
            "port": server.port,
            "ca_file": str(server.ca_file),
            "accounts": [server.jid(u) for u in users],
            "proxy65": {"jid": server.proxy_jid, "host": server.host,
                        "port": server.proxy65_port},
            "password_file": str(pw_file),
            "log": str(server.log_file),
            "pid": server.pid,
        }
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            if not server.running:
                print(f"ejabberd exited unexpectedly:\n{server.log_tail()}", file=sys.stderr)
                return 1
        return 0
    except ServerError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.ejabberd")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a throwaway ejabberd in the foreground")
    run.add_argument("--dir", required=True, help="work directory (created; spool kept)")
    run.add_argument("--accounts", default="alice,bob", help="comma-separated usernames")
    run.add_argument("--port", type=int, help="fixed c2s port (default: a free one)")
    run.add_argument("--plaintext", action="store_true", help="do not require TLS")
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
