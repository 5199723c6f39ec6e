"""Render each main screen of jinglefs-gui with the fake façade and save PNGs.

Run through ``scripts/screenshots`` (which starts Xvfb); writes docs/screenshots/*.png,
or only the files named on the command line (``scripts/screenshots quit-prompt.png``).
Nothing here touches the network: the client is tests/fakes.FakeClient.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.ui.ui_package import load_ui_package  # noqa: E402

load_ui_package()  # not pip-installed: load ui/ by its name

import qasync  # noqa: E402
from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from jinglefs import errors  # noqa: E402
from jinglefs.api import ConnectionLost  # noqa: E402
from jinglefs.events import (  # noqa: E402
    Accepted,
    Completed,
    Direction,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    TransportSelected,
    Verified,
)
from jinglefs_ui.accounts import AccountInfo  # noqa: E402
from jinglefs_ui.bridge import ClientBridge  # noqa: E402
from jinglefs_ui.files import DroppedItem  # noqa: E402
from jinglefs_ui.qtfix import protect_bools  # noqa: E402
from jinglefs_ui.storage import MB, History, Preferences  # noqa: E402
from jinglefs_ui.widgets.main_window import MainWindow  # noqa: E402
from jinglefs_ui.widgets.preferences_dialog import PreferencesDialog  # noqa: E402
from tests.fakes import HANG, FakeClient, FakeConnect, FakeOffer, fake_fingerprint  # noqa: E402
from tests.ui.fakes_gui import MemoryStore, RecordingNotifier, roster, until  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
#: Only these files are written when names are given on the command line.
ONLY: set[str] = set()


def sending(tid: str, peer: str, name: str, size: int, *, path: PathKind, done: int,
            rate: float, finish: bool, detail: str = "") -> list[object]:
    info = FileInfo(name, size)
    steps: list[object] = [
        Offered(tid, peer=peer, direction=Direction.SEND, file=info), Accepted(tid),
        TransportSelected(tid, path=path, detail=detail, encrypted=path.encrypted),
        Progress(tid, done=done, total=size, rate=rate, eta=(size - done) / rate)]
    if finish:
        steps += [Progress(tid, done=size, total=size, rate=rate),
                  Verified(tid, algo="sha-256", digest=b"\x11" * 32),
                  Completed(tid, path=name, size=size, verified=True)]
    else:
        steps.append(HANG)
    return steps


async def settle(seconds: float = 0.4) -> None:
    await asyncio.sleep(seconds)
    QApplication.processEvents()


def save(widget: QWidget, name: str) -> None:
    if ONLY and name not in ONLY:
        return
    path = OUT / name
    widget.grab().save(str(path))
    print(f"wrote {path.relative_to(ROOT)}")


async def main_window_screens(tmp: Path) -> None:
    client = FakeClient("me@example.org/jinglefs", contacts=roster())
    store = MemoryStore(tmp, accounts=[AccountInfo("me@example.org")],
                        passwords={"me@example.org": "pw"})
    (tmp / "Downloads").mkdir()
    prefs = Preferences(path=tmp / "prefs.json")
    window = MainWindow(ClientBridge(FakeConnect(client)), store, prefs,
                        History(tmp / "history.json"), notifier=RecordingNotifier())
    window.resize(1280, 680)
    window.show()
    await window.start()
    await until(lambda: window.bridge.state == "online", what="online")
    window.contacts_view.expandAll()

    files = {"holiday-video.mp4": 734 * MB, "thesis-final.pdf": 3 * MB,
             "backup.tar.zst": 2100 * MB, "slides.odp": 12 * MB}
    for name, size in files.items():
        p = tmp / name
        with open(p, "wb") as f:
            f.truncate(size)
    client.outcomes["holiday-video.mp4"] = sending(
        "s1", "alice@example.org", "holiday-video.mp4", files["holiday-video.mp4"],
        path=PathKind.ICE_DIRECT, done=455 * MB, rate=38.5 * MB, finish=False,
        detail="host 192.168.1.20:50312 ↔ 192.168.1.33:41877")
    client.outcomes["thesis-final.pdf"] = sending(
        "s2", "alice@example.org", "thesis-final.pdf", files["thesis-final.pdf"],
        path=PathKind.S5B_PROXY, done=MB, rate=2 * MB, finish=True,
        detail="proxy.example.org")
    client.outcomes["backup.tar.zst"] = errors.CandidatesFailed(
        "direct and relayed paths timed out; the server offers no proxy")
    client.outcomes["slides.odp"] = [Offered("s4", peer="dave@example.com",
                                             direction=Direction.SEND,
                                             file=FileInfo("slides.odp", 12 * MB)), HANG]

    def send(jid: str, name: str) -> None:
        window.send_items(jid, True, [DroppedItem(url=name, local_path=str(tmp / name))])

    send("dave@example.com", "backup.tar.zst")
    await settle(0.2)
    send("alice@example.org", "thesis-final.pdf")
    await settle(0.2)
    received = FakeOffer("dave@example.com/desktop",
                         [FileInfo("band-photo.jpg", 4_200_000, "image/jpeg")],
                         contents=[b"jpeg"], path=PathKind.S5B_DIRECT)
    prefs.set_auto_accept("dave@example.com", 10 * MB)
    client.push_offer(received)
    await settle(0.2)
    send("dave@example.com", "slides.odp")
    await settle(0.2)
    send("alice@example.org", "holiday-video.mp4")
    await settle(0.6)
    window.transfers.select_row(0)
    window.contacts_view.setCurrentIndex(window.contacts_model.find("alice@example.org"))
    await settle()
    save(window, "main-window.png")

    # A failure selected, to show its reason in the details.
    for row in range(window.transfers_model.rowCount()):
        rec = window.transfers_model.record(row)
        if rec is not None and rec.name == "backup.tar.zst":
            window.transfers.select_row(row)
    await settle()
    save(window, "transfer-failed.png")

    # A drop that cannot be sent.
    (tmp / "broken-link").symlink_to(tmp / "nowhere")
    window.send_items("alice@example.org", True, [
        DroppedItem("https://example.org/video.mkv", None),
        DroppedItem("broken-link", str(tmp / "broken-link")),
        DroppedItem("/dev/sda", "/dev/null")])
    await until(lambda: window.message.text(), what="message")
    await settle()
    save(window, "bad-drop.png")
    window.message.clear()

    # The accept dialog.
    offer = FakeOffer("alice@example.org/laptop", [
        FileInfo("Concert 2026 (full set).flac", 412 * MB, "audio/flac"),
        FileInfo("cover\u202egpj.exe", 81_000, "application/x-msdownload")])
    client.push_offer(offer)
    await until(lambda: window.offer_dialogs, what="offer dialog")
    dlg = window.offer_dialogs[0]
    dlg.remember.setChecked(True)
    dlg.adjustSize()
    await settle()
    save(dlg, "accept-dialog.png")
    dlg.reject()

    # One action of the sender, a folder of 6 files: one dialog for all of them.
    folder = FakeOffer("bob@example.org/phone", [
        FileInfo("Trip to Lisbon/itinerary.pdf", 182_000, "application/pdf"),
        FileInfo("Trip to Lisbon/tickets.pdf", 96_500, "application/pdf"),
        FileInfo("Trip to Lisbon/day 1/tram 28.jpg", 4 * MB + 310_000, "image/jpeg"),
        FileInfo("Trip to Lisbon/day 1/Alfama.jpg", 3 * MB + 820_000, "image/jpeg"),
        FileInfo("Trip to Lisbon/day 2/fado.m4a", 18 * MB, "audio/mp4"),
        FileInfo("Trip to Lisbon/day 2/Belém.mp4", 146 * MB, "video/mp4")])
    client.push_offer(folder)
    await until(lambda: window.offer_dialogs, what="folder offer dialog")
    dlg = window.offer_dialogs[0]
    dlg.adjustSize()
    await settle()
    save(dlg, "accept-dialog-folder.png")
    dlg.reject()

    stranger = FakeOffer("someone@chat.example/phone",
                         [FileInfo("invoice.pdf", 220_000, "application/pdf")],
                         from_contact=False)
    client.push_offer(stranger)
    await until(lambda: window.offer_dialogs, what="stranger dialog")
    dlg = window.offer_dialogs[0]
    dlg.adjustSize()
    await settle()
    save(dlg, "accept-dialog-stranger.png")
    dlg.reject()

    prefs_dialog = PreferencesDialog(prefs, str(tmp / "Downloads"), window)
    prefs_dialog.show()
    await settle()
    save(prefs_dialog, "preferences.png")
    prefs_dialog.close()

    # Quitting while transfers run asks first.
    window.quit_action.trigger()
    await until(lambda: window.quit_prompt is not None, what="quit prompt")
    prompt = window.quit_prompt
    assert prompt is not None
    await settle()
    save(prompt, "quit-prompt.png")
    [keep] = [b for b in prompt.buttons() if "Keep" in b.text()]
    keep.click()
    await until(lambda: window.quit_prompt is None, what="kept running")

    # A narrow window: contacts above the transfers, each status still readable.
    window.resize(420, 760)
    window.transfers.select_row(0)
    await settle()
    save(window, "narrow-window.png")
    window.resize(1280, 680)
    await settle()

    client.push_event(ConnectionLost("the network went away"))
    await until(lambda: window.bridge.state == "lost", what="lost")
    await settle()
    save(window, "connection-lost.png")
    window.bridge._closing = True
    await window.bridge.aclose()
    window.close()


async def account_screens(tmp: Path) -> None:
    connect = FakeConnect(error=errors.AuthError("not-authorized"))
    bridge = ClientBridge(connect)
    store = MemoryStore(tmp)
    window = MainWindow(bridge, store, Preferences(), History(None))
    window.resize(1000, 600)
    dlg = window.open_account_dialog()
    await settle()
    save(dlg, "account-dialog.png")
    dlg.jid.setText("me@example.org")
    dlg.password.setText("wrong password")
    dlg.server.setText("xmpp.example.org")
    dlg.submit()
    await until(lambda: "Wrong password" in dlg.status.text(), what="auth error")
    await settle()
    save(dlg, "account-dialog-error.png")
    dlg.close()
    window.close()


async def trust_screens(tmp: Path) -> None:
    """A contact's OMEMO devices, Verify… with a fingerprint that differs, and our own
    fingerprint in the account dialog."""
    client = FakeClient("me@example.org/jinglefs", contacts=roster())
    assert client.omemo is not None
    alice = "alice@example.org"
    laptop, phone, tablet = (fake_fingerprint(f"alice-{d}") for d in ("laptop", "phone",
                                                                        "tablet"))
    client.omemo.publish(alice, 1419653012, laptop)
    client.omemo.publish(alice, 2008374455, phone)
    await client.verify_device(alice, laptop)
    client.omemo.publish(alice, 310589127, tablet)  # added after the verification
    store = MemoryStore(tmp, accounts=[AccountInfo("me@example.org")],
                        passwords={"me@example.org": "pw"})
    window = MainWindow(ClientBridge(FakeConnect(client)), store, Preferences(),
                        History(None), notifier=RecordingNotifier())
    window.resize(1000, 600)
    window.show()
    await window.start()
    await until(lambda: window.bridge.state == "online", what="online")
    dlg = window.open_devices_dialog(alice)
    assert dlg is not None
    await until(lambda: dlg.table.topLevelItemCount() == 3, what="devices")
    dlg.resize(860, 330)
    dlg.select(310589127)
    await settle()
    save(dlg, "device-fingerprints.png")
    verify = dlg.open_verify()
    assert verify is not None
    verify.pasted.setText(fake_fingerprint("someone else"))
    await settle()
    save(verify, "verify-device.png")
    verify.reject()
    dlg.close()
    account = window.open_account_dialog()
    await until(lambda: account.copy_fingerprint.isEnabled(), what="our fingerprint")
    await settle()
    save(account, "account-fingerprint.png")
    account.close()
    window.bridge._closing = True
    await window.bridge.aclose()
    window.close()


async def amain() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        home = Path(a) / "home" / "you"  # so that paths in the pictures look like a home
        home.mkdir(parents=True)
        await main_window_screens(home)
        await account_screens(Path(b))
        await trust_screens(Path(b) / "trust")


def main() -> int:
    ONLY.update(sys.argv[1:])
    app = QApplication(sys.argv[:1])
    protect_bools()
    app.setApplicationName("jinglefs")
    app.setWindowIcon(QIcon(str(ROOT / "ui" / "resources" / "org.jinglefs.JingleFS.svg")))
    os.environ.setdefault("TZ", "UTC")
    qasync.run(amain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
