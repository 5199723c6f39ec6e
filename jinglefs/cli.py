"""The ``jinglefs`` command: send and receive files, manage accounts, start the GUI.

``main(argv, connect=...)`` returns the exit code instead of exiting, and takes the
connect function so that tests drive the CLI in-process against a fake façade.
Human output (progress, warnings, errors) goes to stderr; ``--json`` events and other
data go to stdout.  Passwords are never taken from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import importlib
import ipaddress
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from . import __version__, config
from .api import TRANSPORT_CHOICES, Account, ClientLike, OfferLike, Settings, Timeouts, TransferLike
from .errors import (
    EXIT_AUTH,
    EXIT_CANCELLED,
    EXIT_CONNECT,
    EXIT_DECLINED,
    EXIT_FAILED,
    EXIT_HASH_MISMATCH,
    EXIT_INTERRUPTED,
    EXIT_NO_RECIPIENT,
    EXIT_OK,
    EXIT_TRANSFER,
    EXIT_TRANSPORT,
    EXIT_USAGE,
    JingleFSError,
    UsageError,
    exit_code,
)
from .events import Completed, Failed, TransferEvent, TransferState
from .progress_view import HumanView, JsonView, format_size, parse_size, safe_text

if TYPE_CHECKING:
    from .ice.negotiator import TurnUrl

__all__ = ["main", "build_parser", "ConnectFn", "EXIT_CODE_TABLE"]

ConnectFn = Callable[[Account, Settings], Awaitable[ClientLike]]

ACCOUNT_ENV = "JINGLEFS_ACCOUNT"

#: (code, meaning), shown in --help.  The numbers come from jinglefs.errors.
EXIT_CODE_TABLE: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "every file was sent/received (and verified when the peer gave a checksum)"),
    (EXIT_FAILED, "any other failure; receive: --count not reached before --timeout"),
    (EXIT_USAGE, "bad arguments or configuration (missing or unreadable input file, no"
                 " account, no password, --allow-plaintext for a remote server)"),
    (EXIT_CONNECT, "could not connect to the XMPP server (receive: connection lost)"),
    (EXIT_AUTH, "the server refused the account or password"),
    (EXIT_NO_RECIPIENT, "the recipient has no online device that can receive files"),
    (EXIT_TRANSPORT, "no network path could carry the file"),
    (EXIT_TRANSFER, "the transfer failed (or the peer ended the session)"),
    (EXIT_HASH_MISMATCH, "the file arrived but its checksum did not match; it was not kept"),
    (EXIT_CANCELLED, "the transfer was cancelled (by the peer)"),
    (EXIT_DECLINED, "the recipient declined the file"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C / SIGTERM): running transfers were cancelled"),
)

#: Descriptions of the transports --version lists (only those this install can use).
TRANSPORT_NAMES = {"ice": "ice (WebRTC data channel: ICE, DTLS-encrypted)",
                   "s5b": "s5b (XEP-0260, direct or server proxy)",
                   "ibb": "ibb (XEP-0261, in-band)"}
DEFAULT_HASHES = ("sha-256", "sha3-256", "blake2b-512")

_FORBIDDEN_OPTIONS = ("--password", "--pass", "--passwd", "--pw", "-p")


def _exit_table() -> str:
    rows = "\n".join(
        textwrap.fill(text, width=88, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODE_TABLE)
    return "exit codes:\n" + rows


_MAIN_EXAMPLES = """\
examples:
  jinglefs account add alice@example.org          store the account, password in the keyring
  jinglefs send report.pdf bob@example.org        send to bob's best online device
  jinglefs send photos/ notes.txt bob@example.org/laptop
  jinglefs receive --accept-from bob@example.org --count 1
  jinglefs receive --json --accept-from bob@example.org --max-size 2G > events.ndjson
  JINGLEFS_PASSWORD=... jinglefs send --no-input big.iso bob@example.org

Passwords are never given on the command line: use the keyring (account add),
--password-file PATH, the JINGLEFS_PASSWORD environment variable, or the prompt.

--json prints one object per line on stdout, each with "v" (schema version) and "event":
offered, accepted, transport, progress, verified, completed, failed (per file), offer and
declined (receive), and a final summary {"ok", "exit_code", "files": [...]}.
"""

_SEND_EXAMPLES = """\
examples:
  jinglefs send report.pdf bob@example.org
  jinglefs send a.txt b.txt photos/ bob@example.org/laptop --transport s5b
  jinglefs send --json --no-input --password-file ~/.jfs-pass big.iso bob@example.org

Files are sent in one session; the exit code is the one of the first file (in command-line
order) that failed, and every failed file is listed.
"""

_RECEIVE_EXAMPLES = """\
examples:
  jinglefs receive                                      ask y/N for each offer (terminal)
  jinglefs receive --accept-from bob@example.org --count 1 --output ~/in
  jinglefs receive --accept-from bob@example.org,carol@example.org --max-size 10M --json

