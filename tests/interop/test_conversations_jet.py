"""jinglefs receiving from a Conversations 2.x-shaped sender in an OMEMO chat
(docs/interop.md §3.3, §9): the offer carries a JET ``<security/>`` *with* ``name``, the
bytes are AES-128-GCM ciphertext plus the tag, and the checksum Conversations sends right
after the last byte is the sha-256 (and sha-1) of those encrypted bytes, not of the file.

The sender's OMEMO device is the independent one of the Dino-shaped peer
(tests/interop/dino_jet.py): Conversations and Dino seal the JET secret alike (§9).
"""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from jinglefs.errors import ChecksumMismatch
from jinglefs.events import Completed, Protection, TransferEvent, Verification
from tests.e2e.conftest import BOUND, first_offer, logged_in
from tests.servers.prosody import ProsodyServer

from . import conversations as conv
from .dino_jet import AES_128_GCM, JET, OMEMO, DinoOmemo, encrypt, new_secret
from .peer import random_data, sha256

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def security_with_name(encrypted: ET.Element) -> Callable[[str], str]:
    """``Content.setSecurity``: the content's name, cipher, type and the OMEMO envelope."""
    envelope = ET.tostring(encrypted, encoding="unicode")
    return lambda content: (f"<security xmlns='{JET}' name='{content}' "
                            f"cipher='{AES_128_GCM}' type='{OMEMO}'>{envelope}</security>")


async def conversations_sends_encrypted(prosody: ProsodyServer, tmp_path: Path, size: int,
                                        *, wrong_checksum: bool = False
                                        ) -> tuple[TransferEvent | BaseException, bytes, Path]:
    t = os.urandom(3).hex()
    data = random_data(size)
    async with (conv.conversations_peer(prosody, "alice", f"cj-{t}") as peer,
                logged_in(prosody, "bob", f"b-{t}") as bob):
        device = await DinoOmemo.start(peer)
        try:
            secret = new_secret()
            security = security_with_name(await device.seal(bob.jid, secret))
            wire = encrypt(secret, data)
            # A lying sender: a checksum of other bytes, neither the ciphertext nor the file.
            checksum_over = random_data(len(wire)) if wrong_checksum else None
            sending = asyncio.ensure_future(conv.send_file(
                peer, bob.jid, wire, "photo.jpg", size=len(data), security=security,
                checksum_over=checksum_over))
            offer = await first_offer(bob)
            assert [(f.name, f.size) for f in offer.files] == [("photo.jpg", size)]
            inbox = tmp_path / "inbox"
            inbox.mkdir()
            [got] = await offer.accept(inbox)
            done: TransferEvent | BaseException
            try:
                done = await asyncio.wait_for(got.wait(), BOUND)
            except ChecksumMismatch as e:
                done = e
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        finally:
            await device.aclose()
    return done, data, inbox


async def test_conversations_2_x_encrypted_file_verified_by_its_ciphertext_checksum(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    done, data, inbox = await conversations_sends_encrypted(prosody, tmp_path, 300_001)
    assert isinstance(done, Completed), done
    assert Path(done.path).read_bytes() == data
    assert list(inbox.iterdir()) == [Path(done.path)]
    assert done.protection is Protection.OMEMO
    # Its checksum covered the ciphertext: it matched those bytes, so the file counts as
    # verified that way, and the digest jinglefs reports is still the file's own.
    assert done.verification is Verification.CIPHERTEXT_HASH and done.verified
    assert done.hashes["sha-256"] == sha256(data)


async def test_conversations_2_x_encrypted_file_with_a_wrong_checksum_is_not_kept(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    done, _, inbox = await conversations_sends_encrypted(prosody, tmp_path, 70_000,
                                                         wrong_checksum=True)
    assert isinstance(done, ChecksumMismatch), done
    assert list(inbox.iterdir()) == []
