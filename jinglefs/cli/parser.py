"""The ``jinglefs`` command line: its options, their checks, and the help with the exit-code
table.  No option ever takes a password (:func:`reject_password_options`)."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..api import ENCRYPTION_CHOICES, TRANSPORT_CHOICES
from ..errors import EXIT_USAGE
from ..jid import JidError, check_resource
from ..login import ACCOUNT_ENV, Login, ice_settings
from ..text import safe_text
from .exit_codes import EXIT_CODE_TABLE
from .output import parse_size

__all__ = ["build_parser", "network_settings", "reject_password_options"]

_FORBIDDEN_OPTIONS = ("--password", "--pass", "--passwd", "--pw", "-p")


def exit_table() -> str:
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

_TRUST_EXAMPLES = """\
examples:
  jinglefs trust list                     our fingerprint, every contact's devices
  jinglefs trust list bob@example.org
  jinglefs trust verify bob@example.org "3a1f09c2 7be41d55 ... (8 groups)"

Until you verify one of a contact's devices, each new device of theirs is trusted as it
appears (blind trust before verification, as in Conversations and Dino); after that, a
new device is reported and not trusted until you verify it too.
"""

_SEND_EXAMPLES = """\
examples:
  jinglefs send report.pdf bob@example.org
  jinglefs send a.txt b.txt photos/ bob@example.org/laptop --transport s5b
  jinglefs send notes.txt xmpp:bob@example.org?message   an xmpp: URI (RFC 5122) works too
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
    """No abbreviations (so ``--password`` never matches ``--password-file``); a usage
    error is one line on stderr and exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Python before 3.12 drops a "--" given as an option's value (--output=--) and
        # hands the command an empty list instead of the string.
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> NoReturn:
        # One line (argparse would print the whole usage first); a value a user typed is
        # shown escaped (safe_text), never obeyed by the terminal.
        text = " ".join(safe_text(message, 300).split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


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


def _path(text: str) -> str:
    """A file or folder name the system can take (no NUL, not empty)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError("not a usable file name: "
                                         f"'{safe_text(text, 40) if text else ''}'")
    return text


def _resource(text: str) -> str:
    """RFC 7622 §3.4 resourcepart: not empty, at most 1023 bytes, no control characters."""
    try:
        return check_resource(text)
    except JidError as e:
        raise argparse.ArgumentTypeError(f"'{safe_text(text, 40) if text else ''}': {e}"
                                         ) from None


def _add_resource_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resource", metavar="NAME", type=_resource,
                   help="this device's name on the account (the XMPP resource); default"
                        " jinglefs- and a random id, new for every run, so that the app and"
                        " other jinglefs commands on the same account stay online")


