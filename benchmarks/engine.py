"""Transfer-engine throughput: jinglefs sender/receiver vs raw loopback TCP.

Usage: python benchmarks/engine.py [--size-mb 1000] [--reps 2]

Scenarios (sender and receiver in separate processes for TCP, as in perf-anchors.md §2):

* raw TCP: sender reads the file + sha256 + writer.write; receiver StreamReader.read(256 KiB)
  + sha256 + file write (+ fsync at the end in the "+fsync" row, which is what the engine does)
* engine TCP: send_file() -> ByteStream over the same asyncio streams -> IncomingFile.receive()
  + finish() (verified against the sender's digest, renamed into place)
* engine TCP inline: the same with hashing/writing on the event loop (no worker thread)
* engine memory: both ends in one process over memory_stream_pair()

MB/s = 10^6 bytes / s, over the receiver's wall time from accept to file in place.
Peak RSS is per process (ru_maxrss).  Numbers vary with load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from jinglefs.streams import memory_stream_pair
from jinglefs.transfer.receiver import IncomingFile
from jinglefs.transfer.sender import send_file

READ = 256 * 1024
PEER = "bench@example.org"


class TcpStream:
    """ByteStream over asyncio streams (stand-in for the S5B transport)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes | memoryview) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, max_bytes: int) -> bytes:
        return await self.reader.read(min(max_bytes, READ))

    async def aclose(self) -> None:
        self.writer.close()


def _usage() -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds user+sys of all threads) of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime


# -- receivers (child process): return (seconds, rss) ----------------------------------


async def _serve(handler: Any, port_q: Any) -> float:
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        t0 = time.perf_counter()
        try:
            await handler(r, w)
            done.set_result(time.perf_counter() - t0)
        except BaseException as e:
            done.set_exception(e)
        finally:
            w.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0, limit=READ)
    port_q.put(server.sockets[0].getsockname()[1])
    async with server:
        return await done


def receiver_proc(kind: str, out: str, size: int, digest: bytes, port_q: Any, res_q: Any) -> None:
    async def raw(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        h = hashlib.sha256()
        left = size
        with open(out, "wb", buffering=0) as f:
            while left:
                data = await r.read(min(READ, left))
                if not data:
                    raise RuntimeError("short")
                h.update(data)
                f.write(data)
                left -= len(data)
            if kind == "raw-fsync":
                os.fsync(f.fileno())
        assert h.digest() == digest

    async def engine(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        inc = IncomingFile.create(os.path.dirname(out), os.path.basename(out), size, peer=PEER)
        await inc.receive(TcpStream(r, w), threaded=(kind == "engine"))
        inc.finish({"sha-256": digest})
        assert inc.verified

    handler = raw if kind.startswith("raw") else engine
    secs = asyncio.run(_serve(handler, port_q))
    res_q.put(("recv", secs, *_usage()))


def sender_proc(kind: str, src: str, port: int, res_q: Any) -> None:
    async def main() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=READ)
        if kind.startswith("raw"):
            h = hashlib.sha256()
            with open(src, "rb", buffering=0) as f:
                while data := f.read(1 << 20):
                    h.update(data)
                    w.write(data)
                    await w.drain()
        else:
            await send_file(TcpStream(r, w), src)
        await r.read()  # wait for the receiver to close
        w.close()

    asyncio.run(main())
    res_q.put(("send", 0.0, *_usage()))


def memory_proc(src: str, out: str, size: int, digest: bytes, res_q: Any) -> None:
    async def main() -> float:
        a, b = memory_stream_pair()
        inc = IncomingFile.create(os.path.dirname(out), os.path.basename(out), size, peer=PEER)
        t0 = time.perf_counter()
        sent, _ = await asyncio.gather(send_file(a, src), inc.receive(b))
        inc.finish(sent)
        assert inc.verified and sent["sha-256"] == digest
        return time.perf_counter() - t0

    secs = asyncio.run(main())
    res_q.put(("recv", secs, *_usage()))


class Row(NamedTuple):
    mbps: float
    rss_recv: float
    cpu_recv: float
    rss_send: float
    cpu_send: float


def run_once(kind: str, src: Path, work: Path, size: int, digest: bytes) -> Row:
    ctx = mp.get_context("spawn")
    out = work / f"out-{kind}.bin"
    res_q = ctx.Queue()
    procs = []
    if kind == "memory":
        procs.append(ctx.Process(target=memory_proc,
                                 args=(str(src), str(out), size, digest, res_q)))
        procs[0].start()
    else:
        port_q = ctx.Queue()
        recv = ctx.Process(target=receiver_proc,
                           args=(kind, str(out), size, digest, port_q, res_q))
        recv.start()
        port = port_q.get(timeout=30)
        send = ctx.Process(target=sender_proc, args=(kind, str(src), port, res_q))
        send.start()
        procs += [recv, send]
    results = [res_q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        if p.exitcode != 0:
            raise RuntimeError(f"{kind}: a process failed")
    for f in work.iterdir():
        if f.name.startswith("out-"):
            f.unlink()
    secs = next(r[1] for r in results if r[0] == "recv")
    use = {r[0]: (r[2], r[3]) for r in results}
    nan = (float("nan"), float("nan"))
    return Row(size / secs / 1e6, *use["recv"], *use.get("send", nan))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--dir", default=None, help="scratch folder (default: system temp)")
    args = ap.parse_args()
    size = args.size_mb * 1_000_000
    work = Path(tempfile.mkdtemp(prefix="jfs-bench-", dir=args.dir))
    try:
        src = work / "src.bin"
        block = os.urandom(1 << 20)
        h = hashlib.sha256()
        with open(src, "wb") as f:
            left = size
            while left:
                chunk = block[: min(left, len(block))]
                f.write(chunk)
                h.update(chunk)
                left -= len(chunk)
        digest = h.digest()
        kinds = ["raw", "raw-fsync", "engine", "engine-inline", "memory"]
        labels = {
            "raw": "raw TCP 256K + sha256 + write",
            "raw-fsync": "raw TCP 256K + sha256 + write + fsync",
            "engine": "engine TCP (worker thread)",
            "engine-inline": "engine TCP (inline, no thread)",
            "memory": "engine memory_stream_pair",
        }
        rows: dict[str, list[Row]] = {k: [] for k in kinds}
        for _ in range(args.reps):  # interleaved, so load changes hit every row alike
            for k in kinds:
                rows[k].append(run_once(k, src, work, size, digest))
        print(f"\n{size / 1e6:.0f} MB file, {args.reps} reps, loadavg {os.getloadavg()[0]:.2f}"
              "; CPU = median CPU seconds per GB (all threads, incl. process start)")
        print(f"{'scenario':38} {'MB/s med':>8} {'min-max':>9} {'RSS rcv':>7} {'RSS snd':>7} "
              f"{'CPU rcv':>7} {'CPU snd':>7}")
        base = statistics.median(r.mbps for r in rows["raw-fsync"])
        gb = size / 1e9
        for k in kinds:
            rs = rows[k]
            mbps = [r.mbps for r in rs]
            med = statistics.median(mbps)
            print(f"{labels[k]:38} {med:8.0f} {min(mbps):4.0f}-{max(mbps):<4.0f} "
                  f"{max(r.rss_recv for r in rs):5.0f}Mi {max(r.rss_send for r in rs):5.0f}Mi "
                  f"{statistics.median(r.cpu_recv for r in rs) / gb:7.2f} "
                  f"{statistics.median(r.cpu_send for r in rs) / gb:7.2f}"
                  f"  {med / base:4.0%} of raw+fsync")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
