"""python-omemo's SessionManager for one account: PEP through :class:`.pep.Pep`, trust
by :mod:`.trust` (BTBV)."""

from __future__ import annotations

from typing import Optional

import omemo
from omemo.types import DeviceInformation, DeviceList, TrustLevel

from . import trust
from .pep import Pep

__all__ = ["manager_class"]


def manager_class(pep: Pep) -> type[omemo.SessionManager]:
    """A SessionManager class bound to ``pep`` (python-omemo calls its XMPP hooks as
    static methods, before :meth:`~omemo.SessionManager.create` returns the instance)."""

    class AccountSessionManager(omemo.SessionManager):
        @staticmethod
        async def _upload_bundle(bundle: omemo.Bundle) -> None:
            await pep.upload_bundle(bundle)

        @staticmethod
        async def _download_bundle(namespace: str, bare_jid: str, device_id: int
                                   ) -> omemo.Bundle:
            return await pep.download_bundle(namespace, bare_jid, device_id)

        @staticmethod
        async def _delete_bundle(namespace: str, device_id: int) -> None:
            await pep.delete_bundle(namespace, device_id)

        @staticmethod
        async def _upload_device_list(namespace: str, device_list: DeviceList) -> None:
            await pep.upload_device_list(namespace, device_list)

        @staticmethod
        async def _download_device_list(namespace: str, bare_jid: str) -> DeviceList:
            return await pep.download_device_list(namespace, bare_jid)

        async def _evaluate_custom_trust_level(self, device: DeviceInformation) -> TrustLevel:
            return trust.core_level(device.trust_level_name)

        async def _make_trust_decision(self, undecided: frozenset[DeviceInformation],
                                       identifier: Optional[str]) -> None:  # noqa: UP045
            for bare in {d.bare_jid for d in undecided}:
                known = await self.get_device_information(bare)
                level = trust.decide(d.trust_level_name for d in known)
                for device in undecided:
                    if device.bare_jid == bare:
                        await self.set_trust(bare, device.identity_key, level)

        @staticmethod
        async def _send_message(message: omemo.Message, bare_jid: str) -> None:
            pep.send_message(message, bare_jid)

    return AccountSessionManager