Without --accept-from and without a terminal, every offer is declined.  Offers with a
file larger than --max-size are declined.  --timeout stops listening after that many
seconds without a new offer (running transfers still finish).
"""

_ACCOUNT_EXAMPLES = """\
examples:
  jinglefs account add alice@example.org --default
  jinglefs account add test@localhost --server 127.0.0.1:5222 --ca-file test-ca.pem
  jinglefs account list
  jinglefs account test
  jinglefs account remove alice@example.org
"""


class _Parser(argparse.ArgumentParser):
    """No abbreviations (so ``--password`` never matches ``--password-file``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_account_options(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    g = p.add_argument_group("account")
    g.add_argument("--account", metavar="JID",
                   help=f"stored account to use (default: ${ACCOUNT_ENV}, then the default one)")
    g.add_argument("--password-file", metavar="PATH",
                   help="read the password from the first line of PATH")
    g.add_argument("--server", metavar="HOST[:PORT]",
                   help="connect to this host instead of what DNS says")
    g.add_argument("--ca-file", metavar="PEM", help="trust the certificates in this file")
    g.add_argument("--no-proxy", action="store_true",
                   help="never relay SOCKS5 through the server's proxy (XEP-0065)")
    g.add_argument("--allow-plaintext", action="store_true",
                   help="allow an unencrypted connection (loopback servers only)")
    g.add_argument("--no-input", action="store_true",
                   help="never prompt (implied when stdin is not a terminal)")
    if json_flag:
        p.add_argument("--json", action="store_true",
                       help="one JSON object per line on stdout, per event")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the result lines")


def _add_ice_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ICE (direct, encrypted connections through NATs)")
    g.add_argument("--stun", metavar="HOST[:PORT]", action="append", default=[],
                   help="STUN server (default port 3478); wins over the one your XMPP server"
                        " announces (XEP-0215)")
    g.add_argument("--turn", metavar="URL", action="append", default=[],
                   help="TURN server turn:USER@HOST[:PORT]?transport=udp|tcp (or turns:); its"
                        " password comes from --turn-password-file, never from the command"
                        " line.  Not needed when your XMPP server announces one (XEP-0215)")
    g.add_argument("--turn-password-file", metavar="PATH",
                   help="read the TURN password from the first line of PATH")
    g.add_argument("--ice-address", metavar="ADDR", action="append", default=[],
                   help="gather ICE candidates on this local address only (repeatable;"
                        " default: every interface except loopback)")
    g.add_argument("--ice-relay-only", action="store_true",
                   help="ICE only through a TURN relay: the contact never learns your IP"
                        " addresses")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jinglefs",
                     description="Send files directly to XMPP contacts (Jingle File Transfer).\n\n"
                     + _MAIN_EXAMPLES,
                     epilog=_exit_table())
    parser.add_argument("--version", action="store_true",
                        help="print the version and the supported protocol features")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    send = sub.add_parser("send", help="send files to a contact",
                          description="Send files to a contact.\n\n" + _SEND_EXAMPLES,
                          epilog=_exit_table())
    send.add_argument("items", nargs="+", metavar="FILE... RECIPIENT",
                      help="files or folders, then the recipient's JID (bare: best device;"
                           " full JID: that device)")
    send.add_argument("--to", metavar="JID", help="recipient (then every argument is a file)")
    send.add_argument("--transport", choices=TRANSPORT_CHOICES, default="auto",
                      help="auto (ICE, then SOCKS5, then in-band) or force one")
    send.add_argument("--timeout-accept", type=_positive_float, metavar="SECONDS",
                      help="give up when the recipient has not accepted within SECONDS"
                           " (default 300)")
    _add_account_options(send)
    _add_ice_options(send)

    recv = sub.add_parser("receive", help="receive files",
                          description="Wait for incoming files.\n\n" + _RECEIVE_EXAMPLES,
                          epilog=_exit_table())
    recv.add_argument("--accept-from", metavar="JID", nargs="+", action="extend", default=[],
                      help="accept offers from these bare JIDs without asking (comma or space"
                           " separated); decline everyone else")
    recv.add_argument("--output", "-o", metavar="DIR",
                      help="save files here (default: your Downloads folder)")
    recv.add_argument("--count", type=_positive_int, metavar="N",
                      help="exit after accepting N files (and finishing them)")
    recv.add_argument("--max-size", type=_size, metavar="BYTES",
                      help="decline offers with a file larger than this (e.g. 500K, 10M, 2G)")
    recv.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                      help="stop listening after SECONDS without a new offer")
    _add_account_options(recv)
    _add_ice_options(recv)

    acct = sub.add_parser("account", help="add, list, test or remove accounts",
                          description="Manage stored accounts.\n\n" + _ACCOUNT_EXAMPLES,
                          epilog=_exit_table())
    asub = acct.add_subparsers(dest="account_command", metavar="ACTION", parser_class=_Parser)
    add = asub.add_parser("add", help="store an account (password in the system keyring)")
    add.add_argument("jid", metavar="JID")
    add.add_argument("--server", metavar="HOST[:PORT]")
    add.add_argument("--ca-file", metavar="PEM")
    add.add_argument("--allow-plaintext", action="store_true",
                     help="allow an unencrypted connection (loopback servers only)")
    add.add_argument("--stun", metavar="HOST[:PORT]", action="append", default=[],
                     help="STUN server used with this account")
    add.add_argument("--turn", metavar="URL", action="append", default=[],
                     help="TURN server turn:USER@HOST[:PORT]?transport=udp|tcp used with this"
                          " account (no password here: give --turn-password-file to send and"
                          " receive)")
    add.add_argument("--default", action="store_true", help="make it the default account")
    add.add_argument("--password-file", metavar="PATH",
                     help="read the password to store from the first line of PATH")
    add.add_argument("--no-input", action="store_true", help="never prompt")
    lst = asub.add_parser("list", help="list stored accounts")
    lst.add_argument("--json", action="store_true")
    rm = asub.add_parser("remove", help="forget an account and its stored password")
    rm.add_argument("jid", metavar="JID")
    test = asub.add_parser("test", help="log in and report")
    test.add_argument("jid", metavar="JID", nargs="?")
    _add_account_options(test)

    sub.add_parser("gui", help="start the desktop app (needs jinglefs[gui])")
    return parser


