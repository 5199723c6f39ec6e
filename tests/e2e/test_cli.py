"""The `jinglefs` command as a user runs it: separate processes, a real Prosody."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from jinglefs import errors
from tests.servers.prosody import ProsodyServer

from .cli_run import bare_cli, cli_transfer, jinglefs

pytestmark = pytest.mark.e2e


def test_send_and_receive_with_json(prosody: ProsodyServer, tmp_path: Path) -> None:
    src = tmp_path / "report.bin"
    src.write_bytes(os.urandom(1_500_000))
    run = cli_transfer(prosody, tmp_path, src, "ibb")
    got = run.inbox / "report.bin"
    assert got.read_bytes() == src.read_bytes()
    names = [e["event"] for e in run.sent]
    assert names[0] == "offered" and "transport" in names and names[-1] == "summary"
    assert "completed" in names and "failed" not in names
    [verified] = [e for e in run.received if e["event"] == "verified"]
    assert verified["digest"] == hashlib.sha256(src.read_bytes()).hexdigest()
    [transport] = [e for e in run.received if e["event"] == "transport"]
    assert transport["path"] == "ibb"
    assert all(e["v"] == 1 for e in run.received)


def test_declined_offer_exit_code(prosody: ProsodyServer, tmp_path: Path) -> None:
    src = tmp_path / "unwanted.bin"
    src.write_bytes(b"x" * 100)
    receiver = jinglefs(prosody, "bob", tmp_path, "receive", "--accept-from",
                        "someone@else.example", "--count", "1", "--output",
                        str(tmp_path / "in"), "--timeout", "30")
    time.sleep(1.5)
    sender = jinglefs(prosody, "alice", tmp_path, "send", "--transport", "ibb",
                      str(src), prosody.jid("bob"))
    _, s_err = sender.communicate(timeout=60)
    receiver.kill()
    receiver.communicate()
    assert sender.returncode == errors.EXIT_DECLINED, s_err
    assert "declined" in s_err.lower()
    assert not (tmp_path / "in" / "unwanted.bin").exists()


def test_wrong_password_exit_code(prosody: ProsodyServer, tmp_path: Path) -> None:
    pw = tmp_path / "bad.pw"
    pw.write_text("not-the-password\n")
    proc = bare_cli(tmp_path, "send", "--account", prosody.jid("alice"), "--server",
                    f"127.0.0.1:{prosody.port}", "--ca-file", str(prosody.ca_file),
                    "--password-file", str(pw), "--no-input", __file__, prosody.jid("bob"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.EXIT_AUTH, err
