"""ClientBridge: the only object in the app that talks to a :class:`ClientLike`.

It logs in and follows the client's connection state (the client reconnects by itself,
:attr:`Settings.reconnect_delays`; the bridge only reacts to its ConnectionLost /
Reconnected events), turns the façade's async events into Qt signals, and keeps one
:class:`TransferRecord` per live transfer.  Every façade call runs as an asyncio task on
the qasync loop, so no slot ever waits for the network.

**One client per account, ever.**  A login closes the client in use before it starts a
new one and cancels an older login that is still connecting; a login that fails, or that
a newer one replaced, closes what it made; a client whose account the server refused is
closed.  So re-connecting from the account dialog, a new password, a failed login or a
network change (the client's own reconnect loop, same client) never leave a second or
hidden session on the server.  Every login uses this install's resource
(:attr:`ClientBridge.resource`, kept in the preferences).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, Signal

from jinglefs.api import (
    Account,
    ClientLike,
    ConnectionLost,
    Contact,
    ContactsChanged,
    OfferDeclined,
    OfferLike,
    OfferReceived,
    PeerDevice,
    Reconnected,
    Settings,
    TransferLike,
)
from jinglefs.errors import AuthError, ConnectError, JingleFSError, kind_of, message_for
from jinglefs.events import Direction, Protection

from .aio import spawn
from .files import DropCheck
from .records import PREPARING, TransferRecord
from .text import bare_jid, safe_text

logger = logging.getLogger(__name__)

ConnectFn = Callable[[Account, Settings], Awaitable[ClientLike]]

OFFLINE = "offline"
CONNECTING = "connecting"
ONLINE = "online"
LOST = "lost"
AUTH_FAILED = "auth-failed"


async def default_connect(account: Account, settings: Settings) -> ClientLike:
    from jinglefs.client import connect  # the real engine, imported only when used

    return cast(ClientLike, await connect(account, settings))


class LoginReplaced(JingleFSError):
    """A newer login started before this one finished; this one was abandoned."""


def connect_error_text(exc: BaseException, account: Account) -> str:
    """A message for the account dialog and the status bar."""
    where = account.server or account.jid.partition("@")[2] or account.jid
    if account.port:
        where = f"{where}:{account.port}"
    if isinstance(exc, LoginReplaced):
        return "A newer connection attempt replaced this one."
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


def lost_text(ev: ConnectionLost) -> str:
    """The status line while the client is offline and trying again."""
    when = f" in {ev.retry_in:.0f} s" if ev.retry_in is not None and ev.retry_in >= 1 else ""
    return f"Connection lost ({safe_text(ev.reason, 200)}). Reconnecting{when}…"


def failure_kind(exc: BaseException) -> str:
    """The error kind stored on a row (``jinglefs.errors.ERROR_KINDS``)."""
    return kind_of(exc)


def failure_text(exc: BaseException) -> str:
    """The sentence shown on a row (``jinglefs.errors.ERROR_KINDS``)."""
    return message_for(exc)


def record_for(t: TransferLike) -> TransferRecord:
    return TransferRecord(
        id=t.id, peer=t.peer, direction=t.direction, name=t.file.name, size=t.file.size,
        media_type=t.file.media_type, state=t.state.value, path_kind=t.path,
        encrypted=bool(t.path and t.path.encrypted),
        protection=_protection_of(t),
    )


def new_devices_text(who: str, devices: Sequence[PeerDevice], *, sending: bool) -> str:
    """What the app says when a verified contact has devices that are new since (their
    fingerprints, and what to do); ``sending``: said as a send starts, else for an offer."""
    listed = "; ".join(f"device {d.device_id}, fingerprint {d.fingerprint}" for d in devices)
    one = len(devices) == 1
    head = (f"{who} has {'a new device' if one else f'{len(devices)} new devices'} since "
            f"you verified them ({listed}).")
    if sending:
        what = ("It gets no key for these files until you verify it" if one else
                "They get no key for these files until you verify them")
    else:
        what = ("The file came from such a device, so it was declined and nothing was "
                "written. Verify it only after you compared its fingerprint with them")
    return (f"{head} {what}: right-click {who} in Contacts, "
            "Devices and fingerprints….")


def _protection_of(t: TransferLike) -> str:
    """The real handles know what protects the current path (jinglefs.handles)."""
    protection = getattr(t, "protection", None)
    return protection.value if isinstance(protection, Protection) else ""


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
                 reconnect_delays: Sequence[float] | None = None,
                 parent: QObject | None = None, *, resource: str | None = None) -> None:
        """``reconnect_delays``, when given, replaces ``settings.reconnect_delays``: the
        policy of the client's reconnect loop.  ``resource``: the device name every login
        uses (the app's per-install one); None keeps the account's."""
        super().__init__(parent)
        self._connect = connect
        self.settings = settings or Settings()
        if reconnect_delays is not None:
            self.settings = replace(self.settings, reconnect_delays=tuple(reconnect_delays))
        self.client: ClientLike | None = None
        self.account: Account | None = None
        self.contacts: list[Contact] = []
        self.state = OFFLINE
        self._follower: asyncio.Task[None] | None = None
        self._live: dict[str, tuple[TransferLike, TransferRecord]] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self.resource = resource
        #: the login in progress (at most one), and a counter that tells a login whether
        #: a newer one started while it waited
        self._connecting: asyncio.Future[ClientLike] | None = None
        self._generation = 0

    # -- connection ---------------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.stateChanged.emit(state, detail)

    async def _connect_once(self, account: Account, *, keep_trying: bool) -> ClientLike:
        limit = self.settings.timeouts.connect + 5.0
        settings = replace(self.settings, retry_first_login=keep_trying)
        try:
            return await asyncio.wait_for(self._connect(account, settings), limit)
        except TimeoutError:
            raise ConnectError(f"no answer within {int(limit)} s") from None

    async def login(self, account: Account) -> None:
        """Connect now; raises (AuthError, ConnectError…) so a dialog can show why.

        On success the client keeps the connection up by itself from then on.
        """
        await self._log_in(account, keep_trying=False)

    def start(self, account: Account) -> None:
        """Connect in the background with a stored account; while the server is
        unreachable the client keeps trying (and the state says why)."""
        spawn(self._start(account))

    async def _start(self, account: Account) -> None:
        with contextlib.suppress(Exception):  # stateChanged already said why
            await self._log_in(account, keep_trying=True)

    def set_resource(self, name: str) -> None:
        """Use this device name from now on; a client logged in (or logging in) with
        another one is replaced by one with this name."""
        if not name or name == self.resource:
            return
        self.resource = name
        if self.account is not None and (self.client is not None
                                         or self._connecting is not None):
            self.start(self.account)

    async def _log_in(self, account: Account, *, keep_trying: bool) -> None:
        if self.resource:
            account = replace(account, resource=self.resource)
        self._generation += 1
        generation = self._generation
        older, self._connecting = self._connecting, None
        if older is not None and not older.done():
            older.cancel()  # its client, if it gets one, is closed by connect()
            await asyncio.wait({older})
        await self._stop_following()  # the client in use goes before a new one comes
        if generation != self._generation or self._closing:
            raise LoginReplaced("a newer login started")
        self.account = account
        self._set_state(CONNECTING, f"Connecting as {safe_text(account.jid)}…")
        attempt = asyncio.ensure_future(self._connect_once(account, keep_trying=keep_trying))
        self._connecting = attempt
        try:
            client = await attempt
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                attempt.cancel()
                raise  # this login itself was cancelled
            raise LoginReplaced("a newer login started") from None
        except AuthError as exc:
            self._set_state(AUTH_FAILED, connect_error_text(exc, account))
            raise
        except Exception as exc:
            if generation == self._generation:
                self._set_state(OFFLINE, connect_error_text(exc, account))
            raise
        finally:
            if self._connecting is attempt:
                self._connecting = None
        if generation != self._generation or self._closing:
            await self._close(client)  # replaced while it was connecting
            raise LoginReplaced("a newer login started")
        self.client = client
        events = client.events()
        if client.online:  # else its first event is the ConnectionLost that says why
            self._online()
        self._follower = spawn(self._follow(client, events))

    async def _follow(self, client: ClientLike, events: AsyncIterator[object]) -> None:
        reason: str | None = "The connection to the server was closed."
        try:
            async for ev in events:
                self._handle(ev)
                if isinstance(ev, ConnectionLost) and ev.refused:
                    reason = None  # _handle said why; the client stopped trying for good
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"Connection lost: {failure_text(exc)}."
        if self.client is client and not self._closing:  # the client is gone: close it
            self._follower = None
            await self._drop_client()
            if reason is not None:
                self._set_state(OFFLINE, reason)

    async def _stop_following(self) -> None:
        task, self._follower = self._follower, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_client()

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await self._close(client)

    @staticmethod
    async def _close(client: ClientLike) -> None:
        try:
            await client.aclose()
        except Exception as exc:
            logger.debug("closing the old client: %s", exc)

    def _online(self) -> None:
        assert self.client is not None
        self._set_state(ONLINE, f"Online as {safe_text(self.client.jid)}")
        self.contacts = list(self.client.contacts())
        self.contactsChanged.emit()

    def _handle(self, ev: object) -> None:
        if isinstance(ev, OfferReceived):
            self.offerReceived.emit(ev.offer)
        elif isinstance(ev, OfferDeclined):  # Settings.accept_from / max_size, encryption
            n = len(ev.files)
            what = safe_text(ev.files[0].name, 60) if n == 1 else f"{n} files"
            new = self._new_devices(self.client, ev.peer) if ev.rule == "cannot-decrypt" \
                else []
            if new:  # a device of a verified contact, new since: not trusted
                self.notice.emit(f"Declined {what} from {safe_text(ev.peer)}. "
                                 + new_devices_text(self._who(ev.peer), new, sending=False))
            else:
                self.notice.emit(f"Declined {what} from {safe_text(ev.peer)}: "
                                 f"{safe_text(ev.reason, 200)}")
        elif isinstance(ev, ContactsChanged):
            self.contacts = list(ev.contacts)
            self.contactsChanged.emit()
        elif isinstance(ev, ConnectionLost):
            if ev.refused and self.account is not None:  # the client stopped trying
                self._set_state(AUTH_FAILED,
                                connect_error_text(AuthError(ev.reason), self.account))
            else:
                self._set_state(LOST, lost_text(ev))
        elif isinstance(ev, Reconnected):
            self._online()

    async def aclose(self) -> None:
        """Cancel what is still moving (politely) and log out."""
        self._closing = True
        attempt, self._connecting = self._connecting, None
        if attempt is not None and not attempt.done():
            attempt.cancel()  # a login still under way closes what it made
            await asyncio.wait({attempt})
        for t, rec in list(self._live.values()):
            if rec.can_cancel:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(t.cancel(), 3.0)
        await self._stop_following()
        self._set_state(OFFLINE, "Offline")

    # -- encryption and OMEMO trust ------------------------------------------------------
    def set_encryption(self, policy: str) -> None:
        """``Settings.encryption`` from now on: for the client in use (its next offers)
        and every later login."""
        if policy == self.settings.encryption:
            return
        self.settings = replace(self.settings, encryption=policy)
        if self.client is not None:
            spawn(self.client.set_encryption(policy))

    def _logged_in_client(self) -> ClientLike:
        if self.client is None:
            raise ConnectError("not connected to the server right now")
        return self.client

    async def own_fingerprint(self) -> str | None:
        """Our OMEMO fingerprint (None: OMEMO is off); raises when there is none."""
        return await self._logged_in_client().own_fingerprint()

    async def devices_of(self, bare: str) -> list[PeerDevice]:
        client = self._logged_in_client()
        if not client.online:
            raise ConnectError("not connected to the server right now")
        return await client.devices_of(bare)

    async def verify_device(self, bare: str, fingerprint: str) -> PeerDevice:
        return await self._logged_in_client().verify_device(bare, fingerprint)

    def _who(self, jid: str) -> str:
        bare = bare_jid(jid)
        for c in self.contacts:
            if c.jid == bare and c.name:
                return safe_text(c.name, 60)
        return safe_text(bare, 60)

    @staticmethod
    def _new_devices(client: ClientLike | None, jid: str) -> list[PeerDevice]:
        if client is None:
            return []
        try:
            return client.new_devices_of_verified(bare_jid(jid))
        except Exception as exc:
            logger.debug("new devices of %s: %s", jid, exc)
            return []

    def _tell_new_devices(self, client: ClientLike | None, recipient: str) -> None:
        """As a send starts: a verified contact's devices that are new since (jinglefs.omemo
        looked at them to seal the key) get no key, and the user should know why."""
        new = self._new_devices(client, recipient)
        if new:
            self.notice.emit(new_devices_text(self._who(recipient), new, sending=True))

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
            if client is None or not client.online:
                raise ConnectError("not connected to the server right now")
            transfers = await client.send_files(recipient, paths)
        except Exception as exc:
            self._tell_new_devices(client, recipient)
            for rec in placeholders:
                rec.fail(failure_text(exc), failure_kind(exc))
                self.transferChanged.emit(rec)
                self.transferFinished.emit(rec)
            return
        self._tell_new_devices(client, recipient)
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
