"""A Dino 0.4 peer with OMEMO on: Jingle Encrypted Transports with the OMEMO envelope
(XEP-0391, XEP-0396) as Dino's source does it (docs/interop.md §4, §9), on top of the plain
Dino peer of dino.py.

Its OMEMO device is its own: python-omemo's ``SessionManager`` with the ``oldmemo``
backend (``eu.siacs.conversations.axolotl``), keys in memory, nothing from
``jinglefs.omemo``, so a transfer checks that two independent implementations agree.
What Dino does, and so what this peer does (file and function in dino/dino):

* features: Dino's, plus ``urn:xmpp:jingle:jet:0`` (``Jet.Module.attach``),
  ``urn:xmpp:jingle:jet-omemo:0`` (``JetOmemo.Module.attach``) and the device list's
  ``+notify`` (``StreamModule.attach`` → ``Pubsub.add_filtered_notification``);
* PEP (``plugins/omemo/src/protocol/stream_module.vala``): the device list in
  ``eu.siacs.conversations.axolotl.devicelist`` (the fetched list plus its own id), its
  bundle in ``eu.siacs.conversations.axolotl.bundles:<id>`` as item ``1``; both published
  without publish-options, then ``try_make_node_public`` reads the node configuration and
  submits it with ``pubsub#access_model`` = ``open``;
* the transport secret (``AesGcmCipher.generate_random_secret`` in
  ``plugins/omemo/src/jingle/jet_omemo.vala``): a 16-byte key and a 12-byte IV
  (``KEY_SIZE``, ``IV_SIZE``; Dino 0.1 used a 16-byte IV, 0.2 and later 12);
* the envelope (``encode_envelop``): an ``EncryptionData`` whose ``keytag`` is the key
  alone and whose ``iv`` is the secret's IV, the key encrypted to the peer's bare JID only
  (``encrypt_key_to_recipient``), written by ``EncryptionData.get_encrypted_node``:
  ``<encrypted><header sid><iv/><key rid [prekey='true']/>…</header></encrypted>``, the
  ``<iv/>`` first, no ``<payload/>``;
* the element (``SecurityParameters.to_security_stanza_node``, XEP-0391 §4.1):
  ``<security xmlns='urn:xmpp:jingle:jet:0' cipher='urn:xmpp:ciphers:aes-128-gcm-nopadding'
  type='eu.siacs.conversations.axolotl'>``, no ``name``, after the description and the
  transport in the content (``Jingle.Module.create_session``);
* opening (``decode_envolop``): the ``<encrypted/>`` child in the OMEMO namespace, else
  ``bad-request``; each ``<key/>`` for its own device id is tried; the decrypted key
  material is the key, or key and tag when it is 32 bytes or more (only the first 16
  bytes count); nothing decrypts → ``not-acceptable``;
* the cipher (``AesGcmCipher.wrap_*_stream``, ``crypto-vala/src/cipher_converter.vala``):
  AES-GCM over the whole stream under that key and IV, the 16-byte tag appended at the
  end; ``<size>`` stays the plaintext size, so ``size + 16`` bytes travel.  Dino's reader
  stops after ``size`` plaintext bytes (it reads the 16 tag bytes to release the last
  block); this peer reads them too and checks the tag, which the test wants.

``cryptography``'s ``AESGCM`` is the cipher here (one shot over the test file).
"""

from __future__ import annotations

import base64
import binascii
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import oldmemo.etree
import omemo
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from oldmemo.oldmemo import NAMESPACE, BundleImpl, ContentImpl, Oldmemo, PlainKeyMaterialImpl
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import DeviceInformation, DeviceList, JSONType, TrustLevel

from . import dino
from .peer import (
    JINGLE,
    PeerError,
    ScriptedPeer,
    ServerLike,
    error_condition,
    local,
    scripted_peer,
)

