"""``main()``: the ``jinglefs`` command (parse, dispatch, ``--version``, ``gui``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .account import cmd_account
from .parser import build_parser, reject_password_options
from .receive import cmd_receive
from .run import ConnectFn
from .send import cmd_send
from .trust import cmd_trust

__all__ = ["main"]

#: Descriptions of the transports --version lists (only those this install can use).
TRANSPORT_NAMES = {"ice": "ice (WebRTC data channel: ICE, DTLS-encrypted)",
                   "s5b": "s5b (XEP-0260, direct or server proxy)",
                   "ibb": "ibb (XEP-0261, in-band)"}


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
    from ..ladder import LADDER

    return [TRANSPORT_NAMES[r.kind] for r in LADDER]


def _version_text() -> str:
    from ..transfer.hashing import SUPPORTED_ALGOS as hashes

    return (f"jinglefs {__version__}\n"
            f"file transfer: XEP-0234 (Jingle File Transfer), XEP-0166 (Jingle)\n"
            f"transports: {', '.join(_available_transports())}\n"
            f"hashes (XEP-0300): {', '.join(hashes)}\n"
            f"--json schema: v1")


def main(argv: Sequence[str] | None = None, *, connect: ConnectFn | None = None) -> int:
    """Run the ``jinglefs`` command; returns the exit code (see ``EXIT_CODE_TABLE``).

    :param argv: the arguments without the program name (default ``sys.argv[1:]``).
    :param connect: ``connect(account, settings) -> ClientLike``; default
        ``jinglefs.client.connect``, imported only when a command needs it.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    bad = reject_password_options(args_list)
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
            return cmd_send(args, connect)
        if args.command == "receive":
            return cmd_receive(args, connect)
        if args.command == "account":
            return cmd_account(args, connect)
        if args.command == "trust":
            return cmd_trust(args, connect)
        if args.command == "gui":
            return _cmd_gui()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    parser.print_help(sys.stderr)
    return EXIT_USAGE
