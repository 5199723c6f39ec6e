"""The interface every transport negotiator implements, and the context it gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .api import Settings
from .events import PathKind
from .jingle.model import Role
from .jingle.transport import TransportPayload
from .streams import ByteStream

if TYPE_CHECKING:
    from .xmpp.connection import XmppConnection


@dataclass(frozen=True)
class Connected:
    """What a negotiator hands back once the bytes can flow."""

    stream: ByteStream
    path: PathKind
    detail: str = ""


@dataclass
class NegotiationContext:
    """Everything a negotiator may use: who we are, who the peer is, how to signal."""

    role: Role  # our Jingle role in the session
    local_jid: str
    peer_jid: str
    settings: Settings
    connection: XmppConnection
    #: send a transport-info for this content (candidates, candidate-used, activated...)
    send_transport_info: Callable[[TransportPayload], None]
    #: a fresh random identifier (transport sids, candidate ids)
    new_id: Callable[[], str]
    #: shared per-client services, by name (e.g. "ibb" -> IbbService)
    services: dict[str, object]


class Negotiator(Protocol):
    @property
    def namespace(self) -> str:
        """The ``<transport xmlns=…>`` this negotiator speaks."""
        ...

    @property
    def kind(self) -> str:
        """"ice", "s5b" or "ibb"."""
        ...

    async def offer(self) -> TransportPayload:
        """Our proposal (in session-initiate or transport-replace)."""
        ...

    async def answer(self, remote: TransportPayload) -> TransportPayload:
        """Our reply to the peer's proposal (in session-accept or transport-accept)."""
        ...

    def remote_answer(self, remote: TransportPayload) -> None:
        """The peer's reply to our proposal."""
        ...

    def transport_info(self, payload: TransportPayload) -> None:
        """A transport-info from the peer for this content."""
        ...

    async def connect(self) -> Connected:
        """Connect; the caller bounds it in time.  Raises TransportError on failure."""
        ...

    async def aclose(self) -> None:
        """Release listeners, sockets and registrations, whatever happened."""
        ...


class NegotiatorFactory(Protocol):
    """A negotiator class: its class attributes describe it, calling it makes one."""

    @property
    def namespace(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def features(self) -> tuple[str, ...]:
        """Disco features that tell us a peer supports this transport."""
        ...

    def __call__(self, ctx: NegotiationContext) -> Negotiator: ...
