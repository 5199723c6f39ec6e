"""Trust people can see, in the app: our own OMEMO fingerprint in the account dialog, a
contact's devices with their fingerprints and trust, Verify…, the notice when a verified
contact has a new device, the Encryption preference, and each transfer's protection.

Against the fake façade (tests/fakes.py), whose trust rules are the real ones
(jinglefs.omemo.trust) and which tests/contract holds to the real client on Prosody.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from jinglefs.api import OfferDeclined, Settings, Timeouts
from jinglefs.events import (
    Accepted,
    Completed,
    Direction,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    Protection,
    TransportSelected,
)
from jinglefs_ui.accounts import AccountInfo
from jinglefs_ui.bridge import ONLINE, ClientBridge
from jinglefs_ui.files import DroppedItem
from jinglefs_ui.models import TransferListModel
from jinglefs_ui.storage import History, Preferences
from jinglefs_ui.widgets.devices_dialog import DevicesDialog, VerifyDialog
from jinglefs_ui.widgets.main_window import MainWindow
from jinglefs_ui.widgets.preferences_dialog import PreferencesDialog
from jinglefs_ui.widgets.transfers_view import details_text
from tests.fakes import FakeClient, FakeConnect, fake_fingerprint
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, roster, until

Run = Callable[[Coroutine[Any, Any, Any]], Any]
COL = TransferListModel
ALICE = "alice@example.org"
#: alice's laptop and phone, as her OMEMO device list publishes them
LAPTOP, PHONE, TABLET = 1111, 2222, 3333
FP = {LAPTOP: fake_fingerprint("alice-laptop"), PHONE: fake_fingerprint("alice-phone"),
      TABLET: fake_fingerprint("alice-tablet")}


def two_lines(fp: str) -> str:
    groups = fp.split(" ")
    return " ".join(groups[:4]) + "\n" + " ".join(groups[4:])


def make_window(qtbot: Any, tmp: Path, client: FakeClient, *,
                prefs: Preferences | None = None) -> tuple[MainWindow, FakeConnect]:
    connect = FakeConnect(client)
    store = MemoryStore(tmp, accounts=[AccountInfo("me@example.org")],
                        passwords={"me@example.org": "pw"})
    window = MainWindow(ClientBridge(connect), store,
                        prefs or Preferences(path=tmp / "prefs.json"),
                        History(tmp / "history.json"), notifier=RecordingNotifier())
    qtbot.addWidget(window)
    window.show()
    return window, connect


def alice_client() -> FakeClient:
    client = FakeClient("me@example.org/jinglefs", contacts=roster())
    assert client.omemo is not None
    client.omemo.publish(ALICE, LAPTOP, FP[LAPTOP])
    client.omemo.publish(ALICE, PHONE, FP[PHONE])
    return client


async def online(window: MainWindow) -> None:
    await window.start()
    await until(lambda: window.bridge.state == ONLINE, what="online")


def rows(dlg: DevicesDialog) -> list[tuple[str, str, str]]:
    out = []
    for i in range(dlg.table.topLevelItemCount()):
        item = dlg.table.topLevelItem(i)
        assert item is not None
        out.append((item.text(0), item.text(1), item.text(2)))
    return out


async def devices_dialog(window: MainWindow, jid: str = ALICE) -> DevicesDialog:
    """Open the contact's devices from its context menu in the contacts list."""
    idx = window.contacts_model.find(jid)
    menu = window.contacts_view.menu_for(idx)
    assert menu is not None
    [action] = menu.actions()
    assert action.text() == "Devices and &fingerprints…"
    action.trigger()
    dlg = window.devices_dialogs.get(jid)
    assert dlg is not None and dlg.isVisible()
    await until(lambda: dlg.table.topLevelItemCount() > 0, what="devices listed")
    return dlg


# -- our own fingerprint -----------------------------------------------------------------

