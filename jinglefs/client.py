"""The real :class:`~jinglefs.api.ClientLike`: an XMPP account that sends and receives files.

Wires the XMPP connection, the sans-IO session manager, one
:class:`~jinglefs.driver.SessionDriver` per session, and the transport negotiators.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import mimetypes
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from . import errors, ladder
from .accept_policy import refusal
from .api import (
    Account,
    ClientEvent,
    ConnectionLost,
    Contact,
    ContactsChanged,
    OfferDeclined,
    OfferLike,
    OfferReceived,
    Reconnected,
    Settings,
    TransferLike,
)
from .driver import SessionDriver
from .endings import close_sessions
from .events import Accepted, Direction, FileInfo, Offered
from .handles import OfferHandle, TransferHandle
from .jet import policy as encryption_policy
from .jet.envelope import EnvelopeError, JetSecret, KeyEnvelope, PeerDevice
from .jet.protocol import FEATURES as JET_FEATURES
from .jet.protocol import omemo_security, peer_takes_jet
from .jet.stream import JetKeys
from .jid import bare_jid
from .jingle import ns
from .jingle.codec import parse_jingle
from .jingle.manager import SessionManager
from .jingle.model import (
    Action,
    Content,
    FileDesc,
    FileTransferDescription,
    Range,
    Reason,
    ReasonInfo,
)
from .jingle.rules import SessionState
from .jingle.session import JingleSession
from .jmi import protocol as jmi
from .jmi.service import JmiService
from .multi_content import accepts_several_contents
from .negotiator import NegotiatorFactory
from .receiving import accepted_content, file_info, run_receiver
from .sending import MAX_CONTENTS, OutgoingFile, run_sender
from .transfer.hashing import disco_features
from .transfer.names import UnsafePathError, safe_filename, safe_relative_path
from .transfer.receiver import IncomingFile
from .transfer.selection import files_to_send
from .xmpp.connection import JingleReply, XmppConnection

if TYPE_CHECKING:
    from .omemo.device import OmemoDevice

logger = logging.getLogger(__name__)

#: How long `send` waits to see a bare JID's resources come online.
PRESENCE_WAIT = 5.0
#: The most files one grouped offer gathers before it is shown anyway.
MAX_GROUP_FILES = 1000


@dataclass
class _OfferedSession:
    """One incoming session-initiate of a (possibly grouped) offer."""

    driver: SessionDriver
    #: its file contents, in offer order
    contents: list[Content]
    files: list[FileInfo]


@dataclass
class _Gathering:
    """Sessions from one full JID arriving close together: one question (docs/protocol.md
    §3.5).  Shown when ``Timeouts.offer_group`` passes without another session from that
    JID, or ``Timeouts.offer_group_max`` after the first one."""

    first_at: float
    parts: list[_OfferedSession] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


def advertised_features(kinds: Sequence[str], *, jet: bool = False) -> list[str]:
    """XEP-0030 features we announce (docs/protocol.md §13.1): only what is implemented;
    ``jet``: JET with the OMEMO envelope (XEP-0391 §6, XEP-0396 §5), once we have keys."""
    features = [ns.JINGLE, ns.FT, ns.HASHES, ns.IBB, jmi.NS,
                *ladder.advertised_transport_features(kinds)]
    if jet:
        features.extend(JET_FEATURES)
    features.extend(disco_features())
    return sorted(set(features))


async def connect(account: Account, settings: Settings | None = None) -> Client:
    """Log in and return a ready client.  Raises ConnectError / AuthError; with
    ``settings.retry_first_login`` an unreachable server returns an offline client that
    keeps trying instead (see :meth:`Client.start`)."""
    client = Client(account, settings or Settings())
    try:
        await client.start()
    except BaseException:
        await client.aclose()  # a failed or abandoned login leaves no client behind
        raise
    return client


class Client:
    def __init__(self, account: Account, settings: Settings) -> None:
        self.account = account
        self.settings = settings
        #: the rungs we have, by kind and by namespace (from :data:`jinglefs.ladder.LADDER`)
        self.factories: dict[str, NegotiatorFactory] = {r.kind: r.factory
                                                         for r in ladder.LADDER}
        self.negotiators: dict[str, NegotiatorFactory] = {
            f.namespace: f for f in self.factories.values()}
        self.connection = XmppConnection(account,
                                         features=advertised_features(list(self.factories)),
                                         on_jingle=self._on_jingle)
        #: XEP-0353: answers file proposals, rings a bare JID's devices (jinglefs.jmi)
        self.jmi = JmiService(self.connection.xmpp, settings, self.connection.in_roster)
        self.services: dict[str, object] = {}
        self.manager: SessionManager | None = None
        self._drivers: dict[tuple[str, str], SessionDriver] = {}
        self._subscribers: list[asyncio.Queue[ClientEvent]] = []
        self._pending_offers: list[OfferHandle] = []
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        #: the ConnectionLost in force while offline (replayed to new subscribers)
        self._offline: ConnectionLost | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gone_timers: dict[str, asyncio.TimerHandle] = {}
        #: offers being gathered, by the sender's full JID
        self._gathering: dict[str, _Gathering] = {}
        #: the OMEMO key envelope for JET (XEP-0396), set by :meth:`use_envelope`
        self.envelope: KeyEnvelope | None = None
        #: secrets of incoming JET offers, opened before the offer is shown, by
        #: (peer full JID, sid, content name)
        self._jet_secrets: dict[tuple[str, str, str], JetSecret] = {}
        #: our OMEMO device (Settings.omemo), made after the first login
        self.omemo: OmemoDevice | None = None
        #: why there is no OMEMO device, when it failed to start
        self.omemo_error: Exception | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Log in (raises ConnectError / AuthError).

        With ``settings.retry_first_login`` an unreachable server does not raise: the
        client starts offline (``online`` False, :class:`ConnectionLost` for subscribers)
        and its reconnect loop logs in later (:class:`Reconnected`).  A refused account
        always raises.
        """
        for rung in ladder.LADDER:
            if rung.service is not None:
                self.services[rung.kind] = rung.service(self.connection.xmpp)
        self.connection.on_contacts_changed(self._contacts_changed)
        self.connection.on_unavailable(self._peer_unavailable)
        self.connection.on_disconnect(self._disconnected)
        try:
            await self.connection.connect(self.settings.timeouts.connect)
        except errors.AuthError:
            raise
        except errors.ConnectError as e:
            if not self.settings.retry_first_login:
                raise
            self._keep_trying(str(e))
            return
        self._logged_in()
        await self._start_omemo()

    async def _start_omemo(self) -> None:
        """Our OMEMO device (jinglefs.omemo), once, after the first login; JET uses it
        from then on.  If it cannot start (keys in use by another process, a damaged
        store, no PEP on the server) the client runs without it; ``omemo_error`` says why."""
        if not self.settings.omemo or self.omemo is not None:
            return
        from .omemo.device import OmemoDevice  # loads python-omemo (~1 s): only when used

        try:
            self.omemo = await OmemoDevice.start(self.connection, self.account.jid,
                                                 timeout=self.settings.timeouts.iq)
        except Exception as e:
            self.omemo_error = e
            logger.warning("no OMEMO for %s: %s", self.account.jid, e)
            return
        self.omemo_error = None
        await self.use_envelope(self.omemo)

    def _logged_in(self) -> None:
        """A new XMPP session: Jingle sessions start from its bound JID."""
        t = self.settings.timeouts
        self.manager = SessionManager(self.connection.jid, new_id=self.new_id,
                                      new_sid=self.new_id, iq_timeout=t.iq,
                                      accept_timeout=t.accept, transport_timeout=t.transport)
        self._offline = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        for gathering in self._gathering.values():
            if gathering.timer is not None:
                gathering.timer.cancel()
        self._gathering.clear()
        # Every session ends with session-terminate (an unanswered offer is declined),
        # acknowledged before the connection goes, bounded (jinglefs.endings).
        await close_sessions(list(self._drivers.values()), list(self._tasks))
        for driver in list(self._drivers.values()):
            await driver.aclose()
        if self.omemo is not None:
            try:
                await self.omemo.aclose()
            except Exception:
                logger.exception("closing the OMEMO store")
        await self.connection.aclose()

    @property
    def jid(self) -> str:
        return self.connection.jid

    @property
    def online(self) -> bool:
        """Logged in right now (False between ConnectionLost and Reconnected)."""
        return self.connection.connected

    def new_id(self) -> str:
        return secrets.token_hex(8)

    # ------------------------------------------------------------------- events

    def _publish(self, event: ClientEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    async def events(self) -> AsyncIterator[ClientEvent]:
        queue: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            if self._offline is not None:
                yield self._offline  # offline since before this subscription
            for offer in [o for o in self._pending_offers if not o.answered]:
                yield OfferReceived(offer)
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    async def offers(self) -> AsyncIterator[OfferLike]:
        async for event in self.events():
            if isinstance(event, OfferReceived):
                yield event.offer

    def contacts(self) -> list[Contact]:
        return self.connection.contacts(self._transports_of)

    async def refresh_features(self) -> bool:
        """Announce what the rungs in :attr:`factories` take now: when that changed, the
        caps change and presence goes out again (XEP-0115 §6.1).  True if it changed."""
        jet = self.envelope is not None and \
            encryption_policy.wants_jet(self.settings.encryption)
        return await self.connection.set_features(advertised_features(list(self.factories),
                                                                      jet=jet))

    async def use_envelope(self, envelope: KeyEnvelope | None) -> None:
        """Encrypt files with JET through ``envelope`` (our OMEMO device) from now on, and
        announce JET-OMEMO (XEP-0391 §6) unless ``Settings.encryption`` is off."""
        self.envelope = envelope
        await self.refresh_features()

    async def set_encryption(self, policy: str) -> None:
        """Use ``Settings.encryption`` = ``policy`` from the next offer on (running
        transfers keep theirs) and announce JET-OMEMO accordingly (the app's Preferences)."""
        self.settings = replace(self.settings, encryption=encryption_policy.check(policy))
        await self.refresh_features()

    # --------------------------------------------------------------- OMEMO trust
    # Thin: our OMEMO device (jinglefs.omemo.device) does the work; the app uses these.

    def _omemo_device(self) -> OmemoDevice:
        if self.omemo is None:
            why = f" ({self.omemo_error})" if self.omemo_error is not None else \
                "" if self.settings.omemo else " (OMEMO is off for this account)"
            raise EnvelopeError(f"OMEMO is not set up on this device{why}")
        return self.omemo

    async def own_fingerprint(self) -> str | None:
        """Our OMEMO device's fingerprint (8 groups of 8 hex digits), None when OMEMO is
        off (``Settings.omemo``); EnvelopeError when it failed to start."""
        if self.omemo is None and not self.settings.omemo:
            return None
        return (await self._omemo_device().own_device()).fingerprint

    async def devices_of(self, bare: str) -> list[PeerDevice]:
        """The contact's OMEMO devices with fingerprint and trust, fetched by PEP now
        (BTBV decides new ones); EnvelopeError when they cannot be fetched."""
        return await self._omemo_device().devices(bare)

    async def verify_device(self, bare: str, fingerprint: str) -> PeerDevice:
        """Mark the contact's device with this fingerprint verified; EnvelopeError when
        no device of theirs has it (nothing changes then)."""
        return await self._omemo_device().verify(bare, fingerprint)

    def new_devices_of_verified(self, bare: str) -> list[PeerDevice]:
        """Devices of a verified contact that are new since the verification (not trusted
        until verified), as of the last look at that contact's devices (every send does)."""
        return self.omemo.new_devices_of_verified(bare) if self.omemo is not None else []

    def _transports_of(self, features: frozenset[str]) -> frozenset[str]:
        return ladder.peer_kinds(features, self.factories)

    def _contacts_changed(self) -> None:
        self._publish(ContactsChanged(tuple(self.contacts())))

    def _disconnected(self, reason: str) -> None:
        for driver in list(self._drivers.values()):
            if not driver.session.is_over:
                driver.terminate(Reason.CONNECTIVITY_ERROR,
                                 "lost the connection to the XMPP server")
        self._keep_trying(reason)

    def _keep_trying(self, reason: str) -> None:
        if not self._closing and self._reconnect_task is None:
            self._reconnect_task = asyncio.ensure_future(self._reconnect(reason))

    def _announce(self, event: ConnectionLost) -> None:
        self._offline = event
        self._publish(event)

    async def _reconnect(self, reason: str) -> None:
        """The one reconnect loop (front ends only follow its events): wait the next of
        ``settings.reconnect_delays`` (the last one repeats), log in again, until that
        works, the server refuses the account, or the client closes."""
        delays = self.settings.reconnect_delays or (0.0,)
        try:
            for attempt in itertools.count():
                delay = delays[min(attempt, len(delays) - 1)]
                self._announce(ConnectionLost(reason, retry_in=delay))
                await asyncio.sleep(delay)
                try:
                    await self.connection.connect(self.settings.timeouts.connect)
                except errors.AuthError as e:
                    self._announce(ConnectionLost(str(e), refused=True))
                    return
                except errors.ConnectError as e:
                    logger.info("reconnect failed: %s", e)
                    reason = str(e)
                    continue
                if not self.connection.connected:  # dropped again right after login
                    reason = "the connection dropped right after login"
                    continue
                self._logged_in()
                self._publish(Reconnected())
                await self._start_omemo()
                return
        finally:
            self._reconnect_task = None

    def _peer_unavailable(self, full_jid: str) -> None:
        """XEP-0166 §6.7 liveness: a peer that went offline ends its sessions soon."""
        if not any(d.session.peer_jid == full_jid for d in self._drivers.values()):
            return
        loop = asyncio.get_running_loop()
        old = self._gone_timers.pop(full_jid, None)
        if old is not None:
            old.cancel()
        self._gone_timers[full_jid] = loop.call_later(
            self.settings.timeouts.peer_gone, self._peer_gone, full_jid)

    def _peer_gone(self, full_jid: str) -> None:
        self._gone_timers.pop(full_jid, None)
        bare, _, resource = full_jid.partition("/")
        if f"{bare}/{resource}" in self.connection.online_resources(bare):
            return  # it came back
        for driver in list(self._drivers.values()):
            if driver.session.peer_jid == full_jid and \
                    not driver.session.is_over:
                driver.terminate(Reason.GONE, "the contact went offline")

    # ------------------------------------------------ SessionHost (jinglefs.driver)

    def factory(self, kind: str) -> NegotiatorFactory:
        return self.factories[kind]

    def factory_for(self, namespace: str) -> NegotiatorFactory | None:
        return self.negotiators.get(namespace)

    def session_ended(self, driver: SessionDriver) -> None:
        loop = asyncio.get_running_loop()
        # Keep the driver a little so late IQ answers still find their session.
        loop.call_later(30.0, self._forget, driver)

    def _forget(self, driver: SessionDriver) -> None:
        key = (driver.session.peer_jid, driver.session.sid)
        if self._drivers.get(key) is driver:
            del self._drivers[key]
        for secret_key in [k for k in self._jet_secrets if k[:2] == key]:
            del self._jet_secrets[secret_key]  # an offer that was never accepted
        if self.manager is not None:
            self.manager.forget(driver.session)

    # -------------------------------------------------------------------- send

    async def send_files(self, recipient: str, paths: Sequence[Path], *,
                         transport: str | None = None) -> list[TransferLike]:
        if not self.online:
            raise errors.ConnectError("not connected to the XMPP server right now")
        files = files_to_send(paths)
        kind = transport or self.settings.transport
        if kind != "auto" and kind not in self.factories:
            raise errors.UsageError(f"transport {kind!r} is not available "
                                    f"(have: {', '.join(self.factories)})")
        encryption_policy.check(self.settings.encryption)
        peer, proposed = await self._pick_resource(recipient)
        features = await self.connection.features(peer)
        kinds = self._ladder(features, kind)
        keys, why = await self._jet_keys(peer, features, len(files))
        if keys is None:
            try:
                kinds = encryption_policy.rungs_without_jet(self.settings.encryption, kinds)
            except errors.EncryptionRequired as e:
                raise errors.EncryptionRequired(f"{e}{f' ({why})' if why else ''}") from None
        # One action, one session with a content per file (XEP-0166 §7.2.10, XEP-0234 §5)
        # for peers known to take several; one session per file for everyone else
        # (Conversations, Dino): docs/protocol.md §3.5.
        several = accepts_several_contents(*self.connection.software(peer))
        per_session = MAX_CONTENTS if several else 1
        handles: list[TransferLike] = []
        assert self.manager is not None
        for start in range(0, len(files), per_session):
            # XEP-0353 §3.6: the first session takes the id of the proposal the peer proceeded
            session = self.manager.create(peer, sid=proposed if start == 0 else None)
            driver = self._add_driver(session)
            outgoing = [self._outgoing(driver, peer, path, name,
                                       keys[start + i] if keys is not None else None)
                        for i, (path, name) in enumerate(files[start:start + per_session])]
            self._spawn(run_sender(driver, outgoing, kinds))
            handles.extend(f.transfer for f in outgoing)
        return handles

    async def _jet_keys(self, peer: str, features: frozenset[str], count: int
                        ) -> tuple[list[JetKeys] | None, str]:
        """A fresh JET secret per file, sealed for the peer's OMEMO devices (XEP-0396 §4),
        when ``Settings.encryption`` allows it and the peer takes it; else None and why."""
        envelope = self.envelope
        if not encryption_policy.wants_jet(self.settings.encryption):
            return None, "encryption is off"
        if envelope is None:
            return None, "OMEMO is not set up on this device"
        if not peer_takes_jet(features):
            return None, "the contact's device does not take OMEMO-encrypted files"
        bare = bare_jid(peer)
        try:
            if not await envelope.can_encrypt_to(bare):
                return None, f"{bare} has no OMEMO device we can encrypt to"
            for device in envelope.new_devices_of_verified(bare):
                logger.warning("%s has a new OMEMO device %s (%s) since you verified them",
                               bare, device.device_id, device.fingerprint)
            keys = []
            for _ in range(count):
                secret, element = await envelope.seal(bare)
                keys.append(JetKeys(secret, omemo_security(element)))
        except EnvelopeError as e:
            logger.info("not encrypting for %s: %s", peer, e)
            return None, str(e)
        return keys, ""

    def _outgoing(self, driver: SessionDriver, peer: str, path: Path, name: str,
                  jet: JetKeys | None = None) -> OutgoingFile:
        stat = path.stat()
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # <range/> says we honour a ranged (resumed) accept (XEP-0234 §5);
        # <hash-used/> announces the checksum that follows the bytes (XEP-0234 §8.2).
        desc = FileDesc(name=name, size=stat.st_size, media_type=media_type,
                        date=datetime.fromtimestamp(stat.st_mtime, UTC),
                        hash_used=("sha-256",), range=Range())
        handle = TransferHandle(self.new_id(), peer, Direction.SEND, file_info(desc),
                                cancel=self._canceller(driver))
        handle.emit(Offered(handle.id, peer=peer, direction=Direction.SEND,
                            file=handle.file))
        return OutgoingFile(path, desc, handle, jet)

    def _ladder(self, features: frozenset[str], forced: str) -> list[str]:
        return ladder.rungs_for(features, self.factories, forced)

    async def _pick_resource(self, recipient: str) -> tuple[str, str | None]:
        """The full JID to send to, and the sid a JMI proposal fixed (or None)."""
        if "/" in recipient:
            return recipient, None
        bare = recipient
        contact = self.connection.in_roster(bare)
        # A stranger's devices never show in presence: no point in waiting for them.
        deadline = time.monotonic() + (PRESENCE_WAIT if contact else 0.0)
        while True:
            candidates = self.connection.online_resources(bare)
            for full in candidates:
                feats = await self.connection.features(full)
                if ns.JINGLE in feats and ns.FT in feats:
                    return full, None
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        online = len(self.connection.online_resources(bare))
        if contact and not online:
            # Presence shows every device of a contact: none is online (a proposal would
            # only wait in the server's offline store).
            raise errors.RecipientUnavailable(
                f"{bare} has no online device that can receive files (0 online)")
        # Presence cannot pick a device: ring them all (XEP-0353 §3.1); the one that
        # proceeds gets the session (docs/protocol.md §11).
        return await self.jmi.propose(bare, self.settings.timeouts.accept, contact=contact,
                                      online=online)

    # ------------------------------------------------------------------ receive

    def _on_jingle(self, from_jid: str, el: Any, reply: JingleReply) -> None:
        assert self.manager is not None
        jingle = parse_jingle(el)  # RemoteProtocolError -> bad-request error reply
        session, created = self.manager.receive(from_jid, jingle, time.monotonic())
        if created and jingle.action is Action.SESSION_INITIATE:
            self.jmi.session_initiated(from_jid, jingle.sid)  # its proposal is answered
        reply.ack()  # XEP-0166 §6.3.1: ack before anything the action causes
        driver = self._drivers.get((from_jid, session.sid))
        if driver is None or created:
            driver = self._add_driver(session)
            driver.on_initiated = self._offer_received
        driver.pump()

    def _add_driver(self, session: JingleSession) -> SessionDriver:
        driver = SessionDriver(self, session)
        self._drivers[(session.peer_jid, session.sid)] = driver
        return driver

    def _offer_received(self, driver: SessionDriver, contents: tuple[Content, ...]) -> None:
        peer = driver.session.peer_jid
        bare = bare_jid(peer)
        usable = [c for c in contents if isinstance(c.description, FileTransferDescription)]
        files = [file_info(c.description.file) for c in usable
                 if isinstance(c.description, FileTransferDescription)]
        refused = refusal(self.settings, peer, files)
        if refused is not None:
            # Settings' accept policy, for every front end: decline before anyone sees the
            # offer (XEP-0166 §6.7, reason <decline/> with a text, §7.4), once this
            # session-initiate is fully handled.
            def decline() -> None:
                if driver.session.state is not SessionState.ENDED:
                    driver.terminate(Reason.DECLINE, refused.peer_text)

            asyncio.get_running_loop().call_soon(decline)
            self._publish(OfferDeclined(self.new_id(), peer, tuple(files),
                                        self.connection.in_roster(bare), refused.rule,
                                        refused.text))
            return
        for c in usable:
            factory = self.negotiators.get(getattr(c.transport, "namespace", ""))
            why = encryption_policy.refuse_offer(
                self.settings.encryption, jet=c.security is not None,
                transport_kind=factory.kind if factory is not None else None)
            if why is not None:
                self._refuse(driver, files, Reason.DECLINE, "encryption", why)
                return
        part = _OfferedSession(driver, usable, files)
        if any(c.security is not None for c in usable):
            self._spawn(self._open_jet(part))
        else:
            self._gather(peer, part)

    def _refuse(self, driver: SessionDriver, files: list[FileInfo], condition: Reason,
                rule: str, why: str) -> None:
        """End an offer before anyone sees it (XEP-0166 §7.4, with a text), once its
        session-initiate is handled, and announce it as :class:`OfferDeclined`."""
        peer = driver.session.peer_jid

        def end() -> None:
            if not driver.session.is_over:
                driver.terminate(condition, why[:200])

        asyncio.get_running_loop().call_soon(end)
        self._publish(OfferDeclined(self.new_id(), peer, tuple(files),
                                    self.connection.in_roster(bare_jid(peer)), rule, why))

    async def _open_jet(self, part: _OfferedSession) -> None:
        """Open every content's JET secret (XEP-0391 §4.1) before the offer is shown; an
        offer we cannot decrypt ends with security-error and a text, and nothing is
        written (docs/interop.md §9)."""
        session = part.driver.session
        peer = session.peer_jid
        for c in part.contents:
            security = c.security
            if security is None:
                continue
            why = ""
            if not security.supported:
                why = f"unsupported cipher or key envelope ({security.cipher}, {security.type})"
            elif self.envelope is None:
                why = "OMEMO is not set up on this device"
            else:
                try:
                    secret, _device = await self.envelope.open(peer, security.envelope)
                except EnvelopeError as e:
                    why = str(e) or "the key could not be opened"
                else:
                    self._jet_secrets[(peer, session.sid, c.name)] = secret
            if why:
                self._refuse(part.driver, part.files, Reason.SECURITY_ERROR, "cannot-decrypt",
                             f"cannot decrypt the file: {why}")
                return
        if session.state is SessionState.PENDING:
            self._gather(peer, part)

    def _gather(self, peer: str, part: _OfferedSession) -> None:
        """Hold a new session a moment: more from the same sender join it, so one action
        of a client that sends one session per file is one question (docs/protocol.md
        §3.5)."""
        loop = asyncio.get_running_loop()
        t = self.settings.timeouts
        now = loop.time()
        gathering = self._gathering.get(peer)
        if gathering is None:
            gathering = self._gathering[peer] = _Gathering(first_at=now)
        gathering.parts.append(part)
        if gathering.timer is not None:
            gathering.timer.cancel()
        count = sum(len(p.files) for p in gathering.parts)
        delay = min(t.offer_group, gathering.first_at + t.offer_group_max - now)
        if count >= MAX_GROUP_FILES:
            delay = 0.0
        gathering.timer = loop.call_later(max(0.0, delay), self._offer_ready, peer)

    def _offer_ready(self, peer: str) -> None:
        gathering = self._gathering.pop(peer, None)
        if gathering is None or self._closing:
            return
        # A session the sender withdrew meanwhile is not shown.
        parts = [p for p in gathering.parts
                 if p.driver.session.state is SessionState.PENDING]
        if not parts:
            return
        offer = OfferHandle(self.new_id(), peer, [f for p in parts for f in p.files],
                            from_contact=self.connection.in_roster(bare_jid(peer)),
                            accept=lambda d, n: self._accept(parts, d, n),
                            decline=lambda: self._decline(parts))
        self._pending_offers.append(offer)
        loop = asyncio.get_running_loop()
        loop.call_later(self.settings.timeouts.accept, self._expire_offer, offer, parts)
        self._publish(OfferReceived(offer))

    def _expire_offer(self, offer: OfferHandle, parts: list[_OfferedSession]) -> None:
        if offer in self._pending_offers:
            self._pending_offers.remove(offer)
        if not offer.answered:
            offer.answered = True
            for part in parts:
                if not part.driver.session.is_over:
                    part.driver.terminate(Reason.TIMEOUT, "the offer was not answered in time")

    async def _decline(self, parts: list[_OfferedSession]) -> None:
        self._pending_offers[:] = [o for o in self._pending_offers if not o.answered]
        for part in parts:
            if not part.driver.session.is_over:
                part.driver.terminate(Reason.DECLINE)

    async def _accept(self, parts: list[_OfferedSession], dest_dir: Path,
                      names: Sequence[str] | None) -> list[TransferLike]:
        """Accept every session of one offer; ``names`` index the offer's files."""
        self._pending_offers[:] = [o for o in self._pending_offers if not o.answered]
        transfers: list[TransferLike] = []
        failure: errors.JingleFSError | None = None
        index = 0
        for part in parts:
            own = list(names[index:index + len(part.contents)]) if names else None
            index += len(part.contents)
            try:
                transfers.extend(await self._accept_session(part.driver, part.contents,
                                                            dest_dir, own))
            except errors.JingleFSError as e:
                failure = failure or e
        if not transfers:
            raise failure or errors.Cancelled("the sender withdrew the offer", by_peer=True)
        return transfers

    async def _accept_session(self, driver: SessionDriver, contents: list[Content],
                              dest_dir: Path, names: Sequence[str] | None
                              ) -> list[TransferLike]:
        session = driver.session
        if session.state is not SessionState.PENDING:
            raise errors.Cancelled("the sender withdrew the offer", by_peer=True)
        bare = bare_jid(session.peer_jid)
        accepted: list[Content] = []
        started: list[tuple[Content, IncomingFile, TransferHandle, JetSecret | None]] = []
        for index, content in enumerate(contents):
            desc = content.description
            assert isinstance(desc, FileTransferDescription)
            factory = self.negotiators.get(getattr(content.transport, "namespace", ""))
            if factory is None or desc.file.size is None:
                continue  # left out of session-accept = rejected (XEP-0166 §7.2.8)
            name = names[index] if names and index < len(names) else (desc.file.name or "file")
            try:
                rel = safe_relative_path(name)
            except UnsafePathError:
                # '..' or an absolute path from a peer: keep only a safe file name, inside
                # the chosen folder.
                rel = PurePosixPath(safe_filename(name))
            expected = {a: v for a, v in desc.file.hashes}
            folder = rel.parent if rel.parent != PurePosixPath(".") else None
            secret = self._jet_secrets.pop((session.peer_jid, session.sid, content.name), None)
            if content.security is not None and secret is None:
                continue  # never written as ciphertext
            # XEP-0234 §6.4: resume only when the sender said it supports ranges; never an
            # encrypted file (no partial of one is kept: receiving.run_receiver).
            incoming = IncomingFile.find_resumable(
                dest_dir, rel.name, desc.file.size, peer=bare, hashes=expected,
                date=desc.file.date, relative_dir=folder) \
                if desc.file.range is not None and secret is None else None
            if incoming is None:
                incoming = IncomingFile.create(dest_dir, rel.name, desc.file.size, peer=bare,
                                               hashes=expected, date=desc.file.date,
                                               relative_dir=folder)
            negotiator = factory(driver.context(content.name))
            driver.receiver_content(content.name, negotiator)
            answer = await negotiator.answer(content.transport)  # type: ignore[arg-type]
            # session-accept echoes no <security/> (docs/interop.md §9)
            accepted.append(replace(accepted_content(content, answer, incoming.offset),
                                    security=None))
            handle = TransferHandle(self.new_id(), session.peer_jid, Direction.RECEIVE,
                                    file_info(desc.file), cancel=self._canceller(driver))
            handle.emit(Offered(handle.id, peer=session.peer_jid, direction=Direction.RECEIVE,
                                file=handle.file))
            started.append((content, incoming, handle, secret))
        if not accepted:
            driver.terminate(Reason.UNSUPPORTED_TRANSPORTS,
                             "none of the offered files can be received")
            raise errors.TransportError("none of the offered files can be received")
        session.accept(accepted, time.monotonic())
        driver.pump()
        for content, incoming, handle, secret in started:
            handle.emit(Accepted(handle.id, offset=incoming.offset))
            self._spawn(run_receiver(driver, content, incoming, handle, jet=secret))
        return [h for _, _, h, _ in started]

    # ------------------------------------------------------------------ helpers

    def _canceller(self, driver: SessionDriver) -> Any:
        async def cancel() -> None:
            if not driver.session.is_over:
                driver.terminate(Reason.CANCEL)
        return cancel

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("transfer task crashed", exc_info=task.exception())


__all__ = ["Client", "connect", "FileInfo", "ReasonInfo"]
