"""The two implementations of the ICE data channel, and which one a session gets.

One Jingle transport (Conversations' webrtc-datachannel:1, docs/protocol.md §6.4), two
stacks behind the same :class:`IceBackend` interface:

* ``libdatachannel`` (:mod:`.native`, through ``aiolibdatachannel``): libjuice for ICE,
  OpenSSL for DTLS, usrsctp for SCTP, all native.  benchmarks/ice.py measured it at ≥ 3× the
  throughput of aiortc for a fraction of its CPU per GB.  Wheels exist for Linux x86_64 and
  aarch64, CPython ≥ 3.12 only.
* ``aiortc`` (:mod:`.channel`): aioice + aiortc, pure Python DTLS and SCTP; everywhere.

:func:`choose_implementation` is THE rule (``Settings.ice_backend="auto"``): native whenever
it is installed and the path does not need what libjuice cannot do:

1. **TURN over TCP or TLS.**  libjuice relays over UDP only (libdatachannel logs "TURN
   transports TCP and TLS are not supported with libjuice" and drops such a server).  So a
   TURN server announced over TCP/TLS only means aiortc, and when it is announced over UDP
   *and* TCP (Prosody's mod_turn_external does), native is taken only if a STUN binding
   over UDP reaches it (:mod:`.probe`): on a network that blocks UDP the relay must be
   TURN/TCP, which only aiortc has (natlab "udp-blocked").
2. **Relay-only ICE** (``--ice-relay-only``: the contact must never learn our addresses).
   libjuice's relay policy only filters the candidates it announces; its checks still
   leave from the host socket, so the peer's TURN server hands our public address to the
   peer as a peer-reflexive candidate.  aioice sends from the relay allocation only.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, Protocol

from ..events import PathKind
from ..streams import ByteStream
from .protocol import IceCandidate, IceServers, WebRtcDataChannelTransport

__all__ = [
    "AIORTC",
    "BACKEND_CHOICES",
    "NATIVE",
    "CHANNEL_LABEL",
    "CHANNEL_PROTOCOL",
    "LOCAL_MAX_MESSAGE_SIZE",
    "MAX_REMOTE_CANDIDATES",
    "Cancellable",
    "Choice",
    "IceBackend",
    "IceBackendFactory",
    "IceHooks",
    "RemoteCandidates",
    "SelectedPair",
    "choose_implementation",
    "native_available",
    "native_session_class",
]

logger = logging.getLogger(__name__)

#: Names of the implementations, as they appear in the ``transport`` event's detail.
AIORTC = "aiortc"
NATIVE = "libdatachannel"
#: ``Settings.ice_backend``: "auto" follows :func:`choose_implementation`.
BACKEND_CHOICES = ("auto", "native", "aiortc")
Preference = Literal["auto", "native", "aiortc"]

#: What we accept (RFC 8841 §6 max-message-size); aiortc's own LOCAL_MAX_MESSAGE_SIZE.
LOCAL_MAX_MESSAGE_SIZE = 262144
#: Conversations' channel label and sub-protocol (docs/protocol.md §6.5).
CHANNEL_LABEL = "test"
CHANNEL_PROTOCOL = "xmpp-jingle"
#: Remote candidates kept per session (all payloads together); the rest is ignored.
MAX_REMOTE_CANDIDATES = 64


class RemoteCandidates:
    """The peer's candidates a backend keeps, in arrival order: component 1 only (data
    channels mux RTP/RTCP), no signalled peer-reflexive ones (the checks learn those,
    RFC 8445 §7.3.1.3), no duplicate address, at most :data:`MAX_REMOTE_CANDIDATES`."""

    def __init__(self) -> None:
        self.items: list[IceCandidate] = []
        self._seen: set[tuple[str, int]] = set()

    def __bool__(self) -> bool:
        return bool(self.items)

    def admit(self, c: IceCandidate) -> bool:
        """Keep ``c`` if the rules allow it (logging why not); True when kept."""
        if c.component != 1:
            logger.info("ignoring candidate %s for component %d", c.id, c.component)
        elif c.type == "prflx":
            logger.info("ignoring signalled prflx candidate %s", c.id)
        elif (c.ip, c.port) in self._seen:
            pass
        elif len(self.items) >= MAX_REMOTE_CANDIDATES:
            logger.warning("ignoring candidate %s: more than %d", c.id, MAX_REMOTE_CANDIDATES)
        else:
            self._seen.add((c.ip, c.port))
            self.items.append(c)
            return True
        return False


class Cancellable(Protocol):
    """What a scheduled call returns (``asyncio.TimerHandle`` has it)."""

    def cancel(self) -> None: ...


@dataclass(frozen=True)
class IceHooks:
    """Seams for tests: each replaces a wait whose length production picks, so that a test
    decides the order of events instead of sleeping.  The defaults are production's.

    :param gather_gate: awaited before gathering starts (in production gathering takes as
        long as STUN/TURN servers make it: up to 5 s when one does not answer).  The native
        stack starts gathering with its local description; there the gate holds what
        :meth:`IceBackend.gather` reports.
    :param call_later: schedules the end-of-candidates grace (``call_later(seconds,
        callback)`` returning something with ``cancel()``); default: the running loop's.
        aiortc only (libjuice has no end-of-candidates to signal from Jingle).
    :param relay_gate: awaited by each relay check of the controlling agent instead of the
        ``relay_delay`` hold (relay checks start when it returns).  aiortc only.
    """

    gather_gate: Callable[[], Awaitable[object]] | None = None
    call_later: Callable[[float, Callable[[], None]], Cancellable] | None = None
    relay_gate: Callable[[], Awaitable[object]] | None = None


@dataclass(frozen=True)
class SelectedPair:
    """The nominated candidate pair (RFC 8445 §8.1.1), as this side sees it."""

    local_type: str
    local_address: tuple[str, int]
    remote_type: str
    remote_address: tuple[str, int]

    @property
    def relayed(self) -> bool:
        return self.local_type == "relay" or self.remote_type == "relay"

    @property
    def path(self) -> PathKind:
        return PathKind.ICE_RELAY if self.relayed else PathKind.ICE_DIRECT

    @property
    def detail(self) -> str:
        (lh, lp), (rh, rp) = self.local_address, self.remote_address
        return f"{self.local_type} {lh}:{lp} -> {self.remote_type} {rh}:{rp}"


class IceBackend(Protocol):
    """One ICE + DTLS + SCTP data channel for one Jingle content, whatever carries it.

    The order of calls (the negotiator's): the responder feeds the offer with
    :meth:`add_remote` before :meth:`gather` (its DTLS setup follows the offer's, RFC 5763
    §5); the initiator gathers, then feeds the answer; trickled payloads follow with
    :meth:`add_remote`; :meth:`connect` runs ICE, DTLS (the peer's certificate checked
    against the Jingle fingerprint, XEP-0320, before any byte) and SCTP, and hands back the
    byte stream.  :meth:`close` releases every socket, whatever happened.
    """

    #: Jingle initiator: ICE controlling, DTLS ``actpass`` (docs/protocol.md §6.1).
    initiator: bool
    #: :data:`NATIVE` or :data:`AIORTC`.
    implementation: str

    async def gather(self) -> WebRtcDataChannelTransport: ...

    def local_payload(self) -> WebRtcDataChannelTransport: ...

    def credentials_payload(self) -> WebRtcDataChannelTransport: ...

    async def add_remote(self, payload: WebRtcDataChannelTransport) -> None: ...

    async def connect(self, timeout: float = 10.0) -> ByteStream: ...

    def selected_pair(self) -> SelectedPair | None: ...

    @property
    def remote_candidates(self) -> tuple[IceCandidate, ...]: ...

    async def close(self) -> None: ...


class IceBackendFactory(Protocol):
    """What the negotiator calls: :class:`~.channel.IceSession` or
    :class:`~.native.NativeIceSession` (both take these, and more, as keywords)."""

    def __call__(self, *, initiator: bool, servers: IceServers | None = None,
                 relay_only: bool = False, host_addresses: Sequence[str] | None = None,
                 ) -> IceBackend: ...


# ------------------------------------------------------------------ availability


_native: ModuleType | None | Literal[False] = False  # False: not tried yet


def native_session_class() -> IceBackendFactory | None:
    """:class:`.native.NativeIceSession`, or None when aiolibdatachannel does not import
    (another OS or architecture, CPython < 3.12: no wheel).  The module is imported once,
    lazily, so a client that never uses ICE never loads libdatachannel."""
    global _native
    if _native is False:
        try:
            _native = importlib.import_module(f"{__package__}.native")
        except ImportError as e:
            logger.info("native ICE unavailable (aiortc is used): %s", e)
            _native = None
    if not _native:
        return None
    cls: IceBackendFactory = _native.NativeIceSession
    return cls


def native_available() -> bool:
    return native_session_class() is not None


def native_missing_reason() -> str:
    """Why the native data channel cannot be used here (for skips and logs)."""
    if sys.version_info < (3, 12):
        return ("aiolibdatachannel has wheels for CPython >= 3.12 only "
                f"(this is {sys.version_info.major}.{sys.version_info.minor})")
    if not sys.platform.startswith("linux"):
        return f"aiolibdatachannel has wheels for Linux only (this is {sys.platform})"
    return "aiolibdatachannel is not installed or does not import"


# ------------------------------------------------------------------ the rule


@dataclass(frozen=True)
class Choice:
    implementation: str
    why: str


def choose_implementation(preference: str, *, native: bool, servers: IceServers | None,
                          relay_only: bool, turn_udp_reachable: bool | None) -> Choice:
    """Which stack carries this session (module docstring: the rule and its reasons).

    :param native: aiolibdatachannel imports here.
    :param turn_udp_reachable: whether a STUN binding over UDP reached the TURN server
        (:mod:`.probe`); None when it was not asked (no TURN over UDP announced).
    """
    if preference == "aiortc":
        return Choice(AIORTC, "chosen in the settings")
    if preference == "native":
        if native:
            return Choice(NATIVE, "chosen in the settings")
        return Choice(AIORTC, f"native chosen in the settings but unavailable: "
                              f"{native_missing_reason()}")
    if not native:
        return Choice(AIORTC, native_missing_reason())
    if relay_only:
        return Choice(AIORTC, "relay-only ICE: libjuice's checks leave from the host socket")
    if servers is None or not servers.has_turn:
        return Choice(NATIVE, "no TURN server: nothing libjuice cannot do")
    if servers.turn_udp_port is None:
        return Choice(AIORTC, "TURN only over TCP/TLS: libjuice relays over UDP only")
    if turn_udp_reachable is False and servers.turn_transport == "tcp":
        return Choice(AIORTC, "UDP to the TURN server is blocked: TURN over TCP (aiortc)")
    return Choice(NATIVE, "TURN over UDP")
