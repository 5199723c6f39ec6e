"""jinglefs against a Dino 0.4 peer with OMEMO on (tests/interop/dino_jet.py, docs/interop.md
§4 and §9) on the real Prosody: JET-OMEMO files both ways over SOCKS5 direct, proxy65 and
IBB. The peer's OMEMO device is python-omemo's own, not jinglefs.omemo: the key travels
between two independent implementations. Files are compared by sha-256; what jinglefs
reports ("encrypted (OMEMO)", the error of a bad tag) is asserted; a tampered stream
leaves no file."""

from __future__ import annotations

import asyncio
import base64
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jinglefs import errors
from jinglefs.api import Settings
from jinglefs.client import Client
from jinglefs.events import Completed, PathKind, Protection, TransportSelected
from jinglefs.jet.protocol import peer_takes_jet
from tests.e2e.conftest import BOUND, FAST, first_offer, logged_in, make_file
from tests.servers.prosody import ProsodyServer

from . import dino_jet as dj
from .peer import FT, JINGLE, PeerError, sha256

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

NS = f"{{{dj.OMEMO}}}"
#: no SOCKS5 path works: Dino's own transport-replace to IBB (docs/interop.md §4.4)
IBB_ONLY: dict[str, Any] = {"dead_direct": True, "dial": False}
NO_S5B = replace(FAST, s5b_direct=False, use_proxy=False)


def tag() -> str:
    return os.urandom(3).hex()


def fresh_users(prosody: ProsodyServer, *names: str) -> list[str]:
    """New accounts for this test: PEP on the shared server keeps other tests' devices."""
    t = tag()
    users = [f"{name}-{t}" for name in names]
    for user in users:
        prosody.add_account(user)
    return users


@asynccontextmanager
async def dino_and_jinglefs(prosody: ProsodyServer, settings: Settings = FAST
                            ) -> AsyncIterator[tuple[dj.DinoJetPeer, Client]]:
    """A Dino peer with its OMEMO device and a jinglefs client with its own, both on PEP."""
    dino_user, jfs_user = fresh_users(prosody, "dino", "jfs")
    async with (dj.dino_jet_peer(prosody, dino_user, "dino") as peer,
                logged_in(prosody, jfs_user, "jfs", settings) as client):
        assert client.omemo is not None, client.omemo_error
        # each sees the other's device list by PEP
        assert await peer.omemo.device_ids(client.jid) == {client.omemo.device_id}
        [seen] = await client.omemo.devices(prosody.jid(dino_user))
        assert seen.device_id == peer.omemo.device_id
        yield peer, client


def flip(at: int) -> Callable[[bytes], bytes]:
    def tamper(wire: bytes) -> bytes:
        out = bytearray(wire)
        out[at] ^= 0x01
        return bytes(out)
    return tamper


def assert_dino_security(security: ET.Element, sender_device: int, recipient: int,
                         secret: dj.Secret) -> None:
    """The shape Dino sends (docs/interop.md §9): no name, its cipher and type, the
    envelope with the IV first and one key, a key exchange, for the recipient."""
    assert security.tag == f"{{{dj.JET}}}security" and "name" not in security.attrib
    assert security.get("cipher") == dj.AES_128_GCM and security.get("type") == dj.OMEMO
    [encrypted] = list(security)
    assert encrypted.tag == f"{NS}encrypted" and encrypted.find(f"{NS}payload") is None
    header = encrypted.find(f"{NS}header")
    assert header is not None and header.get("sid") == str(sender_device)
    assert [child.tag for child in header] == [f"{NS}iv", f"{NS}key"]
    assert base64.b64decode(header[0].text or "") == secret.iv
    assert len(secret.iv) == 12 and len(secret.key) == 16
    assert header[1].get("rid") == str(recipient) and header[1].get("prekey") == "true"


# ---------------------------------------------------------------- the peer on its own


