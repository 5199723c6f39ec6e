"""The XMPP connection (slixmpp): login, disco/caps, roster and presence, Jingle IQs.

The only module, with its siblings in :mod:`jinglefs.xmpp`, that imports slixmpp.
Incoming ``<jingle/>`` IQ-sets are handed to a callback synchronously, in the order
they arrived, together with a :class:`JingleReply` to ack or refuse them: the
session core decides, this module only speaks the wire.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import slixmpp
from slixmpp import JID, Iq
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from ..api import Account, Contact, Resource
from ..errors import AuthError, ConnectError, ProtocolError
from ..jingle import ns

logger = logging.getLogger(__name__)

CAPS_NODE = "https://jinglefs.invalid/caps"  # XEP-0115 §4 node: identifies the software
CLIENT_NAME = "jinglefs"

_SHOW_RANK = {"chat": 0, "available": 1, "": 1, "away": 2, "xa": 3, "dnd": 4}


class JingleIqError(Exception):
    """An IQ we sent was answered with an error (or not answered at all)."""

    def __init__(self, condition: str, jingle_condition: str | None = None,
                 text: str = "") -> None:
        super().__init__(f"{condition}{'/' + jingle_condition if jingle_condition else ''}"
                         f"{': ' + text if text else ''}")
        self.condition = condition
        self.jingle_condition = jingle_condition


@dataclass
class JingleReply:
    """Answers one incoming Jingle IQ-set exactly once."""

    _iq: Any
    answered: bool = False

    def ack(self) -> None:
        """XEP-0166 §6.3.1: an empty IQ result, sent before anything the action causes."""
        if not self.answered:
            self.answered = True
            self._iq.reply(clear=True).send()

    def error(self, exc: ProtocolError) -> None:
        """XEP-0166 §6.3 / RFC 6120 §8.3: the stanza error plus the Jingle condition."""
        if self.answered:
            return
        self.answered = True
        send_error(self._iq, exc.condition, exc.error_type, exc.jingle_condition, str(exc))


def send_error(iq: Any, condition: str, error_type: str = "cancel",
               jingle_condition: str | None = None, text: str = "") -> None:
    reply = iq.reply(clear=True)
    reply["type"] = "error"
    err = ET.SubElement(reply.xml, "{jabber:client}error", {"type": error_type})
    ET.SubElement(err, f"{{{ns.STANZAS}}}{condition}")
    if text:
        ET.SubElement(err, f"{{{ns.STANZAS}}}text").text = text[:500]
    if jingle_condition:
        ET.SubElement(err, f"{{{ns.JINGLE_ERRORS}}}{jingle_condition}")
    reply.send()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        if host == "localhost":
            return True
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


class XmppConnection:
    """A logged-in XMPP account."""

    def __init__(self, account: Account, *, features: Iterable[str],
                 on_jingle: Callable[[str, ET.Element, JingleReply], None]) -> None:
        self.account = account
        plaintext = account.allow_plaintext
        if plaintext and not (account.server and _is_loopback(account.server)):
            raise ConnectError("plaintext is only allowed with a loopback --server")
        mechanisms = {k: plaintext for k in ("unencrypted_plain", "unencrypted_scram",
                                              "unencrypted_digest", "unencrypted_cram")}
        self.xmpp = slixmpp.ClientXMPP(
            f"{account.jid}/{account.resource}" if "/" not in account.jid else account.jid,
            account.password, plugin_config={"feature_mechanisms": mechanisms,
                                             "xep_0115": {"caps_node": CAPS_NODE}})
        x = self.xmpp
        for plugin in ("xep_0030", "xep_0115", "xep_0199"):
            x.register_plugin(plugin)
        x.plugin["xep_0199"].enable_keepalive(interval=60, timeout=20)
        if account.ca_file:
            x.ca_certs = Path(account.ca_file)
        if account.server:
            # An explicit host: STARTTLS on the given port, not direct TLS first
            # (natlab pitfall 14).
            x.enable_direct_tls = False
        x.enable_plaintext = plaintext
        self._features = list(features)
        self._on_jingle = on_jingle
        self._on_change: list[Callable[[], None]] = []
        self._on_unavailable: list[Callable[[str], None]] = []
        self._on_disconnect: list[Callable[[str], None]] = []
        self._features_cache: dict[str, frozenset[str]] = {}
        self._client_names: dict[str, str] = {}
        self._session_started = asyncio.Event()
        self._failure: BaseException | None = None
        self.connected = False
        x.register_handler(Callback(
            "jinglefs jingle", MatchXPath(f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"),
            self._handle_jingle))
        x.add_event_handler("session_start", self._session_start)
        x.add_event_handler("failed_auth", self._failed_auth)
        x.add_event_handler("connection_failed", self._connection_failed)
        x.add_event_handler("disconnected", self._disconnected)
        x.add_event_handler("changed_status", lambda p: self._presence_changed(p))
        x.add_event_handler("roster_update", lambda _: self._notify())

    # ---------------------------------------------------------------- lifecycle

    @property
    def jid(self) -> str:
        return str(self.xmpp.boundjid.full)

    async def connect(self, timeout: float) -> None:
        """One login attempt; raise ConnectError / AuthError with a plain reason.

        Called again after a failure or a lost connection (the client's reconnect loop
        decides when).  slixmpp would retry an unreachable server by itself with its own
        back-off; that attempt is cancelled so that only the caller's loop ever retries.
        """
        x = self.xmpp
        x.plugin["xep_0030"].add_identity(category="client", itype="pc", name=CLIENT_NAME)
        for feature in self._features:
            x.plugin["xep_0030"].add_feature(feature)
        self._session_started.clear()
        self._failure = None
        host = self.account.server
        port = self.account.port or 5222
        attempt = x.connect(host, port) if host else x.connect()
        try:
            async with asyncio.timeout(timeout):
                # The attempt ends with None once a TCP connection is up, or with the
                # next attempt slixmpp scheduled when every address failed.
                if await attempt is not None:
                    x.cancel_connection_attempt()
                    raise self._failure or ConnectError(
                        f"cannot reach {host or self.account.jid.split('@')[-1]}:{port}")
                await self._session_started.wait()
        except TimeoutError:
            x.cancel_connection_attempt()
            x.disconnect()
            if self._failure is not None:
                raise self._failure from None
            raise ConnectError(f"no answer from {host or self.account.jid.split('@')[-1]} "
                               f"within {timeout:.0f} s") from None
        if self._failure is not None:
            raise self._failure

    async def aclose(self) -> None:
        self.xmpp.cancel_connection_attempt()  # a login attempt may still be under way
        if self.connected or self.xmpp.transport is not None:
            self.connected = False
            try:
                await asyncio.wait_for(self.xmpp.disconnect(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - best effort on shutdown
                logger.debug("disconnect did not finish cleanly", exc_info=True)

    async def _session_start(self, _event: Any) -> None:
        try:
            await self.xmpp.get_roster()
        except (IqError, IqTimeout):
            logger.warning("could not fetch the roster")
        self.xmpp.send_presence()
        self.connected = True
        self._session_started.set()

    def _failed_auth(self, _stanza: Any) -> None:
        self._failure = AuthError(f"the server refused {self.account.jid}")
        self._session_started.set()
        self.xmpp.disconnect()

    def _connection_failed(self, error: Any) -> None:
        where = f"{self.account.server or self.account.jid}:{self.account.port or 5222}"
        self._failure = ConnectError(f"cannot reach {where}: {error}")

    def _disconnected(self, reason: Any) -> None:
        was_connected = self.connected
        self.connected = False
        if not self._session_started.is_set():
            if self._failure is None:
                self._failure = ConnectError(
                    "the server closed the connection before login"
                    + ("" if self.account.allow_plaintext else
                       " (is TLS available and the certificate trusted? see --ca-file)"))
            self._session_started.set()
        if was_connected:
            for cb in self._on_disconnect:
                cb(str(reason or "connection lost"))

    # --------------------------------------------------------------- jingle IQs

    def _handle_jingle(self, iq: Any) -> None:
        if iq["type"] != "set":
            return
        reply = JingleReply(iq)
        el = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
        assert el is not None
        try:
            self._on_jingle(str(iq["from"]), el, reply)
        except ProtocolError as exc:
            reply.error(exc)
        except Exception:
            logger.exception("internal error handling a jingle IQ")
            if not reply.answered:
                reply.answered = True
                send_error(iq, "internal-server-error")
        else:
            reply.ack()

    async def send_iq(self, to: str, payload: ET.Element, *, iq_id: str | None = None,
                      timeout: float = 30.0, iq_type: str = "set") -> ET.Element:
        """Send an IQ with one payload; return the result's payload (or raise JingleIqError)."""
        kind = cast(Literal["get", "set"], iq_type)
        iq = self.xmpp.make_iq(ito=to, itype=kind, id=iq_id) if iq_id else \
            self.xmpp.make_iq(ito=to, itype=kind)
        iq.append(payload)
        try:
            result = await send_and_wait(iq, timeout)
        except IqTimeout:
            raise JingleIqError("remote-server-timeout", text="no answer") from None
        except IqError as e:
            err = e.iq.xml.find("{jabber:client}error")
            condition, jingle_condition = "undefined-condition", None
            if err is not None:
                for child in err:
                    uri, _, local = child.tag[1:].partition("}")
                    if uri == ns.STANZAS and local != "text":
                        condition = local
                    elif uri == ns.JINGLE_ERRORS:
                        jingle_condition = local
            raise JingleIqError(condition, jingle_condition) from None
        return result.xml

    # ------------------------------------------------------------ peers, roster

    def on_contacts_changed(self, cb: Callable[[], None]) -> None:
        self._on_change.append(cb)

    def on_unavailable(self, cb: Callable[[str], None]) -> None:
        self._on_unavailable.append(cb)

    def on_disconnect(self, cb: Callable[[str], None]) -> None:
        self._on_disconnect.append(cb)

    def _notify(self) -> None:
        for cb in self._on_change:
            cb()

    def _presence_changed(self, presence: Any) -> None:
        full = str(presence["from"])
        if presence["type"] == "unavailable":
            self._features_cache.pop(full, None)
            for cb in self._on_unavailable:
                cb(full)
            self._notify()
            return
        if full != self.jid and full not in self._features_cache:
            asyncio.ensure_future(self._learn_features(full))
        self._notify()

    async def _learn_features(self, full_jid: str) -> None:
        await self.features(full_jid)
        self._notify()

    async def features(self, full_jid: str, timeout: float = 10.0) -> frozenset[str]:
        """XEP-0030 features of one resource (cached; XEP-0115 caps make this cheap)."""
        cached = self._features_cache.get(full_jid)
        if cached is not None:
            return cached
        try:
            info = await self.xmpp.plugin["xep_0030"].get_info(jid=JID(full_jid), cached=True,
                                                        timeout=timeout)
        except (IqError, IqTimeout):
            return frozenset()
        if isinstance(info, slixmpp.Iq):
            info = info["disco_info"]
        found = frozenset(info["features"])
        names = [i[3] for i in info["identities"] if len(i) > 3 and i[3]]
        if names:
            self._client_names[full_jid] = names[0]
        self._features_cache[full_jid] = found
        return found

    def online_resources(self, bare_jid: str) -> list[str]:
        """Full JIDs of a contact's available resources, best first (priority, then show)."""
        roster = cast(dict[str, dict[str, Any]],
                      self.xmpp.client_roster.presence(JID(bare_jid)))
        ranked = []
        for resource, pres in roster.items():
            ranked.append((-int(pres.get("priority", 0)),
                           _SHOW_RANK.get(pres.get("show", ""), 5),
                           f"{bare_jid}/{resource}"))
        return [full for *_, full in sorted(ranked)]

    def in_roster(self, bare_jid: str) -> bool:
        item = self.xmpp.client_roster[bare_jid] if bare_jid in self.xmpp.client_roster else None
        return item is not None and item["subscription"] in ("both", "from", "to")

    def contacts(self, transports_of: Callable[[frozenset[str]], frozenset[str]]
                 ) -> list[Contact]:
        roster = self.xmpp.client_roster
        out = []
        for bare in roster:
            if bare == self.xmpp.boundjid.bare:
                continue
            item = roster[bare]
            resources = []
            presences = cast(dict[str, dict[str, Any]], roster.presence(JID(bare)))
            for resource, pres in presences.items():
                full = f"{bare}/{resource}"
                feats = self._features_cache.get(full, frozenset())
                resources.append(Resource(
                    jid=full, show=pres.get("show") or "available",
                    priority=int(pres.get("priority", 0)),
                    can_receive_files=ns.FT in feats and ns.JINGLE in feats,
                    transports=transports_of(feats),
                    client_name=self._client_names.get(full, "")))
            out.append(Contact(jid=str(bare), name=item["name"] or "",
                               subscription=item["subscription"], in_roster=True,
                               resources=tuple(resources)))
        return sorted(out, key=lambda c: (c.name or c.jid).lower())


async def send_and_wait(iq: Iq, timeout: float) -> Iq:
    """slixmpp's ``Iq.send`` with types (slixmpp leaves it unannotated): the result IQ, or
    ``IqError`` / ``IqTimeout``."""
    result: Iq = await iq.send(timeout=timeout)  # type: ignore[no-untyped-call]
    return result
