"""Pure parts of the app: drop checking, safe names, transfer rows, prefs, history."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jinglefs.events import (
    Accepted,
    Completed,
    Direction,
    Failed,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    TransportSelected,
    Verified,
)
from jinglefs_ui import files as files_mod
from jinglefs_ui.files import DroppedItem, check_items
from jinglefs_ui.records import TransferRecord
from jinglefs_ui.storage import ACCEPT, ASK, DECLINE, MB, History, Preferences, decide
from jinglefs_ui.text import human_eta, human_size, safe_text
from tests.fakes import FakeOffer


def local(p: Path | str) -> DroppedItem:
    return DroppedItem(url=f"file://{p}", local_path=str(p))


# -- drop checking --------------------------------------------------------------------

def test_files_and_folders_are_accepted_with_counts(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_bytes(b"x" * 10)
    folder = tmp_path / "photos"
    (folder / "2024").mkdir(parents=True)
    (folder / "one.jpg").write_bytes(b"1" * 100)
    (folder / "2024" / "two.jpg").write_bytes(b"2" * 1000)
    check = check_items([local(a), local(folder)])
    assert check.ok, check.problems
    assert check.paths == [a, folder]
    assert check.sizes == [(1, 10), (2, 1100)]
    assert (check.file_count, check.total_size) == (3, 1110)


def test_non_local_url_is_refused(tmp_path: Path) -> None:
    check = check_items([DroppedItem("https://example.org/x.iso", None)])
    assert not check.ok
    assert "https://example.org/x.iso is not a file on this computer" in check.message()


def test_broken_link_device_pipe_and_empty_folder_are_refused(tmp_path: Path) -> None:
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "missing")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    empty = tmp_path / "empty"
    empty.mkdir()
    good = tmp_path / "good.txt"
    good.write_text("fine")
    check = check_items([local(good), local(link), local("/dev/null"), local(fifo),
                         local(empty)])
    assert not check.ok
    text = check.message()
    assert text.startswith("Nothing was sent:")
    assert f"{link} is a broken link" in text
    assert "/dev/null is a device, not a file" in text
    assert f"{fifo} is a pipe, not a file" in text
    assert f"{empty} is an empty folder" in text


def test_missing_file_is_refused(tmp_path: Path) -> None:
    check = check_items([local(tmp_path / "gone.txt")])
    assert not check.ok
    assert "gone.txt: No such file or directory" in check.message()


def test_unreadable_folder_inside_a_drop_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    secret = folder / "secret"
    secret.mkdir(parents=True)
    (folder / "ok.txt").write_text("ok")
    (secret / "x.txt").write_text("x")
    os.chmod(secret, 0)
    real = files_mod._readable
    # Root reads everything whatever the mode bits say; ask the same question as a user would.
    monkeypatch.setattr(files_mod, "_readable",
                        lambda p, d: False if Path(p) == secret else real(p, d))
    try:
        check = check_items([local(folder)])
    finally:
        os.chmod(secret, 0o755)
    assert not check.ok
    assert f"{secret} is a folder that cannot be read" in check.message()


def test_links_inside_folders_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a").write_text("a")
    (folder / "link").symlink_to("/etc/hostname")
    check = check_items([local(folder)])
    assert not check.ok
    assert "is a link inside the folder" in check.message()


def test_problem_list_is_capped(tmp_path: Path) -> None:
    items = [DroppedItem(f"https://example.org/{i}", None) for i in range(12)]
    text = check_items(items).message()
    assert text.count("•") == files_mod.MAX_PROBLEMS + 1
    assert "…and 4 more" in text


# -- safe text --------------------------------------------------------------------------

@pytest.mark.parametrize("raw, shown", [
    ("report\u202etxt.exe", "report\\u202etxt.exe"),  # RTLO is shown, not obeyed
    ("a\x00b\nc", "a\\u0000b\\u000ac"),
    ("zero\u200bwidth\u2028line", "zero\\u200bwidth\\u2028line"),
    ("", "(no name)"),
])
def test_safe_text_escapes_invisible_characters(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown


def test_safe_text_shortens_absurd_names_keeping_the_extension() -> None:
    shown = safe_text("A" * 5000 + ".pdf")
    assert len(shown) <= 80
    assert shown.endswith(".pdf") and "…" in shown


def test_human_formats() -> None:
    assert human_size(512) == "512 B"
    assert human_size(3 * MB // 2) == "1.5 MiB"
    assert human_eta(75) == "1 min 15 s"
    assert human_eta(7260) == "2 h 01 min"


# -- transfer rows --------------------------------------------------------------------

def test_record_follows_a_successful_transfer() -> None:
    f = FileInfo("big.iso", 1000)
    rec = TransferRecord("t1", "bob@example.org/pc", Direction.SEND, "big.iso", 1000)
    rec.apply(Offered("t1", peer=rec.peer, direction=Direction.SEND, file=f))
    assert rec.status_text() == "Waiting for an answer"
    rec.apply(Accepted("t1"))
    rec.apply(TransportSelected("t1", path=PathKind.ICE_RELAY, detail="turn 1.2.3.4"))
    assert rec.encrypted and rec.path_text() == "Relayed via TURN (ICE, encrypted)"
    rec.apply(Progress("t1", done=250, total=1000, rate=100.0))
    assert rec.status_text() == "Sending"
    assert rec.fraction == 0.25 and rec.eta_text() == "8 s" and rec.speed_text() == "100 B/s"
    rec.apply(Verified("t1", algo="sha-256", digest=b"\x01"))
    rec.apply(Completed("t1", path="/data/big.iso", size=1000))
    assert rec.succeeded and rec.verified and not rec.can_cancel
    assert rec.status_text() == "Done, verified ✓"
    assert rec.local_path == "/data/big.iso"


def test_record_failure_reason_is_kept_and_made_safe() -> None:
    rec = TransferRecord("t2", "x@y/z", Direction.RECEIVE, "f", 10)
    rec.apply(TransportSelected("t2", path=PathKind.IBB))
    assert rec.encryption_text() == "Not encrypted"
    rec.apply(Failed("t2", reason="The received file does not match\u202e", error="hash"))
    assert rec.status_text() == "Failed: The received file does not match\\u202e"
    rec2 = TransferRecord("t3", "x@y/z", Direction.SEND, "f", 10)
    rec2.apply(Failed("t3", reason="no", error="declined"))
    assert rec2.status_text() == "Declined"


# -- preferences, policy, history ------------------------------------------------------------

def test_decide_policy(tmp_path: Path) -> None:
    prefs = Preferences(path=tmp_path / "p.json")
    small = [FileInfo("a", 5 * MB)]
    big = [FileInfo("a", 5 * MB), FileInfo("b", 6 * MB)]
    assert decide(prefs, FakeOffer("alice@example.org/laptop", small)) == ASK
    prefs.set_auto_accept("alice@example.org/laptop", 10 * MB)
    assert prefs.auto_accept == {"alice@example.org": 10 * MB}
    assert decide(prefs, FakeOffer("alice@example.org/phone", small)) == ACCEPT
    assert decide(prefs, FakeOffer("alice@example.org/phone", big)) == ASK
    stranger = FakeOffer("alice@example.org/x", small, from_contact=False)
    assert decide(prefs, stranger) == ASK  # a rule never applies outside the roster
    prefs.strangers = "decline"
    assert decide(prefs, stranger) == DECLINE
    prefs.save()
    again = Preferences.load(tmp_path / "p.json")
    assert (again.strangers, again.auto_accept) == ("decline", {"alice@example.org": 10 * MB})


def test_history_round_trip_and_interrupted_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    done = TransferRecord("t1", "a@b/c", Direction.RECEIVE, "x.txt", 3,
                          path_kind=PathKind.S5B_PROXY, verified=True, local_path="/d/x.txt")
    done.apply(Completed("t1", path="/d/x.txt", size=3, verified=True))
    running = TransferRecord("t2", "a@b/c", Direction.SEND, "y.bin", 9)
    History(path).add(done)
    History(path).add(running)
    rows = History(path).records()
    assert [r.id for r in rows] == ["t1", "t2"]
    assert rows[0].status_text() == "Done, verified ✓" and rows[0].path_kind is PathKind.S5B_PROXY
    assert not rows[0].live
    assert rows[1].state == "failed" and rows[1].reason.startswith("Interrupted")
    path.write_text("{not json")
    assert History(path).records() == []
