"""``jinglefs account add|list|remove|test``: accounts in ``config.toml``, passwords in the
system keyring (:mod:`jinglefs.login`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from .. import config, login
from ..api import Settings
from ..errors import EXIT_OK, EXIT_USAGE, JingleFSError, UsageError
from ..text import safe_text
from . import terminal
from .output import Output
from .run import ConnectFn, Run, default_connect, run_async

__all__ = ["cmd_account"]


def cmd_account(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    action = args.account_command
    if action is None:
        print("jinglefs: error: choose what to do: jinglefs account add|list|test|remove "
              "(see jinglefs account --help)", file=sys.stderr)
        return EXIT_USAGE
    if action == "test":
        return _account_test(args, connect)
    out = Output(json_mode=getattr(args, "json", False), quiet=False)
    try:
        if action == "add":
            return _account_add(args, out)
        if action == "list":
            return _account_list(out)
        if action == "remove":
            return _account_remove(args, out)
    except JingleFSError as e:
        return out.fatal(e)
    raise AssertionError(action)


def _account_add(args: argparse.Namespace, out: Output) -> int:
    jid = login.check_jid(args.jid, "JID", bare=True)
    host: str | None = None
    port: int | None = None
    if args.server:
        host, port = login.parse_server(args.server)
    login.check_connection(jid, server=host, ca_file=args.ca_file,
                           allow_plaintext=args.allow_plaintext)
    ca_file = os.path.abspath(args.ca_file) if args.ca_file else None
    for text in args.stun:
        login.check_stun(text)
    for text in args.turn:
        login.check_turn(text)  # no password in config.toml (nor on the command line)
    stored = config.save_account(config.StoredAccount(
        jid=jid, server=host, port=port, ca_file=ca_file, allow_plaintext=args.allow_plaintext,
        stun=tuple(args.stun), turn=tuple(args.turn), default=args.default))
    out.human.always(f"Saved account {jid}" + (" (default)" if stored.default else "")
                     + f" in {config.config_file()}.")

    password: str | None = None
    if args.password_file:
        password = login.read_password_file(args.password_file)
    elif os.environ.get(login.PASSWORD_ENV):
        password = os.environ[login.PASSWORD_ENV]
    problem = login.keyring_problem()
    if problem is not None:
        out.human.always("warning: " + login.KeyringUnavailable(problem).user_message)
        return EXIT_OK
    if password is None:
        if not terminal.interactive(args):
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
    login.store_password(jid, password)
    out.human.always("Password stored in the system keyring.")
    return EXIT_OK


def _password_status(acc: config.StoredAccount, keyring_ok: bool) -> str:
    if not keyring_ok:
        return "no-keyring"
    return "keyring" if login.get_password(acc.jid) else "none"


def _account_list(out: Output) -> int:
    accounts = config.load_accounts()
    keyring_ok = login.keyring_available()
    if not accounts:
        out.human.always("No accounts.  Add one with: jinglefs account add you@example.org")
        return EXIT_OK
    for acc in accounts:
        status = _password_status(acc, keyring_ok)
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


def _account_remove(args: argparse.Namespace, out: Output) -> int:
    jid = login.check_jid(args.jid, "JID", bare=True)
    if not config.remove_account(jid):
        raise UsageError(f"no stored account {jid}")
    had_pw = login.delete_password(jid)
    out.human.always(f"Removed {jid}" + (" and its password from the keyring."
                                          if had_pw else "."))
    return EXIT_OK


def _account_test(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    out = Output(json_mode=args.json, quiet=args.quiet)
    try:
        chosen = login.resolve_login(args.jid or args.account, server=args.server,
                                     ca_file=args.ca_file,
                                     allow_plaintext=args.allow_plaintext,
                                     password_file=args.password_file,
                                     interactive=terminal.interactive(args))
        connect_fn = connect or default_connect()
    except JingleFSError as e:
        return out.fatal(e)

    async def body(run: Run) -> int:
        run.client = client = await connect_fn(chosen.account, Settings())
        contacts = client.contacts()
        online = sum(c.online for c in contacts)
        capable = sum(c.can_receive_files for c in contacts)
        out.human.always(f"✓ Logged in as {safe_text(client.jid)}: {len(contacts)} contacts, "
                         f"{online} online, {capable} can receive files.")
        out.summary(ok=True, exit_code=EXIT_OK, jid=client.jid, contacts=len(contacts),
                    online=online, can_receive_files=capable)
        return EXIT_OK

    return run_async(out, body)
