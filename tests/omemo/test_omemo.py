"""Our OMEMO device on a real Prosody with PEP: publish, fetch, seal/open the JET secret,
restarts, a damaged store, BTBV and verification, and a plain python-omemo peer."""

from __future__ import annotations

import base64
import json
import secrets
import stat
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import oldmemo.etree
import omemo
import pytest
from oldmemo.oldmemo import NAMESPACE, ContentImpl, Oldmemo, PlainKeyMaterialImpl

from jinglefs.jet.envelope import EnvelopeError, JetSecret
from jinglefs.omemo import trust
from jinglefs.omemo.device import OmemoDevice
from jinglefs.omemo.manager import manager_class
from jinglefs.omemo.pep import Pep
from jinglefs.omemo.storage import JsonStorage, StoreBusy, StoreDamaged
from jinglefs.xmpp.connection import XmppConnection
from tests.servers.prosody import ProsodyServer

pytestmark = pytest.mark.e2e

NS = f"{{{NAMESPACE}}}"

Start = Callable[[str, Path], Awaitable[OmemoDevice]]


async def _connect(prosody: ProsodyServer, user: str, resource: str) -> XmppConnection:
    conn = XmppConnection(prosody.account(user, resource=resource), features=[],
                          on_jingle=lambda *_: None)
    await conn.connect(15)
    return conn


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


@pytest.fixture
def users(prosody: ProsodyServer) -> Callable[[str], str]:
    """Fresh accounts per test (PEP on the shared server keeps other tests' devices)."""
    tag = secrets.token_hex(3)

    def make(name: str) -> str:
        user = f"{name}-{tag}"
        prosody.add_account(user)
        return user

    return make


@pytest.fixture
def start(prosody: ProsodyServer, stack: AsyncExitStack) -> Start:
    """``start(user, folder)``: a connection of ``user`` and its OMEMO device."""
    async def run(user: str, folder: Path) -> OmemoDevice:
        conn = await _connect(prosody, user, secrets.token_hex(3))
        stack.push_async_callback(conn.aclose)
        device = await OmemoDevice.start(conn, prosody.jid(user), folder=folder, timeout=15)
        stack.push_async_callback(device.aclose)
        return device

    return run


def _keys(element: ET.Element) -> dict[int, bool]:
    """rid -> prekey of each <key/>."""
    header = element.find(f"{NS}header")
    assert header is not None
    return {int(k.get("rid", "0")): k.get("prekey") in ("true", "1")
            for k in header.findall(f"{NS}key")}


async def test_publish_fetch_seal_open_both_ways(prosody: ProsodyServer,
                                                 users: Callable[[str], str], start: Start,
                                                 tmp_path: Path) -> None:
    alice_user, bob_user = users("alice"), users("bob")
    alice = await start(alice_user, tmp_path / "a")
    bob = await start(bob_user, tmp_path / "b")
    bob_jid, alice_jid = prosody.jid(bob_user), prosody.jid(alice_user)

    # each fetches the other's device list and bundle: the fingerprint is the other's own
    [seen_bob] = await alice.devices(bob_jid)
    assert seen_bob.device_id == bob.device_id
    assert seen_bob.fingerprint == (await bob.own_device()).fingerprint
    assert seen_bob.trust == trust.BLIND
    assert len(seen_bob.fingerprint.split(" ")) == 8
    assert all(len(g) == 8 for g in seen_bob.fingerprint.split(" "))
    assert await alice.can_encrypt_to(bob_jid)

    secret, element = await alice.seal(bob_jid)
    assert len(secret.key) == 16 and len(secret.iv) == 12
    # XEP-0396 §4 shape: header sid, a key per device, the IV, no payload
    assert element.tag == f"{NS}encrypted"
    assert element.find(f"{NS}payload") is None
    header = element.find(f"{NS}header")
    assert header is not None and header.get("sid") == str(alice.device_id)
    assert _keys(element) == {bob.device_id: True}  # first message: a key exchange
    iv = header.find(f"{NS}iv")
    assert iv is not None and base64.b64decode(iv.text or "") == secret.iv

    wire = ET.fromstring(ET.tostring(element))  # as it arrives: parsed from text
    opened, sender = await bob.open(f"{alice_jid}/x", wire)
    assert opened == secret
    assert sender.device_id == alice.device_id
    assert sender.fingerprint == (await alice.own_device()).fingerprint
    assert sender.trust == trust.BLIND

    # a second secret on the same session, and the other way round
    secret2, element2 = await alice.seal(bob_jid)
    assert secret2 != secret
    assert (await bob.open(alice_jid, element2))[0] == secret2
    back, back_element = await bob.seal(alice_jid)
    assert (await alice.open(bob_jid, back_element))[0] == back


