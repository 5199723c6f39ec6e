"""How a Jingle ``<transport/>`` element is modelled, and the registry of known ones.

Each transport method (IBB, SOCKS5, the ICE data channel) defines one frozen
dataclass that implements :class:`TransportPayload` and registers it with
:func:`register_transport`.  The session core never looks inside a payload: it
only knows the namespace, so transports stay independent of each other.

A payload carries whatever one message about that transport says: the offer in
session-initiate / session-accept / transport-replace / transport-accept, or an
update in transport-info (new candidates, candidate-used, activated, ...).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable


@runtime_checkable
class TransportPayload(Protocol):
    #: The ``xmlns`` of the ``<transport/>`` element.
    namespace: ClassVar[str]

    @classmethod
    def from_element(cls, el: ET.Element) -> TransportPayload:
        """Parse a ``<transport/>``; RemoteProtocolError(bad-request) if malformed."""
        ...

    def to_element(self) -> ET.Element:
        """Build the ``<transport/>`` element (with its namespace)."""
        ...


@dataclass(frozen=True)
class UnknownTransport:
    """A transport namespace we do not implement (answered with unsupported-transports)."""

    namespace_uri: str
    element: ET.Element

    namespace: ClassVar[str] = ""

    @classmethod
    def from_element(cls, el: ET.Element) -> UnknownTransport:
        return cls(el.tag.partition("}")[0].lstrip("{"), el)

    def to_element(self) -> ET.Element:
        return self.element


_REGISTRY: dict[str, type] = {}


def register_transport(cls: type) -> type:
    """Class decorator: make the codec parse ``<transport xmlns=cls.namespace>`` with ``cls``."""
    _REGISTRY[cls.namespace] = cls  # type: ignore[attr-defined]
    return cls


def parse_transport(el: ET.Element) -> TransportPayload:
    ns = el.tag.partition("}")[0].lstrip("{")
    cls = _REGISTRY.get(ns)
    if cls is None:
        return UnknownTransport.from_element(el)
    payload: TransportPayload = cls.from_element(el)  # type: ignore[attr-defined]
    return payload


def known_transports() -> frozenset[str]:
    return frozenset(_REGISTRY)
