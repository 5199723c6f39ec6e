"""IBB throughput through a loopback Prosody: jinglefs' windowed sender vs stop-and-wait.

    python benchmarks/ibb.py                 # 24 MB, 3 reps, all modes
    python benchmarks/ibb.py --size-mb 48 --reps 5 --modes slixmpp,w1,w8

Starts a throwaway Prosody (tests.servers.prosody: no mod_limits, nagle off,
256 KiB reads), then per rep and mode runs the receiver and the sender as two separate
processes (perf-anchors.md: both peers in one process halves throughput).  The receiver
is always jinglefs' :class:`IbbService`; the sender is

* ``slixmpp``: slixmpp's xep_0047 plugin, one IQ at a time, 4096-byte blocks, each
  built with slixmpp's stanza objects (the perf-anchors row 5 baseline, 3.58 MB/s there);
* ``w1``: jinglefs with window 1 (stop-and-wait, raw XML);
* ``wN``: jinglefs with N data IQs outstanding, 4096-byte blocks;
* ``wN-B``: the same with B-byte blocks.

MB/s = 10^6 bytes / receiver wall time from <open/> to <close/>; the sha-256 of what
arrived is checked against what was sent.  CPU is the share of one core used by each
process during the transfer (getrusage; Prosody from /proc).  Only compare rows of the
same run: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_MODES = "slixmpp,w1,w4,w8,w16"


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_pid(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parse_mode(mode: str) -> tuple[str, int, int]:
    """(kind, window, block size) for slixmpp / wN / wN-B."""
    if mode == "slixmpp":
        return "slixmpp", 1, 4096
    window, _, block = mode[1:].partition("-")
    return "jinglefs", int(window), int(block or 4096)


# ---------------------------------------------------------------------------- peers


async def _login(cfg: dict[str, Any], plugins: tuple[str, ...] = ()) -> Any:
    import slixmpp

    xmpp = slixmpp.ClientXMPP(cfg["jid"], cfg["password"])
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    xmpp.ca_certs = Path(cfg["ca_file"])
    xmpp.enable_direct_tls = False
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_start(_: Any) -> None:
        if not started.done():
            started.set_result(None)

    xmpp.add_event_handler("session_start", on_start)
    xmpp.connect(cfg["host"], cfg["port"])
    await asyncio.wait_for(started, 30)
    return xmpp


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _receiver(cfg: dict[str, Any]) -> None:
    from jinglefs.ibb.service import IbbService

    xmpp = await _login(cfg)
    service = IbbService(xmpp, max_block_size=65535)
    stream = service.expect(cfg["peer"], cfg["sid"], cfg["block_size"])
    _emit({"ready": True})
    await stream.wait_open(60)
    t0, c0 = time.perf_counter(), _cpu_self()
    digest = hashlib.sha256()
    while chunk := await stream.receive(1 << 20):
        digest.update(chunk)
    seconds, cpu = time.perf_counter() - t0, _cpu_self() - c0
    _emit({"bytes": stream.bytes_received, "sha256": digest.hexdigest(), "seconds": seconds,
           "cpu": cpu / seconds})
    await stream.aclose()
    await asyncio.wait_for(xmpp.disconnect(), 10)


async def _sender(cfg: dict[str, Any]) -> None:
    from slixmpp import JID

    kind, window, block = _parse_mode(cfg["mode"])
    data = os.urandom(cfg["size"])
    sha = hashlib.sha256(data).hexdigest()
    xmpp = await _login(cfg, ("xep_0030", "xep_0047") if kind == "slixmpp" else ())
    _emit({"ready": True})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    t0, c0 = time.perf_counter(), _cpu_self()
    if kind == "slixmpp":
        stream = await xmpp.plugin["xep_0047"].open_stream(JID(cfg["peer"]), block_size=block,
                                                    sid=cfg["sid"])
        # One stanza per await (its sendall() re-slices the whole remaining buffer each
        # block, which is quadratic and would make the baseline unfairly slow).
        for i in range(0, len(data), block):
            await stream.send(data[i:i + block])
        await stream.close()
    else:
        from jinglefs.ibb.service import IbbService

        service = IbbService(xmpp, window=window)
        out = await service.open(cfg["peer"], cfg["sid"], block, timeout=30)
        view = memoryview(data)
        for i in range(0, len(data), 256 * 1024):
            await out.send(view[i:i + 256 * 1024])
        await out.drain(60)
        await out.aclose()
    seconds, cpu = time.perf_counter() - t0, _cpu_self() - c0
    _emit({"sha256": sha, "seconds": seconds, "cpu": cpu / seconds})
    await asyncio.wait_for(xmpp.disconnect(), 10)


# ---------------------------------------------------------------------------- parent


async def _spawn(cfg: dict[str, Any]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "_peer", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(cfg) + "\n").encode())
    await proc.stdin.drain()
    return proc


async def _line(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not raw:
        raise RuntimeError(f"peer process exited early (rc={await proc.wait()})")
    result: dict[str, Any] = json.loads(raw)
    return result


async def _one(server: Any, mode: str, size: int, rep: int) -> dict[str, float]:
    _, _, block = _parse_mode(mode)
    sid = f"bench-{mode}-{rep}-{os.urandom(3).hex()}"
    alice, bob = server.account("alice"), server.account("bob")
    common = {"host": alice.server, "port": alice.port, "ca_file": alice.ca_file, "sid": sid,
              "size": size, "mode": mode, "block_size": block}
    alice_jid, bob_jid = f"{alice.jid}/bench-send", f"{bob.jid}/bench-recv"
    receiver = await _spawn({**common, "role": "recv", "jid": bob_jid,
                             "password": bob.password, "peer": alice_jid})
    sender = await _spawn({**common, "role": "send", "jid": alice_jid,
                           "password": alice.password, "peer": bob_jid})
    try:
        await _line(receiver, 60)
        await _line(sender, 60)
        p0 = _cpu_pid(server.pid)
        t0 = time.perf_counter()
        assert sender.stdin is not None
        sender.stdin.write(b"go\n")
        await sender.stdin.drain()
        recv = await _line(receiver, 600)
        wall = time.perf_counter() - t0
        prosody_cpu = (_cpu_pid(server.pid) - p0) / wall
        sent = await _line(sender, 120)
    finally:
        for proc in (sender, receiver):
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    if recv["sha256"] != sent["sha256"] or recv["bytes"] != size:
        raise RuntimeError(f"{mode}: data mismatch ({recv['bytes']} of {size} bytes)")
    return {"mbps": size / recv["seconds"] / 1e6, "cpu_send": sent["cpu"],
            "cpu_recv": recv["cpu"], "cpu_prosody": prosody_cpu}


def _cell(values: list[float], fmt: str = "{:.2f}") -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


async def _main(args: argparse.Namespace) -> int:
    from tests.servers.prosody import ProsodyServer

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    size = int(args.size_mb * 1e6)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="jinglefs-bench-ibb-") as tmp:
        server = ProsodyServer(Path(tmp) / "xmpp")
        server.add_account("alice", roster=["bob"])
        server.add_account("bob")
        with server:
            for rep in range(args.reps):
                for mode in modes:  # interleaved, so noise spreads over all modes
                    row = await _one(server, mode, size, rep)
                    results[mode].append(row)
                    print(f"  rep {rep + 1} {mode:>10}: {row['mbps']:.2f} MB/s", file=sys.stderr)
    base_mode = "slixmpp" if "slixmpp" in modes else modes[0]
    base = statistics.median(r["mbps"] for r in results[base_mode])
    print(f"\nIBB through Prosody, {size / 1e6:.0f} MB per transfer, {args.reps} reps "
          f"(median (min–max)); baseline = {base_mode}\n")
    print("| sender | MB/s | × baseline | CPU sender | CPU receiver | CPU Prosody |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        rows = results[mode]
        mbps = [r["mbps"] for r in rows]
        print(f"| {mode} | {_cell(mbps)} | {statistics.median(mbps) / base:.2f} | "
              f"{_cell([r['cpu_send'] for r in rows])} | "
              f"{_cell([r['cpu_recv'] for r in rows])} | "
              f"{_cell([r['cpu_prosody'] for r in rows])} |")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_peer":
        cfg = json.loads(sys.stdin.readline())
        asyncio.run(_receiver(cfg) if cfg["role"] == "recv" else _sender(cfg))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=24.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--modes", default=DEFAULT_MODES,
                        help="comma-separated: slixmpp, w1, wN, wN-BLOCK (default %(default)s)")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
