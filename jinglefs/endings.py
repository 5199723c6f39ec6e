"""Clean endings: a session that ends is told as what it is, on both sides.

Two races make a clean end look like a network failure (docs/protocol.md §4.5):

* A peer that cancels (its user pressed Ctrl-C, or its app quit) closes its byte stream
  and sends session-terminate ``<cancel/>`` (XEP-0166 §6.7); the stream closes first,
  because the terminate travels through the XMPP server.  So when our stream breaks,
  :func:`pump_bytes` waits a moment for the session's end, and reports *that*
  ("cancelled by the peer", exit 9) rather than the broken stream (exit 6).
* A client that closes right after sending session-terminate may drop it with its XMPP
  connection: :func:`close_sessions` ends every session and waits, briefly and bounded,
  for the peer to acknowledge each terminate (XEP-0166 §6.7: the other side acks with an
  empty IQ result) before the connection goes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from . import errors
from .driver import Ended, SessionDriver
from .handles import TransferHandle
from .jingle.model import Reason, Role
from .jingle.rules import SessionState
from .jingle.session import SessionEnded

T = TypeVar("T")

#: How long a flow whose byte stream broke waits for the peer's session-terminate.
END_GRACE = 2.0
#: How long closing waits for the peers to acknowledge our session-terminates.
CLOSE_WAIT = 2.0

__all__ = ["END_GRACE", "CLOSE_WAIT", "session_end_within", "pump_bytes", "close_sessions"]


async def session_end_within(driver: SessionDriver, grace: float) -> SessionEnded | None:
    """The session's end, if it comes within ``grace`` seconds (or came already)."""
    if driver.ended.done():
        return driver.ended.result()
    try:
        return await asyncio.wait_for(asyncio.shield(driver.ended), grace)
    except TimeoutError:
        return None


async def pump_bytes(driver: SessionDriver, work: Coroutine[Any, Any, T],
                     transfer: TransferHandle) -> T:
    """Move the bytes (``driver.with_stall_guard``).  When the stream breaks (or ends
    short) and the session ends within :data:`END_GRACE`, raise :class:`Ended` for that
    end: the peer's session-terminate explains the broken stream."""
    try:
        return await driver.with_stall_guard(work, transfer)
    except (errors.TransportError, errors.SizeMismatch) as e:
        ended = await session_end_within(driver, END_GRACE)
        if ended is not None:
            raise Ended(ended) from e
        raise


def _ending(driver: SessionDriver) -> tuple[Reason, str]:
    session = driver.session
    if session.state is SessionState.PENDING and session.role is Role.RESPONDER:
        # An offer nobody answered: the recipient is not taking it (XEP-0166 §7.4).
        return Reason.DECLINE, "the recipient stopped receiving"
    return Reason.CANCEL, "the client is shutting down"


async def close_sessions(drivers: Iterable[SessionDriver],
                         flows: Iterable[asyncio.Future[Any]] = (),
                         timeout: float = CLOSE_WAIT) -> None:
    """End every session still running (an unanswered offer is declined, anything else
    cancelled: XEP-0166 §6.7 session-terminate), then wait, ``timeout`` seconds at most in
    all, until the peers acknowledged what was sent and the ``flows`` (the transfers'
    tasks) have finished their cleanup."""
    drivers = list(drivers)
    for driver in drivers:
        if not driver.session.is_over:
            condition, text = _ending(driver)
            driver.terminate(condition, text)
    settling = [asyncio.ensure_future(driver.settle()) for driver in drivers]
    waiting = [*settling, *(f for f in flows if not f.done())]
    if not waiting:
        return
    try:
        await asyncio.wait(waiting, timeout=timeout)
    finally:
        for task in settling:
            task.cancel()
