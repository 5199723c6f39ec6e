"""STUN and TURN server URIs as users write them (RFC 7064 / RFC 7065): pure parsing."""

from __future__ import annotations

import pytest

from jinglefs.stun_turn import TurnUrl, parse_stun, parse_turn, turn_setting


@pytest.mark.parametrize("text, expected", [
    ("stun.example.org", ("stun.example.org", 3478)),
    ("stun.example.org:19302", ("stun.example.org", 19302)),
    ("stun:stun.example.org:3479", ("stun.example.org", 3479)),
    ("STUN:192.0.2.1", ("192.0.2.1", 3478)),
    ("[2001:db8::1]:3480", ("2001:db8::1", 3480)),
    ("2001:db8::1", ("2001:db8::1", 3478)),
])
def test_parse_stun(text: str, expected: tuple[str, int]) -> None:
    assert parse_stun(text) == expected


@pytest.mark.parametrize("text", ["", "stun:", "host:0", "host:70000", "host:x", "stuns:h",
                                  "stun:h?transport=udp", "a b", "[2001:db8::1", "u@host"])
def test_parse_stun_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_stun(text)


def test_parse_turn() -> None:
    assert parse_turn("turn:turn.example.org") == TurnUrl("turn.example.org", 3478, "udp")
    assert parse_turn("turns:t.example.org") == TurnUrl("t.example.org", 5349, "tcp", True)
    # TURN REST user names contain colons; the password is after the last one.
    url = parse_turn("turn:1700000000%3Aalice:c2VjcmV0/+=@[2001:db8::2]:3479?transport=tcp")
    assert url == TurnUrl("2001:db8::2", 3479, "tcp", False, "1700000000:alice", "c2VjcmV0/+=")
    assert parse_turn("turn:1700000000:alice:pw@h") == TurnUrl(
        "h", 3478, "udp", False, "1700000000:alice", "pw")
    # On the command line (no passwords there) the whole user info is the user name.
    assert parse_turn("turn:1700000000:alice@h:3478?transport=udp",
                      password_in_url=False) == TurnUrl(
        "h", 3478, "udp", False, "1700000000:alice", None)
    assert parse_turn("turn:alice@example.org@h", password_in_url=False).username == \
        "alice@example.org"
    for bad in ("stun:h", "turn:h?transport=sctp", "turns:h?transport=udp", "turn:@h",
                "turn:u@", "turn:h?foo=bar", "h:3478"):
        with pytest.raises(ValueError):
            parse_turn(bad)


def test_turn_setting_round_trip() -> None:
    url = TurnUrl("2001:db8::3", 443, "tcp", True, "1700000000:bob@x", "p:w/d@")
    assert parse_turn(turn_setting(url)) == url
    assert turn_setting(TurnUrl("h", 3478, "udp", False, "u", "p")) == \
        "turn:u:p@h:3478?transport=udp"
