"""SOCKS5 bytestream throughput: jinglefs against raw asyncio TCP, in the same run.

    python benchmarks/socks5.py                 # 1 GB direct + 200 MB via Prosody proxy65
    python benchmarks/socks5.py --direct-mb 200 --proxy-mb 50 --reps 1   # quicker
    python benchmarks/socks5.py --no-netns      # do not re-run itself under `unshare -n`

Two processes per transfer (sender, receiver), as perf-anchors.md asks.  Both sides do
the work jinglefs does: the sender reads the file and hashes it (sha-256); the receiver
hashes what arrives, writes it to a file (recycling the page cache every 8 MiB, as
jinglefs' receiver does) and fsyncs it.  After the last byte the sender sends its 32-byte
digest on the same connection, where jinglefs sends an XEP-0234 §8.2 ``<checksum/>``; the
receiver's clock stops once that digest has been compared with its own.

* direct, ``raw``: plain TCP; the receiver is an ``asyncio.BufferedProtocol`` (256 KiB
  buffer) hashing and writing in ``buffer_updated``; the sender an ``asyncio.Protocol``
  with pause/resume_writing.  This is the perf-anchors "full pipeline" row.
* direct, ``s5b``: :class:`S5bListener` + :func:`connect_candidate` (real XEP-0065
  handshake), then ``TcpStream.send`` / ``TcpStream.receive(1 MiB)``.
* proxy, ``raw`` / ``s5b``: the same two clients through Prosody's mod_proxy65 on
  loopback (started here from tests/servers/prosody.py), activated over XMPP.

Printed per row: median MB/s (10^6 B/s; min-max), CPU of each process over the transfer
(1.0 = one core busy), and the peak RSS of each process.  The machine is shared: only
compare rows of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jinglefs.s5b.network import S5bListener, connect_candidate  # noqa: E402
from jinglefs.s5b.protocol import dstaddr  # noqa: E402

CHUNK = 1024 * 1024
#: sha-256 digest bytes the sender appends after the file (its "checksum" message)
DIGEST_SIZE = 32
LOOP = "127.0.0.1"
SID = "bench-sid"
A_JID, B_JID = "alice@bench.test/a", "bob@bench.test/b"


@dataclass
class Side:
    seconds: float
    cpu: float  # user+system seconds during the transfer
    rss_kib: int
    digest: str
    nbytes: int
    #: receiver only: the sender's digest that followed the data matched ours
    verified: bool = False


def _usage() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- the receiver's work, shared by every mode ---------------------------------------------


class _Sink:
    """What the receiving side does with the bytes, in every mode: sha-256, write,
    recycle the page cache every 8 MiB (POSIX_FADV_DONTNEED, exactly as the jinglefs
    receiver does, so that no side pays fresh-page faults the other does not), fsync at
    the end, and compare the sender's digest that follows the ``size`` file bytes."""

    def __init__(self, out: Any, size: int) -> None:
        self.h = hashlib.sha256()
        self.out, self.size, self.got, self.behind = out, size, 0, 0
        self.trailer = bytearray()

    def feed(self, chunk: bytes | memoryview) -> bool:
        """Take bytes off the connection; True once the file and the digest are in."""
        take = min(len(chunk), self.size - self.got)
        if take:
            part = chunk[:take]
            self.h.update(part)
            self.out.write(part)
            self.got += take
            if self.got - self.behind >= 8 << 20 and hasattr(os, "posix_fadvise"):
                self.behind = self.got
                os.posix_fadvise(self.out.fileno(), 0, self.got, os.POSIX_FADV_DONTNEED)
        if take < len(chunk):
            self.trailer += chunk[take:]
        return len(self.trailer) >= DIGEST_SIZE

    def finish(self) -> bool:
        """fsync the file; True if the sender's digest equals ours."""
        os.fsync(self.out.fileno())
        return bytes(self.trailer) == self.h.digest()


# -- raw asyncio peers ---------------------------------------------------------------------


