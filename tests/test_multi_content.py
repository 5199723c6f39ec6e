"""Who gets several files in one session (jinglefs.multi_content, docs/protocol.md §3.5)."""

from __future__ import annotations

import pytest

from jinglefs.multi_content import accepts_several_contents
from jinglefs.xmpp.connection import CAPS_NODE, CLIENT_NAME


@pytest.mark.parametrize(("names", "node"), [
    ((CLIENT_NAME,), ""),                       # jinglefs by its identity
    ((), CAPS_NODE),                            # ... or by its caps node
    (("Psi",), ""),
    (("Psi+ 1.5.1650",), ""),
    (("psi",), ""),
    ((), "https://psi-im.org"),
    ((), "http://psi-im.org/caps"),
    ((), "https://psi-plus.com"),
    (("Libervia",), ""),
    (("Salut à Toi",), ""),
    ((), "https://libervia.org"),
    ((), "https://www.salut-a-toi.org"),
    (("Unknown thing", "jinglefs"), ""),         # any identity may name it
])
def test_known_multi_content_clients(names: tuple[str, ...], node: str) -> None:
    assert accepts_several_contents(names, node)


@pytest.mark.parametrize(("names", "node"), [
    ((), ""),                                   # told nothing: one session per file
    (("Conversations",), "http://conversations.im"),
    (("Dino",), "https://dino.im"),
    (("Gajim",), "https://gajim.org"),
    (("Psychic",), ""),                         # a name that merely starts like Psi
    (("Psitransfer",), ""),
    ((), "https://psi-im.org.evil.example"),    # the host must be theirs
    ((), "https://notpsi-im.org"),
    ((), "urn:psi-im.org"),                     # not a URL with a host
    ((), "http://[::1"),                        # unparsable
    (("",), ""),
])
def test_everyone_else_gets_one_session_per_file(names: tuple[str, ...], node: str) -> None:
    assert not accepts_several_contents(names, node)


@pytest.mark.parametrize(("names", "node", "client"), [
    (("Dino",), "", "dino"),
    ((), "https://dino.im", "dino"),
    (("Conversations",), "http://conversations.im", "conversations"),
    (("Gajim",), "", "gajim"),
    (("Psi+ 1.5.1650",), "", "psi"),
    ((), "https://libervia.org", "libervia"),
    (("Dino",), "http://conversations.im", "dino"),   # the identity name comes first
    (("Dinosaur",), "", ""),                          # a name that merely starts like Dino
    ((), "https://dino.im.evil.example", ""),
    ((), "", ""),
])
def test_known_client_by_identity_or_caps_node(names: tuple[str, ...], node: str,
                                               client: str) -> None:
    from jinglefs.multi_content import known_client

    assert known_client(names, node) == client
