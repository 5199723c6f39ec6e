"""``jinglefs receive``: wait for offers, accept, decline or ask, follow the transfers.

``--accept-from`` and ``--max-size`` become the client's accept policy
(:attr:`Settings.accept_from <jinglefs.api.Settings.accept_from>`,
:attr:`~jinglefs.api.Settings.max_size`): the client declines what they exclude and says so
with :class:`~jinglefs.api.OfferDeclined`, which this command reports like any declined
offer.  Offers that get through are accepted (from an ``--accept-from`` sender) or asked
about on a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import config
from ..accept_policy import TOO_LARGE, refusal
from ..api import ClientLike, OfferDeclined, OfferLike, Settings, TransferLike
from ..errors import EXIT_CONNECT, EXIT_FAILED, JingleFSError, UsageError
from ..events import FileInfo
from ..jid import bare_jid
from ..login import check_jid, resolve_login
from ..text import format_size, safe_text
from . import terminal
from .output import Output, error_text, offer_line, offer_prompt_lines, offer_question
from .parser import network_settings
from .run import ConnectFn, Result, Run, default_connect, finish, follow, run_async

__all__ = ["cmd_receive"]


def _parse_accept_from(values: Sequence[str]) -> frozenset[str]:
    jids: set[str] = set()
    for value in values:
        for part in value.split(","):
            if part.strip():
                jids.add(bare_jid(check_jid(part, "--accept-from", bare=True)))
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


def _offer_json(offer: OfferLike | OfferDeclined) -> dict[str, Any]:
    """The ``offer`` event: every file of the offer (one action of the sender, however
    many sessions it took: docs/protocol.md §3.5) and their total size."""
    return {"offer_id": offer.id, "peer": offer.peer, "from_contact": offer.from_contact,
            "files": [{"name": f.name, "size": f.size, "media_type": f.media_type}
                      for f in offer.files],
            "count": len(offer.files), "total_size": sum(f.size for f in offer.files)}


def _policy_text(rule: str, peer: str, files: Sequence[FileInfo], settings: Settings) -> str:
    """Why the accept policy declined an offer, in the words of this command's options."""
    limit = settings.max_size
    if rule == TOO_LARGE and limit is not None:
        big = next((f for f in files if f.size > limit), None)
        if big is not None:
            return (f"{safe_text(big.name)} ({format_size(big.size)}) is larger than "
                    f"--max-size {format_size(limit)}")
    return f"{safe_text(bare_jid(peer))} is not in --accept-from"


async def _pump(client: ClientLike,
                queue: asyncio.Queue[OfferLike | OfferDeclined | None]) -> None:
    """Offers to answer, then None when the client stops delivering them."""
    try:
        async for offer in client.offers():
            await queue.put(offer)
    finally:
        await queue.put(None)


async def _pump_declined(client: ClientLike,
                         queue: asyncio.Queue[OfferLike | OfferDeclined | None]) -> None:
    """Offers the client declined by itself (the accept policy), to report them."""
    async for event in client.events():
        if isinstance(event, OfferDeclined):
            await queue.put(event)


def cmd_receive(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    out = Output(json_mode=args.json, quiet=args.quiet)
    interactive = terminal.interactive(args)
    try:
        accept_from = _parse_accept_from(args.accept_from)
        dest = _output_dir(args.output)
        login = resolve_login(args.account, server=args.server, ca_file=args.ca_file,
                              allow_plaintext=args.allow_plaintext,
                              password_file=args.password_file, interactive=interactive,
                              resource=args.resource)
        settings = Settings(accept_from=accept_from, max_size=args.max_size,
                            **network_settings(args, login, out.warn))
        connect_fn = connect or default_connect()
    except JingleFSError as e:
        return out.fatal(e)
    if not accept_from and not interactive:
        out.warn("no --accept-from and no terminal to ask on: every offer will be declined. "
                 "Use --accept-from JID to receive without asking.")

    async def decide(offer: OfferLike) -> tuple[bool, str]:
        # The client applies the accept policy before offers get here; a ClientLike that
        # does not is held to the same rule.
        refused = refusal(settings, offer.peer, offer.files)
        if refused is not None:
            return False, _policy_text(refused.rule, offer.peer, offer.files, settings)
        if accept_from:
            return True, ""
        if not interactive:
            return False, "no --accept-from and no terminal to ask"
        # One question for the whole offer: every file, the total, accept or decline all.
        out.human.always(offer_prompt_lines(offer.peer, offer.files, offer.from_contact))
        answer = await terminal.ask(offer_question(offer.files, str(dest)))
        if answer.strip().lower() in ("y", "yes"):
            return True, ""
        return False, "declined at the prompt"

    def report_declined(offer: OfferLike | OfferDeclined, reason: str) -> None:
        out.record("declined", offer_id=offer.id, peer=offer.peer, reason=reason)
        out.human.always(f"Declined offer from {safe_text(offer.peer)}: {reason}")

    async def body(run: Run) -> int:
        run.client = client = await connect_fn(login.account, settings)
        out.info(f"Waiting for files as {safe_text(client.jid)}; saving to {dest}"
                 + (f"; accepting from {', '.join(sorted(accept_from))}" if accept_from else ""))
        queue: asyncio.Queue[OfferLike | OfferDeclined | None] = asyncio.Queue()

        results: list[Result] = []
        accepted = declined = 0
        stop_reason = ""

        async def follow_one(t: TransferLike) -> None:
            results.append(await follow(t, out, "Received"))

        order: list[TransferLike] = []
        async with asyncio.TaskGroup() as tg:
            pumps = [tg.create_task(_pump(client, queue)),
                     tg.create_task(_pump_declined(client, queue))]
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
                    out.info(offer_line(offer.id, offer.peer, offer.files))
                    if isinstance(offer, OfferDeclined):  # already declined by the client
                        declined += 1
                        report_declined(offer, _policy_text(offer.rule, offer.peer,
                                                            offer.files, settings))
                        continue
                    ok, reason = await decide(offer)
                    try:
                        if not ok:
                            await offer.decline()
                            declined += 1
                            report_declined(offer, reason)
                            continue
                        transfers = await offer.accept(dest)
                    except JingleFSError as e:
                        out.human.always(f"error: offer from {safe_text(offer.peer)}: "
                                         f"{error_text(e)}")
                        continue
                    accepted += 1  # --count counts offers, not files
                    run.transfers.extend(transfers)
                    order.extend(transfers)
                    for t in transfers:
                        tg.create_task(follow_one(t))
            finally:
                for pump in pumps:
                    pump.cancel()
        results.sort(key=lambda r: order.index(r.transfer))
        extra: dict[str, Any] = {"received": sum(r.ok for r in results), "declined": declined}
        if args.count is not None and accepted < args.count and not any(not r.ok
                                                                          for r in results):
            if stop_reason == "closed":
                msg = (f"the connection to the server ended after {accepted} of "
                       f"{args.count} offers")
                code = EXIT_CONNECT
            else:
                msg = (f"no new offer for {args.timeout:g} s; got {accepted} of "
                       f"{args.count} offers")
                code = EXIT_FAILED
            out.human.always(f"error: {msg}")
            out.summary(ok=False, exit_code=code, error=msg,
                        files=[r.as_json() for r in results], **extra)
            return code
        if stop_reason == "timeout":
            out.info(f"No new offer for {args.timeout:g} s; stopped listening.")
        elif stop_reason == "closed" and args.count is None:
            out.info("The connection to the server ended; stopped listening.")
        return finish(out, results, verb="Received", extra=extra)

    return run_async(out, body)
