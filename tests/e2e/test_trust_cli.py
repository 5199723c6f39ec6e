"""``jinglefs trust list|verify`` as a user runs them, against the test Prosody with PEP;
the other side is an OMEMO device of our own in this process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jinglefs.omemo.device import OmemoDevice
from jinglefs.xmpp.connection import XmppConnection
from tests.e2e.cli_run import events
from tests.servers.prosody import ProsodyServer

pytestmark = pytest.mark.e2e


def trust_cli(prosody: ProsodyServer, user: str, tmp_path: Path, *args: str
              ) -> subprocess.CompletedProcess[str]:
    """``jinglefs trust ACTION ...`` logged in as ``user`` with its own data folder."""
    pw = tmp_path / f"{user}.pw"
    pw.write_text(prosody.passwords[user] + "\n")
    env = dict(os.environ, JINGLEFS_CONFIG_DIR=str(tmp_path / user / "config"),
               JINGLEFS_STATE_DIR=str(tmp_path / user / "state"),
               JINGLEFS_DATA_DIR=str(tmp_path / user / "data"))
    env.pop("JINGLEFS_PASSWORD", None)
    action, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "jinglefs", "trust", action, "--account", prosody.jid(user),
         "--server", f"127.0.0.1:{prosody.port}", "--ca-file", str(prosody.ca_file),
         "--password-file", str(pw), "--no-input", *rest],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=90)


async def device_of(prosody: ProsodyServer, user: str, folder: Path
                    ) -> tuple[XmppConnection, OmemoDevice]:
    conn = XmppConnection(prosody.account(user, resource=secrets.token_hex(3)), features=[],
                          on_jingle=lambda *_: None)
    await conn.connect(15)
    return conn, await OmemoDevice.start(conn, prosody.jid(user), folder=folder, timeout=15)


async def close(conn: XmppConnection, device: OmemoDevice) -> None:
    await device.aclose()
    await conn.aclose()


def by_event(out: str, name: str) -> list[dict[str, Any]]:
    return [e for e in events(out) if e["event"] == name]


async def test_trust_list_and_verify(prosody: ProsodyServer, tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    alice, bob = f"alice-t{tag}", f"bob-t{tag}"
    prosody.add_account(alice)
    prosody.add_account(bob)
    alice_jid, bob_jid = prosody.jid(alice), prosody.jid(bob)

    conn, laptop = await device_of(prosody, bob, tmp_path / "bob-laptop")
    try:
        bob_fp = (await laptop.own_device()).fingerprint
        laptop_id = laptop.device_id
    finally:
        await close(conn, laptop)

    # list: alice's own fingerprint, bob's device as bob's own device sees itself
    first = trust_cli(prosody, alice, tmp_path, "list", bob_jid, "--json")
    assert first.returncode == 0, first.stderr
    [own] = by_event(first.stdout, "own_device")
    [seen] = by_event(first.stdout, "device")
    assert (seen["jid"], seen["device_id"]) == (bob_jid, laptop_id)
    assert seen["fingerprint"] == bob_fp and seen["trust"] == "blind"
    assert by_event(first.stdout, "summary")[0]["ok"] is True
    store = tmp_path / alice / "data" / "omemo" / alice_jid / "store.json"
    assert store.stat().st_mode & 0o777 == 0o600

    # ... and the other side sees the same fingerprint for alice
    conn, laptop = await device_of(prosody, bob, tmp_path / "bob-laptop")
    try:
        [alice_seen] = await laptop.devices(alice_jid)
    finally:
        await close(conn, laptop)
    assert (alice_seen.device_id, alice_seen.fingerprint) == (own["device_id"],
                                                             own["fingerprint"])

    # verify: a wrong fingerprint changes nothing
    wrong = trust_cli(prosody, alice, tmp_path, "verify", bob_jid, "ab" * 32)
    assert wrong.returncode == 1
    assert "no OMEMO device of" in wrong.stderr and "nothing was marked" in wrong.stderr
    bad = trust_cli(prosody, alice, tmp_path, "verify", bob_jid, "not-a-fingerprint")
    assert bad.returncode == 2 and "not an OMEMO fingerprint" in bad.stderr
    ok = trust_cli(prosody, alice, tmp_path, "verify", bob_jid, bob_fp, "--json")
    assert ok.returncode == 0, ok.stderr
    [verified] = by_event(ok.stdout, "verified")
    assert (verified["device_id"], verified["trust"]) == (laptop_id, "verified")

    # bob adds a phone: reported as new since verification, not trusted
    conn, phone = await device_of(prosody, bob, tmp_path / "bob-phone")
    try:
        phone_fp, phone_id = (await phone.own_device()).fingerprint, phone.device_id
    finally:
        await close(conn, phone)
    again = trust_cli(prosody, alice, tmp_path, "list", bob_jid, "--json")
    assert again.returncode == 0, again.stderr
    assert by_event(again.stdout, "own_device")[0]["device_id"] == own["device_id"]  # kept
    listed = {d["device_id"]: d for d in by_event(again.stdout, "device")}
    assert listed[laptop_id]["trust"] == "verified"
    assert (listed[phone_id]["fingerprint"], listed[phone_id]["trust"]) == (
        phone_fp, "new-after-verified")
    human = trust_cli(prosody, alice, tmp_path, "list", bob_jid)
    assert human.returncode == 0, human.stderr
    assert own["fingerprint"] in human.stdout
    assert f"{phone_fp}  new-after-verified" in human.stdout
