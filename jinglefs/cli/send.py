"""``jinglefs send FILE... RECIPIENT``."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from ..api import Settings, Timeouts
from ..errors import JingleFSError, UsageError
from ..login import check_recipient, resolve_login
from ..text import safe_text
from . import terminal
from .output import Output
from .parser import network_settings
from .run import ConnectFn, Run, default_connect, finish, follow, run_async

__all__ = ["cmd_send", "check_inputs"]


def check_inputs(items: Sequence[str]) -> list[Path]:
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
        except ValueError:  # a NUL in the name
            problems.append(f"{safe_text(item)}: not a usable file name")
            continue
        if stat.S_ISDIR(st.st_mode):
            if not os.access(p, os.R_OK | os.X_OK):
                problems.append(f"{item}: folder is not readable")
                continue
        elif stat.S_ISREG(st.st_mode):
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


def _exists(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # too long, NUL...: not a file anyway
        return False


def _recipient(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(recipient, items): ``--to JID``, or the last positional argument."""
    items = list(args.items)
    if args.to:
        return args.to, items
    if len(items) < 2:
        raise UsageError("give the files, then the recipient: "
                         "jinglefs send FILE... bob@example.org")
    recipient = items.pop()
    if "@" not in recipient and ":" not in recipient and _exists(recipient):
        raise UsageError(f"the last argument must be the recipient's JID, but "
                         f"{recipient!r} is a file: jinglefs send FILE... RECIPIENT")
    return recipient, items


def cmd_send(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    out = Output(json_mode=args.json, quiet=args.quiet)
    try:
        recipient, items = _recipient(args)
        recipient = check_recipient(recipient)  # a JID or an xmpp: URI (RFC 5122)
        paths = check_inputs(items)
        login = resolve_login(args.account, server=args.server, ca_file=args.ca_file,
                              allow_plaintext=args.allow_plaintext,
                              password_file=args.password_file,
                              interactive=terminal.interactive(args), resource=args.resource)
        timeouts = Timeouts(accept=args.timeout_accept) if args.timeout_accept else Timeouts()
        settings = Settings(transport=args.transport, timeouts=timeouts,
                            **network_settings(args, login, out.warn))
        connect_fn = connect or default_connect()
    except JingleFSError as e:
        return out.fatal(e)

    async def body(run: Run) -> int:
        run.client = client = await connect_fn(login.account, settings)
        out.info(f"Connected as {safe_text(client.jid)}; offering {len(paths)} "
                 f"item{'s' if len(paths) != 1 else ''} to {safe_text(recipient)}…")
        transport = None if args.transport == "auto" else args.transport
        transfers = await client.send_files(recipient, paths, transport=transport)
        run.transfers.extend(transfers)
        results = await asyncio.gather(*(follow(t, out, "Sent") for t in transfers))
        return finish(out, list(results), verb="Sent", extra={"recipient": recipient})

    return run_async(out, body)
