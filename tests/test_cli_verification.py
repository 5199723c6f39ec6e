"""What the CLI says about verification, on both sides (docs/protocol.md §5.8), driven
in-process against tests/fakes.py: "verified" only when a digest was compared, and plain
words with our own sha-256 when it was not; ``--json`` carries the same facts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest

from jinglefs import cli
from jinglefs.cli import terminal
from jinglefs.events import FileInfo, Verification
from tests.fakes import FakeClient, FakeOffer, MemoryKeyring, fake_connect

BOB = "bob@example.org"
ZERO = "00" * 32  # the fake's sha-256 digest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JINGLEFS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JINGLEFS_ACCOUNT", "alice@example.org")
    monkeypatch.setenv("JINGLEFS_PASSWORD", "env-pw")
    monkeypatch.setattr(terminal, "stdin_isatty", lambda: False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield
    keyring.set_keyring(previous)


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def send(tmp_path: Path, client: FakeClient, *extra: str) -> tuple[int, str, str]:
    src = tmp_path / "report.pdf"
    src.write_bytes(b"x" * 5000)
    rc = cli.main(["send", *extra, str(src), BOB], connect=fake_connect(client))
    return rc, src.name, str(src)


@pytest.mark.parametrize("confirms", [True, False])
def test_sender_says_verified_only_when_the_receiver_confirmed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], confirms: bool) -> None:
    rc, _, _ = send(tmp_path, FakeClient(peer_confirms=confirms))
    assert rc == 0
    err = capsys.readouterr().err
    [line] = [ln for ln in err.splitlines() if ln.startswith("✓ Sent report.pdf")]
    if confirms:
        assert line.endswith(", verified by the receiver (sha-256)")
    else:
        assert line.endswith("; delivered; the receiver did not confirm the checksum; "
                             f"sha-256 {ZERO}")
        assert "verified" not in line


@pytest.mark.parametrize("confirms", [True, False])
def test_sender_json_carries_the_same_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            confirms: bool) -> None:
    rc, _, _ = send(tmp_path, FakeClient(peer_confirms=confirms), "--json")
    assert rc == 0
    events = json_lines(capsys.readouterr().out)
    names = [e["event"] for e in events]
    [completed] = [e for e in events if e["event"] == "completed"]
    assert completed["hashes"] == {"sha-256": ZERO}
    assert completed["verified"] is confirms
    if confirms:
        assert "verified" in names
        assert completed["verification"] == Verification.RECEIVER_CONFIRMED.value
        assert completed["reason"] == ""
    else:
        assert "verified" not in names
        assert completed["verification"] == "not-confirmed"
        assert completed["reason"] == "delivered; the receiver did not confirm the checksum"


@pytest.mark.parametrize("sender_hash", [True, False])
def test_receiver_says_verified_only_when_the_sender_gave_a_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sender_hash: bool) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    offer = FakeOffer(f"{BOB}/dino", [FileInfo("photo.jpg", 4)], contents=[b"\x89PNG"],
                      sender_hash=sender_hash)
    client = FakeClient(offers=[offer])
    rc = cli.main(["receive", "--json", "--accept-from", BOB, "--output", str(inbox),
                   "--count", "1"], connect=fake_connect(client))
    assert rc == 0  # kept either way: a file without a hash is not a failure
    out, err = capsys.readouterr()
    [completed] = [e for e in json_lines(out) if e["event"] == "completed"]
    assert completed["path"] == str(inbox / "photo.jpg")
    assert (inbox / "photo.jpg").read_bytes() == b"\x89PNG"
    assert completed["verified"] is sender_hash
    assert completed["hashes"] == {"sha-256": ZERO}
    if sender_hash:
        assert completed["verification"] == "sender-hash" and completed["reason"] == ""
    else:
        assert completed["verification"] == "no-sender-hash"
        assert completed["reason"] == "complete, not verified (the sender gave no hash)"


@pytest.mark.parametrize("sender_hash", [True, False])
def test_receiver_human_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             sender_hash: bool) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    offer = FakeOffer(f"{BOB}/dino", [FileInfo("photo.jpg", 4)], contents=[b"\x89PNG"],
                      sender_hash=sender_hash)
    rc = cli.main(["receive", "--accept-from", BOB, "--output", str(inbox), "--count", "1"],
                  connect=fake_connect(FakeClient(offers=[offer])))
    assert rc == 0
    err = capsys.readouterr().err
    [line] = [ln for ln in err.splitlines() if ln.startswith("✓ Received photo.jpg")]
    where = f" -> {inbox / 'photo.jpg'}"
    if sender_hash:
        assert line.endswith(f", verified (sha-256){where}")
    else:
        assert line.endswith(f"{where}; complete, not verified (the sender gave no hash); "
                             f"sha-256 {ZERO}")
