"""``jinglefs trust list [JID]`` and ``jinglefs trust verify JID FINGERPRINT``: our OMEMO
fingerprint, the contacts' devices with their trust, and verification (jinglefs.omemo)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import login
from ..api import Settings
from ..errors import EXIT_OK, EXIT_USAGE, JingleFSError, UsageError
from ..text import safe_text
from . import terminal
from .output import Output
from .run import ConnectFn, Run, default_connect, run_async

__all__ = ["cmd_trust"]


def cmd_trust(args: argparse.Namespace, connect: ConnectFn | None) -> int:
    action = args.trust_command
    if action is None:
        print("jinglefs: error: choose what to do: jinglefs trust list|verify "
              "(see jinglefs trust --help)", file=sys.stderr)
        return EXIT_USAGE
    out = Output(json_mode=args.json, quiet=args.quiet)
    try:
        peer = login.check_jid(args.jid, "JID", bare=True) if args.jid else None
        fingerprint = _fingerprint(args.fingerprint) if action == "verify" else ""
        chosen = login.resolve_login(args.account, server=args.server, ca_file=args.ca_file,
                                     allow_plaintext=args.allow_plaintext,
                                     password_file=args.password_file,
                                     interactive=terminal.interactive(args))
        connect_fn = connect or default_connect()
    except JingleFSError as e:
        return out.fatal(e)

    async def body(run: Run) -> int:
        from ..jet.envelope import EnvelopeError
        from ..omemo.errors import OmemoError

        run.client = client = await connect_fn(chosen.account, Settings(omemo=True))
        device = getattr(client, "omemo", None)
        if device is None:
            problem = getattr(client, "omemo_error", None)
            if isinstance(problem, JingleFSError):
                raise problem
            raise OmemoError("OMEMO is not available for this account" +
                             (f": {problem}" if problem else ""))
        try:
            if action == "verify":
                assert peer is not None
                return await _verify(out, device, peer, fingerprint)
            return await _list(out, client, device, peer)
        except EnvelopeError as e:
            raise OmemoError(str(e)) from None

    return run_async(out, body)


def _fingerprint(text: str) -> str:
    from ..omemo.trust import normalize_fingerprint

    grouped = normalize_fingerprint(text)
    if grouped is None:
        raise UsageError(f"{safe_text(text)!r} is not an OMEMO fingerprint: 64 hex digits, "
                         f"usually shown as 8 groups of 8 (spaces are fine)")
    return grouped


def _device_json(d: Any) -> dict[str, Any]:
    return {"jid": d.jid, "device_id": d.device_id, "fingerprint": d.fingerprint,
            "trust": d.trust}


async def _list(out: Output, client: Any, device: Any, peer: str | None) -> int:
    own = await device.own_device()
    if peer is not None:
        peers = [peer]
    else:
        roster = [c.jid for c in client.contacts()]
        peers = sorted(set(device.known_peers()) | set(roster))
    out.record("own_device", **_device_json(own))
    say = print if out.json is None else (lambda _text: None)
    say(f"This device ({safe_text(own.jid)}, device {own.device_id}):\n"
        f"  {own.fingerprint}")
    listed: list[dict[str, Any]] = []
    for jid in peers:
        devices = await device.devices(jid)
        say(f"{safe_text(jid)}:" + ("" if devices else " no OMEMO device"))
        for d in devices:
            out.record("device", **_device_json(d))
            listed.append(_device_json(d))
            note = "  (new since you verified this contact: not trusted)" \
                if d.trust == "new-after-verified" else ""
            say(f"  {d.device_id:>10}  {d.fingerprint}  {d.trust}{note}")
    out.summary(ok=True, exit_code=EXIT_OK, own_device=_device_json(own), devices=listed)
    return EXIT_OK


async def _verify(out: Output, device: Any, peer: str, fingerprint: str) -> int:
    verified = await device.verify(peer, fingerprint)
    out.record("verified", **_device_json(verified))
    out.human.always(f"Verified device {verified.device_id} of {safe_text(peer)} "
                     f"({verified.fingerprint}).")
    out.summary(ok=True, exit_code=EXIT_OK, device=_device_json(verified))
    return EXIT_OK
