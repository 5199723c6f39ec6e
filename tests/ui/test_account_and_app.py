"""First run (account dialog), single instance, and the real entry point."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from jinglefs import errors
from jinglefs_ui import app as app_mod
from jinglefs_ui.accounts import AccountInfo
from jinglefs_ui.bridge import ONLINE, ClientBridge
from jinglefs_ui.single_instance import SingleInstance
from jinglefs_ui.storage import History, Preferences
from jinglefs_ui.widgets.account_dialog import AccountDialog
from jinglefs_ui.widgets.main_window import MainWindow
from tests.fakes import FakeClient, FakeConnect
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, roster, until

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def first_run(qtbot: Any, tmp: Path, *, keyring: bool = True,
              error: errors.JingleFSError | None = None
              ) -> tuple[MainWindow, FakeConnect, MemoryStore]:
    connect = FakeConnect(FakeClient("me@example.org/jinglefs", contacts=roster()), error=error)
    store = MemoryStore(tmp, keyring=keyring)
    window = MainWindow(ClientBridge(connect), store,
                        Preferences(path=tmp / "p.json"), History(tmp / "h.json"),
                        notifier=RecordingNotifier())
    qtbot.addWidget(window)
    window.show()
    return window, connect, store


def fill(dlg: AccountDialog, qtbot: Any, jid: str, password: str, server: str = "",
         port: int = 0) -> None:
    dlg.jid.clear()
    qtbot.keyClicks(dlg.jid, jid)
    dlg.password.clear()
    qtbot.keyClicks(dlg.password, password)
    dlg.server.setText(server)
    dlg.port.setValue(port)


def test_first_run_asks_for_an_account_and_saves_it(qtbot: Any, run: Run,
                                                    tmp_path: Path) -> None:
    window, connect, store = first_run(qtbot, tmp_path)

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None and dlg.isVisible()
        fill(dlg, qtbot, "me@example.org", "s3cret", "xmpp.example.org", 5223)
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        await until(lambda: not dlg.isVisible(), what="dialog closed")
        await until(lambda: window.bridge.state == ONLINE, what="online")

    run(scenario())
    account, _settings = connect.calls[0]
    assert (account.jid, account.password, account.server, account.port) == (
        "me@example.org", "s3cret", "xmpp.example.org", 5223)
    assert store.saved == [AccountInfo("me@example.org", "xmpp.example.org", 5223)]
    assert store.passwords == {"me@example.org": "s3cret"}
    assert window.message.text() == ""
    assert window.contacts_model.rowCount() == 4


@pytest.mark.parametrize("error, shown", [
    (errors.AuthError("not-authorized"),
     "Wrong password, or the server refused the account me@example.org."),
    (errors.ConnectError("connection refused"),
     "Could not reach the XMPP server example.org. (connection refused) Check the server "
     "name, the port and your network."),
])
def test_account_dialog_explains_login_failures(qtbot: Any, run: Run, tmp_path: Path,
                                                error: errors.JingleFSError,
                                                shown: str) -> None:
    window, connect, store = first_run(qtbot, tmp_path, error=error)

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None
        fill(dlg, qtbot, "me@example.org", "wrong")
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        await until(lambda: dlg.status.text() == shown, what=shown)
        assert dlg.isVisible() and dlg.connect_button.isEnabled()
        assert "#b3261e" in dlg.status.styleSheet()
        # Fixing the problem and trying again works.
        connect.error = None
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        await until(lambda: not dlg.isVisible(), what="closed")

    run(scenario())
    assert store.saved and window.bridge.state == ONLINE


def test_account_dialog_checks_the_address_before_connecting(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    window, connect, _store = first_run(qtbot, tmp_path)

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None
        fill(dlg, qtbot, "not-an-address", "pw")
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        assert dlg.status.text() == ("Enter your address as name@server, for example "
                                     "alice@example.org.")
        fill(dlg, qtbot, "me@example.org", "")
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        assert dlg.status.text() == "Enter your password."

    run(scenario())
    assert connect.calls == []


def test_without_a_keyring_the_password_is_not_stored_and_the_user_is_told(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    window, _connect, store = first_run(qtbot, tmp_path, keyring=False)

    async def scenario() -> None:
        await window.start()
        dlg = window.account_dialog
        assert dlg is not None
        fill(dlg, qtbot, "me@example.org", "pw")
        qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)
        await until(lambda: window.message.text(), what="remark")

    run(scenario())
    assert store.passwords == {}
    assert window.message.text().startswith("No system keyring was found, so the password is "
                                            "kept only until jinglefs quits.")


def test_stored_account_with_wrong_password_reopens_the_dialog(qtbot: Any, run: Run,
                                                               tmp_path: Path) -> None:
    window, connect, store = first_run(qtbot, tmp_path, error=errors.AuthError("bad"))
    store.accounts = [AccountInfo("me@example.org", "srv.example.org")]
    store.passwords = {"me@example.org": "old"}

    async def scenario() -> None:
        await window.start()
        await until(lambda: window.account_dialog is not None, what="dialog")

    run(scenario())
    dlg = window.account_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.jid.text() == "me@example.org" and dlg.server.text() == "srv.example.org"
    assert dlg.status.text() == ("Wrong password, or the server refused the account "
                                 "me@example.org.")
    assert len(connect.calls) == 1  # a wrong password is not retried in a loop


# -- single instance and the entry point -----------------------------------------------------

def test_second_instance_forwards_its_arguments(qtbot: Any) -> None:
    key = f"jinglefs-test-{uuid.uuid4().hex[:12]}"
    first = SingleInstance(key)
    assert not first.forward(["nobody listens"], timeout_ms=200)
    assert first.listen()
    try:
        with qtbot.waitSignal(first.messageReceived, timeout=5000) as blocker:
            assert SingleInstance(key).forward(["/tmp/a file.txt", "--hidden"])
        assert blocker.args == [["/tmp/a file.txt", "--hidden"]]
    finally:
        first.close()


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        app_mod.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == "jinglefs-gui 0.1.0"
    with pytest.raises(SystemExit):
        app_mod.main(["--help"])
    out = capsys.readouterr().out
    assert "usage: jinglefs-gui" in out and "--hidden" in out


def test_app_runs_on_the_real_qasync_loop_and_quits(qtbot: Any, tmp_path: Path) -> None:
    """The one smoke test of qasync.run(): start, log in with a stored account, quit."""
    client = FakeClient("me@example.org/jinglefs", contacts=roster())
    connect = FakeConnect(client)
    store = MemoryStore(tmp_path, accounts=[AccountInfo("me@example.org")],
                        passwords={"me@example.org": "pw"})
    services = app_mod.Services(connect=connect, store=store, state_dir=tmp_path / "state",
                                instance_key=f"jinglefs-test-{uuid.uuid4().hex[:12]}",
                                quit_after=1.0)
    args = argparse.Namespace(hidden=False, verbose=False, files=[])
    assert app_mod.run(args, services) == 0
    assert [a.jid for a, _s in connect.calls] == ["me@example.org"]
    assert client.closed


def test_the_real_client_is_what_the_app_connects_with() -> None:
    import inspect

    from jinglefs import client

    params = list(inspect.signature(client.connect).parameters)
    assert params[:2] == ["account", "settings"]
    assert inspect.iscoroutinefunction(client.connect)