JET = "urn:xmpp:jingle:jet:0"
#: legacy OMEMO: the envelope type and the namespace of its elements
OMEMO: str = NAMESPACE
JET_OMEMO = "urn:xmpp:jingle:jet-omemo:0"
AES_128_GCM = "urn:xmpp:ciphers:aes-128-gcm-nopadding"
DEVICE_LIST_NODE = f"{OMEMO}.devicelist"
BUNDLES_NODE = f"{OMEMO}.bundles"
PUBSUB = "http://jabber.org/protocol/pubsub"
PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
DATA_FORMS = "jabber:x:data"
FEATURES = [*dino.FEATURES, JET, JET_OMEMO, f"{DEVICE_LIST_NODE}+notify"]
KEY_SIZE = 16
IV_SIZE = 12
TAG_SIZE = 16
#: the peer's names for trust: Dino trusts a new device blindly until one is verified
BLIND, UNDECIDED = "blind", "undecided"

_NS = f"{{{OMEMO}}}"


def bare(jid: str) -> str:
    return jid.partition("/")[0]


class DinoRefused(PeerError):
    """Dino answers the session-initiate with this IQ error (``decode_envolop``)."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(f"{condition}: {text}")
        self.condition = condition


# ---------------------------------------------------------------- the transport secret


@dataclass(frozen=True)
class Secret:
    """``Jet.TransportSecret``: the AES key and the IV."""

    key: bytes
    iv: bytes


def new_secret() -> Secret:
    """``AesGcmCipher.generate_random_secret``: 16 random key bytes, 12 random IV bytes."""
    return Secret(os.urandom(KEY_SIZE), os.urandom(IV_SIZE))


def encrypt(secret: Secret, data: bytes) -> bytes:
    """What crosses the transport: the ciphertext, then the 16-byte tag
    (``SymmetricCipherEncrypter`` with ``attached_taglen`` 16)."""
    return AESGCM(secret.key).encrypt(secret.iv, data, None)


def decrypt(secret: Secret, wire: bytes) -> bytes:
    """The plaintext of ``size + 16`` received bytes; PeerError when the tag fails."""
    try:
        return AESGCM(secret.key).decrypt(secret.iv, wire, None)
    except InvalidTag:
        raise PeerError("the JET authentication tag does not match") from None


# ---------------------------------------------------------------- python-omemo glue


class MemoryStorage(Storage):
    """python-omemo's key/value store, in a dict: the peer lives for one test."""

    def __init__(self) -> None:
        super().__init__(disable_cache=True)
        self.data: dict[str, JSONType] = {}

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.data[key] = value

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)


class JetKeyOldmemo(Oldmemo):
    """Legacy OMEMO that carries a JET secret instead of a message, as Dino's
    ``encode_envelop`` does: the "plaintext" handed to ``SessionManager.encrypt`` is the
    secret (key then IV), the content has no payload and that IV, and the key material
    each device gets is the 16-byte key alone (no GCM tag)."""

    async def encrypt_plaintext(self, plaintext: bytes
                                ) -> tuple[ContentImpl, PlainKeyMaterialImpl]:
        if len(plaintext) != KEY_SIZE + IV_SIZE:
            raise ValueError("this peer only sends JET secrets over OMEMO")
        return (ContentImpl(b"", plaintext[KEY_SIZE:]),
                PlainKeyMaterialImpl(plaintext[:KEY_SIZE], b""))


