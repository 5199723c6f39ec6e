"""In-Band Bytestreams as a Jingle transport (XEP-0261), the last rung of the ladder."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, cast

from ..errors import TransportError
from ..events import PathKind
from ..jingle import ns
from ..jingle.model import Role
from ..jingle.transport import TransportPayload
from ..negotiator import Connected, NegotiationContext
from .protocol import IbbTransport

if TYPE_CHECKING:
    from .service import IbbService, IbbStream


class IbbNegotiator:
    namespace = ns.IBB_TRANSPORT
    kind = "ibb"
    features = (ns.IBB_TRANSPORT,)

    def __init__(self, ctx: NegotiationContext) -> None:
        self.ctx = ctx
        self.params: IbbTransport | None = None
        self._expected: IbbStream | None = None
        self._stream: IbbStream | None = None
        #: we answered the contact's IBB transport (its offer or transport-replace)
        self._answered = False

    @property
    def _service(self) -> IbbService:
        return cast("IbbService", self.ctx.services["ibb"])

    @property
    def _opener(self) -> bool:
        # XEP-0261 §2.2: the initiator opens the bytestream; Conversations and Dino open
        # from the Jingle initiator whatever the file's direction (docs/protocol.md §8.1).
        # When the responder proposed IBB itself (Dino's transport-replace as responder),
        # Dino opens from the side that proposed it (docs/interop.md §4.4): then we wait.
        return self.ctx.role is Role.INITIATOR and not self._answered

    def _expect(self) -> None:
        # Registered before our offer/answer leaves, so an early <open/> is accepted.
        if not self._opener and self.params is not None:
            self._expected = self._service.expect(self.ctx.peer_jid, self.params.sid,
                                                  self.params.block_size)

    async def offer(self) -> TransportPayload:
        self.params = IbbTransport(sid=self.ctx.new_id(),
                                   block_size=self.ctx.settings.ibb_block_size)
        self._expect()
        return self.params

    async def answer(self, remote: TransportPayload) -> TransportPayload:
        assert isinstance(remote, IbbTransport)
        self._answered = True
        # XEP-0261 §2.2: we may lower the block size, never raise it; the sid is echoed
        # (Conversations#3514).
        self.params = IbbTransport(sid=remote.sid,
                                   block_size=min(remote.block_size,
                                                  IbbTransport.MAX_BLOCK_SIZE))
        self._expect()
        return self.params

    def remote_answer(self, remote: TransportPayload) -> None:
        assert self.params is not None
        if isinstance(remote, IbbTransport) and remote.block_size < self.params.block_size:
            # The peer lowered the block size (XEP-0261 §2.2).  An expected stream
            # accepts an <open/> with a smaller block size, so nothing else changes.
            self.params = replace(self.params, block_size=remote.block_size)

    def transport_info(self, payload: TransportPayload) -> None:
        # XEP-0261 §2.4 allows a new IBB sid via transport-info; no client uses it.
        return

    async def connect(self) -> Connected:
        assert self.params is not None
        timeout = self.ctx.settings.timeouts.transport
        if self._opener:
            self._stream = await self._service.open(self.ctx.peer_jid, self.params.sid,
                                                    self.params.block_size)
        else:
            assert self._expected is not None
            await self._expected.wait_open(timeout)
            self._stream = self._expected
        if self._stream is None:
            raise TransportError("in-band bytestream did not open")
        return Connected(self._stream, PathKind.IBB,
                         f"in-band, {self.params.block_size}-byte blocks")

    async def aclose(self) -> None:
        stream = self._stream or self._expected
        if stream is not None:
            await stream.aclose()