def _add_account_options(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    g = p.add_argument_group("account")
    g.add_argument("--account", metavar="JID",
                   help=f"stored account to use (default: ${ACCOUNT_ENV}, then the default one)")
    g.add_argument("--password-file", metavar="PATH", type=_path,
                   help="read the password from the first line of PATH")
    g.add_argument("--server", metavar="HOST[:PORT]",
                   help="connect to this host instead of what DNS says")
    g.add_argument("--ca-file", metavar="PEM", type=_path,
                   help="trust the certificates in this file")
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
    g.add_argument("--turn-password-file", metavar="PATH", type=_path,
                   help="read the TURN password from the first line of PATH")
    g.add_argument("--ice-address", metavar="ADDR", action="append", default=[],
                   help="gather ICE candidates on this local address only (repeatable;"
                        " default: every interface except loopback)")
    g.add_argument("--ice-relay-only", action="store_true",
                   help="ICE only through a TURN relay: the contact never learns your IP"
                        " addresses")


def _add_encryption_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encryption", choices=ENCRYPTION_CHOICES, default="auto",
                   help="auto: encrypt end to end whenever the contact's device can (JET with"
                        " OMEMO, or the ICE data channel); required: refuse anything that"
                        " would travel unencrypted (exit 13); off: never JET")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jinglefs",
                     description="Send files directly to XMPP contacts (Jingle File Transfer).\n\n"
                     + _MAIN_EXAMPLES,
                     epilog=exit_table())
    parser.add_argument("--version", action="store_true",
                        help="print the version and the supported protocol features")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    send = sub.add_parser("send", help="send files to a contact",
                          description="Send files to a contact.\n\n" + _SEND_EXAMPLES,
                          epilog=exit_table())
    send.add_argument("items", nargs="+", metavar="FILE... RECIPIENT",
                      help="files or folders, then the recipient's JID (bare: best device;"
                           " full JID: that device) or xmpp: URI (xmpp:bob@example.org)")
    send.add_argument("--to", metavar="JID", help="recipient, a JID or an xmpp: URI (then"
                                                  " every argument is a file)")
    send.add_argument("--transport", choices=TRANSPORT_CHOICES, default="auto",
                      help="auto (ICE, then SOCKS5, then in-band) or force one")
    send.add_argument("--timeout-accept", type=_positive_float, metavar="SECONDS",
                      help="give up when the recipient has not accepted within SECONDS"
                           " (default 300)")
    _add_account_options(send)
    _add_resource_option(send)
    _add_ice_options(send)
    _add_encryption_option(send)

    recv = sub.add_parser("receive", help="receive files",
                          description="Wait for incoming files.\n\n" + _RECEIVE_EXAMPLES,
                          epilog=exit_table())
    recv.add_argument("--accept-from", metavar="JID", nargs="+", action="extend", default=[],
                      help="accept offers from these bare JIDs without asking (comma or space"
                           " separated); decline everyone else")
    recv.add_argument("--output", "-o", metavar="DIR", type=_path,
                      help="save files here (default: your Downloads folder)")
    recv.add_argument("--count", type=_positive_int, metavar="N",
                      help="exit after accepting N offers (and finishing their files)")
    recv.add_argument("--max-size", type=_size, metavar="BYTES",
                      help="decline offers with a file larger than this (e.g. 500K, 10M, 2G)")
    recv.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                      help="stop listening after SECONDS without a new offer")
    _add_account_options(recv)
    _add_resource_option(recv)
    _add_ice_options(recv)
    _add_encryption_option(recv)

    acct = sub.add_parser("account", help="add, list, test or remove accounts",
                          description="Manage stored accounts.\n\n" + _ACCOUNT_EXAMPLES,
                          epilog=exit_table())
    asub = acct.add_subparsers(dest="account_command", metavar="ACTION", parser_class=_Parser)
    add = asub.add_parser("add", help="store an account (password in the system keyring)")
    add.add_argument("jid", metavar="JID")
    add.add_argument("--server", metavar="HOST[:PORT]")
    add.add_argument("--ca-file", metavar="PEM", type=_path)
    add.add_argument("--allow-plaintext", action="store_true",
                     help="allow an unencrypted connection (loopback servers only)")
    add.add_argument("--stun", metavar="HOST[:PORT]", action="append", default=[],
                     help="STUN server used with this account")
    add.add_argument("--turn", metavar="URL", action="append", default=[],
                     help="TURN server turn:USER@HOST[:PORT]?transport=udp|tcp used with this"
                          " account (no password here: give --turn-password-file to send and"
                          " receive)")
    add.add_argument("--default", action="store_true", help="make it the default account")
    add.add_argument("--password-file", metavar="PATH", type=_path,
                     help="read the password to store from the first line of PATH")
    add.add_argument("--no-input", action="store_true", help="never prompt")
    lst = asub.add_parser("list", help="list stored accounts")
    lst.add_argument("--json", action="store_true")
    rm = asub.add_parser("remove", help="forget an account and its stored password")
    rm.add_argument("jid", metavar="JID")
    test = asub.add_parser("test", help="log in and report")
    test.add_argument("jid", metavar="JID", nargs="?")
    _add_account_options(test)

    trust = sub.add_parser("trust", help="OMEMO fingerprints: list devices, verify one",
                           description="End-to-end encryption keys (OMEMO): our fingerprint,"
                           " each contact's devices and their trust, and verification.\n\n"
                           + _TRUST_EXAMPLES, epilog=exit_table())
    tsub = trust.add_subparsers(dest="trust_command", metavar="ACTION", parser_class=_Parser)
    tlist = tsub.add_parser("list", help="our fingerprint and the contacts' devices")
    tlist.add_argument("jid", metavar="JID", nargs="?",
                       help="only this contact (default: every contact)")
    _add_account_options(tlist)
    tverify = tsub.add_parser("verify", help="mark a contact's device verified")
    tverify.add_argument("jid", metavar="JID")
    tverify.add_argument("fingerprint", metavar="FINGERPRINT",
                         help="as the contact's client shows it (quote it if it has spaces)")
    _add_account_options(tverify)

    sub.add_parser("gui", help="start the desktop app (needs jinglefs[gui])")
    return parser


def reject_password_options(argv: Sequence[str]) -> str | None:
    """The first option that looks like a password option (never echoed), or None."""
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


def network_settings(args: argparse.Namespace, login: Login,
                     warn: Callable[[str], None]) -> dict[str, Any]:
    """The :class:`~jinglefs.api.Settings` fields that ``send`` and ``receive`` share: the
    proxy and the ICE (STUN/TURN) options."""
    return {"use_proxy": not args.no_proxy, "encryption": args.encryption,
            **ice_settings(login, stun=args.stun, turn=args.turn,
                           turn_password_file=args.turn_password_file,
                           ice_addresses=args.ice_address, relay_only=args.ice_relay_only,
                           warn=warn)}
