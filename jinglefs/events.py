"""Frozen, past-tense events the façade reports to the CLI and the GUI.

Every :class:`Transfer` yields these from ``Transfer.events()`` in order, ending
with exactly one of :class:`Completed` or :class:`Failed`.  ``to_json()`` gives
the stable, versioned ``--json`` form (keys never translated, never renamed).
A transfer's :class:`TransferState` follows from its events by one rule,
:func:`next_state` over the :data:`TRANSITIONS` table; nothing else derives it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON_SCHEMA_VERSION = 1


class Direction(enum.Enum):
    SEND = "send"
    RECEIVE = "receive"


class PathKind(enum.Enum):
    """Which path the bytes took; shown to users as a badge."""

    #: ICE data channel over a host or server-reflexive pair (direct, DTLS-encrypted).
    ICE_DIRECT = "ice-direct"
    #: ICE data channel through a TURN relay (DTLS-encrypted).
    ICE_RELAY = "ice-relay"
    #: SOCKS5 bytestream straight between the two machines.
    S5B_DIRECT = "s5b-direct"
    #: SOCKS5 bytestream through the server's XEP-0065 proxy.
    S5B_PROXY = "s5b-proxy"
    #: In-Band Bytestreams: base64 inside XMPP stanzas, through the server (slow).
    IBB = "ibb"

    @property
    def label(self) -> str:
        return _PATH_LABELS[self]

    @property
    def encrypted(self) -> bool:
        """True when the path itself encrypts the file bytes end to end."""
        return self in (PathKind.ICE_DIRECT, PathKind.ICE_RELAY)


_PATH_LABELS = {
    PathKind.ICE_DIRECT: "Direct (ICE, encrypted)",
    PathKind.ICE_RELAY: "Relayed via TURN (ICE, encrypted)",
    PathKind.S5B_DIRECT: "Direct (SOCKS5)",
    PathKind.S5B_PROXY: "Through the server's proxy (SOCKS5)",
    PathKind.IBB: "Through the XMPP server (in-band, slow)",
}


class Protection(enum.Enum):
    """What kept a file's bytes private on the way; sender and receiver say the same.

    JET (XEP-0391 §3) encrypts the file itself, on any path, with a key only the two
    OMEMO devices know; the ICE data channel encrypts the connection (DTLS); SOCKS5 and
    IBB without JET carry the file as it is (the proxy and the XMPP server can read it).
    """

    OMEMO = "encrypted (OMEMO)"
    DTLS = "encrypted (DTLS)"
    NONE = "not encrypted"

    @classmethod
    def of(cls, path: PathKind, jet: bool) -> Protection:
        if jet:
            return cls.OMEMO
        return cls.DTLS if path.encrypted else cls.NONE

    @property
    def encrypted(self) -> bool:
        return self is not Protection.NONE


class Verification(enum.Enum):
    """How a completed transfer's bytes were checked (``Completed.verification``).

    Verified means a digest was compared, on either side: the receiver compares the
    sender's hash with the bytes it wrote (XEP-0234 §8.2); the sender knows only what the
    receiver tells it, so it says "verified" only when the receiver sent back the digest
    of what it got and that digest is the sender's own (docs/protocol.md §5.8).
    """

    #: receiver: the sender's hash (offer or checksum) matched the bytes received.
    SENDER_HASH = "sender-hash"
    #: receiver: the sender gave no hash (Dino never does): kept, but not verified.
    NO_SENDER_HASH = "no-sender-hash"
    #: receiver, JET: the sender's sha-256 covers the encrypted bytes (Conversations,
    #: docs/interop.md §3.3) and matched them; the AES-GCM tag vouches for the plaintext.
    CIPHERTEXT_HASH = "ciphertext-hash"
    #: sender: the receiver confirmed the checksum (sent back the same digest).
    RECEIVER_CONFIRMED = "receiver-confirmed"
    #: sender: the receiver said success but did not confirm the checksum.
    NOT_CONFIRMED = "not-confirmed"

    @property
    def verified(self) -> bool:
        return self in (Verification.SENDER_HASH, Verification.CIPHERTEXT_HASH,
                        Verification.RECEIVER_CONFIRMED)

    @property
    def text(self) -> str:
        """The plain words for it (the CLI's result line, the GUI's status)."""
        return _VERIFICATION_TEXTS[self]


_VERIFICATION_TEXTS = {
    Verification.SENDER_HASH: "verified",
    Verification.NO_SENDER_HASH: "complete, not verified (the sender gave no hash)",
    Verification.CIPHERTEXT_HASH: "verified (sha-256 of the encrypted bytes, and the "
                                  "AES-GCM tag)",
    Verification.RECEIVER_CONFIRMED: "verified by the receiver",
    Verification.NOT_CONFIRMED: "delivered; the receiver did not confirm the checksum",
}


@dataclass(frozen=True)
class FileInfo:
    """What an offer says about one file (XEP-0234 §5 ``<file/>``)."""

    name: str
    size: int
    media_type: str = "application/octet-stream"
    date: datetime | None = None
    desc: str | None = None
    #: XEP-0300 algorithm name -> raw digest, when the offer carried hashes.
    hashes: dict[str, bytes] = field(default_factory=dict)


class TransferState(enum.Enum):
    """Where a transfer is; it follows from its events by :func:`next_state` only."""

    OFFERED = "offered"  # waiting for the other side to accept
    CONNECTING = "connecting"  # accepted; transports being negotiated
    TRANSFERRING = "transferring"  # a path is connected; bytes are moving
    VERIFYING = "verifying"  # every byte moved; the receiver checks the checksum
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in FINAL_STATES


@dataclass(frozen=True)
class TransferEvent:
    transfer_id: str

    @property
    def name(self) -> str:
        return _EVENT_NAMES[type(self)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": JSON_SCHEMA_VERSION, "event": self.name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, bytes):
                value = value.hex()
            elif isinstance(value, dict):
                value = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in value.items()}
            elif isinstance(value, FileInfo):
                value = {"name": value.name, "size": value.size, "media_type": value.media_type}
            out[f.name] = value
        return out


@dataclass(frozen=True)
class Offered(TransferEvent):
    """The offer was sent (sender) or received (receiver)."""

    peer: str
    direction: Direction
    file: FileInfo


@dataclass(frozen=True)
class Accepted(TransferEvent):
    """The receiver accepted; transports are being negotiated."""

    offset: int = 0  # > 0 when resuming a partial file (XEP-0234 §6.4 ranged transfer)


@dataclass(frozen=True)
class TransportSelected(TransferEvent):
    """A path was chosen (it may change later if it fails and another is tried)."""

    path: PathKind
    detail: str = ""  # e.g. "host 127.0.0.1:40000 -> 127.0.0.1:40001" or proxy JID
    encrypted: bool = False
    #: what protects the bytes on this path (JET, DTLS, nothing)
    protection: Protection = Protection.NONE


@dataclass(frozen=True)
class Progress(TransferEvent):
    done: int
    total: int
    rate: float = 0.0  # bytes per second, smoothed
    eta: float | None = None  # seconds


@dataclass(frozen=True)
class Verified(TransferEvent):
    """The receiver's digest matched the sender's (XEP-0300): on the receiver when the
    sender's hash matched, on the sender when the receiver confirmed it."""

    algo: str
    digest: bytes


