"""The imperative shell around one :class:`~jinglefs.jingle.session.JingleSession`.

It feeds the session what the peer sent, sends the IQs the session produces, arms a
timer for ``session.get_timer()``, and runs one *flow* per content:

* sender flow (we are the initiator, XEP-0234 push): offer → wait for accept →
  connect over the ladder (transport-replace to the next rung on failure) → stream
  the file → session-info checksum → wait for the receiver's session-terminate;
* receiver flow (we are the responder): answer the transport → connect, switching
  when the initiator replaces the transport → write the partial file → wait briefly
  for the checksum → verify → session-info received → session-terminate success.

Every waiting step has a time limit from :class:`~jinglefs.api.Timeouts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from . import errors
from .api import Settings
from .events import Progress
from .handles import TransferHandle
from .jingle.codec import encode_jingle
from .jingle.model import (
    Checksum,
    Content,
    Jingle,
    Reason,
    ReasonInfo,
)
from .jingle.session import (
    ContentAddReceived,
    ContentRemoved,
    InfoReceived,
    IqFailed,
    JingleSession,
    SessionAccepted,
    SessionEnded,
    SessionEvent,
    SessionInitiated,
    TransportAccepted,
    TransportInfoReceived,
    TransportRejected,
    TransportReplaceReceived,
    TransportReplaceRefused,
)
from .jingle.transport import TransportPayload
from .negotiator import NegotiationContext, Negotiator, NegotiatorFactory
from .transfer.progress import RateMeter
from .xmpp.connection import JingleIqError, XmppConnection

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25
#: transport-info payloads kept per content that is not accepted yet.
MAX_EARLY_INFO = 32
#: After the peer's session-terminate <success/>, how long the byte pump may go without
#: moving a byte before it gives up (the bytes that were still on their way are in).
ENDED_DRAIN = 3.0

E = TypeVar("E", bound=SessionEvent)
T = TypeVar("T")

REASON_ERRORS: dict[Reason, type[errors.JingleFSError]] = {
    Reason.DECLINE: errors.Declined,
    Reason.BUSY: errors.Declined,
    Reason.CANCEL: errors.Cancelled,
    Reason.TIMEOUT: errors.NegotiationTimeout,
    Reason.EXPIRED: errors.NegotiationTimeout,
    Reason.FAILED_TRANSPORT: errors.TransportError,
    Reason.CONNECTIVITY_ERROR: errors.TransportError,
    Reason.UNSUPPORTED_TRANSPORTS: errors.TransportError,
    Reason.GONE: errors.PeerGone,
    Reason.MEDIA_ERROR: errors.TransferError,
    Reason.FAILED_APPLICATION: errors.TransferError,
    Reason.UNSUPPORTED_APPLICATIONS: errors.NegotiationError,
    Reason.SECURITY_ERROR: errors.TransferError,
    Reason.GENERAL_ERROR: errors.TransferError,
}

_REASON_TEXT = {
    Reason.DECLINE: "the recipient declined",
    Reason.BUSY: "the recipient is busy",
    Reason.TIMEOUT: "the other side did not answer in time",
    Reason.GONE: "the contact went offline",
    Reason.UNSUPPORTED_APPLICATIONS: "the contact's client cannot receive files this way",
    Reason.UNSUPPORTED_TRANSPORTS: "the contact's client supports none of our transports",
}


def error_for_end(ended: SessionEnded) -> errors.JingleFSError:
    """The exception matching how a session ended (one table: REASON_ERRORS)."""
    r = ended.reason
    cls = REASON_ERRORS.get(r.condition, errors.TransferError)
    text = _REASON_TEXT.get(r.condition, f"session ended: {r.condition.value}")
    if r.condition is Reason.CANCEL:
        text = "cancelled by the peer" if ended.by_peer else "cancelled here"
    if r.text:
        text += f" ({r.text})"
    if r.app_condition:
        text += f" [{r.app_condition}]"
    if cls is errors.Cancelled:
        return errors.Cancelled(text, by_peer=ended.by_peer)
    if issubclass(cls, errors.NegotiationError):
        return cls(text, reason=r.condition.value)
    return cls(text)


class Ended(Exception):
    def __init__(self, ended: SessionEnded) -> None:
        super().__init__(ended.reason.condition.value)
        self.ended = ended


@dataclass
class ContentQueue:
    queue: asyncio.Queue[SessionEvent]
    negotiator: Negotiator | None = None
    checksum: Checksum | None = None


class SessionHost(Protocol):
    """What a driver needs from the client that owns it, and nothing more (the client
    implements it; the driver never reads the client's other members)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def connection(self) -> XmppConnection: ...

    @property
    def services(self) -> dict[str, object]: ...

    def new_id(self) -> str:
        """A fresh random identifier (IQ ids, transport sids, candidate ids)."""
        ...

    def factory(self, kind: str) -> NegotiatorFactory:
        """The negotiator class for a rung of the ladder ("ice", "s5b", "ibb")."""
        ...

    def factory_for(self, namespace: str) -> NegotiatorFactory | None:
        """The negotiator class for a ``<transport xmlns=…>``, or None if unknown."""
        ...

    def session_ended(self, driver: SessionDriver) -> None:
        """The session is over; the host may forget the driver (after late IQs)."""
        ...


class SessionDriver:
    """Runs one session; created by the Client for every session, ours or the peer's."""

    def __init__(self, host: SessionHost, session: JingleSession) -> None:
        self.host = host
        self.session = session
        self.log = logging.LoggerAdapter(logger, {"sid": session.sid})
        self.contents: dict[str, ContentQueue] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended: asyncio.Future[SessionEnded] = asyncio.get_running_loop().create_future()
        self.on_initiated: Callable[[SessionDriver, tuple[Content, ...]], None] | None = None
        #: transport-info for contents we have not accepted yet (see _dispatch)
        self._early_info: dict[str, list[TransportPayload]] = {}

    # ------------------------------------------------------------------ pumping

    def pump(self) -> None:
        """Send what the session wants sent, dispatch its events, re-arm its timer."""
        s = self.session
        for iq in s.iqs_to_send():
            self._spawn(self._send_iq(iq.id, iq.jingle))
        while (event := s.next_event()) is not None:
            self._dispatch(event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = s.get_timer()
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()),
                                       self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.handle_timer(time.monotonic())
        self.pump()

    async def _send_iq(self, iq_id: str, jingle: Jingle) -> None:
        timeouts = self.host.settings.timeouts
        try:
            await self.host.connection.send_iq(self.session.peer_jid, encode_jingle(jingle),
                                                 iq_id=iq_id, timeout=timeouts.iq)
        except JingleIqError as e:
            self.session.receive_iq_error(iq_id, e.condition, time.monotonic(),
                                          e.jingle_condition)
        except Exception as e:  # noqa: BLE001 - a dead connection: the IQ is lost
            self.log.debug("IQ %s not sent: %s", iq_id, e)
            self.session.receive_iq_error(iq_id, "remote-server-timeout", time.monotonic())
        else:
            self.session.receive_iq_result(iq_id, time.monotonic())
        self.pump()

    def _dispatch(self, event: SessionEvent) -> None:
        if isinstance(event, SessionEnded):
            if not self.ended.done():
                self.ended.set_result(event)
            for cq in self.contents.values():
                cq.queue.put_nowait(event)
            self.host.session_ended(self)
            return
        if isinstance(event, TransportInfoReceived):
            target = self.contents.get(event.content)
            if target is None:
                # XEP-0176 trickle: the initiator may send candidates before we accept
                # (Conversations does, docs/protocol.md §6.4); receiver_content() hands them on.
                early = self._early_info.setdefault(event.content, [])
                if len(early) < MAX_EARLY_INFO:
                    early.append(event.transport)
                return
            if target.negotiator is not None:
                try:
                    target.negotiator.transport_info(event.transport)
                except errors.JingleFSError as e:
                    self.log.info("bad transport-info: %s", e)
            return
        if isinstance(event, InfoReceived):
            info = event.info
            if isinstance(info, Checksum):
                # XEP-0234 §8.2 names the content; Conversations may send no creator, and
                # a checksum we cannot place is only safe to use in a one-file session.
                target = self.contents.get(info.name or "")
                if target is None and len(self.contents) == 1:
                    [target] = self.contents.values()
                if target is not None:
                    target.checksum = info
                    target.queue.put_nowait(event)
            return  # <received/> is informational (we wait for session-terminate)
        if isinstance(event, TransportReplaceReceived | TransportAccepted | TransportRejected):
            queued = self.contents.get(event.content)
            if queued is not None:
                queued.queue.put_nowait(event)
            elif isinstance(event, TransportReplaceReceived):
                # No flow to answer it: reject (XEP-0166 §7.2.15 wants an answer).
                self.session.refuse_replace(event.content, time.monotonic())
                self.pump()
            return
        if isinstance(event, TransportReplaceRefused):
            self.log.info("rejected the peer's transport-replace of %s: cannot switch now",
                          event.content)
            return
        if isinstance(event, ContentAddReceived):
            # A file added to a running session (XEP-0166 §7.2.2) was never shown to the
            # user, so it is declined; the sender may offer it in a session of its own.
            self.session.reject_contents([c.name for c in event.contents], time.monotonic(),
                                         ReasonInfo(Reason.DECLINE))
            self.pump()
            return
        if isinstance(event, ContentRemoved):
            # XEP-0166 §7.2.5: the peer stopped one file of several; end that flow only.
            ended = SessionEnded(event.reason or ReasonInfo(Reason.CANCEL), by_peer=True)
            for name in event.names:
                removed = self.contents.get(name)
                if removed is not None:
                    removed.queue.put_nowait(ended)
                    if removed.negotiator is not None:
                        self._spawn(removed.negotiator.aclose())
            return
        if isinstance(event, IqFailed):
            self.log.info("peer refused our %s: %s", event.action.value, event.condition)
            return
        if isinstance(event, SessionAccepted):
            for cq in self.contents.values():
                cq.queue.put_nowait(event)
            return
        if isinstance(event, SessionInitiated) and self.on_initiated is not None:
            self.on_initiated(self, event.contents)
        # Anything else (content-accept/reject of ours: we never add contents) needs no
        # action here.

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -------------------------------------------------------------- local actions

    def terminate(self, condition: Reason, text: str | None = None,
                  app: str | None = None) -> None:
        self.session.terminate(ReasonInfo(condition, text, app), time.monotonic())
        self.pump()

    def context(self, content: str) -> NegotiationContext:
        s = self.session

        def send_info(payload: TransportPayload) -> None:
            if not self.session.is_over:
                self.session.send_transport_info(content, payload, time.monotonic())
                self.pump()

        return NegotiationContext(role=s.role, local_jid=s.local_jid, peer_jid=s.peer_jid,
                                  settings=self.host.settings,
                                  connection=self.host.connection,
                                  send_transport_info=send_info, new_id=self.host.new_id,
                                  services=self.host.services)

    async def next_for(self, content: str, kinds: tuple[type[E], ...], timeout: float) -> E:
        """The next event of the given kinds for a content; raises Ended or TimeoutError."""
        queue = self.contents[content].queue
        async with asyncio.timeout(timeout):
            while True:
                event = await queue.get()
                if isinstance(event, SessionEnded):
                    raise Ended(event)
                if isinstance(event, kinds):
                    return event

    async def until_ended(self, work: Coroutine[object, object, T], timeout: float) -> T:
        """``work`` within ``timeout`` (else TimeoutError); Ended as soon as the peer ends
        the session, instead of connecting on until the timeout."""
        task = asyncio.ensure_future(work)
        waiting: set[asyncio.Future[Any]] = {task, self.ended}
        try:
            done, _ = await asyncio.wait(waiting, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if task in done:
            return task.result()
        if self.ended.done():
            raise Ended(self.ended.result())
        raise TimeoutError

    # --------------------------------------------------------------- receiver

    def receiver_content(self, content: str, negotiator: Negotiator) -> None:
        self.contents[content] = ContentQueue(asyncio.Queue(), negotiator)
        # Until its bytes flow, the receiving flow can switch transports when the initiator
        # replaces ours (receiving.connect_as_responder answers, then refuse_replace()).
        self.session.expect_replace(content)
        for payload in self._early_info.pop(content, []):
            try:
                negotiator.transport_info(payload)  # before answer(): the negotiator keeps it
            except errors.JingleFSError as e:
                self.log.info("bad transport-info: %s", e)

    def content_done(self, name: str) -> None:
        self.contents[name].negotiator = None
        if all(cq.negotiator is None for cq in self.contents.values()):
            # XEP-0234 §6.6: the receiver ends the session once it has everything.
            self.terminate(Reason.SUCCESS)

    # ----------------------------------------------------------------- helpers

    def new_negotiator(self, kind: str, content: str) -> Negotiator:
        factory = self.host.factory(kind)
        neg = factory(self.context(content))
        self.contents[content].negotiator = neg
        return neg

    async def with_stall_guard(self, work: Awaitable[T], transfer: TransferHandle) -> T:
        """Run the byte pump; fail if no byte moves for ``timeouts.stall`` seconds or the
        session ends under it."""
        task = asyncio.ensure_future(work)
        stall = self.host.settings.timeouts.stall
        last = (-1, time.monotonic())
        #: the peer ended the session with <success/> while bytes were still moving here
        peer_done = False
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {task} if peer_done else {task, self.ended}
                done, _ = await asyncio.wait(waiting, timeout=1.0,
                                             return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    return task.result()
                if self.ended in done:
                    ended = self.ended.result()
                    if not (ended.by_peer and ended.reason.condition is Reason.SUCCESS):
                        raise Ended(ended)
                    # A session-terminate <success/> travels through the server and may
                    # overtake the last bytes still in our socket or IBB queue (a peer
                    # that ends right after the last byte, docs/interop.md §11 "Ending"):
                    # let them in, while they keep moving.
                    peer_done = True
                    last = (transfer.progress_done, time.monotonic())
                    continue
                moved = transfer.progress_done
                limit = min(stall, ENDED_DRAIN) if peer_done else stall
                if moved != last[0]:
                    last = (moved, time.monotonic())
                elif time.monotonic() - last[1] > limit:
                    if peer_done:
                        raise Ended(self.ended.result())
                    raise errors.StreamClosed(f"no data moved for {stall:.0f} s")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def fail(self, transfer: TransferHandle, exc: errors.JingleFSError,
              condition: Reason) -> None:
        transfer.fail(exc)
        if not self.session.is_over:
            self.terminate(condition, str(exc)[:200])

    async def close_negotiators(self) -> None:
        for cq in self.contents.values():
            if cq.negotiator is not None:
                await cq.negotiator.aclose()
                cq.negotiator = None

    async def settle(self) -> None:
        """Until every IQ sent so far is answered or failed (e.g. a session-terminate is
        acknowledged before the connection closes: jinglefs.endings)."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        await self.close_negotiators()


def reason_for_error(e: errors.JingleFSError) -> Reason:
    """The XEP-0166 §7.4 condition we end a session with when it fails with ``e``
    (the ``reason`` column of ``errors.ERROR_KINDS``)."""
    return Reason(errors.row_for(e).reason)


async def close_quietly(stream: object) -> None:
    with contextlib.suppress(Exception):
        await stream.aclose()  # type: ignore[attr-defined]


class ProgressReporter:
    """Turns the engine's byte counts into throttled Progress events with rate and ETA."""

    def __init__(self, transfer: TransferHandle, total: int, start: int = 0) -> None:
        self.transfer = transfer
        self.total = total
        self.meter = RateMeter()
        self._last_emit = 0.0
        self.done = start
        transfer.progress_done = start

    def update(self, done: int, total: int | None = None) -> None:
        """Called for every chunk: only the byte count the stall guard reads, and a clock
        check; the rate meter is fed once per emitted event (the rate over its window
        only needs the samples at both ends, so sparse samples give the same figure)."""
        self.done = done
        self.transfer.progress_done = done
        now = time.monotonic()
        if now - self._last_emit >= PROGRESS_INTERVAL:
            self._last_emit = now
            self._emit(now)

    def _emit(self, now: float) -> None:
        self.meter.add(now, self.done)
        self.transfer.emit(Progress(self.transfer.id, self.done, self.total,
                                    self.meter.rate, self.meter.eta(self.total)))

    def finish(self) -> None:
        self.done = self.total
        self._emit(time.monotonic())


