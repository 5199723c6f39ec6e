"""The app's device name (XMPP resource, one per install) and the bridge's one-login-at-a-time
rule, against the fake façade (the real-server counterpart is test_one_client.py)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from jinglefs.api import Account, Settings
from jinglefs_ui.bridge import ONLINE, ClientBridge, LoginReplaced
from jinglefs_ui.storage import Preferences
from tests.fakes import FakeClient

Run = Callable[[Coroutine[Any, Any, Any]], Any]
ACCOUNT = Account("me@example.org", "pw")


def test_the_device_name_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    prefs = Preferences.load(path)
    assert prefs.resource == ""
    assert prefs.ensure_resource()
    assert re.fullmatch(r"jinglefs-[0-9a-f]{8}", prefs.resource)
    prefs.save()
    again = Preferences.load(path)
    assert again.resource == prefs.resource and not again.ensure_resource()
    # A name that RFC 7622 §3.4 refuses (edited by hand) is not used.
    path.write_text(json.dumps({"resource": "bad\u0007name"}))
    assert Preferences.load(path).resource == ""


class SlowConnect:
    """Logins that wait for ``release``; every client made is kept to check it was closed."""

    def __init__(self) -> None:
        self.calls: list[Account] = []
        self.clients: list[FakeClient] = []
        self.release = asyncio.Event()

    async def __call__(self, account: Account, settings: Settings) -> FakeClient:
        self.calls.append(account)
        client = FakeClient(f"{account.jid}/{account.resource}")
        self.clients.append(client)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            await client.aclose()  # as jinglefs.client.connect does
            raise
        return client


def test_a_newer_login_abandons_the_older_one_and_uses_the_device_name(run: Run) -> None:
    connect = SlowConnect()
    bridge = ClientBridge(connect, resource="jinglefs-0a1b2c3d")

    async def scenario() -> None:
        first = asyncio.ensure_future(bridge.login(ACCOUNT))
        while len(connect.calls) < 1:
            await asyncio.sleep(0)
        second = asyncio.ensure_future(bridge.login(ACCOUNT))
        while len(connect.calls) < 2:
            await asyncio.sleep(0)
        connect.release.set()
        await second
        try:
            await first
        except LoginReplaced:
            pass
        else:
            raise AssertionError("the older login was not replaced")
        assert bridge.state == ONLINE and bridge.client is connect.clients[1]
        assert connect.clients[0].closed and not connect.clients[1].closed
        assert [a.resource for a in connect.calls] == ["jinglefs-0a1b2c3d"] * 2
        # A new device name replaces the client with one under that name (old one closed).
        bridge.set_resource("office")
        while len(connect.calls) < 3 or bridge.client is not connect.clients[2]:
            await asyncio.sleep(0.01)
        assert connect.calls[2].resource == "office" and connect.clients[1].closed
        await bridge.aclose()
        assert connect.clients[2].closed

    run(scenario())
