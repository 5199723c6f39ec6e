"""The helpers both front ends share: JIDs (jinglefs.jid), shown text (jinglefs.text) and the
client's accept policy (jinglefs.accept_policy)."""

from __future__ import annotations

import pytest

from jinglefs.accept_policy import NOT_ALLOWED, TOO_LARGE, refusal
from jinglefs.api import Settings
from jinglefs.events import FileInfo
from jinglefs.jid import bare_jid, has_resource, is_jid, resource_of
from jinglefs.text import format_size


def test_bare_jid_is_the_comparison_form() -> None:
    assert bare_jid("Alice@Example.org/Phone") == "alice@example.org"
    assert bare_jid(" bob@example.org ") == "bob@example.org"
    assert resource_of("alice@example.org/Phone/2") == "Phone/2"
    assert resource_of("alice@example.org") == ""
    assert has_resource("a@b.org/r") and not has_resource("a@b.org")


@pytest.mark.parametrize("text, ok", [
    ("bob@example.org", True), ("bob@example.org/laptop", True), (" bob@example.org ", True),
    ("example.org", False), ("@example.org", False), ("bob@", False), ("b ob@example.org", False),
    ("a/b@example.org", False), ("bob@/res", False),
])
def test_is_jid(text: str, ok: bool) -> None:
    assert is_jid(text) is ok


@pytest.mark.parametrize("n, shown", [
    (None, "?"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 1024**2 // 2, "1.5 MiB"),
    (5 * 1024**5, "5.0 PiB"), (2048.0, "2.0 KiB"),
])
def test_format_size(n: float | None, shown: str) -> None:
    assert format_size(n) == shown


def files(*sizes: int) -> list[FileInfo]:
    return [FileInfo(f"f{i}.bin", size) for i, size in enumerate(sizes)]


def test_default_settings_let_every_offer_through() -> None:
    assert refusal(Settings(), "anyone@example.org/x", files(10**12)) is None


def test_accept_from_compares_bare_jids_case_insensitively() -> None:
    policy = Settings(accept_from=frozenset({"Bob@Example.org"}))
    assert refusal(policy, "bob@example.org/laptop", files(1)) is None
    got = refusal(policy, "mallory@evil.example/x", files(1))
    assert got is not None and got.rule == NOT_ALLOWED
    assert got.text == "mallory@evil.example is not in accept_from"
    assert "accept_from" not in got.peer_text  # the sender does not learn our list


def test_max_size_refuses_the_whole_offer_for_one_big_file() -> None:
    policy = Settings(max_size=1000)
    assert refusal(policy, "bob@example.org/a", files(1000, 10)) is None
    got = refusal(policy, "bob@example.org/a", files(10, 1001, 2000))
    assert got is not None and got.rule == TOO_LARGE and got.file == FileInfo("f1.bin", 1001)
    assert got.text == "f1.bin (1001 B) is larger than max_size 1000 B"


def test_a_stranger_is_refused_as_a_stranger_whatever_the_size() -> None:
    policy = Settings(accept_from=frozenset({"bob@example.org"}), max_size=10)
    got = refusal(policy, "mallory@evil.example/x", files(10**9))
    assert got is not None and got.rule == NOT_ALLOWED
