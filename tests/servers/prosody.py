"""A real, throwaway Prosody on loopback for end-to-end tests and demos.

    with ProsodyServer(tmp_path / "xmpp") as server:
        server.add_account("alice", "pw-a", roster=["bob"])   # alice <-> bob, subscription both
        server.add_account("bob", "pw-b")
        account = server.account("alice")    # jinglefs.api.Account: 127.0.0.1:<port>, ca_file

Everything lives in one work directory (config, data, certs, log, pid); c2s and the
``proxy65`` component (XEP-0065) listen on free ports of 127.0.0.1 only; s2s and HTTP are
off. The config is written from scratch, so nothing of Debian's /etc/prosody applies (its
mod_limits would throttle c2s to 10 kB/s; here ``c2s_rate`` opts into a limit explicitly).

Demo/foreground use (prints one JSON line, stops on SIGTERM/SIGINT)::

    python -m tests.servers.prosody run --dir /tmp/demo-xmpp --accounts alice,bob
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from jinglefs.api import Account

from . import (
    LOOPBACK,
    ManagedServer,
    ServerError,
    free_port,
    require_binary,
)
from .certs import make_self_signed
from .coturn import CoturnServer
from .xmpp_server import XmppAccounts

__all__ = ["ProsodyServer", "DEFAULT_DOMAIN"]

DEFAULT_DOMAIN = "jinglefs.test"
_USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def lua_str(value: str) -> str:
    """A Lua double-quoted string literal for *value* (decimal escapes for anything odd)."""
    out = []
    for byte in value.encode():
        ch = chr(byte)
        if ch in '"\\' or byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _store_encode(name: str) -> str:
    """Prosody's datamanager encoding of host and user names (every non-word char -> %xx)."""
    return "".join(c if c.isascii() and c.isalnum() else f"%{ord(c):02x}" for c in name)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class ProsodyServer(XmppAccounts, ManagedServer):
    """Prosody 0.12 with its own config, data and TLS certificate on 127.0.0.1.

    Attributes others use: ``domain``, ``host`` (127.0.0.1), ``port`` (c2s, STARTTLS),
    ``proxy_jid``, ``proxy65_port``, ``ca_file``, ``dir``, ``log_file``, ``config_file``,
    ``passwords`` (user -> password), ``turn``.  With a fixed ``c2s_port``, ``stop()`` and
    ``start()`` again bring the server back where clients left it (reconnect tests).
    """

    NAME = "prosody"
    PORT_RACE = ("Failed to open server port", "Multiple services configured to listen")

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        domain: str = DEFAULT_DOMAIN,
        require_encryption: bool = True,
        c2s_rate: str | None = None,
        proxy65: bool = True,
        turn: CoturnServer | None = None,
        c2s_port: int | None = None,
        proxy65_port: int | None = None,
        log_level: str = "info",
        start_timeout: float = 20.0,
    ) -> None:
        self.dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="prosody-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domain = domain
        self.proxy_jid = f"proxy.{domain}"
        self.host = LOOPBACK
        self.require_encryption = require_encryption
        self.c2s_rate = c2s_rate
        self.proxy65 = proxy65
        self.turn = turn
        self._fixed_c2s_port = c2s_port
        self._fixed_proxy65_port = proxy65_port
        self.port = c2s_port or 0
        self.proxy65_port = proxy65_port or 0
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.data_dir = self.dir / "data"
        self.cert_dir = self.dir / "certs"
        self.config_file = self.dir / "prosody.cfg.lua"
        self.log_file = self.dir / "prosody.log"
        self.pid_file = self.dir / "prosody.pid"
        self.admin_socket = self.dir / "admin.sock"
        self.ca_file = self.cert_dir / f"{domain}.crt"
        self.key_file = self.cert_dir / f"{domain}.key"
        self.passwords: dict[str, str] = {}
        self._rosters: dict[str, dict[str, str]] = {}  # user -> {contact bare JID: name}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ accounts
    def add_account(
        self, user: str, password: str | None = None, roster: Iterable[str] = ()
    ) -> Account:
        """Create *user* (before start or while running) and return its :class:`Account`.

        Each roster entry (a local username or a bare JID) is made mutual with subscription
        ``both``, so both sides see each other's presence and full JIDs. Entries added while
        the server runs reach online clients as roster pushes; presence then flows after the
        clients' next presence broadcast (simplest: add accounts before logging in).
        """
        if not _USER_RE.match(user):
            raise ValueError(f"username {user!r}: use lowercase letters, digits, '.', '_', '-'")
        password = password if password is not None else secrets.token_urlsafe(12)
        with self._lock:
            self.passwords[user] = password
            # internal_plain account data is read from disk on every login: no cache to beat.
            _atomic_write(
                self._store_path("accounts", user),
                f'return {{\n\t["password"] = {lua_str(password)};\n}};\n',
            )
            pairs: list[tuple[str, str, str]] = []  # (user, contact jid, contact name)
            for contact in roster:
                cjid = contact if "@" in contact else self.jid(contact)
                local, _, domain = cjid.partition("@")
                pairs.append((user, cjid, local))
                if domain == self.domain and local != user:
                    pairs.append((local, self.jid(user), user))
            for owner, cjid, name in pairs:
                self._rosters.setdefault(owner, {})[cjid] = name
            self._rosters.setdefault(user, {})
            if self.running:
                # Prosody only saves rosters of existing users: the new user's entries
                # include those other users set up before it existed.
                live = [(user, c, n) for c, n in self._rosters[user].items()]
                live += [p for p in pairs if p[0] != user and self._exists(p[0])]
                if live:
                    self._live_roster_add(live)
            else:
                for owner in {user, *(p[0] for p in pairs)}:
                    self._write_roster(owner)
        return self.account(user)

    def _exists(self, user: str) -> bool:
        return self._store_path("accounts", user).exists()

    def _store_path(self, store: str, user: str) -> Path:
        return self.data_dir / _store_encode(self.domain) / store / f"{_store_encode(user)}.dat"

    def _write_roster(self, owner: str) -> None:
        entries = "".join(
            f'\t[{lua_str(cjid)}] = {{ ["subscription"] = "both"; '
            f'["name"] = {lua_str(name)}; ["groups"] = {{}}; }};\n'
            for cjid, name in sorted(self._rosters.get(owner, {}).items())
        )
        _atomic_write(self._store_path("roster", owner), f"return {{\n{entries}}};\n")

    def _live_roster_add(self, pairs: list[tuple[str, str, str]]) -> None:
        """Edit rosters inside the running server (its roster cache would hide file edits)."""
        calls = "".join(
            f"add({lua_str(owner)}, {lua_str(cjid)}, {lua_str(name)}); "
            for owner, cjid, name in pairs
        )
        code = (
            '> local rm = require "core.rostermanager"; '
            f"local h = {lua_str(self.domain)}; "
            "local function add(u, c, n) local r = assert(rm.load_roster(u, h)); "
            'r[c] = { subscription = "both"; name = n; groups = {} }; '
            "assert(rm.save_roster(u, h, r, c)); rm.roster_push(u, h, c); end; "
            f"{calls}return true"
        )
        self.shell(code)

    def shell(self, command: str, timeout: float = 20.0) -> str:
        """Run one ``prosodyctl shell`` command against the running server."""
        if not self.running:
            raise ServerError("prosody is not running")
        binary = require_binary("prosodyctl", "prosody")
        res = subprocess.run(
            [binary, "--config", str(self.config_file), "shell", command],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if res.returncode != 0:
            raise ServerError(
                f"prosodyctl shell failed ({res.returncode}): {res.stderr.strip()} "
                f"{res.stdout.strip()}"
            )
        return res.stdout

    # ------------------------------------------------------------------ config
    def _config_text(self) -> str:
        # pep: OMEMO device lists and bundles (XEP-0163; jinglefs.omemo)
        modules = ["roster", "saslauth", "tls", "disco", "ping", "posix", "admin_shell", "pep"]
        extra: list[str] = []
        if self.c2s_rate:
            modules.append("limits")
            extra.append(f"limits = {{ c2s = {{ rate = {lua_str(self.c2s_rate)}; }}; }}")
        else:
            extra.append("-- mod_limits is not loaded: c2s is not rate-limited (c2s_rate=None)")
        if self.turn is not None:
            # XEP-0215 through mod_turn_external (it loads mod_external_services itself).
            modules.append("turn_external")
            extra += [
                f"turn_external_host = {lua_str(self.turn.host)}",
                f"turn_external_port = {self.turn.port}",
                f"turn_external_secret = {lua_str(self.turn.secret)}",
                "turn_external_ttl = 86400",
                "turn_external_tcp = true",
            ]
        enc = "true" if self.require_encryption else "false"
        lines = [
            "-- generated by tests/servers/prosody.py for one test run; do not edit",
            "daemonize = false",
            "run_as_root = true",
            f"pidfile = {lua_str(str(self.pid_file))}",
            f"data_path = {lua_str(str(self.data_dir))}",
            "plugin_paths = { }",
            f"admin_socket = {lua_str(str(self.admin_socket))}",
            f'log = {{ {{ levels = {{ min = {lua_str(self.log_level)} }}; to = "file"; '
            f"filename = {lua_str(str(self.log_file))} }} }}",
            'interfaces = { "127.0.0.1" }',
            'local_interfaces = { "127.0.0.1" }',
            "use_ipv6 = false",
            f"c2s_ports = {{ {self.port} }}",
            "c2s_direct_tls_ports = { }",
            "s2s_ports = { }",
            f"proxy65_ports = {{ {self.proxy65_port} }}" if self.proxy65 else "",
            *self._network_lines(),
            "modules_enabled = { " + "; ".join(lua_str(m) for m in modules) + " }",
            'modules_disabled = { "s2s"; "http"; "bosh"; "websocket" }',
            'authentication = "internal_plain"',
            'storage = "internal"',
            "allow_registration = false",
            f"c2s_require_encryption = {enc}",
            f"allow_unencrypted_plain_auth = {'false' if self.require_encryption else 'true'}",
            f"certificates = {lua_str(str(self.cert_dir))}",
            *extra,
            "",
            f"VirtualHost {lua_str(self.domain)}",
            f"  ssl = {{ certificate = {lua_str(str(self.ca_file))}; "
            f"key = {lua_str(str(self.key_file))} }}",
        ]
        if self.proxy65:
            lines += [
                "",
                f'Component {lua_str(self.proxy_jid)} "proxy65"',
                f"  proxy65_address = {lua_str(self.host)}",
            ]
        return "\n".join(line for line in lines) + "\n"

    def _network_lines(self) -> list[str]:
        if self.c2s_rate:
            # Reproduce Debian's stock server: Prosody's default read sizes and Nagle. With
            # epoll, mod_limits reads one chunk and then pauses for len/rate seconds, so a
            # 256 KiB read size would let whole bursts through unthrottled.
            return ["-- c2s_rate set: default network settings, like a stock server"]
        return [
            # Bigger reads and no Nagle (see /work/shared/perf-anchors.md, IBB rows). Listening
            # ports take their read size from network_default_read_size, not network_settings.
            "network_default_read_size = 262144",
            "network_settings = { read_size = 262144; nagle = false }",
        ]

    # ------------------------------------------------------------------ lifecycle
    def _prepare(self) -> None:
        require_binary("prosody", "prosody")
        super()._prepare()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        if not (self.ca_file.exists() and self.key_file.exists()):
            make_self_signed(self.ca_file, self.key_file, [self.domain, self.proxy_jid])
        if self.turn is not None and not self.turn.port:
            raise ServerError("start the CoturnServer before the ProsodyServer that points at it")

    def _pick_ports(self) -> None:
        self.port = self._fixed_c2s_port or free_port()
        self.proxy65_port = self._fixed_proxy65_port or free_port()
        while self.proxy65_port == self.port:
            self.proxy65_port = free_port()

    def _write_config(self) -> None:
        self.config_file.write_text(self._config_text())
        self.pid_file.unlink(missing_ok=True)

    def _argv(self) -> list[str]:
        return [require_binary("prosody", "prosody"), "-F", "--config", str(self.config_file)]

    def _ready_checks(self) -> list[tuple[int, str]]:
        return [(self.port, "tcp")] + ([(self.proxy65_port, "tcp")] if self.proxy65 else [])

    def _may_retry(self, exc: ServerError) -> bool:
        return super()._may_retry(exc) and not self._fixed_c2s_port


# ---------------------------------------------------------------------- CLI
def _run(args: argparse.Namespace) -> int:
    users = [u.strip() for u in args.accounts.split(",") if u.strip()]
    if args.password_file:
        password = Path(args.password_file).read_text().strip()
    else:
        password = None
    turn = CoturnServer(Path(args.dir) / "coturn") if args.turn else None
    server = ProsodyServer(
        args.dir,
        require_encryption=not args.plaintext,
        c2s_rate=args.c2s_rate,
        proxy65=not args.no_proxy65,
        turn=turn,
        c2s_port=args.port,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if turn is not None:
            turn.start()
        for u in users:  # everybody in the demo knows everybody
            server.add_account(u, password, roster=[o for o in users if o != u])
        server.start()
        info: dict[str, object] = {
            "domain": server.domain,
            "host": server.host,
            "port": server.port,
            "ca_file": str(server.ca_file),
            "accounts": [server.jid(u) for u in users],
            "proxy65": (
                {"jid": server.proxy_jid, "host": server.host, "port": server.proxy65_port}
                if server.proxy65
                else None
            ),
            "turn": {"host": turn.host, "port": turn.port} if turn else None,
            "require_encryption": server.require_encryption,
            "log": str(server.log_file),
            "pid": server.pid,
        }
        if password is None:
            pw_file = Path(args.dir) / "passwords.json"
            _atomic_write(pw_file, json.dumps(server.passwords) + "\n")
            info["password_file"] = str(pw_file)
        else:
            info["password_file"] = str(Path(args.password_file).resolve())
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            if not server.running:
                print(f"prosody exited unexpectedly:\n{server.log_tail()}", file=sys.stderr)
                return 1
        return 0
    except ServerError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        server.stop()
        if turn is not None:
            turn.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.prosody")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a throwaway Prosody in the foreground")
    run.add_argument("--dir", required=True, help="work directory (created; cert kept)")
    run.add_argument("--accounts", default="alice,bob", help="comma-separated usernames")
    run.add_argument(
        "--password-file",
        help="file whose first line is every account's password "
        "(default: random ones, written to DIR/passwords.json)",
    )
    run.add_argument("--port", type=int, help="fixed c2s port (default: a free one)")
    run.add_argument("--plaintext", action="store_true", help="do not require TLS")
    run.add_argument("--no-proxy65", action="store_true", help="no SOCKS5 proxy component")
    run.add_argument("--c2s-rate", help='throttle c2s with mod_limits, e.g. "10kb/s"')
    run.add_argument("--turn", action="store_true", help="also run coturn + XEP-0215")
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
