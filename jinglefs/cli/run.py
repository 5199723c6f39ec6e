"""Running one command on an event loop: connecting, following transfers to their end,
Ctrl-C / SIGTERM, and the summary."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ..api import Account, ClientLike, Settings, TransferLike
from ..errors import EXIT_INTERRUPTED, EXIT_OK, JingleFSError, exit_code_for
from ..events import Completed, TransferState
from ..text import safe_text
from .output import Output, error_text

__all__ = ["ConnectFn", "default_connect", "Result", "Run", "follow", "run_async", "finish"]

ConnectFn = Callable[[Account, Settings], Awaitable[ClientLike]]


def default_connect() -> ConnectFn:
    """``jinglefs.client.connect``, imported only when a command needs it (so that
    ``--help`` and usage errors answer without loading slixmpp, aiortc and aioice)."""
    from ..client import connect

    return connect


@dataclass
class Result:
    """How one transfer ended."""

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
class Run:
    """What the signal handler must clean up."""

    out: Output
    client: ClientLike | None = None
    transfers: list[TransferLike] = field(default_factory=list)
    interrupted: str | None = None


async def follow(t: TransferLike, out: Output, verb: str) -> Result:
    """Show ``t``'s events until it ends; never raises."""
    out.human.track(t.id, t.file.name, t.file.size)
    try:
        async for ev in t.events():
            out.transfer_event(t, ev, verb)
        final = await t.wait()
    except JingleFSError as e:
        return Result(t, ok=False, code=exit_code_for(e), reason=e.user_message)
    except Exception as e:  # a bug in the façade must not hide the other files
        return Result(t, ok=False, code=exit_code_for(e), reason=error_text(e))
    return Result(t, ok=True, local_path=final.path if isinstance(final, Completed) else "")


async def _cancel_running(run: Run) -> int:
    n = 0
    for t in run.transfers:
        if t.state in (TransferState.COMPLETED, TransferState.FAILED):
            continue
        n += 1
        with suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(t.cancel(), 10)
    return n


def run_async(out: Output, body: Callable[[Run], Awaitable[int]]) -> int:
    """Run ``body`` with SIGINT/SIGTERM cancelling it (and the running transfers)."""

    async def runner() -> int:
        run = Run(out)
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


def finish(out: Output, results: list[Result], *, verb: str, extra: dict[str, Any]) -> int:
    """The result lines and the summary; the exit code of the first failed file."""
    failed = [r for r in results if not r.ok]
    code = failed[0].code if failed else EXIT_OK
    if failed and len(results) > 1:
        names = ", ".join(f"{safe_text(r.transfer.file.name)} ({r.reason})" for r in failed)
        out.human.always(f"{len(failed)} of {len(results)} files failed: {names}")
    elif results and not failed and len(results) > 1:
        out.info(f"All {len(results)} files {verb.lower()}.")
    out.summary(ok=not failed, exit_code=code, files=[r.as_json() for r in results], **extra)
    return code