async def test_dino_0_4_peer_seals_and_opens_its_own_jet_keys(prosody: ProsodyServer
                                                              ) -> None:
    # Two Dino peers, no jinglefs: the peer's PEP, envelope and cipher agree with
    # themselves before they are held against jinglefs.
    a_user, b_user = fresh_users(prosody, "dino-a", "dino-b")
    async with (dj.dino_jet_peer(prosody, a_user, "a") as a,
                dj.dino_jet_peer(prosody, b_user, "b") as b):
        assert await a.omemo.device_ids(b.jid) == {b.omemo.device_id}
        assert sorted(b.omemo.pep.published) == \
            [f"{dj.BUNDLES_NODE}:{b.omemo.device_id}", dj.DEVICE_LIST_NODE]
        secret = dj.new_secret()
        xml = dj.security_xml(await a.omemo.seal(b.jid, secret))
        security = ET.fromstring(xml)
        assert_dino_security(security, a.omemo.device_id, b.omemo.device_id, secret)
        assert await b.omemo.open(a.jid, security) == secret
        # the second secret rides the same OMEMO session
        again = dj.new_secret()
        assert await b.omemo.open(a.jid, ET.fromstring(
            dj.security_xml(await a.omemo.seal(b.jid, again)))) == again
        # not for this device: Dino's not-acceptable
        with pytest.raises(dj.DinoRefused) as refused:
            await a.omemo.open(b.jid, security)
        assert refused.value.condition == "not-acceptable"
        security.set("cipher", "urn:xmpp:ciphers:aes-256-gcm-nopadding")
        with pytest.raises(dj.DinoRefused) as refused:
            await b.omemo.open(a.jid, security)
        assert refused.value.condition == "feature-not-implemented"

    data = os.urandom(70_001)
    wire = dj.encrypt(secret, data)
    assert len(wire) == len(data) + dj.TAG_SIZE and data[:64] not in wire
    assert dj.decrypt(secret, wire) == data
    for at in (10, len(data) + 3):
        with pytest.raises(PeerError, match="tag"):
            dj.decrypt(secret, flip(at)(wire))


# ---------------------------------------------------------------- Dino sends


async def dino_sends(prosody: ProsodyServer, tmp_path: Path, size: int,
                     settings: Settings = FAST, **kw: Any
                     ) -> tuple[dj.Sent, Completed, bytes, list[TransportSelected]]:
    data = os.urandom(size)
    async with dino_and_jinglefs(prosody, settings) as (peer, client):
        assert client.omemo is not None
        sending = asyncio.ensure_future(dj.send_encrypted_file(peer, client.jid, data,
                                                               "photo.jpg", **kw))
        offer = await first_offer(client)
        assert [(f.name, f.size) for f in offer.files] == [("photo.jpg", size)]
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [got] = await offer.accept(inbox)
        done = await asyncio.wait_for(got.wait(), BOUND)
        sent = await asyncio.wait_for(sending, BOUND)
        selected = [e async for e in got.events() if isinstance(e, TransportSelected)]
        assert isinstance(done, Completed), done
        assert Path(done.path).read_bytes() == data
        assert list(inbox.iterdir()) == [Path(done.path)]
        assert done.hashes["sha-256"] == sha256(data)
        # Dino sends no hash (docs/interop.md §4.3): complete, not verified, said why
        assert not done.verified and done.reason
        assert done.protection is Protection.OMEMO
        assert done.to_json()["protection"] == "encrypted (OMEMO)"
        assert selected and selected[-1].protection is Protection.OMEMO
        assert selected[-1].encrypted
        assert sent.outcome.terminate_reason == "success"
        # what travelled: size + 16 bytes, never the plaintext
        assert len(sent.wire) == size + dj.TAG_SIZE
        assert data[:64] not in sent.wire and data[-64:] not in sent.wire
        assert_dino_security(sent.security, peer.omemo.device_id, client.omemo.device_id,
                             sent.secret)
        return sent, done, data, selected


