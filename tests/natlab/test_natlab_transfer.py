"""jinglefs end to end through real NATs: which path carries the file behind which NAT.

The ``jinglefs`` CLI runs as two processes in the lab's namespaces (natlab README): ``receive``
as bob@lab.test in host B (10.2.0.2 behind r2), ``send`` as alice@lab.test in host A
(10.1.0.2 behind r1). Both log in to the lab's Prosody at 203.0.113.1:5222 (STARTTLS, its
own CA), which has proxy65 (XEP-0065) and XEP-0215 pointing at coturn. Every test sends a
file of random bytes, compares the sha-256 of source and received file, and asserts the
path (``transport`` JSON event) that BOTH sides report.

The ICE tests need ICE on the ladder (jinglefs/negotiation/ice.py) and fail with that message
without it; the SOCKS5/IBB tests also check, when ICE is there, that it was tried first and
failed (bounded) before the fallback. One lab is reused for the module; ``up VARIANT``
only swaps router rules, and Prosody restarts only when its options change (tests are
ordered to keep those restarts few). Timings are printed in the "natlab timings" section.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jinglefs import errors
from tests.natlab.conftest import ROOT, SCRIPT, NatLab, record_timing

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(300)]

ALICE = "alice@lab.test"
BOB = "bob@lab.test"
MB = 1_000_000
#: Files over a byte stream (ICE, SOCKS5); IBB is base64 in stanzas, so smaller.
STREAM_SIZE = 1_500_000
IBB_SIZE = 300_000

#: ``python -m jinglefs`` exactly (runpy), plus the library's log lines on stderr: the CLI
#: configures no logging, and the negotiators' DEBUG/INFO lines (candidates tried, rungs
#: that failed) are what makes a failure here diagnosable.
LOGGED_CLI = (
    "import logging, runpy; "
    "logging.basicConfig(level=logging.WARNING, "
    "format='%(relativeCreated)6.0f ms %(name)s %(levelname)s %(message)s'); "
    "logging.getLogger('jinglefs').setLevel(logging.DEBUG); "
    "runpy.run_module('jinglefs', run_name='__main__', alter_sys=True)"
)

#: The ladder's targets (README "How the ladder decides"): the next rung carries bytes at
#: most 5 s after the accept when ICE cannot work, IBB at most 10 s after it when nothing
#: else works.  The lab asserts 3x those (a loaded CI machine), for every path.
FIRST_BYTE_BOUND = {"ice-direct": 15.0, "ice-relay": 15.0, "s5b-direct": 15.0,
                    "s5b-proxy": 15.0, "ibb": 30.0}

#: The sending flow's log line per rung (jinglefs.sending.connect_as_initiator):
#: "ice failed after 3.01 s: ..." / "s5b connected after 0.41 s: ...".
RUNG_LINE = re.compile(r"(?P<kind>[a-z0-9-]+) (?P<how>failed|connected) after (?P<s>[0-9.]+) s")

#: Waiting for bob's login (log line in Prosody), for the sender, for the receiver after it.
LOGIN_TIMEOUT = 30.0
SENDER_TIMEOUT = 200.0
RECEIVER_GRACE = 30.0


def ice_in_ladder() -> bool:
    """Whether this jinglefs puts ICE on the ladder (what `send` itself consults)."""
    from jinglefs.ladder import LADDER

    return any(r.kind == "ice" for r in LADDER)


def require_ice() -> None:
    if not ice_in_ladder():
        pytest.fail(
            "jinglefs has no ICE negotiator yet (jinglefs/negotiation/ice.py missing or not "
            "importable), so `auto` has no ICE rung: this test proves ICE through NATs "
            "once it lands",
            pytrace=False,
        )


@dataclass
class Proc:
    """One CLI process: its output lines with arrival times (s since start)."""

    name: str
    argv: list[str]
    started: float = 0.0
    proc: asyncio.subprocess.Process | None = None
    out: list[tuple[float, str]] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    killed: str = ""

    @property
    def rc(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def start(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.readers = [
            asyncio.ensure_future(self._read(self.proc.stdout, stamped=True)),
            asyncio.ensure_future(self._read(self.proc.stderr, stamped=False)),
        ]

    async def _read(self, stream: asyncio.StreamReader, *, stamped: bool) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip("\n")
            if stamped:
                self.out.append((time.monotonic() - self.started, text))
            else:
                self.err.append(text)

    async def wait(self, timeout: float) -> None:
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.killed = f"killed after {timeout:.0f} s"
            await self.stop()
        await asyncio.gather(*self.readers)

    async def stop(self) -> None:
        """Kill our own process (its PID is the jinglefs python: ip netns exec execs it)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for _, line in self.out:
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if isinstance(ev, dict):
                    found.append(ev)
        return found

    def paths(self) -> list[str]:
        return [str(e.get("path")) for e in self.events() if e.get("event") == "transport"]

    def first(self, event: str) -> float | None:
        """Seconds from this process's start to its first ``event`` line."""
        for t, line in self.out:
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if isinstance(ev, dict) and ev.get("event") == event:
                    return t
        return None

    def at(self, event: str) -> float | None:
        """``time.monotonic()`` of the first ``event`` line (comparable across processes)."""
        t = self.first(event)
        return None if t is None else self.started + t

    def rung_times(self) -> list[str]:
        """The ladder's log lines: each rung tried, how long it took, how it ended."""
        found = []
        for line in self.err:
            m = RUNG_LINE.search(line)
            if m is not None:
                found.append(f"{m['kind']} {m['how']} {float(m['s']):.2f} s")
        return found

    def report(self) -> str:
        shown = [f"{t:7.2f}s {line}" for t, line in self.out if '"event":"progress"' not in line]
        err = "\n".join(self.err)
        if len(err) > 6000:
            err = "...\n" + err[-6000:]
        return (
            f"--- {self.name}: exit {self.rc} {self.killed}\n"
            f"$ {' '.join(self.argv)}\n"
            f"stdout (without progress):\n" + "\n".join(shown) + f"\nstderr:\n{err}\n"
        )


