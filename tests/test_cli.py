"""The jinglefs command line, driven in-process against tests/fakes.py (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from jinglefs import cli, config, errors
from jinglefs.accept_policy import NOT_ALLOWED
from jinglefs.api import ClientEvent, Contact, OfferDeclined, Resource
from jinglefs.cli import terminal
from jinglefs.cli.output import HumanView, JsonView, parse_size, use_color
from jinglefs.events import (
    Accepted,
    Completed,
    Direction,
    Failed,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    TransportSelected,
    Verified,
)
from jinglefs.text import safe_text
from tests.fakes import (
    HANG,
    FakeClient,
    FakeOffer,
    FakeTransfer,
    MemoryKeyring,
    fake_connect,
)

BOB = "bob@example.org"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JINGLEFS_DOWNLOADS_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("JINGLEFS_ACCOUNT", "alice@example.org")
    monkeypatch.setenv("JINGLEFS_PASSWORD", "env-pw")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: False)
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    p = tmp_path / "report.pdf"
    p.write_bytes(b"x" * 5000)
    return p


_EVENT_CLASSES: dict[str, type] = {
    "offered": Offered, "accepted": Accepted, "transport": TransportSelected,
    "progress": Progress, "verified": Verified, "completed": Completed, "failed": Failed}


def json_lines(out: str) -> list[dict[str, Any]]:
    """Parse NDJSON and check every transfer event has exactly its dataclass's keys."""
    lines = out.splitlines()
    assert lines, "no JSON output"
    events = [json.loads(line) for line in lines]
    for e in events:
        assert e["v"] == 1 and isinstance(e["event"], str)
        cls = _EVENT_CLASSES.get(e["event"])
        if cls is not None:
            assert set(e) == {"v", "event"} | {f.name for f in dataclasses.fields(cls)}
    return events


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("argv", [
    [],
    ["send"],
    ["send", "only-one-arg"],
    ["send", "a", "b", "--transport", "carrier-pigeon"],
    ["send", "a", BOB, "--timeout-accept", "0"],
    ["receive", "--count", "0"],
    ["receive", "--max-size", "10X"],
    ["receive", "--timeout", "soon"],
    ["frobnicate"],
    ["account"],
    ["account", "add"],
])
def test_argument_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    connect = fake_connect()
    assert cli.main(argv, connect=connect) == errors.EXIT_USAGE
    assert connect.calls == []
    assert capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["send", "--password", "hunter2", "a", BOB],
    ["send", "--password=hunter2", "a", BOB],
    ["receive", "-phunter2"],
    ["account", "add", "a@example.org", "--passwd", "hunter2"],
])
def test_password_is_never_accepted_on_argv(argv: list[str], afile: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    connect = fake_connect()
    assert cli.main(argv, connect=connect) == errors.EXIT_USAGE
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err
    assert "--password-file" in err
    assert connect.calls == []
    assert not config.config_file().exists()


def test_no_option_prefix_reaches_password_file(capsys: pytest.CaptureFixture[str]) -> None:
    # With argparse abbreviations, "--password-f X" would silently mean --password-file.
    assert cli.main(["send", "--password-f", "x", "a", BOB], connect=fake_connect()) == 2


def test_help_shows_examples_first_and_the_exit_codes(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.index("examples:") < out.index("exit codes:")
    assert out.index("jinglefs send report.pdf") < out.index("options:")
    for code, _ in cli.EXIT_CODE_TABLE:
        assert f"  {code:>3}  " in out
    assert cli.main(["send", "--help"]) == 0
    assert "exit codes:" in capsys.readouterr().out


def test_version_lists_features(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("jinglefs ")
    assert "s5b" in out and "ibb" in out and "ice" in out and "sha-256" in out


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "jinglefs", "--version"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("jinglefs ")


def test_exit_code_table_uses_the_errors_module_numbers() -> None:
    table = dict(cli.EXIT_CODE_TABLE)
    assert errors.exit_code_for(errors.Declined()) in table
    assert errors.exit_code_for(errors.ChecksumMismatch()) in table
    assert sorted(table) == sorted({errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_USAGE,
                                    errors.EXIT_CONNECT, errors.EXIT_AUTH,
                                    errors.EXIT_NO_RECIPIENT, errors.EXIT_TRANSPORT,
                                    errors.EXIT_TRANSFER, errors.EXIT_HASH_MISMATCH,
                                    errors.EXIT_CANCELLED, errors.EXIT_DECLINED,
                                    errors.EXIT_UNANSWERED, errors.EXIT_DECRYPT_FAILED,
                                    errors.EXIT_ENCRYPTION_REQUIRED,
                                    errors.EXIT_INTERRUPTED})


# --------------------------------------------------------------------------- send


def test_send_happy_path_shows_path_and_checksum_sent(afile: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(path=PathKind.S5B_DIRECT)
    connect = fake_connect(client)
    assert cli.main(["send", str(afile), BOB], connect=connect) == errors.EXIT_OK
    out, err = capsys.readouterr()
    assert out == ""
    assert "via Direct (SOCKS5)" in err
    # The fake's peer does not confirm the checksum (like Dino): the sender says so plainly
    # and never claims "verified" (jinglefs.sending, docs/protocol.md §5.8).
    assert "delivered; the receiver did not confirm the checksum" in err
    assert "verified" not in err
    assert "Sent report.pdf" in err
    [(account, settings)] = connect.calls
    assert account.jid == "alice@example.org" and account.password == "env-pw"
    assert settings.transport == "auto"
    [call] = client.sent
    assert call.recipient == BOB and call.paths == [afile] and call.transport is None
    assert client.closed


def test_send_passes_transport_timeout_and_full_jid(afile: Path, tmp_path: Path) -> None:
    client = FakeClient()
    connect = fake_connect(client)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"j")
    rc = cli.main(["send", str(afile), str(folder), f"{BOB}/laptop", "--transport", "ibb",
                   "--timeout-accept", "42", "--quiet"], connect=connect)
    assert rc == 0
    [(_, settings)] = connect.calls
    assert settings.transport == "ibb" and settings.timeouts.accept == 42
    assert client.sent[0].recipient == f"{BOB}/laptop"
    assert client.sent[0].paths == [afile, folder]
    assert client.sent[0].transport == "ibb"


def test_send_to_option_takes_every_positional_as_file(afile: Path) -> None:
    client = FakeClient()
    assert cli.main(["send", "--to", BOB, str(afile)], connect=fake_connect(client)) == 0
    assert client.sent[0].paths == [afile]


def test_send_json_lines_follow_the_schema(afile: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    second = tmp_path / "b.txt"
    second.write_bytes(b"hello")
    client = FakeClient(path=PathKind.ICE_DIRECT)
    rc = cli.main(["send", "--json", str(afile), str(second), BOB],
                  connect=fake_connect(client))
    assert rc == 0
    out, err = capsys.readouterr()
    events = json_lines(out)
    assert all(e["v"] == 1 and isinstance(e["event"], str) for e in events)
    assert events[-1]["event"] == "summary"
    assert events[-1]["ok"] is True and events[-1]["exit_code"] == 0
    assert [f["name"] for f in events[-1]["files"]] == ["report.pdf", "b.txt"]
    assert all(f["transport"] == "ice-direct" for f in events[-1]["files"])
    assert events[-1]["files"][0]["local_path"] == str(afile)
    for t in client.transfers:
        mine = [e for e in events if e.get("transfer_id") == t.id]
        names = [e["event"] for e in mine]
        assert names[0] == "offered"
        assert names[-1] == "completed" and names.count("completed") == 1
        # the fake's peer does not confirm the checksum: the sender does not say verified
        assert "transport" in names and "verified" not in names
        transport = next(e for e in mine if e["event"] == "transport")
        assert transport["path"] == "ice-direct" and transport["encrypted"] is True
        assert mine[-1]["verified"] is False and "sha-256" in mine[-1]["hashes"]
        progress = [e["done"] for e in mine if e["event"] == "progress"]
        assert progress == sorted(progress) and progress[-1] == t.file.size
    # The result lines still go to stderr; stdout stays pure JSON.
    assert "Sent" in err


def test_send_declined_exits_10(afile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    client.outcomes["report.pdf"] = errors.Declined("busy")
    assert cli.main(["send", "--json", str(afile), BOB],
                    connect=fake_connect(client)) == errors.EXIT_DECLINED
    out, err = capsys.readouterr()
    events = json_lines(out)
    failed = [e for e in events if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["exit_code"] == 10 and failed[0]["error"] == "declined"
    assert events[-1]["event"] == "summary" and events[-1]["exit_code"] == 10
    assert "declined" in err


def test_send_hash_mismatch_exits_8(afile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    client.outcomes["report.pdf"] = errors.ChecksumMismatch("sha-256 differs")
    assert cli.main(["send", str(afile), BOB],
                    connect=fake_connect(client)) == errors.EXIT_HASH_MISMATCH
    assert "checksum" in capsys.readouterr().err


def test_several_files_first_failure_decides_and_all_are_listed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["ok.txt", "bad.txt", "gone.txt"]
    for n in names:
        (tmp_path / n).write_bytes(b"data")
    client = FakeClient()
    client.outcomes["bad.txt"] = errors.CandidatesFailed("no path")
    client.outcomes["gone.txt"] = errors.Cancelled("peer cancelled", by_peer=True)
    rc = cli.main(["send", *(str(tmp_path / n) for n in names), BOB],
                  connect=fake_connect(client))
    assert rc == errors.EXIT_TRANSPORT
    err = capsys.readouterr().err
    assert "2 of 3 files failed" in err and "bad.txt" in err and "gone.txt" in err
    assert "Sent ok.txt" in err


@pytest.mark.parametrize("error, code", [
    (errors.ConnectError("no route"), errors.EXIT_CONNECT),
    (errors.AuthError("not-authorized"), errors.EXIT_AUTH),
])
def test_connect_failures_map_to_exit_codes(afile: Path, error: errors.JingleFSError,
                                            code: int, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    assert cli.main(["send", "--json", str(afile), BOB],
                    connect=fake_connect(error=error)) == code
    out, err = capsys.readouterr()
    assert json_lines(out)[-1] == {"v": 1, "event": "summary", "ok": False, "exit_code": code,
                                   "error": error.user_message}
    assert error.user_message in err


def test_recipient_unavailable_exits_5(afile: Path) -> None:
    client = FakeClient()
    client.send_error = errors.RecipientUnavailable("bob is offline")
    assert cli.main(["send", str(afile), BOB],
                    connect=fake_connect(client)) == errors.EXIT_NO_RECIPIENT
    assert client.closed


def test_missing_and_unreadable_inputs_fail_before_connecting(
        tmp_path: Path, afile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    connect = fake_connect()
    rc = cli.main(["send", str(tmp_path / "missing.bin"), str(fifo), str(afile), BOB],
                  connect=connect)
    assert rc == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert "missing.bin: no such file" in err and "pipe: not a regular file" in err
    assert connect.calls == []


def test_swapped_arguments_get_a_hint(afile: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(afile.parent)
    assert cli.main(["send", BOB, afile.name], connect=fake_connect()) == errors.EXIT_USAGE
    assert "must be the recipient" in capsys.readouterr().err


def test_allow_plaintext_is_refused_for_remote_servers(
        afile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    connect = fake_connect()
    rc = cli.main(["send", "--allow-plaintext", "--server", "xmpp.example.org:5222",
                   str(afile), BOB], connect=connect)
    assert rc == errors.EXIT_USAGE
    assert "loopback" in capsys.readouterr().err
    assert connect.calls == []
    # Without --server the JID's domain is the server: example.org is not loopback either.
    assert cli.main(["send", "--allow-plaintext", str(afile), BOB],
                    connect=connect) == errors.EXIT_USAGE
    assert connect.calls == []


@pytest.mark.parametrize("server, host, port", [
    ("127.0.0.1:5299", "127.0.0.1", 5299),
    ("localhost", "localhost", None),
    ("[::1]:5222", "::1", 5222),
])
def test_allow_plaintext_for_loopback(afile: Path, server: str, host: str,
                                      port: int | None) -> None:
    connect = fake_connect()
    assert cli.main(["send", "--allow-plaintext", "--server", server, str(afile), BOB],
                    connect=connect) == 0
    [(account, _)] = connect.calls
    assert account.allow_plaintext and account.server == host and account.port == port


def test_password_sources_precedence_in_the_cli(
        afile: Path, tmp_path: Path, isolated: MemoryKeyring,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    isolated.set_password("jinglefs", "alice@example.org", "keyring-pw")
    pwfile = tmp_path / "pw"
    pwfile.write_text("file-pw\n")

    def password_used(*extra: str) -> str:
        connect = fake_connect()
        assert cli.main(["send", *extra, str(afile), BOB], connect=connect) == 0
        return connect.calls[0][0].password

    assert password_used("--password-file", str(pwfile)) == "file-pw"
    assert password_used() == "env-pw"
    monkeypatch.delenv("JINGLEFS_PASSWORD")
    assert password_used() == "keyring-pw"
    isolated.store.clear()
    connect = fake_connect()
    assert cli.main(["send", str(afile), BOB], connect=connect) == errors.EXIT_USAGE
    assert connect.calls == []
    assert "--password-file" in capsys.readouterr().err
    # A terminal is used to ask, unless --no-input.
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "typed-pw")
    assert password_used() == "typed-pw"
    assert cli.main(["send", "--no-input", str(afile), BOB],
                    connect=fake_connect()) == errors.EXIT_USAGE


def test_no_account_at_all_is_a_usage_error(afile: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("JINGLEFS_ACCOUNT")
    assert cli.main(["send", str(afile), BOB], connect=fake_connect()) == errors.EXIT_USAGE
    assert "jinglefs account add" in capsys.readouterr().err


def test_stored_account_supplies_server_and_ice_servers(
        afile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JINGLEFS_ACCOUNT")
    config.save_account(config.StoredAccount("carol@example.net", server="xmpp.example.net",
                                             port=5223, stun=("stun:s.example.net",)))
    connect = fake_connect()
    assert cli.main(["send", str(afile), BOB], connect=connect) == 0
    account, settings = connect.calls[0]
    assert (account.jid, account.server, account.port) == ("carol@example.net",
                                                           "xmpp.example.net", 5223)
    assert settings.stun == ("stun:s.example.net",)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_running_transfers_and_exits_130(
        afile: Path, signum: int, capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()

    def interrupt(_t: FakeTransfer) -> None:
        os.kill(os.getpid(), signum)

    client.outcomes["report.pdf"] = [interrupt, HANG]
    rc = cli.main(["send", "--json", str(afile), BOB], connect=fake_connect(client))
    assert rc == errors.EXIT_INTERRUPTED
    [t] = client.transfers
    assert t.cancelled and t.cancel_calls == 1
    assert client.closed
    out, err = capsys.readouterr()
    last = json_lines(out)[-1]
    assert last["event"] == "summary" and last["exit_code"] == 130
    assert "cancelled 1 running transfer" in err


# --------------------------------------------------------------------------- receive


def offer_from(peer: str, name: str = "photo.jpg", size: int = 2048, **kw: Any) -> FakeOffer:
    return FakeOffer(peer, [FileInfo(name, size)], **kw)


def test_receive_accepts_listed_sender_and_declines_a_stranger(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "in"
    out_dir.mkdir()
    stranger = offer_from("mallory@evil.example/x", "evil.exe")
    bob = offer_from(f"{BOB}/laptop", contents=[b"\x89PNG"])
    client = FakeClient(offers=[stranger, bob])
    connect = fake_connect(client)
    rc = cli.main(["receive", "--json", "--accept-from", BOB.upper(), "--output", str(out_dir),
                   "--count", "1"], connect=connect)
    assert rc == 0
    assert stranger.declined and stranger.accepted_into is None
    assert bob.accepted_into == out_dir and not bob.declined
    assert (out_dir / "photo.jpg").read_bytes() == b"\x89PNG"
    assert connect.calls[0][1].accept_from == frozenset({BOB})
    out, err = capsys.readouterr()
    events = json_lines(out)
    kinds = [e["event"] for e in events]
    assert kinds.count("offer") == 2
    declined = [e for e in events if e["event"] == "declined"]
    assert len(declined) == 1 and declined[0]["peer"] == "mallory@evil.example/x"
    assert declined[0]["offer_id"] == stranger.id and "accept-from" in declined[0]["reason"]
    completed = [e for e in events if e["event"] == "completed"]
    assert completed and completed[0]["path"] == str(out_dir / "photo.jpg")
    assert events[-1]["event"] == "summary"
    assert events[-1]["received"] == 1 and events[-1]["declined"] == 1
    assert events[-1]["files"][0]["local_path"] == str(out_dir / "photo.jpg")
    assert "Declined offer from mallory@evil.example/x" in err


def test_receive_count_stops_after_n_files(tmp_path: Path) -> None:
    offers = [offer_from(f"{BOB}/a", f"f{i}.bin") for i in range(3)]
    client = FakeClient(offers=offers)
    rc = cli.main(["receive", "--accept-from", BOB, "--output", str(tmp_path), "--count", "2",
                   "--quiet"], connect=fake_connect(client))
    assert rc == 0
    assert [o.accepted_into is not None for o in offers] == [True, True, False]
    assert not offers[2].declined
    assert client.closed


def test_receive_max_size_declines_larger_offers(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    big = offer_from(f"{BOB}/a", "big.iso", 11 * 1024 * 1024)
    small = offer_from(f"{BOB}/a", "small.txt", 10 * 1024 * 1024)
    client = FakeClient(offers=[big, small])
    connect = fake_connect(client)
    rc = cli.main(["receive", "--json", "--accept-from", BOB, "--max-size", "10M",
                   "--output", str(tmp_path), "--count", "1"], connect=connect)
    assert rc == 0
    assert big.declined and small.accepted_into == tmp_path
    assert connect.calls[0][1].max_size == 10 * 1024 * 1024
    declined = [e for e in json_lines(capsys.readouterr().out) if e["event"] == "declined"]
    assert "max-size" in declined[0]["reason"]


class PolicyClient(FakeClient):
    """A client whose own accept policy declined one offer before the CLI saw it (as
    jinglefs.client does for Settings.accept_from / max_size), then delivers ``offers``."""

    def __init__(self, declined: OfferDeclined, offers: list[FakeOffer]) -> None:
        super().__init__()
        self.declined_event = declined
        self.later = offers
        self.delivered = asyncio.Event()

    async def events(self) -> AsyncIterator[ClientEvent]:  # type: ignore[override]
        yield self.declined_event
        self.delivered.set()  # asked for more: the CLI has queued the declined offer
        await asyncio.Event().wait()

    async def offers(self) -> AsyncIterator[FakeOffer]:
        await self.delivered.wait()
        for offer in self.later:
            yield offer


def test_receive_reports_offers_the_client_declined(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused = OfferDeclined("d1", "mallory@evil.example/x", (FileInfo("evil.exe", 10),), False,
                            NOT_ALLOWED, "mallory@evil.example is not in accept_from")
    bob = offer_from(f"{BOB}/a", contents=[b"ok"])
    rc = cli.main(["receive", "--json", "--accept-from", BOB, "--output", str(tmp_path)],
                  connect=fake_connect(PolicyClient(refused, [bob])))
    assert rc == 0 and bob.accepted_into == tmp_path
    out, err = capsys.readouterr()
    events = json_lines(out)
    assert [(e["event"], e.get("offer_id")) for e in events if "offer_id" in e] == [
        ("offer", "d1"), ("declined", "d1"), ("offer", bob.id)]
    [declined] = [e for e in events if e["event"] == "declined"]
    assert declined["reason"] == "mallory@evil.example is not in --accept-from"
    assert events[-1]["received"] == 1 and events[-1]["declined"] == 1
    assert "Declined offer from mallory@evil.example/x: mallory@evil.example is not in " \
           "--accept-from" in err


def test_receive_without_accept_from_or_tty_declines_everything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    offer = offer_from(f"{BOB}/a")
    client = FakeClient(offers=[offer], end_offers=True)
    rc = cli.main(["receive", "--output", str(tmp_path)], connect=fake_connect(client))
    assert rc == 0
    assert offer.declined
    err = capsys.readouterr().err
    assert err.index("every offer will be declined") < err.index("Declined offer")


def test_receive_prompt_on_a_tty_shows_display_safe_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: True)
    answers = iter(["y\n", "\n"])
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(terminal, "read_answer", answer)
    tricky = offer_from(f"{BOB}/a", "invoice\u202egpj.exe\x1b[31m", 1536, from_contact=False)
    second = offer_from(f"{BOB}/a", "second.txt")
    client = FakeClient(offers=[tricky, second], end_offers=True)
    rc = cli.main(["receive", "--output", str(tmp_path)], connect=fake_connect(client))
    assert rc == 0
    assert tricky.accepted_into == tmp_path and second.declined
    err = capsys.readouterr().err
    # Shown escaped, not obeyed (jinglefs.text.safe_text).
    assert "invoice\\u202egpj.exe\\u001b[31m" in err and "1.5 KiB" in err and BOB in err
    assert "NOT in your contacts" in err
    assert "\u202e" not in err and "\x1b" not in err
    assert len(prompts) == 2 and "[y/N]" in prompts[0]


def test_receive_timeout_before_count_exits_1(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["receive", "--accept-from", BOB, "--output", str(tmp_path), "--count", "1",
                   "--timeout", "0.01", "--json"], connect=fake_connect(FakeClient()))
    assert rc == errors.EXIT_FAILED
    summary = json_lines(capsys.readouterr().out)[-1]
    assert summary["event"] == "summary" and summary["exit_code"] == 1
    assert "got 0 of 1" in summary["error"]


def test_receive_connection_end_before_count_exits_3(tmp_path: Path) -> None:
    client = FakeClient(offers=[], end_offers=True)
    rc = cli.main(["receive", "--accept-from", BOB, "--output", str(tmp_path), "--count", "1"],
                  connect=fake_connect(client))
    assert rc == errors.EXIT_CONNECT


def test_receive_hash_mismatch_exits_8(tmp_path: Path) -> None:
    bad = offer_from(f"{BOB}/a", outcomes={"photo.jpg": errors.ChecksumMismatch("differs")})
    client = FakeClient(offers=[bad])
    rc = cli.main(["receive", "--accept-from", BOB, "--output", str(tmp_path), "--count", "1"],
                  connect=fake_connect(client))
    assert rc == errors.EXIT_HASH_MISMATCH
    assert not (tmp_path / "photo.jpg").exists()


def test_receive_default_output_is_the_downloads_dir(tmp_path: Path) -> None:
    offer = offer_from(f"{BOB}/a")
    rc = cli.main(["receive", "--accept-from", BOB, "--count", "1"],
                  connect=fake_connect(FakeClient(offers=[offer])))
    assert rc == 0
    assert offer.accepted_into == tmp_path / "downloads"


def test_receive_uncreatable_output_and_full_jid_in_accept_from_are_usage_errors(
        tmp_path: Path) -> None:
    connect = fake_connect()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # a folder cannot be created below a regular file
    assert cli.main(["receive", "--output", str(blocker / "sub")],
                    connect=connect) == errors.EXIT_USAGE
    assert cli.main(["receive", "--accept-from", f"{BOB}/laptop"],
                    connect=connect) == errors.EXIT_USAGE
    assert connect.calls == []


# --------------------------------------------------------------------------- account


def test_account_add_list_remove_with_keyring(
        tmp_path: Path, isolated: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("JINGLEFS_PASSWORD")
    pwfile = tmp_path / "pw"
    pwfile.write_text("s3cret-value\n")
    assert cli.main(["account", "add", "alice@example.org", "--server", "127.0.0.1:5222",
                     "--password-file", str(pwfile)]) == 0
    assert cli.main(["account", "add", "bob@example.org", "--default"]) == 0
    assert isolated.store == {("jinglefs", "alice@example.org"): "s3cret-value"}
    assert "s3cret-value" not in config.config_file().read_text()
    capsys.readouterr()

    assert cli.main(["account", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("  alice@example.org") and "127.0.0.1:5222" in out[0]
    assert "password in keyring" in out[0]
    assert out[1].startswith("* bob@example.org") and "no stored password" in out[1]

    assert cli.main(["account", "list", "--json"]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert [(r["jid"], r["default"], r["password"]) for r in rows] == [
        ("alice@example.org", False, "keyring"), ("bob@example.org", True, "none")]

    assert cli.main(["account", "remove", "alice@example.org"]) == 0
    assert isolated.store == {}
    assert [a.jid for a in config.load_accounts()] == ["bob@example.org"]
    assert cli.main(["account", "remove", "alice@example.org"]) == errors.EXIT_USAGE


def test_account_add_prompts_twice_on_a_tty(isolated: MemoryKeyring,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JINGLEFS_PASSWORD")
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: True)
    typed = iter(["pw-1", "pw-1", "pw-2", "pw-3"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(typed))
    assert cli.main(["account", "add", "alice@example.org"]) == 0
    assert isolated.store[("jinglefs", "alice@example.org")] == "pw-1"
    assert cli.main(["account", "add", "dave@example.org"]) == errors.EXIT_USAGE
    assert ("jinglefs", "dave@example.org") not in isolated.store


def test_account_add_without_keyring_saves_account_and_explains(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keyring.set_keyring(fail.Keyring())
    pwfile = tmp_path / "pw"
    pwfile.write_text("never-stored\n")
    assert cli.main(["account", "add", "alice@example.org", "--password-file",
                     str(pwfile)]) == 0
    err = capsys.readouterr().err
    assert "No system keyring" in err and "--password-file" in err
    assert "JINGLEFS_PASSWORD" in err and "NOT saved" in err
    assert [a.jid for a in config.load_accounts()] == ["alice@example.org"]
    for f in config.config_dir().rglob("*"):
        assert b"never-stored" not in f.read_bytes()
    assert cli.main(["account", "list"]) == 0
    assert "no keyring" in capsys.readouterr().out


def test_account_add_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["account", "add", "not-a-jid"]) == errors.EXIT_USAGE
    assert cli.main(["account", "add", "a@example.org/res"]) == errors.EXIT_USAGE
    assert cli.main(["account", "add", "a@example.org", "--allow-plaintext"]) == 2
    assert cli.main(["account", "add", "a@example.org", "--server", "h:99999"]) == 2
    assert not config.config_file().exists()


def test_account_test_reports_contacts(capsys: pytest.CaptureFixture[str]) -> None:
    contacts = [Contact(BOB, resources=(Resource(f"{BOB}/l", can_receive_files=True),)),
                Contact("zed@example.org")]
    client = FakeClient(contacts=contacts)
    assert cli.main(["account", "test", "--json"], connect=fake_connect(client)) == 0
    out, err = capsys.readouterr()
    summary = json_lines(out)[-1]
    assert summary["ok"] and summary["contacts"] == 2 and summary["can_receive_files"] == 1
    assert "Logged in as" in err and client.closed
    assert cli.main(["account", "test"],
                    connect=fake_connect(error=errors.AuthError("bad"))) == errors.EXIT_AUTH


def test_gui_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "jinglefs_ui.app", None)
    assert cli.main(["gui"]) == errors.EXIT_FAILED
    assert "pip install 'jinglefs[gui]'" in capsys.readouterr().err


# --------------------------------------------------------------------------- rendering


def test_json_progress_is_throttled_but_keeps_the_last() -> None:
    import io

    now = [0.0]
    buf = io.StringIO()
    view = JsonView(buf, clock=lambda: now[0], interval=0.5)
    for done in (10, 20, 30):
        view.event(Progress("t", done=done, total=100))
        now[0] += 0.1
    now[0] += 1.0
    view.event(Progress("t", done=60, total=100))
    view.event(Progress("t", done=100, total=100))
    assert [json.loads(x)["done"] for x in buf.getvalue().splitlines()] == [10, 60, 100]


def test_human_bar_on_a_tty_has_percent_speed_eta_and_path() -> None:
    import io

    buf = io.StringIO()
    view = HumanView(buf, tty=True, color=False, width=120)
    view.track("t", "big.iso", 1000)
    view.event(TransportSelected("t", path=PathKind.ICE_RELAY))
    view.event(Progress("t", done=500, total=1000, rate=2048.0, eta=65.0))
    text = buf.getvalue()
    assert "\r" in text and "50.0%" in text and "2.0 KiB/s" in text and "ETA 1:05" in text
    assert "via Relayed via TURN (ICE, encrypted)" in text


def test_no_color_env_disables_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    assert use_color(Tty(), {}) is True  # type: ignore[arg-type]
    assert use_color(Tty(), {"NO_COLOR": "1"}) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("text, value", [("10M", 10 * 1024**2), ("2G", 2 * 1024**3),
                                         ("500k", 500 * 1024), ("123", 123), ("1.5KiB", 1536),
                                         ("7MB", 7 * 1024**2)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "M", "-1M", "ten", "1Q", "nan"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_safe_text_escapes_control_and_bidi() -> None:
    # One safe_text for the CLI and the GUI: invisible characters are shown as escapes (the
    # CLI used to drop them), so a trick is visible instead of silently rewritten.
    assert safe_text("a\u202eb\u2066c\x1b[2Jd\x00\u200b") == \
        "a\\u202eb\\u2066c\\u001b[2Jd\\u0000\\u200b"
    assert safe_text("") == "(no name)" and safe_text("  ") == "(no name)"
    assert len(safe_text("x" * 1000)) <= 80
    assert len(safe_text("x" * 1000, 120)) <= 120


# --------------------------------------------------------------------------- the fakes


async def test_fakes_implement_the_facade_protocols(tmp_path: Path) -> None:
    from jinglefs.api import ClientLike, ContactsChanged, OfferLike, OfferReceived, TransferLike

    client = FakeClient()
    offer = offer_from(f"{BOB}/a", contents=[b"abc"])
    assert isinstance(client, ClientLike) and isinstance(offer, OfferLike)
    events = client.events()
    client.push_offer(offer)
    client.set_contacts([Contact(BOB)])
    first = await anext(events)
    assert isinstance(first, OfferReceived) and first.offer is offer
    second = await anext(events)
    assert isinstance(second, ContactsChanged) and second.contacts == (Contact(BOB),)
    assert await anext(client.offers()) is offer
    [t] = await offer.accept(tmp_path)
    assert isinstance(t, TransferLike)
    seen = [ev async for ev in t.events()]
    assert isinstance(seen[-1], Completed) and await t.wait() == seen[-1]
    assert (tmp_path / "photo.jpg").read_bytes() == b"abc"
    await client.aclose()
    assert [ev async for ev in events] == []


async def test_fake_transfer_hang_then_cancel() -> None:
    t = FakeTransfer(peer=BOB, file=FileInfo("x", 10), direction=Direction.SEND,
                     script=[HANG, Completed("never", path="x", size=10)])
    t.start()
    await t.cancel()
    with pytest.raises(errors.Cancelled):
        await t.wait()
    assert [ev.name for ev in t.history] == ["failed"]
