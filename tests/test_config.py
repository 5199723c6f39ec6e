"""jinglefs.config: account storage in config.toml, keyring secrets, password resolution."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

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


def no_keyring() -> None:
    keyring.set_keyring(fail.Keyring())


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


def test_config_file_never_contains_a_password(isolated: MemoryKeyring) -> None:
    config.save_account(config.StoredAccount("alice@example.org"))
    config.store_password("alice@example.org", "s3cret-pw")
    assert "s3cret-pw" not in config.config_file().read_text()
    assert isolated.store == {("jinglefs", "alice@example.org"): "s3cret-pw"}


def test_keyring_store_get_delete() -> None:
    config.store_password("Alice@Example.org", "pw")
    assert config.get_password("alice@example.org/phone") == "pw"
    assert config.delete_password("alice@example.org") is True
    assert config.get_password("alice@example.org") is None
    assert config.delete_password("alice@example.org") is False


def test_no_keyring_raises_a_clear_error_and_stores_nothing(tmp_path: Path) -> None:
    no_keyring()
    assert not config.keyring_available()
    with pytest.raises(config.KeyringUnavailable) as info:
        config.store_password("alice@example.org", "pw-123")
    assert isinstance(info.value, UsageError)
    text = info.value.user_message
    assert "--password-file" in text and "JINGLEFS_PASSWORD" in text
    assert config.get_password("alice@example.org") is None
    assert config.delete_password("alice@example.org") is False
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert b"pw-123" not in f.read_bytes()


def test_plaintext_keyring_backend_is_refused() -> None:
    plain = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})
    keyring.set_keyring(plain())
    with pytest.raises(config.KeyringUnavailable, match="plain text"):
        config.store_password("alice@example.org", "pw")


# --------------------------------------------------------------------------- resolution


def _prompt_must_not_run(prompt: str) -> str:
    raise AssertionError("prompted")


def test_password_file_wins_over_everything(tmp_path: Path) -> None:
    config.store_password("a@b.org", "from-keyring")
    pw = tmp_path / "pw"
    pw.write_text("from-file\r\nsecond line\n")
    got = config.resolve_password("a@b.org", password_file=pw, interactive=True,
                                  environ={"JINGLEFS_PASSWORD": "from-env"},
                                  prompt=_prompt_must_not_run)
    assert got == "from-file"


def test_env_wins_over_keyring_and_prompt() -> None:
    config.store_password("a@b.org", "from-keyring")
    got = config.resolve_password("a@b.org", interactive=True,
                                  environ={"JINGLEFS_PASSWORD": "from-env"},
                                  prompt=_prompt_must_not_run)
    assert got == "from-env"


def test_keyring_wins_over_prompt() -> None:
    config.store_password("a@b.org", "from-keyring")
    got = config.resolve_password("a@b.org", interactive=True, environ={},
                                  prompt=_prompt_must_not_run)
    assert got == "from-keyring"


def test_prompt_only_when_interactive() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    assert config.resolve_password("a@b.org", interactive=True, environ={},
                                   prompt=prompt) == "typed"
    assert asked == ["Password for a@b.org: "]
    with pytest.raises(UsageError) as info:
        config.resolve_password("a@b.org", interactive=False, environ={}, prompt=prompt)
    assert len(asked) == 1
    msg = str(info.value)
    assert "--password-file" in msg and "JINGLEFS_PASSWORD" in msg and "account add" in msg


def test_no_keyring_still_resolves_from_env() -> None:
    no_keyring()
    assert config.resolve_password("a@b.org", environ={"JINGLEFS_PASSWORD": "e"}) == "e"
    with pytest.raises(UsageError):
        config.resolve_password("a@b.org", environ={})


@pytest.mark.parametrize("content", ["", "\n", "\nsecond"])
def test_empty_password_file_is_refused(tmp_path: Path, content: str) -> None:
    pw = tmp_path / "pw"
    pw.write_text(content)
    with pytest.raises(UsageError, match="empty"):
        config.resolve_password("a@b.org", password_file=pw, environ={})


def test_missing_password_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the password file"):
        config.resolve_password("a@b.org", password_file=tmp_path / "nope", environ={})
