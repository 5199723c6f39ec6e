"""The app logs in through jinglefs.login (the CLI's module) and reports the client's own
declines (Settings.accept_from / max_size)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from PySide6.QtCore import Qt

from jinglefs import config
from jinglefs.api import OfferDeclined
from jinglefs.events import FileInfo
from jinglefs_ui.accounts import AccountInfo, ConfigAccountStore
from jinglefs_ui.bridge import ONLINE, ClientBridge
from tests.fakes import FakeClient, FakeConnect, MemoryKeyring
from tests.ui.fakes_gui import until
from tests.ui.test_account_and_app import fill, first_run

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_bridge_tells_the_user_about_offers_the_client_declined(run: Run) -> None:
    client = FakeClient("me@example.org/jinglefs")
    bridge = ClientBridge(FakeConnect(client), reconnect_delays=(0.0,))
    notices: list[str] = []
    bridge.notice.connect(notices.append)

    async def scenario() -> None:
        await bridge.login(AccountInfo("me@example.org").account("pw"))
        # ONLINE is set right before the bridge subscribes to client.events(), in one step.
        await until(lambda: bridge.state == ONLINE, what="online")
        client.push_event(OfferDeclined("o1", "mallory@evil.example/x",
                                        (FileInfo("evil\u202eexe.txt", 10),), False,
                                        "sender-not-allowed",
                                        "mallory@evil.example is not in accept_from"))
        await until(lambda: bool(notices), what="notice")
        await bridge.aclose()

    run(scenario())
    assert notices == ["Declined evil\\u202eexe.txt from mallory@evil.example/x: "
                       "mallory@evil.example is not in accept_from"]


def test_account_dialog_refuses_plaintext_to_a_remote_server(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    window, connect, store = first_run(qtbot, tmp_path)

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None
        fill(dlg, qtbot, "me@example.org", "pw", "xmpp.example.org")
        dlg.plaintext.setChecked(True)
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        assert dlg.status.text() == ("An unencrypted connection is only allowed to a server on "
                                     "this computer (localhost, 127.0.0.1, ::1).")
        fill(dlg, qtbot, "me@example.org", "pw", "127.0.0.1", 5222)
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        await until(lambda: not dlg.isVisible(), what="dialog closed")

    run(scenario())
    [(account, _settings)] = connect.calls
    assert (account.server, account.port, account.allow_plaintext) == ("127.0.0.1", 5222, True)
    assert store.saved == [AccountInfo("me@example.org", "127.0.0.1", 5222,
                                       allow_plaintext=True)]


def test_config_store_shares_accounts_and_keyring_with_the_cli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring) -> None:
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    # As `jinglefs account add me@example.org --stun ... --turn ...` leaves it.
    config.save_account(config.StoredAccount("me@example.org", stun=("stun.example.org",),
                                             turn=("turn:me@turn.example.org",)))
    store = ConfigAccountStore()
    store.save(AccountInfo("me@example.org", "xmpp.example.org", 5223))
    [stored] = config.load_accounts()
    assert (stored.server, stored.port, stored.stun, stored.turn) == (
        "xmpp.example.org", 5223, ("stun.example.org",), ("turn:me@turn.example.org",))
    assert store.load() == [AccountInfo("me@example.org", "xmpp.example.org", 5223)]
    assert store.set_password("Me@Example.org", "s3cret")
    assert memory_keyring.store == {("jinglefs", "me@example.org"): "s3cret"}
    assert store.password("me@example.org") == "s3cret"
