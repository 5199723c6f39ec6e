"""In-Band Bytestreams (XEP-0047) as :class:`jinglefs.streams.ByteStream`, over an abstract port.

The Jingle session owns the lifecycle (XEP-0261 §2): it negotiates ``sid`` and
``block-size``, then either expects the peer's ``<open/>`` or sends one.  This module
has no XMPP dependency: stanzas go out through an :class:`IbbPort` (one per stream)
and come in through an :class:`IbbRouter`, which the XMPP glue
(:mod:`jinglefs.xmpp.ibb`) or a test's fake port feeds.

Sending keeps up to ``window`` data IQs outstanding: XEP-0047 §2.2 lets the sender
go on without waiting for each result but says it SHOULD throttle on them.  Receiving
acks each accepted chunk immediately while the application keeps up; once more than
``recv_buffer`` bytes wait to be read, it holds the acks back, which stalls a
throttling sender, so memory stays bounded for any file size.  A sender that ignores
that (or message mode, which has no acks) is cut off at ``recv_limit`` bytes.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable
from typing import Protocol

from ..errors import RemoteProtocolError, StreamClosed
from .protocol import MAX_BLOCK_SIZE, ReceiveState, SendSeq, check_open_block_size

__all__ = [
    "AckCallback",
    "IbbError",
    "IbbPort",
    "IbbProtocolViolation",
    "IbbReply",
    "IbbRouter",
    "IbbStream",
    "StreamState",
]

log = logging.getLogger(__name__)

#: Called once when the peer answers one of our IQs: ``None`` for a result, else the error.
AckCallback = Callable[[BaseException | None], None]


class IbbError(StreamClosed):
    """The contact's client refused or broke off the In-Band Bytestream."""

    def __init__(self, msg: str = "", *, condition: str | None = None,
                 error_type: str = "cancel") -> None:
        super().__init__(msg)
        #: The RFC 6120 condition the peer answered with (None for timeouts, lost links).
        self.condition = condition
        #: RFC 6120 error type; ``wait`` means "retry later" (XEP-0047 §2.2: renegotiate).
        self.error_type = error_type


class IbbProtocolViolation(RemoteProtocolError, StreamClosed):
    """The contact's client broke the In-Band Bytestream protocol, so the stream was closed."""


class IbbPort(Protocol):
    """Outgoing stanzas of one bytestream (``sid``, ``peer`` are bound by the implementation).

    Each ``send_*`` writes one IQ (XEP-0047 §2) and calls ``on_done`` exactly once when
    the result or error arrives; it may raise :class:`StreamClosed` if nothing can be sent.
    """

    def send_open(self, block_size: int, on_done: AckCallback) -> None: ...

    def send_data(self, seq: int, block: memoryview, on_done: AckCallback) -> None: ...

    def send_close(self, on_done: AckCallback) -> None: ...

    def release(self) -> None:
        """The stream is finished: forget pending callbacks (late answers are dropped)."""
        ...


class IbbReply(Protocol):
    """The answer to one incoming IQ (one of the peer's ``<open/>``, ``<data/>``, ``<close/>``)."""

    def ack(self) -> None:
        """Send the empty ``type='result'``."""
        ...

    def reject(self, condition: str, error_type: str = "cancel", text: str = "") -> None:
        """Send ``type='error'`` with an RFC 6120 stanza error condition."""
        ...


