"""Our OMEMO device list and bundle over PEP (XEP-0163), and the contacts'.

Legacy OMEMO (``eu.siacs.conversations.axolotl``) keeps the device list in the node
``eu.siacs.conversations.axolotl.devicelist`` and each device's bundle in its own node
``eu.siacs.conversations.axolotl.bundles:<device id>``, one item ``current`` each.  Both
are published with the publish-options ``pubsub#access_model = open`` (Conversations and
Dino fetch a contact's bundle without a presence subscription, and Prosody's PEP default
is ``presence``); when the node exists with other options the server answers
``conflict`` (precondition-not-met) and the node is reconfigured, then published again.

The IQs go through :class:`jinglefs.xmpp.connection.XmppConnection`; the XML of the device
list and the bundle is python-omemo's own (``oldmemo.etree``).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Protocol

import oldmemo.etree
import omemo
from oldmemo.oldmemo import NAMESPACE, BundleImpl
from omemo.types import DeviceList

__all__ = ["BUNDLE_NODE_PREFIX", "DEVICE_LIST_NODE", "Pep", "XmppLink"]

logger = logging.getLogger(__name__)

PUBSUB = "http://jabber.org/protocol/pubsub"
PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
DATA_FORMS = "jabber:x:data"
DEVICE_LIST_NODE = f"{NAMESPACE}.devicelist"
BUNDLE_NODE_PREFIX = f"{NAMESPACE}.bundles:"
#: what every OMEMO node needs (see the module docstring)
NODE_OPTIONS = {"pubsub#access_model": "open", "pubsub#persist_items": "true",
                "pubsub#max_items": "1"}


class XmppLink(Protocol):
    """What this module needs of the XMPP connection (XmppConnection has it)."""

    async def send_iq(self, to: str, payload: ET.Element, *, iq_id: str | None = None,
                      timeout: float = 30.0, iq_type: str = "set") -> ET.Element: ...

    def send_message(self, to: str, payload: ET.Element) -> None: ...


def _form(form_type: str, fields: dict[str, str]) -> ET.Element:
    x = ET.Element(f"{{{DATA_FORMS}}}x", {"type": "submit"})
    for var, value in {"FORM_TYPE": form_type, **fields}.items():
        field = ET.SubElement(x, f"{{{DATA_FORMS}}}field", {"var": var})
        if var == "FORM_TYPE":
            field.set("type", "hidden")
        ET.SubElement(field, f"{{{DATA_FORMS}}}value").text = value
    return x


def _condition(e: Exception) -> str:
    return str(getattr(e, "condition", ""))


class Pep:
    """PEP for one account: publish ours, fetch anyone's."""

    def __init__(self, link: XmppLink, own_bare: str, timeout: float = 20.0) -> None:
        self.link = link
        self.own_bare = own_bare
        self.timeout = timeout

    async def _publish(self, node: str, item: ET.Element) -> None:
        pubsub = ET.Element(f"{{{PUBSUB}}}pubsub")
        publish = ET.SubElement(pubsub, f"{{{PUBSUB}}}publish", {"node": node})
        ET.SubElement(publish, f"{{{PUBSUB}}}item", {"id": "current"}).append(item)
        options = ET.SubElement(pubsub, f"{{{PUBSUB}}}publish-options")
        options.append(_form(f"{PUBSUB}#publish-options", NODE_OPTIONS))
        try:
            await self.link.send_iq(self.own_bare, pubsub, timeout=self.timeout)
            return
        except Exception as e:
            if _condition(e) != "conflict":  # precondition-not-met rides on <conflict/>
                raise
        logger.info("PEP node %s has other options; reconfiguring it", node)
        owner = ET.Element(f"{{{PUBSUB_OWNER}}}pubsub")
        configure = ET.SubElement(owner, f"{{{PUBSUB_OWNER}}}configure", {"node": node})
        configure.append(_form(f"{PUBSUB}#node_config", NODE_OPTIONS))
        await self.link.send_iq(self.own_bare, owner, timeout=self.timeout)
        await self.link.send_iq(self.own_bare, pubsub, timeout=self.timeout)

    async def _item(self, jid: str, node: str) -> ET.Element | None:
        """The payload of the node's newest item; None when there is no node or item."""
        pubsub = ET.Element(f"{{{PUBSUB}}}pubsub")
        ET.SubElement(pubsub, f"{{{PUBSUB}}}items", {"node": node, "max_items": "1"})
        try:
            result = await self.link.send_iq(jid, pubsub, iq_type="get", timeout=self.timeout)
        except Exception as e:
            if _condition(e) == "item-not-found":
                return None
            raise
        for item in result.iter(f"{{{PUBSUB}}}item"):
            return next(iter(item), None)
        return None

    # ------------------------------------------------- what python-omemo asks for

    async def upload_bundle(self, bundle: omemo.Bundle) -> None:
        if not isinstance(bundle, BundleImpl):
            raise omemo.UnknownNamespace(f"unknown OMEMO namespace {bundle.namespace}")
        try:
            await self._publish(f"{BUNDLE_NODE_PREFIX}{bundle.device_id}",
                                oldmemo.etree.serialize_bundle(bundle))
        except Exception as e:
            raise omemo.BundleUploadFailed(f"publishing our bundle failed: {e}") from e

    async def download_bundle(self, namespace: str, bare_jid: str, device_id: int
                              ) -> omemo.Bundle:
        if namespace != NAMESPACE:
            raise omemo.UnknownNamespace(f"unknown OMEMO namespace {namespace}")
        try:
            element = await self._item(bare_jid, f"{BUNDLE_NODE_PREFIX}{device_id}")
        except Exception as e:
            raise omemo.BundleDownloadFailed(f"{bare_jid} {device_id}: {e}") from e
        if element is None:
            raise omemo.BundleNotFound(f"{bare_jid} has no bundle for device {device_id}")
        try:
            return oldmemo.etree.parse_bundle(element, bare_jid, device_id)
        except Exception as e:
            raise omemo.BundleDownloadFailed(
                f"the bundle of {bare_jid} device {device_id} does not parse: {e}") from e

    async def delete_bundle(self, namespace: str, device_id: int) -> None:
        if namespace != NAMESPACE:
            raise omemo.UnknownNamespace(f"unknown OMEMO namespace {namespace}")
        owner = ET.Element(f"{{{PUBSUB_OWNER}}}pubsub")
        ET.SubElement(owner, f"{{{PUBSUB_OWNER}}}delete",
                      {"node": f"{BUNDLE_NODE_PREFIX}{device_id}"})
        try:
            await self.link.send_iq(self.own_bare, owner, timeout=self.timeout)
        except Exception as e:
            if _condition(e) != "item-not-found":
                raise omemo.BundleDeletionFailed(f"deleting bundle {device_id}: {e}") from e

    async def upload_device_list(self, namespace: str, device_list: DeviceList) -> None:
        if namespace != NAMESPACE:
            raise omemo.UnknownNamespace(f"unknown OMEMO namespace {namespace}")
        try:
            await self._publish(DEVICE_LIST_NODE, oldmemo.etree.serialize_device_list(device_list))
        except Exception as e:
            raise omemo.DeviceListUploadFailed(f"publishing our device list failed: {e}") from e

    async def download_device_list(self, namespace: str, bare_jid: str) -> DeviceList:
        if namespace != NAMESPACE:
            raise omemo.UnknownNamespace(f"unknown OMEMO namespace {namespace}")
        try:
            element = await self._item(bare_jid, DEVICE_LIST_NODE)
        except Exception as e:
            if _condition(e) in ("forbidden", "not-authorized", "service-unavailable",
                                 "feature-not-implemented"):
                return {}  # no (readable) OMEMO there: an empty list, as the library asks
            raise omemo.DeviceListDownloadFailed(f"{bare_jid}: {e}") from e
        if element is None:
            return {}
        try:
            return oldmemo.etree.parse_device_list(element)
        except Exception:
            logger.warning("the OMEMO device list of %s does not parse; taken as empty",
                           bare_jid)
            return {}

    def send_message(self, message: omemo.Message, bare_jid: str) -> None:
        """An OMEMO message of the library's own (session completion, heartbeat)."""
        if message.namespace != NAMESPACE:
            raise omemo.UnknownNamespace(f"unknown OMEMO namespace {message.namespace}")
        try:
            self.link.send_message(bare_jid, oldmemo.etree.serialize_message(message))
        except Exception as e:
            raise omemo.MessageSendingFailed(str(e)) from e
