"""The JET <security/> element in a <content/> (XEP-0391 §4.1, XEP-0396 §2), shaped as
Conversations and Dino send it (docs/interop.md §9), through the Jingle codec."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from jinglefs.errors import RemoteProtocolError
from jinglefs.jet import protocol
from jinglefs.jet.protocol import (
    AES_128_GCM_NOPADDING,
    JET,
    LEGACY_OMEMO,
    Security,
    omemo_security,
    peer_takes_jet,
)
from jinglefs.jingle.codec import encode_jingle, parse_jingle
from jinglefs.jingle.model import Action, Content, Jingle, Role

ENVELOPE = ("<encrypted xmlns='eu.siacs.conversations.axolotl'>"
            "<header sid='1234'><key rid='987' prekey='true'>a2V5</key>"
            "<key rid='654'>b3RoZXI=</key><iv>aXZpdml2aXZpdg==</iv></header></encrypted>")

CONVERSATIONS = f"""
<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='c1'>
  <content creator='initiator' name='0' senders='initiator'>
    <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
      <file><name>a.jpg</name><size>5</size><mediaType>image/jpeg</mediaType></file>
    </description>
    <transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='ibb-1' block-size='8192'/>
    <security xmlns='urn:xmpp:jingle:jet:0' name='0'
              cipher='urn:xmpp:ciphers:aes-128-gcm-nopadding'
              type='eu.siacs.conversations.axolotl'>{ENVELOPE}</security>
  </content>
</jingle>"""

DINO = f"""
<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='d1' initiator='a@x/d'>
  <content creator='initiator' name='a-file-offer' senders='initiator'>
    <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
      <file><name>b.png</name><size>7</size></file>
    </description>
    <transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='s' mode='tcp'/>
    <security xmlns='urn:xmpp:jingle:jet:0'
              cipher='urn:xmpp:ciphers:aes-128-gcm-nopadding'
              type='eu.siacs.conversations.axolotl'>{ENVELOPE}</security>
  </content>
</jingle>"""


def only_content(text: str) -> Content:
    [content] = parse_jingle(ET.fromstring(text)).contents
    return content


@pytest.mark.parametrize(("text", "name"), [(CONVERSATIONS, "0"), (DINO, None)])
def test_both_clients_offers_parse_with_their_envelope(text: str, name: str | None) -> None:
    security = only_content(text).security
    assert security is not None and security.supported
    assert (security.cipher, security.type, security.name) == \
        (AES_128_GCM_NOPADDING, LEGACY_OMEMO, name)
    env = security.envelope
    assert env.tag == "{eu.siacs.conversations.axolotl}encrypted"
    header = env.find("{eu.siacs.conversations.axolotl}header")
    assert header is not None and header.get("sid") == "1234"
    keys = header.findall("{eu.siacs.conversations.axolotl}key")
    assert [(k.get("rid"), k.get("prekey"), k.text) for k in keys] == \
        [("987", "true", "a2V5"), ("654", None, "b3RoZXI=")]


def test_we_write_name_for_conversations_and_the_envelope_intact() -> None:
    content = Content(Role.INITIATOR, "0", senders=Role.INITIATOR,
                      security=omemo_security(ET.fromstring(ENVELOPE)))
    el = encode_jingle(Jingle(Action.SESSION_INITIATE, "s", contents=(content,)))
    sec = el.find(f".//{{{JET}}}security")
    assert sec is not None
    assert sec.attrib == {"name": "0", "cipher": AES_128_GCM_NOPADDING, "type": LEGACY_OMEMO}
    assert ET.tostring(list(sec)[0]) == ET.tostring(ET.fromstring(ENVELOPE))
    # and it reads back the same
    back = only_content(ET.tostring(el).decode())
    assert back.security is not None and content.security is not None
    assert (back.security.cipher, back.security.type, back.security.name) == \
        (content.security.cipher, content.security.type, "0")


def test_unknown_cipher_parses_but_is_not_supported() -> None:
    text = DINO.replace("aes-128-gcm-nopadding", "aes-256-gcm-nopadding")
    security = only_content(text).security
    assert security is not None and not security.supported


@pytest.mark.parametrize("broken", [
    "<security xmlns='urn:xmpp:jingle:jet:0' type='eu.siacs.conversations.axolotl'>"
    f"{ENVELOPE}</security>",
    "<security xmlns='urn:xmpp:jingle:jet:0' cipher='c'>" f"{ENVELOPE}</security>",
    "<security xmlns='urn:xmpp:jingle:jet:0' cipher='c' type='t'/>",
])
def test_a_security_without_cipher_type_or_envelope_is_bad_request(broken: str) -> None:
    text = DINO.replace(DINO[DINO.index("<security"):DINO.index("</content>")], broken)
    with pytest.raises(RemoteProtocolError) as e:
        parse_jingle(ET.fromstring(text))
    assert e.value.condition == "bad-request"


def test_two_security_elements_are_refused() -> None:
    start, end = DINO.index("<security"), DINO.index("</content>")
    text = DINO[:end] + DINO[start:end] + DINO[end:]
    with pytest.raises(RemoteProtocolError):
        parse_jingle(ET.fromstring(text))


def test_an_offer_without_security_has_none() -> None:
    text = DINO[:DINO.index("<security")] + DINO[DINO.index("</content>"):]
    assert only_content(text).security is None


def test_peer_support_needs_both_features() -> None:
    assert peer_takes_jet(frozenset(protocol.FEATURES) | {"urn:xmpp:jingle:1"})
    assert not peer_takes_jet(frozenset({JET}))
    assert not peer_takes_jet(frozenset({protocol.JET_OMEMO}))


def test_security_equality_ignores_the_element_object() -> None:
    a = Security(AES_128_GCM_NOPADDING, LEGACY_OMEMO, ET.fromstring(ENVELOPE))
    b = Security(AES_128_GCM_NOPADDING, LEGACY_OMEMO, ET.fromstring("<x/>"))
    assert a == b and a.supported
