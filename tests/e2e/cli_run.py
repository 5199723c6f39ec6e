"""Run `python -m jinglefs` as a user would, against the test Prosody (shared by e2e tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.prosody import ProsodyServer


def jinglefs(prosody: ProsodyServer, user: str, tmp_path: Path, command: str, *args: str
             ) -> subprocess.Popen[str]:
    """One CLI process logged in as ``user`` (password from a file, its own config dirs)."""
    pw = tmp_path / f"{user}.pw"
    pw.write_text(prosody.passwords[user] + "\n")
    env = dict(os.environ, JINGLEFS_CONFIG_DIR=str(tmp_path / user / "config"),
               JINGLEFS_STATE_DIR=str(tmp_path / user / "state"))
    env.pop("JINGLEFS_PASSWORD", None)
    return subprocess.Popen(
        [sys.executable, "-m", "jinglefs", command, "--account", prosody.jid(user),
         "--server", f"127.0.0.1:{prosody.port}", "--ca-file", str(prosody.ca_file),
         "--password-file", str(pw), "--no-input", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL)


def bare_cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """The CLI with exactly these arguments (for login failures)."""
    env = dict(os.environ, JINGLEFS_CONFIG_DIR=str(tmp_path / "config"),
               JINGLEFS_STATE_DIR=str(tmp_path / "state"))
    env.pop("JINGLEFS_PASSWORD", None)
    return subprocess.Popen([sys.executable, "-m", "jinglefs", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@dataclass
class CliTransfer:
    sent: list[dict[str, Any]]  # the sender's --json events
    received: list[dict[str, Any]]  # the receiver's --json events
    inbox: Path


def cli_transfer(prosody: ProsodyServer, tmp_path: Path, src: Path, transport: str,
                 *extra: str) -> CliTransfer:
    """bob runs `receive --accept-from alice --count 1`, alice runs `send --transport T`;
    both must exit 0.  ``extra`` options go to both processes."""
    inbox = tmp_path / "inbox"
    receiver = jinglefs(prosody, "bob", tmp_path, "receive", "--accept-from",
                        prosody.jid("alice"), "--count", "1", "--output", str(inbox),
                        "--timeout", "60", "--json", *extra)
    try:
        time.sleep(1.5)  # let bob come online so alice sees his resource
        sender = jinglefs(prosody, "alice", tmp_path, "send", "--json", "--transport",
                          transport, *extra, str(src), prosody.jid("bob"))
        s_out, s_err = sender.communicate(timeout=90)
        if sender.returncode != 0:
            receiver.kill()
        r_out, r_err = receiver.communicate(timeout=90)
        assert sender.returncode == 0, s_err + "\n--- receiver:\n" + r_err
        assert receiver.returncode == 0, r_err
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    return CliTransfer(events(s_out), events(r_out), inbox)