class Pep:
    """Dino's PEP calls (xmpp-vala ``0060_pubsub.vala`` and the OMEMO stream module)."""

    def __init__(self, peer: ScriptedPeer) -> None:
        self.peer = peer
        #: every node it published to, in order
        self.published: list[str] = []

    @property
    def own(self) -> str:
        return bare(self.peer.jid)

    async def _iq(self, to: str, payload: ET.Element, kind: str = "set") -> ET.Element:
        reply = await self.peer.send_iq(to, payload, kind="get" if kind == "get" else "set")
        if reply.get("type") != "result":
            raise PeerError(f"pubsub {local(next(iter(payload)).tag)} to {to}: "
                            f"{error_condition(reply)}")
        return reply

    async def publish(self, node: str, item_id: str | None, payload: ET.Element) -> None:
        """``Pubsub.publish`` without publish-options, then ``try_make_node_public``."""
        pubsub = ET.Element(f"{{{PUBSUB}}}pubsub")
        publish = ET.SubElement(pubsub, f"{{{PUBSUB}}}publish", {"node": node})
        item = ET.SubElement(publish, f"{{{PUBSUB}}}item")
        if item_id is not None:
            item.set("id", item_id)
        item.append(payload)
        await self._iq(self.own, pubsub)
        self.published.append(node)
        await self.make_node_public(node)

    async def make_node_public(self, node: str) -> None:
        """``try_make_node_public``: the node's configuration form, submitted again with
        every field as it was except ``pubsub#access_model`` = ``open``."""
        query = ET.Element(f"{{{PUBSUB_OWNER}}}pubsub")
        ET.SubElement(query, f"{{{PUBSUB_OWNER}}}configure", {"node": node})
        reply = await self._iq(self.own, query, "get")
        form = reply.find(f"{{{PUBSUB_OWNER}}}pubsub/{{{PUBSUB_OWNER}}}configure/"
                          f"{{{DATA_FORMS}}}x")
        if form is None:
            return
        fields = [f for f in form.findall(f"{{{DATA_FORMS}}}field") if f.get("var")]
        access = next((f for f in fields if f.get("var") == "pubsub#access_model"), None)
        if access is None or access.findtext(f"{{{DATA_FORMS}}}value") == "open":
            return
        submit = ET.Element(f"{{{DATA_FORMS}}}x", {"type": "submit"})
        for f in fields:
            out = ET.SubElement(submit, f"{{{DATA_FORMS}}}field", {"var": str(f.get("var"))})
            values = ["open"] if f is access else \
                [v.text or "" for v in f.findall(f"{{{DATA_FORMS}}}value")]
            for value in values:
                ET.SubElement(out, f"{{{DATA_FORMS}}}value").text = value
        configure = ET.Element(f"{{{PUBSUB_OWNER}}}pubsub")
        ET.SubElement(configure, f"{{{PUBSUB_OWNER}}}configure", {"node": node}).append(submit)
        await self._iq(self.own, configure)

    async def item(self, jid: str, node: str) -> ET.Element | None:
        """The payload of the node's first item (``Pubsub.request``); None without one."""
        query = ET.Element(f"{{{PUBSUB}}}pubsub")
        ET.SubElement(query, f"{{{PUBSUB}}}items", {"node": node})
        reply = await self.peer.send_iq(jid, query, kind="get")
        if reply.get("type") != "result":
            if error_condition(reply) == "item-not-found":
                return None
            raise PeerError(f"pubsub items {node} of {jid}: {error_condition(reply)}")
        item = reply.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}items/{{{PUBSUB}}}item")
        return next(iter(item), None) if item is not None else None


def _session_manager_class(pep: Pep) -> type[omemo.SessionManager]:
    """python-omemo calls its PEP hooks as static methods: a class bound to ``pep``."""

    class DinoSessionManager(omemo.SessionManager):
        @staticmethod
        async def _upload_bundle(bundle: omemo.Bundle) -> None:
            assert isinstance(bundle, BundleImpl)
            await pep.publish(f"{BUNDLES_NODE}:{bundle.device_id}", "1",
                              oldmemo.etree.serialize_bundle(bundle))

        @staticmethod
        async def _download_bundle(namespace: str, bare_jid: str, device_id: int
                                   ) -> omemo.Bundle:
            try:
                element = await pep.item(bare_jid, f"{BUNDLES_NODE}:{device_id}")
            except PeerError as e:
                raise omemo.BundleDownloadFailed(str(e)) from e
            if element is None:
                raise omemo.BundleNotFound(f"{bare_jid} has no bundle {device_id}")
            return oldmemo.etree.parse_bundle(element, bare_jid, device_id)

        @staticmethod
        async def _delete_bundle(namespace: str, device_id: int) -> None:
            pass  # Dino never deletes a bundle node

        @staticmethod
        async def _upload_device_list(namespace: str, device_list: DeviceList) -> None:
            await pep.publish(DEVICE_LIST_NODE, None,
                              oldmemo.etree.serialize_device_list(device_list))

        @staticmethod
        async def _download_device_list(namespace: str, bare_jid: str) -> DeviceList:
            try:
                element = await pep.item(bare_jid, DEVICE_LIST_NODE)
            except PeerError as e:
                raise omemo.DeviceListDownloadFailed(str(e)) from e
            return {} if element is None else oldmemo.etree.parse_device_list(element)

        async def _evaluate_custom_trust_level(self, device: DeviceInformation
                                               ) -> TrustLevel:
            return TrustLevel.TRUSTED if device.trust_level_name == BLIND \
                else TrustLevel.UNDECIDED

        async def _make_trust_decision(self, undecided: frozenset[DeviceInformation],
                                       identifier: str | None) -> None:
            for device in undecided:  # Dino's default: blind trust before verification
                await self.set_trust(device.bare_jid, device.identity_key, BLIND)

        @staticmethod
        async def _send_message(message: omemo.Message, bare_jid: str) -> None:
            pass  # Dino 0.4 sends no session-completing empty message ("TODO: Finish session")

    return DinoSessionManager