def test_account_dialog_shows_our_fingerprint_once_logged_in(qtbot: Any, run: Run,
                                                             tmp_path: Path) -> None:
    client = FakeClient("me@example.org/jinglefs", contacts=roster())
    assert client.omemo is not None
    window, _ = make_window(qtbot, tmp_path, client)
    offline = window.open_account_dialog()
    assert offline.fingerprint_box.isHidden()  # not logged in: nothing to show
    offline.close()

    async def scenario() -> None:
        await online(window)
        window.account_dialog = None
        dlg = window.open_account_dialog()
        await until(lambda: dlg.copy_fingerprint.isEnabled(), what="fingerprint shown")
        assert not dlg.fingerprint_box.isHidden()
        assert dlg.fingerprint.text() == two_lines(client.omemo.fingerprint)  # type: ignore
        dlg.copy_fingerprint.click()
        assert QGuiApplication.clipboard().text() == client.omemo.fingerprint  # type: ignore

    run(scenario())
    groups = client.omemo.fingerprint.split(" ")
    assert len(groups) == 8 and all(len(g) == 8 for g in groups)


def test_account_dialog_says_when_omemo_is_off(qtbot: Any, run: Run, tmp_path: Path) -> None:
    window, _ = make_window(qtbot, tmp_path, FakeClient(contacts=roster(), omemo=False))

    async def scenario() -> None:
        await online(window)
        dlg = window.open_account_dialog()
        await until(lambda: "OMEMO is off" in dlg.fingerprint.text(), what="explained")
        assert not dlg.copy_fingerprint.isEnabled()

    run(scenario())


# -- a contact's devices, and Verify… ----------------------------------------------------

def test_contact_devices_list_fingerprints_and_trust(qtbot: Any, run: Run,
                                                     tmp_path: Path) -> None:
    window, _ = make_window(qtbot, tmp_path, alice_client())

    async def scenario() -> None:
        await online(window)
        dlg = await devices_dialog(window)
        assert dlg.windowTitle() == "Devices and fingerprints of Alice"
        assert rows(dlg) == [
            ("1111", two_lines(FP[LAPTOP]), "Trusted until verified"),
            ("2222", two_lines(FP[PHONE]), "Trusted until verified")]
        dlg.select(PHONE)
        dlg.copy_button.click()
        assert QGuiApplication.clipboard().text() == FP[PHONE]
        # the Contact menu opens the same dialog for the selected contact
        window.contacts_view.setCurrentIndex(window.contacts_model.find(ALICE))
        window.devices_action.trigger()
        assert window.devices_dialogs[ALICE] is dlg

    run(scenario())


