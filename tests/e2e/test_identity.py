"""Every running jinglefs has its own resource, so any number of them share one account on
the real Prosody; a resource conflict (RFC 6120 §7.7.2.2: another session bound ours and the
server closed our stream with <conflict/>) moves the client to a new random resource
through its one reconnect loop, and never back (no two clients replacing each other)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from jinglefs import login
from jinglefs.api import Account, ClientEvent, ConnectionLost, Reconnected
from jinglefs.client import Client, connect
from jinglefs.jid import RESOURCE_PREFIX, resource_of
from tests.servers.prosody import ProsodyServer

from .cli_run import events, jinglefs
from .conftest import BOUND, logged_in, settings, transfer_file
from .sessions import resources_async, wait_for_resources

pytestmark = pytest.mark.e2e

E = TypeVar("E", bound=ClientEvent)
RETRY = settings(reconnect_delays=(0.2,))


async def next_of(stream: AsyncIterator[ClientEvent], kind: type[E]) -> E:
    async def find() -> E:
        async for event in stream:
            if isinstance(event, kind):
                return event
        raise AssertionError("the event stream ended")
    return await asyncio.wait_for(find(), BOUND)


def fresh_user(prosody: ProsodyServer) -> str:
    """An account of its own, so that its session count is this test's alone."""
    user = f"id-{secrets.token_hex(4)}"
    prosody.add_account(user)
    return user


def default_account(prosody: ProsodyServer, user: str) -> Account:
    """As the CLI logs in: no resource given, so a new ``jinglefs-<id>`` one."""
    return login.make_account(prosody.jid(user), prosody.passwords[user], server=prosody.host,
                              port=prosody.port, ca_file=str(prosody.ca_file))


async def test_a_resource_conflict_moves_to_a_new_resource(prosody: ProsodyServer,
                                                           tmp_path: Path) -> None:
    user = fresh_user(prosody)
    first = await connect(prosody.account(user, resource="desk"), RETRY)
    try:
        stream = first.events()
        # Someone else binds "desk": Prosody closes first's stream with <conflict/>.
        async with logged_in(prosody, user, "desk", RETRY) as intruder:
            lost = await next_of(stream, ConnectionLost)
            assert "same device name (desk)" in lost.reason, lost.reason
            await next_of(stream, Reconnected)
            moved = resource_of(first.jid)
            assert moved.startswith(RESOURCE_PREFIX) and moved in lost.reason
            assert first.connection.conflicts == 1
            # Both stay: first never takes "desk" back, so nobody is replaced again.
            assert sorted(await wait_for_resources(prosody, user, 2)) == sorted(["desk", moved])
            assert first.online and intruder.online
            async with logged_in(prosody, "bob", "id-bob", RETRY) as bob:
                # A file still arrives, at the new full JID.
                _src, done, *_ = await transfer_file(bob, first, tmp_path, 200_000, "ibb")
                assert done.verified
            assert sorted(await resources_async(prosody, user)) == sorted(["desk", moved])
    finally:
        await first.aclose()


async def test_clients_and_a_cli_run_share_one_account(prosody: ProsodyServer,
                                                       tmp_path: Path) -> None:
    """Two clients logged in as the CLI and the library do by default, plus a `jinglefs
    receive` run, all on one account while bob sends a file to the CLI: each has its own
    resource, nobody is knocked off, the bytes arrive."""
    user = fresh_user(prosody)
    one: Client = await connect(default_account(prosody, user), RETRY)
    two: Client = await connect(default_account(prosody, user), RETRY)
    receiver = None
    try:
        drops: list[str] = []  # every lost connection, as it happens
        for client in (one, two):
            client.connection.on_disconnect(drops.append)
        mine = {resource_of(one.jid), resource_of(two.jid)}
        assert all(r.startswith(RESOURCE_PREFIX) for r in mine) and len(mine) == 2
        assert sorted(await wait_for_resources(prosody, user, 2)) == sorted(mine)
        inbox = tmp_path / "inbox"
        receiver = jinglefs(prosody, user, tmp_path, "receive", "--accept-from",
                            prosody.jid("bob"), "--count", "1", "--output", str(inbox),
                            "--timeout", "60", "--json")
        found = await wait_for_resources(prosody, user, 3)
        [cli_resource] = set(found) - mine
        assert cli_resource.startswith(RESOURCE_PREFIX)
        src = tmp_path / "for-the-cli.bin"
        src.write_bytes(os.urandom(300_000))
        async with logged_in(prosody, "bob", "id-bob2", RETRY) as bob:
            [sent] = await bob.send_files(f"{prosody.jid(user)}/{cli_resource}", [src],
                                          transport="ibb")
            await asyncio.wait_for(sent.wait(), BOUND)
        out, err = await asyncio.to_thread(receiver.communicate, timeout=BOUND)
        assert receiver.returncode == 0, err
        got = inbox / src.name
        assert hashlib.sha256(got.read_bytes()).digest() == hashlib.sha256(
            src.read_bytes()).digest()
        [summary] = [e for e in events(out) if e["event"] == "summary"]
        assert summary["ok"] is True
        # The two clients were never knocked off, and kept their resources.
        assert drops == [] and one.online and two.online
        assert {resource_of(one.jid), resource_of(two.jid)} == mine
        assert sorted(await wait_for_resources(prosody, user, 2)) == sorted(mine)
    finally:
        if receiver is not None and receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
        await one.aclose()
        await two.aclose()
