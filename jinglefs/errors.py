"""The jinglefs exception tree, and the one table that says what each error means.

::

    JingleFSError               failed           exit 1
    ├── UsageError              usage            exit 2
    ├── ConnectError            connect          exit 3
    │   └── AuthError           auth             exit 4
    ├── ProtocolError           protocol-error   (abstract: never raised directly)
    │   ├── LocalProtocolError  local-protocol   we asked for something illegal in this state
    │   └── RemoteProtocolError protocol         peer broke a rule: .condition, .jingle_condition
    ├── RecipientUnavailable    no-recipient     exit 5
    ├── NegotiationError        negotiation      .reason: the XEP-0166 §7.4 condition
    │   ├── Declined            declined         exit 10
    │   └── NegotiationTimeout  timeout
    │       └── Unanswered      unanswered       exit 11: the offer got no answer at all
    ├── TransportError          transport        exit 6
    │   ├── CandidatesFailed    no-transport
    │   └── StreamClosed        connection-lost
    └── TransferError           transfer-failed  exit 7
        ├── ChecksumMismatch    hash-mismatch    exit 8: .algo, .expected, .actual
        ├── SizeMismatch        size-mismatch
        ├── Cancelled           cancelled        exit 9: .by_peer
        ├── StorageError        storage
        ├── PeerGone            peer-gone        the contact went offline mid-session
        ├── DecryptFailed       decrypt-failed   exit 12: JET tag or key failed, nothing kept
        └── EncryptionRequired  encryption-required  exit 13: --encryption required refused

:data:`ERROR_KINDS` is the single source for every error's *kind* (the stable string in
``--json`` ``failed`` events and in the GUI's history), its CLI exit code (the README's
exit-code table is the contract: the numbers never change meaning), the sentence people
see, and the XEP-0166 §7.4 reason jinglefs ends a session with when it fails this way.
Use :func:`kind_of`, :func:`exit_code_for` and :func:`message_for`; never a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

# CLI exit codes.  Documented in the README and in `jinglefs --help`; never renumber.
EXIT_OK = 0
EXIT_FAILED = 1  # any other failure
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_AUTH = 4
EXIT_NO_RECIPIENT = 5
EXIT_TRANSPORT = 6
EXIT_TRANSFER = 7
EXIT_HASH_MISMATCH = 8
EXIT_CANCELLED = 9
EXIT_DECLINED = 10
EXIT_UNANSWERED = 11
EXIT_DECRYPT_FAILED = 12
EXIT_ENCRYPTION_REQUIRED = 13
EXIT_INTERRUPTED = 130


class JingleFSError(Exception):
    """Base of every jinglefs error."""

    @property
    def kind(self) -> str:
        """The stable machine-readable kind (see :data:`ERROR_KINDS`)."""
        return kind_of(self)

    @property
    def exit_code(self) -> int:
        """The CLI exit code (see :data:`ERROR_KINDS`)."""
        return exit_code_for(self)

    @property
    def user_message(self) -> str:
        """The table's sentence, with this error's detail in brackets."""
        detail = str(self)
        text = row_for(self).text
        return f"{text} ({detail})" if detail else text


class UsageError(JingleFSError):
    """Bad arguments or configuration."""


class ConnectError(JingleFSError):
    """The XMPP server is unreachable (or the connection to it was lost)."""


class AuthError(ConnectError):
    """Wrong password, or the account was refused."""


class ProtocolError(JingleFSError):
    """Abstract: a protocol rule was broken (raise a subclass)."""

    def __init__(self, msg: str = "", *, condition: str = "bad-request",
                 jingle_condition: str | None = None, error_type: str = "cancel") -> None:
        if type(self) is ProtocolError:
            raise TypeError("tried to instantiate ProtocolError directly")
        super().__init__(msg)
        #: RFC 6120 stanza error condition to answer with.
        self.condition = condition
        #: XEP-0166 §10 ``urn:xmpp:jingle:errors:1`` condition, if any.
        self.jingle_condition = jingle_condition
        #: RFC 6120 error type (cancel, modify, wait, auth).
        self.error_type = error_type


class LocalProtocolError(ProtocolError):
    """We asked for something the protocol does not allow in this state."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class RecipientUnavailable(JingleFSError):
    """No online resource of the contact can receive files."""