async def test_a_key_for_another_device_is_refused(prosody: ProsodyServer,
                                                   users: Callable[[str], str], start: Start,
                                                   tmp_path: Path) -> None:
    alice_user, bob_user, carol_user = users("alice"), users("bob"), users("carol")
    alice = await start(alice_user, tmp_path / "a")
    await start(bob_user, tmp_path / "b")
    carol = await start(carol_user, tmp_path / "c")
    _, element = await alice.seal(prosody.jid(bob_user))
    with pytest.raises(EnvelopeError, match="not encrypted for this device"):
        await carol.open(prosody.jid(alice_user), element)
    # a flipped byte in the encrypted key fails its authentication
    bob2 = await start(bob_user, tmp_path / "b2")  # a second device of bob
    _, element = await alice.seal(prosody.jid(bob_user))
    header = element.find(f"{NS}header")
    assert header is not None
    for key in header.findall(f"{NS}key"):
        if key.get("rid") == str(bob2.device_id):
            raw = bytearray(base64.b64decode(key.text or ""))
            raw[-12] ^= 1
            key.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(EnvelopeError):
        await bob2.open(prosody.jid(alice_user), element)


async def test_restart_keeps_the_device_and_its_sessions(prosody: ProsodyServer,
                                                         users: Callable[[str], str],
                                                         start: Start, tmp_path: Path) -> None:
    alice_user, bob_user = users("alice"), users("bob")
    alice = await start(alice_user, tmp_path / "a")
    bob = await start(bob_user, tmp_path / "b")
    bob_jid = prosody.jid(bob_user)
    secret, element = await alice.seal(bob_jid)
    assert (await bob.open(prosody.jid(alice_user), element))[0] == secret
    device_id, fingerprint = bob.device_id, (await bob.own_device()).fingerprint
    await bob.aclose()

    bob = await start(bob_user, tmp_path / "b")
    assert bob.device_id == device_id
    assert (await bob.own_device()).fingerprint == fingerprint
    assert [d.device_id for d in await alice.devices(bob_jid)] == [device_id]  # no new one
    secret2, element2 = await alice.seal(bob_jid)
    assert (await bob.open(prosody.jid(alice_user), element2))[0] == secret2


def test_store_is_private_and_checked(tmp_path: Path) -> None:
    folder = tmp_path / "omemo" / "someone@example.org"
    s = JsonStorage(folder)
    s.open()
    s.put("/jinglefs/test", {"a": 1})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(s.path.stat().st_mode) == 0o600
    with pytest.raises(StoreBusy):
        JsonStorage(folder).open()  # one owner at a time
    s.close()

    doc = json.loads(s.path.read_text())
    doc["data"]["/jinglefs/test"] = {"a": 2}  # a hand edit
    tampered = json.dumps(doc)
    s.path.write_text(tampered)
    with pytest.raises(StoreDamaged, match="changed outside jinglefs"):
        JsonStorage(folder).open()
    assert s.path.read_text() == tampered  # kept, not replaced
    s.path.write_text("{not json")
    with pytest.raises(StoreDamaged):
        JsonStorage(folder).open()
    assert s.path.read_text() == "{not json"


async def test_a_tampered_trust_store_is_reported_not_replaced(
        prosody: ProsodyServer, users: Callable[[str], str], start: Start,
        tmp_path: Path) -> None:
    alice_user, bob_user = users("alice"), users("bob")
    alice = await start(alice_user, tmp_path / "a")
    bob = await start(bob_user, tmp_path / "b")
    await alice.devices(prosody.jid(bob_user))
    path = alice.storage.path
    await alice.aclose()
    doc = json.loads(path.read_text())
    prefix = f"/trust/{prosody.jid(bob_user)}/"
    trust_keys = [k for k in doc["data"] if k.startswith(prefix)]
    assert [doc["data"][k] for k in trust_keys] == [trust.BLIND]
    doc["data"][trust_keys[0]] = trust.VERIFIED  # someone makes bob "verified" by hand
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    with pytest.raises(StoreDamaged):
        await start(alice_user, tmp_path / "a")
    assert path.read_bytes() == before
    assert bob.device_id  # bob unaffected


