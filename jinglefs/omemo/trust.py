"""Trust in the contacts' OMEMO devices, and fingerprints as people compare them.

Blind trust before verification (BTBV, what Conversations and Dino do): a device of a
contact none of whose devices is verified is trusted as soon as it is seen ("blind").
Once one device of a contact is verified, a device of that contact seen later (a new
device id, or a known one with a new identity key) is *not* trusted: it is
"new-after-verified" until the user verifies it, and reported before a transfer.

A fingerprint is the device's Curve25519 identity key in hex, 8 groups of 8 (the form
Conversations and Dino show; their 0x05 key-type prefix is not shown).  Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from omemo.types import TrustLevel

__all__ = ["BLIND", "NEW_AFTER_VERIFIED", "UNDECIDED", "UNTRUSTED", "VERIFIED",
           "core_level", "decide", "grouped", "normalize_fingerprint"]

VERIFIED = "verified"
BLIND = "blind"
UNTRUSTED = "untrusted"
NEW_AFTER_VERIFIED = "new-after-verified"
#: what python-omemo stores for a device it has just seen (decided by :func:`decide`)
UNDECIDED = "undecided"

_CORE = {VERIFIED: TrustLevel.TRUSTED, BLIND: TrustLevel.TRUSTED,
         UNTRUSTED: TrustLevel.DISTRUSTED, NEW_AFTER_VERIFIED: TrustLevel.DISTRUSTED,
         UNDECIDED: TrustLevel.UNDECIDED}


def core_level(name: str) -> TrustLevel:
    """Our trust name as python-omemo's core level (unknown names are distrusted)."""
    return _CORE.get(name, TrustLevel.DISTRUSTED)


def decide(contact_levels: Iterable[str]) -> str:
    """BTBV: the level for an undecided device of a contact whose devices have these
    levels: blind unless one of them is verified."""
    return NEW_AFTER_VERIFIED if VERIFIED in set(contact_levels) else BLIND


def grouped(groups: Iterable[str]) -> str:
    """``["05ab…", …]`` groups (python-omemo's ``format_identity_key``) as one line."""
    return " ".join(groups)


_HEX = re.compile(r"[0-9a-f]{64}")


def normalize_fingerprint(text: str) -> str | None:
    """What a user typed or pasted -> the grouped form, or None if it is not one.

    Spaces, colons and dashes are ignored, case too; a leading ``05`` (the key type, as
    in Conversations' raw fingerprints and xmpp: URIs) is accepted."""
    compact = re.sub(r"[\s:\-]", "", text).lower()
    if len(compact) == 66 and compact.startswith("05"):
        compact = compact[2:]
    if not _HEX.fullmatch(compact):
        return None
    return " ".join(compact[i:i + 8] for i in range(0, 64, 8))
