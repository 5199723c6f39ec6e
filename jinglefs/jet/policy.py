"""What ``Settings.encryption`` allows (README "End-to-end encryption").

Pure decisions, one place for the sending flow, the receiving flow and the CLI:

* ``auto`` (default): JET when the contact advertises ``urn:xmpp:jingle:jet:0`` and
  ``urn:xmpp:jingle:jet-omemo:0`` (XEP-0391 §6, XEP-0396 §5) and our OMEMO envelope can
  encrypt to it; otherwise whatever the path gives (ICE: DTLS; SOCKS5, IBB: nothing);
* ``required``: the same, but without JET only the ICE rung remains (DTLS), and an
  offer that would arrive unencrypted is refused;
* ``off``: never JET; a JET offer is declined.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..api import ENCRYPTION_CHOICES as CHOICES
from ..errors import EncryptionRequired, UsageError

REQUIRED, AUTO, OFF = CHOICES
#: The one rung whose path is encrypted by itself (DTLS).
ENCRYPTED_KIND = "ice"


def check(policy: str) -> str:
    if policy not in CHOICES:
        raise UsageError(f"encryption must be one of {', '.join(CHOICES)}, not {policy!r}")
    return policy


def wants_jet(policy: str) -> bool:
    return policy != OFF


def rungs_without_jet(policy: str, kinds: Sequence[str]) -> list[str]:
    """The rungs a transfer without JET may climb: all of them, or with ``required``
    only ICE (:class:`EncryptionRequired` when the contact has no ICE)."""
    if policy != REQUIRED:
        return list(kinds)
    only = [k for k in kinds if k == ENCRYPTED_KIND]
    if not only:
        raise EncryptionRequired(
            "the contact's device takes neither OMEMO-encrypted files (JET) nor the "
            "encrypted ICE data channel")
    return only


def refuse_offer(policy: str, *, jet: bool, transport_kind: str | None) -> str | None:
    """Why an offer is refused under ``policy`` (None: it may be shown).  ``jet``: the
    offer has a ``<security/>``; ``transport_kind``: the kind of its first transport."""
    if jet and policy == OFF:
        return "this device does not take encrypted files (encryption is off here)"
    if not jet and policy == REQUIRED and transport_kind != ENCRYPTED_KIND:
        return ("this device takes only end-to-end encrypted files, and this one would "
                "travel unencrypted")
    return None


def may_switch_to(policy: str, *, jet: bool, kind: str) -> bool:
    """A transport-replace to ``kind`` keeps the file encrypted as ``policy`` demands."""
    return jet or policy != REQUIRED or kind == ENCRYPTED_KIND
