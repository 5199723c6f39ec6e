"""Malformed input never crashes the command line: a JID, an ``xmpp:`` URI (RFC 5122) or an
option value that is wrong is a one-line usage error (exit 2), and random argument lists
(hypothesis) end with a documented exit code and never a traceback.

Everything runs in-process against tests/fakes.py: no network, no XMPP server.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jinglefs import cli, errors
from jinglefs.api import Account, Settings
from jinglefs.cli import terminal
from jinglefs.cli.exit_codes import EXIT_CODE_TABLE
from tests.fakes import FakeClient, MemoryKeyring, fake_connect

DOCUMENTED = {code for code, _ in EXIT_CODE_TABLE}
BOB = "bob@example.org"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JINGLEFS_DOWNLOADS_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("JINGLEFS_ACCOUNT", "alice@example.org")
    monkeypatch.setenv("JINGLEFS_PASSWORD", "env-pw")
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    (tmp_path / "report.pdf").write_bytes(b"x" * 300)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    keyring.set_keyring(previous)


def run_cli(argv: list[str]) -> tuple[int, str, FakeClient]:
    """``jinglefs ARGV`` in-process; (exit code, stderr, the fake client it would use).
    The fake's offers end at once, so that ``receive`` never waits for ever."""
    client = FakeClient("alice@example.org/jinglefs-test", end_offers=True,
                        peer_confirms=True)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(argv, connect=fake_connect(client))
    return code, err.getvalue(), client


def one_line_usage_error(code: int, err: str) -> str:
    assert code == errors.EXIT_USAGE, err
    assert "Traceback" not in err and "unexpected error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- recipients

@pytest.mark.parametrize(("recipient", "why"), [
    ("bob@example.org/", "the resource (the part after '/') is empty"),
    ("@example.org", "the name before '@' is empty"),
    ("bob@", "the server name (after '@') is empty"),
    ("bob smith@example.org", "the name before '@' contains a space"),
    ("bob@exa mple.org", "the server name contains a space"),
    ("b" * 1024 + "@example.org", "the name before '@' is longer than 1023 bytes"),
    ("bob@" + "e" * 1020 + ".org", "the server name is longer than 1023 bytes"),
    ("bob@example.org/" + "r" * 1024, "the resource is longer than 1023 bytes"),
    ("bob@example.org:5222", "a port does not belong in an address"),
    ("bob@ex..org", "empty label"),
    ("a@b@example.org", "more than one '@'"),
    ("bob<x>@example.org", "contains '<'"),
    ("bob@example.org/\x1b[31m", "control character"),
    ("xmpp:", "names no address"),
    ("xmpp:bob@example.org/", "the resource (the part after '/') is empty"),
    ("xmpp:@example.org", "the name before '@' is empty"),
    ("xmpp:bob%zz@example.org", "'%' that is not followed by two hexadecimal digits"),
    ("xmpp:bob%ff@example.org", "is not percent-encoded UTF-8"),
    ("xmpp:bob@example.org?message;body", "not key=value"),
    ("xmpp:bob@example.org?mes sage", "space"),
    ("xmpp://alice@example.org", "no address after it"),
], ids=lambda v: repr(v[:30]) if isinstance(v, str) else None)
def test_malformed_recipient_is_a_one_line_usage_error(recipient: str, why: str) -> None:
    for argv in (["send", "report.pdf", recipient], ["send", "--to", recipient, "report.pdf"]):
        code, err, client = run_cli(argv)
        line = one_line_usage_error(code, err)
        assert line.startswith("jinglefs: error: recipient '") and why in line, line
        assert client.sent == []  # never offered to anyone
        assert "\x1b" not in err  # what the user typed is shown escaped, never obeyed


@pytest.mark.parametrize(("recipient", "jid"), [
    ("xmpp:bob@example.org", BOB),
    ("XMPP:bob@example.org?message", BOB),
    ("xmpp:bob@example.org?message;subject=Hi;body=Here%20it%20is", BOB),
    ("xmpp:bob@example.org/laptop#x", "bob@example.org/laptop"),
    ("xmpp://alice@example.org/bob@example.org/phone", "bob@example.org/phone"),
    ("xmpp:j%C3%BCrgen@example.org/caf%C3%A9%2F2", "jürgen@example.org/café/2"),
    ("  bob@example.org ", BOB),
])
def test_an_xmpp_uri_or_a_jid_is_the_recipient(recipient: str, jid: str) -> None:
    code, err, client = run_cli(["send", "--no-input", "report.pdf", recipient])
    assert code == errors.EXIT_OK, err
    assert [call.recipient for call in client.sent] == [jid]


