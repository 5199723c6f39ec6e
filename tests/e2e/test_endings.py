"""Clean endings, as a user sees them: separate `jinglefs` processes on the real Prosody.

Ctrl-C (SIGINT) on one side during a transfer, or `receive --count` reached with another
offer waiting, ends every session with session-terminate, acknowledged before the process
exits (jinglefs.endings, docs/protocol.md §4.5); the other side reports "cancelled by the
peer" (exit 9) or "declined" (exit 10), never a transport error (exit 6).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jinglefs import errors
from tests.servers.prosody import ProsodyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

#: Long enough over IBB (a few MB/s here) that the interruption comes mid-transfer.
BIG = 24 * 1024 * 1024
WAIT = 90  # only to fail instead of hanging; never asserted as a duration


def cli(prosody: ProsodyServer, user: str, resource: str, tmp_path: Path, command: str,
        *args: str) -> subprocess.Popen[str]:
    """``python -m jinglefs COMMAND`` as ``user/resource`` (its own config and state)."""
    pw = tmp_path / f"{user}.pw"
    pw.write_text(prosody.passwords[user] + "\n")
    home = tmp_path / f"{user}-{resource}"
    env = dict(os.environ, JINGLEFS_CONFIG_DIR=str(home / "config"),
               JINGLEFS_STATE_DIR=str(home / "state"))
    env.pop("JINGLEFS_PASSWORD", None)
    return subprocess.Popen(
        [sys.executable, "-m", "jinglefs", command, "--account",
         f"{prosody.jid(user)}/{resource}", "--server", f"127.0.0.1:{prosody.port}",
         "--ca-file", str(prosody.ca_file), "--password-file", str(pw), "--no-input", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL)


def read_until(stream: Any, done: Callable[[str], bool], proc: subprocess.Popen[str],
               what: str) -> list[str]:
    """Lines of ``stream`` up to the first one ``done`` accepts."""
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if done(line):
            return lines
    out, err = proc.communicate(timeout=WAIT)
    raise AssertionError(f"{what}: the process ended first (exit {proc.returncode})\n"
                         + "".join(lines) + out + err)


def moving(line: str) -> bool:
    """A --json progress event with bytes moved."""
    event = json.loads(line)
    return event.get("event") == "progress" and 0 < event["done"] < event["total"]


def event_named(name: str) -> Callable[[str], bool]:
    return lambda line: json.loads(line).get("event") == name


def json_events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def start_receiver(prosody: ProsodyServer, tmp_path: Path, resource: str,
                   inbox: Path, *args: str) -> subprocess.Popen[str]:
    """bob's `receive --accept-from alice`, once it says it is online (human output: the
    "Waiting for files as" line)."""
    bob = cli(prosody, "bob", resource, tmp_path, "receive", "--accept-from",
              prosody.jid("alice"), "--output", str(inbox), "--timeout", "120", *args)
    read_until(bob.stderr, lambda line: line.startswith("Waiting for files as"), bob,
               "bob online")
    return bob


def finish(proc: subprocess.Popen[str], prior: list[str] | None = None) -> tuple[str, str]:
    out, err = proc.communicate(timeout=WAIT)
    return "".join(prior or []) + out, err


def stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def big_file(tmp_path: Path, name: str = "big.bin") -> Path:
    src = tmp_path / "out" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(os.urandom(BIG))
    return src


def assert_tidy(inbox: Path, src: Path) -> None:
    """Nothing that looks complete; at most the one partial, holding a prefix."""
    names = sorted(p.name for p in inbox.iterdir()) if inbox.exists() else []
    assert names in ([], [src.name + ".jfs-part"]), names
    if names:
        kept = (inbox / names[0]).read_bytes()
        assert kept == src.read_bytes()[:len(kept)]


#: transport -> options for both sides.  Over ICE the data channel closes long before the
#: receiver's session-terminate has crossed the server: the sender must wait for it.
TRANSPORTS = {"ibb": (), "ice": ("--ice-address", "127.0.0.1")}


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_ctrl_c_on_the_receiver_is_cancelled_by_the_peer_for_the_sender(
        prosody: ProsodyServer, tmp_path: Path, transport: str) -> None:
    src = big_file(tmp_path)
    inbox = tmp_path / "inbox"
    extra = TRANSPORTS[transport]
    bob = start_receiver(prosody, tmp_path, f"end-r1{transport}", inbox, "--count", "1",
                         *extra)
    alice = cli(prosody, "alice", f"end-s1{transport}", tmp_path, "send", "--json",
                "--transport", transport, *extra, str(src),
                f"{prosody.jid('bob')}/end-r1{transport}")
    try:
        seen = read_until(alice.stdout, moving, alice, "alice's bytes move")
        bob.send_signal(signal.SIGINT)
        b_out, b_err = finish(bob)
        a_out, a_err = finish(alice, seen)
    finally:
        stop(alice, bob)
    assert bob.returncode == errors.EXIT_INTERRUPTED, b_err
    assert "Interrupted (SIGINT); cancelled 1 running transfer." in b_err
    assert alice.returncode == errors.EXIT_CANCELLED, a_err
    assert "cancelled by the peer" in a_err
    [failed] = [e for e in json_events(a_out) if e["event"] == "failed"]
    assert (failed["error"], failed["exit_code"]) == ("cancelled", errors.EXIT_CANCELLED)
    assert "cancelled by the peer" in failed["reason"]
    assert_tidy(inbox, src)


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_ctrl_c_on_the_sender_is_cancelled_by_the_peer_for_the_receiver(
        prosody: ProsodyServer, tmp_path: Path, transport: str) -> None:
    src = big_file(tmp_path)
    inbox = tmp_path / "inbox"
    extra = TRANSPORTS[transport]
    bob = start_receiver(prosody, tmp_path, f"end-r2{transport}", inbox, "--count", "1",
                         *extra)
    alice = cli(prosody, "alice", f"end-s2{transport}", tmp_path, "send", "--json",
                "--transport", transport, *extra, str(src),
                f"{prosody.jid('bob')}/end-r2{transport}")
    try:
        read_until(alice.stdout, moving, alice, "alice's bytes move")
        alice.send_signal(signal.SIGINT)
        a_out, a_err = finish(alice)
        _, b_err = finish(bob)
    finally:
        stop(alice, bob)
    assert alice.returncode == errors.EXIT_INTERRUPTED, a_err
    assert "Interrupted (SIGINT); cancelled 1 running transfer." in a_err
    assert json_events(a_out)[-1]["signal"] == "SIGINT"
    assert bob.returncode == errors.EXIT_CANCELLED, b_err
    assert "✗ big.bin: The transfer was cancelled. (cancelled by the peer" in b_err
    assert_tidy(inbox, src)


def test_count_reached_declines_the_offer_still_waiting(prosody: ProsodyServer,
                                                         tmp_path: Path) -> None:
    first = big_file(tmp_path, "first.bin")
    second = tmp_path / "out" / "second.txt"
    second.write_bytes(b"not now\n")
    inbox = tmp_path / "inbox"
    bob = start_receiver(prosody, tmp_path, "end-r3", inbox, "--count", "1")
    to = f"{prosody.jid('bob')}/end-r3"
    s1 = cli(prosody, "alice", "end-s3", tmp_path, "send", "--json", "--transport", "ibb",
             str(first), to)
    s2: subprocess.Popen[str] | None = None
    try:
        s1_seen = read_until(s1.stdout, moving, s1, "the first file moves")
        # A second offer, from another device of alice, while the first file is moving:
        # bob has his one offer, so it waits until bob stops.
        s2 = cli(prosody, "alice", "end-s4", tmp_path, "send", "--json", "--transport", "ibb",
                 str(second), to)
        s2_seen = read_until(s2.stdout, event_named("offered"), s2, "the second offer")
        assert bob.poll() is None and s1.poll() is None  # the first is still running
        s1_out, s1_err = finish(s1, s1_seen)
        _, b_err = finish(bob)
        s2_out, s2_err = finish(s2, s2_seen)
    finally:
        stop(*(p for p in (s1, s2, bob) if p is not None))
    assert s1.returncode == 0, s1_err
    assert bob.returncode == 0, b_err
    assert (inbox / "first.bin").read_bytes() == first.read_bytes()
    assert s2 is not None and s2.returncode == errors.EXIT_DECLINED, s2_err
    assert "declined" in s2_err.lower()
    [failed] = [e for e in json_events(s2_out) if e["event"] == "failed"]
    assert failed["error"] == "declined" and "stopped receiving" in failed["reason"]
    assert sorted(p.name for p in inbox.iterdir()) == ["first.bin"]
    assert [e["event"] for e in json_events(s1_out)][-2:] == ["completed", "summary"]
