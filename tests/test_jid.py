"""jinglefs.jid: the one place that parses addresses (RFC 7622 JIDs, RFC 5122 xmpp: URIs)."""

from __future__ import annotations

import re

import pytest

from jinglefs.jid import (
    Jid,
    JidError,
    check_resource,
    is_jid,
    new_resource,
    parse_address,
    parse_jid,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("bob@example.org", Jid("bob", "example.org")),
    ("  Bob@Example.org/Laptop 2 ", Jid("Bob", "Example.org", "Laptop 2")),
    ("bob@example.org/a/b@c", Jid("bob", "example.org", "a/b@c")),  # RFC 7622 §3.1
    ("bob@example.org./phone", Jid("bob", "example.org", "phone")),  # §3.2 trailing dot
    ("jürgen@münchen.example", Jid("jürgen", "münchen.example")),
    ("bob@[::1]", Jid("bob", "[::1]")),
    ("bob@127.0.0.1", Jid("bob", "127.0.0.1")),
    ("b" * 1023 + "@example.org", Jid("b" * 1023, "example.org")),
    ("bob@example.org/" + "é" * 511, Jid("bob", "example.org", "é" * 511)),  # 1022 bytes
])
def test_valid_jids(text: str, expected: Jid) -> None:
    assert parse_jid(text) == expected
    assert parse_address(text) == expected
    assert is_jid(text)


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"),
    ("bob@example.org/", "the resource (the part after '/') is empty"),
    ("@example.org", "the name before '@' is empty"),
    ("bob@", "the server name (after '@') is empty"),
    ("example.org", "has no '@'"),
    ("bob smith@example.org", "space"),
    ("bob@exa mple.org", "space"),
    ("bob\x00@example.org", "control character"),
    ("bob@example.org/x\ny", "control character"),
    ("b" * 1024 + "@example.org", "longer than 1023 bytes"),
    ("é" * 512 + "@example.org", "longer than 1023 bytes"),  # 1024 bytes in UTF-8
    ("bob@example.org/" + "r" * 1024, "longer than 1023 bytes"),
    ("bob@" + "a" * 64 + ".org", "longer than 63 bytes"),
    ("bob@example.org:5222", "':'"),
    ("bob@ex..org", "empty label"),
    ("bob@.org", "empty label"),
    ("a@b@example.org", "more than one '@'"),
    ("bo'b@example.org", "contains \"'\""),
    ("bob@[::1", "no closing ']'"),
    ("bob@[nope]", "not an IPv6 address"),
])
def test_malformed_jids(text: str, why: str) -> None:
    with pytest.raises(JidError) as info:
        parse_jid(text)
    assert why in str(info.value)
    assert "\n" not in str(info.value)
    assert not is_jid(text)


@pytest.mark.parametrize(("uri", "expected"), [
    ("xmpp:bob@example.org", "bob@example.org"),
    ("XMPP:bob@example.org", "bob@example.org"),  # RFC 3986 §3.1: schemes ignore case
    ("xmpp:bob@example.org?message", "bob@example.org"),
    ("xmpp:bob@example.org?message;subject=Hi;body=x%20y", "bob@example.org"),
    ("xmpp:bob@example.org?", "bob@example.org"),  # an empty query type is allowed
    ("xmpp:bob@example.org/laptop", "bob@example.org/laptop"),
    ("xmpp:bob@example.org/la%2Fp%40x", "bob@example.org/la/p@x"),  # RFC 5122 §2.7.3
    ("xmpp:j%C3%BCrgen@example.org", "jürgen@example.org"),
    ("xmpp:bob@example.org#frag", "bob@example.org"),
    ("xmpp://alice@example.org/bob@example.org?message", "bob@example.org"),  # §2.3
])
def test_xmpp_uris(uri: str, expected: str) -> None:
    assert str(parse_address(uri)) == expected


@pytest.mark.parametrize(("uri", "why"), [
    ("xmpp:", "names no address"),
    ("xmpp:bob@example.org/", "the resource (the part after '/') is empty"),
    ("xmpp:bob%2@example.org", "two hexadecimal digits"),
    ("xmpp:bob%C3@example.org", "not percent-encoded UTF-8"),
    ("xmpp:bob@example.org?mess%age", "query action is malformed"),
    ("xmpp:bob@example.org?message;body", "not key=value"),
    ("xmpp:bob@example.org?message;=x", "not key=value"),
    ("xmpp:bob @example.org", "space"),
    ("xmpp://alice@example.org", "no address after it"),
    ("xmpp://al ice@example.org/bob@example.org", "space"),
    ("xmpp://@example.org/bob@example.org", "the name before '@' is empty"),
    ("xmpp:a%40b@example.org", "more than one '@'"),
    ("xmpp:example.org", "has no '@'"),
])
def test_malformed_xmpp_uris(uri: str, why: str) -> None:
    with pytest.raises(JidError) as info:
        parse_address(uri)
    assert why in str(info.value)


def test_resource_rules_and_new_resources() -> None:
    assert check_resource("laptop") == "laptop"
    assert check_resource("r" * 1023) == "r" * 1023
    for bad, why in [("", "empty"), ("r" * 1024, "1023 bytes"), ("a\tb", "control"),
                     ("  ", "white space")]:
        with pytest.raises(JidError, match=why):
            check_resource(bad)
    made = {new_resource() for _ in range(200)}
    assert len(made) == 200
    assert all(re.fullmatch(r"jinglefs-[0-9a-f]{8}", r) for r in made)
