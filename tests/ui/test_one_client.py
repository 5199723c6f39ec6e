"""The app holds exactly one client per account, counted where it matters: the real Prosody's
sessions for the account (``prosodyctl shell``), after every action that logs in again.

Alice's app (main window, bridge, the real ``jinglefs.client.connect``) on a qasync loop:
start-up with the stored account, re-connecting from the account dialog (also while the
start-up login is still under way), a new password, a failed login, the network dropping
the stream, a keepalive that went unanswered, the server refusing the account on the way
back, a new device name.  After each, Prosody holds exactly the sessions expected and every
client the app made and let go is closed for good (no stream, no reconnect loop, no
keepalive that would log it in again).

Then the app and two ``jinglefs`` runs share one account while files move both ways.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import Qt

from jinglefs.api import OfferLike, Settings, Timeouts, TransferLike
from jinglefs.client import Client, connect
from jinglefs.events import Completed
from jinglefs.jid import RESOURCE_PREFIX, resource_of
from jinglefs_ui.accounts import AccountInfo
from jinglefs_ui.bridge import (
    AUTH_FAILED,
    CONNECTING,
    LOST,
    OFFLINE,
    ONLINE,
    ClientBridge,
    default_connect,
)
from jinglefs_ui.storage import History, Preferences
from jinglefs_ui.widgets.account_dialog import AccountDialog
from jinglefs_ui.widgets.main_window import MainWindow
from jinglefs_ui.widgets.preferences_dialog import PreferencesDialog
from tests.e2e.cli_run import events, jinglefs
from tests.e2e.sessions import resources_async, wait_for_resources
from tests.servers.prosody import ProsodyServer
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, until

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SETTINGS = Settings(timeouts=Timeouts(connect=15, accept=30, iq=15, transport=10, stall=20,
                                      peer_gone=3), reconnect_delays=(0.2,))
LIMIT = 60.0  # only to fail instead of hanging; never asserted as a duration


@pytest.fixture
def run_long(qloop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, T]], T]:
    def runner(coro: Coroutine[Any, Any, T]) -> T:
        return qloop.run_until_complete(asyncio.wait_for(coro, 240.0))
    return runner


@dataclass
class App:
    user: str
    jid: str
    window: MainWindow
    bridge: ClientBridge
    prefs: Preferences
    store: MemoryStore
    #: every Client the app started, in order (also those whose login failed)
    made: list[Client]
    states: list[str] = field(default_factory=list)

    def others_closed(self) -> list[str]:
        """What is still alive in the clients the app let go of (should be nothing)."""
        alive = []
        for client in self.made:
            if client is self.bridge.client or client.account.jid != self.jid:
                continue  # the one in use, or another account's (a test's bob)
            x = client.connection.xmpp
            if not client.connection.closed:
                alive.append(f"{client.jid}: not closed")
            if x.transport is not None:
                alive.append(f"{client.jid}: still has a stream")
            if client._reconnect_task is not None:
                alive.append(f"{client.jid}: reconnect loop running")
            if "Ping keepalive" in x.scheduled_events:
                alive.append(f"{client.jid}: keepalive still scheduled")
        return alive


@pytest.fixture
def app(qtbot: Any, prosody: ProsodyServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Generator[App, None, None]:
    """The app with a stored account of its own (so its session count is this test's)."""
    user = f"one-{secrets.token_hex(4)}"
    prosody.add_account(user)
    account = prosody.account(user)
    info = AccountInfo(jid=account.jid, server=account.server, port=account.port,
                       ca_file=account.ca_file)
    store = MemoryStore(tmp_path / "home", accounts=[info],
                        passwords={account.jid: account.password})
    prefs = Preferences(download_dir=str(tmp_path / "downloads"), path=tmp_path / "prefs.json")
    assert prefs.ensure_resource()  # as app.py does on the first start
    made: list[Client] = []
    real_start = Client.start

    async def start(self: Client) -> None:
        made.append(self)
        await real_start(self)

    monkeypatch.setattr(Client, "start", start)
    bridge = ClientBridge(default_connect, settings=SETTINGS, resource=prefs.resource)
    window = MainWindow(bridge, store, prefs, History(tmp_path / "history.json"),
                        notifier=RecordingNotifier())
    qtbot.addWidget(window)
    window.show()
    the_app = App(user, account.jid, window, bridge, prefs, store, made)
    bridge.stateChanged.connect(lambda state, _detail: the_app.states.append(state))
    yield the_app


async def settle(app: App, prosody: ProsodyServer, expected: list[str]) -> None:
    """Prosody holds exactly ``expected`` resources of the app's account and every client
    the app let go of is closed."""
    found = await wait_for_resources(prosody, app.user, len(expected))
    assert sorted(found) == sorted(expected), found
    assert app.others_closed() == []


async def dialog_connect(app: App, qtbot: Any, password: str) -> AccountDialog:
    """Account… → type the password → Connect; returns when the attempt has ended (the
    bridge went CONNECTING and then online or failed, and the dialog is done with it)."""
    dlg = app.window.open_account_dialog()
    dlg.password.clear()
    qtbot.keyClicks(dlg.password, password)
    mark = len(app.states)
    qtbot.mouseClick(dlg.connect_button, Qt.MouseButton.LeftButton)

    def ended() -> bool:
        new = app.states[mark:]
        return (CONNECTING in new and new[-1] in (ONLINE, AUTH_FAILED, OFFLINE)
                and (not dlg.isVisible() or dlg.connect_button.isEnabled()))

    await until(ended, LIMIT, "the login attempt ended")
    return dlg


def test_one_session_per_account_whatever_the_user_does(
        app: App, prosody: ProsodyServer, qtbot: Any,
        run_long: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    me = app.prefs.resource
    password = prosody.passwords[app.user]

    async def scenario() -> None:
        # Start-up with the stored account.
        await app.window.start()
        await until(lambda: app.bridge.state == ONLINE, LIMIT, "online")
        assert me.startswith(RESOURCE_PREFIX) and app.bridge.client is not None
        assert resource_of(app.bridge.client.jid) == me
        await settle(app, prosody, [me])

        # Re-connecting from the account dialog replaces the client (closed first).
        dlg = await dialog_connect(app, qtbot, password)
        assert not dlg.isVisible() and app.bridge.state == ONLINE
        await settle(app, prosody, [me])
        assert len(app.made) == 2

        # ... also right after a start-up login began (whether it is still connecting,
        # then it is abandoned, or already online, then it is closed): one session.
        await app.window.start()
        dlg = await dialog_connect(app, qtbot, password)
        await until(lambda: app.bridge.state == ONLINE, LIMIT, "online again")
        await settle(app, prosody, [me])

        # A new password (changed on the server, typed in the dialog).
        new_password = "new-" + secrets.token_hex(6)
        prosody.add_account(app.user, password=new_password)
        dlg = await dialog_connect(app, qtbot, new_password)
        assert not dlg.isVisible() and app.bridge.state == ONLINE
        await settle(app, prosody, [me])

        # A failed login: the old client went first, the failed one is closed.
        dlg = await dialog_connect(app, qtbot, "wrong-" + new_password)
        assert dlg.isVisible() and dlg.status.text().startswith("Wrong password")
        assert app.bridge.state == AUTH_FAILED and app.bridge.client is None
        await settle(app, prosody, [])
        dlg = await dialog_connect(app, qtbot, new_password)
        assert not dlg.isVisible()
        await settle(app, prosody, [me])

        # The network drops the stream: the same client logs in again, by itself.
        client = app.bridge.client
        assert client is not None
        count = len(app.made)
        transport = client.connection.xmpp.transport
        assert transport is not None
        app.states.clear()
        transport.abort()
        await until(lambda: LOST in app.states and app.bridge.state == ONLINE, LIMIT,
                    "lost, then online again")
        assert app.bridge.client is client and len(app.made) == count
        await settle(app, prosody, [me])

        # A keepalive ping went unanswered (what slixmpp then calls): still one session.
        app.states.clear()
        client.connection.xmpp.reconnect(0.0, "Ping timeout after 20s")
        await until(lambda: LOST in app.states and app.bridge.state == ONLINE, LIMIT,
                    "lost after the keepalive, then online again")
        assert app.bridge.client is client and len(app.made) == count
        await settle(app, prosody, [me])

        # The server refuses the account on the way back: the client is closed.
        prosody.add_account(app.user, password="changed-elsewhere")
        app.states.clear()
        transport = client.connection.xmpp.transport
        assert transport is not None
        transport.abort()
        await until(lambda: app.bridge.state == AUTH_FAILED, LIMIT, "refused")
        await until(lambda: app.bridge.client is None, LIMIT, "client dropped")
        await settle(app, prosody, [])
        assert client.connection.closed

        # A new device name in the preferences reconnects under that name.
        prosody.add_account(app.user, password=new_password)
        dlg = await dialog_connect(app, qtbot, new_password)
        await settle(app, prosody, [me])
        app.window.open_preferences()
        prefs_dialog = app.window.findChildren(PreferencesDialog)[-1]
        assert prefs_dialog.resource.text() == me
        prefs_dialog.resource.setText("bad\tname")
        prefs_dialog.accept()  # refused: a control character (RFC 7622 §3.4)
        assert prefs_dialog.isVisible() and "control character" in \
            prefs_dialog.resource_error.text()
        prefs_dialog.resource.setText("office-pc")
        prefs_dialog.accept()  # OK: saved, and the app reconnects under the new name
        assert app.prefs.resource == "office-pc"
        await until(lambda: app.bridge.client is not None
                    and resource_of(app.bridge.client.jid) == "office-pc", LIMIT,
                    "online as office-pc")
        await settle(app, prosody, ["office-pc"])

        await app.bridge.aclose()
        await settle(app, prosody, [])

    run_long(scenario())


@dataclass
class Bob:
    client: Client
    inbox: Path
    transfers: list[TransferLike] = field(default_factory=list)

    async def accept_all(self, before: Callable[[OfferLike], Coroutine[Any, Any, None]]
                         ) -> None:
        async for offer in self.client.offers():
            await before(offer)
            self.transfers.extend(await offer.accept(self.inbox))


def test_the_app_and_two_cli_runs_share_one_account(
        app: App, prosody: ProsodyServer, tmp_path: Path,
        run_long: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    """The app's client, `jinglefs receive --resource cli-inbox` and `jinglefs send` (a
    random resource) online together as one account: bob sends a file to the receive run,
    the send run sends one to bob; everybody stays online, the bytes arrive."""
    me = app.prefs.resource
    user = app.user
    to_cli = tmp_path / "to-cli.bin"
    to_cli.write_bytes(os.urandom(400_000))
    to_bob = tmp_path / "to-bob.bin"
    to_bob.write_bytes(os.urandom(500_000))
    inbox = tmp_path / "cli-inbox"

    async def scenario() -> None:
        await app.window.start()
        await until(lambda: app.bridge.state == ONLINE, LIMIT, "app online")
        app.states.clear()
        app_client = app.bridge.client
        assert app_client is not None
        bob = Bob(await connect(prosody.account("bob", resource="one-bob"), SETTINGS),
                  tmp_path / "bob-inbox")
        bob.inbox.mkdir()
        receiver = jinglefs(prosody, user, tmp_path, "receive", "--resource", "cli-inbox",
                            "--accept-from", prosody.jid("bob"), "--count", "1",
                            "--output", str(inbox), "--timeout", "60", "--json")
        sender = None
        try:
            await settle(app, prosody, [me, "cli-inbox"])

            all_three = asyncio.Event()

            async def when_all_three_are_online(offer: OfferLike) -> None:
                # The offer comes from the send run while the receive run still waits for
                # its file: the app, receive and send are logged in as one account at once.
                found = await wait_for_resources(prosody, user, 3)
                assert {me, "cli-inbox"} < set(found)
                assert resource_of(offer.peer) in found
                assert resource_of(offer.peer).startswith(RESOURCE_PREFIX)
                all_three.set()

            accepting = asyncio.ensure_future(bob.accept_all(when_all_three_are_online))
            sender = jinglefs(prosody, user, tmp_path, "send", "--json", "--transport", "ibb",
                              str(to_bob), bob.client.jid)
            await asyncio.wait_for(all_three.wait(), LIMIT)
            [sent] = await bob.client.send_files(f"{prosody.jid(user)}/cli-inbox", [to_cli],
                                                 transport="ibb")
            s_out, s_err = await asyncio.to_thread(sender.communicate, timeout=LIMIT)
            r_out, r_err = await asyncio.to_thread(receiver.communicate, timeout=LIMIT)
            assert sender.returncode == 0, s_err
            assert receiver.returncode == 0, r_err
            assert isinstance(await asyncio.wait_for(sent.wait(), LIMIT), Completed)
            [got] = bob.transfers
            done = await asyncio.wait_for(got.wait(), LIMIT)
            assert isinstance(done, Completed)
            accepting.cancel()
        finally:
            for proc in (receiver, sender):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            await bob.client.aclose()
        digest = hashlib.sha256
        assert digest((inbox / to_cli.name).read_bytes()).digest() == \
            digest(to_cli.read_bytes()).digest()
        assert digest(Path(done.path).read_bytes()).digest() == \
            digest(to_bob.read_bytes()).digest()
        assert [e["ok"] for e in events(s_out) if e["event"] == "summary"] == [True]
        assert [e["ok"] for e in events(r_out) if e["event"] == "summary"] == [True]
        # The app was never knocked off: no state change at all, the same client, online.
        assert app.states == [] and app.bridge.client is app_client
        assert app_client.online and app_client.connection.conflicts == 0
        await settle(app, prosody, [me])  # the two runs logged out, the app did not
        assert await resources_async(prosody, user) == [me]
        await app.bridge.aclose()

    run_long(scenario())
