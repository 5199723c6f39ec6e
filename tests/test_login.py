"""jinglefs.login: keyring secrets, where the password comes from, the account and its
server checks, STUN/TURN options: the one login path of the CLI and the GUI."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from jinglefs import config, login
from jinglefs.errors import UsageError
from tests.fakes import MemoryKeyring


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("JINGLEFS_PASSWORD", raising=False)
    monkeypatch.delenv("JINGLEFS_ACCOUNT", raising=False)
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def no_keyring() -> None:
    keyring.set_keyring(fail.Keyring())


def test_config_file_never_contains_a_password(isolated: MemoryKeyring) -> None:
    config.save_account(config.StoredAccount("alice@example.org"))
    login.store_password("alice@example.org", "s3cret-pw")
    assert "s3cret-pw" not in config.config_file().read_text()
    assert isolated.store == {("jinglefs", "alice@example.org"): "s3cret-pw"}


def test_keyring_store_get_delete() -> None:
    login.store_password("Alice@Example.org", "pw")
    assert login.get_password("alice@example.org/phone") == "pw"
    assert login.delete_password("alice@example.org") is True
    assert login.get_password("alice@example.org") is None
    assert login.delete_password("alice@example.org") is False


def test_no_keyring_raises_a_clear_error_and_stores_nothing(tmp_path: Path) -> None:
    no_keyring()
    assert not login.keyring_available()
    with pytest.raises(login.KeyringUnavailable) as info:
        login.store_password("alice@example.org", "pw-123")
    assert isinstance(info.value, UsageError)
    text = info.value.user_message
    assert "--password-file" in text and "JINGLEFS_PASSWORD" in text
    assert login.get_password("alice@example.org") is None
    assert login.delete_password("alice@example.org") is False
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert b"pw-123" not in f.read_bytes()


def test_plaintext_keyring_backend_is_refused() -> None:
    plain = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})
    keyring.set_keyring(plain())
    with pytest.raises(login.KeyringUnavailable, match="plain text"):
        login.store_password("alice@example.org", "pw")


# --------------------------------------------------------------------------- resolution


def _prompt_must_not_run(prompt: str) -> str:
    raise AssertionError("prompted")


def test_password_file_wins_over_everything(tmp_path: Path) -> None:
    login.store_password("a@b.org", "from-keyring")
    pw = tmp_path / "pw"
    pw.write_text("from-file\r\nsecond line\n")
    got = login.resolve_password("a@b.org", password_file=pw, interactive=True,
                                  environ={"JINGLEFS_PASSWORD": "from-env"},
                                  prompt=_prompt_must_not_run)
    assert got == "from-file"


def test_env_wins_over_keyring_and_prompt() -> None:
    login.store_password("a@b.org", "from-keyring")
    got = login.resolve_password("a@b.org", interactive=True,
                                  environ={"JINGLEFS_PASSWORD": "from-env"},
                                  prompt=_prompt_must_not_run)
    assert got == "from-env"


def test_keyring_wins_over_prompt() -> None:
    login.store_password("a@b.org", "from-keyring")
    got = login.resolve_password("a@b.org", interactive=True, environ={},
                                  prompt=_prompt_must_not_run)
    assert got == "from-keyring"


def test_prompt_only_when_interactive() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    assert login.resolve_password("a@b.org", interactive=True, environ={},
                                   prompt=prompt) == "typed"
    assert asked == ["Password for a@b.org: "]
    with pytest.raises(UsageError) as info:
        login.resolve_password("a@b.org", interactive=False, environ={}, prompt=prompt)
    assert len(asked) == 1
    msg = str(info.value)
    assert "--password-file" in msg and "JINGLEFS_PASSWORD" in msg and "account add" in msg


def test_no_keyring_still_resolves_from_env() -> None:
    no_keyring()
    assert login.resolve_password("a@b.org", environ={"JINGLEFS_PASSWORD": "e"}) == "e"
    with pytest.raises(UsageError):
        login.resolve_password("a@b.org", environ={})


@pytest.mark.parametrize("content", ["", "\n", "\nsecond"])
def test_empty_password_file_is_refused(tmp_path: Path, content: str) -> None:
    pw = tmp_path / "pw"
    pw.write_text(content)
    with pytest.raises(UsageError, match="empty"):
        login.resolve_password("a@b.org", password_file=pw, environ={})


def test_missing_password_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the password file"):
        login.resolve_password("a@b.org", password_file=tmp_path / "nope", environ={})


# --------------------------------------------------------------------------- the account


@pytest.mark.parametrize("server, expected", [
    ("xmpp.example.org", ("xmpp.example.org", None)),
    ("127.0.0.1:5299", ("127.0.0.1", 5299)),
    ("[::1]:5222", ("::1", 5222)),
    ("::1", ("::1", None)),
])
def test_parse_server(server: str, expected: tuple[str, int | None]) -> None:
    assert login.parse_server(server) == expected


@pytest.mark.parametrize("server", ["h:0", "h:99999", "[::1", "[::1]x", " :5222"])
def test_parse_server_rejects(server: str) -> None:
    with pytest.raises(login.AccountProblem) as info:
        login.parse_server(server)
    assert info.value.field == "server"


def test_make_account_keeps_a_resource_and_checks_the_connection(tmp_path: Path) -> None:
    account = login.make_account("alice@example.org/laptop", "pw", server="127.0.0.1",
                                 port=5299, allow_plaintext=True)
    assert (account.jid, account.resource, account.server, account.port,
            account.allow_plaintext) == ("alice@example.org", "laptop", "127.0.0.1", 5299, True)
    # Every instance its own resource: jinglefs- and a random id (jinglefs.jid.new_resource).
    first, second = (login.make_account("alice@example.org", "pw").resource for _ in "ab")
    assert first.startswith("jinglefs-") and second.startswith("jinglefs-") and first != second
    assert login.make_account("alice@example.org", "pw", resource="desk").resource == "desk"
    cases = [({"allow_plaintext": True}, "plaintext"),  # the JID's domain is the server
             ({"allow_plaintext": True, "server": "xmpp.example.org"}, "plaintext"),
             ({"ca_file": str(tmp_path / "missing.pem")}, "ca_file")]
    for kwargs, field in cases:
        with pytest.raises(login.AccountProblem) as info:
            login.make_account("alice@example.org", "pw", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(login.AccountProblem) as bad:
        login.make_account("not a jid", "pw")
    assert bad.value.field == "jid"


def test_resolve_login_merges_the_stored_account(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config.save_account(config.StoredAccount("carol@example.net", server="xmpp.example.net",
                                             port=5223, stun=("stun.example.net",),
                                             turn=("turn:carol@turn.example.net",)))
    login.store_password("carol@example.net", "from-keyring")
    got = login.resolve_login()
    assert (got.account.jid, got.account.password, got.account.server, got.account.port) == (
        "carol@example.net", "from-keyring", "xmpp.example.net", 5223)
    assert got.stun == ("stun.example.net",) and got.turn == ("turn:carol@turn.example.net",)
    monkeypatch.setenv("JINGLEFS_ACCOUNT", "dave@example.org")
    monkeypatch.setenv("JINGLEFS_PASSWORD", "from-env")
    other = login.resolve_login(server="127.0.0.1:5299", allow_plaintext=True)
    assert (other.account.jid, other.account.password, other.account.server,
            other.account.port, other.stun) == ("dave@example.org", "from-env", "127.0.0.1",
                                                5299, ())


def test_resolve_login_checks_the_server_before_asking_for_a_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "pw")
    with pytest.raises(login.AccountProblem) as info:
        login.resolve_login("alice@example.org", allow_plaintext=True, interactive=True)
    assert info.value.field == "plaintext" and "'example.org'" in str(info.value)
    assert asked == []
    assert login.resolve_login("alice@example.org", interactive=True).account.password == "pw"
    assert asked == ["Password for alice@example.org: "]


def test_resolve_login_without_any_account_says_how_to_add_one() -> None:
    with pytest.raises(UsageError, match="jinglefs account add"):
        login.resolve_login()


# --------------------------------------------------------------------------- STUN/TURN


def test_ice_settings_take_turn_passwords_from_a_file_only(tmp_path: Path) -> None:
    stored = login.Login(login.make_account("a@example.org", "pw"), stun=("stored.example",),
                         turn=("turn:me@stored-turn.example",))
    warnings: list[str] = []
    got = login.ice_settings(stored, stun=["given.example:3479"], warn=warnings.append)
    assert got == {"stun": ("given.example:3479", "stored.example"), "turn": (),
                   "ice_host_addresses": None, "ice_relay_only": False}
    assert warnings == ["the stored TURN server is not used without --turn-password-file"]
    pw = tmp_path / "turn.pw"
    pw.write_text("p@ss\n")
    got = login.ice_settings(stored, turn=["turn:1700000000:me@t.example?transport=tcp"],
                             turn_password_file=str(pw), ice_addresses=["127.0.0.1"],
                             relay_only=True)
    assert got["turn"] == ("turn:1700000000%3Ame:p%40ss@t.example:3478?transport=tcp",
                           "turn:me:p%40ss@stored-turn.example:3478?transport=udp")
    assert got["ice_host_addresses"] == ("127.0.0.1",) and got["ice_relay_only"] is True
    with pytest.raises(UsageError, match="--turn-password-file"):
        login.ice_settings(stored, turn=["turn:me@t.example"])
    with pytest.raises(UsageError, match="not an IP address"):
        login.ice_settings(stored, ice_addresses=["eth0"])
    with pytest.raises(UsageError, match="STUN server"):
        login.ice_settings(stored, stun=["stuns:s.example"])
