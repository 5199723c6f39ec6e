"""JID strings and ``xmpp:`` URIs as the front ends and the client handle them: the one place
that parses what a user typed as an address.

``local@domain/resource`` (RFC 7622 §3.1): the *bare* JID is ``local@domain``; the local and
domain parts compare case-insensitively (RFC 7622 §3.2 and §3.3), the resource does not
(§3.4).  slixmpp does the full PRECIS preparation on the wire; :func:`parse_jid` refuses what
can never be a JID (an empty part, white space, control characters, a part longer than 1023
bytes, a character the localpart may not contain) with one plain sentence, so that a typo is
a usage error instead of a failure deep in the XMPP stack.

An ``xmpp:`` URI (RFC 5122) names the same thing: ``xmpp:bob@example.org``,
``xmpp:bob@example.org/laptop?message``, ``xmpp://me@example.org/bob@example.org`` or with
percent-encoded UTF-8 (``xmpp:j%C3%BCrgen@example.org``); :func:`parse_address` takes either.

Every running jinglefs has its own resource (:func:`new_resource`), so that the app and any
number of ``jinglefs`` commands stay online together on one account (RFC 6120 §7.7.2.2:
binding a resource that is in use replaces the other session).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = [
    "Jid",
    "JidError",
    "parse_jid",
    "parse_address",
    "check_resource",
    "new_resource",
    "RESOURCE_PREFIX",
    "bare_jid",
    "resource_of",
    "is_jid",
    "has_resource",
]

#: The resource of every jinglefs instance starts with this (then a short id).
RESOURCE_PREFIX = "jinglefs-"
#: RFC 7622 §3.2-§3.4: each part is at most 1023 octets (UTF-8).
MAX_PART_BYTES = 1023
#: RFC 7622 §3.3.1: characters the localpart never contains (besides controls and spaces).
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")
#: Characters that never appear in a domain name, an IPv4 or a bracketed IPv6 literal.
_DOMAIN_FORBIDDEN = frozenset("\"&'/<>@\\,;=?#%[]{}|^`*!$()+~")
_SCHEME = "xmpp:"
#: RFC 5122 §2.2: the query type and keys are plain tokens (unreserved or %XX).
_QUERY_TOKEN = re.compile(r"^(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*$")


class JidError(ValueError):
    """Not a usable address; ``str()`` is one plain sentence saying why."""


@dataclass(frozen=True)
class Jid:
    """A parsed JID: ``local`` may be empty only for a server address."""

    local: str
    domain: str
    resource: str = ""

    @property
    def bare(self) -> str:
        return f"{self.local}@{self.domain}" if self.local else self.domain

    def __str__(self) -> str:
        return f"{self.bare}/{self.resource}" if self.resource else self.bare


def _controls(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def _too_long(text: str) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES


def check_resource(text: str) -> str:
    """``text`` when it can be a resourcepart (RFC 7622 §3.4: not empty, at most 1023 bytes,
    no control characters); :class:`JidError` saying why not."""
    if not text:
        raise JidError("the resource is empty")
    if _too_long(text):
        raise JidError(f"the resource is longer than {MAX_PART_BYTES} bytes")
    if _controls(text):
        raise JidError("the resource contains a control character")
    if not text.strip():
        raise JidError("the resource is only white space")
    return text


def _check_domain(domain: str) -> str:
    """RFC 7622 §3.2: a DNS name (labels), an IPv4 address or a bracketed IPv6 literal."""
    if domain.endswith(".") and len(domain) > 1:
        domain = domain[:-1]  # RFC 7622 §3.2: a trailing dot is removed
    if not domain:
        raise JidError("the server name (after '@') is empty")
    if _too_long(domain):
        raise JidError(f"the server name is longer than {MAX_PART_BYTES} bytes")
    if _controls(domain) or any(c.isspace() for c in domain):
        raise JidError("the server name contains a space or a control character")
    if domain.startswith("["):
        if not domain.endswith("]"):
            raise JidError("the server's IPv6 address has no closing ']'")
        try:
            ipaddress.IPv6Address(domain[1:-1])
        except ValueError:
            raise JidError("the server's address in [...] is not an IPv6 address") from None
        return domain
    if ":" in domain:
        raise JidError("the server name contains ':' (a port does not belong in an address)")
    bad = sorted(set(domain) & _DOMAIN_FORBIDDEN)
    if bad:
        raise JidError(f"the server name contains {bad[0]!r}")
    if any(not label for label in domain.split(".")):
        raise JidError("the server name has an empty label ('..' or a leading '.')")
    if any(len(label.encode("utf-8", "surrogatepass")) > 63 for label in domain.split(".")):
        raise JidError("a label of the server name is longer than 63 bytes")
    return domain


def _check_local(local: str) -> str:
    """RFC 7622 §3.3: not empty, at most 1023 bytes, none of ``"&'/:<>@``, no spaces."""
    if not local:
        raise JidError("the name before '@' is empty")
    if _too_long(local):
        raise JidError(f"the name before '@' is longer than {MAX_PART_BYTES} bytes")
    if _controls(local) or any(c.isspace() for c in local):
        raise JidError("the name before '@' contains a space or a control character")
    bad = sorted(set(local) & _LOCAL_FORBIDDEN)
    if bad:
        raise JidError(f"the name before '@' contains {bad[0]!r}")
    return local


