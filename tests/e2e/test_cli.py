"""The `jinglefs` command as a user runs it: separate processes, a real Prosody."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jinglefs import errors
from tests.servers.prosody import ProsodyServer

pytestmark = pytest.mark.e2e


def common(prosody: ProsodyServer, user: str, tmp_path: Path) -> list[str]:
    pw = tmp_path / f"{user}.pw"
    pw.write_text(prosody.passwords[user] + "\n")
    return ["--account", prosody.jid(user), "--server", f"127.0.0.1:{prosody.port}",
            "--ca-file", str(prosody.ca_file), "--password-file", str(pw), "--no-input"]


def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["JINGLEFS_CONFIG_DIR"] = str(tmp_path / "config")
    e["JINGLEFS_STATE_DIR"] = str(tmp_path / "state")
    e.pop("JINGLEFS_PASSWORD", None)
    return e


def jinglefs(*args: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "jinglefs", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(tmp_path),
                            stdin=subprocess.DEVNULL)


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_send_and_receive_with_json(prosody: ProsodyServer, tmp_path: Path) -> None:
    src = tmp_path / "report.bin"
    src.write_bytes(os.urandom(1_500_000))
    inbox = tmp_path / "inbox"
    receiver = jinglefs("receive", *common(prosody, "bob", tmp_path), "--accept-from",
                        prosody.jid("alice"), "--count", "1", "--output", str(inbox),
                        "--timeout", "60", "--json", tmp_path=tmp_path)
    time.sleep(1.5)  # let bob come online so alice sees his resource
    sender = jinglefs("send", *common(prosody, "alice", tmp_path), "--json", "--transport",
                      "ibb", str(src), prosody.jid("bob"), tmp_path=tmp_path)
    s_out, s_err = sender.communicate(timeout=90)
    if sender.returncode != 0:
        receiver.kill()
    r_out, r_err = receiver.communicate(timeout=90)
    assert sender.returncode == 0, s_err + "\n--- receiver:\n" + r_err
    assert sender.returncode == 0, s_err
    assert receiver.returncode == 0, r_err
    got = inbox / "report.bin"
    assert got.read_bytes() == src.read_bytes()
    sent_events = events(s_out)
    names = [e["event"] for e in sent_events]
    assert names[0] == "offered" and "transport" in names and names[-1] == "summary"
    assert "completed" in names and "failed" not in names
    received = events(r_out)
    [verified] = [e for e in received if e["event"] == "verified"]
    assert verified["digest"] == hashlib.sha256(src.read_bytes()).hexdigest()
    [transport] = [e for e in received if e["event"] == "transport"]
    assert transport["path"] == "ibb"
    assert all(e["v"] == 1 for e in received)


def test_declined_offer_exit_code(prosody: ProsodyServer, tmp_path: Path) -> None:
    src = tmp_path / "unwanted.bin"
    src.write_bytes(b"x" * 100)
    receiver = jinglefs("receive", *common(prosody, "bob", tmp_path), "--accept-from",
                        "someone@else.example", "--count", "1", "--output",
                        str(tmp_path / "in"), "--timeout", "30", tmp_path=tmp_path)
    time.sleep(1.5)
    sender = jinglefs("send", *common(prosody, "alice", tmp_path), "--transport", "ibb",
                      str(src), prosody.jid("bob"), tmp_path=tmp_path)
    _, s_err = sender.communicate(timeout=60)
    receiver.kill()
    receiver.communicate()
    assert sender.returncode == errors.EXIT_DECLINED, s_err
    assert "declined" in s_err.lower()
    assert not (tmp_path / "in" / "unwanted.bin").exists()


def test_wrong_password_exit_code(prosody: ProsodyServer, tmp_path: Path) -> None:
    pw = tmp_path / "bad.pw"
    pw.write_text("not-the-password\n")
    proc = jinglefs("send", "--account", prosody.jid("alice"), "--server",
                    f"127.0.0.1:{prosody.port}", "--ca-file", str(prosody.ca_file),
                    "--password-file", str(pw), "--no-input", __file__, prosody.jid("bob"),
                    tmp_path=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.EXIT_AUTH, err


def test_unreachable_server_exit_code(prosody: ProsodyServer, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pw = tmp_path / "p.pw"
    pw.write_text("x\n")
    proc = jinglefs("send", "--account", prosody.jid("alice"), "--server", f"127.0.0.1:{port}",
                    "--password-file", str(pw), "--no-input", __file__, prosody.jid("bob"),
                    tmp_path=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.EXIT_CONNECT, err
