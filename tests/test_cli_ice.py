"""The CLI's STUN/TURN options, in-process against tests/fakes.py (no server): what reaches
Settings, what is refused, what is stored, and that a TURN password never shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from jinglefs import cli, config, errors
from jinglefs.cli import terminal
from jinglefs.ice.negotiator import manual_ice_servers
from jinglefs.ice.protocol import IceServers
from jinglefs.stun_turn import TurnUrl, parse_turn
from tests.fakes import MemoryKeyring, fake_connect


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI in-process against tests/fakes.py: no network, a private config dir and an
    in-memory keyring."""
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JINGLEFS_ACCOUNT", "alice@example.org")
    monkeypatch.setenv("JINGLEFS_PASSWORD", "env-pw")
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: False)
    afile = tmp_path / "a.bin"
    afile.write_bytes(b"x" * 100)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield afile
    keyring.set_keyring(previous)


def test_cli_ice_options_reach_the_settings(cli_env: Path, tmp_path: Path) -> None:
    pw = tmp_path / "turn.pw"
    pw.write_text("c2VjcmV0/+=\n")
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org",
                     "--stun", "stun.example.org:19302",
                     "--turn", "turn:1700000000:alice@turn.example.org?transport=tcp",
                     "--turn-password-file", str(pw), "--ice-address", "127.0.0.1",
                     "--ice-relay-only"], connect=connect) == 0
    _, got = connect.calls[0]
    assert got.stun == ("stun.example.org:19302",)
    assert got.ice_host_addresses == ("127.0.0.1",) and got.ice_relay_only
    [turn] = got.turn
    assert parse_turn(turn) == TurnUrl("turn.example.org", 3478, "tcp", False,
                                       "1700000000:alice", "c2VjcmV0/+=")
    assert manual_ice_servers(got.stun, got.turn) == IceServers(
        stun_host="stun.example.org", stun_port=19302, turn_host="turn.example.org",
        turn_username="1700000000:alice", turn_password="c2VjcmV0/+=", turn_transport="tcp")


@pytest.mark.parametrize("argv, message", [
    (["--turn", "turn:u@t.example.org"], "--turn needs --turn-password-file"),
    (["--turn", "turn:t.example.org", "--turn-password-file", "{pw}"], "give the user name"),
    (["--turn", "stun:t.example.org", "--turn-password-file", "{pw}"], "turn: or turns:"),
    (["--turn-password-file", "{pw}"], "without a TURN server"),
    (["--stun", "stun.example.org:99999"], "bad port"),
    (["--ice-address", "eth0"], "is not an IP address"),
])
def test_cli_bad_ice_options(cli_env: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str], argv: list[str],
                             message: str) -> None:
    pw = tmp_path / "turn.pw"
    pw.write_text("pw\n")
    argv = [a.replace("{pw}", str(pw)) for a in argv]
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org", *argv],
                    connect=connect) == errors.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert connect.calls == []


def test_cli_stored_turn_server(cli_env: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """`account add --turn` stores the server without a password; send uses it only with
    --turn-password-file (and says so otherwise)."""
    assert cli.main(["account", "add", "alice@example.org", "--no-input",
                     "--turn", "turn:alice@turn.example.org:3479"]) == 0
    assert config.find_account("alice@example.org") is not None
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org"], connect=connect) == 0
    assert connect.calls[0][1].turn == ()
    assert "stored TURN server is not used without --turn-password-file" in \
        capsys.readouterr().err
    pw = tmp_path / "turn.pw"
    pw.write_text("pw\n")
    assert cli.main(["send", str(cli_env), "bob@example.org", "--turn-password-file",
                     str(pw)], connect=connect) == 0
    assert connect.calls[1][1].turn == ("turn:alice:pw@turn.example.org:3479?transport=udp",)
    # A URL that is not a TURN server is refused before anything is stored.
    assert cli.main(["account", "add", "carol@example.org", "--no-input",
                     "--turn", "turn:turn.example.org"]) == errors.EXIT_USAGE
    assert config.find_account("carol@example.org") is None


def test_turn_password_given_on_the_command_line_is_never_echoed(
        cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--turn without --turn-password-file is a usage error (exit 2) that never echoes the
    URL (someone may have typed a password into it)."""
    connect = fake_connect()
    assert cli.main(["send", str(cli_env), "bob@example.org", "--turn",
                     "turn:alice:s3cret@turn.example.org"], connect=connect) == errors.EXIT_USAGE
    out, err = capsys.readouterr()
    assert "--turn-password-file" in err and "s3cret" not in out + err
    assert connect.calls == []