async def test_verified_contact_new_device_is_reported_and_not_trusted(
        prosody: ProsodyServer, users: Callable[[str], str], start: Start,
        tmp_path: Path) -> None:
    alice_user, bob_user = users("alice"), users("bob")
    alice_jid, bob_jid = prosody.jid(alice_user), prosody.jid(bob_user)
    alice = await start(alice_user, tmp_path / "a")
    bob = await start(bob_user, tmp_path / "b")
    bob_fp = (await bob.own_device()).fingerprint

    with pytest.raises(EnvelopeError, match="no OMEMO device"):
        await alice.verify(bob_jid, "0" * 64)
    with pytest.raises(EnvelopeError, match="not an OMEMO fingerprint"):
        await alice.verify(bob_jid, "abc")
    # as Conversations copies it: one block, with the 05 key-type prefix, upper case
    verified = await alice.verify(bob_jid, "05" + bob_fp.replace(" ", "").upper())
    assert (verified.device_id, verified.trust) == (bob.device_id, trust.VERIFIED)
    assert alice.new_devices_of_verified(bob_jid) == []

    phone = await start(bob_user, tmp_path / "b-phone")  # bob adds a device
    devices = {d.device_id: d for d in await alice.devices(bob_jid)}
    assert devices[bob.device_id].trust == trust.VERIFIED
    assert devices[phone.device_id].trust == trust.NEW_AFTER_VERIFIED
    assert devices[phone.device_id].fingerprint == (await phone.own_device()).fingerprint
    assert alice.new_devices_of_verified(bob_jid) == [devices[phone.device_id]]

    # not trusted blindly: no key for it, and nothing it sends is opened
    _, element = await alice.seal(bob_jid)
    assert set(_keys(element)) == {bob.device_id}
    _, from_phone = await phone.seal(alice_jid)
    with pytest.raises(EnvelopeError, match="new since you verified"):
        await alice.open(bob_jid, from_phone)

    await alice.verify(bob_jid, devices[phone.device_id].fingerprint)
    assert alice.new_devices_of_verified(bob_jid) == []
    secret, element = await alice.seal(bob_jid)
    assert set(_keys(element)) == {bob.device_id, phone.device_id}
    assert (await phone.open(alice_jid, element))[0] == secret


async def test_a_plain_oldmemo_peer_opens_ours_and_we_open_its(
        prosody: ProsodyServer, users: Callable[[str], str], start: Start,
        stack: AsyncExitStack, tmp_path: Path) -> None:
    """The peer is python-omemo's stock legacy backend (what Conversations and Dino speak)
    building the key transport as they do: the 16-byte key alone in each <key/>."""
    ours_user, peer_user = users("ours"), users("peer")
    ours = await start(ours_user, tmp_path / "ours")
    ours_jid, peer_jid = prosody.jid(ours_user), prosody.jid(peer_user)

    conn = await _connect(prosody, peer_user, "plain")
    stack.push_async_callback(conn.aclose)
    storage = JsonStorage(tmp_path / "peer")
    storage.open()
    stack.callback(storage.close)
    backend = Oldmemo(storage)
    peer = await manager_class(Pep(conn, peer_jid)).create(
        [backend], storage, peer_jid, initial_own_label=None,
        undecided_trust_level_name=trust.UNDECIDED)
    stack.push_async_callback(peer.shutdown)
    await peer.after_history_sync()
    peer_device, _ = await peer.get_own_device_information()

    # it opens what we seal
    secret, element = await ours.seal(peer_jid)
    wire = ET.fromstring(ET.tostring(element))
    message = await oldmemo.etree.parse_message(wire, ours_jid, peer_jid, peer)
    _, sender, key_material = await peer.decrypt(message)
    assert isinstance(key_material, PlainKeyMaterialImpl)
    assert sender.device_id == ours.device_id
    assert key_material.key == secret.key and key_material.auth_tag == b""
    iv = wire.find(f"{NS}header/{NS}iv")
    assert iv is not None and base64.b64decode(iv.text or "") == secret.iv

    # we open what it seals: a fresh key and IV, the key encrypted alone per device
    key, iv_bytes = secrets.token_bytes(16), secrets.token_bytes(12)
    [ours_info] = [d for d in await peer.get_device_information(ours_jid)
                   if d.device_id == ours.device_id]
    session = await backend.load_session(ours_jid, ours.device_id)
    assert session is not None  # built passively when it opened ours
    encrypted_key = await backend.encrypt_key_material(session, PlainKeyMaterialImpl(key, b""))
    await backend.store_session(session)
    theirs = oldmemo.etree.serialize_message(omemo.Message(
        NAMESPACE, peer_jid, peer_device.device_id, ContentImpl(b"", iv_bytes),
        frozenset({(encrypted_key, None)})))
    opened, device = await ours.open(f"{peer_jid}/plain", ET.fromstring(ET.tostring(theirs)))
    assert opened == JetSecret(key, iv_bytes)
    assert device.device_id == peer_device.device_id
    assert device.fingerprint == trust.grouped(
        omemo.SessionManager.format_identity_key(peer_device.identity_key))
    assert ours_info.device_id == ours.device_id
