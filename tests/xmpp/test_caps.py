"""XEP-0115 verification strings (jinglefs.xmpp.caps): the XEP's own examples, the cases
where slixmpp 1.17's generator departs from §5.1, and what jinglefs advertises."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET

import pytest
import slixmpp
from slixmpp.plugins.xep_0030.stanza import DiscoInfo
from slixmpp.plugins.xep_0115 import XEP_0115

from jinglefs.api import Account
from jinglefs.client import advertised_features
from jinglefs.jingle import ns
from jinglefs.jmi.protocol import NS as JMI
from jinglefs.xmpp.caps import (
    DISCO_INFO,
    Form,
    Identity,
    caps_ver,
    disco_info,
    disco_ver,
    well_formed,
)
from jinglefs.xmpp.connection import XmppConnection

CAPS = "http://jabber.org/protocol/caps"
ITEMS = "http://jabber.org/protocol/disco#items"
MUC = "http://jabber.org/protocol/muc"
LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def sha1_b64(s: str) -> str:
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def query(identities: list[dict[str, str]], features: list[str],
          forms: list[list[tuple[str, str | None, list[str]]]] = ()) -> ET.Element:  # type: ignore[assignment]
    """A disco#info <query/>; each form is a list of (var, type, values)."""
    q = ET.Element(f"{{{DISCO_INFO}}}query")
    for attrs in identities:
        ET.SubElement(q, f"{{{DISCO_INFO}}}identity", attrs)
    for f in features:
        ET.SubElement(q, f"{{{DISCO_INFO}}}feature", {"var": f})
    for form in forms:
        x = ET.SubElement(q, "{jabber:x:data}x", {"type": "result"})
        for var, ftype, values in form:
            field = ET.SubElement(x, "{jabber:x:data}field", {"var": var})
            if ftype:
                field.set("type", ftype)
            for v in values:
                ET.SubElement(field, "{jabber:x:data}value").text = v
    return q


# XEP-0115 §5.2: client/pc "Exodus 0.9.1" and four features
SIMPLE_FEATURES = [CAPS, DISCO_INFO, ITEMS, MUC]

# XEP-0115 §5.3: two identities (en, el), the same features, one softwareinfo form
COMPLEX = query(
    [{"category": "client", "type": "pc", "name": "Psi 0.11", LANG: "en"},
     {"category": "client", "type": "pc", "name": "Ψ 0.11", LANG: "el"}],
    SIMPLE_FEATURES,
    [[("FORM_TYPE", "hidden", ["urn:xmpp:dataforms:softwareinfo"]),
      ("ip_version", "text-multi", ["ipv4", "ipv6"]),
      ("os", None, ["Mac"]), ("os_version", None, ["10.5.1"]),
      ("software", None, ["Psi"]), ("software_version", None, ["0.11"])]])


def test_simple_generation_example() -> None:
    """XEP-0115 §5.2."""
    ver = caps_ver([Identity("client", "pc", name="Exodus 0.9.1")],
                   reversed(SIMPLE_FEATURES))
    assert ver == "QgayPKawpkPSDYmwT/WM94uAlu0="


def test_complex_generation_example() -> None:
    """XEP-0115 §5.3, from the data and from the disco#info XML."""
    form = Form("urn:xmpp:dataforms:softwareinfo", {
        "software_version": ["0.11"], "software": ["Psi"], "os_version": ["10.5.1"],
        "os": ["Mac"], "ip_version": ["ipv6", "ipv4"]})
    ver = caps_ver([Identity("client", "pc", "en", "Psi 0.11"),
                    Identity("client", "pc", "el", "Ψ 0.11")], SIMPLE_FEATURES, [form])
    assert ver == "q07IKJEyjvHSyhy//CH0CxmKi8w="
    assert disco_ver(COMPLEX) == "q07IKJEyjvHSyhy//CH0CxmKi8w="
    identities, features, forms = disco_info(COMPLEX)
    assert Identity("client", "pc", "el", "Ψ 0.11") in identities
    assert sorted(features) == SIMPLE_FEATURES and forms == [
        Form("urn:xmpp:dataforms:softwareinfo", {
            "ip_version": ["ipv4", "ipv6"], "os": ["Mac"], "os_version": ["10.5.1"],
            "software": ["Psi"], "software_version": ["0.11"]})]


def test_other_hash_algorithms() -> None:
    s = "client/pc//Exodus 0.9.1<" + "".join(f"{f}<" for f in SIMPLE_FEATURES)
    ver = caps_ver([Identity("client", "pc", name="Exodus 0.9.1")], SIMPLE_FEATURES,
                   algo="sha-256")
    assert ver == base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()


