"""XEP-0215 External Service Discovery: the STUN/TURN servers our own XMPP server offers.

:func:`fetch_ice_servers` follows Conversations (docs/protocol.md §12.2, §15.19): disco#info of our
server must list ``urn:xmpp:extdisco:2``; ``<services/>`` is queried once; a restricted TURN
service without credentials gets a ``<credentials/>`` request (XEP-0215 §3.3); services are
kept only with ``host`` *and* ``port``, a ``type`` of stun/stuns/turn/turns and a ``transport``
of udp/tcp (stuns/turns only over tcp); TURN needs username and password.  aioice takes one
STUN and one TURN server (docs/protocol.md §12.5), so :func:`pick_ice_servers` keeps the first
stun/udp and the first turn, preferring udp, then tcp, then turns (TLS over tcp).

Function-style on any connected ``slixmpp.BaseXMPP``, raw stanzas, no plugin (like
:mod:`jinglefs.xmpp.s5b`).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import datetime

from slixmpp import BaseXMPP
from slixmpp.exceptions import IqError, IqTimeout

from ..jingle import ns
from ..xmpp.connection import send_and_wait
from .protocol import IceServers

__all__ = ["ExternalService", "fetch_ice_servers", "parse_services", "pick_ice_servers"]

logger = logging.getLogger(__name__)

_TYPES = frozenset({"stun", "stuns", "turn", "turns"})
_TRANSPORTS = frozenset({"udp", "tcp"})


@dataclass(frozen=True)
class ExternalService:
    """One usable ``<service/>`` (XEP-0215 §2 attributes we need)."""

    type: str
    host: str
    port: int
    transport: str
    username: str | None = None
    password: str | None = None
    expires: datetime | None = None
    restricted: bool = False

    @property
    def is_turn(self) -> bool:
        return self.type in ("turn", "turns")

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)


def _parse_expires(value: str | None) -> datetime | None:
    """XEP-0082 DateTime; None when absent or unparsable (it is informational)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _parse_service(el: ET.Element) -> ExternalService | None:
    stype = el.get("type", "")
    host = (el.get("host") or "").strip()
    transport = el.get("transport", "")
    port_text = el.get("port", "")
    if stype not in _TYPES or not host or any(ch.isspace() for ch in host):
        return None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return None  # Conversations requires a port
    if transport not in _TRANSPORTS:
        return None  # ... and a transport (docs/protocol.md §15.19)
    if stype in ("stuns", "turns") and transport != "tcp":
        return None  # TLS needs a stream; DTLS variants are not supported by aioice
    return ExternalService(
        type=stype,
        host=host,
        port=int(port_text),
        transport=transport,
        username=el.get("username") or None,
        password=el.get("password") or None,
        expires=_parse_expires(el.get("expires")),
        restricted=el.get("restricted") in ("1", "true"),
    )


def parse_services(el: ET.Element) -> list[ExternalService]:
    """The usable services of a ``<services/>`` or ``<credentials/>`` element, in order.

    Services with ``action='remove'``/``'delete'`` (pushes, XEP-0215 §3.2) are left out.
    """
    out: list[ExternalService] = []
    for child in el.iter(f"{{{ns.EXTDISCO}}}service"):
        if child.get("action") in ("remove", "delete"):
            continue
        service = _parse_service(child)
        if service is None:
            logger.debug("ignoring external service %s", child.attrib)
            continue
        out.append(service)
    return out


