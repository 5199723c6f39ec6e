"""The NAT lab (scripts/natlab.sh, a copy of ../shared/natlab) as a pytest fixture.

Each pytest process builds its own lab under a unique prefix (namespaces ``jnPID-pub``,
``jnPID-r1``, ...; state in /tmp/natlab-jnPID), so parallel runs do not meet, and tears it
down when the module is done.  Needs root, nftables, conntrack and coturn (not skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "natlab.sh"


class NatLab:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.environ = {**os.environ, "NATLAB_PREFIX": prefix}
        self.variant: str | None = None

    def run(self, *args: str) -> str:
        res = subprocess.run(
            [str(SCRIPT), *args], env=self.environ, capture_output=True, text=True, timeout=120
        )
        if res.returncode != 0:
            raise RuntimeError(f"natlab.sh {' '.join(args)} failed: {res.stderr[-2000:]}")
        return res.stdout

    def up(self, variant: str) -> None:
        if variant != self.variant:
            self.run("up", variant, "--no-xmpp")
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
    lab = NatLab(f"jn{os.getpid() % 100000}")
    try:
        yield lab
    finally:
        lab.down()