def test_verify_compares_the_pasted_fingerprint_and_marks_the_device(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    client = alice_client()
    window, _ = make_window(qtbot, tmp_path, client)

    async def scenario() -> None:
        await online(window)
        dlg = await devices_dialog(window)
        dlg.select(LAPTOP)
        verify = dlg.open_verify()
        assert isinstance(verify, VerifyDialog)
        assert verify.fingerprint.text() == two_lines(FP[LAPTOP])
        assert not verify.verify_button.isEnabled()  # nothing compared yet

        verify.pasted.setText(fake_fingerprint("someone else"))
        assert verify.status.text().startswith("✗ The fingerprints differ")
        assert not verify.verify_button.isEnabled()
        verify.compared.setChecked(True)  # a ticked box does not outvote a mismatch
        assert not verify.verify_button.isEnabled()

        verify.pasted.setText(FP[PHONE])
        assert "belongs to another device of this contact (2222)" in verify.status.text()
        assert not verify.verify_button.isEnabled()

        verify.pasted.setText("12 34 not a key")
        assert verify.status.text().startswith("That is not an OMEMO fingerprint")
        assert not verify.verify_button.isEnabled()

        # as Conversations copies it: one block, upper case, with the 05 key type
        verify.pasted.setText("05" + FP[LAPTOP].replace(" ", "").upper())
        assert verify.status.text() == "✓ The fingerprints are the same."
        assert verify.verify_button.isEnabled()
        verify.verify_button.click()
        await until(lambda: not verify.isVisible(), what="verify dialog closed")
        assert rows(dlg) == [
            ("1111", two_lines(FP[LAPTOP]), "Verified"),
            ("2222", two_lines(FP[PHONE]), "Trusted until verified")]
        assert dlg.status.text() == "Device 1111 is verified."
        assert not dlg.verify_button.isEnabled()  # the selected one is verified now
        assert [d.trust for d in await client.devices_of(ALICE)] == ["verified", "blind"]

        # alice adds a tablet: after a verification it is not trusted until verified
        assert client.omemo is not None
        client.omemo.publish(ALICE, TABLET, FP[TABLET])
        dlg.refresh_button.click()
        await until(lambda: dlg.table.topLevelItemCount() == 3, what="the new device")
        assert rows(dlg)[2] == ("3333", two_lines(FP[TABLET]),
                                "New device of a verified contact: not trusted until you "
                                "verify it")
        assert dlg.status.text() == ("New since you verified this contact: device 3333. "
                                     "Compare its fingerprint with them before you verify it.")

        # compared aloud, nothing pasted: the box is enough
        dlg.select(TABLET)
        verify = dlg.open_verify()
        assert verify is not None
        verify.compared.setChecked(True)
        assert verify.verify_button.isEnabled()
        verify.verify_button.click()
        await until(lambda: not verify.isVisible(), what="verify dialog closed")
        assert [r[2] for r in rows(dlg)] == ["Verified", "Trusted until verified", "Verified"]
        assert client.new_devices_of_verified(ALICE) == []

    run(scenario())


def test_devices_that_cannot_be_fetched_are_explained(qtbot: Any, run: Run,
                                                      tmp_path: Path) -> None:
    client = alice_client()
    assert client.omemo is not None
    client.omemo.unreachable[ALICE] = "item-not-found"
    window, _ = make_window(qtbot, tmp_path, client)

    async def scenario() -> None:
        await online(window)
        window.open_devices_dialog(ALICE)
        dlg = window.devices_dialogs[ALICE]
        await until(lambda: dlg.status.text().startswith("Could not fetch"), what="error")
        assert dlg.status.text() == ("Could not fetch the devices of alice@example.org: "
                                     "cannot fetch the OMEMO devices of alice@example.org: "
                                     "item-not-found")
        assert rows(dlg) == []

    run(scenario())


# -- a new device of a verified contact, in the send and offer flows ---------------------

def test_sending_to_a_verified_contact_with_a_new_device_says_so(
        qtbot: Any, run: Run, tmp_path: Path) -> None:
    client = alice_client()
    window, _ = make_window(qtbot, tmp_path, client)
    src = tmp_path / "plan.txt"
    src.write_bytes(b"the plan")

    async def scenario() -> None:
        await online(window)
        await client.verify_device(ALICE, FP[LAPTOP])
        assert client.omemo is not None
        client.omemo.publish(ALICE, TABLET, FP[TABLET])
        window.send_items(f"{ALICE}/laptop", True,
                          [DroppedItem(url=str(src), local_path=str(src))])
        await until(lambda: window.message.text() != "", what="the notice")

    run(scenario())
    assert window.message.text() == (
        f"Alice has a new device since you verified them (device 3333, fingerprint "
        f"{FP[TABLET]}). It gets no key for these files until you verify it: right-click "
        "Alice in Contacts, Devices and fingerprints….")
    assert [c.recipient for c in client.sent] == [f"{ALICE}/laptop"]  # the send went on


def test_no_notice_without_a_new_device(qtbot: Any, run: Run, tmp_path: Path) -> None:
    client = alice_client()
    window, _ = make_window(qtbot, tmp_path, client)
    src = tmp_path / "plan.txt"
    src.write_bytes(b"the plan")

    async def scenario() -> None:
        await online(window)
        await client.verify_device(ALICE, FP[LAPTOP])
        window.send_items(ALICE, True, [DroppedItem(url=str(src), local_path=str(src))])
        await until(lambda: len(client.transfers) == 1, what="sent")
        await until(lambda: window.transfers_model.rowCount() == 1
                    and window.transfers_model.record(0).id == client.transfers[0].id,
                    what="tracked")

    run(scenario())
    assert window.message.text() == ""


def test_a_declined_offer_from_a_new_device_says_what_to_do(qtbot: Any, run: Run,
                                                            tmp_path: Path) -> None:
    client = alice_client()
    window, _ = make_window(qtbot, tmp_path, client)

    async def scenario() -> None:
        await online(window)
        await client.verify_device(ALICE, FP[LAPTOP])
        assert client.omemo is not None
        client.omemo.publish(ALICE, TABLET, FP[TABLET])
        client.omemo.devices(ALICE)  # what the real client does as it opens the key
        client.push_event(OfferDeclined(
            "o1", f"{ALICE}/tablet", (FileInfo("photo.jpg", 2048),), True, "cannot-decrypt",
            "cannot decrypt the file: the key comes from a device of alice@example.org "
            "that is new since you verified alice@example.org"))
        await until(lambda: window.message.text() != "", what="the notice")

    run(scenario())
    assert window.message.text() == (
        f"Declined photo.jpg from {ALICE}/tablet. Alice has a new device since you "
        f"verified them (device 3333, fingerprint {FP[TABLET]}). The file came from such a "
        "device, so it was declined and nothing was written. Verify it only after you "
        "compared its fingerprint with them: right-click Alice in Contacts, Devices and "
        "fingerprints….")


# -- the Encryption preference -----------------------------------------------------------

def test_encryption_preference_is_saved_and_used(qtbot: Any, run: Run,
                                                 tmp_path: Path) -> None:
    client = alice_client()
    prefs = Preferences(path=tmp_path / "prefs.json")
    window, connect = make_window(qtbot, tmp_path, client, prefs=prefs)

    async def scenario() -> None:
        await online(window)
        dlg = PreferencesDialog(prefs, str(tmp_path / "Downloads"), window)
        qtbot.addWidget(dlg)
        assert dlg.encryption.currentText() == "When possible (default)"
        assert [dlg.encryption.itemText(i) for i in range(dlg.encryption.count())] == [
            "Required", "When possible (default)", "Off"]
        dlg.encryption.setCurrentIndex(dlg.encryption.findText("Required"))
        dlg.apply()
        prefs.save()
        window.bridge.set_encryption(prefs.encryption)
        await until(lambda: client.encryption == "required", what="the client told")

    run(scenario())
    assert prefs.encryption == "required"
    assert json.loads((tmp_path / "prefs.json").read_text())["encryption"] == "required"
    assert Preferences.load(tmp_path / "prefs.json").encryption == "required"
    assert window.bridge.settings.encryption == "required"  # and every later login
    assert connect.calls[0][1].encryption == "auto"  # the first login, before the change


def test_the_preferences_dialog_applies_encryption_to_the_client(qtbot: Any, run: Run,
                                                                 tmp_path: Path) -> None:
    client = alice_client()
    prefs = Preferences(path=tmp_path / "prefs.json", resource="jinglefs-test")
    window, _ = make_window(qtbot, tmp_path, client, prefs=prefs)

    async def scenario() -> None:
        await online(window)
        window.open_preferences()
        dlg = window.findChild(PreferencesDialog)
        assert isinstance(dlg, PreferencesDialog)
        dlg.encryption.setCurrentIndex(dlg.encryption.findData("off"))
        dlg.accept()
        await until(lambda: client.encryption == "off", what="the client told")
        await until(lambda: (tmp_path / "prefs.json").exists(), what="saved")

    run(scenario())
    assert json.loads((tmp_path / "prefs.json").read_text())["encryption"] == "off"


def test_a_stored_encryption_choice_reaches_the_first_login(qtbot: Any, run: Run,
                                                            tmp_path: Path) -> None:
    connect = FakeConnect(FakeClient(contacts=roster()))
    bridge = ClientBridge(connect, Settings(encryption="required"))
    run(bridge.login(AccountInfo("me@example.org").account("pw")))
    assert connect.calls[0][1].encryption == "required"
    run(bridge.aclose())


def test_unknown_stored_encryption_falls_back_to_the_default(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"encryption": "sometimes"}))
    assert Preferences.load(tmp_path / "p.json").encryption == "auto"