def pick_ice_servers(services: list[ExternalService]) -> IceServers | None:
    """First stun/udp, first TURN with credentials (tcp, then udp, then turns/tcp).

    aioice takes a single TURN server.  TURN over TCP is preferred when the server offers
    both: it relays wherever TURN over UDP would, and also from networks that block UDP,
    where a UDP-only choice leaves ICE without any candidate that works (natlab
    "udp-blocked").  Direct pairs are still tried first over UDP.
    """
    stun = next((s for s in services if s.type == "stun" and s.transport == "udp"), None)
    turns = [s for s in services if s.is_turn and s.has_credentials]
    turn = next(
        (
            s
            for kind in (("turn", "tcp"), ("turn", "udp"), ("turns", "tcp"))
            for s in turns
            if (s.type, s.transport) == kind
        ),
        None,
    )
    if stun is None and turn is None:
        return None
    servers = IceServers()
    if stun is not None:
        servers = replace(servers, stun_host=stun.host, stun_port=stun.port)
    if turn is not None:
        servers = replace(
            servers,
            turn_host=turn.host,
            turn_port=turn.port,
            turn_username=turn.username,
            turn_password=turn.password,
            turn_transport="udp" if turn.transport == "udp" else "tcp",
            turn_ssl=turn.type == "turns",
            turn_expires=turn.expires,
        )
        # The same server over UDP too (Prosody announces both): the native data channel
        # relays over UDP only (jinglefs/ice/backend.py).
        also_udp = next((s for s in turns if (s.type, s.transport) == ("turn", "udp")
                         and (s.host, s.username, s.password)
                         == (turn.host, turn.username, turn.password)), None)
        if also_udp is not None and also_udp is not turn:
            servers = replace(servers, turn_also_udp_port=also_udp.port)
    return servers


async def _get(xmpp: BaseXMPP, to: str, payload: ET.Element, timeout: float) -> ET.Element | None:
    iq = xmpp.make_iq(ito=to, itype="get")
    iq.append(payload)
    try:
        result = await send_and_wait(iq, timeout)
    except (IqError, IqTimeout) as exc:
        logger.info("XEP-0215 query to %s failed: %s", to, type(exc).__name__)
        return None
    xml: ET.Element = result.xml
    return xml


async def fetch_ice_servers(
    xmpp: BaseXMPP, domain: str, *, timeout: float = 10.0
) -> IceServers | None:
    """Ask our server (``domain``) for STUN/TURN; None when it offers nothing usable.

    Never raises for a server that lacks XEP-0215 or answers with an error: ICE then runs
    with host candidates only.
    """
    info = await _get(xmpp, domain, ET.Element(f"{{{ns.DISCO_INFO}}}query"), timeout)
    if info is None:
        return None
    features = {f.get("var") for f in info.iter(f"{{{ns.DISCO_INFO}}}feature")}
    if ns.EXTDISCO not in features:
        logger.info("%s does not offer %s", domain, ns.EXTDISCO)
        return None
    answer = await _get(xmpp, domain, ET.Element(f"{{{ns.EXTDISCO}}}services"), timeout)
    if answer is None:
        return None
    services = parse_services(answer)

    # XEP-0215 §3.3: restricted services may need a separate credentials request.
    resolved: list[ExternalService] = []
    for service in services:
        if service.is_turn and service.restricted and not service.has_credentials:
            request = ET.Element(f"{{{ns.EXTDISCO}}}credentials")
            ET.SubElement(
                request,
                f"{{{ns.EXTDISCO}}}service",
                {"host": service.host, "type": service.type, "port": str(service.port)},
            )
            reply = await _get(xmpp, domain, request, timeout)
            creds = [
                c
                for c in (parse_services(reply) if reply is not None else [])
                if c.type == service.type and c.host == service.host and c.has_credentials
            ]
            if creds:
                service = replace(
                    service,
                    username=creds[0].username,
                    password=creds[0].password,
                    expires=creds[0].expires or service.expires,
                )
        resolved.append(service)
    servers = pick_ice_servers(resolved)
    logger.info("XEP-0215 ICE servers from %s: %s", domain, _describe(servers))
    return servers


def _describe(servers: IceServers | None) -> str:
    if servers is None:
        return "none"
    parts = []
    if servers.stun_host:
        parts.append(f"stun {servers.stun_host}:{servers.stun_port}")
    if servers.turn_host:
        scheme = "turns" if servers.turn_ssl else "turn"
        parts.append(f"{scheme} {servers.turn_host}:{servers.turn_port}/{servers.turn_transport}")
    return ", ".join(parts)
