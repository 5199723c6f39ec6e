"""The façade: the only part of jinglefs that the CLI and the GUI use.

::

    async with await Client.connect(account, settings) as client:
        [transfer] = await client.send_files("bob@example.org", [Path("big.iso")])
        async for event in transfer.events():     # Offered, Accepted, TransportSelected,
            ...                                   # Progress..., Verified, Completed | Failed
        await transfer.wait()                     # raises a jinglefs.errors exception on failure

    async for offer in client.offers():           # incoming sessions
        transfers = await offer.accept(Path("~/Downloads").expanduser())   # or offer.decline()

Everything here is asyncio and Qt-free.  :class:`ClientLike`, :class:`OfferLike` and
:class:`TransferLike` are the structural types the GUI is written against, so its
tests can use a fake client that never touches the network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from .events import Direction, FileInfo, PathKind, TransferEvent, TransferState
from .jet.envelope import EnvelopeError, PeerDevice
from .jid import new_resource

__all__ = [
    "Account",
    "Settings",
    "Timeouts",
    "Contact",
    "Resource",
    "ClientEvent",
    "OfferReceived",
    "OfferDeclined",
    "ContactsChanged",
    "ConnectionLost",
    "Reconnected",
    "ClientLike",
    "OfferLike",
    "TransferLike",
    "Direction",
    "FileInfo",
    "PathKind",
    "TransferState",
    "PeerDevice",
    "EnvelopeError",
]

TRANSPORT_CHOICES = ("auto", "ice", "s5b", "ibb")
#: Settings.encryption: "required" (never unencrypted), "auto" (whenever the peer can),
#: "off" (never JET; ICE keeps its DTLS).  README "End-to-end encryption".
ENCRYPTION_CHOICES = ("required", "auto", "off")


@dataclass(frozen=True)
class Account:
    """How to log in.  The password never comes from the command line."""

    jid: str
    password: str = field(repr=False)
    #: Connect to this host instead of what DNS SRV says.
    server: str | None = None
    port: int | None = None
    #: PEM file with the certificate(s) to trust (self-signed test servers).
    ca_file: str | None = None
    #: Allow an unencrypted stream; only honoured for loopback servers.
    allow_plaintext: bool = False
    #: This instance's device name: ``jinglefs-`` and a random id unless one is given (the
    #: app keeps one per install), so several instances share an account (jinglefs.jid).
    resource: str = field(default_factory=new_resource)


@dataclass(frozen=True)
class Timeouts:
    """Every waiting state has a limit (seconds)."""

    connect: float = 30.0  # XMPP login
    accept: float = 300.0  # waiting for the recipient to accept an offer
    iq: float = 30.0  # any IQ answer
    #: the longest any transport's connection phase may take (then the next rung); each
    #: rung has its own, shorter limit measured in the NAT lab (jinglefs.ladder), which
    #: this only caps
    transport: float = 20.0
    stall: float = 60.0  # no byte moved for this long
    peer_gone: float = 10.0  # peer went unavailable mid-session
    #: offers from one sender that arrive less than this apart are one question (one
    #: OfferLike): a client that sends one session per file (docs/protocol.md §3.5)
    offer_group: float = 1.5
    offer_group_max: float = 10.0  # the longest an offer waits for more of its group


@dataclass(frozen=True)
class Settings:
    """How a client behaves, fixed at login.

    **Accept policy** (``accept_from``, ``max_size``), one rule for every front end: the
    client itself declines (Jingle ``<decline/>`` with a reason text, so the sender sees
    :class:`~jinglefs.errors.Declined`) every offer

    * from a sender whose bare JID is not in ``accept_from``, when ``accept_from`` is not
      empty;
    * with a file larger than ``max_size`` bytes, when ``max_size`` is set;

    and announces it as :class:`OfferDeclined` on :meth:`ClientLike.events`.  Only the
    other offers reach :meth:`ClientLike.offers`, where the front end decides (the CLI
    accepts offers from ``--accept-from`` senders or asks; the GUI asks or applies its
    per-contact rules).  Empty ``accept_from`` and ``max_size=None`` (the defaults) let
    every offer through.  See :mod:`jinglefs.accept_policy`.
    """

    #: auto (ICE → SOCKS5 → IBB, as both sides support them), or force one.
    transport: str = "auto"
    #: End-to-end encryption (ENCRYPTION_CHOICES): "auto" encrypts the file with JET
    #: (XEP-0391 with OMEMO) whenever the contact's device can take it, else relies on
    #: what the path gives (ICE: DTLS); "required" refuses to send or accept anything that
    #: would travel unencrypted (an ICE-only path counts as encrypted); "off" never uses
    #: JET and declines JET offers.
    encryption: str = "auto"
    #: Our OMEMO device for this account (jinglefs.omemo): made or loaded after login,
    #: keys in the data folder, device list and bundle published by PEP; it carries the
    #: JET keys.  False: no OMEMO at all (nothing published, no JET).
    omemo: bool = True
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: XEP-0047 block size we offer for IBB (raw bytes per stanza).
    ibb_block_size: int = 4096
    #: Manual STUN/TURN, used in addition to what the server announces (XEP-0215).
    #: aioice takes one of each: the first usable entry wins over the server's of that kind.
    stun: tuple[str, ...] = ()  # "HOST[:PORT]" or "stun:HOST[:PORT]"
    #: "turn[s]:USER:PASS@HOST[:PORT]?transport=udp|tcp"; USER and PASS percent-encoded,
    #: the user info splits at its last ':' (TURN REST user names contain colons).
    turn: tuple[str, ...] = ()
    #: Gather ICE host candidates on these local addresses only.  None: every interface but
    #: loopback (aioice's choice); ("127.0.0.1",) for two clients on one machine (tests).
    ice_host_addresses: tuple[str, ...] | None = None
    #: ICE through the TURN relay only: the contact never learns our IP addresses.
    ice_relay_only: bool = False
    #: Which data channel stack carries ICE: "auto" (libdatachannel where it is installed
    #: and can do what the path needs, else aiortc: jinglefs/ice/backend.py), "native"
    #: (libdatachannel) or "aiortc".
    ice_backend: str = "auto"
    #: auto: when the ICE answer shows that the two machines reach each other directly
    #: (same network, or an address without NAT: jinglefs/ice/reachability.py), try
    #: SOCKS5 direct before ICE (kernel TCP, several times faster than the data channel).
    #: False always runs ICE first (README "How the ladder decides").
    direct_first: bool = True
    #: Whether to offer our SOCKS5 proxy candidate / use the server's proxy.
    use_proxy: bool = True
    #: Offer direct SOCKS5 candidates: a listener on our own addresses (XEP-0260 §2.1).
    #: False keeps our IP addresses out of the offer (XEP-0260 §6.1) and leaves only
    #: the proxy candidate; we still connect to the contact's candidates.
    s5b_direct: bool = True
    #: Bare JIDs whose offers may reach the front end; empty = anyone (see the docstring).
    accept_from: frozenset[str] = frozenset()
    #: Offers with a file larger than this many bytes are declined; None = no limit.
    max_size: int | None = None
    #: The client's one reconnect loop: seconds to wait before each new login attempt
    #: after the connection is lost (the last one repeats).  The GUI only follows its
    #: ConnectionLost / Reconnected events.
    reconnect_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    #: When the first login cannot reach the server, start offline and leave it to that
    #: loop instead of raising ConnectError (the GUI starting with a stored account).
    retry_first_login: bool = False


@dataclass(frozen=True)
class Resource:
    """One online device of a contact."""

    jid: str  # full JID
    show: str = "available"  # available, away, chat, dnd, xa
    priority: int = 0
    #: Jingle file transfer advertised in disco/caps (XEP-0030/0115).
    can_receive_files: bool = False
    #: Transports it advertised: a subset of {"ice", "s5b", "ibb"}.
    transports: frozenset[str] = frozenset()
    client_name: str = ""


@dataclass(frozen=True)
class Contact:
    jid: str  # bare JID
    name: str = ""
    subscription: str = "none"
    in_roster: bool = True
    resources: tuple[Resource, ...] = ()

    @property
    def online(self) -> bool:
        return bool(self.resources)

    @property
    def can_receive_files(self) -> bool:
        return any(r.can_receive_files for r in self.resources)


@runtime_checkable
class TransferLike(Protocol):
    """One file moving in one direction."""

    id: str
    peer: str
    direction: Direction
    file: FileInfo

    @property
    def state(self) -> TransferState: ...

    @property
    def path(self) -> PathKind | None: ...

    def events(self) -> AsyncIterator[TransferEvent]:
        """Every event of this transfer, from the first one, ending with Completed or Failed."""
        ...

    async def wait(self) -> TransferEvent:
        """The final Completed event; raises the matching jinglefs.errors exception on failure."""
        ...

    async def cancel(self) -> None:
        """Stop the transfer on both sides (XEP-0166 session-terminate <cancel/>)."""
        ...


@runtime_checkable
class OfferLike(Protocol):
    """An incoming offer of one or more files: one action of the sender, whether it came as
    one Jingle session or as several one-file sessions gathered together
    (:attr:`Timeouts.offer_group`, docs/protocol.md §3.5).  Answered once for all files."""

    id: str
    peer: str  # full JID of the sender
    files: Sequence[FileInfo]
    #: True when the sender's bare JID is in our roster.
    from_contact: bool

    async def accept(self, dest_dir: Path, *, filenames: Sequence[str] | None = None
                     ) -> list[TransferLike]:
        """Accept every file into ``dest_dir`` (optionally under other names)."""
        ...

    async def decline(self) -> None: ...


@dataclass(frozen=True)
class ClientEvent:
    pass


@dataclass(frozen=True)
class OfferReceived(ClientEvent):
    offer: OfferLike


@dataclass(frozen=True)
class OfferDeclined(ClientEvent):
    """An offer the client declined by itself: the :class:`Settings` accept policy."""

    id: str
    peer: str  # full JID of the sender
    files: tuple[FileInfo, ...]
    from_contact: bool
    #: which rule: ``"sender-not-allowed"`` (accept_from) or ``"too-large"`` (max_size)
    rule: str
    #: why, for the local user
    reason: str


@dataclass(frozen=True)
class ContactsChanged(ClientEvent):
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class ConnectionLost(ClientEvent):
    """Offline: running transfers failed; the client logs in again by itself.

    Published again before each new attempt (with the new reason), and replayed to a
    subscriber that arrives while the client is offline.
    """

    reason: str
    #: seconds until the next login attempt (:attr:`Settings.reconnect_delays`), if known
    retry_in: float | None = None
    #: the server refused the account: the client stopped trying
    refused: bool = False


@dataclass(frozen=True)
class Reconnected(ClientEvent):
    """Logged in again after :class:`ConnectionLost`."""


@runtime_checkable
class ClientLike(Protocol):
    """A logged-in account."""

    @property
    def jid(self) -> str:
        """Our full JID."""
        ...


    @property
    def online(self) -> bool:
        """Logged in right now (False between ConnectionLost and Reconnected)."""
        ...

    def contacts(self) -> list[Contact]: ...

    async def send_files(self, recipient: str, paths: Sequence[Path], *,
                         transport: str | None = None) -> list[TransferLike]:
        """Offer files to a bare JID (best capable resource) or a full JID."""
        ...

    def offers(self) -> AsyncIterator[OfferLike]:
        """Incoming offers, as they arrive."""
        ...

    def events(self) -> AsyncIterator[ClientEvent]:
        """Offers, roster/presence changes and connection state, from now on."""
        ...

    async def set_encryption(self, policy: str) -> None:
        """``Settings.encryption`` (ENCRYPTION_CHOICES) from the next offer on."""
        ...

    async def own_fingerprint(self) -> str | None:
        """Our OMEMO fingerprint (8 groups of 8 hex digits); None when OMEMO is off."""
        ...

    async def devices_of(self, bare: str) -> list[PeerDevice]:
        """A contact's OMEMO devices: id, fingerprint, trust (raises EnvelopeError)."""
        ...

    async def verify_device(self, bare: str, fingerprint: str) -> PeerDevice:
        """Mark the contact's device with this fingerprint verified (EnvelopeError: none)."""
        ...

    def new_devices_of_verified(self, bare: str) -> list[PeerDevice]:
        """Devices of a verified contact that are new since, not trusted until verified."""
        ...

    async def aclose(self) -> None: ...