# --------------------------------------------------------------------------- helpers


def _stdin_isatty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _interactive(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_input", False) and _stdin_isatty()


def _read_answer(prompt: str) -> str:
    """Ask on stderr, read one line from stdin (runs in a thread)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline()


async def _ask(prompt: str) -> str:
    """:func:`_read_answer` without blocking the loop.  A daemon thread, so a pending
    prompt never keeps the process alive after Ctrl-C."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[str] = loop.create_future()

    def deliver(answer: str) -> None:
        if not fut.done():
            fut.set_result(answer)

    def worker() -> None:
        try:
            answer = _read_answer(prompt)
        except (OSError, ValueError, EOFError):
            answer = ""
        with suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(deliver, answer)

    threading.Thread(target=worker, name="jinglefs-prompt", daemon=True).start()
    return await fut


def parse_server(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    t = text.strip()
    port_text: str | None = None
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"--server {text!r}: use HOST, HOST:PORT or [IPv6]:PORT")
        port_text = rest[1:] if rest else None
    elif t.count(":") == 1:
        host, port_text = t.split(":")
    else:
        host = t
    if not host or any(c.isspace() for c in host):
        raise UsageError(f"--server {text!r}: no host name")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"--server {text!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    return host, port


def is_loopback(host: str) -> bool:
    h = host.strip().lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_jid(jid: str, what: str, *, bare: bool = False) -> str:
    j = jid.strip()
    local, at, rest = j.partition("@")
    domain = rest.split("/", 1)[0]
    if not at or not local or not domain or any(c.isspace() for c in j) or "/" in local:
        raise UsageError(f"{what} {safe_text(jid)!r} is not a JID like bob@example.org")
    if bare and "/" in rest:
        raise UsageError(f"{what} must be a bare JID (without /resource): {safe_text(jid)!r}")
    return j


def _check_inputs(items: Sequence[str]) -> list[Path]:
    """Every input must be a readable regular file or folder; all problems at once."""
    problems: list[str] = []
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        try:
            st = p.stat()
        except FileNotFoundError:
            problems.append(f"{item}: no such file or folder")
            continue
        except OSError as e:
            problems.append(f"{item}: {e.strerror or e}")
            continue
        import stat as _stat

        if _stat.S_ISDIR(st.st_mode):
            if not os.access(p, os.R_OK | os.X_OK):
                problems.append(f"{item}: folder is not readable")
                continue
        elif _stat.S_ISREG(st.st_mode):
            try:
                with p.open("rb"):
                    pass
            except OSError as e:
                problems.append(f"{item}: cannot read ({e.strerror or e})")
                continue
        else:
            problems.append(f"{item}: not a regular file (device, pipe or socket)")
            continue
        paths.append(p)
    if problems:
        raise UsageError("cannot send:\n  " + "\n  ".join(problems))
    return paths


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, config.KeyringUnavailable):
        return exc.user_message
    if isinstance(exc, UsageError):
        return str(exc) or exc.user_message
    if isinstance(exc, JingleFSError):
        return exc.user_message
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _default_connect() -> ConnectFn:
    try:
        module = importlib.import_module("jinglefs.client")
    except ImportError as e:
        if (e.name or "").startswith("jinglefs"):
            raise UsageError("this jinglefs build has no XMPP client (jinglefs.client is "
                             "missing); reinstall jinglefs") from e
        raise
    return cast(ConnectFn, module.connect)


@dataclass
class _Login:
    account: Account
    stun: tuple[str, ...] = ()
    turn: tuple[str, ...] = ()