# -- what protected each transfer --------------------------------------------------------

def test_the_transfers_list_shows_what_protected_each_file(qtbot: Any, run: Run,
                                                           tmp_path: Path) -> None:
    client = alice_client()
    window, _ = make_window(qtbot, tmp_path, client)
    src = tmp_path / "plan.txt"
    src.write_bytes(b"the plan")
    tid = "jet-1"
    info = FileInfo("plan.txt", 8)
    client.outcomes["plan.txt"] = [
        Offered(tid, peer=ALICE, direction=Direction.SEND, file=info), Accepted(tid),
        TransportSelected(tid, path=PathKind.S5B_PROXY, detail="proxy.example.org",
                          encrypted=True, protection=Protection.OMEMO),
        Progress(tid, done=8, total=8, rate=8.0),
        Completed(tid, path=str(src), size=8, protection=Protection.OMEMO)]

    async def scenario() -> None:
        await online(window)
        window.send_items(ALICE, True, [DroppedItem(url=str(src), local_path=str(src))])
        await until(lambda: window.transfers_model.rowCount() == 1
                    and window.transfers_model.record(0).is_finished,  # type: ignore
                    what="done")

    run(scenario())
    model = window.transfers_model
    rec = model.record(0)
    assert rec is not None and rec.protection == "encrypted (OMEMO)"
    assert model.index(0, COL.ENCRYPTION).data() == "Yes"
    tooltip = model.index(0, COL.ENCRYPTION).data(Qt.ItemDataRole.ToolTipRole)
    assert tooltip == "encrypted (OMEMO)"
    assert "encrypted (OMEMO)" in details_text(rec)



