"""The legacy OMEMO backend (``eu.siacs.conversations.axolotl``), able to carry a JET key.

XEP-0396 §4: the JET transport secret travels in an OMEMO key-transport message, an
``<encrypted/>`` with a ``<header/>`` and no ``<payload/>``: each per-device ``<key/>``
encrypts the 16-byte AES key alone, and the header's ``<iv/>`` is the 12-byte IV
(Conversations' ``XmppAxolotlMessage`` and Dino's ``jet_omemo``, docs/interop.md §9).

python-omemo builds exactly that for its own empty messages (``Oldmemo.encrypt_empty``:
a fresh 16-byte key, no tag, a fresh 12-byte IV), but ``SessionManager.encrypt`` always
encrypts a plaintext, whose key material is the key *and* the 16-byte GCM tag.  The one
change here: encrypting the empty plaintext builds that empty message instead.  An empty
chat message has no use, so nothing else changes; ``SessionManager.encrypt`` then does
everything else (device lists, trust, sessions, new key exchanges) and returns the plain
key material it used, as it documents "for things like legacy OMEMO's
KeyTransportMessages".  Opening needs no change: ``SessionManager.decrypt`` returns the
plain key material too.
"""

from __future__ import annotations

from oldmemo.oldmemo import ContentImpl, Oldmemo, PlainKeyMaterialImpl

__all__ = ["KEY_TRANSPORT", "KeyTransportOldmemo"]

#: the plaintext that asks for a key-transport message
KEY_TRANSPORT = b""


class KeyTransportOldmemo(Oldmemo):
    """:class:`oldmemo.Oldmemo` whose empty plaintext is a key-transport message."""

    async def encrypt_plaintext(self, plaintext: bytes) -> tuple[ContentImpl, PlainKeyMaterialImpl]:
        if plaintext == KEY_TRANSPORT:
            return await self.encrypt_empty()
        return await super().encrypt_plaintext(plaintext)