@dataclass
class Run:
    lab_config: str
    src: Path
    inbox: Path
    sender: Proc
    receiver: Proc
    login_s: float = 0.0
    wall_s: float = 0.0
    prosody_log: Path | None = None
    log_offset: int = 0

    @property
    def src_sha256(self) -> str:
        return hashlib.sha256(self.src.read_bytes()).hexdigest()

    @property
    def received(self) -> Path:
        return self.inbox / self.src.name

    def prosody_tail(self, lines: int = 60) -> str:
        if self.prosody_log is None or not self.prosody_log.exists():
            return "(no prosody log)"
        with self.prosody_log.open("rb") as f:
            f.seek(self.log_offset)
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def report(self) -> str:
        return (
            f"\n=== lab: {self.lab_config}; file {self.src.stat().st_size} B; receiver "
            f"login {self.login_s:.2f} s; wall {self.wall_s:.2f} s\n"
            + self.sender.report()
            + self.receiver.report()
            + f"--- prosody log (this transfer, last 60 lines):\n{self.prosody_tail()}\n"
        )


def _cli_env(tmp: Path, side: str, lab: NatLab) -> dict[str, str]:
    # unbuffered: JSON lines arrive when emitted (their arrival times are the timings)
    env = {**lab.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env["JINGLEFS_CONFIG_DIR"] = str(tmp / f"config-{side}")
    env["JINGLEFS_STATE_DIR"] = str(tmp / f"state-{side}")
    for name in ("JINGLEFS_PASSWORD", "JINGLEFS_ACCOUNT"):
        env.pop(name, None)
    return env


async def _wait_for_login(run: Run, jid: str) -> None:
    """Until Prosody logs ``jid``'s login (then its presence follows at once)."""
    needle = f"Authenticated as {jid}".encode()
    deadline = time.monotonic() + LOGIN_TIMEOUT
    assert run.prosody_log is not None and run.receiver.proc is not None
    while time.monotonic() < deadline:
        if run.prosody_log.exists():
            with run.prosody_log.open("rb") as f:
                f.seek(run.log_offset)
                if needle in f.read():
                    return
        if run.receiver.proc.returncode is not None:
            await run.receiver.wait(1)
            pytest.fail(f"the receiver exited before logging in{run.report()}", pytrace=False)
        await asyncio.sleep(0.05)
    await run.receiver.stop()
    await run.receiver.wait(1)
    pytest.fail(f"{jid} did not log in within {LOGIN_TIMEOUT:.0f} s{run.report()}", pytrace=False)


async def transfer(lab: NatLab, tmp: Path, *, size: int, transport: str = "auto") -> Run:
    """Receiver in B, then (once bob is online) sender in A; both run to their end."""
    env = lab.env()
    src = tmp / "payload.bin"
    src.write_bytes(os.urandom(size))
    pw = tmp / "natlab.pw"
    pw.write_text(env["NATLAB_XMPP_PASS"] + "\n")
    inbox = tmp / "inbox"

    def common(jid: str) -> list[str]:
        return [
            "--account", jid, "--server", env["NATLAB_XMPP"], "--ca-file",
            env["NATLAB_XMPP_CA"], "--password-file", str(pw), "--no-input", "--json",
        ]  # fmt: skip

    def cli(host: str) -> list[str]:
        return [str(SCRIPT), "exec", host, sys.executable, "-c", LOGGED_CLI]

    receiver = Proc("receiver (bob, host B)", [
        *cli("b"), "receive", *common(BOB), "--accept-from", ALICE, "--count", "1",
        "--output", str(inbox), "--timeout", "90",
    ])  # fmt: skip
    sender = Proc("sender (alice, host A)", [
        *cli("a"), "send", *common(ALICE), "--transport", transport, str(src), BOB,
    ])  # fmt: skip
    log = Path(env["NATLAB_XMPP_LOG"])
    run = Run(
        lab_config=(
            f"{env['NATLAB_VARIANT']}, proxy65={env['NATLAB_PROXY65_ENABLED']}, "
            f"XEP-0215 turn over {env['NATLAB_TURN_TRANSPORTS']}, --transport {transport}"
        ),
        src=src,
        inbox=inbox,
        sender=sender,
        receiver=receiver,
        prosody_log=log,
        log_offset=log.stat().st_size if log.exists() else 0,
    )
    t0 = time.monotonic()
    try:
        await receiver.start(_cli_env(tmp, "b", lab))
        await _wait_for_login(run, BOB)
        run.login_s = time.monotonic() - t0
        await sender.start(_cli_env(tmp, "a", lab))
        await sender.wait(SENDER_TIMEOUT)
        await receiver.wait(RECEIVER_GRACE)
    finally:
        await sender.stop()
        await receiver.stop()
    run.wall_s = time.monotonic() - t0
    return run


def accept_to_first_byte(run: Run) -> float | None:
    """Seconds from the sender's ``accepted`` event to the receiver's first ``progress``
    event (its first chunk written): what the ladder costs the user."""
    accepted, first = run.sender.at("accepted"), run.receiver.at("progress")
    return None if accepted is None or first is None else first - accepted


def _timing(request: pytest.FixtureRequest, run: Run, what: str) -> None:
    s_path = run.sender.first("transport")
    s_done = run.sender.first("completed")
    size = run.src.stat().st_size
    parts = [what, f"{size / MB:.2f} MB"]
    first_byte = accept_to_first_byte(run)
    if first_byte is not None:
        parts.append(f"accept -> first byte {first_byte:.2f} s")
    rungs = run.sender.rung_times()
    if rungs:
        parts.append("rungs: " + ", ".join(rungs))
    if s_path is not None:
        parts.append(f"path chosen {s_path:.1f} s after send started")
    if s_done is not None:
        parts.append(f"done {s_done:.1f} s")
    parts.append(f"bob login {run.login_s:.1f} s, wall {run.wall_s:.1f} s")
    text = "; ".join(parts)
    print(f"{request.node.name}: {text}")
    if os.environ.get("NATLAB_VERBOSE"):  # pytest -s: both sides' output, also on success
        print(run.report())
    record_timing(request.node.name, text)


def assert_delivered(request: pytest.FixtureRequest, run: Run, path: str) -> None:
    """Both exit 0, the file is byte-identical, both sides report ``path``, and the bytes
    started within :data:`FIRST_BYTE_BOUND` of the accept."""
    diag = run.report()
    assert run.sender.rc == 0, f"sender failed{diag}"
    assert run.receiver.rc == 0, f"receiver failed{diag}"
    assert run.received.is_file(), f"no {run.received}{diag}"
    got = hashlib.sha256(run.received.read_bytes()).hexdigest()
    assert got == run.src_sha256, f"received file differs (sha-256 {got}){diag}"
    verified = [e for e in run.receiver.events() if e.get("event") == "verified"]
    assert [v.get("digest") for v in verified] == [run.src_sha256], f"not verified{diag}"
    assert run.receiver.paths() == [path], f"receiver path {run.receiver.paths()}{diag}"
    assert run.sender.paths() == [path], f"sender path {run.sender.paths()}{diag}"
    _timing(request, run, path)
    first_byte = accept_to_first_byte(run)
    assert first_byte is not None, f"no accepted/progress event{diag}"
    bound = FIRST_BYTE_BOUND[path]
    assert first_byte <= bound, (
        f"{path}: first byte {first_byte:.1f} s after the accept (bound {bound:.0f} s){diag}")


def details(proc: Proc) -> list[str]:
    return [str(e.get("detail")) for e in proc.events() if e.get("event") == "transport"]


def assert_encrypted(run: Run) -> None:
    for proc in (run.sender, run.receiver):
        flags = [e.get("encrypted") for e in proc.events() if e.get("event") == "transport"]
        assert flags == [True], f"{proc.name}: ICE path not DTLS-encrypted{run.report()}"


def failed_rungs(run: Run) -> str:
    """The sender's log lines of transports that were tried and failed (driver INFO)."""
    return "\n".join(line for line in run.sender.err
                     if (m := RUNG_LINE.search(line)) is not None and m["how"] == "failed")


# ---------------------------------------------------------------------- SOCKS5 (runs now)


async def test_cone_s5b_direct_fails_proxy_carries(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both hosts offer their private 10.x listener; neither is reachable through the
    other's NAT, so the server's proxy65 (203.0.113.1:5000) is nominated."""
    natlab_xmpp.up("cone")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE, transport="s5b")
    assert_delivered(request, run, "s5b-proxy")
    assert details(run.receiver) == ["via proxy.lab.test"], run.report()
    # The direct candidates really were offered (and lost): A's listener on 10.1.0.2.
    assert "10.1.0.2" in "\n".join(run.sender.err), run.report()


async def test_strict_auto_uses_the_proxy(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Only TCP 5222/5000 leave the homes: ICE (if present) has no path (UDP and TURN/TCP
    3478 blocked), direct SOCKS5 neither; auto ends on the proxy."""
    natlab_xmpp.up("strict")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE)
    assert_delivered(request, run, "s5b-proxy")
    if ice_in_ladder():
        assert "ice failed" in failed_rungs(run), f"ICE was not tried first{run.report()}"


# ------------------------------------------------- public addresses: the fast path


async def test_open_auto_takes_socks5_direct(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No NAT between A and B ("open": public addresses): STUN sees each host's own
    address, so the ICE answer shows a direct path, and auto replaces ICE with SOCKS5
    direct right after the accept (README "How the ladder decides")."""
    require_ice()
    natlab_xmpp.up("open")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE)
    assert_delivered(request, run, "s5b-direct")
    assert "s5b-direct before ice: the contact has an address without NAT (10.2.0.2)" in \
        "\n".join(run.sender.err), run.report()
    assert [r.split()[:2] for r in run.sender.rung_times()] == [["s5b-direct", "connected"]]
    # A machine-to-machine connection: one host's own address (either side's listener).
    env = natlab_xmpp.env()
    [where] = details(run.sender)
    assert where.rpartition(":")[0] in (env["NATLAB_A_IP"], env["NATLAB_B_IP"]), run.report()


async def test_open_forced_s5b_is_direct(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The same pair with ``--transport s5b``: what auto is measured against."""
    natlab_xmpp.up("open")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE, transport="s5b")
    assert_delivered(request, run, "s5b-direct")


# ---------------------------------------------------------------------- ICE


async def test_cone_auto_hole_punch_ice_direct(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Port-restricted cone NATs: server-reflexive candidates (via STUN from XEP-0215)
    punch a direct hole; the data channel runs host A <-> r2's public address."""
    require_ice()
    natlab_xmpp.up("cone")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE)
    assert_delivered(request, run, "ice-direct")
    assert_encrypted(run)
    # Each side reaches the other at its router's public address (srflx/prflx), e.g.
    # "host 10.1.0.2:40503 -> srflx 203.0.113.12:46733".
    env = natlab_xmpp.env()
    assert f" {env['NATLAB_R2_WAN']}:" in str(details(run.sender)), f"A->B{run.report()}"
    assert f" {env['NATLAB_R1_WAN']}:" in str(details(run.receiver)), f"B->A{run.report()}"


async def test_symmetric_auto_ice_relay_with_xep0215_turn(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Symmetric NATs make srflx candidates useless: the pair goes through coturn with the
    temporary TURN credentials Prosody hands out (XEP-0215)."""
    require_ice()
    natlab_xmpp.up("symmetric")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE)
    assert_delivered(request, run, "ice-relay")
    assert_encrypted(run)
    for proc in (run.sender, run.receiver):  # a relayed address of coturn on one end
        assert "relay 203.0.113.1:" in str(details(proc)), f"{proc.name}{run.report()}"
        # no STUN/TURN configured in the (empty) config dirs: only XEP-0215 gave them
        # (TURN over TCP is taken when the server offers both, see pick_ice_servers)
        assert "turn 203.0.113.1:3478/tcp" in "\n".join(proc.err), f"{proc.name}{run.report()}"


@pytest.mark.parametrize("advertised", ["tcp", "udp,tcp"])
async def test_udp_blocked_ice_relay_over_turn_tcp(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest, advertised: str
) -> None:
    """No UDP leaves the homes; the server advertises TURN over TCP (alone, or beside UDP as
    most servers do), so ICE allocates a relay over TCP 3478 and still carries the file."""
    require_ice()
    natlab_xmpp.up("udp-blocked", turn_transports=advertised)
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE)
    assert_delivered(request, run, "ice-relay")
    assert_encrypted(run)
    for proc in (run.sender, run.receiver):
        assert "relay 203.0.113.1:" in str(details(proc)), f"{proc.name}{run.report()}"
        assert "turn 203.0.113.1:3478/tcp" in "\n".join(proc.err), f"{proc.name}{run.report()}"


async def test_udp_blocked_without_turn_tcp_falls_back_to_proxy(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No UDP and TURN only over UDP: ICE fails (bounded), SOCKS5 via proxy65 carries it."""
    require_ice()
    natlab_xmpp.up("udp-blocked", turn_transports="udp")
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE)
    assert_delivered(request, run, "s5b-proxy")
    assert "ice failed" in failed_rungs(run), f"ICE was not tried first{run.report()}"


# ------------------------------------------------------- no proxy65: IBB is what is left


async def test_strict_without_proxy_falls_back_to_ibb(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Prosody without proxy65 in `strict`: no ICE path, SOCKS5 has only the unreachable
    direct candidates, so auto replaces the transport down to IBB (through port 5222)."""
    natlab_xmpp.up("strict", proxy65=False)
    run = await transfer(natlab_xmpp, tmp_path, size=IBB_SIZE)
    assert_delivered(request, run, "ibb")
    rungs = failed_rungs(run)
    assert "s5b failed" in rungs, f"SOCKS5 was not tried before IBB{run.report()}"
    if ice_in_ladder():
        assert "ice failed" in rungs, f"ICE was not tried before IBB{run.report()}"


async def test_cone_forced_s5b_without_proxy_fails_cleanly(
    natlab_xmpp: NatLab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The negative control for the proxy tests: with only direct candidates, SOCKS5
    between two NATed hosts cannot connect, and `--transport s5b` (no fallback) fails
    with the transport exit code instead of hanging."""
    natlab_xmpp.up("cone", proxy65=False)
    run = await transfer(natlab_xmpp, tmp_path, size=STREAM_SIZE, transport="s5b")
    diag = run.report()
    assert run.sender.rc == errors.EXIT_TRANSPORT, f"sender exit {run.sender.rc}{diag}"
    assert run.receiver.rc not in (0, None), f"receiver exit {run.receiver.rc}{diag}"
    assert run.sender.paths() == [] and run.receiver.paths() == [], diag
    assert not run.received.exists(), diag
    failed_at = run.sender.first("failed")
    text = f"failed as expected, exit {run.sender.rc}" + (
        f", {failed_at:.1f} s after send started" if failed_at is not None else ""
    )
    print(f"{request.node.name}: {text}")
    record_timing(request.node.name, text)