# ---------------------------------------------------------------- the device


class DinoOmemo:
    """The peer's OMEMO device: PEP-published, able to seal and open JET secrets."""

    def __init__(self, manager: omemo.SessionManager, pep: Pep, device_id: int) -> None:
        self.manager = manager
        self.pep = pep
        self.device_id = device_id

    @classmethod
    async def start(cls, peer: ScriptedPeer) -> DinoOmemo:
        pep = Pep(peer)
        manager = await _session_manager_class(pep).create(
            [JetKeyOldmemo(MemoryStorage())], MemoryStorage(), pep.own,
            initial_own_label=None, undecided_trust_level_name=UNDECIDED)
        own, _ = await manager.get_own_device_information()
        return cls(manager, pep, own.device_id)

    async def aclose(self) -> None:
        await self.manager.shutdown()

    async def device_ids(self, jid: str) -> set[int]:
        """The device ids of a contact's PEP device list, fetched now."""
        element = await self.pep.item(bare(jid), DEVICE_LIST_NODE)
        return set() if element is None else set(oldmemo.etree.parse_device_list(element))

    async def seal(self, peer_jid: str, secret: Secret) -> ET.Element:
        """``encode_envelop``: the secret's key to every device of the peer's bare JID, in
        Dino's ``<encrypted/>`` (``<iv/>`` first in the header, no payload)."""
        peer = bare(peer_jid)
        await self.manager.refresh_device_list(OMEMO, peer)
        messages, problems = await self.manager.encrypt(
            frozenset({peer}), {OMEMO: secret.key + secret.iv})
        if problems:
            raise PeerError(f"OMEMO left devices out: {sorted(map(str, problems))}")
        [message] = [m for m in messages if m.namespace == OMEMO]
        encrypted = oldmemo.etree.serialize_message(message)
        header = encrypted.find(f"{_NS}header")
        iv = encrypted.find(f"{_NS}header/{_NS}iv")
        assert header is not None and iv is not None
        header.remove(iv)
        header.insert(0, iv)
        return encrypted

    async def open(self, sender_full: str, security: ET.Element) -> Secret:
        """``Jet.parse_security_parameters`` + ``decode_envolop``: the secret in a received
        ``<security/>``, or DinoRefused with the IQ error Dino would answer."""
        if not security.get("cipher") or not security.get("type"):
            raise DinoRefused("bad-request", "No cipher or type specified for JET")
        if security.get("cipher") != AES_128_GCM or security.get("type") != OMEMO:
            raise DinoRefused("feature-not-implemented", "JET cipher or type unknown")
        encrypted = security.find(f"{_NS}encrypted")
        if encrypted is None:
            raise DinoRefused("bad-request", "missing encrypted element")
        iv_text = encrypted.findtext(f"{_NS}header/{_NS}iv")
        if iv_text is None:
            raise DinoRefused("bad-request", "bad encrypted element")
        try:
            iv = base64.b64decode(iv_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise DinoRefused("bad-request", "bad encrypted element") from None
        if not any(k.get("rid") == str(self.device_id)
                   for k in encrypted.findall(f"{_NS}header/{_NS}key")):
            raise DinoRefused("not-acceptable", "Not encrypted for targeted device")
        sender = bare(sender_full)
        try:
            message = await oldmemo.etree.parse_message(encrypted, sender, self.pep.own,
                                                        self.manager)
            _, _, material = await self.manager.decrypt(message)
        except Exception as e:  # every failure of decrypt_key ends the same way
            raise DinoRefused("not-acceptable", f"Not encrypted for targeted device: {e}"
                              ) from e
        assert isinstance(material, PlainKeyMaterialImpl)
        # the key material is the key alone, or key + tag (then only the key counts)
        return Secret(material.key[:KEY_SIZE], iv)


# ---------------------------------------------------------------- XML


def security_xml(encrypted: ET.Element) -> str:
    """``to_security_stanza_node`` (XEP-0391 §4.1): cipher and type, no ``name``."""
    envelope = ET.tostring(encrypted, encoding="unicode")
    return (f"<security xmlns='{JET}' cipher='{AES_128_GCM}' type='{OMEMO}'>"
            f"{envelope}</security>")


def security_of(jingle: ET.Element) -> ET.Element | None:
    """The first content's ``<security/>`` (``Session.security``), any namespace."""
    content = jingle.find(f"{{{JINGLE}}}content")
    if content is None:
        return None
    return next((c for c in content if local(c.tag) == "security"), None)


# ---------------------------------------------------------------- the peer


@dataclass
class DinoJetPeer:
    """A logged-in Dino-shaped peer and its OMEMO device."""

    peer: ScriptedPeer
    omemo: DinoOmemo

    @property
    def jid(self) -> str:
        return self.peer.jid


@asynccontextmanager
async def dino_jet_peer(server: ServerLike, user: str, resource: str
                        ) -> AsyncIterator[DinoJetPeer]:
    """Dino with OMEMO on: its features, its OMEMO device published by PEP."""
    async with scripted_peer(server, user, resource, features=FEATURES,
                             identity=dino.IDENTITY, caps_node=dino.CAPS_NODE) as peer:
        device = await DinoOmemo.start(peer)
        try:
            yield DinoJetPeer(peer, device)
        finally:
            await device.aclose()


@dataclass
class Sent:
    """What an encrypted send did: the plain Dino outcome, the secret and the element."""

    outcome: dino.Outcome
    secret: Secret
    security: ET.Element
    wire: bytes


async def send_encrypted_file(dj: DinoJetPeer, to: str, data: bytes, name: str, *,
                              tamper: Callable[[bytes], bytes] | None = None,
                              **transport: Any) -> Sent:
    """Dino as initiator in an OMEMO chat: a fresh secret sealed to ``to``'s devices, the
    offer with its ``<security/>``, then ``size + 16`` bytes of AES-GCM over the transport
    (dino.send_file with ``transport``'s options). ``tamper`` changes the bytes on the way."""
    secret = new_secret()
    encrypted = await dj.omemo.seal(to, secret)
    xml = security_xml(encrypted)
    wire = encrypt(secret, data)
    sent = tamper(wire) if tamper is not None else wire
    out = await dino.send_file(dj.peer, to, sent, name, size=len(data), security=xml,
                               **transport)
    return Sent(out, secret, ET.fromstring(xml), sent)


@dataclass
class Received:
    """What an encrypted receive did: the plain Dino outcome (``data`` = the bytes that
    crossed the transport) and the decrypted file."""

    outcome: dino.Outcome
    secret: Secret
    plaintext: bytes


async def receive_encrypted_file(dj: DinoJetPeer, initiate: ET.Element, **transport: Any
                                 ) -> Received:
    """Dino as responder: open the offer's ``<security/>`` (DinoRefused with the IQ error
    Dino would have answered; the scripted peer acked the IQ already), take the file as
    dino.receive_file does with the tag after it, decrypt and check the tag."""
    security = security_of(initiate)
    if security is None or security.tag != f"{{{JET}}}security":
        raise PeerError("an offer in an OMEMO chat without a JET <security/>")
    secret = await dj.omemo.open(dj.peer.from_of(initiate), security)
    out = await dino.receive_file(dj.peer, initiate, trailer=TAG_SIZE, **transport)
    return Received(out, secret, decrypt(secret, out.data))
