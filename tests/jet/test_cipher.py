"""Streaming AES-128-GCM as JET's aes-128-gcm-nopadding (XEP-0391 §5): ciphertext then
the 16-byte tag; the receiver holds back the tag and checks it at the end."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jinglefs.errors import DecryptFailed
from jinglefs.jet.cipher import TAG_SIZE, StreamDecryptor, StreamEncryptor, decrypt, encrypt
from jinglefs.jet.envelope import JetSecret

SECRET = JetSecret(key=bytes(range(16)), iv=bytes(range(100, 112)))


def feed_in_chunks(secret: JetSecret, wire: bytes, size: int, chunk: int) -> bytes:
    dec = StreamDecryptor(secret, size)
    out = bytearray()
    pos = 0
    while dec.wanted:
        piece = wire[pos:pos + min(chunk, dec.wanted)]
        assert piece, "the decryptor wants more than there is"
        pos += len(piece)
        out += dec.feed(piece)
    dec.finish()
    assert pos == len(wire)
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 33, 4096, 1 << 20, (1 << 20) + 7])
def test_round_trip_is_one_gcm_message_with_the_tag_last(size: int) -> None:
    data = os.urandom(size)
    wire = encrypt(SECRET, data)
    assert len(wire) == size + TAG_SIZE
    # The same bytes as one-shot AES-GCM (what Conversations' and Dino's ciphers produce).
    assert wire == AESGCM(SECRET.key).encrypt(SECRET.iv, data, None)
    assert decrypt(SECRET, wire) == data


@pytest.mark.parametrize("chunk", [1, 5, 15, 16, 17, 1000, 65536])
def test_chunk_boundaries_on_both_sides(chunk: int) -> None:
    data = os.urandom(100_003)
    enc = StreamEncryptor(SECRET)
    wire = b"".join(enc.update(data[i:i + chunk]) for i in range(0, len(data), chunk))
    wire += enc.finish()
    assert wire == encrypt(SECRET, data)
    assert hashlib.sha256(feed_in_chunks(SECRET, wire, len(data), chunk)).digest() == \
        hashlib.sha256(data).digest()


def test_the_tag_is_where_the_size_says_and_never_plaintext() -> None:
    data = b"x" * 40
    wire = encrypt(SECRET, data)
    dec = StreamDecryptor(SECRET, len(data))
    assert dec.feed(wire[:16]) == data[:16]  # decrypted as it comes
    assert dec.feed(wire[16:50]) == data[16:]  # 24 bytes of text, then 10 of the tag
    assert dec.plaintext_left == 0 and dec.wanted == 6
    assert dec.feed(wire[50:]) == b""
    dec.finish()
    assert dec.verified


@pytest.mark.parametrize("where", [0, 1, 500, 999])
def test_a_flipped_ciphertext_byte_fails_the_tag(where: int) -> None:
    wire = bytearray(encrypt(SECRET, os.urandom(1000)))
    wire[where] ^= 0x01
    with pytest.raises(DecryptFailed, match="tag does not match"):
        decrypt(SECRET, bytes(wire))


@pytest.mark.parametrize("where", range(16))
def test_a_flipped_tag_byte_fails(where: int) -> None:
    wire = bytearray(encrypt(SECRET, b"hello"))
    wire[5 + where] ^= 0x80
    with pytest.raises(DecryptFailed):
        decrypt(SECRET, bytes(wire))


def test_an_empty_file_still_has_a_tag_that_is_checked() -> None:
    wire = encrypt(SECRET, b"")
    assert len(wire) == TAG_SIZE and decrypt(SECRET, wire) == b""
    with pytest.raises(DecryptFailed):
        decrypt(SECRET, bytes(16))


def test_truncated_streams_fail() -> None:
    data = os.urandom(100)
    wire = encrypt(SECRET, data)
    dec = StreamDecryptor(SECRET, len(data))
    dec.feed(wire[:-1])
    with pytest.raises(DecryptFailed, match="ended 1 bytes early"):
        dec.finish()
    with pytest.raises(DecryptFailed):
        decrypt(SECRET, wire[:10])


def test_another_key_or_iv_fails() -> None:
    wire = encrypt(SECRET, b"secret file")
    with pytest.raises(DecryptFailed):
        decrypt(JetSecret(key=bytes(16), iv=SECRET.iv), wire)
    with pytest.raises(DecryptFailed):
        decrypt(JetSecret(key=SECRET.key, iv=bytes(12)), wire)


def test_bytes_beyond_the_tag_are_refused() -> None:
    dec = StreamDecryptor(SECRET, 4)
    with pytest.raises(DecryptFailed, match="more than the file"):
        dec.feed(bytes(21))


def test_secrets_have_the_cipher_sizes_and_never_print() -> None:
    with pytest.raises(ValueError):
        JetSecret(key=bytes(32), iv=bytes(12))
    with pytest.raises(ValueError):
        JetSecret(key=bytes(16), iv=bytes(16))
    assert SECRET.key.hex() not in repr(SECRET)
