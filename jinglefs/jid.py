"""JID strings as the front ends and the client handle them (RFC 7622 address format).

``local@domain/resource``: the *bare* JID is ``local@domain``; the local and domain parts
compare case-insensitively (RFC 7622 §3.2 and §3.3), the resource does not (§3.4).  This is
deliberately small: slixmpp does the full PRECIS preparation on the wire; these helpers
compare, display and check what a user typed.
"""

from __future__ import annotations

__all__ = ["bare_jid", "resource_of", "is_jid", "has_resource"]


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
    """``local@domain`` with an optional ``/resource``, no white space: what a user must type
    for an account or a contact (a bare domain is a server, never a person)."""
    t = text.strip()
    local, at, rest = t.partition("@")
    domain = rest.split("/", 1)[0]
    return bool(at and local and domain) and not any(c.isspace() for c in t) \
        and "/" not in local
