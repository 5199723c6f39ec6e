"""The accept policy of :class:`~jinglefs.api.Settings`, one rule for every front end.

The client applies it to each incoming offer before any front end sees it
(:meth:`jinglefs.client.Client._offer_received`): an offer it refuses is declined at once
(XEP-0166 §6.7 and §7.4: ``session-terminate`` with ``<decline/>`` and a ``<text/>`` saying
why, so the sender gets :class:`~jinglefs.errors.Declined`) and announced as
:class:`~jinglefs.api.OfferDeclined`.  Offers it lets through are up to the front end
(accept, ask, decline).  The rule:

1. ``accept_from`` non-empty and the sender's bare JID not in it: refused;
2. ``max_size`` set and a file of the offer larger than it: refused (the whole offer).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .api import Settings
from .events import FileInfo
from .jid import bare_jid
from .text import format_size

__all__ = ["NOT_ALLOWED", "TOO_LARGE", "Refusal", "refusal"]

#: :attr:`Refusal.rule` when the sender is not in ``Settings.accept_from``.
NOT_ALLOWED = "sender-not-allowed"
#: :attr:`Refusal.rule` when a file is larger than ``Settings.max_size``.
TOO_LARGE = "too-large"


@dataclass(frozen=True)
class Refusal:
    """Why an offer is declined."""

    rule: str  # NOT_ALLOWED or TOO_LARGE
    #: for the local user (names the peer and the file)
    text: str
    #: for the sender, in the session-terminate ``<text/>`` (says nothing about our list)
    peer_text: str
    #: the first file over ``max_size`` (TOO_LARGE only)
    file: FileInfo | None = None


def refusal(settings: Settings, peer: str, files: Sequence[FileInfo]) -> Refusal | None:
    """The :class:`Refusal` for an offer of ``files`` from ``peer``, or None to let it through."""
    allowed = {bare_jid(j) for j in settings.accept_from}
    if allowed and bare_jid(peer) not in allowed:
        return Refusal(NOT_ALLOWED, f"{bare_jid(peer)} is not in accept_from",
                       "not accepting files from this sender")
    limit = settings.max_size
    if limit is not None:
        big = next((f for f in files if f.size > limit), None)
        if big is not None:
            return Refusal(TOO_LARGE, f"{big.name} ({format_size(big.size)}) is larger than "
                                      f"max_size {format_size(limit)}",
                           f"the file is larger than {format_size(limit)}", big)
    return None
