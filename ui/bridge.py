"""ClientBridge: the only object in the app that talks to a :class:`ClientLike`.

It owns the connection (and reconnects by itself), turns the façade's async events
into Qt signals, and keeps one :class:`TransferRecord` per live transfer.  Every façade
call runs as an asyncio task on the qasync loop, so no slot ever waits for the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, Signal

from jinglefs.api import (
    Account,
    ClientLike,
    ConnectionLost,
    Contact,
    ContactsChanged,
    OfferLike,
    OfferReceived,
    Reconnected,
    Settings,
    TransferLike,
)
from jinglefs.errors import AuthError, Cancelled, ConnectError, Declined, JingleFSError
from jinglefs.events import Direction

from .aio import spawn
from .files import DropCheck
from .records import PREPARING, TransferRecord
from .text import safe_text

logger = logging.getLogger(__name__)

ConnectFn = Callable[[Account, Settings], Awaitable[ClientLike]]

OFFLINE = "offline"
CONNECTING = "connecting"
ONLINE = "online"
LOST = "lost"
AUTH_FAILED = "auth-failed"

#: Seconds between reconnection attempts (the last one repeats).
RECONNECT_DELAYS: tuple[float, ...] = (2.0, 5.0, 10.0, 30.0, 60.0)


async def default_connect(account: Account, settings: Settings) -> ClientLike:
    from jinglefs.client import connect  # the real engine, imported only when used

    return cast(ClientLike, await connect(account, settings))


def connect_error_text(exc: BaseException, account: Account) -> str:
    """A message for the account dialog and the status bar."""
    where = account.server or account.jid.partition("@")[2] or account.jid
    if account.port:
        where = f"{where}:{account.port}"
    if isinstance(exc, AuthError):
        return ("Wrong password, or the server refused the account "
                f"{safe_text(account.jid)}.")
    if isinstance(exc, ConnectError):
        detail = str(exc)
        text = f"Could not reach the XMPP server {safe_text(where)}."
        if detail:
            text += f" ({safe_text(detail, 200)})"
        return text + " Check the server name, the port and your network."
    if isinstance(exc, JingleFSError):
        return exc.user_message
    return f"Could not connect to {safe_text(where)}: {safe_text(str(exc) or type(exc).__name__)}"


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, Declined):
        return "declined"
    if isinstance(exc, Cancelled):
        return "cancelled"
    return "failed"


def failure_text(exc: BaseException) -> str:
    if isinstance(exc, JingleFSError):
        return exc.user_message
    return str(exc) or type(exc).__name__


def record_for(t: TransferLike) -> TransferRecord:
    return TransferRecord(
        id=t.id, peer=t.peer, direction=t.direction, name=t.file.name, size=t.file.size,
        media_type=t.file.media_type, state=t.state.value, path_kind=t.path,
        encrypted=bool(t.path and t.path.encrypted),
    )


class ClientBridge(QObject):
    #: (state, human-readable detail); states are the module constants above.
    stateChanged = Signal(str, str)
    contactsChanged = Signal()
    offerReceived = Signal(object)
    transferAdded = Signal(object)
    transferChanged = Signal(object)
    transferRemoved = Signal(str)
    transferFinished = Signal(object)
    #: A message for the user that needs no answer (shown in the window's message bar).
    notice = Signal(str)

    def __init__(self, connect: ConnectFn = default_connect, settings: Settings | None = None,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._connect = connect
        self.settings = settings or Settings()
        self._delays = tuple(reconnect_delays) or (0.0,)
        self.client: ClientLike | None = None
        self.account: Account | None = None
        self.contacts: list[Contact] = []
        self.state = OFFLINE
        self.state_detail = ""
        self._supervisor: asyncio.Task[None] | None = None
        self._live: dict[str, tuple[TransferLike, TransferRecord]] = {}
        self._ids = itertools.count(1)
        self._closing = False

    # -- connection ---------------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "") -> None:
        self.state, self.state_detail = state, detail
        self.stateChanged.emit(state, detail)

    async def _connect_once(self, account: Account) -> ClientLike:
        limit = self.settings.timeouts.connect + 5.0
        try:
            return await asyncio.wait_for(self._connect(account, self.settings), limit)
        except TimeoutError:
            raise ConnectError(f"no answer within {int(limit)} s") from None

    async def login(self, account: Account) -> None:
        """Connect now; raises (AuthError, ConnectError…) so a dialog can show why.

        On success the bridge keeps the connection up by itself from then on.
        """
        await self._stop_supervisor()
        self.account = account
        self._set_state(CONNECTING, f"Connecting as {safe_text(account.jid)}…")
        try:
            client = await self._connect_once(account)
        except AuthError as exc:
            self._set_state(AUTH_FAILED, connect_error_text(exc, account))
            raise
        except Exception as exc:
            self._set_state(OFFLINE, connect_error_text(exc, account))
            raise
        self._supervisor = spawn(self._supervise(account, client))

    def start(self, account: Account) -> None:
        """Connect in the background with a stored account, retrying while unreachable."""
        spawn(self._start(account))

    async def _start(self, account: Account) -> None:
        try:
            await self.login(account)
        except AuthError:
            pass  # stateChanged(AUTH_FAILED) already told the window to ask again
        except Exception as exc:
            if not self._closing:
                self._supervisor = spawn(self._supervise(account, None, first_error=exc))

    async def _stop_supervisor(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_client()

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception as exc:
                logger.debug("closing the old client: %s", exc)

    async def _supervise(self, account: Account, client: ClientLike | None,
                         first_error: BaseException | None = None) -> None:
        attempt = 0
        reason = connect_error_text(first_error, account) if first_error else ""
        while not self._closing:
            if client is None:
                delay = self._delays[min(attempt, len(self._delays) - 1)]
                attempt += 1
                self._set_state(LOST, f"{reason} Reconnecting in {int(delay)} s…".strip())
                await asyncio.sleep(delay)
                self._set_state(CONNECTING, f"Reconnecting as {safe_text(account.jid)}…")
                try:
                    client = await self._connect_once(account)
                except AuthError as exc:
                    self._set_state(AUTH_FAILED, connect_error_text(exc, account))
                    return
                except Exception as exc:
                    reason = connect_error_text(exc, account)
                    continue
            attempt = 0
            self.client = client
            self._online()
            try:
                async for ev in client.events():
                    self._handle(ev)
                reason = "The connection to the server was closed."
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"Connection lost: {failure_text(exc)}."
            await self._drop_client()
            client = None

    def _online(self) -> None:
        assert self.client is not None
        self._set_state(ONLINE, f"Online as {safe_text(self.client.jid)}")
        self.contacts = list(self.client.contacts())
        self.contactsChanged.emit()

    def _handle(self, ev: object) -> None:
        if isinstance(ev, OfferReceived):
            self.offerReceived.emit(ev.offer)
        elif isinstance(ev, ContactsChanged):
            self.contacts = list(ev.contacts)
            self.contactsChanged.emit()
        elif isinstance(ev, ConnectionLost):
            self._set_state(LOST, f"Connection lost ({safe_text(ev.reason, 200)}). "
                                  "Reconnecting…")
        elif isinstance(ev, Reconnected):
            self._online()

    async def aclose(self) -> None:
        """Cancel what is still moving (politely) and log out."""
        self._closing = True
        for t, rec in list(self._live.values()):
            if rec.can_cancel:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(t.cancel(), 3.0)
        await self._stop_supervisor()
        self._set_state(OFFLINE, "Offline")

    # -- transfers -----------------------------------------------------------------------
    def send(self, recipient: str, check: DropCheck) -> list[TransferRecord]:
        """Start sending what ``check`` validated; rows appear at once, before the offer."""
        placeholders = []
        for path, (count, size) in zip(check.paths, check.sizes, strict=True):
            name = path.name if count == 1 and not path.is_dir() else f"{path.name}/"
            rec = TransferRecord(id=f"local-{next(self._ids)}", peer=recipient,
                                 direction=Direction.SEND, name=name, size=size, state=PREPARING,
                                 local_path=str(path))
            placeholders.append(rec)
            self.transferAdded.emit(rec)
        spawn(self._send(recipient, list(check.paths), placeholders))
        return placeholders

    async def _send(self, recipient: str, paths: list[Path],
                    placeholders: list[TransferRecord]) -> None:
        client = self.client
        try:
            if client is None:
                raise ConnectError("not connected to the server right now")
            transfers = await client.send_files(recipient, paths)
        except Exception as exc:
            for rec in placeholders:
                rec.fail(failure_text(exc), failure_kind(exc))
                self.transferChanged.emit(rec)
                self.transferFinished.emit(rec)
            return
        for rec in placeholders:
            self.transferRemoved.emit(rec.id)
        for t in transfers:
            self._track(t)

    async def accept(self, offer: OfferLike, dest_dir: Path,
                     filenames: Sequence[str] | None = None) -> list[TransferRecord]:
        transfers = await offer.accept(dest_dir, filenames=filenames)
        return [self._track(t) for t in transfers]

    async def decline(self, offer: OfferLike) -> None:
        await offer.decline()

    def cancel(self, record_id: str) -> bool:
        entry = self._live.get(record_id)
        if entry is None or not entry[1].can_cancel:
            return False
        spawn(self._cancel(*entry))
        return True

    async def _cancel(self, t: TransferLike, rec: TransferRecord) -> None:
        try:
            await t.cancel()
        except Exception as exc:
            self.notice.emit(f"Could not cancel {rec.display_name}: {failure_text(exc)}")

    def _track(self, t: TransferLike) -> TransferRecord:
        rec = record_for(t)
        self._live[rec.id] = (t, rec)
        self.transferAdded.emit(rec)
        spawn(self._watch(t, rec))
        return rec

    async def _watch(self, t: TransferLike, rec: TransferRecord) -> None:
        try:
            async for ev in t.events():
                rec.apply(ev)
                self.transferChanged.emit(rec)
                if rec.is_finished:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not rec.is_finished:
                rec.fail(failure_text(exc), failure_kind(exc))
        if not rec.is_finished:
            rec.fail("The transfer stopped without saying why.")
        self._live.pop(rec.id, None)
        self.transferChanged.emit(rec)
        self.transferFinished.emit(rec)

    def live_transfer(self, record_id: str) -> TransferLike | None:
        entry = self._live.get(record_id)
        return entry[0] if entry else None