class StreamState(enum.Enum):
    EXPECTING = "expecting"  # waiting for the peer's <open/>
    OPENING = "opening"  # our <open/> is out, no result yet
    OPEN = "open"
    CLOSED = "closed"  # closed by either side without error
    FAILED = "failed"


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class IbbStream:
    """One XEP-0047 bytestream, both directions (implements :class:`~jinglefs.streams.ByteStream`).

    Created by :class:`IbbRouter` users (the XMPP :class:`~jinglefs.xmpp.ibb.IbbService`
    or a test).  ``first_send_seq``, ``wrap_seq`` and ``first_recv_count`` exist for tests
    (wrap-around, non-wrapping peers).
    """

    def __init__(self, port: IbbPort, *, peer: str, sid: str, block_size: int,
                 window: int = 8, recv_buffer: int = 256 * 1024, recv_limit: int | None = None,
                 ack_timeout: float = 30.0, close_timeout: float = 5.0,
                 state: StreamState = StreamState.EXPECTING,
                 first_send_seq: int = 0, wrap_seq: bool = True, first_recv_count: int = 0,
                 on_release: Callable[[IbbStream], None] | None = None) -> None:
        if not 1 <= block_size <= MAX_BLOCK_SIZE:
            raise ValueError(f"block_size {block_size} outside 1..{MAX_BLOCK_SIZE}")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.peer = peer
        self.sid = sid
        #: The negotiated size (XEP-0261); an <open/> may lower it (XEP-0047 §2.1).
        self.block_size = block_size
        self.window = window
        #: ``iq`` or ``message`` (the ``stanza`` attribute of the peer's <open/>).
        self.stanza = "iq"
        self.bytes_sent = 0
        self.bytes_received = 0
        self._port = port
        self._state = state
        self._error: BaseException | None = None
        self._on_release = on_release
        self._released = False
        self._ack_timeout = ack_timeout
        self._close_timeout = close_timeout
        self._loop = asyncio.get_running_loop()
        # sending
        self._seq = SendSeq(first_send_seq, wrap=wrap_seq)
        self._inflight = 0
        self._sent_at: collections.deque[float] = collections.deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._slot_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        # receiving
        self._recv = ReceiveState(block_size, first_count=first_recv_count)
        self._rbuf = bytearray()
        self._held: collections.deque[IbbReply] = collections.deque()
        self._recv_buffer = recv_buffer
        self._recv_limit = (recv_limit if recv_limit is not None
                            else recv_buffer + max(recv_buffer, 64 * block_size))
        self._eof = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._open_waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ introspection

    @property
    def is_open(self) -> bool:
        """Whether bytes may flow (read through a method: awaits in between may change it)."""
        return self._state is StreamState.OPEN

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def port(self) -> IbbPort:
        return self._port

    @property
    def error(self) -> BaseException | None:
        """Why the stream failed, if it did."""
        return self._error

    @property
    def buffered(self) -> int:
        """Received bytes not yet read by :meth:`receive`."""
        return len(self._rbuf)

    @property
    def inflight(self) -> int:
        """Data IQs sent and not yet answered."""
        return self._inflight

    def __repr__(self) -> str:
        return f"<IbbStream sid={self.sid!r} peer={self.peer!r} {self._state.value}>"

    # ------------------------------------------------------------------ opening

    async def wait_open(self, timeout: float) -> None:
        """Wait until the peer's ``<open/>`` arrived (streams created with ``expect``)."""
        if self._state is StreamState.EXPECTING or self._state is StreamState.OPENING:
            if self._open_waiter is None or self._open_waiter.done():
                self._open_waiter = self._loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._open_waiter), timeout)
            except TimeoutError:
                raise IbbError(f"the contact did not open In-Band Bytestream {self.sid!r} "
                               f"within {timeout:g} s") from None
        self._raise_if_failed()
        if self._state is not StreamState.OPEN:
            raise StreamClosed(f"In-Band Bytestream {self.sid!r} is {self._state.value}")

    async def open(self, timeout: float) -> None:
        """Send our ``<open/>`` and wait for its result (XEP-0047 §2.1)."""
        if self._state is not StreamState.OPENING:
            raise StreamClosed(f"In-Band Bytestream {self.sid!r} is {self._state.value}")
        done: asyncio.Future[BaseException | None] = self._loop.create_future()

        def on_done(err: BaseException | None) -> None:
            # Runs as the result is parsed: the peer may send data right behind its result,
            # possibly in the same read, so the stream must be OPEN before this returns.
            if err is None and self._state is StreamState.OPENING:
                self._state = StreamState.OPEN
                _wake(self._open_waiter)
            if not done.done():
                done.set_result(err)

        try:
            self._port.send_open(self.block_size, on_done)
            err = await asyncio.wait_for(done, timeout)
        except TimeoutError:
            err = IbbError(f"no answer to In-Band Bytestream <open/> within {timeout:g} s")
        except StreamClosed as exc:
            err = exc
        except asyncio.CancelledError:
            self._fail(StreamClosed("opening was cancelled"))
            raise
        if err is not None:
            if not isinstance(err, StreamClosed):
                err = IbbError(f"<open/> failed: {err}")
            self._fail(err)
            raise err
        if not self.is_open:  # aclose()d or failed meanwhile
            self._raise_if_failed()
            raise StreamClosed(f"In-Band Bytestream {self.sid!r} is {self._state.value}")

    def handle_open(self, block_size: str | int | None, stanza: str | None,
                    reply: IbbReply) -> None:
        """The peer's ``<open/>`` for this stream (the router checked sid and sender)."""
        if self._state is not StreamState.EXPECTING:
            # A second <open/> for a live sid, or one after we gave up: decline.
            reply.reject("not-acceptable", "cancel", "bytestream already open or closed")
            return
        kind = stanza or "iq"
        if kind not in ("iq", "message"):
            reply.reject("bad-request", "modify", f"unknown stanza type {kind!r}")
            return
        try:
            # XEP-0261 §2.2: a different (bigger) block size than negotiated is refused.
            size = check_open_block_size(block_size, self.block_size)
        except RemoteProtocolError as exc:
            reply.reject(exc.condition, exc.error_type, str(exc))
            return
        self.block_size = size
        self._recv.block_size = size
        self.stanza = kind
        self._state = StreamState.OPEN
        reply.ack()
        _wake(self._open_waiter)

    # ------------------------------------------------------------------ sending

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as ``block_size`` chunks, at most ``window`` unanswered at a time."""
        self._check_sendable()
        size = self.block_size
        port = self._port
        # The views are released on return, so the caller may reuse a bytearray at once;
        # ports encode each chunk before send_data returns.
        with memoryview(data) as raw, raw.cast("B") as view:
            for offset in range(0, len(view), size):
                while self._inflight >= self.window:
                    waiter = self._slot_waiter = self._loop.create_future()
                    await waiter
                    self._check_sendable()
                self._check_sendable()
                with view[offset:offset + size] as chunk:
                    seq = self._seq.take()
                    self._inflight += 1
                    self._sent_at.append(self._loop.time())
                    if self._watchdog is None:
                        self._watchdog = self._loop.call_later(self._ack_timeout,
                                                               self._check_acks)
                    try:
                        port.send_data(seq, chunk, self._on_data_ack)
                    except StreamClosed as exc:
                        self._fail(exc)
                        raise
                    self.bytes_sent += len(chunk)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every data IQ sent so far is answered; raise if one was refused."""
        if (self._inflight and not self._released
                and self._state in (StreamState.OPEN, StreamState.CLOSED)):
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                raise IbbError(f"{self._inflight} In-Band Bytestream data IQs unanswered "
                               f"after {timeout:g} s") from None
        self._raise_if_failed()
        if self._inflight:  # released meanwhile (the contact's <close/>): no answers will come
            raise StreamClosed(f"In-Band Bytestream {self.sid!r} closed with {self._inflight} "
                               "data IQs unanswered")

    def _check_sendable(self) -> None:
        if self._state is StreamState.OPEN:
            return
        self._raise_if_failed()
        if self._state is StreamState.CLOSED and self._eof:
            raise StreamClosed(f"the contact closed In-Band Bytestream {self.sid!r}")
        if self._state is StreamState.CLOSED:
            raise StreamClosed(f"In-Band Bytestream {self.sid!r} was closed locally")
        raise StreamClosed(f"In-Band Bytestream {self.sid!r} is not open yet")

    def _on_data_ack(self, err: BaseException | None) -> None:
        if self._inflight:
            self._inflight -= 1
            if self._sent_at:
                self._sent_at.popleft()
        if err is not None and self._state in (StreamState.OPEN, StreamState.CLOSED):
            # XEP-0047 §2.2: after an error answer the sender MUST close the bytestream.
            if not isinstance(err, StreamClosed):
                err = IbbError(f"data refused: {err}")
            self._fail(err, send_close=True)
        _wake(self._slot_waiter)
        if self._inflight == 0:
            _wake(self._drain_waiter)

    def _check_acks(self) -> None:
        self._watchdog = None
        if not self._inflight or self._state is StreamState.FAILED:
            return
        oldest = self._sent_at[0] if self._sent_at else self._loop.time()
        deadline = oldest + self._ack_timeout
        if self._loop.time() >= deadline:
            self._fail(IbbError(f"the contact did not acknowledge In-Band Bytestream data "
                                f"for {self._ack_timeout:g} s"), send_close=True)
        else:
            self._watchdog = self._loop.call_at(deadline, self._check_acks)

    # ------------------------------------------------------------------ receiving

    def handle_data(self, seq: str | None, text: str | None, reply: IbbReply | None) -> None:
        """One ``<data/>`` from the peer (``reply`` is None in message mode)."""
        if self._state is not StreamState.OPEN:
            # XEP-0047 §2.2: data for a bytestream that is not open → item-not-found.
            if reply is not None:
                reply.reject("item-not-found", "cancel")
            return
        try:
            chunk = self._recv.accept(seq, text)
        except RemoteProtocolError as exc:
            # XEP-0047 §2.2: do not process the chunk, answer the error, close the stream.
            if reply is not None:
                reply.reject(exc.condition, exc.error_type, str(exc))
            self._fail(IbbProtocolViolation(str(exc), condition=exc.condition,
                                            error_type=exc.error_type), send_close=True)
            return
        self.bytes_received += len(chunk)
        self._rbuf += chunk
        buffered = len(self._rbuf)
        if buffered > self._recv_limit:
            if reply is not None:
                reply.reject("resource-constraint", "wait", "receive buffer full")
            self._fail(IbbError(f"the contact sent {buffered} bytes ahead of the reader, "
                                f"beyond the limit of {self._recv_limit}",
                                condition="resource-constraint"), send_close=True)
            return
        if reply is not None:
            if buffered <= self._recv_buffer and not self._held:
                reply.ack()
            else:
                self._held.append(reply)  # flow control: answered when the reader catches up
        _wake(self._read_waiter)

    def handle_close(self, reply: IbbReply) -> None:
        """The peer's ``<close/>`` (XEP-0047 §2.3): end of stream in both directions."""
        reply.ack()
        if self._state is StreamState.FAILED:
            return
        if self._state is StreamState.CLOSED:  # we are closing too: no <close/> back
            self._eof = True
            return
        self._flush_held()
        self._eof = True
        self._state = StreamState.CLOSED
        self._release()
        self._wake_all()

    async def receive(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` received bytes; ``b""`` after the peer's ``<close/>``."""
        while not self._rbuf:
            if self._eof:
                return b""
            self._raise_if_failed()
            if self._state is StreamState.CLOSED:
                raise StreamClosed(f"In-Band Bytestream {self.sid!r} was closed locally")
            waiter = self._read_waiter = self._loop.create_future()
            await waiter
        n = min(max_bytes, len(self._rbuf))
        data = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        if self._held:
            while self._held and len(self._rbuf) <= self._recv_buffer:
                self._held.popleft().ack()
        return data

    def _flush_held(self) -> None:
        while self._held:
            self._held.popleft().ack()

    # ------------------------------------------------------------------ closing

    async def aclose(self) -> None:
        """Close politely: let sent data be acknowledged, send ``<close/>``, release the sid."""
        if self._state is StreamState.OPEN:
            self._state = StreamState.CLOSED
            try:
                await self.drain(self._close_timeout)
            except StreamClosed as exc:
                log.debug("IBB %s: closing after %s", self.sid, exc)
            if self._state is StreamState.CLOSED and not self._eof:
                # XEP-0047 §2.3; errors are ignored, the stream is over anyway.
                done: asyncio.Future[None] = self._loop.create_future()
                try:
                    self._port.send_close(lambda err: _wake(done))
                    await asyncio.wait_for(done, self._close_timeout)
                except (TimeoutError, StreamClosed):
                    pass
        elif self._state in (StreamState.EXPECTING, StreamState.OPENING):
            self._state = StreamState.CLOSED
        self._reject_held()
        self._release()
        self._wake_all()

    def abort(self, reason: BaseException) -> None:
        """Fail the stream now (no ``<close/>``), e.g. because the XMPP connection is gone."""
        self._fail(reason)

    def _fail(self, exc: BaseException, *, send_close: bool = False) -> None:
        if self._state is StreamState.FAILED:
            return
        was_open = self._state is StreamState.OPEN
        self._state = StreamState.FAILED
        self._error = exc
        log.debug("IBB %s failed: %s", self.sid, exc)
        if send_close and was_open:
            try:
                self._port.send_close(lambda err: None)
            except StreamClosed:
                pass
        self._reject_held()
        self._release()
        self._wake_all()

    def _reject_held(self) -> None:
        while self._held:
            self._held.popleft().reject("item-not-found", "cancel")

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _release(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._released:
            return
        self._released = True
        self._port.release()
        if self._on_release is not None:
            self._on_release(self)

    def _wake_all(self) -> None:
        for waiter in (self._slot_waiter, self._drain_waiter, self._read_waiter,
                       self._open_waiter):
            _wake(waiter)


class IbbRouter:
    """Routes the peer's IBB stanzas to streams by (peer, sid) (XEP-0047 §2.1–§2.3 error rules).

    ``normalize`` maps a JID string to its canonical form (the XMPP glue passes a JID
    normaliser); keys and incoming ``from`` addresses go through it.
    """

    def __init__(self, normalize: Callable[[str], str] | None = None) -> None:
        self._normalize = normalize or (lambda jid: jid)
        self._streams: dict[tuple[str, str], IbbStream] = {}

    def key(self, peer: str, sid: str) -> tuple[str, str]:
        return (self._normalize(peer), sid)

    def add(self, stream: IbbStream) -> None:
        key = self.key(stream.peer, stream.sid)
        if key in self._streams:
            raise ValueError(f"In-Band Bytestream {stream.sid!r} with {stream.peer} exists")
        self._streams[key] = stream

    def remove(self, stream: IbbStream) -> None:
        key = self.key(stream.peer, stream.sid)
        if self._streams.get(key) is stream:
            del self._streams[key]

    def get(self, sender: str, sid: str | None) -> IbbStream | None:
        if sid is None:
            return None
        stream = self._streams.get((sender, sid))
        if stream is None:
            stream = self._streams.get((self._normalize(sender), sid))
        return stream

    def __len__(self) -> int:
        return len(self._streams)

    def streams(self) -> list[IbbStream]:
        return list(self._streams.values())

    def dispatch_open(self, sender: str, sid: str | None, block_size: str | None,
                      stanza: str | None, reply: IbbReply) -> None:
        stream = self.get(sender, sid)
        if stream is None:
            # Nobody negotiated this sid with this JID in Jingle: decline (XEP-0047 §2.1).
            reply.reject("not-acceptable", "cancel")
            return
        stream.handle_open(block_size, stanza, reply)

    def dispatch_data(self, sender: str, sid: str | None, seq: str | None, text: str | None,
                      reply: IbbReply | None) -> None:
        stream = self.get(sender, sid)
        if stream is None:
            # Unknown sid, or a third party on a known sid: item-not-found (XEP-0047 §2.2);
            # the stream itself never sees the bytes.
            if reply is not None:
                reply.reject("item-not-found", "cancel")
            return
        stream.handle_data(seq, text, reply)

    def dispatch_close(self, sender: str, sid: str | None, reply: IbbReply) -> None:
        stream = self.get(sender, sid)
        if stream is None:
            reply.reject("item-not-found", "cancel")
            return
        stream.handle_close(reply)

    def abort_all(self, reason: BaseException) -> None:
        for stream in list(self._streams.values()):
            stream.abort(reason)
        self._streams.clear()
