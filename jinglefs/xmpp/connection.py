"""The XMPP connection (slixmpp): login, disco/caps, roster and presence, Jingle IQs.

The only module, with its siblings in :mod:`jinglefs.xmpp`, that imports slixmpp.
Incoming ``<jingle/>`` IQ-sets are handed to a callback synchronously, in the order
they arrived, together with a :class:`JingleReply` to ack or refuse them: the
session core decides, this module only speaks the wire.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import ssl
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
from ..jid import new_resource
from ..jingle import ns
from .caps import HASHES, disco_ver

logger = logging.getLogger(__name__)
# slixmpp logs its own view of failures ("CERT: Invalid certificate trust chain.", "Parse
# error: b'...'") at ERROR level; without a handler Python would print them on stderr next to
# the one sentence jinglefs says.  They stay available to a front end that configures logging.
logging.getLogger("slixmpp").addHandler(logging.NullHandler())

CAPS_NODE = "https://jinglefs.invalid/caps"  # XEP-0115 §4 node: identifies the software
CLIENT_NAME = "jinglefs"

_SHOW_RANK = {"chat": 0, "available": 1, "": 1, "away": 2, "xa": 3, "dnd": 4}

#: XEP-0199 (XMPP Ping) keepalive: a ping every this many seconds, answered within
#: KEEPALIVE_TIMEOUT.
KEEPALIVE_INTERVAL = 60.0
KEEPALIVE_TIMEOUT = 20.0

#: RFC 6120 §4.9.3 stream error conditions, in plain words (the rest are spelled out).
_STREAM_ERRORS = {
    "host-unknown": "the server does not host the domain {domain}",
    "improper-addressing": "the server does not host the domain {domain}",
    "system-shutdown": "the server is shutting down",
    "policy-violation": "the server refused the connection (policy violation)",
    "connection-timeout": "the server closed an idle connection",
    "reset": "the server reset the connection",
    "not-authorized": "the server refused the connection (not authorized)",
    "internal-server-error": "the server had an internal error",
    "remote-connection-failed": "the server could not reach its back end",
    "resource-constraint": "the server is too busy",
    "see-other-host": "the server sent us to another server",
}


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
        for plugin in ("xep_0030", "xep_0115"):
            x.register_plugin(plugin)
        # XEP-0115 §5.1 exactly, for our own ver and for checking peers' (jinglefs.xmpp.caps
        # says where slixmpp's own generator differs).
        setattr(x.plugin["xep_0115"], "generate_verstring", _verstring)  # noqa: B010
        # XEP-0199 (XMPP Ping) keepalive, on while a session is up (started on session_start,
        # stopped on disconnect by the plugin).  When a ping goes unanswered slixmpp calls
        # reconnect(): that is rerouted to _keepalive_failed, which only drops the stream,
        # so that the client's one reconnect loop is the only thing that ever logs in again
        # (slixmpp's own reconnect would log in a second time behind its back, and keep
        # doing so after aclose()).
        x.register_plugin("xep_0199", pconfig={"keepalive": True,
                                               "interval": KEEPALIVE_INTERVAL,
                                               "timeout": KEEPALIVE_TIMEOUT})
        setattr(x, "reconnect", self._keepalive_failed)  # noqa: B010 - an instance override
        if account.ca_file:
            x.ca_certs = Path(account.ca_file)
        if account.server:
            # An explicit host: STARTTLS on the given port, not direct TLS first
            # (natlab pitfall 14).
            x.enable_direct_tls = False
        x.enable_plaintext = plaintext
        self._features = list(features)
        #: our XEP-0115 verification string, as last put in our presence
        self.caps_ver = ""
        self._on_jingle = on_jingle
        self._on_change: list[Callable[[], None]] = []
        self._on_unavailable: list[Callable[[str], None]] = []
        self._on_disconnect: list[Callable[[str], None]] = []
        self._features_cache: dict[str, frozenset[str]] = {}
        self._client_names: dict[str, str] = {}
        #: per full JID: every disco identity name, and the XEP-0115 §4 caps node of its
        #: presence (what jinglefs.multi_content recognizes the software by)
        self._identity_names: dict[str, tuple[str, ...]] = {}
        self._caps_nodes: dict[str, str] = {}
        #: the XEP-0115 ver each resource last announced (its features change with it)
        self._caps_vers: dict[str, str] = {}
        #: the caps ver a resource had when its cached features were learnt
        self._features_ver: dict[str, str | None] = {}
        self._session_started = asyncio.Event()
        self._failure: BaseException | None = None
        self.connected = False
        #: aclose() was called: never log in again
        self.closed = False
        #: why the server ended the stream (RFC 6120 §4.9), in plain words, if it said so
        self._stream_error: str | None = None
        #: another session bound our resource and the server closed ours (RFC 6120 §7.7.2.2)
        self._replaced = False
        #: how many times that happened (each time we took a new resource)
        self.conflicts = 0
        x.register_handler(Callback(
            "jinglefs jingle", MatchXPath(f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"),
            self._handle_jingle))
        x.add_event_handler("session_start", self._session_start)
        x.add_event_handler("failed_auth", self._failed_auth)
        x.add_event_handler("connection_failed", self._connection_failed)
        x.add_event_handler("ssl_invalid_chain", self._tls_failed)
        x.add_event_handler("stream_error", self._stream_error_received)
        x.add_event_handler("disconnected", self._disconnected)
        x.add_event_handler("changed_status", lambda p: self._presence_changed(p))
        x.add_event_handler("presence_available", lambda p: self._caps_seen(p))
        x.add_event_handler("roster_update", lambda _: self._notify())

    # ---------------------------------------------------------------- lifecycle

    @property
    def jid(self) -> str:
        return str(self.xmpp.boundjid.full)

    @property
    def where(self) -> str:
        """The server as the user named it: ``--server`` host, else the JID's domain."""
        return self.account.server or self.domain

    @property
    def domain(self) -> str:
        return self.account.jid.partition("@")[2] or self.account.jid

    async def connect(self, timeout: float) -> None:
        """One login attempt; raise ConnectError / AuthError with one plain sentence.

        Called again after a failure or a lost connection (the client's reconnect loop
        decides when).  slixmpp would retry an unreachable server by itself with its own
        back-off; that attempt is cancelled so that only the caller's loop ever retries.
        An attempt that fails, times out or is cancelled leaves no connection behind: a
        login that the caller gave up on never completes later as a hidden session.
        """
        if self.closed:
            raise ConnectError("this connection was closed")
        x = self.xmpp
        x.plugin["xep_0030"].add_identity(category="client", itype="pc", name=CLIENT_NAME)
        for feature in self._features:
            x.plugin["xep_0030"].add_feature(feature)
        self._session_started.clear()
        self._failure = None
        self._stream_error = None
        x.stream_id = None  # set by slixmpp when the server opens its stream
        host = self.account.server
        port = self.account.port or 5222
        attempt = x.connect(host, port) if host else x.connect()
        try:
            async with asyncio.timeout(timeout):
                # The attempt ends with None once a TCP connection is up, or with the
                # next attempt slixmpp scheduled when every address failed.
                if await attempt is not None:
                    raise self._failure or ConnectError(f"cannot reach {self.where}")
                await self._session_started.wait()
            if self._failure is not None:
                raise self._failure
        except TimeoutError:
            self._abandon()
            if self._failure is not None:
                raise self._failure from None
            raise ConnectError(f"no answer from {self.where} within {timeout:.0f} s") from None
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Drop a login attempt at once: no retry by slixmpp, no half-open stream."""
        self.connected = False
        self.xmpp.cancel_connection_attempt()
        if self.xmpp.transport is not None:
            self.xmpp.abort()

    async def aclose(self) -> None:
        """Log out for good: the stream is closed (RFC 6120 §4.4) and never opened again."""
        self.closed = True
        self.xmpp.plugin["xep_0199"].disable_keepalive()  # type: ignore[no-untyped-call]
        self.xmpp.cancel_connection_attempt()  # a login attempt may still be under way
        if self.connected or self.xmpp.transport is not None:
            self.connected = False
            try:
                await asyncio.wait_for(self.xmpp.disconnect(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - best effort on shutdown
                logger.debug("disconnect did not finish cleanly", exc_info=True)
            if self.xmpp.transport is not None:
                self.xmpp.abort()

    def _keepalive_failed(self, wait: float = 0.0, reason: str = "") -> None:
        """slixmpp's ``reconnect()`` (called when a XEP-0199 keepalive ping is not answered,
        or on see-other-host): only drop the stream; the client's reconnect loop logs in."""
        logger.info("dropping the stream: %s", reason)
        if self._stream_error is None:
            self._stream_error = (f"the server did not answer a ping within "
                                  f"{KEEPALIVE_TIMEOUT:.0f} s")
        if self.xmpp.transport is not None:
            self.xmpp.abort()

    async def _session_start(self, _event: Any) -> None:
        try:
            await self.xmpp.get_roster()
        except (IqError, IqTimeout):
            logger.warning("could not fetch the roster")
        await self._update_caps()
        self.xmpp.send_presence()
        self.connected = True
        self._session_started.set()

    async def _update_caps(self) -> None:
        """XEP-0115 §6.1: the verification string of what our disco#info answers now, which
        the presence filter of slixmpp's plugin then puts in every available presence (and
        ``node#ver`` disco queries are answered, XEP-0115 §6.2)."""
        plugin = self.xmpp.plugin["xep_0115"]
        await plugin.update_caps(broadcast=False)
        self.caps_ver = str(await plugin.get_verstring() or "")

    async def set_features(self, features: Iterable[str]) -> bool:
        """Announce ``features`` instead of the current ones (XEP-0030); when they changed
        and we are online, recompute the caps and send presence again (XEP-0115 §6.1:
        "the application MUST recompute the verification string and SHOULD send a new
        presence broadcast").  True when something changed."""
        new = sorted(set(features))
        if new == sorted(set(self._features)):
            return False
        disco = self.xmpp.plugin["xep_0030"]
        for feature in set(self._features) - set(new):
            disco.del_feature(feature=feature)
        for feature in new:
            disco.add_feature(feature)
        self._features = new
        if self.connected:
            await self._update_caps()
            self.xmpp.send_presence()
        return True

    def _failed_auth(self, _stanza: Any) -> None:
        self._failure = AuthError(f"the server refused the account {self.account.jid} "
                                  f"or its password")
        self._session_started.set()
        self.xmpp.disconnect()

    def _connection_failed(self, error: Any) -> None:
        self._failure = ConnectError(self._unreachable_text(error))

    def _unreachable_text(self, error: Any) -> str:
        """Why a TCP (or direct TLS) connection failed, in one plain sentence."""
        host = self.where
        port = self.account.port or 5222
        at = f"{host} port {port}" if self.account.server else f"the server of {host}"
        if isinstance(error, ssl.SSLCertVerificationError):
            return self._certificate_text(error)
        if isinstance(error, ssl.SSLError):
            return f"the secure (TLS) connection to {host} failed ({error.reason or error})"
        if (isinstance(error, str) and "DNS" in error) or isinstance(error, socket.gaierror):
            return f"the server name {host} was not found (DNS)"
        if isinstance(error, ConnectionRefusedError):
            return f"{at} refused the connection (no XMPP server listening there)"
        if isinstance(error, TimeoutError):
            return f"{at} did not answer"
        if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH,
                                                          errno.EHOSTUNREACH):
            return f"{host} cannot be reached from this network"
        if isinstance(error, OSError):
            return f"cannot reach {at}: {(error.strerror or str(error)).lower()}"
        return f"cannot reach {at}"

    def _certificate_text(self, error: ssl.SSLError) -> str:
        why = str(getattr(error, "verify_message", "") or error.reason or "not valid")
        why = why.rstrip(".")
        why = why[:1].lower() + why[1:]
        return (f"the server's certificate for {self.domain} is not trusted ({why}); for a "
                f"server with its own certificate, give that certificate (--ca-file)")

    def _tls_failed(self, error: Any) -> None:
        """STARTTLS (RFC 6120 §5.4.3) handshake failed: the certificate, most often."""
        if isinstance(error, ssl.SSLCertVerificationError):
            self._failure = ConnectError(self._certificate_text(error))
        else:
            self._failure = ConnectError(self._unreachable_text(error))
        if self.xmpp.transport is not None:
            self.xmpp.abort()

    def _stream_error_received(self, error: Any) -> None:
        """RFC 6120 §4.9: the server ends the stream and says why."""
        condition = str(error["condition"] or "undefined-condition")
        if condition == "conflict":
            # RFC 6120 §7.7.2.2: another session bound our resource and the server closed
            # ours.  Never take it back (the two would replace each other forever): the
            # next login binds a new random one.
            self._replaced = True
            return
        text = _STREAM_ERRORS.get(condition)
        self._stream_error = text.format(domain=self.domain) if text else \
            f"the server closed the stream ({condition.replace('-', ' ')})"

    def _disconnected(self, reason: Any) -> None:
        was_connected = self.connected
        self.connected = False
        why = self._stream_error or "the connection to the server was lost"
        if self._replaced:
            self._replaced = False
            self.conflicts += 1
            old = self.xmpp.requested_jid.resource
            fresh = new_resource()
            self.xmpp.requested_jid.resource = fresh
            why = (f"another client logged in to this account with the same device name "
                   f"({old}); continuing as {fresh}")
            logger.warning("resource conflict: %s", why)
        if not self._session_started.is_set():
            if self._failure is None:
                self._failure = ConnectError(self._early_close_text())
            self._session_started.set()
        if was_connected:
            for cb in self._on_disconnect:
                cb(why)

    def _early_close_text(self) -> str:
        """Why the server closed the connection before the login finished."""
        if self._stream_error is not None:
            return self._stream_error
        if self.xmpp.stream_id is None:  # it never opened an XMPP stream
            port = self.account.port or 5222
            return (f"{self.where} port {port} does not answer like an XMPP server" if
                    self.account.server else f"the server of {self.where} does not answer "
                    f"like an XMPP server")
        if self.account.allow_plaintext:
            return "the server closed the connection during login"
        return ("the server closed the connection during login (does it offer TLS? is its "
                "certificate trusted? see --ca-file)")

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

    def send_message(self, to: str, payload: ET.Element) -> None:
        """A ``<message type='chat'/>`` with one payload and a XEP-0334 ``<store/>`` hint
        (OMEMO's own messages: session completion, jinglefs.omemo)."""
        msg = self.xmpp.make_message(mto=to, mtype="chat")
        msg.append(payload)
        msg.xml.append(ET.Element("{urn:xmpp:hints}store"))
        msg.send()

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
        caps = presence.xml.find("{http://jabber.org/protocol/caps}c")
        if caps is not None and caps.get("node"):
            self._caps_nodes[full] = str(caps.get("node"))
        if full != self.jid and full not in self._features_cache:
            asyncio.ensure_future(self._learn_features(full))
        self._notify()

    def _caps_seen(self, presence: Any) -> None:
        """XEP-0115 §6.1: a presence with a new verification string means other features
        (e.g. JET once the contact's OMEMO is set up; "changed_status" does not fire for
        caps alone): forget the cached ones and ask again."""
        full = str(presence["from"])
        caps = presence.xml.find("{http://jabber.org/protocol/caps}c")
        ver = caps.get("ver") if caps is not None else None
        if not ver or full == self.jid:
            return
        old = self._caps_vers.get(full)
        self._caps_vers[full] = str(ver)
        if old is not None and old != ver:
            self._features_cache.pop(full, None)
            asyncio.ensure_future(self._learn_features(full, fresh=True))

    async def _learn_features(self, full_jid: str, *, fresh: bool = False) -> None:
        await self.features(full_jid, fresh=fresh)
        self._notify()

    async def features(self, full_jid: str, timeout: float = 10.0, *,
                       fresh: bool = False) -> frozenset[str]:
        """XEP-0030 features of one resource (cached; XEP-0115 caps make this cheap);
        ``fresh``: ask the resource itself, not slixmpp's cache."""
        cached = self._features_cache.get(full_jid)
        if cached is not None:
            return cached
        ver = self._caps_vers.get(full_jid)
        # slixmpp's cache may still hold what the resource announced before new caps
        fresh = fresh or self._features_ver.get(full_jid, ver) != ver
        try:
            info = await self.xmpp.plugin["xep_0030"].get_info(jid=JID(full_jid),
                                                               cached=not fresh,
                                                               timeout=timeout)
        except (IqError, IqTimeout):
            return frozenset()
        if isinstance(info, slixmpp.Iq):
            info = info["disco_info"]
        found = frozenset(info["features"])
        names = [i[3] for i in info["identities"] if len(i) > 3 and i[3]]
        if names:
            self._client_names[full_jid] = names[0]
        self._identity_names[full_jid] = tuple(names)
        if self._caps_vers.get(full_jid) == ver:  # not outdated by new caps meanwhile
            self._features_cache[full_jid] = found
            self._features_ver[full_jid] = ver
        return found

    def software(self, full_jid: str) -> tuple[tuple[str, ...], str]:
        """(disco identity names, XEP-0115 caps node) of a resource, as far as known
        (call :meth:`features` first); empty when it told nothing."""
        return self._identity_names.get(full_jid, ()), self._caps_nodes.get(full_jid, "")

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


def _verstring(info: Any, algo: str) -> str | None:
    """slixmpp's ``generate_verstring(info, hash)``: XEP-0115 §5.1 over the disco#info
    stanza (None for a hash algorithm we do not know: slixmpp then skips the check)."""
    return disco_ver(info.xml, algo) if algo in HASHES else None


async def send_and_wait(iq: Iq, timeout: float) -> Iq:
    """slixmpp's ``Iq.send`` with types (slixmpp leaves it unannotated): the result IQ, or
    ``IqError`` / ``IqTimeout``."""
    result: Iq = await iq.send(timeout=timeout)  # type: ignore[no-untyped-call]
    return result
