"""The JET ``<security/>`` element (XEP-0391 §4.1) with the OMEMO envelope (XEP-0396 §2).

Pure: XML in, values out, no I/O.  What deployed clients put in a ``<content/>``
(docs/interop.md §9)::

    <security xmlns='urn:xmpp:jingle:jet:0' name='0'
              cipher='urn:xmpp:ciphers:aes-128-gcm-nopadding'
              type='eu.siacs.conversations.axolotl'>
      <encrypted xmlns='eu.siacs.conversations.axolotl'>…</encrypted>
    </security>

Conversations writes ``name`` (the content's name) and ignores a ``<security/>`` without
it; Dino writes no ``name`` and accepts one.  So we always write it and accept either.
The element is only in session-initiate: session-accept does not echo it (Dino's and
Conversations' accept carry description and transport only).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass, field

#: XEP-0391 §6 namespace and disco feature.
JET = "urn:xmpp:jingle:jet:0"
#: XEP-0396 §5 disco feature: JET with the OMEMO envelope.
JET_OMEMO = "urn:xmpp:jingle:jet-omemo:0"
#: XEP-0391 §5: the one cipher Conversations and Dino implement.
AES_128_GCM_NOPADDING = "urn:xmpp:ciphers:aes-128-gcm-nopadding"
#: XEP-0396 §2: legacy OMEMO (the envelope type both clients send).
LEGACY_OMEMO = "eu.siacs.conversations.axolotl"
#: The features a peer advertises when it takes JET-OMEMO (Dino checks both).
FEATURES: tuple[str, ...] = (JET, JET_OMEMO)


class MalformedSecurity(ValueError):
    """A ``<security/>`` without cipher or type, or without an envelope."""


@dataclass(frozen=True)
class Security:
    """One content's ``<security/>``: which cipher, which envelope, and the envelope."""

    cipher: str
    type: str
    #: the envelope element (for OMEMO: ``<encrypted xmlns='eu.siacs.conversations.axolotl'>``)
    envelope: ET.Element = field(compare=False, repr=False)
    #: the ``name`` attribute as received (Dino sends none); ignored when encoding
    name: str | None = None

    @property
    def supported(self) -> bool:
        """The cipher and envelope jinglefs implements (XEP-0391 §5, XEP-0396 §2)."""
        return self.cipher == AES_128_GCM_NOPADDING and self.type == LEGACY_OMEMO


def _q(name: str) -> str:
    return f"{{{JET}}}{name}"


def is_security(el: ET.Element) -> bool:
    return el.tag == _q("security")


def parse_security(el: ET.Element) -> Security:
    """A ``<security xmlns='urn:xmpp:jingle:jet:0'>`` element (XEP-0391 §4.1)."""
    if not is_security(el):
        raise MalformedSecurity("not a JET security element")
    cipher, type_ = el.get("cipher"), el.get("type")
    if not cipher or not type_:
        # Dino answers bad-request for these (docs/interop.md §9).
        raise MalformedSecurity("JET security element without cipher or type")
    children = list(el)
    # The envelope is the child in the namespace ``type`` names; else the only child.
    envelope = next((c for c in children if c.tag.startswith(f"{{{type_}}}")), None)
    if envelope is None and len(children) == 1:
        envelope = children[0]
    if envelope is None:
        raise MalformedSecurity("JET security element without its key envelope")
    return Security(cipher=cipher, type=type_, envelope=envelope, name=el.get("name"))


def encode_security(security: Security, content_name: str) -> ET.Element:
    """The element for a content named ``content_name`` (Conversations needs ``name``)."""
    el = ET.Element(_q("security"), {"name": content_name, "cipher": security.cipher,
                                     "type": security.type})
    el.append(security.envelope)
    return el


def omemo_security(envelope: ET.Element) -> Security:
    """The ``<security/>`` jinglefs sends: AES-128-GCM, legacy OMEMO envelope."""
    return Security(cipher=AES_128_GCM_NOPADDING, type=LEGACY_OMEMO, envelope=envelope)


def peer_takes_jet(features: Collection[str]) -> bool:
    """The peer advertises JET and its OMEMO envelope (XEP-0391 §6, XEP-0396 §5)."""
    return all(f in features for f in FEATURES)