class NegotiationError(JingleFSError):
    """The peer ended the session during negotiation; ``reason`` is the condition."""

    def __init__(self, msg: str = "", *, reason: str = "general-error") -> None:
        super().__init__(msg)
        self.reason = reason


class Declined(NegotiationError):
    """The peer said no."""


class NegotiationTimeout(NegotiationError):
    """The peer did not answer in time."""


class Unanswered(NegotiationTimeout):
    """The contact's client neither accepted nor declined the offer within
    ``Timeouts.accept`` (Dino drops offers from people without an open conversation,
    docs/interop.md §4.7); the session was ended so nothing stays pending."""


#: What usually gets an unanswered offer through (the detail of :class:`Unanswered`).
UNANSWERED_HELP = ("what usually helps: the contact opens a chat with you or adds you to "
                   "their contacts, or accepts the file on their device, then you send again")


class TransportError(JingleFSError):
    """No transport could carry the bytes."""


class CandidatesFailed(TransportError):
    """Every rung of the transport ladder failed."""


class StreamClosed(TransportError):
    """The byte stream closed (or stalled) before the file was complete."""


class TransferError(JingleFSError):
    """The transfer failed."""


class ChecksumMismatch(TransferError):
    """The received bytes do not match the sender's checksum (XEP-0234 §8.2)."""

    def __init__(self, msg: str = "", *, algo: str = "", expected: bytes = b"",
                 actual: bytes = b"") -> None:
        super().__init__(msg)
        self.algo, self.expected, self.actual = algo, expected, actual


class SizeMismatch(TransferError):
    """More or fewer bytes than offered."""


class Cancelled(TransferError):
    """Cancelled here, or by the peer (``by_peer``)."""

    def __init__(self, msg: str = "", *, by_peer: bool = False) -> None:
        super().__init__(msg)
        self.by_peer = by_peer


class StorageError(TransferError):
    """The file could not be read or written."""


class PeerGone(TransferError):
    """The peer went offline (or said ``gone``, XEP-0166 §7.4) before the end."""


class DecryptFailed(TransferError):
    """An encrypted file (XEP-0391) failed its authentication tag, or its key could not be
    opened: nothing of it was kept."""


class EncryptionRequired(TransferError):
    """``encryption=required`` and this transfer would not be end-to-end encrypted."""


@dataclass(frozen=True)
class ErrorKind:
    """One row of :data:`ERROR_KINDS`."""

    #: The exception class this row describes (its subclasses without a row inherit it).
    exception: type[BaseException]
    #: Stable machine-readable name: ``--json`` ``failed`` events, GUI history.  Unique.
    kind: str
    #: CLI exit code; the README's exit-code table is the contract.
    exit_code: int
    #: A short plain sentence for people.
    text: str
    #: XEP-0166 §7.4 condition jinglefs ends a session with when it fails this way.
    reason: str = "general-error"