@pytest.mark.parametrize(("argv", "why"), [
    (["send", "--resource", "", "report.pdf", BOB], "argument --resource: '': the resource "
                                                    "is empty"),
    (["send", "--resource", "a\x07b", "report.pdf", BOB], "control character"),
    (["receive", "--resource", "r" * 1024], "longer than 1023 bytes"),
    (["receive", "--resource", "   "], "only white space"),
    (["send", "--account", "alice@example.org/", "report.pdf", BOB],
     "--account 'alice@example.org/' is not an address"),
    (["send", "--account", "alice@example.org/desk", "--resource", "other", "report.pdf", BOB],
     "give it once"),
    (["receive", "--accept-from", "bob@"], "--accept-from 'bob@' is not an address"),
    (["receive", "--count", "many"], "argument --count: not a whole number"),
    (["receive", "--timeout", "nan"], "argument --timeout"),
    (["receive", "--max-size", "-5"], "argument --max-size"),
    (["send", "--server", "host:99999", "report.pdf", BOB], "--server"),
    (["send", "--transport", "carrier-pigeon", "report.pdf", BOB], "invalid choice"),
])
def test_malformed_option_value_is_a_one_line_usage_error(argv: list[str], why: str) -> None:
    code, err, client = run_cli(argv)
    line = one_line_usage_error(code, err)
    assert why in line, line
    assert client.sent == []


def test_resource_option_names_this_device() -> None:
    captured: list[str] = []

    async def connect(account: Account, settings: Settings) -> FakeClient:
        captured.append(account.resource)
        return FakeClient(end_offers=True)

    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["receive", "--resource", "desk top", "--count", "1"],
                        connect=connect) == errors.EXIT_CONNECT  # offers end: "closed"
        assert cli.main(["receive", "--count", "1"], connect=connect) == errors.EXIT_CONNECT
        assert cli.main(["receive", "--count", "1"], connect=connect) == errors.EXIT_CONNECT
    assert captured[0] == "desk top"
    # Without --resource every run is a new device: jinglefs- and a random id.
    assert captured[1].startswith("jinglefs-") and captured[2].startswith("jinglefs-")
    assert captured[1] != captured[2]


# --------------------------------------------------------------------------- fuzzing

_OPTIONS = [
    "--account", "--password-file", "--server", "--ca-file", "--no-proxy",
    "--allow-plaintext", "--no-input", "--json", "--quiet", "-q", "--resource", "--to",
    "--transport", "--timeout-accept", "--accept-from", "--output", "-o", "--count",
    "--max-size", "--timeout", "--stun", "--turn", "--turn-password-file", "--ice-address",
    "--ice-relay-only", "--default", "--help", "-h", "--version", "--", "-", "--password",
    "-p",
]
_JUNK = [
    "", " ", "-", "--", "=", "@", "/", "bob@", "@host", "bob@host/", "bob@example.org",
    "bob@example.org/laptop", "xmpp:", "xmpp:bob@example.org", "xmpp:bob%zz@x",
    "xmpp://a@b", "report.pdf", "missing.txt", ".", "..", "/", "/dev/null", "0", "-1",
    "1e309", "nan", "inf", "10X", "2G", "127.0.0.1:0", "[::1", "h:99999", "turn:u@h",
    "stun:h", "auto", "ibb", "s5b", "ice", "\x00", "\x1b[2J", "\u202e", "a\nb", "é" * 300,
    "x" * 5000,
]
_COMMANDS = [["send"], ["receive"], ["account"], ["account", "add"], ["account", "list"],
             ["account", "test"], ["account", "remove"], []]

_value = st.one_of(st.sampled_from(_JUNK), st.text(max_size=40))
#: One piece of a command line: an option alone, a value alone, an option and its value
#: (as two arguments, or as --opt=value).
_piece = st.one_of(st.builds(lambda o: [o], st.sampled_from(_OPTIONS)),
                   st.builds(lambda v: [v], _value),
                   st.builds(lambda o, v: [o, v], st.sampled_from(_OPTIONS), _value),
                   st.builds(lambda o, v: [f"{o}={v}"], st.sampled_from(_OPTIONS), _value))


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(command=st.sampled_from(_COMMANDS), pieces=st.lists(_piece, max_size=6))
def test_random_arguments_never_crash(command: list[str], pieces: list[list[str]]) -> None:
    argv = [*command, *(arg for piece in pieces for arg in piece)]
    if "receive" in command and "--timeout" not in argv:
        argv += ["--timeout", "5"]  # (the fake's offers end anyway; a bound all the same)
    code, err, _client = run_cli(argv)
    assert code in DOCUMENTED, (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    assert "unexpected error" not in err, (argv, err)  # an exception outside the tree
    if code == errors.EXIT_USAGE:
        assert err.strip(), argv  # a usage error always says what is wrong