def parse_jid(text: str, *, need_local: bool = True) -> Jid:
    """Split and check a JID (RFC 7622 §3.1: the resource starts at the first ``/``, the
    localpart ends at the first ``@`` before it).  Surrounding white space is ignored.

    :param need_local: a person's or an account's address (``bob@example.org``), not a
        server's; this is what every front end asks for.
    :raises JidError: with one plain sentence.
    """
    t = text.strip()
    if not t:
        raise JidError("the address is empty")
    head, slash, resource = t.partition("/")
    if slash and not resource:
        raise JidError("the resource (the part after '/') is empty")
    if slash:
        check_resource(resource)
    if head.count("@") > 1:
        raise JidError("the address contains more than one '@' before the '/'")
    local, at, domain = head.partition("@")
    if not at:
        if need_local:
            raise JidError("the address has no '@' (it should look like bob@example.org)")
        return Jid("", _check_domain(head), resource)
    _check_local(local)
    return Jid(local, _check_domain(domain), resource)


def _decode(part: str, what: str) -> str:
    """RFC 5122 §2.6/§2.7: percent-encoded UTF-8 back to text."""
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in part):
        raise JidError(f"the xmpp: URI's {what} contains a space or a control character")
    for i, c in enumerate(part):
        if c == "%" and not re.match(r"[0-9A-Fa-f]{2}", part[i + 1:i + 3]):
            raise JidError(f"the xmpp: URI's {what} has a '%' that is not followed by two "
                           f"hexadecimal digits")
    try:
        return unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError:
        raise JidError(f"the xmpp: URI's {what} is not percent-encoded UTF-8") from None


def _parse_uri(text: str) -> Jid:
    """RFC 5122 §2.3: ``xmpp:`` [ ``//`` authority ``/`` ] path [ ``?`` query ]
    [ ``#`` fragment ]; the path is the JID, the authority (an account to act as) and the
    query (an action such as ``?message``) are checked and otherwise ignored."""
    rest = text[len(_SCHEME):]
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in rest):
        raise JidError("the xmpp: URI contains a space or a control character (RFC 5122 "
                       "wants them percent-encoded)")
    rest, _, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if not slash:
            raise JidError("the xmpp: URI has an account after '//' but no address after it")
        parse_jid(_decode(authority, "account"))
    else:
        path = rest
    if not path:
        raise JidError("the xmpp: URI names no address")
    # The resource may contain '/', '@', '?'... only when percent-encoded (RFC 5122 §2.7.3).
    head, slash, resource = path.partition("/")
    jid = _decode(head, "address") + (slash + _decode(resource, "resource") if slash else "")
    if question:
        querytype, *pairs = query.split(";")
        if not _QUERY_TOKEN.match(querytype):
            raise JidError("the xmpp: URI's query action is malformed")
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq or not key or not _QUERY_TOKEN.match(key):
                raise JidError("the xmpp: URI's query has a parameter that is not key=value")
            _decode(value, "query")
    if fragment:
        _decode(fragment, "fragment")
    return parse_jid(jid)


def parse_address(text: str) -> Jid:
    """A JID or an ``xmpp:`` URI (RFC 5122) naming a person or one of their devices; the
    scheme is case-insensitive.  :class:`JidError` with one plain sentence otherwise."""
    t = text.strip()
    if t[:len(_SCHEME)].lower() == _SCHEME:
        return _parse_uri(t)
    return parse_jid(t)


def new_resource() -> str:
    """``jinglefs-`` and eight random hex digits: a resource no other running instance has
    (1 in 4 billion), so that logging in never replaces another session of the account."""
    return RESOURCE_PREFIX + secrets.token_hex(4)


def bare_jid(jid: str) -> str:
    """``Alice@Example.org/phone`` -> ``alice@example.org``: the account, in the form used for
    comparisons and as a key (the resource dropped, RFC 7622 §3.2/§3.3 case folding)."""
    return jid.split("/", 1)[0].strip().lower()


def resource_of(jid: str) -> str:
    """``alice@example.org/phone`` -> ``phone``; ``""`` for a bare JID."""
    return jid.split("/", 1)[1] if "/" in jid else ""


def has_resource(jid: str) -> bool:
    """Whether ``jid`` names one device (a full JID, RFC 7622 §3.4)."""
    return "/" in jid.strip()


def is_jid(text: str) -> bool:
    """``local@domain`` with an optional ``/resource`` (:func:`parse_jid`): what a user must
    type for an account or a contact (a bare domain is a server, never a person)."""
    try:
        parse_jid(text)
    except JidError:
        return False
    return True
