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
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors
from .events import (
    Accepted,
    Completed,
    FileInfo,
    Progress,
    TransportSelected,
    Verified,
)
from .handles import TransferHandle
from .jingle.codec import encode_jingle
from .jingle.model import (
    Checksum,
    Content,
    FileDesc,
    FileTransferDescription,
    Jingle,
    Range,
    Reason,
    ReasonInfo,
    Received,
    Role,
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
)
from .jingle.transport import TransportPayload, UnknownTransport
from .negotiation.base import Connected, NegotiationContext, Negotiator
from .transfer.hashing import DEFAULT_ALGO, normalize_algo
from .transfer.progress import RateMeter
from .transfer.receiver import IncomingFile
from .transfer.sender import send_file
from .xmpp.connection import JingleIqError

if TYPE_CHECKING:
    from .client import Client

logger = logging.getLogger(__name__)

#: How long a receiver waits for the sender's checksum after the last byte.  Conversations
#: sends it at once; Dino never does (protocol.md §4.4), so the wait must stay short.
CHECKSUM_WAIT = 5.0
#: How long the sender waits for the receiver's session-terminate after the checksum.
FINISH_WAIT = 60.0
PROGRESS_INTERVAL = 0.25
#: transport-info payloads kept per content that is not accepted yet.
MAX_EARLY_INFO = 32

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
    Reason.GONE: errors.TransferError,
    Reason.MEDIA_ERROR: errors.TransferError,
    Reason.FAILED_APPLICATION: errors.TransferError,
    Reason.UNSUPPORTED_APPLICATIONS: errors.NegotiationError,
    Reason.SECURITY_ERROR: errors.TransferError,
    Reason.GENERAL_ERROR: errors.TransferError,
}

