"""Frozen value types for Jingle (XEP-0166) file-transfer (XEP-0234) sessions.

Pure data: no I/O, no clock.  XML lives in :mod:`jinglefs.jingle.codec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ..jet.protocol import Security
from .transport import TransportPayload


class Role(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"

    @property
    def other(self) -> Role:
        return Role.RESPONDER if self is Role.INITIATOR else Role.INITIATOR


class Action(enum.Enum):
    """XEP-0166 §7.2 actions, spelled as on the wire."""

    CONTENT_ACCEPT = "content-accept"
    CONTENT_ADD = "content-add"
    CONTENT_MODIFY = "content-modify"
    CONTENT_REJECT = "content-reject"
    CONTENT_REMOVE = "content-remove"
    DESCRIPTION_INFO = "description-info"
    SECURITY_INFO = "security-info"
    SESSION_ACCEPT = "session-accept"
    SESSION_INFO = "session-info"
    SESSION_INITIATE = "session-initiate"
    SESSION_TERMINATE = "session-terminate"
    TRANSPORT_ACCEPT = "transport-accept"
    TRANSPORT_INFO = "transport-info"
    TRANSPORT_REJECT = "transport-reject"
    TRANSPORT_REPLACE = "transport-replace"


class Reason(enum.Enum):
    """XEP-0166 §7.4 reason conditions."""

    ALTERNATIVE_SESSION = "alternative-session"
    BUSY = "busy"
    CANCEL = "cancel"
    CONNECTIVITY_ERROR = "connectivity-error"
    DECLINE = "decline"
    EXPIRED = "expired"
    FAILED_APPLICATION = "failed-application"
    FAILED_TRANSPORT = "failed-transport"
    GENERAL_ERROR = "general-error"
    GONE = "gone"
    INCOMPATIBLE_PARAMETERS = "incompatible-parameters"
    MEDIA_ERROR = "media-error"
    SECURITY_ERROR = "security-error"
    SUCCESS = "success"
    TIMEOUT = "timeout"
    UNSUPPORTED_APPLICATIONS = "unsupported-applications"
    UNSUPPORTED_TRANSPORTS = "unsupported-transports"


@dataclass(frozen=True)
class ReasonInfo:
    """A ``<reason/>``: one condition, optional text, optional app-specific child name."""

    condition: Reason
    text: str | None = None
    #: e.g. "file-too-large" / "file-not-available" (XEP-0234 §9 errors namespace)
    app_condition: str | None = None


@dataclass(frozen=True)
class Range:
    """XEP-0234 §5 ``<range/>``; its presence in an offer means "I support ranged transfers"."""

    offset: int = 0
    length: int | None = None
    hashes: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class FileDesc:
    """XEP-0234 §5 ``<file/>``."""

    name: str | None = None
    size: int | None = None
    media_type: str | None = None
    date: datetime | None = None
    desc: str | None = None
    #: XEP-0300 ``<hash algo=…>`` values, as (algo as written by the peer, raw digest).
    hashes: tuple[tuple[str, bytes], ...] = ()
    #: XEP-0300 ``<hash-used algo=…/>``: digest will come later in a checksum.
    hash_used: tuple[str, ...] = ()
    range: Range | None = None


@dataclass(frozen=True)
class FileTransferDescription:
    """``<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>`` with its one ``<file/>``."""

    file: FileDesc


@dataclass(frozen=True)
class UnknownDescription:
    """An application we do not implement (answered with unsupported-applications)."""

    namespace: str


Description = FileTransferDescription | UnknownDescription


@dataclass(frozen=True)
class Content:
    """XEP-0166 §7.3 ``<content/>``."""

    creator: Role
    name: str
    senders: Role | None = None  # None: attribute absent (XEP-0166 default "both")
    description: Description | None = None
    transport: TransportPayload | None = None
    disposition: str = "session"
    #: XEP-0391 §4.1 JET ``<security/>``: the file travels encrypted (session-initiate only)
    security: Security | None = None

    @property
    def key(self) -> tuple[Role, str]:
        """A content is identified by creator and name for the whole session (XEP-0166 §7.3)."""
        return (self.creator, self.name)


@dataclass(frozen=True)
class Checksum:
    """XEP-0234 §8.2 session-info ``<checksum/>``: the digest after (or before) the bytes."""

    creator: Role | None
    name: str | None
    file: FileDesc


@dataclass(frozen=True)
class Received:
    """XEP-0234 §8.1 session-info ``<received/>``: the receiver has the whole file."""

    creator: Role | None
    name: str | None


@dataclass(frozen=True)
class UnknownInfo:
    """A session-info payload we do not understand (answered with unsupported-info)."""

    tag: str


SessionInfoPayload = Checksum | Received | UnknownInfo


@dataclass(frozen=True)
class Jingle:
    """One ``<jingle/>`` element: the action and everything it carries."""

    action: Action
    sid: str
    initiator: str | None = None
    responder: str | None = None
    contents: tuple[Content, ...] = ()
    reason: ReasonInfo | None = None
    #: session-info payload; None for an empty session-info (a ping, XEP-0166 §7.2.9)
    info: SessionInfoPayload | None = None


@dataclass(frozen=True)
class OutgoingIq:
    """An IQ-set the session wants sent; its answer is fed back by ``id``."""

    id: str
    jingle: Jingle

