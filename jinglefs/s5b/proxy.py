"""XEP-0065 over slixmpp: find our server's SOCKS5 proxy and activate bytestreams on it.

Function-style, on any connected ``slixmpp.BaseXMPP``; only raw stanzas are used, so
no slixmpp plugin has to be registered (the xep_0065 plugin's stream handling would
fight the Jingle session for the same sids).

* :func:`discover_proxy` – XEP-0065 §4: disco#items of our server, disco#info of each
  item for the ``proxy/bytestreams`` identity, then the streamhost query.
* :func:`activate` – XEP-0065 §6.3.5 (used by XEP-0260 §2.4): after both parties have
  connected to the proxy, the one that offered the candidate asks it to relay.  The
  ``sid`` is the S5B *transport* sid, not the Jingle session id (docs/protocol.md §15.17).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import xml.etree.ElementTree as ET

from slixmpp import BaseXMPP
from slixmpp.exceptions import IqError, IqTimeout

from ..errors import TransportError
from ..jingle import ns
from ..xmpp.connection import send_and_wait
from .protocol import S5bCandidate, candidate_priority

__all__ = ["ProxyError", "activate", "discover_proxy", "query_streamhost"]

logger = logging.getLogger(__name__)

_BS = ns.BYTESTREAMS


class ProxyError(TransportError):
    """The SOCKS5 proxy could not be found or used."""

    def __init__(self, msg: str, *, condition: str = "") -> None:
        super().__init__(msg)
        #: The RFC 6120 stanza error condition the proxy answered with ("" if none).
        self.condition = condition


async def _request(
    xmpp: BaseXMPP, to: str, itype: str, payload: ET.Element, timeout: float
) -> ET.Element:
    """Send one IQ; return the result stanza's XML or raise ProxyError."""
    iq = xmpp.make_iq(ito=to, itype=itype)  # type: ignore[arg-type]
    iq.append(payload)
    try:
        result = await send_and_wait(iq, timeout)
    except IqTimeout:
        raise ProxyError(f"{to} did not answer within {timeout:g} s", condition="timeout") from None
    except IqError as exc:
        condition = _error_condition(exc.iq.xml)
        raise ProxyError(f"{to} answered with {condition}", condition=condition) from None
    xml: ET.Element = result.xml
    return xml


def _error_condition(iq: ET.Element) -> str:
    err = iq.find("{jabber:client}error")
    if err is not None:
        for child in err:
            uri, _, local = child.tag[1:].partition("}")
            if uri == ns.STANZAS and local != "text":
                return local
    return "undefined-condition"


async def _is_proxy(xmpp: BaseXMPP, jid: str, timeout: float) -> bool:
    try:
        info = await _request(xmpp, jid, "get", ET.Element(f"{{{ns.DISCO_INFO}}}query"), timeout)
    except ProxyError as exc:
        logger.debug("disco#info of %s failed: %s", jid, exc)
        return False
    for ident in info.iterfind(f"{{{ns.DISCO_INFO}}}query/{{{ns.DISCO_INFO}}}identity"):
        if ident.get("category") == "proxy" and ident.get("type") == "bytestreams":
            return True
    return False


async def query_streamhost(
    xmpp: BaseXMPP, proxy_jid: str, *, timeout: float = 10.0
) -> tuple[str, str, int]:
    """Ask a proxy for its network address (XEP-0065 §4): (jid, host, port).

    Raises :class:`ProxyError` (``forbidden``, ``not-allowed``, timeout, or an answer
    without a usable ``<streamhost/>``).
    """
    reply = await _request(xmpp, proxy_jid, "get", ET.Element(f"{{{_BS}}}query"), timeout)
    for host_el in reply.iterfind(f"{{{_BS}}}query/{{{_BS}}}streamhost"):
        host = host_el.get("host")
        port = host_el.get("port", "")
        if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            continue
        return host_el.get("jid") or proxy_jid, host, int(port)
    raise ProxyError(f"{proxy_jid} sent no usable streamhost")


async def discover_proxy(
    xmpp: BaseXMPP, *, timeout: float = 10.0, local_preference: int = 0
) -> S5bCandidate | None:
    """Our server's first SOCKS5 proxy as a ``proxy`` candidate, or None.

    XEP-0065 §4 discovery; the first disco item with the ``proxy/bytestreams``
    identity whose streamhost query works wins (as Conversations does).  Every
    failure along the way is logged and means "no proxy", never an exception: a
    missing proxy only removes one candidate.  Priority per XEP-0260 §2.2
    (type preference 10).  The cid is random.
    """
    domain = str(xmpp.boundjid.domain)
    try:
        items_xml = await _request(
            xmpp, domain, "get", ET.Element(f"{{{ns.DISCO_ITEMS}}}query"), timeout
        )
    except ProxyError as exc:
        logger.info("no SOCKS5 proxy: disco#items of %s failed: %s", domain, exc)
        return None
    items: list[str] = []
    for item in items_xml.iterfind(f"{{{ns.DISCO_ITEMS}}}query/{{{ns.DISCO_ITEMS}}}item"):
        jid = item.get("jid")
        if jid and jid not in items:
            items.append(jid)
    checks = await asyncio.gather(*(_is_proxy(xmpp, jid, timeout) for jid in items))
    for jid, is_proxy in zip(items, checks, strict=True):
        if not is_proxy:
            continue
        try:
            sh_jid, host, port = await query_streamhost(xmpp, jid, timeout=timeout)
        except ProxyError as exc:
            logger.info("SOCKS5 proxy %s unusable: %s", jid, exc)
            continue
        return S5bCandidate(
            cid=secrets.token_hex(6),
            host=host,
            jid=sh_jid,
            port=port,
            priority=candidate_priority("proxy", local_preference),
            type="proxy",
        )
    logger.info("no SOCKS5 proxy among the items of %s", domain)
    return None


async def activate(
    xmpp: BaseXMPP, proxy_jid: str, sid: str, target_jid: str, *, timeout: float = 10.0
) -> None:
    """Ask the proxy to relay the bytestream ``sid`` to ``target_jid`` (XEP-0065 §6.3.5).

    Call it once both our connection and the peer's are at the proxy (ours with
    the same DST.ADDR as the peer's).  ``sid`` is the S5B transport sid and
    ``target_jid`` the peer's full JID.  Returns when the proxy confirmed; raises
    :class:`ProxyError` with the proxy's condition otherwise (``item-not-found``:
    our JID is not the requester of the hash, ``not-allowed``: only one side is
    connected, ``not-authorized``, ``internal-server-error``, or a timeout).
    """
    query = ET.Element(f"{{{_BS}}}query", {"sid": sid})
    ET.SubElement(query, f"{{{_BS}}}activate").text = target_jid
    try:
        await _request(xmpp, proxy_jid, "set", query, timeout)
    except ProxyError as exc:
        raise ProxyError(
            f"the proxy {proxy_jid} did not activate the bytestream: {exc}",
            condition=exc.condition,
        ) from None
