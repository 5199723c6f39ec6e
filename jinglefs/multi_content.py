"""Which peers take several files in one Jingle session (docs/protocol.md §3.5).

XEP-0166 §7.2.10 lets a session-initiate carry several ``<content/>`` elements and XEP-0234
§5 puts one file in each, but Conversations and Dino take only one content per session,
and no disco feature says "several contents welcome".  So the sender recognizes the
software instead: by the name of its XEP-0030 identity (``<identity category='client'
name='…'/>``) or the host of its XEP-0115 §4 caps ``node``.  Known to take several
contents: jinglefs itself, Psi (and Psi+) and Libervia (formerly Salut à Toi).  Anyone
else gets one session per file.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["MULTI_CONTENT_NAMES", "MULTI_CONTENT_HOSTS", "accepts_several_contents",
           "KNOWN_CLIENTS", "known_client"]

#: First word of a disco identity name (lower case) of software that takes several
#: contents per session.
MULTI_CONTENT_NAMES = frozenset({"jinglefs", "psi", "psi+", "libervia"})
#: Caps node hosts (XEP-0115 §4 'node', a URI naming the software) of the same software;
#: a subdomain counts too.
MULTI_CONTENT_HOSTS = ("jinglefs.invalid", "psi-im.org", "psi-plus.com", "libervia.org",
                       "salut-a-toi.org")


def _name_matches(name: str) -> bool:
    text = name.strip().casefold()
    if text.startswith("salut à toi") or text.startswith("salut a toi"):
        return True
    first = text.split(maxsplit=1)[0] if text else ""
    return first in MULTI_CONTENT_NAMES


def _node_host(node: str) -> str:
    try:
        host = urlsplit(node.strip()).hostname
    except ValueError:
        return ""
    return (host or "").casefold()


def _host_matches(node: str) -> bool:
    host = _node_host(node)
    return bool(host) and any(host == known or host.endswith("." + known)
                              for known in MULTI_CONTENT_HOSTS)


def accepts_several_contents(identity_names: Iterable[str], caps_node: str = "") -> bool:
    """True when a peer is known to accept several file contents in one session-initiate
    (XEP-0166 §7.2.10, XEP-0234 §5): one of its identity names or its caps node belongs to
    jinglefs, Psi or Libervia.  Unknown software: False (one session per file)."""
    if any(_name_matches(name) for name in identity_names if name):
        return True
    return bool(caps_node) and _host_matches(caps_node)


#: Deployed clients whose Jingle habits jinglefs adapts to (docs/interop.md §11), each
#: with the first words of its disco identity name and its caps node hosts.
KNOWN_CLIENTS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "conversations": (frozenset({"conversations"}), ("conversations.im",)),
    "dino": (frozenset({"dino"}), ("dino.im",)),
    "gajim": (frozenset({"gajim"}), ("gajim.org",)),
    "psi": (frozenset({"psi", "psi+"}), ("psi-im.org", "psi-plus.com")),
    "libervia": (frozenset({"libervia"}), ("libervia.org", "salut-a-toi.org")),
    "jinglefs": (frozenset({"jinglefs"}), ("jinglefs.invalid",)),
}


def known_client(identity_names: Iterable[str], caps_node: str = "") -> str:
    """Which deployed client a peer runs, from its XEP-0030 identity names or its
    XEP-0115 §4 caps node: a key of :data:`KNOWN_CLIENTS`, or "" when unknown."""
    names = [name.strip().casefold() for name in identity_names if name and name.strip()]
    host = _node_host(caps_node) if caps_node else ""
    for client, (words, _) in KNOWN_CLIENTS.items():
        if any(name.split(maxsplit=1)[0] in words for name in names):
            return client
    for client, (_, hosts) in KNOWN_CLIENTS.items():
        if host and any(host == known or host.endswith("." + known) for known in hosts):
            return client
    return ""
