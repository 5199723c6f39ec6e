"""Our OMEMO device for one account: the JET key envelope (XEP-0396) and the trust API.

:class:`OmemoDevice` implements :class:`jinglefs.jet.envelope.KeyEnvelope`: :meth:`seal`
makes a fresh JET secret (16-byte AES key, 12-byte IV) and the legacy OMEMO key-transport
element that carries it to every trusted device of the contact (XEP-0396 §4), and
:meth:`open` learns the secret from one.  The trust API (:meth:`devices`,
:meth:`verify`, :attr:`fingerprint`) is what ``jinglefs trust`` and the app show.

Made after login by :meth:`OmemoDevice.start`: the first start makes the identity and
device id, publishes the bundle and adds the device to our device list; later starts
load them from the store and republish whatever the server lost.
"""

from __future__ import annotations

import base64
import binascii
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import oldmemo.etree
import omemo
from oldmemo.oldmemo import NAMESPACE, ContentImpl, PlainKeyMaterialImpl
from omemo.types import DeviceInformation, JSONType

from ..jet.envelope import LEGACY_OMEMO_TYPE, EnvelopeError, JetSecret, PeerDevice
from ..jid import bare_jid
from . import trust
from .backend import KEY_TRANSPORT, KeyTransportOldmemo
from .manager import manager_class
from .pep import Pep, XmppLink
from .storage import JsonStorage, account_dir

__all__ = ["OmemoDevice"]

logger = logging.getLogger(__name__)

NS = f"{{{NAMESPACE}}}"
#: our own record of the contacts whose devices we looked at (``jinglefs trust list``)
PEERS_KEY = "/jinglefs/peers"
KEY_SIZE = 16
IV_SIZE = 12


