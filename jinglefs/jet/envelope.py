"""The interface between JET and the OMEMO key envelope.

XEP-0391 §4 keeps the transport secret (key and IV) apart from the file: it
travels inside an envelope element in the Jingle ``<security/>`` element.
XEP-0396 §3 names the envelope: the OMEMO key-transport element.  This module is
only the contract; :mod:`jinglefs.omemo` implements it with legacy OMEMO
(``eu.siacs.conversations.axolotl``), the namespace Conversations and Dino use.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal, Protocol

#: The envelope type Conversations and Dino put in ``<security type=…/>``.
LEGACY_OMEMO_TYPE = "eu.siacs.conversations.axolotl"

Trust = Literal["verified", "blind", "untrusted", "new-after-verified"]


@dataclass(frozen=True)
class JetSecret:
    """XEP-0391 §4 transport secret for ``aes-128-gcm-nopadding``."""

    key: bytes  # 16 bytes
    iv: bytes  # 12 bytes

    def __post_init__(self) -> None:
        if len(self.key) != 16:
            raise ValueError("a JET key for aes-128-gcm-nopadding is 16 bytes")
        if len(self.iv) != 12:
            raise ValueError("a JET IV for aes-128-gcm-nopadding is 12 bytes")

    def __repr__(self) -> str:  # never print key material
        return "JetSecret(<hidden>)"


@dataclass(frozen=True)
class PeerDevice:
    """One OMEMO device of a contact, as shown to users."""

    jid: str  # bare JID
    device_id: int
    fingerprint: str  # grouped hex, as shown to users
    trust: str  # "verified" | "blind" (BTBV) | "untrusted" | "new-after-verified"


class EnvelopeError(Exception):
    """The secret cannot be sealed or opened; the message is plain language."""


class KeyEnvelope(Protocol):
    """XEP-0396: the JET envelope with legacy OMEMO (eu.siacs.conversations.axolotl)."""

    envelope_type: str  # "eu.siacs.conversations.axolotl"

    async def can_encrypt_to(self, peer_bare: str) -> bool:
        """True when the peer has an OMEMO device list with usable bundles."""
        ...

    async def seal(self, peer_bare: str) -> tuple[JetSecret, ET.Element]:
        """A fresh secret and the OMEMO key-transport element carrying it.

        The element is ``<encrypted xmlns='eu.siacs.conversations.axolotl'>``
        with ``<header sid><key rid [prekey]/>…<iv/></header>`` and no payload,
        as Conversations and Dino build it (docs/interop.md §9): the per-device
        encrypted key is the 16-byte AES key, the header ``<iv/>`` the 12-byte
        IV.  Raises :class:`EnvelopeError` if no trusted device can be
        encrypted to.
        """
        ...

    async def open(self, sender_full: str, encrypted: ET.Element) -> tuple[JetSecret, PeerDevice]:
        """The secret inside ``encrypted`` and the device that sealed it.

        Raises :class:`EnvelopeError` (not for us, bad key, untrusted device, …).
        """
        ...

    def new_devices_of_verified(self, peer_bare: str) -> list[PeerDevice]:
        """Devices of a verified contact that appeared since verification."""
        ...
