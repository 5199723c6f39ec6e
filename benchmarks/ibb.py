"""IBB throughput through a loopback Prosody: jinglefs' IBB layer vs minimal XEP-0047 peers.

    python benchmarks/ibb.py                 # 24 MB, 3 reps, all modes
    python benchmarks/ibb.py --size-mb 48 --reps 5 --modes raw-w8,w8

Starts a throwaway Prosody (tests.servers.prosody: no mod_limits, nagle off,
256 KiB reads), then per rep and mode runs the receiver and the sender as two separate
processes (perf-anchors.md: both peers in one process halves throughput).

Every mode does the same file work, the work a jinglefs transfer does: the sender reads
the file in 1 MiB chunks and hashes it (sha-256); the receiver hashes what arrives, writes
it (:class:`benchmarks.filesink.FileSink`: 1 MiB batches, page cache recycled every 8 MiB)
and fsyncs it.  After its ``<close/>`` is answered the sender sends its digest in one more
IQ (where jinglefs sends the XEP-0234 §8.2 ``<checksum/>``), which the receiver answers
and compares.  The modes differ only in how the XEP-0047 stream is done:

* ``raw-wN`` / ``raw-wN-B``: the protocol done minimally, both sides.  slixmpp logs in and
  parses; the sender writes each ``<data/>`` IQ as raw XML with ``send_raw`` and keeps N of
  them unanswered (B-byte blocks, 4096 by default); the receiver checks ``sid`` and
  ``seq``, decodes the base64 and answers each IQ with raw XML.  ``raw-w8`` is what
  ``run.py`` divides jinglefs IBB by: the same window and block size as jinglefs.
* ``slixmpp``: slixmpp's xep_0047 plugin sends, one IQ at a time, 4096-byte blocks built
  with slixmpp's stanza objects (the perf-anchors row 5 stop-and-wait reference); the
  receiver is the minimal one above.
* ``wN`` / ``wN-B``: jinglefs' :class:`jinglefs.ibb.service.IbbService` on both sides,
  N data IQs outstanding, B-byte blocks (4096 by default).

MB/s = 10^6 bytes / receiver wall time from ``<open/>`` to the sender's digest compared
(after the fsync).  CPU is the share of one core used by each process over its part of the
transfer (getrusage; Prosody from /proc).  Only compare rows of the same run: the machine
is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import hashlib
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_MODES = "slixmpp,raw-w1,raw-w8,w1,w8,w16"
IBB = "http://jabber.org/protocol/ibb"
#: The benchmark's own payload for the sender's sha-256 after the last byte.
CHECKSUM_NS = "urn:jinglefs:bench:checksum"
READ_SIZE = 1 << 20
SEQ_MODULUS = 65536  # XEP-0047 §2.2: seq is an unsignedShort that wraps to 0


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_pid(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parse_mode(mode: str) -> tuple[str, int, int]:
    """(kind, window, block size) for slixmpp / raw-wN[-B] / wN[-B]."""
    if mode == "slixmpp":
        return "slixmpp", 1, 4096
    kind = "raw" if mode.startswith("raw-") else "jinglefs"
    rest = mode.removeprefix("raw-")
    if not rest.startswith("w"):
        raise ValueError(f"unknown mode {mode!r}")
    window, _, block = rest[1:].partition("-")
    return kind, int(window), int(block or 4096)


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


def _handler(xmpp: Any, name: str, match: Any, callback: Any) -> None:
    """Register ``callback`` for stanzas whose parsed XML ``match`` accepts."""
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher.base import MatcherBase

    class _Matcher(MatcherBase):
        def match(self, xml: Any) -> bool:
            return bool(match(xml.xml))

    xmpp.register_handler(Callback(name, _Matcher(None), callback))


class _MinimalReceiver:
    """The receiving side of XEP-0047 (IQ mode) done minimally, plus the digest IQ.

    With ``ibb=False`` only the digest IQ is handled (jinglefs' IbbService receives)."""

    def __init__(self, xmpp: Any, sid: str, block_size: int, sink: Any, ibb: bool) -> None:
        self.xmpp, self.sid, self.block_size, self.sink = xmpp, sid, block_size, sink
        self.seq = 0
        self.closed = not ibb
        self.digest: str | None = None
        self.started: tuple[float, float] | None = None  # (wall, cpu) at <open/>
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self._iq = f"{{{xmpp.default_ns}}}iq"
        names = ({f"{{{IBB}}}open", f"{{{IBB}}}data", f"{{{IBB}}}close"} if ibb else set())
        self._tags = frozenset({*names, f"{{{CHECKSUM_NS}}}checksum"})
        _handler(xmpp, "bench ibb receiver", self._match, self._on_iq)

    def _match(self, el: ET.Element) -> bool:
        return (el.tag == self._iq and el.get("type") == "set"
                and len(el) > 0 and el[0].tag in self._tags)

    def _answer(self, el: ET.Element, error: str | None = None) -> None:
        head = f"to={quoteattr(el.get('from') or '')} id={quoteattr(el.get('id') or '')}"
        if error is None:
            self.xmpp.send_raw(f"<iq type='result' {head}/>")
            return
        self.xmpp.send_raw(f"<iq type='error' {head}><error type='cancel'><{error} "
                           "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"receiver refused a stanza: {error}"))

    def _on_iq(self, stanza: Any) -> None:
        el: ET.Element = stanza.xml
        child = el[0]
        local = child.tag.rpartition("}")[2]
        if local == "checksum":
            self.digest = (child.text or "").strip()
            self._answer(el)
            self._check_done()
            return
        if child.get("sid") != self.sid:  # XEP-0047 §2.2: unknown sid
            self._answer(el, "item-not-found")
        elif local == "data":
            # XEP-0047 §2.2: seq must be the next one, the block no bigger than agreed.
            if child.get("seq") != str(self.seq):
                self._answer(el, "unexpected-request")
                return
            try:
                block = binascii.a2b_base64((child.text or "").encode("ascii"),
                                            strict_mode=True)
            except (binascii.Error, UnicodeEncodeError):
                self._answer(el, "bad-request")
                return
            if len(block) > self.block_size:
                self._answer(el, "bad-request")
                return
            self.sink.write(block)
            self.seq = (self.seq + 1) % SEQ_MODULUS
            self._answer(el)
        elif local == "open":  # XEP-0047 §2.1
            if int(child.get("block-size") or 0) > self.block_size:
                self._answer(el, "resource-constraint")
                return
            self.started = (time.perf_counter(), _cpu_self())
            self._answer(el)
            if not self.opened.done():
                self.opened.set_result(None)
        else:  # close, XEP-0047 §2.3
            self.closed = True
            self._answer(el)
            self._check_done()

    def _check_done(self) -> None:
        if self.closed and self.digest is not None and not self.done.done():
            self.done.set_result(None)


async def _receiver(cfg: dict[str, Any]) -> None:
    from benchmarks.filesink import FileSink

    kind, _, block = _parse_mode(cfg["mode"])
    xmpp = await _login(cfg)
    sink = FileSink(cfg["path"])
    inbox = _MinimalReceiver(xmpp, cfg["sid"], max(block, 4096), sink, ibb=kind != "jinglefs")
    if kind == "jinglefs":
        from jinglefs.ibb.service import IbbService

        service = IbbService(xmpp, max_block_size=65535)
        stream = service.expect(cfg["peer"], cfg["sid"], cfg["block_size"])
        _emit({"ready": True})
        await stream.wait_open(60)
        t0, c0 = time.perf_counter(), _cpu_self()
        while chunk := await stream.receive(READ_SIZE):
            sink.write(chunk)
        await asyncio.wait_for(inbox.done, 60)
        await stream.aclose()
    else:
        _emit({"ready": True})
        await asyncio.wait_for(inbox.opened, 60)
        assert inbox.started is not None
        t0, c0 = inbox.started
        await asyncio.wait_for(inbox.done, 600)
    received = sink.received
    digest = sink.close()  # fsync
    seconds, cpu = time.perf_counter() - t0, _cpu_self() - c0
    _emit({"bytes": received, "sha256": digest, "verified": digest == inbox.digest,
           "seconds": seconds, "cpu": cpu / seconds})
    await asyncio.wait_for(xmpp.disconnect(), 10)


class _MinimalSender:
    """The sending side of XEP-0047 (IQ mode) done minimally: ``window`` data IQs
    unanswered at most (XEP-0047 §2.2 does not make the sender wait for each answer)."""

    def __init__(self, xmpp: Any, peer: str, sid: str, block: int, window: int) -> None:
        self.xmpp, self.block, self.window = xmpp, block, window
        self.inflight = 0
        self.error: str | None = None
        self.wake = asyncio.Event()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._prefix = f"b{os.urandom(4).hex()}-"
        self._ids = itertools.count()
        self._to, self._sid = quoteattr(peer), quoteattr(sid)
        self._head = f"<iq type='set' to={self._to} id='{self._prefix}".encode()
        self._mid = f"'><data xmlns='{IBB}' sid={self._sid} seq='".encode()
        self._iq = f"{{{xmpp.default_ns}}}iq"
        _handler(xmpp, "bench ibb sender", self._match, self._on_answer)

    def _match(self, el: ET.Element) -> bool:
        return (el.tag == self._iq and el.get("type") in ("result", "error")
                and (el.get("id") or "").startswith(self._prefix))

    def _on_answer(self, stanza: Any) -> None:
        el: ET.Element = stanza.xml
        iq_id = el.get("id") or ""
        failed = el.get("type") == "error"
        waiter = self._waiters.pop(iq_id, None)
        if waiter is not None:
            if not waiter.done():
                if failed:
                    waiter.set_exception(RuntimeError(f"IQ {iq_id} answered with an error"))
                else:
                    waiter.set_result(None)
            return
        self.inflight -= 1  # a data IQ
        if failed:
            self.error = f"data IQ {iq_id} answered with an error"
        self.wake.set()

    async def _request(self, body: str) -> None:
        iq_id = f"{self._prefix}{next(self._ids)}"
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[iq_id] = waiter
        self.xmpp.send_raw(f"<iq type='set' to={self._to} id='{iq_id}'>{body}</iq>")
        await asyncio.wait_for(waiter, 30)

    async def _room(self, limit: int) -> None:
        while self.inflight > limit and self.error is None:
            self.wake.clear()
            await asyncio.wait_for(self.wake.wait(), 30)
        if self.error is not None:
            raise RuntimeError(self.error)

    async def send_file(self, path: str) -> str:
        await self._request(f"<open xmlns='{IBB}' block-size='{self.block}' sid={self._sid} "
                            "stanza='iq'/>")  # XEP-0047 §2.1
        digest = hashlib.sha256()
        seq = 0
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(READ_SIZE):
                digest.update(chunk)
                view = memoryview(chunk)
                for i in range(0, len(view), self.block):
                    await self._room(self.window - 1)
                    self.xmpp.send_raw(b"".join((
                        self._head, str(next(self._ids)).encode(), self._mid,
                        str(seq).encode(), b"'>",
                        binascii.b2a_base64(view[i:i + self.block], newline=False),
                        b"</data></iq>")))
                    self.inflight += 1
                    seq = (seq + 1) % SEQ_MODULUS
        await self._room(0)
        await self._request(f"<close xmlns='{IBB}' sid={self._sid}/>")  # XEP-0047 §2.3
        return digest.hexdigest()


async def _send_checksum(xmpp: Any, peer: str, digest: str) -> None:
    """One IQ with the sender's sha-256, answered by the receiver (stands in for jinglefs'
    XEP-0234 §8.2 ``<checksum/>`` session-info, which the receiver answers too)."""
    iq = xmpp.make_iq_set(ito=peer)
    payload = ET.Element(f"{{{CHECKSUM_NS}}}checksum")
    payload.text = digest
    iq.append(payload)
    await iq.send(timeout=30)


async def _sender(cfg: dict[str, Any]) -> None:
    from slixmpp import JID

    kind, window, block = _parse_mode(cfg["mode"])
    xmpp = await _login(cfg, ("xep_0030", "xep_0047") if kind == "slixmpp" else ())
    _emit({"ready": True})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    t0, c0 = time.perf_counter(), _cpu_self()
    digest = hashlib.sha256()
    if kind == "raw":
        sha = await _MinimalSender(xmpp, cfg["peer"], cfg["sid"], block, window).send_file(
            cfg["path"])
    elif kind == "slixmpp":
        stream = await xmpp.plugin["xep_0047"].open_stream(JID(cfg["peer"]), block_size=block,
                                                           sid=cfg["sid"])
        with open(cfg["path"], "rb", buffering=0) as f:
            while chunk := f.read(READ_SIZE):
                digest.update(chunk)
                # One stanza per await (its sendall() re-slices the whole remaining buffer
                # each block, which is quadratic and would make the reference unfairly slow).
                for i in range(0, len(chunk), block):
                    await stream.send(chunk[i:i + block])
        await stream.close()
        sha = digest.hexdigest()
    else:
        from jinglefs.ibb.service import IbbService

        service = IbbService(xmpp, window=window)
        out = await service.open(cfg["peer"], cfg["sid"], block, timeout=30)
        with open(cfg["path"], "rb", buffering=0) as f:
            while chunk := f.read(READ_SIZE):
                digest.update(chunk)
                await out.send(chunk)
        await out.drain(60)
        await out.aclose()
        sha = digest.hexdigest()
    await _send_checksum(xmpp, cfg["peer"], sha)
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


async def _one(server: Any, mode: str, size: int, rep: int, src: str, dst: str
               ) -> dict[str, float]:
    """One transfer of the ``size``-byte file ``src`` into ``dst`` (removed afterwards)."""
    _, _, block = _parse_mode(mode)
    sid = f"bench-{mode}-{rep}-{os.urandom(3).hex()}"
    alice, bob = server.account("alice"), server.account("bob")
    common = {"host": alice.server, "port": alice.port, "ca_file": alice.ca_file, "sid": sid,
              "size": size, "mode": mode, "block_size": block}
    alice_jid, bob_jid = f"{alice.jid}/bench-send", f"{bob.jid}/bench-recv"
    receiver = await _spawn({**common, "role": "recv", "jid": bob_jid, "path": dst,
                             "password": bob.password, "peer": alice_jid})
    sender = await _spawn({**common, "role": "send", "jid": alice_jid, "path": src,
                           "password": alice.password, "peer": bob_jid})
    try:
        await _line(receiver, 60)
        await _line(sender, 60)
        p0 = _cpu_pid(server.pid)
        t0 = time.perf_counter()
        assert sender.stdin is not None
        sender.stdin.write(b"go\n")
        await sender.stdin.drain()
        recv = await _line(receiver, 120 + size / 1e6 * 2)
        wall = time.perf_counter() - t0
        prosody_cpu = (_cpu_pid(server.pid) - p0) / wall
        sent = await _line(sender, 120)
    finally:
        for proc in (sender, receiver):
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()  # our own child, by its handle
                await proc.wait()
        Path(dst).unlink(missing_ok=True)
    if recv["sha256"] != sent["sha256"] or recv["bytes"] != size or not recv["verified"]:
        raise RuntimeError(f"{mode}: data mismatch ({recv['bytes']} of {size} bytes, sender's "
                           f"digest {'matched' if recv['verified'] else 'did not match'})")
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
    for mode in modes:
        _parse_mode(mode)
    size = int(args.size_mb * 1e6)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="jinglefs-bench-ibb-") as tmp:
        src, dst = os.path.join(tmp, "src.bin"), os.path.join(tmp, "dst.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        server = ProsodyServer(Path(tmp) / "xmpp")
        server.add_account("alice", roster=["bob"])
        server.add_account("bob")
        with server:
            for rep in range(args.reps):
                for mode in modes:  # interleaved, so noise spreads over all modes
                    row = await _one(server, mode, size, rep, src, dst)
                    results[mode].append(row)
                    print(f"  rep {rep + 1} {mode:>10}: {row['mbps']:.2f} MB/s", file=sys.stderr)
    base_mode = "raw-w8" if "raw-w8" in modes else modes[0]
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
                        help="comma-separated: slixmpp, raw-wN[-BLOCK], wN[-BLOCK] "
                        "(default %(default)s)")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