async def test_dino_0_4_sends_encrypted_file_over_s5b_direct(prosody: ProsodyServer,
                                                            tmp_path: Path) -> None:
    sent, _, _, selected = await dino_sends(prosody, tmp_path, 300_001)
    assert sent.outcome.transport == "s5b"
    assert [e.path for e in selected] == [PathKind.S5B_DIRECT]


async def test_dino_0_4_sends_encrypted_file_over_proxy65(prosody: ProsodyServer,
                                                         tmp_path: Path) -> None:
    sent, _, _, selected = await dino_sends(prosody, tmp_path, 200_003,
                                            replace(FAST, s5b_direct=False),
                                            proxy_jid=prosody.proxy_jid, dead_direct=True)
    assert sent.outcome.transport == "s5b"
    assert [e.path for e in selected] == [PathKind.S5B_PROXY]


async def test_dino_0_4_sends_encrypted_file_over_ibb(prosody: ProsodyServer,
                                                     tmp_path: Path) -> None:
    # Both sides report candidate-error; Dino replaces with IBB (docs/interop.md §4.4)
    # and the encrypted stream, tag last, goes in 4096-byte blocks.
    sent, _, _, selected = await dino_sends(prosody, tmp_path, 70_000, NO_S5B, **IBB_ONLY)
    assert sent.outcome.transport == "ibb"
    assert selected[-1].path is PathKind.IBB


@pytest.mark.parametrize("what", ["ciphertext", "tag"])
async def test_dino_0_4_tampered_encrypted_file_leaves_nothing(
        prosody: ProsodyServer, tmp_path: Path, what: str) -> None:
    size = 100_000
    at = size // 2 if what == "ciphertext" else size + 7
    async with dino_and_jinglefs(prosody) as (peer, client):
        sending = asyncio.ensure_future(dj.send_encrypted_file(
            peer, client.jid, os.urandom(size), "altered.bin", tamper=flip(at)))
        offer = await first_offer(client)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [got] = await offer.accept(inbox)
        with pytest.raises(errors.DecryptFailed) as failed:
            await asyncio.wait_for(got.wait(), BOUND)
        sent = await asyncio.wait_for(sending, BOUND)
        # the documented error: kind decrypt-failed, exit code 12, security-error to Dino
        assert errors.kind_of(failed.value) == "decrypt-failed"
        assert failed.value.exit_code == 12
        assert sent.outcome.terminate_reason == "security-error"
        assert list(inbox.iterdir()) == []  # no file, no partial


async def test_dino_0_4_tampered_encrypted_file_over_ibb_leaves_nothing(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    size = 50_000
    async with dino_and_jinglefs(prosody, NO_S5B) as (peer, client):
        sending = asyncio.ensure_future(dj.send_encrypted_file(
            peer, client.jid, os.urandom(size), "altered.bin", tamper=flip(size + 15),
            **IBB_ONLY))
        offer = await first_offer(client)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [got] = await offer.accept(inbox)
        with pytest.raises(errors.DecryptFailed):
            await asyncio.wait_for(got.wait(), BOUND)
        sent = await asyncio.wait_for(sending, BOUND)
        assert sent.outcome.transport == "ibb"
        assert sent.outcome.terminate_reason == "security-error"
        assert list(inbox.iterdir()) == []


# ---------------------------------------------------------------- Dino receives


async def dino_receives(prosody: ProsodyServer, tmp_path: Path, size: int,
                        transport: str | None, settings: Settings = FAST, **kw: Any
                        ) -> tuple[dj.Received, Completed, bytes]:
    async with dino_and_jinglefs(prosody, settings) as (peer, client):
        # Dino's caps carry JET and JET-OMEMO: jinglefs encrypts (auto)
        assert peer_takes_jet(await client.connection.features(peer.jid))
        src = make_file(tmp_path, "song.ogg", size)
        data = src.read_bytes()
        [sent] = await client.send_files(peer.jid, [src], transport=transport)
        initiate = await peer.peer.next_jingle("session-initiate")
        files = initiate.findall(f"{{{JINGLE}}}content/{{{FT}}}description/{{{FT}}}file")
        assert len(files) == 1 and files[0].findtext(f"{{{FT}}}size") == str(size)
        security = dj.security_of(initiate)
        assert security is not None and security.tag == f"{{{dj.JET}}}security"
        assert security.get("cipher") == dj.AES_128_GCM
        assert security.get("type") == dj.OMEMO
        got = await asyncio.wait_for(dj.receive_encrypted_file(peer, initiate, **kw), BOUND)
        done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed), done
        assert sha256(got.plaintext) == sha256(data) and done.size == size
        assert len(got.outcome.data) == size + dj.TAG_SIZE
        assert data[:64] not in got.outcome.data
        assert done.protection is Protection.OMEMO
        assert done.to_json()["protection"] == "encrypted (OMEMO)"
        assert [r.get("type") for r in got.outcome.replies] == \
            ["result"] * len(got.outcome.replies)
        return got, done, data