def _login(args: argparse.Namespace, jid_arg: str | None = None) -> _Login:
    """Account + password from the options, the environment and config.toml."""
    wanted = jid_arg or args.account or os.environ.get(ACCOUNT_ENV) or None
    stored = config.find_account(wanted)
    if wanted is None and stored is None:
        if config.load_accounts():
            raise UsageError("there are several accounts and none is the default: pass "
                             "--account JID, or run `jinglefs account add JID --default`")
        raise UsageError("no account configured.  Add one with\n"
                         "  jinglefs account add you@example.org\n"
                         "or pass --account JID (with --password-file or JINGLEFS_PASSWORD)")
    jid = wanted or (stored.jid if stored else "")
    jid = _check_jid(jid, "--account")
    bare, _, resource = jid.partition("/")

    host: str | None = stored.server if stored else None
    port: int | None = stored.port if stored else None
    if args.server:
        host, port = parse_server(args.server)
    ca_file = args.ca_file or (stored.ca_file if stored else None)
    if ca_file is not None and not os.path.isfile(ca_file):
        raise UsageError(f"--ca-file {ca_file}: no such file")
    plaintext = bool(args.allow_plaintext or (stored.allow_plaintext if stored else False))
    if plaintext:
        target = host or bare.partition("@")[2]
        if not is_loopback(target):
            raise UsageError(f"--allow-plaintext is only allowed for a loopback server "
                             f"(localhost, 127.0.0.1, ::1), not {target!r}: the password and "
                             f"files would cross the network unencrypted")

    password = config.resolve_password(bare, password_file=args.password_file,
                                       interactive=_interactive(args))
    account = Account(jid=bare, password=password, server=host, port=port, ca_file=ca_file,
                      allow_plaintext=plaintext, **({"resource": resource} if resource else {}))
    return _Login(account, stun=stored.stun if stored else (),
                  turn=stored.turn if stored else ())


def _check_stun(text: str) -> str:
    from .ice.negotiator import parse_stun

    try:
        parse_stun(text)
    except ValueError as e:
        raise UsageError(f"STUN server {text!r}: {e}") from None
    return text


def _check_turn(text: str) -> TurnUrl:
    """A TURN URL without password (the user info is the user name); UsageError if bad."""
    from .ice.negotiator import parse_turn

    try:
        url = parse_turn(text, password_in_url=False)
    except ValueError as e:
        # The text is not echoed: someone may have typed a password into it after all.
        raise UsageError(f"TURN server: {e}") from None
    if not url.username:
        raise UsageError(f"TURN server {url.host}:{url.port}: give the user name, "
                         "turn:USER@HOST[:PORT]?transport=udp|tcp")
    return url


def _ice_settings(args: argparse.Namespace, login: _Login,
                  warn: Callable[[str], None]) -> dict[str, Any]:
    """Settings fields for ICE from --stun/--turn/--turn-password-file/--ice-* and the
    stored account.  TURN passwords never come from argv or config.toml: from XEP-0215
    (the XMPP server mints them) or from --turn-password-file."""
    from .ice.negotiator import turn_setting

    stun = tuple(_check_stun(t) for t in (*args.stun, *login.stun))  # first one wins
    given = [_check_turn(t) for t in args.turn]
    stored = [_check_turn(t) for t in login.turn]
    turn: list[str] = []
    if args.turn_password_file is not None:
        if not given and not stored:
            raise UsageError("--turn-password-file without a TURN server (--turn URL)")
        password = config.read_password_file(args.turn_password_file)
        turn = [turn_setting(dataclasses.replace(u, password=password))
                for u in (*given, *stored)]
    elif given:
        raise UsageError("--turn needs --turn-password-file PATH (a file whose first line is "
                         "the TURN password): passwords never go on the command line.  Most "
                         "XMPP servers hand out TURN credentials by themselves (XEP-0215).")
    elif stored:
        warn("the stored TURN server is not used without --turn-password-file")
    addresses: tuple[str, ...] | None = None
    if args.ice_address:
        for addr in args.ice_address:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                raise UsageError(f"--ice-address {addr!r} is not an IP address") from None
        addresses = tuple(args.ice_address)
    return {"stun": stun, "turn": tuple(turn), "ice_host_addresses": addresses,
            "ice_relay_only": bool(args.ice_relay_only)}


# --------------------------------------------------------------------------- output


class _Output:
    """Where a command's output goes: a HumanView on stderr, a JsonView on stdout."""

    def __init__(self, *, json_mode: bool, quiet: bool) -> None:
        self.json = JsonView(sys.stdout) if json_mode else None
        self.human = HumanView(sys.stderr, quiet=quiet or json_mode)
        self.summary_written = False

    def info(self, text: str) -> None:
        self.human.info(text)

    def warn(self, text: str) -> None:
        self.human.always(f"warning: {text}")

    def record(self, event: str, **fields: Any) -> None:
        if self.json is not None:
            self.json.record(event, **fields)

    def transfer_event(self, t: TransferLike, ev: TransferEvent, verb: str) -> None:
        if self.json is not None:
            self.json.event(ev)
        self.human.event(ev)
        if isinstance(ev, Completed | Failed):
            self.human.finished(ev, verb=verb, peer=t.peer)

    def fatal(self, exc: BaseException) -> int:
        code = exit_code(exc)
        text = _error_text(exc)
        prefix = "jinglefs: error: " if isinstance(exc, UsageError) else "error: "
        self.human.always(prefix + text)
        self.summary(ok=False, exit_code=code, error=text)
        return code

    def summary(self, *, ok: bool, exit_code: int, **fields: Any) -> None:
        if self.json is not None and not self.summary_written:
            self.summary_written = True
            self.json.record("summary", ok=ok, exit_code=exit_code, **fields)