# -- for real: the app on Prosody with PEP, a real contact ---------------------------------

@pytest.mark.e2e
def test_real_app_shows_fingerprints_and_verifies_a_real_device(
        qtbot: Any, qloop: asyncio.AbstractEventLoop, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Alice's app (real client) and Bob (a headless real client, its own OMEMO store) on
    fresh accounts: the account dialog shows the fingerprint Alice's device really has,
    Bob's device is listed with the fingerprint Bob's device really has, and Verify… with
    the fingerprint Bob sent marks it verified in Alice's OMEMO store."""
    from jinglefs.client import connect
    from jinglefs.omemo.storage import DATA_DIR_ENV
    from jinglefs_ui.bridge import default_connect

    prosody = request.getfixturevalue("prosody")
    tag = secrets.token_hex(3)
    alice_user, bob_user = f"alice-{tag}", f"bob-{tag}"
    account = prosody.add_account(alice_user, roster=[bob_user])
    prosody.add_account(bob_user)
    bob_bare = prosody.jid(bob_user)
    info = AccountInfo(jid=account.jid, server=account.server, port=account.port,
                       ca_file=account.ca_file, allow_plaintext=account.allow_plaintext)
    store = MemoryStore(tmp_path, accounts=[info], passwords={account.jid: account.password})
    fast = Settings(timeouts=Timeouts(connect=15, accept=30, iq=15, transport=10))
    window = MainWindow(ClientBridge(default_connect, settings=fast), store,
                        Preferences(path=tmp_path / "prefs.json"), History(None),
                        notifier=RecordingNotifier())
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "bob-data"))
        bob = await connect(prosody.account(bob_user, resource="phone"), fast)
        try:
            bob_fp = await bob.own_fingerprint()
            assert bob_fp is not None
            monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "alice-data"))
            await window.start()
            await until(lambda: window.bridge.state == ONLINE, 30, "online")
            client = window.bridge.client
            assert client is not None
            alice_fp = await client.own_fingerprint()
            assert alice_fp is not None and alice_fp != bob_fp

            account_dlg = window.open_account_dialog()
            await until(lambda: account_dlg.copy_fingerprint.isEnabled(), 30, "our fp")
            assert account_dlg.fingerprint.text() == two_lines(alice_fp)
            account_dlg.close()

            await until(lambda: window.contacts_model.find(bob_bare).isValid(), 30, "bob")
            dlg = await devices_dialog(window, bob_bare)
            [(device_id, fp_text, trust_shown)] = rows(dlg)
            assert (fp_text, trust_shown) == (two_lines(bob_fp), "Trusted until verified")
            verify = dlg.open_verify()
            assert verify is not None
            verify.pasted.setText(bob_fp)  # as Bob sent it
            assert verify.status.text() == "✓ The fingerprints are the same."
            verify.verify_button.click()
            await until(lambda: not verify.isVisible(), 30, "verified")
            assert rows(dlg) == [(device_id, two_lines(bob_fp), "Verified")]
            [seen] = await client.devices_of(bob_bare)
            assert (str(seen.device_id), seen.fingerprint, seen.trust) == (
                device_id, bob_fp, "verified")
        finally:
            await window.bridge.aclose()
            await bob.aclose()

    qloop.run_until_complete(asyncio.wait_for(scenario(), 90.0))