async def test_dino_0_4_receives_encrypted_file_over_s5b_direct(prosody: ProsodyServer,
                                                               tmp_path: Path) -> None:
    got, _, _ = await dino_receives(prosody, tmp_path, 300_001, "s5b")
    assert got.outcome.transport == "s5b"


async def test_dino_0_4_receives_encrypted_file_over_proxy65(prosody: ProsodyServer,
                                                            tmp_path: Path) -> None:
    got, _, _ = await dino_receives(prosody, tmp_path, 200_003, "s5b",
                                    replace(FAST, s5b_direct=False),
                                    proxy_jid=prosody.proxy_jid, dead_direct=True)
    assert got.outcome.transport == "s5b"


async def test_dino_0_4_receives_encrypted_file_over_ibb(prosody: ProsodyServer,
                                                        tmp_path: Path) -> None:
    got, _, _ = await dino_receives(prosody, tmp_path, 100_001, "ibb")
    assert got.outcome.transport == "ibb"



# ---------------------------------------------------------------- one OMEMO session


def prekey_flags(security: ET.Element) -> list[str | None]:
    return [k.get("prekey") for k in security.iter(f"{NS}key")]


async def test_dino_0_4_and_jinglefs_keep_one_omemo_session_both_ways(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    # Dino → jinglefs (a key exchange), jinglefs → Dino and Dino → jinglefs again (plain
    # OMEMO messages on the session the first one built): each side's ratchet follows the
    # other's, and every file arrives whole.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with dino_and_jinglefs(prosody) as (peer, client):
        async def dino_to_jinglefs(name: str) -> dj.Sent:
            data = os.urandom(40_000)
            sending = asyncio.ensure_future(dj.send_encrypted_file(peer, client.jid, data,
                                                                   name))
            [got] = await (await first_offer(client)).accept(inbox)
            done = await asyncio.wait_for(got.wait(), BOUND)
            assert isinstance(done, Completed) and Path(done.path).read_bytes() == data
            assert done.protection is Protection.OMEMO
            return await asyncio.wait_for(sending, BOUND)

        first = await dino_to_jinglefs("one.bin")
        assert prekey_flags(first.security) == ["true"]

        src = make_file(tmp_path, "back.bin", 30_001)
        [sent] = await client.send_files(peer.jid, [src], transport="s5b")
        initiate = await peer.peer.next_jingle("session-initiate")
        security = dj.security_of(initiate)
        assert security is not None and prekey_flags(security) == [None]
        got = await asyncio.wait_for(dj.receive_encrypted_file(peer, initiate), BOUND)
        assert got.plaintext == src.read_bytes()
        assert isinstance(await asyncio.wait_for(sent.wait(), BOUND), Completed)

        second = await dino_to_jinglefs("two.bin")
        assert prekey_flags(second.security) == [None]
        assert second.secret != first.secret
    assert sorted(p.name for p in inbox.iterdir()) == ["one.bin", "two.bin"]
