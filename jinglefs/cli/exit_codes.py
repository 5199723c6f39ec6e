"""The exit codes of the ``jinglefs`` command as ``--help`` explains them.

Which exception ends with which code is :data:`jinglefs.errors.ERROR_KINDS`
(:func:`jinglefs.errors.exit_code_for`); the numbers never change meaning (README).
"""

from __future__ import annotations

from ..errors import (
    EXIT_AUTH,
    EXIT_CANCELLED,
    EXIT_CONNECT,
    EXIT_DECLINED,
    EXIT_DECRYPT_FAILED,
    EXIT_ENCRYPTION_REQUIRED,
    EXIT_FAILED,
    EXIT_HASH_MISMATCH,
    EXIT_INTERRUPTED,
    EXIT_NO_RECIPIENT,
    EXIT_OK,
    EXIT_TRANSFER,
    EXIT_TRANSPORT,
    EXIT_UNANSWERED,
    EXIT_USAGE,
)

__all__ = ["EXIT_CODE_TABLE"]

#: (code, meaning), shown in --help.
EXIT_CODE_TABLE: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "every file was sent/received (the result line says whether it was"
              " verified)"),
    (EXIT_FAILED, "any other failure; receive: --count not reached before --timeout"),
    (EXIT_USAGE, "bad arguments or configuration (missing or unreadable input file, no"
                 " account, no password, --allow-plaintext for a remote server)"),
    (EXIT_CONNECT, "could not connect to the XMPP server (receive: connection lost)"),
    (EXIT_AUTH, "the server refused the account or password"),
    (EXIT_NO_RECIPIENT, "the recipient has no online device that can receive files"),
    (EXIT_TRANSPORT, "no network path could carry the file"),
    (EXIT_TRANSFER, "the transfer failed (or the peer ended the session)"),
    (EXIT_HASH_MISMATCH, "the file arrived but its checksum did not match; it was not kept"),
    (EXIT_CANCELLED, "the transfer was cancelled (by the peer)"),
    (EXIT_DECLINED, "the recipient declined the file"),
    (EXIT_UNANSWERED, "the contact's app did not answer the offer (it may drop offers from"
                      " people without an open chat)"),
    (EXIT_DECRYPT_FAILED, "an encrypted file failed to decrypt (altered, or its key could not"
                          " be opened); nothing was kept"),
    (EXIT_ENCRYPTION_REQUIRED, "--encryption required, but the transfer could not be"
                               " encrypted"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C / SIGTERM): every session was ended (the"
                       " peer sees cancelled or declined)"),
)

