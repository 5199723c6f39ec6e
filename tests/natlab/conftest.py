"""The NAT lab (scripts/natlab.sh, a copy of ../shared/natlab) as a pytest fixture.

Each pytest process builds its own lab under a unique prefix (namespaces ``jnPID-pub``,
``jnPID-r1``, ...; state in /tmp/natlab-jnPID), so parallel runs do not meet, and tears it
down when the module is done.  Needs root, nftables, conntrack and coturn, plus Prosody for
the XMPP lab: a missing one FAILS the test with an install hint (never skipped).

Fixtures:
    natlab        module: the lab without XMPP (``natlab.up(VARIANT)``), for the ICE probes.
    natlab_xmpp   module: the same lab with Prosody (c2s 203.0.113.1:5222, alice/bob, proxy65,
                  XEP-0215 -> coturn) in the public namespace; ``natlab_xmpp.up(VARIANT,
                  proxy65=..., turn_transports=...)`` switches variant and server options.

Timings that tests hand to :func:`record_timing` are printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "natlab.sh"

#: binary -> Debian package (scripts/setup installs them all).
TOOLS = {
    "ip": "iproute2",
    "nft": "nftables",
    "conntrack": "conntrack",
    "turnserver": "coturn",
    "openssl": "openssl",
}
XMPP_TOOLS = {"prosody": "prosody"}

#: (label, seconds) per measured step; printed by pytest_terminal_summary.
TIMINGS: list[tuple[str, str]] = []


def record_timing(label: str, text: str) -> None:
    TIMINGS.append((label, text))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("natlab timings")
        for label, text in TIMINGS:
            terminalreporter.write_line(f"{label}: {text}")


def require_lab_tools(xmpp: bool) -> None:
    """Fail (never skip) with an install hint when the lab cannot be built here."""
    if os.geteuid() != 0:
        pytest.fail(
            "the NAT lab needs root (network namespaces, nftables); CI runs these tests as root",
            pytrace=False,
        )
    wanted = {**TOOLS, **(XMPP_TOOLS if xmpp else {})}
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])
    missing = {b: pkg for b, pkg in wanted.items() if shutil.which(b, path=search) is None}
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        pytest.fail(
            f"the NAT lab needs {', '.join(sorted(missing))}: run `bash scripts/setup` "
            f"(or apt-get install {pkgs})",
            pytrace=False,
        )


class NatLab:
    def __init__(self, prefix: str, *, xmpp: bool = False) -> None:
        self.prefix = prefix
        self.xmpp = xmpp
        self.environ = {**os.environ, "NATLAB_PREFIX": prefix}
        self.variant: str | None = None
        #: everything the last successful 'up' was given (variant + server options)
        self._config: tuple[object, ...] | None = None

    def run(self, *args: str) -> str:
        res = subprocess.run(
            [str(SCRIPT), *args], env=self.environ, capture_output=True, text=True, timeout=120
        )
        if res.returncode != 0:
            raise RuntimeError(f"natlab.sh {' '.join(args)} failed: {res.stderr[-2000:]}")
        return res.stdout

    def up(self, variant: str, *, proxy65: bool = True, turn_transports: str = "udp,tcp") -> None:
        """Bring the lab to VARIANT (router rules only, if it is already built).

        With XMPP, ``proxy65=False`` starts Prosody without the XEP-0065 proxy and
        ``turn_transports`` ("udp,tcp", "udp" or "tcp") is what XEP-0215 advertises;
        Prosody restarts only when that changes.
        """
        if not self.xmpp:
            config: tuple[object, ...] = (variant,)
            args = ["up", variant, "--no-xmpp"]
        else:
            config = (variant, proxy65, turn_transports)
            args = [
                "up",
                variant,
                "--proxy65" if proxy65 else "--no-proxy65",
                "--turn-transports",
                turn_transports,
            ]
        if config != self._config:
            self._config = None  # unknown state if 'up' fails half-way
            self.run(*args)
            self._config = config
            self.variant = variant

    def down(self) -> None:
        self.run("down")

    def env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.run("env").splitlines() if "=" in line)

    def peer_argv(self, host: str, *args: str) -> list[str]:
        return [str(SCRIPT), "exec", host, sys.executable, "-m", "tests.natlab.ice_peer", *args]

    async def ice_pair(
        self, a_args: list[str], b_args: list[str], timeout: float = 60.0
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the initiator in host A and the responder in host B; relay their signalling."""
        env = {**self.environ, "PYTHONPATH": str(ROOT)}

        async def spawn(host: str, args: list[str]) -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                *self.peer_argv(host, *args),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                env=env,
            )

        a = await spawn("a", ["--initiator", *a_args])
        b = await spawn("b", b_args)
        results: dict[str, dict[str, Any]] = {}

        async def relay(
            src: asyncio.subprocess.Process, dst: asyncio.subprocess.Process, name: str
        ) -> None:
            assert src.stdout is not None and dst.stdin is not None
            while line := await src.stdout.readline():
                msg = json.loads(line)
                if "result" in msg:
                    results[name] = msg["result"]
                    line = b"{}\n"
                with contextlib.suppress(ConnectionError):
                    dst.stdin.write(line)
                    await dst.stdin.drain()

        try:
            await asyncio.wait_for(
                asyncio.gather(relay(a, b, "a"), relay(b, a, "b"), a.wait(), b.wait()), timeout
            )
        finally:
            for p in (a, b):
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        return results.get("a", {}), results.get("b", {})


@pytest.fixture(scope="module")
def natlab() -> Iterator[NatLab]:
    require_lab_tools(xmpp=False)
    lab = NatLab(f"jn{os.getpid() % 100000}")
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def natlab_xmpp() -> Iterator[NatLab]:
    require_lab_tools(xmpp=True)
    lab = NatLab(f"jn{os.getpid() % 100000}", xmpp=True)
    try:
        yield lab
    finally:
        lab.down()