_REASON_TEXT = {
    Reason.DECLINE: "the recipient declined",
    Reason.BUSY: "the recipient is busy",
    Reason.CANCEL: "the other side cancelled",
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
    if r.text:
        text += f" ({r.text})"
    if r.app_condition:
        text += f" [{r.app_condition}]"
    if cls is errors.Cancelled:
        return errors.Cancelled(text, by_peer=ended.by_peer)
    if issubclass(cls, errors.NegotiationError):
        return cls(text, reason=r.condition.value)
    return cls(text)


class _Ended(Exception):
    def __init__(self, ended: SessionEnded) -> None:
        super().__init__(ended.reason.condition.value)
        self.ended = ended


@dataclass
class _ContentQueue:
    queue: asyncio.Queue[SessionEvent]
    negotiator: Negotiator | None = None
    checksum: Checksum | None = None


class SessionDriver:
    """Runs one session; created by the Client for every session, ours or the peer's."""

    def __init__(self, client: Client, session: JingleSession) -> None:
        self.client = client
        self.session = session
        self.log = logging.LoggerAdapter(logger, {"sid": session.sid})
        self._contents: dict[str, _ContentQueue] = {}
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
        timeouts = self.client.settings.timeouts
        try:
            await self.client.connection.send_iq(self.session.peer_jid, encode_jingle(jingle),
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
            for cq in self._contents.values():
                cq.queue.put_nowait(event)
            self.client.session_ended(self)
            return
        if isinstance(event, TransportInfoReceived):
            target = self._contents.get(event.content)
            if target is None:
                # XEP-0176 trickle: the initiator may send candidates before we accept
                # (Conversations does, protocol.md §5.4); receiver_content() hands them on.
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
                # XEP-0234 §7.1 names the content; Conversations may send no creator, and
                # a checksum we cannot place is only safe to use in a one-file session.
                target = self._contents.get(info.name or "")
                if target is None and len(self._contents) == 1:
                    [target] = self._contents.values()
                if target is not None:
                    target.checksum = info
                    target.queue.put_nowait(event)
            return  # <received/> is informational (we wait for session-terminate)
        if isinstance(event, TransportReplaceReceived | TransportAccepted | TransportRejected):
            queued = self._contents.get(event.content)
            if queued is not None:
                queued.queue.put_nowait(event)
            return
        if isinstance(event, ContentAddReceived):
            # A file added to a running session (XEP-0166 §7.2.2) was never shown to the
            # user, so it is declined; the sender may offer it in a session of its own.
            self.session.reject_contents([c.name for c in event.contents], time.monotonic(),
                                         ReasonInfo(Reason.DECLINE))
            self.pump()
            return
        if isinstance(event, ContentRemoved):
            # XEP-0166 §7.2.6: the peer stopped one file of several; end that flow only.
            ended = SessionEnded(event.reason or ReasonInfo(Reason.CANCEL), by_peer=True)
            for name in event.names:
                removed = self._contents.get(name)
                if removed is not None:
                    removed.queue.put_nowait(ended)
                    if removed.negotiator is not None:
                        self._spawn(removed.negotiator.aclose())
            return
        if isinstance(event, IqFailed):
            self.log.info("peer refused our %s: %s", event.action.value, event.condition)
            return
        if isinstance(event, SessionAccepted):
            for cq in self._contents.values():
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
            if self.session.state.value != "ended":
                self.session.send_transport_info(content, payload, time.monotonic())
                self.pump()

        return NegotiationContext(role=s.role, local_jid=s.local_jid, peer_jid=s.peer_jid,
                                  settings=self.client.settings,
                                  connection=self.client.connection,
                                  send_transport_info=send_info, new_id=self.client.new_id,
                                  services=self.client.services)

    async def _next(self, content: str, kinds: tuple[type[E], ...], timeout: float) -> E:
        """The next event of the given kinds for a content; raises _Ended or TimeoutError."""
        queue = self._contents[content].queue
        async with asyncio.timeout(timeout):
            while True:
                event = await queue.get()
                if isinstance(event, SessionEnded):
                    raise _Ended(event)
                if isinstance(event, kinds):
                    return event

    # ----------------------------------------------------------- sender (push)

    async def run_sender(self, path: Path, file: FileDesc, transfer: TransferHandle,
                         kinds: Sequence[str]) -> None:
        content_name = "0"  # Conversations' own name for the single content (§5.4)
        self._contents[content_name] = _ContentQueue(asyncio.Queue())
        stream: Connected | None = None
        try:
            neg = self._negotiator(kinds[0], content_name)
            payload = await neg.offer()
            self.session.initiate([Content(Role.INITIATOR, content_name, senders=Role.INITIATOR,
                                           description=FileTransferDescription(file),
                                           transport=payload)], time.monotonic())
            self.pump()
            accepted = await self._next(content_name, (SessionAccepted,),
                                        self.client.settings.timeouts.accept + 5)
            [content] = [c for c in accepted.contents if c.name == content_name]
            offset = 0
            if isinstance(content.description, FileTransferDescription) and \
                    content.description.file.range is not None:
                offset = min(content.description.file.range.offset, file.size or 0)
            transfer.emit(Accepted(transfer.id, offset=offset))
            if isinstance(content.transport, UnknownTransport) or \
                    getattr(content.transport, "namespace", None) != neg.namespace:
                raise errors.RemoteProtocolError("the peer accepted with another transport")
            neg.remote_answer(content.transport)  # type: ignore[arg-type]
            stream = await self._connect_as_initiator(content_name, neg, list(kinds[1:]),
                                                      transfer)
            meter = _ProgressReporter(transfer, file.size or 0)
            digests = await self._with_stall_guard(send_file(
                stream.stream, path, offset=offset, algos=(DEFAULT_ALGO,),
                on_progress=meter.update), transfer)
            meter.finish()
            await _close_quietly(stream.stream)
            # XEP-0234 §7.1: the checksum after the last byte.
            self.session.send_info(Checksum(Role.INITIATOR, content_name, FileDesc(
                hashes=tuple(digests.items()))), time.monotonic())
            self.pump()
            ended = await asyncio.wait_for(asyncio.shield(self.ended), FINISH_WAIT)
            if ended.reason.condition is not Reason.SUCCESS:
                raise error_for_end(ended)
            # The receiver said success; whether it checked our checksum only it knows
            # (Dino never does), so the sender does not claim "verified".
            transfer.emit(Completed(transfer.id, path=str(path), size=file.size or 0,
                                    hashes=digests, verified=False))
        except _Ended as e:
            transfer.fail(error_for_end(e.ended))
        except TimeoutError:
            self._fail(transfer, errors.NegotiationTimeout(
                "the recipient did not finish the transfer in time"), Reason.TIMEOUT)
        except errors.JingleFSError as e:
            self._fail(transfer, e, _reason_for_error(e))
        except asyncio.CancelledError:
            self._fail(transfer, errors.Cancelled("cancelled here"), Reason.CANCEL)
            raise
        except Exception as e:
            self.log.exception("sender flow crashed")
            self._fail(transfer, errors.TransferError(f"internal error: {e!r}"),
                       Reason.GENERAL_ERROR)
        finally:
            if stream is not None:
                await _close_quietly(stream.stream)
            await self._close_negotiators()

    async def _connect_as_initiator(self, content: str, neg: Negotiator, rest: list[str],
                                    transfer: TransferHandle) -> Connected:
        """Try each rung; on failure replace the transport with the next (XEP-0166 §7.2.17)."""
        failures: list[str] = []
        timeout = self.client.settings.timeouts.transport
        while True:
            try:
                connected = await self._until_ended(neg.connect(), timeout)
            except (errors.TransportError, TimeoutError, OSError) as e:
                why = str(e) or f"no connection within {timeout:.0f} s"
                failures.append(f"{_KIND_NAMES[neg.kind]}: {why}")
                self.log.info("%s failed: %s", neg.kind, why)
                await neg.aclose()
            else:
                transfer.emit(TransportSelected(transfer.id, connected.path, connected.detail,
                                                connected.path.encrypted))
                return connected
            while rest:
                kind = rest.pop(0)
                neg = self._negotiator(kind, content)
                payload = await neg.offer()
                self.session.replace_transport(content, payload, time.monotonic())
                self.pump()
                answer = await self._next(content, (TransportAccepted, TransportRejected),
                                          timeout + 5)
                if isinstance(answer, TransportAccepted):
                    neg.remote_answer(answer.transport)
                    break
                assert isinstance(answer, TransportRejected)
                failures.append(f"{_KIND_NAMES[kind]}: refused by the contact "
                                f"({answer.detail})")
                await neg.aclose()
            else:
                raise errors.CandidatesFailed("no transport worked: " + "; ".join(failures))

    async def _until_ended(self, work: Coroutine[object, object, T], timeout: float) -> T:
        """``work`` within ``timeout`` (else TimeoutError); _Ended as soon as the peer ends
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
            raise _Ended(self.ended.result())
        raise TimeoutError

    # --------------------------------------------------------------- receiver

    def receiver_content(self, content: str, negotiator: Negotiator) -> None:
        self._contents[content] = _ContentQueue(asyncio.Queue(), negotiator)
        for payload in self._early_info.pop(content, []):
            try:
                negotiator.transport_info(payload)  # before answer(): the negotiator keeps it
            except errors.JingleFSError as e:
                self.log.info("bad transport-info: %s", e)

    async def run_receiver(self, content: Content, incoming: IncomingFile,
                           transfer: TransferHandle) -> None:
        name = content.name
        connected: Connected | None = None
        #: a partial is kept for resume unless its bytes are known to be bad
        keep_partial = True
        try:
            connected = await self._connect_as_responder(name, transfer)
            meter = _ProgressReporter(transfer, incoming.size, start=incoming.offset)
            await self._with_stall_guard(incoming.receive(connected.stream,
                                                          on_progress=meter.update), transfer)
            meter.finish()
            keep_partial = False  # from here on a failure means the bytes are wrong
            await self._refuse_surplus(connected)
            expected = await self._expected_hashes(name, content)
            final = await asyncio.to_thread(incoming.finish, expected)
            verification = incoming.verification
            if incoming.verified and verification is not None and \
                    verification.algo is not None:
                transfer.emit(Verified(transfer.id, algo=verification.algo,
                                       digest=incoming.digests.get(verification.algo, b"")))
            self.session.send_info(Received(content.creator, name), time.monotonic())
            self.pump()
            self._content_done(name)
            transfer.emit(Completed(transfer.id, path=str(final), size=incoming.size,
                                    hashes=dict(incoming.digests), verified=incoming.verified))
        except _Ended as e:
            incoming.abort(keep_partial=keep_partial)
            transfer.fail(error_for_end(e.ended))
        except errors.JingleFSError as e:
            incoming.abort(keep_partial=keep_partial)
            self._fail(transfer, e, _reason_for_error(e))
        except TimeoutError:
            incoming.abort(keep_partial=keep_partial)
            self._fail(transfer, errors.NegotiationTimeout("the sender stopped answering"),
                       Reason.TIMEOUT)
        except asyncio.CancelledError:
            incoming.abort(keep_partial=keep_partial)
            self._fail(transfer, errors.Cancelled("cancelled here"), Reason.CANCEL)
            raise
        except Exception as e:
            self.log.exception("receiver flow crashed")
            incoming.abort(keep_partial=keep_partial)
            self._fail(transfer, errors.TransferError(f"internal error: {e!r}"),
                       Reason.GENERAL_ERROR)
        finally:
            if connected is not None:
                await _close_quietly(connected.stream)
            cq = self._contents.get(name)
            if cq is not None and cq.negotiator is not None:
                await cq.negotiator.aclose()

    async def _connect_as_responder(self, name: str, transfer: TransferHandle) -> Connected:
        cq = self._contents[name]
        timeout = self.client.settings.timeouts.transport
        failures: list[str] = []
        while True:
            neg = cq.negotiator
            assert neg is not None
            connect = asyncio.ensure_future(neg.connect())
            replace_wait = asyncio.ensure_future(
                self._next(name, (TransportReplaceReceived,), timeout * 4))
            try:
                done, _ = await asyncio.wait({connect, replace_wait},
                                             return_when=asyncio.FIRST_COMPLETED)
                if connect in done and connect.exception() is None:
                    replace_wait.cancel()
                    connected = connect.result()
                    transfer.emit(TransportSelected(transfer.id, connected.path,
                                                    connected.detail, connected.path.encrypted))
                    return connected
                if connect in done:
                    if isinstance(connect.exception(), errors.ProtocolError):
                        # The peer broke the transport's rules (e.g. XEP-0260 §2.4
                        # candidate-used for a cid never offered): end the session.
                        connect.result()
                    failures.append(f"{_KIND_NAMES[neg.kind]}: {connect.exception()}")
                    # Our side failed; the initiator decides what is next (XEP-0260 §2.4).
                    replacement = await replace_wait
                else:
                    connect.cancel()
                    with contextlib.suppress(BaseException):
                        await connect
                    replacement = replace_wait.result()
            except BaseException:
                connect.cancel()
                replace_wait.cancel()
                raise
            await neg.aclose()
            factory = self.client.negotiators.get(
                getattr(replacement.transport, "namespace", ""))
            if factory is None:
                self.session.reject_transport(name, replacement.transport, time.monotonic())
                self.pump()
                continue  # keep waiting: the initiator may offer another one
            cq.negotiator = factory(self.context(name))
            answer = await cq.negotiator.answer(replacement.transport)
            self.session.accept_transport(name, answer, time.monotonic())
            self.pump()
            del failures[:]

    async def _refuse_surplus(self, connected: Connected) -> None:
        """A sender that keeps sending after ``size`` bytes is lying about the size."""
        try:
            extra = await asyncio.wait_for(connected.stream.receive(1), 0.3)
        except (TimeoutError, errors.TransportError):
            return
        if extra:
            raise errors.SizeMismatch("the sender sent more bytes than it offered")

    async def _expected_hashes(self, name: str, content: Content) -> dict[str, bytes]:
        hashes: dict[str, bytes] = {}
        if isinstance(content.description, FileTransferDescription):
            hashes.update(content.description.file.hashes)
        cq = self._contents[name]
        if cq.checksum is None and not hashes:
            with contextlib.suppress(TimeoutError):
                await self._next(name, (InfoReceived,), CHECKSUM_WAIT)
        if cq.checksum is not None:
            hashes.update(cq.checksum.file.hashes)
        return {algo: v for a, v in hashes.items() if (algo := normalize_algo(a))}

    def _content_done(self, name: str) -> None:
        self._contents[name].negotiator = None
        if all(cq.negotiator is None for cq in self._contents.values()):
            # XEP-0234 §6: the receiver ends the session once it has everything.
            self.terminate(Reason.SUCCESS)

    # ----------------------------------------------------------------- helpers

    def _negotiator(self, kind: str, content: str) -> Negotiator:
        factory = self.client.factories[kind]
        neg = factory(self.context(content))
        self._contents[content].negotiator = neg
        return neg

    async def _with_stall_guard(self, work: Awaitable[T], transfer: TransferHandle) -> T:
        """Run the byte pump; fail if no byte moves for ``timeouts.stall`` seconds or the
        session ends under it."""
        task = asyncio.ensure_future(work)
        stall = self.client.settings.timeouts.stall
        last = (-1, time.monotonic())
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {task, self.ended}
                done, _ = await asyncio.wait(waiting, timeout=1.0,
                                             return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    return task.result()
                if self.ended in done:
                    raise _Ended(self.ended.result())
                moved = transfer.progress_done
                if moved != last[0]:
                    last = (moved, time.monotonic())
                elif time.monotonic() - last[1] > stall:
                    raise errors.StreamClosed(f"no data moved for {stall:.0f} s")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _fail(self, transfer: TransferHandle, exc: errors.JingleFSError,
              condition: Reason) -> None:
        transfer.fail(exc)
        if self.session.state.value != "ended":
            self.terminate(condition, str(exc)[:200])

    async def _close_negotiators(self) -> None:
        for cq in self._contents.values():
            if cq.negotiator is not None:
                await cq.negotiator.aclose()
                cq.negotiator = None

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        await self._close_negotiators()


_KIND_NAMES = {"ice": "ICE", "s5b": "SOCKS5", "ibb": "in-band"}


def _reason_for_error(e: errors.JingleFSError) -> Reason:
    if isinstance(e, errors.Cancelled):
        return Reason.CANCEL
    if isinstance(e, errors.TransportError):
        return Reason.FAILED_TRANSPORT
    if isinstance(e, errors.SizeMismatch | errors.ChecksumMismatch | errors.StorageError):
        return Reason.MEDIA_ERROR
    if isinstance(e, errors.NegotiationTimeout):
        return Reason.TIMEOUT
    if isinstance(e, errors.RemoteProtocolError):
        return Reason.FAILED_APPLICATION
    return Reason.GENERAL_ERROR


async def _close_quietly(stream: object) -> None:
    with contextlib.suppress(Exception):
        await stream.aclose()  # type: ignore[attr-defined]


class _ProgressReporter:
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


def file_info(desc: FileDesc) -> FileInfo:
    hashes = {a: v for name, v in desc.hashes if (a := normalize_algo(name))}
    return FileInfo(name=desc.name or "file", size=desc.size or 0,
                    media_type=desc.media_type or "application/octet-stream",
                    date=desc.date, desc=desc.desc, hashes=hashes)


def accepted_content(content: Content, transport: TransportPayload, offset: int) -> Content:
    """The content as echoed in session-accept, with our transport and a resume range."""
    desc = content.description
    if isinstance(desc, FileTransferDescription) and offset:
        desc = FileTransferDescription(replace(desc.file, range=Range(offset=offset)))
    return replace(content, description=desc, transport=transport)
