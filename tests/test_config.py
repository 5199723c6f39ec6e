"""jinglefs.config: account storage in config.toml (passwords: tests/test_login.py)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from jinglefs import config
from jinglefs.errors import UsageError
from tests.fakes import MemoryKeyring


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JINGLEFS_DOWNLOADS_DIR", str(tmp_path / "dl"))
    monkeypatch.delenv("JINGLEFS_PASSWORD", raising=False)
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_dirs_follow_environment_overrides(tmp_path: Path) -> None:
    assert config.config_dir() == tmp_path / "cfg"
    assert config.config_file() == tmp_path / "cfg" / "config.toml"
    assert config.state_dir() == tmp_path / "state"
    assert config.downloads_dir() == tmp_path / "dl"


def test_no_file_means_no_accounts() -> None:
    assert config.load_accounts() == []
    assert config.find_account(None) is None
    assert config.find_account("a@b.c") is None


def test_round_trip_keeps_every_field_and_awkward_strings() -> None:
    acc = config.StoredAccount(
        jid="alice@example.org",
        server='weird "host"\\name\n\tü',
        port=5223,
        ca_file="C:\\certs\\ca.pem",
        allow_plaintext=True,
        stun=("stun:stun.example.org:3478",),
        turn=("turn:u:p@turn.example.org:3478?transport=udp", "turns:x\x01y"),
        default=True,
    )
    config.save_account(acc)
    assert config.load_accounts() == [acc]
    # The file is real TOML that tomllib reads back, and is private.
    with config.config_file().open("rb") as f:
        data = tomllib.load(f)
    assert data["account"][0]["server"] == acc.server
    assert config.config_file().stat().st_mode & 0o077 == 0


def test_first_account_is_default_and_default_moves() -> None:
    a = config.save_account(config.StoredAccount("a@example.org"))
    b = config.save_account(config.StoredAccount("b@example.org"))
    assert a.default and not b.default
    assert config.find_account(None) == a
    config.save_account(config.StoredAccount("b@example.org", default=True))
    defaults = [x.jid for x in config.load_accounts() if x.default]
    assert defaults == ["b@example.org"]
    assert config.find_account(None) is not None
    assert config.find_account(None).jid == "b@example.org"  # type: ignore[union-attr]


def test_saving_again_replaces_in_place_and_keeps_default() -> None:
    config.save_account(config.StoredAccount("a@example.org", server="one"))
    config.save_account(config.StoredAccount("b@example.org"))
    config.save_account(config.StoredAccount("A@Example.org", server="two"))
    accounts = config.load_accounts()
    assert [a.jid for a in accounts] == ["A@Example.org", "b@example.org"]
    assert accounts[0].server == "two" and accounts[0].default


def test_find_account_is_case_insensitive_and_ignores_resource() -> None:
    config.save_account(config.StoredAccount("alice@example.org"))
    found = config.find_account("Alice@EXAMPLE.org/laptop")
    assert found is not None and found.jid == "alice@example.org"


def test_find_none_without_default_picks_the_only_account_only() -> None:
    config.config_dir().mkdir(parents=True)
    config.config_file().write_text('[[account]]\njid = "solo@example.org"\n')
    solo = config.find_account(None)
    assert solo is not None and solo.jid == "solo@example.org"
    config.config_file().write_text('[[account]]\njid = "a@x.org"\n[[account]]\njid = "b@x.org"\n')
    assert config.find_account(None) is None


def test_remove_account_and_default_falls_to_the_last_one() -> None:
    config.save_account(config.StoredAccount("a@example.org"))
    config.save_account(config.StoredAccount("b@example.org"))
    assert config.remove_account("a@example.org") is True
    assert [(a.jid, a.default) for a in config.load_accounts()] == [("b@example.org", True)]
    assert config.remove_account("a@example.org") is False


def test_broken_toml_is_a_usage_error() -> None:
    config.config_dir().mkdir(parents=True)
    config.config_file().write_text("[[account]\njid = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        config.load_accounts()


def test_bad_port_is_a_usage_error() -> None:
    config.config_dir().mkdir(parents=True)
    config.config_file().write_text('[[account]]\njid = "a@b.org"\nport = 70000\n')
    with pytest.raises(UsageError, match="port"):
        config.load_accounts()
