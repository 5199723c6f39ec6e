"""XEP-0115 on the real Prosody: a plain slixmpp observer subscribed to a jinglefs account
gets its presence, asks for ``node#ver`` (XEP-0115 §6.2), recomputes the verification
string from that answer with its own code (below, independent of jinglefs.xmpp.caps) and
finds the features Dino, Gajim, Psi and Conversations look for (docs/interop.md §11).
When the features change, the presence comes again with the new ver (XEP-0115 §6.1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import slixmpp

from jinglefs.jingle import ns
from jinglefs.xmpp.connection import CAPS_NODE
from tests.servers.prosody import ProsodyServer
from tests.xmpp.test_ibb_prosody import login as raw_login

from .conftest import BOUND, logged_in

pytestmark = pytest.mark.e2e

CAPS = "http://jabber.org/protocol/caps"
DISCO = "http://jabber.org/protocol/disco#info"
JMI = "urn:xmpp:jingle-message:0"


def observer_ver(query: ET.Element) -> str:
    """XEP-0115 §5.1 written out again for the observer: "category/type/lang/name<" per
    identity in (category, type, lang) octet order, "feature<" per sorted feature, SHA-1,
    base64.  (jinglefs advertises no XEP-0128 form; the test checks there is none.)"""
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    rows = []
    for ident in query.iter(f"{{{DISCO}}}identity"):
        parts = [ident.get("category", ""), ident.get("type", ""), ident.get(lang, ""),
                 ident.get("name", "")]
        rows.append(([p.encode() for p in parts[:3]], "/".join(parts)))
    text = "".join(f"{joined}<" for _, joined in sorted(rows))
    feats = sorted((f.get("var", "") for f in query.iter(f"{{{DISCO}}}feature")),
                   key=str.encode)
    text += "".join(f"{f}<" for f in feats)
    return base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode()


class Observer:
    """A plain slixmpp client that records the caps in every presence of one contact."""

    def __init__(self, xmpp: slixmpp.ClientXMPP, contact: str) -> None:
        self.xmpp = xmpp
        self.caps: asyncio.Queue[tuple[str, ET.Element]] = asyncio.Queue()

        def on_presence(pres: Any) -> None:
            c = pres.xml.find(f"{{{CAPS}}}c")
            if str(pres["from"].bare) == contact and c is not None:
                self.caps.put_nowait((str(pres["from"]), c))

        xmpp.add_event_handler("presence_available", on_presence)

    async def next_caps(self) -> tuple[str, ET.Element]:
        return await asyncio.wait_for(self.caps.get(), BOUND)

    async def disco(self, to: str, node: str | None = None) -> ET.Element:
        iq = self.xmpp.make_iq(ito=to, itype="get")
        q = ET.SubElement(iq.xml, f"{{{DISCO}}}query")
        if node:
            q.set("node", node)
        result = await iq.send(timeout=BOUND)
        found = result.xml.find(f"{{{DISCO}}}query")
        assert found is not None
        return found


def fresh_pair(prosody: ProsodyServer) -> tuple[str, str]:
    """A jinglefs account and an observer account, subscribed to each other."""
    tag = secrets.token_hex(3)
    jfs, obs = f"caps-j-{tag}", f"caps-o-{tag}"
    prosody.add_account(obs)
    prosody.add_account(jfs, roster=[obs])
    return jfs, obs


async def checked_caps(observer: Observer, full: str, c: ET.Element) -> tuple[str, set[str]]:
    """The ver of one presence, checked against the disco#info answers; the features."""
    assert c.get("hash") == "sha-1" and c.get("node") == CAPS_NODE
    ver = c.get("ver", "")
    answer = await observer.disco(full, f"{CAPS_NODE}#{ver}")
    assert answer.get("node") == f"{CAPS_NODE}#{ver}"  # XEP-0115 §6.2
    assert answer.find("{jabber:x:data}x") is None
    assert observer_ver(answer) == ver
    plain = await observer.disco(full)  # the same answer without the node
    assert observer_ver(plain) == ver
    return ver, {f.get("var", "") for f in answer.iter(f"{{{DISCO}}}feature")}


async def test_presence_caps_match_disco_and_change_with_the_features(
        prosody: ProsodyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    jfs, obs = fresh_pair(prosody)
    xmpp = await raw_login(prosody.account(obs), "observer")
    try:
        observer = Observer(xmpp, prosody.jid(jfs))
        xmpp.send_presence()  # the server then sends us our contacts' presence
        async with logged_in(prosody, jfs) as client:
            # Login may announce features more than once (JET once our OMEMO device is
            # up, before login returns): the last presence carries what we have now.
            full, c = await observer.next_caps()
            while c.get("ver") != client.connection.caps_ver:
                full, c = await observer.next_caps()
            assert full == client.jid
            ver, features = await checked_caps(observer, full, c)
            assert ver == client.connection.caps_ver
            # "can receive files" for Dino (jingle + FT + a streaming transport), Gajim
            # (FT, then s5b or ibb), Psi and Conversations (transports from features),
            # Libervia (FT on the full JID); sha-256 for Gajim/Psi, never sha-1; JMI.
            assert {ns.JINGLE, ns.FT, ns.S5B_TRANSPORT, ns.IBB_TRANSPORT, ns.HASHES,
                    ns.HASH_NAMES + "sha-256", JMI, ns.WEBRTC_DC, CAPS} <= features
            assert ns.HASH_NAMES + "sha-1" not in features
            identities = [(i.get("category"), i.get("type"), i.get("name")) for i in
                          (await observer.disco(full)).iter(f"{{{DISCO}}}identity")]
            assert identities == [("client", "pc", "jinglefs")]

            # The ICE rung goes away: new features, new ver, presence again (§6.1).
            monkeypatch.delitem(client.factories, "ice")
            assert await client.refresh_features()
            full2, c2 = await observer.next_caps()
            new_ver, new_features = await checked_caps(observer, full2, c2)
            assert full2 == full and new_ver != ver and new_ver == client.connection.caps_ver
            assert features - new_features == {ns.WEBRTC_DC, ns.ICE_UDP, ns.DTLS}
            assert new_features - features == set()
            assert not await client.refresh_features()  # nothing changed: no presence
            assert observer.caps.empty()
    finally:
        xmpp.disconnect()