class _RawReceiver(asyncio.BufferedProtocol):
    def __init__(self, sink: _Sink, done: asyncio.Future[None]) -> None:
        self.buf = bytearray(256 * 1024)
        self.view = memoryview(self.buf)
        self.sink, self.done = sink, done

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if self.sink.feed(self.view[:nbytes]) and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _RawSender(asyncio.Protocol):
    def __init__(self) -> None:
        self.can_write = asyncio.Event()
        self.can_write.set()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()


def _socks5_handshake(sock: socket.socket, addr: str) -> None:
    """A minimal blocking XEP-0065 client handshake, for the raw proxy rows."""
    sock.sendall(b"\x05\x01\x00")
    assert sock.recv(2) == b"\x05\x00"
    sock.sendall(b"\x05\x01\x00\x03\x28" + addr.encode() + b"\x00\x00")
    reply = b""
    while len(reply) < 47:
        part = sock.recv(47 - len(reply))
        assert part, "proxy closed the connection"
        reply += part
    assert reply[1] == 0, f"proxy refused: {reply[:2]!r}"


async def _raw_receive(sock: socket.socket, out_path: Path, size: int) -> Side:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    with open(out_path, "wb", buffering=0) as out:
        t0, c0 = time.perf_counter(), _usage()
        sink = _Sink(out, size)
        transport, _ = await loop.connect_accepted_socket(lambda: _RawReceiver(sink, done), sock)
        await done
        verified = sink.finish()
        t1, c1 = time.perf_counter(), _usage()
        transport.close()
    return Side(t1 - t0, c1 - c0, _peak_rss(), sink.h.hexdigest(), sink.got, verified)


