"""The jinglefs exception tree.  The docstring of each class is the text a user sees.

::

    JingleFSError
    ├── UsageError              bad arguments or configuration          (exit 2 / 78)
    ├── ConnectError            XMPP server unreachable                 (exit 3)
    │   └── AuthError           wrong password / account refused        (exit 4)
    ├── ProtocolError           abstract (never raised directly)
    │   ├── LocalProtocolError  we asked for something illegal in this state
    │   └── RemoteProtocolError peer sent something illegal: .condition, .jingle_condition
    ├── RecipientUnavailable    no online resource of the contact can receive files (exit 5)
    ├── NegotiationError        .reason: the XEP-0166 reason condition
    │   ├── Declined            the peer said no                        (exit 10)
    │   └── NegotiationTimeout
    ├── TransportError          no transport could carry the bytes      (exit 6)
    │   ├── CandidatesFailed
    │   └── StreamClosed
    └── TransferError           (exit 7)
        ├── ChecksumMismatch    .expected, .actual                      (exit 8)
        ├── SizeMismatch        more or fewer bytes than offered
        ├── Cancelled           .by_peer                                (exit 9)
        └── StorageError        the file could not be read or written

``exit_code(exc)`` maps an exception to the CLI's documented exit code.
"""

from __future__ import annotations

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
EXIT_INTERRUPTED = 130


class JingleFSError(Exception):
    """Something went wrong."""

    exit_code = EXIT_FAILED

    @property
    def user_message(self) -> str:
        detail = str(self)
        doc = (type(self).__doc__ or "").strip().splitlines()[0]
        return f"{doc} ({detail})" if detail else doc


class UsageError(JingleFSError):
    """The command or its configuration is not usable as given."""

    exit_code = EXIT_USAGE


class ConnectError(JingleFSError):
    """Could not connect to the XMPP server."""

    exit_code = EXIT_CONNECT


class AuthError(ConnectError):
    """The XMPP server refused the account or password."""

    exit_code = EXIT_AUTH


class ProtocolError(JingleFSError):
    """A protocol rule was broken."""

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
    """jinglefs tried to do something the protocol does not allow now."""


class RemoteProtocolError(ProtocolError):
    """The other side sent something the protocol does not allow."""


class RecipientUnavailable(JingleFSError):
    """The contact has no online device that can receive files directly."""

    exit_code = EXIT_NO_RECIPIENT


class NegotiationError(JingleFSError):
    """The other side ended the session."""

    exit_code = EXIT_TRANSFER

    def __init__(self, msg: str = "", *, reason: str = "general-error") -> None:
        super().__init__(msg)
        self.reason = reason


class Declined(NegotiationError):
    """The recipient declined the file."""

    exit_code = EXIT_DECLINED


class NegotiationTimeout(NegotiationError):
    """The other side did not answer in time."""


class TransportError(JingleFSError):
    """No connection could be made to carry the file."""

    exit_code = EXIT_TRANSPORT


class CandidatesFailed(TransportError):
    """None of the network paths to the contact worked."""


class StreamClosed(TransportError):
    """The connection to the contact closed before the file was complete."""


class TransferError(JingleFSError):
    """The transfer failed."""

    exit_code = EXIT_TRANSFER


class ChecksumMismatch(TransferError):
    """The received file does not match the sender's checksum; it was not saved."""

    exit_code = EXIT_HASH_MISMATCH

    def __init__(self, msg: str = "", *, algo: str = "", expected: bytes = b"",
                 actual: bytes = b"") -> None:
        super().__init__(msg)
        self.algo, self.expected, self.actual = algo, expected, actual


class SizeMismatch(TransferError):
    """The sender sent a different number of bytes than it offered."""


class Cancelled(TransferError):
    """The transfer was cancelled."""

    exit_code = EXIT_CANCELLED

    def __init__(self, msg: str = "", *, by_peer: bool = False) -> None:
        super().__init__(msg)
        self.by_peer = by_peer


class StorageError(TransferError):
    """The file could not be read or written."""


def exit_code(exc: BaseException) -> int:
    """The CLI exit code for an exception (see the table at the top of this module)."""
    if isinstance(exc, JingleFSError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED
