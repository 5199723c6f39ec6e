"""Streaming AES-128-GCM for JET's ``aes-128-gcm-nopadding`` (XEP-0391 §5).

What travels, as Conversations and Dino do it (docs/interop.md §9): the whole file as one
GCM stream under the session's key and IV, then the 16-byte tag.  ``<size>`` stays the
plaintext size, so ``size + 16`` bytes cross the transport.  Memory is constant: each
chunk is encrypted or decrypted as it passes; the receiver knows from ``<size>`` where
the tag begins and checks it at the end.  Until then nothing it decrypted may be
trusted, so the caller keeps it under the partial name.

Pure computation: no I/O, no clock.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import DecryptFailed
from .envelope import JetSecret

#: GCM authentication tag length, appended after the ciphertext.
TAG_SIZE = 16


class StreamEncryptor:
    """Encrypts a file chunk by chunk; :meth:`finish` gives the tag to send last."""

    def __init__(self, secret: JetSecret) -> None:
        self._enc = Cipher(algorithms.AES(secret.key), modes.GCM(secret.iv)).encryptor()
        self.done = False

    def update(self, data: bytes | memoryview) -> bytes:
        return self._enc.update(data)

    def finish(self) -> bytes:
        """The 16-byte tag (after any last ciphertext, which GCM never holds back)."""
        tail = self._enc.finalize()
        self.done = True
        return tail + self._enc.tag


class StreamDecryptor:
    """Decrypts ``size`` plaintext bytes that arrive as ``size + 16`` bytes.

    The offer's ``<size>`` says where the ciphertext ends and the tag begins, so each
    chunk is decrypted as it comes (no bytes held back, no copy): :meth:`feed` returns
    the plaintext of the ciphertext in ``data`` and keeps what follows as the tag;
    :attr:`wanted` is how many bytes are still expected, so the caller never reads past
    the tag; :meth:`finish` checks it.
    """

    def __init__(self, secret: JetSecret, size: int) -> None:
        if size < 0:
            raise ValueError("negative size")
        self._dec = Cipher(algorithms.AES(secret.key), modes.GCM(secret.iv)).decryptor()
        self._tag = b""
        #: ciphertext + tag bytes still expected
        self.wanted = size + TAG_SIZE
        #: plaintext bytes not released yet
        self.plaintext_left = size
        self.verified = False

    def feed(self, data: bytes | memoryview) -> bytes:
        """Plaintext for the ciphertext in ``data`` (empty for tag bytes)."""
        n = len(data)
        if n > self.wanted:
            raise DecryptFailed(f"{n - self.wanted} bytes more than the file and its tag")
        self.wanted -= n
        body = min(n, self.plaintext_left)
        if body == n:
            out = self._dec.update(data)
        else:
            view = memoryview(data)
            out = self._dec.update(view[:body]) if body else b""
            self._tag += bytes(view[body:])
        self.plaintext_left -= body
        return out

    def finish(self) -> None:
        """Check the tag once every byte arrived; :class:`DecryptFailed` if it fails."""
        if self.verified:
            return
        if self.wanted or len(self._tag) != TAG_SIZE:
            raise DecryptFailed(f"the encrypted stream ended {self.wanted} bytes early")
        try:
            self._dec.finalize_with_tag(self._tag)
        except InvalidTag:
            raise DecryptFailed("the authentication tag does not match: the file was "
                                "altered on the way, or encrypted with another key") from None
        self.verified = True


def encrypt(secret: JetSecret, data: bytes) -> bytes:
    """The whole of ``data`` as it travels: ciphertext, then the tag (tests, small files)."""
    enc = StreamEncryptor(secret)
    return enc.update(data) + enc.finish()


def decrypt(secret: JetSecret, wire: bytes) -> bytes:
    """The inverse of :func:`encrypt`; :class:`DecryptFailed` on a bad tag or length."""
    if len(wire) < TAG_SIZE:
        raise DecryptFailed("shorter than an authentication tag")
    dec = StreamDecryptor(secret, len(wire) - TAG_SIZE)
    out = dec.feed(wire)
    dec.finish()
    return out