class OmemoDevice:
    """One account's OMEMO device (see the module docstring)."""

    envelope_type = LEGACY_OMEMO_TYPE

    def __init__(self, manager: omemo.SessionManager, storage: JsonStorage,
                 own_bare: str) -> None:
        self.manager = manager
        self.storage = storage
        self.own_bare = own_bare
        #: the devices of each contact as last seen (for :meth:`new_devices_of_verified`)
        self._seen: dict[str, list[PeerDevice]] = {}
        self._closed = False

    @classmethod
    async def start(cls, link: XmppLink, account_jid: str, *, folder: Path | None = None,
                    timeout: float = 20.0) -> OmemoDevice:
        """Load or make this account's device and publish it.  Raises StoreBusy /
        StoreDamaged (from :mod:`.storage`) or python-omemo's errors (PEP failures)."""
        own = bare_jid(account_jid)
        storage = JsonStorage(folder or account_dir(own))
        storage.open()
        try:
            manager = await manager_class(Pep(link, own, timeout)).create(
                [KeyTransportOldmemo(storage)], storage, own, initial_own_label=None,
                undecided_trust_level_name=trust.UNDECIDED)
            try:
                await manager.ensure_data_consistency()
                await manager.after_history_sync()
            except BaseException:
                await manager.shutdown()
                raise
        except BaseException:
            storage.close()
            raise
        return cls(manager, storage, own)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.manager.shutdown()
        finally:
            self.storage.close()

    # -------------------------------------------------------------------- ourselves

    async def own_device(self) -> PeerDevice:
        device, _ = await self.manager.get_own_device_information()
        return PeerDevice(self.own_bare, device.device_id, self._fingerprint(device),
                          trust.VERIFIED)

    @property
    def device_id(self) -> int:
        value = self.storage.get("/own_device_id")
        return value if isinstance(value, int) else 0

    @staticmethod
    def _fingerprint(device: DeviceInformation) -> str:
        return trust.grouped(omemo.SessionManager.format_identity_key(device.identity_key))

    # ---------------------------------------------------------------------- devices

    def _remember_peer(self, peer: str) -> None:
        known = self.storage.get(PEERS_KEY)
        peers = [p for p in known if isinstance(p, str)] if isinstance(known, list) else []
        if peer not in peers and peer != self.own_bare:
            updated: list[JSONType] = [*sorted([*peers, peer])]
            self.storage.put(PEERS_KEY, updated)

    def known_peers(self) -> list[str]:
        """Contacts whose devices we looked at, in this store."""
        known = self.storage.get(PEERS_KEY)
        return [p for p in known if isinstance(p, str)] if isinstance(known, list) else []

    async def devices(self, peer_bare: str, *, refresh: bool = True) -> list[PeerDevice]:
        """The contact's devices with their trust (BTBV decided for new ones), fetching
        the device list by PEP first.  Raises EnvelopeError if it cannot be fetched."""
        peer = bare_jid(peer_bare)
        if refresh:
            try:
                await self.manager.refresh_device_list(NAMESPACE, peer)
            except omemo.DeviceListDownloadFailed as e:
                raise EnvelopeError(f"cannot fetch the OMEMO devices of {peer}: {e}") from e
        infos = await self._decided(peer)
        if peer != self.own_bare:
            self._remember_peer(peer)
        out = sorted((PeerDevice(peer, d.device_id, self._fingerprint(d), d.trust_level_name)
                      for d in infos if any(active for _, active in d.active)),
                     key=lambda d: d.device_id)
        if peer == self.own_bare:
            out = [d for d in out if d.device_id != self.device_id]
        self._seen[peer] = out
        return out

    async def _decided(self, peer: str) -> frozenset[DeviceInformation]:
        """Device information with every undecided device decided (BTBV)."""
        infos = await self.manager.get_device_information(peer)
        undecided = [d for d in infos if d.trust_level_name == trust.UNDECIDED]
        if undecided:
            level = trust.decide(d.trust_level_name for d in infos)
            for d in undecided:
                await self.manager.set_trust(peer, d.identity_key, level)
            infos = await self.manager.get_device_information(peer)
        return infos

    def new_devices_of_verified(self, peer_bare: str) -> list[PeerDevice]:
        """Devices of a verified contact seen after the verification, not trusted until
        verified (as of the last :meth:`devices`, :meth:`seal`, :meth:`open` or
        :meth:`can_encrypt_to` for that contact)."""
        return [d for d in self._seen.get(bare_jid(peer_bare), [])
                if d.trust == trust.NEW_AFTER_VERIFIED]

    async def verify(self, peer_bare: str, fingerprint: str) -> PeerDevice:
        """Mark the contact's device with this fingerprint verified.  EnvelopeError when
        the text is not a fingerprint or no device of the contact has it."""
        wanted = trust.normalize_fingerprint(fingerprint)
        if wanted is None:
            raise EnvelopeError(f"{fingerprint!r} is not an OMEMO fingerprint (64 hex "
                                f"digits, usually shown as 8 groups of 8)")
        peer = bare_jid(peer_bare)
        devices = await self.devices(peer)
        match = [d for d in devices if d.fingerprint == wanted]
        if not match:
            shown = "; ".join(f"{d.device_id}: {d.fingerprint}" for d in devices) or "none"
            raise EnvelopeError(f"no OMEMO device of {peer} has the fingerprint {wanted} "
                                f"(its devices: {shown}); nothing was marked verified")
        infos = await self.manager.get_device_information(peer)
        for info in infos:
            if info.device_id == match[0].device_id:
                await self.manager.set_trust(peer, info.identity_key, trust.VERIFIED)
        return (await self._find(peer, match[0].device_id, refresh=False))

    async def _find(self, peer: str, device_id: int, *, refresh: bool) -> PeerDevice:
        for d in await self.devices(peer, refresh=refresh):
            if d.device_id == device_id:
                return d
        raise EnvelopeError(f"{peer} has no OMEMO device {device_id}")

    # ------------------------------------------------------------------ KeyEnvelope

    async def can_encrypt_to(self, peer_bare: str) -> bool:
        try:
            devices = await self.devices(peer_bare)
        except EnvelopeError as e:
            logger.info("%s", e)
            return False
        return any(trust.core_level(d.trust) is omemo.TrustLevel.TRUSTED for d in devices)

    async def seal(self, peer_bare: str) -> tuple[JetSecret, ET.Element]:
        """XEP-0396 §4: a fresh secret in a key-transport element for the contact's
        trusted devices (and our other devices, as OMEMO does)."""
        peer = bare_jid(peer_bare)
        devices = await self.devices(peer)
        try:
            messages, problems = await self.manager.encrypt(
                frozenset({peer}), {NAMESPACE: KEY_TRANSPORT})
        except omemo.NoEligibleDevices:
            raise EnvelopeError(self._no_device_text(peer, devices)) from None
        except omemo.SessionManagerException as e:
            raise EnvelopeError(f"cannot encrypt the key for {peer}: {e}") from e
        for problem in problems:
            logger.warning("OMEMO: device %s of %s left out: %s", problem.device_id,
                           problem.bare_jid, problem.exception)
        for message, key_material in messages.items():
            if message.namespace != NAMESPACE:
                continue
            if not any(k.bare_jid == peer for k, _ in message.keys):
                raise EnvelopeError(self._no_device_text(peer, devices))
            if not isinstance(key_material, PlainKeyMaterialImpl) \
                    or not isinstance(message.content, ContentImpl):
                raise EnvelopeError("the OMEMO library returned unexpected key material")
            secret = JetSecret(key_material.key, message.content.initialization_vector)
            return secret, oldmemo.etree.serialize_message(message)
        raise EnvelopeError(self._no_device_text(peer, devices))

    def _no_device_text(self, peer: str, devices: list[PeerDevice]) -> str:
        if not devices:
            return f"{peer} has no OMEMO device (or its keys cannot be fetched)"
        new = [d for d in devices if d.trust == trust.NEW_AFTER_VERIFIED]
        if new:
            return (f"every OMEMO device of {peer} that could receive the key is new since "
                    f"you verified {peer}: check it and run `jinglefs trust verify {peer} "
                    f"FINGERPRINT` ({'; '.join(f'{d.device_id}: {d.fingerprint}' for d in new)})")
        return f"no trusted OMEMO device of {peer} could receive the key"

    async def open(self, sender_full: str, encrypted: ET.Element
                   ) -> tuple[JetSecret, PeerDevice]:
        """The secret of a key-transport element (XEP-0396 §4) and the device that sent
        it.  EnvelopeError: malformed, not for this device, untrusted device, bad key."""
        sender = bare_jid(sender_full)
        iv = _header_iv(encrypted)
        try:
            message = await oldmemo.etree.parse_message(encrypted, sender, self.own_bare,
                                                        self.manager)
        except omemo.SenderNotFound:
            raise EnvelopeError(f"the key comes from an OMEMO device {sender} does not "
                                f"publish") from None
        except Exception as e:  # schema violations, bad base64, bad protobuf
            raise EnvelopeError(f"the OMEMO key element is malformed: {e}") from None
        # Decide the trust of the sending device first: a device that is new since the
        # contact was verified must not hand us a key (python-omemo refuses distrusted
        # senders before it decrypts anything).
        await self.devices(sender, refresh=False)
        try:
            _, device, key_material = await self.manager.decrypt(message)
        except omemo.MessageNotForUs:
            raise EnvelopeError(f"the key from {sender} is not encrypted for this device "
                                f"({self.device_id})") from None
        except omemo.SenderDistrusted:
            raise EnvelopeError(self._distrusted_text(sender, message.device_id)) from None
        except (omemo.SessionManagerException, omemo.BackendException) as e:
            raise EnvelopeError(f"the key from {sender} cannot be decrypted: {e}") from None
        if not isinstance(key_material, PlainKeyMaterialImpl) \
                or len(key_material.key) != KEY_SIZE:
            raise EnvelopeError(f"the key from {sender} is not a {KEY_SIZE}-byte AES key")
        peer = await self._find(sender, device.device_id, refresh=False)
        if trust.core_level(peer.trust) is not omemo.TrustLevel.TRUSTED:
            raise EnvelopeError(self._distrusted_text(sender, device.device_id))
        return JetSecret(key_material.key, iv), peer

    def _distrusted_text(self, sender: str, device_id: int) -> str:
        seen = {d.device_id: d for d in self._seen.get(sender, [])}
        d = seen.get(device_id)
        if d is not None and d.trust == trust.NEW_AFTER_VERIFIED:
            return (f"the key comes from a device of {sender} that is new since you verified "
                    f"{sender} ({device_id}: {d.fingerprint}); check it and run `jinglefs "
                    f"trust verify {sender} FINGERPRINT`")
        return f"the key comes from an untrusted OMEMO device of {sender} ({device_id})"


def _header_iv(encrypted: ET.Element) -> bytes:
    """The header's ``<iv/>``: XEP-0396 §4 puts the JET IV there (python-omemo drops it
    when a message has no payload, so it is read here)."""
    if encrypted.tag != f"{NS}encrypted":
        raise EnvelopeError(f"expected an OMEMO <encrypted xmlns='{NAMESPACE}'/>, got "
                            f"{encrypted.tag}")
    iv_el = encrypted.find(f"{NS}header/{NS}iv")
    if iv_el is None or not (iv_el.text or "").strip():
        raise EnvelopeError("the OMEMO key element has no <iv/>")
    try:
        iv = base64.b64decode((iv_el.text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("the OMEMO <iv/> is not base64") from None
    if len(iv) != IV_SIZE:
        raise EnvelopeError(f"the OMEMO <iv/> is {len(iv)} bytes, not {IV_SIZE}")
    return iv
