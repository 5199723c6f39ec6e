"""JET on any transport: a :class:`~jinglefs.streams.ByteStream` that encrypts what it
sends or decrypts what it receives (XEP-0391 §3: the transport carries only ciphertext).

The one place where a JET transfer's bytes pass: the sending and receiving flows wrap the
transport's stream (SOCKS5 direct, the proxy, IBB, the data channel alike) and the
transfer engine reads and writes plaintext as before, hashing the plaintext.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import SizeMismatch
from ..streams import ByteStream
from .cipher import StreamDecryptor, StreamEncryptor
from .envelope import JetSecret
from .protocol import Security


class EncryptingStream:
    """Sends ciphertext of what it is given; :meth:`finish` sends the tag."""

    def __init__(self, inner: ByteStream, secret: JetSecret) -> None:
        self.inner = inner
        self._enc = StreamEncryptor(secret)

    async def send(self, data: bytes | memoryview) -> None:
        if data:
            await self.inner.send(self._enc.update(data))

    async def finish(self) -> None:
        """After the last byte of the file: the 16-byte tag (XEP-0391 §5)."""
        if not self._enc.done:
            await self.inner.send(self._enc.finish())

    async def receive(self, max_bytes: int) -> bytes:
        return await self.inner.receive(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class DecryptingStream:
    """Receives ``size`` bytes of plaintext out of ``size + 16`` bytes of ciphertext.

    ``receive`` reads no further than the plaintext; :meth:`verify` reads the tag and checks it
    (:class:`~jinglefs.errors.DecryptFailed` when it does not match).  After that,
    ``receive`` reads the transport as it is (more bytes there mean the sender lied).
    """

    def __init__(self, inner: ByteStream, secret: JetSecret, size: int, *,
                 hash_ciphertext: bool = False) -> None:
        self.inner = inner
        self._dec = StreamDecryptor(secret, size)
        #: sha-256 of every byte that came over the transport (ciphertext and tag), for a
        #: sender whose checksum covers the ciphertext: Conversations (docs/interop.md §3.3)
        self._ciphertext_hash = hashlib.sha256() if hash_ciphertext else None

    @property
    def ciphertext_sha256(self) -> bytes | None:
        """sha-256 of the ciphertext and tag received, if asked for."""
        return None if self._ciphertext_hash is None else self._ciphertext_hash.digest()

    def _seen(self, data: bytes) -> bytes:
        if self._ciphertext_hash is not None:
            self._ciphertext_hash.update(data)
        return data

    @property
    def verified(self) -> bool:
        return self._dec.verified

    async def receive(self, max_bytes: int) -> bytes:
        if self._dec.plaintext_left == 0:
            await self.verify()
            return await self.inner.receive(max_bytes)
        # Never more than the plaintext still missing: the tag is read by verify().
        data = await self.inner.receive(min(max(max_bytes, 1), self._dec.plaintext_left))
        if not data:
            return b""  # end of stream: the engine reports the missing bytes
        return self._dec.feed(self._seen(data))

    async def verify(self) -> None:
        """Read the rest of the tag and check it."""
        while self._dec.wanted and self._dec.plaintext_left == 0:
            data = await self.inner.receive(self._dec.wanted)
            if not data:
                raise SizeMismatch("the encrypted stream ended before its authentication tag")
            self._dec.feed(self._seen(data))
        self._dec.finish()

    async def send(self, data: bytes | memoryview) -> None:
        await self.inner.send(data)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def finish_sending(stream: ByteStream) -> None:
    """Send the tag if ``stream`` encrypts; nothing otherwise."""
    if isinstance(stream, EncryptingStream):
        await stream.finish()


def ciphertext_checksum(stream: ByteStream, expected: dict[str, bytes]) -> dict[str, bytes]:
    """The sender's digests that are about the plaintext.

    Conversations hashes the bytes it writes, which under JET are the ciphertext and tag
    (docs/interop.md §3.3).  When ``stream`` hashed the ciphertext and the sender's
    sha-256 equals it, that checksum (and its other algorithms, computed over the same
    ciphertext) says nothing about the plaintext: they are dropped here, and the caller
    counts the file as verified by that match and the AES-GCM tag.  Otherwise ``expected``
    is returned as it is, so a wrong digest still fails the plaintext check."""
    if not isinstance(stream, DecryptingStream) or stream.ciphertext_sha256 is None:
        return expected
    if expected.get("sha-256") != stream.ciphertext_sha256:
        return expected
    return {}


async def verify_received(stream: ByteStream) -> None:
    """Check the tag if ``stream`` decrypts; nothing otherwise.  Call it before the file
    is moved into place."""
    if isinstance(stream, DecryptingStream):
        await stream.verify()


@dataclass(frozen=True)
class JetKeys:
    """One file's JET: the secret that encrypts it and the ``<security/>`` that carries
    the secret to the receiver, sealed for its OMEMO devices (XEP-0396 §4).  Never
    reused: every file gets a fresh key and IV."""

    secret: JetSecret
    security: Security


T = TypeVar("T")


async def then_finish(sending: Awaitable[T], stream: ByteStream) -> T:
    """Run ``sending`` (the engine streaming the file), then send the tag if ``stream``
    encrypts."""
    result = await sending
    await finish_sending(stream)
    return result
