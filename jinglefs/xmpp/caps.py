"""XEP-0115 entity capabilities: the verification string of a disco#info answer.

Pure (no I/O): :func:`caps_ver` follows XEP-0115 §5.1 step by step, :func:`disco_info` reads
the identities, features and extended forms out of a ``<query/>`` the way XEP-0115 §5.4
says to (forms without a hidden FORM_TYPE are left out), and :func:`well_formed` applies the
§5.4 duplicate rules.

Why not slixmpp's generator (``XEP_0115.generate_verstring`` in slixmpp 1.17): it sorts the
identities as joined ``category/type/lang/name`` strings, so an ``en-US`` identity lands
before ``en`` ('-' sorts before '/'), where §5.1 sorts by category, then type, then
xml:lang; and a form field without a value adds an extra '<' that §5.1 does not.  Peers
that recompute our hash (Dino) or whose hash we check must agree byte for byte, so
:mod:`jinglefs.xmpp.connection` uses this module for both (tests/xmpp/test_caps.py holds
it to the XEP's §5.2 and §5.3 examples).
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["CAPS", "DISCO_INFO", "Form", "HASHES", "Identity", "caps_ver", "disco_info",
           "disco_ver", "well_formed"]

CAPS = "http://jabber.org/protocol/caps"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DATA_FORMS = "jabber:x:data"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: XEP-0115 §4 'hash' values (the IANA Hash Function Textual Names) -> hashlib name.
#: sha-1 is what every deployed client sends (XEP-0115 §9.1).
HASHES: Mapping[str, str] = {"sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256",
                             "sha-384": "sha384", "sha-512": "sha512", "md5": "md5"}


@dataclass(frozen=True, order=True)
class Identity:
    """One disco#info ``<identity/>`` (XEP-0030 §3.1); ``lang`` is its xml:lang."""

    category: str
    type: str
    lang: str = ""
    name: str = ""


@dataclass(frozen=True)
class Form:
    """One XEP-0128 extended-information form: its FORM_TYPE and the other fields'
    values by ``var``."""

    form_type: str
    fields: Mapping[str, Sequence[str]] = field(default_factory=dict)


def _octets(text: str) -> bytes:
    """The "i;octet" collation key (XEP-0115 §5.1: every sort is by octets)."""
    return text.encode("utf-8")


def caps_ver(identities: Iterable[Identity], features: Iterable[str],
             forms: Iterable[Form] = (), algo: str = "sha-1") -> str:
    """The verification string (XEP-0115 §5.1) for ``algo`` (a key of :data:`HASHES`)."""
    s: list[str] = []
    # §5.1 steps 2-3: identities by category, type, xml:lang; "c/t/lang/name<" each
    for ident in sorted(identities, key=lambda i: (_octets(i.category), _octets(i.type),
                                                   _octets(i.lang), _octets(i.name))):
        s.append(f"{ident.category}/{ident.type}/{ident.lang}/{ident.name}<")
    # steps 4-5: features, sorted
    s.extend(f"{feature}<" for feature in sorted(features, key=_octets))
    # steps 6-7: forms by FORM_TYPE; in each, the fields by var, each field's values sorted
    for form in sorted(forms, key=lambda f: _octets(f.form_type)):
        s.append(f"{form.form_type}<")
        for var in sorted((v for v in form.fields if v != "FORM_TYPE"), key=_octets):
            s.append(f"{var}<")
            s.extend(f"{value}<" for value in sorted(form.fields[var], key=_octets))
    # steps 8-9: UTF-8, hash, base64 (padded, no whitespace)
    digest = hashlib.new(HASHES[algo], "".join(s).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def _form_of(x: ET.Element) -> Form | None:
    """A form that counts for the hash, or None: XEP-0115 §5.4 ignores forms without a
    FORM_TYPE field of type hidden."""
    fields: dict[str, list[str]] = {}
    form_type: str | None = None
    for f in x.findall(f"{{{DATA_FORMS}}}field"):
        var = f.get("var")
        if var is None:
            continue
        values = [v.text or "" for v in f.findall(f"{{{DATA_FORMS}}}value")]
        if var == "FORM_TYPE":
            if f.get("type") != "hidden" or not values:
                return None
            form_type = values[0]
        else:
            fields.setdefault(var, []).extend(values)
    return None if form_type is None else Form(form_type, fields)


def disco_info(query: ET.Element) -> tuple[list[Identity], list[str], list[Form]]:
    """The identities, features and hashed forms of a disco#info ``<query/>``."""
    identities = [Identity(i.get("category", ""), i.get("type", ""), i.get(_XML_LANG, ""),
                           i.get("name", ""))
                  for i in query.findall(f"{{{DISCO_INFO}}}identity")]
    features = [f.get("var", "") for f in query.findall(f"{{{DISCO_INFO}}}feature")]
    forms = [form for x in query.findall(f"{{{DATA_FORMS}}}x")
             if (form := _form_of(x)) is not None]
    return identities, features, forms


def well_formed(query: ET.Element) -> bool:
    """XEP-0115 §5.4: no duplicate identity, no duplicate feature, no two forms with the
    same FORM_TYPE; an ill-formed answer never validates a verification string."""
    identities, features, forms = disco_info(query)
    types = [f.form_type for f in forms]
    return (len(set(identities)) == len(identities) and len(set(features)) == len(features)
            and len(set(types)) == len(types))


def disco_ver(query: ET.Element, algo: str = "sha-1") -> str:
    """The verification string of a disco#info ``<query/>`` (XEP-0115 §5.1)."""
    identities, features, forms = disco_info(query)
    return caps_ver(identities, features, forms, algo)
