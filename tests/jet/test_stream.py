"""JET around a byte stream: the transfer engine reads and writes plaintext, the transport
carries ciphertext then the tag (XEP-0391 §3), and a bad tag leaves nothing on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from jinglefs.errors import DecryptFailed, SizeMismatch
from jinglefs.jet.cipher import TAG_SIZE, encrypt
from jinglefs.jet.envelope import JetSecret
from jinglefs.jet.stream import (
    DecryptingStream,
    EncryptingStream,
    then_finish,
    verify_received,
)
from jinglefs.streams import ByteStream, memory_stream_pair
from jinglefs.transfer.receiver import IncomingFile
from jinglefs.transfer.sender import send_file

SECRET = JetSecret(key=os.urandom(16), iv=os.urandom(12))


class Tap:
    """A stream that records what crosses it and can flip one byte on the way."""

    def __init__(self, inner: ByteStream, flip_at: int | None = None) -> None:
        self.inner, self.flip_at, self.seen = inner, flip_at, bytearray()

    async def send(self, data: bytes | memoryview) -> None:
        data = bytearray(data)
        start = len(self.seen)
        if self.flip_at is not None and start <= self.flip_at < start + len(data):
            data[self.flip_at - start] ^= 0x01
        self.seen += data
        await self.inner.send(bytes(data))

    async def receive(self, max_bytes: int) -> bytes:
        return await self.inner.receive(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def transfer(tmp_path: Path, data: bytes, flip_at: int | None = None
                   ) -> tuple[Tap, IncomingFile, BaseException | None]:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    a, b = memory_stream_pair()
    tap = Tap(a, flip_at)
    wire = EncryptingStream(tap, SECRET)
    incoming = IncomingFile.create(dest, "got.bin", len(data), peer="a@x",
                                   state_dir=tmp_path / "state")
    reader = DecryptingStream(b, SECRET, len(data))

    async def receive() -> None:
        await incoming.receive(reader)
        await verify_received(reader)

    async def send() -> None:
        await then_finish(send_file(wire, src, chunk_size=65536), wire)
        await wire.aclose()

    results = await asyncio.gather(send(), receive(), return_exceptions=True)
    assert results[0] is None
    error = results[1] if isinstance(results[1], BaseException) else None
    return tap, incoming, error


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * (1 << 20) + 5])
async def test_the_engine_round_trips_plaintext_over_ciphertext(tmp_path: Path,
                                                                size: int) -> None:
    data = os.urandom(size)
    tap, incoming, error = await transfer(tmp_path, data)
    assert error is None
    assert bytes(tap.seen) == encrypt(SECRET, data)  # what the transport carried
    assert len(tap.seen) == size + TAG_SIZE
    final = incoming.finish({"sha-256": hashlib.sha256(data).digest()})
    assert final.read_bytes() == data and incoming.verified


async def test_no_plaintext_crosses_the_transport(tmp_path: Path) -> None:
    data = b"the plaintext marker " * 5000
    tap, incoming, error = await transfer(tmp_path, data)
    assert error is None and b"plaintext marker" not in tap.seen
    incoming.abort()


@pytest.mark.parametrize("where", ["first", "middle", "tag"])
async def test_a_flipped_byte_fails_and_the_partial_goes(tmp_path: Path, where: str) -> None:
    data = os.urandom(200_000)
    flip_at = {"first": 0, "middle": 100_000, "tag": len(data) + 3}[where]
    _, incoming, error = await transfer(tmp_path, data, flip_at)
    assert isinstance(error, DecryptFailed)
    assert incoming.part_path is not None and incoming.part_path.exists()
    incoming.abort(keep_partial=False)  # what receiving.run_receiver does for JET
    assert list((tmp_path / "dest").iterdir()) == []


async def test_a_stream_that_stops_before_the_tag_is_short(tmp_path: Path) -> None:
    a, b = memory_stream_pair()
    reader = DecryptingStream(b, SECRET, 10)
    await a.send(encrypt(SECRET, bytes(10))[:-4])
    await a.aclose()
    got = b""
    while len(got) < 10:
        got += await reader.receive(10 - len(got))
    # the 10 bytes of text arrived, 12 of the 16 tag bytes: the tag check says so
    assert got == bytes(10) and not reader.verified
    with pytest.raises(SizeMismatch):
        await reader.verify()


async def test_verify_reads_the_rest_of_the_tag(tmp_path: Path) -> None:
    a, b = memory_stream_pair()
    reader = DecryptingStream(b, SECRET, 0)
    await a.send(encrypt(SECRET, b"")[:5])
    await a.aclose()
    with pytest.raises(SizeMismatch):
        await reader.verify()


async def test_after_the_tag_surplus_bytes_are_visible(tmp_path: Path) -> None:
    a, b = memory_stream_pair()
    reader = DecryptingStream(b, SECRET, 3)
    await a.send(encrypt(SECRET, b"abc") + b"extra")
    assert await reader.receive(100) == b"abc"
    await reader.verify()
    assert reader.verified and await reader.receive(100) == b"extra"
