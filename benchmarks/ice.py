"""ICE data channel throughput over loopback: bare aiortc and libdatachannel vs jinglefs'
two ICE implementations (aiortc's IceSession, the native NativeIceSession).

    python benchmarks/ice.py                       # 64 MiB, 3 reps, asyncio + uvloop
    python benchmarks/ice.py --size-mb 100 --reps 5 --loops asyncio --modes bare-io,j64k
    python benchmarks/ice.py --loops asyncio --modes bare-io,j64k,ldc-io,n64k   # CPython >= 3.12

Per loop, rep and mode the receiver and the sender run as two separate processes
(perf-anchors.md: both peers in one process halves throughput); the parent relays the
signalling (SDP for ``bare``, the Jingle transport XML for jinglefs) over pipes.

* ``bare``: aiortc ``RTCPeerConnection`` + one data channel, the perf-anchors "aiortc
  datachannel 2 processes" row: the sender sends one 64 KiB message over and over, keeping
  ``bufferedAmount`` at most 256 KiB; the receiver counts and discards.  No file work.
* ``bare-io``: the same channel doing the work a jinglefs transfer does: the sender reads
  the file in 1 MiB chunks, hashes it (sha-256) and sends it as 64 KiB messages (at most
  256 KiB buffered, as jinglefs); the receiver hashes and writes what arrives
  (:class:`benchmarks.filesink.FileSink`: 1 MiB batches, page cache recycled every 8 MiB)
  and fsyncs.  After the last byte the sender sends its hex digest as one string message
  (where jinglefs sends the XEP-0234 §8.2 ``<checksum/>``); the receiver's clock stops
  when it has compared it.  ``run.py`` divides jinglefs ICE by this mode.
* ``jNk``: jinglefs (:class:`jinglefs.ice.channel.IceSession`, ``message_size`` N KiB):
  the sender reads a file and hashes it (sha-256), the receiver hashes and writes a file; the
  digests are compared.  ``j4k`` is Conversations' message size.  jinglefs delays SACKs
  (RFC 4960 §6.2) by default; ``-sack1`` (``j64k-sack1``) restores aiortc's one SACK per packet.
* ``ldc-io``: ``bare-io`` on a bare libdatachannel data channel (aiolibdatachannel's public
  API, SDP offer/answer relayed by the parent): the same file work, 64 KiB messages, the
  sender waiting while libdatachannel queues data (as jinglefs' native stream does).
* ``nNk``: jinglefs' native data channel (:class:`jinglefs.ice.native.NativeIceSession`,
  ``message_size`` N KiB), the same work as ``jNk``.  ``run.py`` divides it by ``ldc-io``.

Host candidates are 127.0.0.1 only (jinglefs: ``host_addresses``; bare: aioice's
``get_host_addresses`` patched in that child, as perf-anchors.md did; bare libdatachannel:
127.0.0.1 added to the SDP on the port given to libjuice, as jinglefs does, beside what
libjuice finds), no STUN/TURN.
MB/s = 10^6 bytes / receiver wall time from connected to last byte.  CPU = share of one
core of each process over the same span (getrusage).  MB/CPU-s = MB/s divided by the CPU
share of the busier process (bytes per CPU-second: on a shared, loaded machine this moves less
than MB/s).  Modes are interleaved rep by rep.  Compare rows of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: As jinglefs (jinglefs/ice/channel.py): at most 256 KiB buffered, 64 KiB messages.
BUFFER_LIMIT = 256 * 1024
MESSAGE_SIZE = 65536
READ_SIZE = 1 << 20


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class _Pipe:
    """Line-based JSON signalling with the parent (stdin / stdout)."""

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None

    async def _get_reader(self) -> asyncio.StreamReader:
        if self._reader is None:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
            self._reader = reader
        return self._reader

    def put(self, **msg: Any) -> None:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    async def get(self) -> dict[str, Any]:
        line = await (await self._get_reader()).readline()
        if not line:
            raise SystemExit("parent went away")
        result: dict[str, Any] = json.loads(line)
        return result


# ------------------------------------------------------------------ children


async def _bare(role: str, size: int, pipe: _Pipe, path: str, io: bool) -> dict[str, Any]:
    import aioice.ice
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    done = asyncio.get_running_loop().create_future()
    result: dict[str, Any] = {}
    if role == "send":
        channel = pc.createDataChannel("bench")
        opened = asyncio.Event()
        writable = asyncio.Event()
        channel.on("open", opened.set)
        channel.bufferedAmountLowThreshold = BUFFER_LIMIT // 2
        channel.on("bufferedamountlow", writable.set)
        await pc.setLocalDescription(await pc.createOffer())
        pipe.put(sdp=pc.localDescription.sdp)
        answer = await pipe.get()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await opened.wait()

        async def send(chunk: bytes) -> None:
            while channel.bufferedAmount + len(chunk) > BUFFER_LIMIT:
                writable.clear()
                await writable.wait()
            channel.send(chunk)

        t0, c0 = time.perf_counter(), _cpu()
        if io:
            digest = hashlib.sha256()
            with open(path, "rb", buffering=0) as f:
                while block := f.read(READ_SIZE):
                    digest.update(block)
                    for i in range(0, len(block), MESSAGE_SIZE):
                        await send(block[i:i + MESSAGE_SIZE])
            channel.send(digest.hexdigest())  # a string message: the "checksum"
            result = {"sha256": digest.hexdigest()}
        else:
            message = os.urandom(MESSAGE_SIZE)
            sent = 0
            while sent < size:
                chunk = message[: min(MESSAGE_SIZE, size - sent)]
                await send(chunk)
                sent += len(chunk)
        result["cpu"] = (_cpu() - c0) / (time.perf_counter() - t0)
        await pipe.get()  # the receiver has everything
    else:
        from benchmarks.filesink import FileSink

        got = 0
        start: list[float] = []
        sink = FileSink(path) if io else None
        their_digest: list[str] = []

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            @channel.on("message")
            def on_message(message: bytes | str) -> None:
                nonlocal got
                if not start:
                    start.extend((time.perf_counter(), _cpu()))
                if isinstance(message, str):
                    their_digest.append(message)
                else:
                    got += len(message)
                    if sink is not None:
                        sink.write(message)
                # ordered channel: the digest comes after the last byte
                if got >= size and (sink is None or their_digest) and not done.done():
                    done.set_result(None)

        offer = await pipe.get()
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        pipe.put(sdp=pc.localDescription.sdp)
        await done
        if sink is not None:
            mine = sink.close()  # fsync
            result = {"sha256": mine, "verified": their_digest == [mine]}
        t1, c1 = time.perf_counter(), _cpu()
        result.update(bytes=got, seconds=t1 - start[0], cpu=(c1 - start[1]) / (t1 - start[0]))
        pipe.put(done=True)
    await pc.close()
    return result


async def _ldc(role: str, size: int, pipe: _Pipe, path: str) -> dict[str, Any]:
    """``ldc-io``: a bare libdatachannel data channel doing the file work of ``bare-io``."""
    import aiolibdatachannel as ldc

    from benchmarks.filesink import FileSink
    from jinglefs.ice.native import _free_udp_port

    # 127.0.0.1 on a port we pick, as jinglefs does (libjuice gathers no loopback address,
    # and none at all in run.py's network namespace with only lo).
    port = _free_udp_port()
    pc = ldc.PeerConnection(ldc.RTCConfiguration(port_range_begin=port, port_range_end=port))

    def with_loopback(sdp: str) -> str:
        line = f"a=candidate:90 1 UDP 2130706431 127.0.0.1 {port} typ host\r\n"
        return sdp.replace("a=end-of-candidates", line + "a=end-of-candidates", 1)

    result: dict[str, Any] = {}
    if role == "send":
        channel = await pc.create_data_channel("bench")
        offer = await pc.create_offer()  # waits for gathering: every candidate inline
        pipe.put(sdp=with_loopback(offer.sdp))
        await pc.set_remote_description((await pipe.get())["sdp"], "answer")
        await channel.wait_open()
        t0, c0 = time.perf_counter(), _cpu()
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while block := f.read(READ_SIZE):
                digest.update(block)
                for i in range(0, len(block), MESSAGE_SIZE):
                    await channel.send(block[i:i + MESSAGE_SIZE])  # waits while it queues
        await channel.send(digest.hexdigest())  # a string message: the "checksum"
        result = {"sha256": digest.hexdigest(), "cpu": (_cpu() - c0) / (time.perf_counter() - t0)}
        await pipe.get()  # the receiver has everything
    else:
        await pc.set_remote_description((await pipe.get())["sdp"], "offer")
        answer = await pc.create_answer()
        pipe.put(sdp=with_loopback(answer.sdp))
        channel = await pc.accept_data_channel()
        sink = FileSink(path)
        got = 0
        their_digest = ""
        start: tuple[float, float] | None = None
        while got < size or not their_digest:
            message = await channel.recv()
            if start is None:
                start = (time.perf_counter(), _cpu())
            if isinstance(message, str):
                their_digest = message  # ordered channel: after the last byte
            else:
                got += len(message)
                sink.write(message)
        mine = sink.close()  # fsync
        assert start is not None
        t1, c1 = time.perf_counter(), _cpu()
        result = {"sha256": mine, "verified": their_digest == mine, "bytes": got,
                  "seconds": t1 - start[0], "cpu": (c1 - start[1]) / (t1 - start[0])}
        pipe.put(done=True)
    await pc.aclose()
    return result


async def _jinglefs(
    role: str, size: int, message_size: int, delayed_sack: bool, path: str, pipe: _Pipe,
    native: bool = False,
) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    from jinglefs.ice.channel import IceSession
    from jinglefs.ice.protocol import WebRtcDataChannelTransport

    initiator = role == "send"
    session_class: Any = IceSession
    if native:
        from jinglefs.ice.native import NativeIceSession

        session_class = NativeIceSession
    ice = session_class(
        initiator=initiator,
        host_addresses=["127.0.0.1"],
        message_size=message_size,
        delayed_sack=delayed_sack,
    )

    def encode(p: WebRtcDataChannelTransport) -> str:
        return ET.tostring(p.to_element(), encoding="unicode")

    async def receive_payload() -> None:
        el = ET.fromstring((await pipe.get())["xml"])
        await ice.add_remote(WebRtcDataChannelTransport.from_element(el))

    if initiator:
        pipe.put(xml=encode(await ice.gather()))
        await receive_payload()
    else:
        await receive_payload()
        pipe.put(xml=encode(await ice.gather()))
    stream = await ice.connect(20)
    h = hashlib.sha256()
    t0, c0 = time.perf_counter(), _cpu()
    if initiator:
        with open(path, "rb") as f:
            while chunk := f.read(READ_SIZE):
                h.update(chunk)
                await stream.send(chunk)
        t1, c1 = time.perf_counter(), _cpu()
        await pipe.get()  # the receiver has everything
        await stream.aclose()
        await ice.close()
        return {"sha256": h.hexdigest(), "cpu": (c1 - c0) / (t1 - t0)}
    got = 0
    with open(path, "wb") as out:
        while got < size:
            chunk = await stream.receive(READ_SIZE)
            if not chunk:
                break
            h.update(chunk)
            out.write(chunk)
            got += len(chunk)
    t1, c1 = time.perf_counter(), _cpu()
    pipe.put(done=True)
    await stream.aclose()
    await ice.close()
    return {"bytes": got, "seconds": t1 - t0, "cpu": (c1 - c0) / (t1 - t0), "sha256": h.hexdigest()}


def child(args: argparse.Namespace) -> None:
    pipe = _Pipe()

    async def run() -> dict[str, Any]:
        if args.mode in ("bare", "bare-io"):
            return await _bare(args.role, args.size, pipe, args.path, args.mode == "bare-io")
        if args.mode == "ldc-io":
            return await _ldc(args.role, args.size, pipe, args.path)
        base, _, flag = args.mode.partition("-")
        message_size = int(base[1:-1]) * 1024
        return await _jinglefs(args.role, args.size, message_size, flag != "sack1", args.path,
                               pipe, native=base.startswith("n"))

    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(run())
    else:
        result = asyncio.run(run())
    pipe.put(result=result)


# ------------------------------------------------------------------ parent


async def _relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter, out: dict[str, Any]) -> None:
    while line := await src.readline():
        msg = json.loads(line)
        if "result" in msg:
            out.update(msg["result"])
        else:
            dst.write(line)
            await dst.drain()


async def one_run(
    mode: str, loop: str, size: int, src: str, dst: str, profile: str | None = None
) -> dict[str, Any]:
    def spawn(role: str, path: str) -> Any:
        return asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "child",
            "--role",
            role,
            "--mode",
            mode,
            "--loop",
            loop,
            "--size",
            str(size),
            "--path",
            path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    recv = await spawn("recv", dst)
    send = await spawn("send", src)
    spies = []
    if profile:
        # --profile DIR: py-spy attached to each child, collapsed stacks in DIR/MODE-LOOP-ROLE.txt
        for role, proc in (("recv", recv), ("send", send)):
            out = os.path.join(profile, f"{mode}-{loop}-{role}.txt")
            spies.append(
                await asyncio.create_subprocess_exec(
                    "py-spy",
                    "record",
                    "--pid",
                    str(proc.pid),
                    "-r",
                    "250",
                    "-f",
                    "raw",
                    "-o",
                    out,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    r_out: dict[str, Any] = {}
    s_out: dict[str, Any] = {}
    await asyncio.wait_for(
        asyncio.gather(
            _relay(send.stdout, recv.stdin, s_out),
            _relay(recv.stdout, send.stdin, r_out),
            send.wait(),
            recv.wait(),
        ),
        timeout=300,
    )
    for spy in spies:
        await spy.wait()
    if r_out.get("bytes") != size:
        raise RuntimeError(f"{mode}/{loop}: receiver got {r_out.get('bytes')} of {size} bytes")
    if mode != "bare" and r_out["sha256"] != s_out["sha256"]:
        raise RuntimeError(f"{mode}/{loop}: sha-256 mismatch")
    if mode in ("bare-io", "ldc-io") and not r_out["verified"]:
        raise RuntimeError(f"{mode}/{loop}: the sender's digest did not match")
    return {
        "mbps": size / r_out["seconds"] / 1e6,
        "cpu_recv": r_out["cpu"],
        "cpu_send": s_out.get("cpu", float("nan")),
    }


async def parent(args: argparse.Namespace) -> None:
    size = int(args.size_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="jinglefs-ice-bench-") as tmp:
        src, dst = os.path.join(tmp, "src.bin"), os.path.join(tmp, "dst.bin")
        with open(src, "wb") as f:
            for _ in range(0, size, READ_SIZE):
                f.write(os.urandom(READ_SIZE))
            f.truncate(size)
        print(f"# {size} bytes, {args.reps} reps; median (min-max) MB/s, CPU send/recv")
        modes = args.modes.split(",")
        for loop in args.loops.split(","):
            # Interleave the modes rep by rep, so that load from other processes on this
            # shared machine hits every mode alike.
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for _ in range(args.reps):
                for mode in modes:
                    runs[mode].append(await one_run(mode, loop, size, src, dst, args.profile))
            aiortc_base = next((m for m in ("bare-io", "bare") if m in runs), None)
            for mode in modes:
                # native modes against the bare libdatachannel channel, the rest against aiortc
                base = ("ldc-io" if mode.startswith("n") and "ldc-io" in runs
                        else aiortc_base)
                bare = statistics.median(r["mbps"] for r in runs[base]) if base else None
                rates = [r["mbps"] for r in runs[mode]]
                med = statistics.median(rates)
                ratio = (f"  {med / bare:5.0%} of {base}"
                         if bare and mode not in (base, "ldc-io") else "")
                # MB per CPU-second of the busier process: less sensitive to other load.
                eff = statistics.median(
                    r["mbps"] / max(r["cpu_send"], r["cpu_recv"]) for r in runs[mode]
                )
                print(
                    f"{loop:8} {mode:8} {med:6.1f} ({min(rates):.1f}-{max(rates):.1f}) MB/s"
                    f"  CPU {statistics.median(r['cpu_send'] for r in runs[mode]):.2f}"
                    f"/{statistics.median(r['cpu_recv'] for r in runs[mode]):.2f}"
                    f"  {eff:5.1f} MB/CPU-s{ratio}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    c = sub.add_parser("child")
    c.add_argument("--role", choices=["send", "recv"], required=True)
    c.add_argument("--mode", required=True)
    c.add_argument("--loop", default="asyncio")
    c.add_argument("--size", type=int, required=True)
    c.add_argument("--path", required=True)
    parser.add_argument("--size-mb", type=float, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--modes", default="bare,bare-io,j64k,j16k,j4k,j64k-sack1")
    parser.add_argument("--profile", metavar="DIR", help="run the children under py-spy")
    args = parser.parse_args()
    if args.cmd == "child":
        child(args)
    else:
        asyncio.run(parent(args))


if __name__ == "__main__":
    main()