async def _raw_send(sock: socket.socket, src: Path) -> Side:
    loop = asyncio.get_running_loop()
    proto = _RawSender()
    transport, _ = await loop.connect_accepted_socket(lambda: proto, sock)
    transport.set_write_buffer_limits(high=1024 * 1024)
    h, n = hashlib.sha256(), 0
    t0, c0 = time.perf_counter(), _usage()
    with open(src, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            await proto.can_write.wait()
            transport.write(chunk)
            n += len(chunk)
    transport.write(h.digest())
    transport.write_eof()
    while transport.get_write_buffer_size():
        await asyncio.sleep(0.001)
    t1, c1 = time.perf_counter(), _usage()
    transport.close()
    return Side(t1 - t0, c1 - c0, _peak_rss(), h.hexdigest(), n)


# -- jinglefs peers -----------------------------------------------------------------------------


async def _s5b_receive_stream(stream: Any, out_path: Path, size: int) -> Side:
    with open(out_path, "wb", buffering=0) as out:
        t0, c0 = time.perf_counter(), _usage()
        sink = _Sink(out, size)
        while chunk := await stream.receive(CHUNK):
            if sink.feed(chunk):
                break
        verified = sink.finish()
        t1, c1 = time.perf_counter(), _usage()
    await stream.aclose()
    return Side(t1 - t0, c1 - c0, _peak_rss(), sink.h.hexdigest(), sink.got, verified)


async def _s5b_send_stream(stream: Any, src: Path) -> Side:
    h, n = hashlib.sha256(), 0
    t0, c0 = time.perf_counter(), _usage()
    with open(src, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            await stream.send(chunk)
            n += len(chunk)
    await stream.send(h.digest())
    await stream.send_eof()
    await stream.aclose()  # waits until everything queued went out
    t1, c1 = time.perf_counter(), _usage()
    return Side(t1 - t0, c1 - c0, _peak_rss(), h.hexdigest(), n)


# -- process bodies -----------------------------------------------------------------------------


def direct_receiver(mode: str, conn: Connection, out_path: Path, size: int) -> None:
    async def main() -> Side:
        addr = dstaddr(SID, A_JID, B_JID)
        if mode == "s5b":
            async with await S5bListener.start(addresses=[LOOP], allowed=[addr]) as listener:
                conn.send(listener.addresses[0][1])
                stream = await listener.wait_for(addr, timeout=60)
                return await _s5b_receive_stream(stream, out_path, size)
        srv = socket.create_server((LOOP, 0))
        conn.send(srv.getsockname()[1])
        sock, _ = await asyncio.get_running_loop().sock_accept(srv)
        srv.close()
        return await _raw_receive(sock, out_path, size)

    conn.send(asyncio.run(main()))


def direct_sender(mode: str, conn: Connection, src: Path) -> None:
    port = conn.recv()

    async def main() -> Side:
        if mode == "s5b":
            stream = await connect_candidate(LOOP, port, dstaddr(SID, A_JID, B_JID), 10)
            return await _s5b_send_stream(stream, src)
        sock = socket.create_connection((LOOP, port))
        sock.setblocking(False)
        return await _raw_send(sock, src)

    conn.send(asyncio.run(main()))


def proxy_peer(
    role: str, mode: str, conn: Connection, host: str, port: int, addr: str, path: Path, size: int
) -> None:
    """Connect to the proxy, report, wait for "go" (after activation), transfer."""

    async def main() -> Side:
        loop = asyncio.get_running_loop()
        if mode == "s5b":
            stream = await connect_candidate(host, port, addr, 10)
            conn.send("connected")
            await loop.run_in_executor(None, conn.recv)
            if role == "send":
                return await _s5b_send_stream(stream, path)
            return await _s5b_receive_stream(stream, path, size)
        sock = socket.create_connection((host, port))
        _socks5_handshake(sock, addr)
        sock.setblocking(False)
        conn.send("connected")
        await loop.run_in_executor(None, conn.recv)
        if role == "send":
            return await _raw_send(sock, path)
        return await _raw_receive(sock, path, size)

    conn.send(asyncio.run(main()))


# -- orchestration -----------------------------------------------------------------------------


@dataclass
class Result:
    mbps: float
    send: Side
    recv: Side


def _pair(
    target_recv: Callable[..., None],
    recv_args: tuple[Any, ...],
    target_send: Callable[..., None],
    send_args: tuple[Any, ...],
) -> tuple[BaseProcess, BaseProcess, Connection, Connection]:
    ctx = mp.get_context("spawn")
    r_parent, r_child = ctx.Pipe()
    s_parent, s_child = ctx.Pipe()
    rp = ctx.Process(target=target_recv, args=(*recv_args[:1], r_child, *recv_args[1:]))
    sp = ctx.Process(target=target_send, args=(*send_args[:1], s_child, *send_args[1:]))
    rp.start()
    sp.start()
    return rp, sp, r_parent, s_parent


def run_direct(mode: str, src: Path, out: Path, size: int) -> Result:
    rp, sp, rc, sc = _pair(direct_receiver, (mode, out, size), direct_sender, (mode, src))
    sc.send(rc.recv())  # the receiver's port
    recv, send = rc.recv(), sc.recv()
    rp.join()
    sp.join()
    out.unlink()
    return _result(recv, send, size)


def _result(recv: Side, send: Side, size: int) -> Result:
    if recv.nbytes != size or recv.digest != send.digest or not recv.verified:
        raise SystemExit(f"transfer corrupted: got {recv.nbytes} of {size} bytes "
                         f"(sender's digest {'matched' if recv.verified else 'did not match'})")
    return Result(size / recv.seconds / 1e6, send, recv)


async def _proxy_run(
    server: Any, modes: list[str], src: Path, out: Path, size: int, reps: int
) -> dict[str, list[Result]]:
    from jinglefs.s5b.proxy import activate, discover_proxy
    from tests.xmpp.test_s5b_prosody import logged_in

    results: dict[str, list[Result]] = {m: [] for m in modes}
    loop = asyncio.get_running_loop()
    async with (
        logged_in(server.account("alice"), "bench-a") as alice,
        logged_in(server.account("bob"), "bench-b") as bob,
    ):
        proxy = await discover_proxy(alice)
        assert proxy is not None
        for _ in range(reps):
            for mode in modes:
                sid = secrets.token_hex(6)
                addr = dstaddr(sid, str(alice.boundjid), str(bob.boundjid))
                args = (proxy.host, proxy.port, addr)
                ctx = mp.get_context("spawn")
                r_parent, r_child = ctx.Pipe()
                s_parent, s_child = ctx.Pipe()
                rp = ctx.Process(target=proxy_peer, args=("recv", mode, r_child, *args, out, size))
                rp.start()
                assert await loop.run_in_executor(None, r_parent.recv) == "connected"
                sp = ctx.Process(target=proxy_peer, args=("send", mode, s_child, *args, src, size))
                sp.start()
                assert await loop.run_in_executor(None, s_parent.recv) == "connected"
                await activate(alice, proxy.jid, sid, str(bob.boundjid))
                r_parent.send("go")
                s_parent.send("go")
                recv = await loop.run_in_executor(None, r_parent.recv)
                send = await loop.run_in_executor(None, s_parent.recv)
                rp.join()
                sp.join()
                out.unlink()
                results[mode].append(_result(recv, send, size))
    return results


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(16 * 1024 * 1024)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def _row(name: str, results: list[Result]) -> str:
    speeds = [r.mbps for r in results]
    med = statistics.median(speeds)

    def m(values: list[float]) -> float:
        return statistics.median(values)

    return (
        f"{name:<28} {med:8.0f} MB/s ({min(speeds):.0f}-{max(speeds):.0f}, n={len(results)})  "
        f"CPU send {m([r.send.cpu / r.send.seconds for r in results]):.2f} "
        f"recv {m([r.recv.cpu / r.recv.seconds for r in results]):.2f}  "
        f"peak RSS send {max(r.send.rss_kib for r in results) / 1024:.0f} MiB "
        f"recv {max(r.recv.rss_kib for r in results) / 1024:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direct-mb", type=int, default=1000)
    parser.add_argument("--proxy-mb", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-netns", action="store_true", help="do not use unshare -n")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    args = parser.parse_args(argv)

    if not args.no_netns and os.environ.get("JINGLEFS_BENCH_NETNS") != "1":
        if shutil.which("unshare") and shutil.which("ip"):
            cmd = [
                "unshare",
                "-n",
                "sh",
                "-c",
                'ip link set lo up && exec "$0" "$@"',
                sys.executable,
                *sys.argv,
            ]
            probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
            if probe.returncode == 0:
                env = {**os.environ, "JINGLEFS_BENCH_NETNS": "1"}
                return subprocess.call(cmd, env=env)
        print("note: unshare -n not usable here; running in the host network namespace")
    elif os.environ.get("JINGLEFS_BENCH_NETNS") == "1":
        print("network: fresh namespace (unshare -n), only lo")

    work = Path(tempfile.mkdtemp(prefix="jfs-bench-", dir=args.dir))
    try:
        src, out = work / "src.bin", work / "out.bin"
        size = args.direct_mb * 1_000_000
        print(
            f"direct: {size / 1e6:.0f} MB, {args.reps} reps, sender read + sha-256, receiver "
            "sha-256 + write + fsync, digest compared; 2 processes"
        )
        _make_file(src, size)
        direct: dict[str, list[Result]] = {"raw": [], "s5b": []}
        for _ in range(args.reps):
            for mode in ("raw", "s5b"):  # interleaved so noise hits both alike
                direct[mode].append(run_direct(mode, src, out, size))
        print(_row("raw asyncio TCP", direct["raw"]))
        print(_row("jinglefs S5B direct", direct["s5b"]))
        ratio = statistics.median(r.mbps for r in direct["s5b"]) / statistics.median(
            r.mbps for r in direct["raw"]
        )
        print(f"S5B direct / raw = {ratio:.0%} (goal >= 80%)")

        if args.proxy_mb:
            from tests.servers.prosody import ProsodyServer

            psize = args.proxy_mb * 1_000_000
            _make_file(src, psize)
            server = ProsodyServer(work / "prosody")
            server.add_account("alice", roster=["bob"])
            server.add_account("bob")
            server.start()
            try:
                print(
                    f"proxy65: {psize / 1e6:.0f} MB through Prosody mod_proxy65 "
                    f"(pid {server.pid}), {args.reps} reps"
                )
                proxy = asyncio.run(_proxy_run(server, ["raw", "s5b"], src, out, psize, args.reps))
            finally:
                server.stop()
            print(_row("raw asyncio via proxy65", proxy["raw"]))
            print(_row("jinglefs S5B via proxy65", proxy["s5b"]))
            pratio = statistics.median(r.mbps for r in proxy["s5b"]) / statistics.median(
                r.mbps for r in proxy["raw"]
            )
            print(f"S5B proxy / raw proxy = {pratio:.0%}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