@dataclass
class _Result:
    transfer: TransferLike
    ok: bool
    code: int = EXIT_OK
    reason: str = ""
    local_path: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transfer_id": self.transfer.id, "name": self.transfer.file.name,
                               "size": self.transfer.file.size, "ok": self.ok,
                               "exit_code": self.code}
        if self.transfer.path is not None:
            out["transport"] = self.transfer.path.value
        if self.local_path:
            out["local_path"] = self.local_path
        if not self.ok:
            out["error"] = self.reason
        return out


@dataclass
class _Run:
    """What the signal handler must clean up."""

    out: _Output
    client: ClientLike | None = None
    transfers: list[TransferLike] = field(default_factory=list)
    interrupted: str | None = None


async def _follow(t: TransferLike, out: _Output, verb: str) -> _Result:
    out.human.track(t.id, t.file.name, t.file.size)
    try:
        async for ev in t.events():
            out.transfer_event(t, ev, verb)
        final = await t.wait()
    except JingleFSError as e:
        return _Result(t, ok=False, code=e.exit_code, reason=e.user_message)
    except Exception as e:  # a bug in the façade must not hide the other files
        return _Result(t, ok=False, code=exit_code(e), reason=_error_text(e))
    return _Result(t, ok=True, local_path=final.path if isinstance(final, Completed) else "")


async def _cancel_running(run: _Run) -> int:
    n = 0
    for t in run.transfers:
        if t.state in (TransferState.COMPLETED, TransferState.FAILED):
            continue
        n += 1
        with suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(t.cancel(), 10)
    return n


def _run_async(out: _Output, body: Callable[[_Run], Awaitable[int]]) -> int:
    """Run ``body`` with SIGINT/SIGTERM cancelling it (and the running transfers)."""

    async def runner() -> int:
        run = _Run(out)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            if run.interrupted is None:
                run.interrupted = sig.name
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or Windows: KeyboardInterrupt still works
        try:
            return await body(run)
        except asyncio.CancelledError:
            if run.interrupted is None:
                raise
            task.uncancel()
            n = await _cancel_running(run)
            what = f"; cancelled {n} running transfer{'s' if n != 1 else ''}" if n else ""
            out.human.always(f"Interrupted ({run.interrupted}){what}.")
            out.summary(ok=False, exit_code=EXIT_INTERRUPTED, error="interrupted",
                        signal=run.interrupted)
            return EXIT_INTERRUPTED
        except JingleFSError as e:
            return out.fatal(e)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if run.client is not None:
                with suppress(Exception, asyncio.TimeoutError):
                    await asyncio.wait_for(run.client.aclose(), 10)

    try:
        return asyncio.run(runner())
    except KeyboardInterrupt:
        out.human.always("Interrupted.")
        out.summary(ok=False, exit_code=EXIT_INTERRUPTED, error="interrupted")
        return EXIT_INTERRUPTED


def _finish(out: _Output, results: list[_Result], *, verb: str, extra: dict[str, Any]) -> int:
    failed = [r for r in results if not r.ok]
    code = failed[0].code if failed else EXIT_OK
    if failed and len(results) > 1:
        names = ", ".join(f"{safe_text(r.transfer.file.name)} ({r.reason})" for r in failed)
        out.human.always(f"{len(failed)} of {len(results)} files failed: {names}")
    elif results and not failed and len(results) > 1:
        out.info(f"All {len(results)} files {verb.lower()}.")
    out.summary(ok=not failed, exit_code=code, files=[r.as_json() for r in results], **extra)
    return code


# --------------------------------------------------------------------------- commands


