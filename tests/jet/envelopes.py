"""A stand-in key envelope for tests that are about the stream, not about OMEMO: it
"seals" the secret in clear inside an element shaped like the legacy OMEMO key transport
(never use it outside tests).  The e2e tests use the real OMEMO envelope
(jinglefs.omemo) when it is there."""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET

from jinglefs.jet.envelope import EnvelopeError, JetSecret, PeerDevice
from jinglefs.jet.protocol import LEGACY_OMEMO


def _q(name: str) -> str:
    return f"{{{LEGACY_OMEMO}}}{name}"


class ClearEnvelope:
    """Seals with a fresh random secret written in the element; opens what it sealed.
    ``refuse`` makes :meth:`open` fail (an envelope that is not for us)."""

    envelope_type = LEGACY_OMEMO

    def __init__(self, *, refuse: bool = False, reachable: bool = True) -> None:
        self.refuse = refuse
        self.reachable = reachable
        self.sealed: list[JetSecret] = []

    async def can_encrypt_to(self, peer_bare: str) -> bool:
        return self.reachable

    async def seal(self, peer_bare: str) -> tuple[JetSecret, ET.Element]:
        secret = JetSecret(key=os.urandom(16), iv=os.urandom(12))
        self.sealed.append(secret)
        el = ET.Element(_q("encrypted"))
        header = ET.SubElement(el, _q("header"), {"sid": "1"})
        ET.SubElement(header, _q("key"), {"rid": "2"}).text = \
            base64.b64encode(secret.key).decode()
        ET.SubElement(header, _q("iv")).text = base64.b64encode(secret.iv).decode()
        return secret, el

    async def open(self, sender_full: str, encrypted: ET.Element
                   ) -> tuple[JetSecret, PeerDevice]:
        if self.refuse:
            raise EnvelopeError("the key is not for this device")
        key = encrypted.findtext(f"{_q('header')}/{_q('key')}") or ""
        iv = encrypted.findtext(f"{_q('header')}/{_q('iv')}") or ""
        secret = JetSecret(key=base64.b64decode(key), iv=base64.b64decode(iv))
        return secret, PeerDevice(sender_full.split("/")[0], 1, "00" * 32, "blind")

    def new_devices_of_verified(self, peer_bare: str) -> list[PeerDevice]:
        return []