def test_forms_without_a_hidden_form_type_do_not_count() -> None:
    """XEP-0115 §5.4: such a form is ignored, the rest still hashed."""
    plain = query([{"category": "client", "type": "pc"}], [DISCO_INFO])
    visible = query([{"category": "client", "type": "pc"}], [DISCO_INFO],
                    [[("FORM_TYPE", None, ["urn:example"]), ("a", None, ["b"])]])
    untyped = query([{"category": "client", "type": "pc"}], [DISCO_INFO],
                    [[("a", None, ["b"])]])
    assert disco_ver(visible) == disco_ver(untyped) == disco_ver(plain) == \
        sha1_b64(f"client/pc//<{DISCO_INFO}<")


def test_duplicates_make_an_answer_ill_formed() -> None:
    """XEP-0115 §5.4."""
    ident = {"category": "client", "type": "pc"}
    assert well_formed(COMPLEX)
    assert not well_formed(query([ident, ident], [DISCO_INFO]))
    assert not well_formed(query([ident], [DISCO_INFO, DISCO_INFO]))
    form = [("FORM_TYPE", "hidden", ["urn:example"])]
    assert not well_formed(query([ident], [DISCO_INFO], [form, form]))


def _slixmpp_plugin() -> XEP_0115:
    x = slixmpp.ClientXMPP("someone@example.org/r", "pw")
    x.register_plugin("xep_0030")
    x.register_plugin("xep_0115")
    plugin: XEP_0115 = x.plugin["xep_0115"]
    return plugin


#: Two answers slixmpp 1.17 hashes differently from XEP-0115 §5.1 (why caps.py exists).
#: 1) identities sort by category, type, then xml:lang: "en" before "en-US" (slixmpp sorts
#:    the joined strings, and '-' comes before '/');
#: 2) a field without a value adds "var<" only (slixmpp adds "var<<").
DIVERGING = [
    (query([{"category": "client", "type": "pc", "name": "A", LANG: "en-US"},
            {"category": "client", "type": "pc", "name": "B", LANG: "en"}], [DISCO_INFO]),
     f"client/pc/en/B<client/pc/en-US/A<{DISCO_INFO}<"),
    (query([{"category": "client", "type": "pc"}], [DISCO_INFO],
           [[("FORM_TYPE", "hidden", ["urn:example"]), ("empty", "text-multi", []),
             ("z", None, ["1"])]]),
     f"client/pc//<{DISCO_INFO}<urn:example<empty<z<1<"),
]


@pytest.mark.parametrize(("q", "s"), DIVERGING, ids=["lang-order", "empty-field"])
async def test_where_slixmpp_differs_ours_follows_the_xep(q: ET.Element, s: str) -> None:
    plugin = _slixmpp_plugin()
    info = DiscoInfo(xml=q)
    assert disco_ver(q) == sha1_b64(s)
    assert XEP_0115.generate_verstring(plugin, info, "sha-1") != sha1_b64(s)


@pytest.mark.parametrize(("q", "s"), DIVERGING, ids=["lang-order", "empty-field"])
async def test_the_connection_hashes_with_ours(q: ET.Element, s: str) -> None:
    """Our own ver and the check of a peer's go through jinglefs.xmpp.caps."""
    conn = XmppConnection(Account(jid="me@example.org", password="pw"), features=[],
                          on_jingle=lambda *_: None)
    plugin = conn.xmpp.plugin["xep_0115"]
    assert plugin.generate_verstring(DiscoInfo(xml=q), "sha-1") == sha1_b64(s)
    assert plugin.generate_verstring(DiscoInfo(xml=q), "no-such-hash") is None


def test_advertised_features() -> None:
    """docs/interop.md §11 "Caps": what Dino, Gajim, Psi and Conversations look for, the
    hashes we compute but not sha-1 (Psi would prefer it)."""
    every = set(advertised_features(["ice", "s5b", "ibb"]))
    assert {ns.JINGLE, ns.FT, ns.S5B_TRANSPORT, ns.BYTESTREAMS, ns.IBB_TRANSPORT, ns.IBB,
            ns.HASHES, ns.HASH_NAMES + "sha-256", JMI, ns.WEBRTC_DC, ns.ICE_UDP,
            ns.DTLS} <= every
    assert ns.HASH_NAMES + "sha-1" not in every
    without_ice = set(advertised_features(["s5b", "ibb"]))
    assert every - without_ice == {ns.WEBRTC_DC, ns.ICE_UDP, ns.DTLS}
    ident = [Identity("client", "pc", name="jinglefs")]
    assert caps_ver(ident, every) != caps_ver(ident, without_ice)