def _cmd_send(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    out = _Output(json_mode=args.json, quiet=args.quiet)
    try:
        items = list(args.items)
        if args.to:
            recipient = args.to
        elif len(items) < 2:
            raise UsageError("give the files, then the recipient: "
                             "jinglefs send FILE... bob@example.org")
        else:
            recipient = items.pop()
            if Path(recipient).exists() and "@" not in recipient:
                raise UsageError(f"the last argument must be the recipient's JID, but "
                                 f"{recipient!r} is a file: jinglefs send FILE... RECIPIENT")
        recipient = _check_jid(recipient, "recipient")
        paths = _check_inputs(items)
        login = _login(args)
        timeouts = Timeouts(accept=args.timeout_accept) if args.timeout_accept else Timeouts()
        settings = Settings(transport=args.transport, timeouts=timeouts,
                            use_proxy=not args.no_proxy,
                            **_ice_settings(args, login, out.warn))
        connect_fn = connect or _default_connect()
    except JingleFSError as e:
        return out.fatal(e)

    async def body(run: _Run) -> int:
        run.client = client = await connect_fn(login.account, settings)
        out.info(f"Connected as {safe_text(client.jid)}; offering {len(paths)} "
                 f"item{'s' if len(paths) != 1 else ''} to {safe_text(recipient)}…")
        transport = None if args.transport == "auto" else args.transport
        transfers = await client.send_files(recipient, paths, transport=transport)
        run.transfers.extend(transfers)
        results = await asyncio.gather(*(_follow(t, out, "Sent") for t in transfers))
        return _finish(out, list(results), verb="Sent", extra={"recipient": recipient})

    return _run_async(out, body)


def _parse_accept_from(values: Sequence[str]) -> frozenset[str]:
    jids: set[str] = set()
    for value in values:
        for part in value.split(","):
            if part.strip():
                jids.add(config.bare_jid(_check_jid(part, "--accept-from", bare=True)))
    return frozenset(jids)


def _output_dir(arg: str | None) -> Path:
    if arg is None:
        d = config.downloads_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the download folder {d}: {e.strerror or e}; "
                             f"pass --output DIR") from e
    else:
        d = Path(arg).expanduser()
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--output {arg}: cannot create the folder: "
                             f"{e.strerror or e}") from e
        if not d.is_dir():
            raise UsageError(f"--output {arg}: not a folder")
    if not os.access(d, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into {d}")
    return d


def _offer_json(offer: OfferLike) -> dict[str, Any]:
    return {"offer_id": offer.id, "peer": offer.peer, "from_contact": offer.from_contact,
            "files": [{"name": f.name, "size": f.size, "media_type": f.media_type}
                      for f in offer.files]}


def _cmd_receive(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    out = _Output(json_mode=args.json, quiet=args.quiet)
    interactive = _interactive(args)
    try:
        accept_from = _parse_accept_from(args.accept_from)
        dest = _output_dir(args.output)
        login = _login(args)
        settings = Settings(accept_from=accept_from, max_size=args.max_size,
                            use_proxy=not args.no_proxy,
                            **_ice_settings(args, login, out.warn))
        connect_fn = connect or _default_connect()
    except JingleFSError as e:
        return out.fatal(e)
    if not accept_from and not interactive:
        out.warn("no --accept-from and no terminal to ask on: every offer will be declined. "
                 "Use --accept-from JID to receive without asking.")

    async def decide(offer: OfferLike) -> tuple[bool, str]:
        peer = safe_text(offer.peer)
        if args.max_size is not None:
            big = [f for f in offer.files if f.size > args.max_size]
            if big:
                return False, (f"{safe_text(big[0].name)} ({format_size(big[0].size)}) is "
                               f"larger than --max-size {format_size(args.max_size)}")
        if accept_from:
            if config.bare_jid(offer.peer) in accept_from:
                return True, ""
            return False, f"{config.bare_jid(peer)} is not in --accept-from"
        if not interactive:
            return False, "no --accept-from and no terminal to ask"
        total = sum(f.size for f in offer.files)
        lines = [f"Offer from {peer}"
                 + ("" if offer.from_contact else "  (NOT in your contacts)") + ":"]
        lines += [f"  {safe_text(f.name)}  {format_size(f.size)}" for f in offer.files]
        n = len(offer.files)
        out.human.always("\n".join(lines))
        answer = await _ask(f"Accept {n} file{'s' if n != 1 else ''} ({format_size(total)}) "
                            f"into {dest}? [y/N] ")
        if answer.strip().lower() in ("y", "yes"):
            return True, ""
        return False, "declined at the prompt"

    async def body(run: _Run) -> int:
        run.client = client = await connect_fn(login.account, settings)
        out.info(f"Waiting for files as {safe_text(client.jid)}; saving to {dest}"
                 + (f"; accepting from {', '.join(sorted(accept_from))}" if accept_from else ""))
        queue: asyncio.Queue[OfferLike | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for offer in client.offers():
                    await queue.put(offer)
            finally:
                await queue.put(None)

        results: list[_Result] = []
        accepted = declined = 0
        stop_reason = ""

        async def follow(t: TransferLike) -> None:
            results.append(await _follow(t, out, "Received"))

        order: list[TransferLike] = []
        async with asyncio.TaskGroup() as tg:
            pump_task = tg.create_task(pump())
            try:
                while args.count is None or accepted < args.count:
                    try:
                        offer = await asyncio.wait_for(queue.get(), args.timeout)
                    except TimeoutError:
                        stop_reason = "timeout"
                        break
                    if offer is None:
                        stop_reason = "closed"
                        break
                    out.record("offer", **_offer_json(offer))
                    out.info(f"Offer {offer.id} from {safe_text(offer.peer)}: "
                             + ", ".join(f"{safe_text(f.name)} ({format_size(f.size)})"
                                         for f in offer.files))
                    ok, reason = await decide(offer)
                    try:
                        if not ok:
                            await offer.decline()
                            declined += 1
                            out.record("declined", offer_id=offer.id, peer=offer.peer,
                                       reason=reason)
                            out.human.always(f"Declined offer from {safe_text(offer.peer)}: "
                                             f"{reason}")
                            continue
                        transfers = await offer.accept(dest)
                    except JingleFSError as e:
                        out.human.always(f"error: offer from {safe_text(offer.peer)}: "
                                         f"{_error_text(e)}")
                        continue
                    accepted += len(transfers)
                    run.transfers.extend(transfers)
                    order.extend(transfers)
                    for t in transfers:
                        tg.create_task(follow(t))
            finally:
                pump_task.cancel()
        results.sort(key=lambda r: order.index(r.transfer))
        extra: dict[str, Any] = {"received": sum(r.ok for r in results), "declined": declined}
        if args.count is not None and accepted < args.count and not any(not r.ok
                                                                          for r in results):
            if stop_reason == "closed":
                msg = (f"the connection to the server ended after {accepted} of "
                       f"{args.count} files")
                code = EXIT_CONNECT
            else:
                msg = (f"no new offer for {args.timeout:g} s; got {accepted} of "
                       f"{args.count} files")
                code = EXIT_FAILED
            out.human.always(f"error: {msg}")
            out.summary(ok=False, exit_code=code, error=msg,
                        files=[r.as_json() for r in results], **extra)
            return code
        if stop_reason == "timeout":
            out.info(f"No new offer for {args.timeout:g} s; stopped listening.")
        elif stop_reason == "closed" and args.count is None:
            out.info("The connection to the server ended; stopped listening.")
        return _finish(out, results, verb="Received", extra=extra)

    return _run_async(out, body)


def _account_status(acc: config.StoredAccount, keyring_ok: bool) -> str:
    if not keyring_ok:
        return "no-keyring"
    return "keyring" if config.get_password(acc.jid) else "none"


def _cmd_account(args: argparse.Namespace, connect: ConnectFn | None,
                 parser: argparse.ArgumentParser) -> int:
    action = args.account_command
    if action is None:
        print("jinglefs: error: choose what to do: jinglefs account add|list|test|remove "
              "(see jinglefs account --help)", file=sys.stderr)
        return EXIT_USAGE
    if action == "test":
        return _cmd_account_test(args, connect)
    out = _Output(json_mode=getattr(args, "json", False), quiet=False)
    try:
        if action == "add":
            return _account_add(args, out)
        if action == "list":
            return _account_list(args, out)
        if action == "remove":
            jid = _check_jid(args.jid, "JID", bare=True)
            if not config.remove_account(jid):
                raise UsageError(f"no stored account {jid}")
            had_pw = config.delete_password(jid)
            out.human.always(f"Removed {jid}" + (" and its password from the keyring."
                                                  if had_pw else "."))
            return EXIT_OK
    except JingleFSError as e:
        return out.fatal(e)
    raise AssertionError(action)


def _account_add(args: argparse.Namespace, out: _Output) -> int:
    jid = _check_jid(args.jid, "JID", bare=True)
    host: str | None = None
    port: int | None = None
    if args.server:
        host, port = parse_server(args.server)
    if args.ca_file is not None and not os.path.isfile(args.ca_file):
        raise UsageError(f"--ca-file {args.ca_file}: no such file")
    if args.allow_plaintext and not is_loopback(host or jid.partition("@")[2]):
        raise UsageError("--allow-plaintext is only allowed for a loopback server "
                         "(localhost, 127.0.0.1, ::1)")
    ca_file = os.path.abspath(args.ca_file) if args.ca_file else None
    for text in args.stun:
        _check_stun(text)
    for text in args.turn:
        _check_turn(text)  # no password in config.toml (nor on the command line)
    stored = config.save_account(config.StoredAccount(
        jid=jid, server=host, port=port, ca_file=ca_file, allow_plaintext=args.allow_plaintext,
        stun=tuple(args.stun), turn=tuple(args.turn), default=args.default))
    out.human.always(f"Saved account {jid}" + (" (default)" if stored.default else "")
                     + f" in {config.config_file()}.")

    password: str | None = None
    if args.password_file:
        password = config.read_password_file(args.password_file)
    elif os.environ.get(config.PASSWORD_ENV):
        password = os.environ[config.PASSWORD_ENV]
    problem = config.keyring_problem()
    if problem is not None:
        out.human.always("warning: " + config.KeyringUnavailable(problem).user_message)
        return EXIT_OK
    if password is None:
        if not _interactive(args):
            out.human.always("warning: no password stored (no terminal to ask, no "
                             "--password-file, no JINGLEFS_PASSWORD).  Run this command in a "
                             "terminal, or give the password each time with --password-file.")
            return EXIT_OK
        first = getpass.getpass(f"Password for {jid}: ")
        if not first:
            out.human.always("No password stored; you will be asked when needed.")
            return EXIT_OK
        if getpass.getpass("Again, to confirm: ") != first:
            raise UsageError("the two passwords differ; nothing was stored in the keyring")
        password = first
    config.store_password(jid, password)
    out.human.always("Password stored in the system keyring.")
    return EXIT_OK


def _account_list(args: argparse.Namespace, out: _Output) -> int:
    accounts = config.load_accounts()
    keyring_ok = config.keyring_available()
    if not accounts:
        out.human.always("No accounts.  Add one with: jinglefs account add you@example.org")
        return EXIT_OK
    for acc in accounts:
        status = _account_status(acc, keyring_ok)
        if out.json is not None:
            out.json.record("account", jid=acc.jid, default=acc.default, server=acc.server,
                            port=acc.port, ca_file=acc.ca_file,
                            allow_plaintext=acc.allow_plaintext, password=status)
            continue
        where = ""
        if acc.server:
            where = f"server {acc.server}" + (f":{acc.port}" if acc.port else "") + ", "
        pw = {"keyring": "password in keyring", "none": "no stored password",
              "no-keyring": "no keyring: use --password-file or JINGLEFS_PASSWORD"}[status]
        print(f"{'*' if acc.default else ' '} {acc.jid}  ({where}{pw})")
    return EXIT_OK


def _cmd_account_test(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    out = _Output(json_mode=args.json, quiet=args.quiet)
    try:
        login = _login(args, args.jid)
        connect_fn = connect or _default_connect()
    except JingleFSError as e:
        return out.fatal(e)

    async def body(run: _Run) -> int:
        run.client = client = await connect_fn(login.account, Settings())
        contacts = client.contacts()
        online = sum(c.online for c in contacts)
        capable = sum(c.can_receive_files for c in contacts)
        out.human.always(f"✓ Logged in as {safe_text(client.jid)}: {len(contacts)} contacts, "
                         f"{online} online, {capable} can receive files.")
        out.summary(ok=True, exit_code=EXIT_OK, jid=client.jid, contacts=len(contacts),
                    online=online, can_receive_files=capable)
        return EXIT_OK

    return _run_async(out, body)


def _cmd_gui() -> int:
    try:
        app = importlib.import_module("jinglefs_ui.app")
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing in ("PySide6", "shiboken6", "qasync", "jinglefs_ui"):
            print("The desktop app is not installed.  Install it with:\n"
                  "  pip install 'jinglefs[gui]'", file=sys.stderr)
            return EXIT_FAILED
        raise
    result = app.main()
    return int(result or 0)


def _available_transports() -> list[str]:
    from .ladder import LADDER

    return [TRANSPORT_NAMES[r.kind] for r in LADDER]


def _version_text() -> str:
    hashes: Sequence[str] = DEFAULT_HASHES
    with suppress(ImportError):
        hashing = importlib.import_module("jinglefs.transfer.hashing")
        hashes = tuple(getattr(hashing, "SUPPORTED_ALGOS", DEFAULT_HASHES))
    return (f"jinglefs {__version__}\n"
            f"file transfer: XEP-0234 (Jingle File Transfer), XEP-0166 (Jingle)\n"
            f"transports: {', '.join(_available_transports())}\n"
            f"hashes (XEP-0300): {', '.join(hashes)}\n"
            f"--json schema: v1")


def _reject_password_options(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            return None
        name = arg.split("=", 1)[0]
        if name in _FORBIDDEN_OPTIONS or (name.startswith("--pass")
                                          and name != "--password-file"):
            return name
        if name.startswith("-p") and not name.startswith("--"):
            return "-p"
    return None


def main(argv: Sequence[str] | None = None, *, connect: ConnectFn | None = None) -> int:
    """Run the ``jinglefs`` command; returns the exit code (see ``EXIT_CODE_TABLE``).

    :param argv: the arguments without the program name (default ``sys.argv[1:]``).
    :param connect: ``connect(account, settings) -> ClientLike``; default
        ``jinglefs.client.connect``, imported only when a command needs it.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    bad = _reject_password_options(args_list)
    if bad is not None:
        # Never echo the value: it may be a password.
        print(f"jinglefs: error: there is no {bad} option.  Passwords on the command line are "
              f"visible to other users (ps, shell history).  Use the keyring (`jinglefs account "
              f"add`), --password-file PATH, or the JINGLEFS_PASSWORD environment variable.",
              file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.version:
        print(_version_text())
        return EXIT_OK
    try:
        if args.command == "send":
            return _cmd_send(args, connect)
        if args.command == "receive":
            return _cmd_receive(args, connect)
        if args.command == "account":
            return _cmd_account(args, connect, parser)
        if args.command == "gui":
            return _cmd_gui()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    parser.print_help(sys.stderr)
    return EXIT_USAGE