#: Every error kind, in the order of the tree above.  The one table: the CLI, the GUI,
#: the transfer handles, the driver and the tests' fake all read it.
ERROR_KINDS: tuple[ErrorKind, ...] = (
    ErrorKind(JingleFSError, "failed", EXIT_FAILED, "Something went wrong."),
    ErrorKind(UsageError, "usage", EXIT_USAGE,
              "The command or its configuration is not usable as given."),
    ErrorKind(ConnectError, "connect", EXIT_CONNECT, "Could not connect to the XMPP server."),
    ErrorKind(AuthError, "auth", EXIT_AUTH, "The XMPP server refused the account or password."),
    ErrorKind(ProtocolError, "protocol-error", EXIT_FAILED, "A protocol rule was broken."),
    ErrorKind(LocalProtocolError, "local-protocol", EXIT_FAILED,
              "jinglefs tried to do something the protocol does not allow now."),
    ErrorKind(RemoteProtocolError, "protocol", EXIT_FAILED,
              "The other side sent something the protocol does not allow.",
              reason="failed-application"),
    ErrorKind(RecipientUnavailable, "no-recipient", EXIT_NO_RECIPIENT,
              "The contact has no online device that can receive files directly."),
    ErrorKind(NegotiationError, "negotiation", EXIT_TRANSFER, "The other side ended the session."),
    ErrorKind(Declined, "declined", EXIT_DECLINED, "The recipient declined the file.",
              reason="decline"),
    ErrorKind(NegotiationTimeout, "timeout", EXIT_TRANSFER,
              "The other side did not answer in time.", reason="timeout"),
    ErrorKind(Unanswered, "unanswered", EXIT_UNANSWERED,
              "The contact's app did not answer the offer.", reason="timeout"),
    ErrorKind(TransportError, "transport", EXIT_TRANSPORT,
              "No connection could be made to carry the file.", reason="failed-transport"),
    ErrorKind(CandidatesFailed, "no-transport", EXIT_TRANSPORT,
              "None of the network paths to the contact worked.", reason="failed-transport"),
    ErrorKind(StreamClosed, "connection-lost", EXIT_TRANSPORT,
              "The connection to the contact closed before the file was complete.",
              reason="failed-transport"),
    ErrorKind(TransferError, "transfer-failed", EXIT_TRANSFER, "The transfer failed."),
    ErrorKind(ChecksumMismatch, "hash-mismatch", EXIT_HASH_MISMATCH,
              "The received file does not match the sender's checksum; it was not saved.",
              reason="media-error"),
    ErrorKind(SizeMismatch, "size-mismatch", EXIT_TRANSFER,
              "The sender sent a different number of bytes than it offered.",
              reason="media-error"),
    ErrorKind(Cancelled, "cancelled", EXIT_CANCELLED, "The transfer was cancelled.",
              reason="cancel"),
    ErrorKind(StorageError, "storage", EXIT_TRANSFER, "The file could not be read or written.",
              reason="media-error"),
    ErrorKind(PeerGone, "peer-gone", EXIT_TRANSFER,
              "The contact went offline before the transfer finished.", reason="gone"),
    ErrorKind(DecryptFailed, "decrypt-failed", EXIT_DECRYPT_FAILED,
              "The encrypted file could not be decrypted or was altered; nothing was kept.",
              reason="security-error"),
    ErrorKind(EncryptionRequired, "encryption-required", EXIT_ENCRYPTION_REQUIRED,
              "Encryption is required, but this transfer could not be encrypted.",
              reason="security-error"),
    ErrorKind(KeyboardInterrupt, "interrupted", EXIT_INTERRUPTED,
              "Interrupted: running transfers were cancelled.", reason="cancel"),
)

_BY_CLASS: dict[type[BaseException], ErrorKind] = {row.exception: row for row in ERROR_KINDS}
_BY_KIND: dict[str, ErrorKind] = {row.kind: row for row in ERROR_KINDS}
#: What an exception that is not in the tree counts as ("other failure").
_OTHER = _BY_CLASS[JingleFSError]


def row_for(exc: BaseException | type[BaseException]) -> ErrorKind:
    """The table row of an exception (or class): its own, else its nearest ancestor's;
    anything outside the tree is an "other failure" (``failed``, exit 1)."""
    cls = exc if isinstance(exc, type) else type(exc)
    for base in cls.__mro__:
        row = _BY_CLASS.get(base)
        if row is not None:
            return row
    return _OTHER


def row_by_kind(kind: str) -> ErrorKind | None:
    """The row with this kind string, or None."""
    return _BY_KIND.get(kind)


def kind_of(exc: BaseException | type[BaseException]) -> str:
    """The stable kind string of an exception (``--json`` ``failed`` events)."""
    return row_for(exc).kind


def exit_code_for(exc: BaseException | type[BaseException]) -> int:
    """The CLI exit code for an exception (README's exit-code table)."""
    return row_for(exc).exit_code


def message_for(exc: BaseException) -> str:
    """What to tell people about an exception."""
    if isinstance(exc, JingleFSError):
        return exc.user_message
    if isinstance(exc, KeyboardInterrupt):
        return row_for(exc).text
    return str(exc) or type(exc).__name__