@dataclass(frozen=True)
class Completed(TransferEvent):
    path: str  # where the file is (receiver) or was read from (sender)
    size: int
    #: our own digests of the whole file (XEP-0300 name -> raw digest)
    hashes: dict[str, bytes] = field(default_factory=dict)
    #: a digest was compared and matched (see :class:`Verification`)
    verified: bool = False
    #: how it was checked, or None when not told
    verification: Verification | None = None
    #: when not verified: why, in plain words ("the sender gave no hash")
    reason: str = ""
    #: what protected the bytes on the way (the path that carried them), when known
    protection: Protection | None = None


@dataclass(frozen=True)
class Failed(TransferEvent):
    reason: str  # plain-language explanation
    error: str = "failed"  # machine-readable kind: declined, cancelled, hash-mismatch, ...
    exit_code: int = 1


_EVENT_NAMES: dict[type, str] = {
    Offered: "offered",
    Accepted: "accepted",
    TransportSelected: "transport",
    Progress: "progress",
    Verified: "verified",
    Completed: "completed",
    Failed: "failed",
}


FINAL_STATES = frozenset({TransferState.COMPLETED, TransferState.FAILED})

#: The input a Progress with every byte counted stands for (the receiver checks next).
LAST_BYTE = "last-byte"

_S = TransferState
#: The one rule for a transfer's state: state -> {event input -> next state}.  An input
#: missing from a state's row leaves the state as it is (e.g. a second TransportSelected
#: when the ladder moves to the next rung, a Progress while verifying); the final states
#: take no input.  Inputs are event names (``TransferEvent.name``) and :data:`LAST_BYTE`.
TRANSITIONS: Mapping[TransferState, Mapping[str, TransferState]] = {
    _S.OFFERED: {
        "accepted": _S.CONNECTING,
        "transport": _S.TRANSFERRING,
        "progress": _S.TRANSFERRING,
        LAST_BYTE: _S.VERIFYING,
        "verified": _S.VERIFYING,
        "completed": _S.COMPLETED,
        "failed": _S.FAILED,
    },
    _S.CONNECTING: {
        "transport": _S.TRANSFERRING,
        "progress": _S.TRANSFERRING,
        LAST_BYTE: _S.VERIFYING,
        "verified": _S.VERIFYING,
        "completed": _S.COMPLETED,
        "failed": _S.FAILED,
    },
    _S.TRANSFERRING: {
        LAST_BYTE: _S.VERIFYING,
        "verified": _S.VERIFYING,
        "completed": _S.COMPLETED,
        "failed": _S.FAILED,
    },
    _S.VERIFYING: {
        "completed": _S.COMPLETED,
        "failed": _S.FAILED,
    },
    _S.COMPLETED: {},
    _S.FAILED: {},
}


def state_input(event: TransferEvent) -> str:
    """What an event means for the state machine: its name, or :data:`LAST_BYTE`."""
    if isinstance(event, Progress) and 0 < event.total <= event.done:
        return LAST_BYTE
    return event.name


def next_state(state: TransferState, event: TransferEvent) -> TransferState:
    """The state of a transfer after ``event`` (see :data:`TRANSITIONS`)."""
    return TRANSITIONS[state].get(state_input(event), state)


def state_after(events: Iterable[TransferEvent],
                start: TransferState = TransferState.OFFERED) -> TransferState:
    """The state reached from ``start`` through ``events``."""
    state = start
    for event in events:
        state = next_state(state, event)
    return state
