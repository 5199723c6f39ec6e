"""The README's benchmark table: every jinglefs path next to its baseline, in ONE run.

    python benchmarks/run.py                                  # defaults: a few minutes
    python benchmarks/run.py --size-mb 20 --ibb-size-mb 3 --ice-size-mb 5 --reps 1  # quick
    python benchmarks/run.py --only s5b,s5b-proxy --out /tmp/s5b.md
    python benchmarks/run.py --memory-check-gb 2              # peak RSS of a 2 GB send:
                                                              # S5B direct and native ICE
    python benchmarks/run.py --only ice,ice-native            # the two ICE implementations
                                                              # (native: CPython >= 3.12)

What one run does (perf-anchors.md, "Test hygiene"):

* re-executes itself under ``unshare -n`` when that works (a fresh network namespace with
  only ``lo``; 10.203.0.1/32 is added to ``lo`` so ICE has a non-127.0.0.1 host address);
* starts one throwaway Prosody (tests/servers/prosody.py, proxy65 on) with alice and bob;
* per rep, interleaved so that the noise of this shared machine hits every row alike:

  ======================  =========================================================
  row                     how
  ======================  =========================================================
  ``raw-tcp``             baseline: benchmarks/socks5.py raw asyncio loopback TCP
  ``s5b``                 jinglefs façade, ``transport="s5b"``, default Settings
                          (direct candidates win); must take path s5b-direct
  ``s5b-conv``            the s5b sender to the Conversations-shaped scripted peer
                          (tests/interop/conversations.py) hashing, writing and
                          fsyncing in the parent; shown as a ratio of ``s5b``
  ``raw-proxy``           baseline: benchmarks/socks5.py raw SOCKS5 clients through
                          the same proxy65, activated over XMPP
  ``s5b-proxy``           jinglefs, ``transport="s5b"``, ``Settings(s5b_direct=False)``
                          on both sides; must take path s5b-proxy
  ``ibb-raw``             baseline: benchmarks/ibb.py ``raw-wN-B``, XEP-0047 done
                          minimally with jinglefs' window N and block size B
  ``ibb-saw``             reference, no ratio: benchmarks/ibb.py ``slixmpp``, slixmpp's
                          xep_0047 sender, one IQ at a time (perf-anchors row 5)
  ``ibb``                 jinglefs, ``transport="ibb"`` through Prosody
  ``s5b-jet``             ``s5b`` with JET (XEP-0391, AES-128-GCM, OMEMO-sealed key):
                          the file crosses as ciphertext; must report encrypted (OMEMO)
  ``ibb-jet``             ``ibb`` with JET, likewise
  ``ice-aiortc``          baseline: benchmarks/ice.py ``bare-io``, a bare aiortc data
                          channel
  ``ice``                 jinglefs, ``transport="ice"``, ``ice_backend="aiortc"``, host
                          pair on 127.0.0.1; only when ``"ice" in client.factories``
  ``ice-ldc``             baseline: benchmarks/ice.py ``ldc-io``, a bare libdatachannel
                          data channel (aiolibdatachannel)
  ``ice-native``          jinglefs, ``transport="ice"``, ``ice_backend="native"``
                          (libdatachannel), host pair on 127.0.0.1; only where
                          aiolibdatachannel imports (CPython >= 3.12 on Linux)
  ======================  =========================================================

  The report adds the ratio of the two jinglefs ICE rows (native / aiortc, same work).

  Every baseline does the file work jinglefs does: the sender reads the file and hashes
  it (sha-256); the receiver hashes, writes (page cache recycled every 8 MiB, as jinglefs)
  and fsyncs; after the last byte the sender's digest travels to the receiver, which
  compares it (jinglefs: the XEP-0234 §8.2 ``<checksum/>``).  So each ratio is jinglefs'
  overhead over the same protocol done minimally with the same work.

Every jinglefs row runs the receiver and the sender as two processes
(``run.py _worker``), each logging in through :func:`jinglefs.client.connect` and
transferring a temp file of random bytes.  The receiver accepts into a fresh folder; the
file it ends with is hashed again (after the clock stops) and compared with the sha-256
of what was sent: a mismatch, a failure or a different path than asked for marks the row
FAILED.

Measured (MB = 10^6 bytes):

* MB/s: jinglefs rows from ``offer.accept()`` to the ``Verified`` event (connection set-up,
  data, fsync, checksum exchange); baselines from connected (IBB: ``<open/>``) to the
  sender's digest compared after the fsync.  "data" = jinglefs from the first received
  byte to ``Verified``.
* 1st byte: ``offer.accept()`` to the first ``Progress`` event.
* CPU s/GB: user+system CPU seconds of each process (all threads, getrusage) over the
  transfer, divided by the GB moved; "server" = Prosody's (psutil / /proc).
* peak RSS: VmHWM of each jinglefs worker process over its whole life, in MB.
* ratio: jinglefs MB/s divided by its baseline's MB/s, medians of the same run.

No timing asserts: this prints a table and writes it, with the command line, date, machine
and versions, to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import queue
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 1_000_000
NETNS_ENV = "JINGLEFS_BENCH_NETNS"
#: An extra address on lo inside the namespace: aioice skips 127.0.0.1 when gathering.
NETNS_EXTRA_ADDR = "10.203.0.1"
#: Peak RSS target of --memory-check-gb (MB).
RSS_TARGET_MB = 150.0


# ================================================================== worker (child process)


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_self_kib() -> int:
    """Peak RSS of this process (KiB): VmHWM of its own address space.

    Not ``ru_maxrss``: Linux carries the parent's high-water mark over fork/vfork + exec,
    so a child of a 100 MB parent would report at least 100 MB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _stdin_line() -> dict[str, Any]:
    raw = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not raw:
        raise SystemExit("the parent went away")
    msg: dict[str, Any] = json.loads(raw)
    return msg


async def _worker_receive(client: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    from jinglefs.events import Completed, Failed, Progress, TransportSelected, Verified

    dest = Path(cfg["dest"])
    offers = client.offers()
    offer = await anext(offers)
    c0, t0 = _cpu_self(), time.perf_counter()
    out: dict[str, Any] = {"ok": False, "error": "", "path": None, "ttfb": None}
    first: float | None = None
    verified_at: float | None = None
    final: str | None = None
    try:
        [handle] = await offer.accept(dest)
        async for event in handle.events():
            now = time.perf_counter()
            if isinstance(event, TransportSelected):
                out["path"] = event.path.value
                out["protection"] = event.protection.value
            elif isinstance(event, Progress) and first is None and event.done > 0:
                first = now
            elif isinstance(event, Verified):
                verified_at = now
            elif isinstance(event, Completed):
                final = event.path
                out["verified"] = event.verified
                if verified_at is None:
                    verified_at = now
            elif isinstance(event, Failed):
                out["error"] = f"{event.error}: {event.reason}"
    except Exception as e:  # noqa: BLE001 - reported to the parent as a failed rep
        out["error"] = f"receiver: {e!r}"
    end = verified_at if verified_at is not None else time.perf_counter()
    out.update(seconds=end - t0, cpu=_cpu_self() - c0)
    if first is not None:
        out.update(ttfb=first - t0, data_seconds=end - first)
    if final is not None:
        # The independent check, after the clock stopped: hash what landed on disk.
        digest = hashlib.sha256()
        with open(final, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        out["sha256"] = digest.hexdigest()
        out["bytes"] = os.path.getsize(final)
        os.unlink(final)
        out["ok"] = not out["error"]
    out["rss_kib"] = _rss_self_kib()
    return out


async def _worker_send(client: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    go = await _stdin_line()
    if cfg.get("jet"):
        from jinglefs.jet.protocol import peer_takes_jet

        async def peer_has_jet() -> None:  # the receiver's new caps (use_envelope)
            while not peer_takes_jet(await client.connection.features(go["peer"])):
                await asyncio.sleep(0.05)
        await asyncio.wait_for(peer_has_jet(), 30)
    c0, t0 = _cpu_self(), time.perf_counter()
    out: dict[str, Any] = {"ok": False, "error": "", "path": None}
    try:
        [handle] = await client.send_files(go["peer"], [Path(go["file"])],
                                           transport=go["transport"])
        await handle.wait()
        out["ok"] = True
        out["path"] = handle.path.value if handle.path is not None else None
    except Exception as e:  # noqa: BLE001 - reported to the parent as a failed rep
        out["error"] = f"sender: {e!r}"
    out.update(seconds=time.perf_counter() - t0, cpu=_cpu_self() - c0, rss_kib=_rss_self_kib())
    return out


async def _worker(cfg: dict[str, Any]) -> None:
    from jinglefs.api import Account, Settings
    from jinglefs.client import connect

    settings: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                                for k, v in cfg["settings"].items()}
    client = await connect(Account(**cfg["account"]), Settings(**settings))
    try:
        if cfg.get("jet") and client.envelope is None:
            # Without jinglefs' OMEMO set up, a stand-in that carries the key in clear:
            # the key travels once per file, so the stream costs are the same.
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.jet.envelopes import ClearEnvelope

            await client.use_envelope(ClearEnvelope())
        _emit({"ready": True, "jid": client.jid, "factories": sorted(client.factories)})
        if cfg["role"] == "recv":
            result = await _worker_receive(client, cfg)
        else:
            result = await _worker_send(client, cfg)
        _emit({"result": result})
        await _stdin_line()  # "bye": both sides are done, logging out is safe now
    finally:
        await client.aclose()


def worker_main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = json.loads(sys.stdin.readline())
    asyncio.run(_worker(cfg))
    return 0


# ================================================================== parent: rows and samples


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str
    size_kind: str  # "tcp", "ibb" or "ice": which --*-size-mb applies
    #: what the row's two processes do (the "does" column); {ibb_window} and {ibb_block}
    #: are jinglefs' IBB window and block size
    does: str
    baseline: str | None = None  # key of the baseline row (jinglefs rows only)
    #: a row shown for context only: no ratio, not a baseline
    reference: bool = False
    transport: str | None = None  # jinglefs rows: the forced transport
    settings: tuple[tuple[str, Any], ...] = ()  # both sides' Settings overrides
    expect_path: str | None = None  # PathKind value the transfer must take
    #: baselines: what the sha-256 column says when a rep succeeded
    check: str = "ok"
    #: jinglefs rows: both sides have a JET key envelope: the file travels encrypted
    jet: bool = False

    @property
    def jinglefs(self) -> bool:
        return self.transport is not None


#: The file work every row does, jinglefs or baseline.
_WORK = "read + sha-256 → {via} → sha-256 + write + fsync; {check}"
_JINGLE = "Jingle (XEP-0234) set-up, then " + _WORK.format(
    via="{via}", check="XEP-0234 §8.2 checksum")

ROWS: tuple[RowSpec, ...] = (
    RowSpec("raw-tcp", "raw asyncio TCP (baseline)", "tcp",
            _WORK.format(via="loopback TCP", check="digest after the data"),
            check="ok (socks5.py)"),
    RowSpec("s5b", "jinglefs S5B direct", "tcp",
            _JINGLE.format(via="XEP-0065 direct connection"),
            baseline="raw-tcp", transport="s5b", expect_path="s5b-direct"),
    RowSpec("auto", "jinglefs --transport auto, directly reachable pair", "tcp",
            "Jingle set-up, ICE offer whose answer shows a direct path, transport-replace "
            "to XEP-0065 direct, then " + _WORK.format(via="XEP-0065 direct connection",
                                                       check="XEP-0234 §8.2 checksum"),
            baseline="s5b", transport="auto",
            settings=(("ice_host_addresses", ("127.0.0.1",)),), expect_path="s5b-direct"),
    RowSpec("s5b-conv", "S5B direct, jinglefs → Conversations-shaped peer", "tcp",
            "jinglefs sender (as in s5b) → tests/interop/conversations.py receiver: "
            "XEP-0260 candidates, read + sha-256 + write + fsync, <received/> and "
            "terminate right after the last byte",
            baseline="s5b", check="ok (peer)"),
    RowSpec("raw-proxy", "raw SOCKS5 via proxy65 (baseline)", "tcp",
            _WORK.format(via="SOCKS5 through proxy65, activated over XMPP",
                         check="digest after the data"),
            check="ok (socks5.py)"),
    RowSpec("s5b-proxy", "jinglefs S5B via proxy65", "tcp",
            _JINGLE.format(via="XEP-0065 through proxy65"), baseline="raw-proxy",
            transport="s5b", settings=(("s5b_direct", False),), expect_path="s5b-proxy"),
    RowSpec("ibb-raw", "minimal IBB, same window (baseline)", "ibb",
            _WORK.format(via="XEP-0047 data IQs written raw, {ibb_window} in flight, "
                         "{ibb_block}-byte blocks, each answered",
                         check="digest in one IQ"),
            check="ok (ibb.py)"),
    RowSpec("ibb-saw", "slixmpp IBB stop-and-wait (reference)", "ibb",
            _WORK.format(via="slixmpp xep_0047 data IQs, 1 in flight, 4096-byte blocks",
                         check="digest in one IQ"),
            reference=True, check="ok (ibb.py)"),
    RowSpec("ibb", "jinglefs IBB", "ibb",
            _JINGLE.format(via="XEP-0047 data IQs, {ibb_window} in flight, {ibb_block}-byte "
                           "blocks"),
            baseline="ibb-raw", transport="ibb", expect_path="ibb"),
    RowSpec("s5b-jet", "jinglefs S5B direct, JET encrypted", "tcp",
            _JINGLE.format(via="AES-128-GCM (JET) over XEP-0065 direct connection"),
            baseline="s5b", transport="s5b", expect_path="s5b-direct", jet=True),
    RowSpec("ibb-jet", "jinglefs IBB, JET encrypted", "ibb",
            _JINGLE.format(via="AES-128-GCM (JET) over XEP-0047 data IQs, {ibb_window} in "
                           "flight, {ibb_block}-byte blocks"),
            baseline="ibb", transport="ibb", expect_path="ibb", jet=True),
    RowSpec("ice-aiortc", "bare aiortc data channel (baseline)", "ice",
            _WORK.format(via="aiortc data channel, 64 KiB messages, ≤ 256 KiB buffered",
                         check="digest as a last message"),
            check="ok (ice.py)"),
    RowSpec("ice", "jinglefs ICE host pair", "ice",
            _JINGLE.format(via="aiortc data channel, 64 KiB messages, ≤ 256 KiB buffered, "
                           "delayed SACK"),
            baseline="ice-aiortc", transport="ice",
            settings=(("ice_host_addresses", ("127.0.0.1",)), ("ice_backend", "aiortc")),
            expect_path="ice-direct"),
    RowSpec("ice-ldc", "bare libdatachannel data channel (baseline)", "ice",
            _WORK.format(via="libdatachannel data channel, 64 KiB messages, sent while "
                         "libdatachannel queues nothing", check="digest as a last message"),
            check="ok (ice.py)"),
    RowSpec("ice-native", "jinglefs ICE host pair, native", "ice",
            _JINGLE.format(via="libdatachannel data channel (libjuice, OpenSSL DTLS, "
                           "usrsctp), 64 KiB messages"),
            baseline="ice-ldc", transport="ice",
            settings=(("ice_host_addresses", ("127.0.0.1",)), ("ice_backend", "native")),
            expect_path="ice-direct"),
)
#: The two jinglefs ICE rows compared in the report (same work, two implementations).
ICE_PAIR = ("ice-native", "ice")
BY_KEY = {r.key: r for r in ROWS}


@dataclass
class Sample:
    size: int
    ok: bool = True
    error: str = ""
    mbps: float = math.nan
    data_mbps: float | None = None
    ttfb: float | None = None  # seconds
    cpu_send: float | None = None  # CPU seconds over the transfer
    cpu_recv: float | None = None
    cpu_server: float | None = None
    rss_send: float | None = None  # MB
    rss_recv: float | None = None
    path: str | None = None


@dataclass
class Context:
    work: Path
    server: Any  # tests.servers.prosody.ProsodyServer
    sizes: dict[str, int]
    files: dict[int, tuple[Path, str]] = field(default_factory=dict)  # size -> (path, sha)
    counter: int = 0

    def file(self, size: int) -> tuple[Path, str]:
        if size not in self.files:
            self.files[size] = make_file(self.work / f"src-{size}.bin", size)
        return self.files[size]

    def server_cpu(self) -> float | None:
        pid = self.server.pid
        if pid is None:
            return None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> tuple[Path, str]:
    """A file of ``size`` random bytes, and its sha-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 16 * 1024 * 1024))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return path, digest.hexdigest()


def availability() -> dict[str, str]:
    """Rows that cannot run with the jinglefs in this tree -> why."""
    from jinglefs.api import Settings
    from jinglefs.ladder import LADDER

    kinds = {r.kind for r in LADDER}
    fields = {f.name for f in dataclasses.fields(Settings)}
    missing: dict[str, str] = {}
    if "s5b" not in kinds:
        missing["s5b"] = missing["s5b-proxy"] = "not available: jinglefs has no S5B negotiator"
    elif "s5b_direct" not in fields:
        missing["s5b-proxy"] = ("not available: Settings has no s5b_direct switch, so the "
                                "proxy cannot be forced")
    if "ice" not in kinds:
        missing["ice"] = "not available: no ICE negotiator (\"ice\" not in client.factories)"
        missing["ice-native"] = missing["ice"]
    else:
        from jinglefs.ice.backend import native_available, native_missing_reason

        if not native_available():
            missing["ice-native"] = f"not available: {native_missing_reason()}"
    if "ice-native" in missing:
        missing["ice-ldc"] = missing["ice-native"]
    return missing


def settings_for(spec: RowSpec, transport: str) -> dict[str, Any]:
    from jinglefs.api import Settings

    fields = {f.name for f in dataclasses.fields(Settings)}
    wanted = {"transport": transport, **dict(spec.settings)}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in wanted.items()
            if k in fields}


# ------------------------------------------------------------------ jinglefs rows


class Worker:
    """One ``run.py _worker`` process, JSON lines over stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, cfg: dict[str, Any], log: Path) -> Worker:
        with open(log, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "_worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=err, cwd=ROOT)
        worker = cls(proc, log)
        worker.send(cfg)
        return worker

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            rc = await self.proc.wait()
            raise RuntimeError(f"worker exited (rc={rc}): {self.log_tail()}")
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    async def finish(self, timeout: float = 20.0) -> None:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()  # our own child, by its handle
            await self.proc.wait()


async def _results(recv: Worker, send: Worker, timeout: float
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both workers' results.  A sender that failed before its offer left would keep
    the receiver waiting for ever: then the receiver gets a short grace period only."""
    r_task = asyncio.ensure_future(recv.line(timeout))
    s_task = asyncio.ensure_future(send.line(timeout))
    try:
        await asyncio.wait({r_task, s_task}, return_when=asyncio.FIRST_COMPLETED)
        if s_task.done() and not r_task.done() and not s_task.result()["result"]["ok"]:
            done, _ = await asyncio.wait({r_task}, timeout=10)
            if not done:
                r_task.cancel()
                return ({"ok": False, "error": "receiver: no offer arrived"},
                        s_task.result()["result"])
        return (await r_task)["result"], (await s_task)["result"]
    finally:
        for task in (r_task, s_task):
            task.cancel()


async def run_jinglefs(ctx: Context, spec: RowSpec, size: int) -> Sample:
    assert spec.transport is not None
    ctx.counter += 1
    n = ctx.counter
    src, sha = ctx.file(size)
    dest = ctx.work / f"recv-{n}"
    dest.mkdir()
    settings = settings_for(spec, spec.transport)

    def cfg(role: str, user: str) -> dict[str, Any]:
        account = dataclasses.asdict(ctx.server.account(user, resource=f"bench-{role}-{n}"))
        return {"role": role, "account": account, "settings": settings, "dest": str(dest),
                "jet": spec.jet}

    sample = Sample(size)
    workers: list[Worker] = []
    timeout = 120.0 + size / MB  # >= 1 MB/s, however loaded the machine is
    try:
        recv = await Worker.start(cfg("recv", "bob"), ctx.work / f"worker-{n}-recv.log")
        workers.append(recv)
        send = await Worker.start(cfg("send", "alice"), ctx.work / f"worker-{n}-send.log")
        workers.append(send)
        ready = await recv.line(60)
        await send.line(60)
        p0 = ctx.server_cpu()
        send.send({"peer": ready["jid"], "file": str(src), "transport": spec.transport})
        r, s = await _results(recv, send, timeout)
        p1 = ctx.server_cpu()
        for w in workers:
            w.send({"bye": True})
    except Exception as e:  # noqa: BLE001 - the row shows it as FAILED
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                w.proc.kill()
        tails = "; ".join(w.log_tail(2) for w in workers if w.log_tail(2))
        sample.ok, sample.error = False, f"{e!r} {tails}".strip()
        return sample
    finally:
        for w in workers:
            await w.finish()
        shutil.rmtree(dest, ignore_errors=True)
    sample.cpu_send, sample.cpu_recv = s.get("cpu"), r.get("cpu")
    if "rss_kib" in s:
        sample.rss_send = s["rss_kib"] * 1024 / MB
    if "rss_kib" in r:
        sample.rss_recv = r["rss_kib"] * 1024 / MB
    if p0 is not None and p1 is not None:
        sample.cpu_server = p1 - p0
    sample.path = r.get("path") or s.get("path")
    sample.ttfb = r.get("ttfb")
    if r.get("seconds"):
        sample.mbps = size / r["seconds"] / MB
    if r.get("data_seconds"):
        sample.data_mbps = size / r["data_seconds"] / MB
    errors = [x for x in (r.get("error"), s.get("error")) if x]
    if not r.get("ok") or not s.get("ok"):
        sample.ok, sample.error = False, "; ".join(errors) or "the transfer did not complete"
    elif r.get("sha256") != sha or r.get("bytes") != size:
        sample.ok, sample.error = False, (f"sha-256 mismatch ({r.get('bytes')} of {size} bytes "
                                          "arrived)")
    elif spec.expect_path and sample.path != spec.expect_path:
        sample.ok, sample.error = False, f"took path {sample.path}, not {spec.expect_path}"
    elif spec.jet and r.get("protection") != "encrypted (OMEMO)":
        sample.ok, sample.error = False, f"not encrypted with JET: {r.get('protection')}"
    return sample


# ------------------------------------------------------------------ baselines


async def run_raw_tcp(ctx: Context, size: int) -> Sample:
    from benchmarks import socks5 as s5bench

    src, _ = ctx.file(size)
    out = ctx.work / "raw-out.bin"
    try:
        res = await asyncio.to_thread(s5bench.run_direct, "raw", src, out, size)
    except (Exception, SystemExit) as e:  # run_direct exits on a corrupted transfer
        return Sample(size, ok=False, error=f"{e!r}")
    finally:
        out.unlink(missing_ok=True)
    return _from_socks5_result(res, size)


async def run_raw_proxy(ctx: Context, size: int) -> Sample:
    from benchmarks import socks5 as s5bench

    src, _ = ctx.file(size)
    out = ctx.work / "raw-out.bin"
    p0 = ctx.server_cpu()
    try:
        results = await s5bench._proxy_run(ctx.server, ["raw"], src, out, size, 1)
    except (Exception, SystemExit) as e:
        return Sample(size, ok=False, error=f"{e!r}")
    finally:
        out.unlink(missing_ok=True)
    sample = _from_socks5_result(results["raw"][0], size)
    p1 = ctx.server_cpu()
    if p0 is not None and p1 is not None:
        sample.cpu_server = p1 - p0  # includes two logins and the activation
    return sample


async def run_s5b_conversations(ctx: Context, size: int) -> Sample:
    """jinglefs sends (the s5b row's sender worker) to the Conversations-shaped scripted
    peer of tests/interop/conversations.py in this process, which receives over SOCKS5
    direct, hashes, writes and fsyncs like the jinglefs receiver; timed from the offer's
    arrival to the fsync, like the jinglefs rows' receiver."""
    from tests.interop import conversations as conv

    ctx.counter += 1
    n = ctx.counter
    src, sha = ctx.file(size)
    out_path = ctx.work / f"conv-out-{n}.bin"
    # plaintext: the peer speaks no JET, and bob's OMEMO device (from the s5b row's
    # receiver) would otherwise make jinglefs encrypt to it
    settings = {**settings_for(BY_KEY["s5b"], "s5b"), "encryption": "off"}
    cfg = {"role": "send", "settings": settings, "dest": "",
           "jet": False,
           "account": dataclasses.asdict(ctx.server.account("alice", f"bench-send-{n}"))}
    sample = Sample(size)
    send = await Worker.start(cfg, ctx.work / f"worker-{n}-send.log")
    try:
        async with conv.conversations_peer(ctx.server, "bob", f"bench-conv-{n}") as peer:
            await send.line(60)
            send.send({"peer": peer.jid, "file": str(src), "transport": "s5b"})
            initiate = await peer.next_jingle("session-initiate", timeout=60)
            c0, t0 = _cpu_self(), time.perf_counter()
            digest = hashlib.sha256()
            chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
            with open(out_path, "wb") as f:
                def disk() -> None:  # hash + write off the event loop, as jinglefs does
                    while (chunk := chunks.get()) is not None:
                        digest.update(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                writer = asyncio.ensure_future(asyncio.to_thread(disk))
                try:
                    await asyncio.wait_for(conv.receive_file(peer, initiate,
                                                             sink=chunks.put),
                                           120 + size / MB)
                finally:
                    chunks.put(None)
                    await writer
            seconds, cpu = time.perf_counter() - t0, _cpu_self() - c0
            s = (await send.line(60))["result"]
        send.send({"bye": True})
    except Exception as e:  # noqa: BLE001 - the row shows it as FAILED
        with contextlib.suppress(ProcessLookupError):
            send.proc.kill()
        return Sample(size, ok=False, error=f"{e!r} {send.log_tail(2)}".strip())
    finally:
        await send.finish()
        out_path.unlink(missing_ok=True)
    sample.mbps, sample.cpu_recv, sample.cpu_send = size / seconds / MB, cpu, s.get("cpu")
    sample.path = s.get("path")
    if not s.get("ok"):
        sample.ok, sample.error = False, s.get("error") or "the sender failed"
    elif digest.hexdigest() != sha:
        sample.ok, sample.error = False, "sha-256 mismatch"
    elif sample.path != "s5b-direct":
        sample.ok, sample.error = False, f"took path {sample.path}, not s5b-direct"
    return sample


def _from_socks5_result(res: Any, size: int) -> Sample:
    # Side.rss_kib is ru_maxrss, which includes this parent's peak (carried over exec):
    # not shown.
    return Sample(size, mbps=res.mbps, cpu_send=res.send.cpu, cpu_recv=res.recv.cpu)


def ibb_params() -> tuple[int, int]:
    """jinglefs' IBB window (data IQs in flight) and block size, as a transfer uses them:
    the ladder builds ``IbbService(xmpp)`` with its default window; the block size we offer
    is ``Settings.ibb_block_size``."""
    import inspect

    from jinglefs.api import Settings
    from jinglefs.ibb.service import IbbService

    window = inspect.signature(IbbService).parameters["window"].default
    return int(window), Settings().ibb_block_size


async def _run_ibb(ctx: Context, size: int, mode: str) -> Sample:
    from benchmarks import ibb as ibbbench

    ctx.counter += 1
    src, _ = ctx.file(size)
    out = ctx.work / "ibb-out.bin"
    try:
        row = await ibbbench._one(ctx.server, mode, size, ctx.counter, str(src), str(out))
    except Exception as e:  # noqa: BLE001
        return Sample(size, ok=False, error=f"{e!r}")
    return _from_shares(row, size, server_key="cpu_prosody")


async def run_ibb_raw(ctx: Context, size: int) -> Sample:
    window, block = ibb_params()
    return await _run_ibb(ctx, size, f"raw-w{window}-{block}")


async def run_ibb_saw(ctx: Context, size: int) -> Sample:
    return await _run_ibb(ctx, size, "slixmpp")


async def run_ice_aiortc(ctx: Context, size: int) -> Sample:
    return await _run_ice_bare(ctx, size, "bare-io")


async def run_ice_ldc(ctx: Context, size: int) -> Sample:
    return await _run_ice_bare(ctx, size, "ldc-io")


async def _run_ice_bare(ctx: Context, size: int, mode: str) -> Sample:
    from benchmarks import ice as icebench

    src, _ = ctx.file(size)
    out = ctx.work / "ice-out.bin"
    try:
        row = await icebench.one_run(mode, "asyncio", size, str(src), str(out))
    except Exception as e:  # noqa: BLE001
        return Sample(size, ok=False, error=f"{e!r}")
    finally:
        out.unlink(missing_ok=True)
    return _from_shares(row, size)


def _from_shares(row: dict[str, float], size: int, server_key: str | None = None) -> Sample:
    """ibb.py / ice.py report CPU as a share of one core over the receiver's time."""
    seconds = size / (row["mbps"] * MB)
    sample = Sample(size, mbps=row["mbps"], cpu_send=row["cpu_send"] * seconds,
                    cpu_recv=row["cpu_recv"] * seconds)
    if server_key:
        sample.cpu_server = row[server_key] * seconds
    return sample


BASELINES: dict[str, Callable[[Context, int], Any]] = {
    "raw-tcp": run_raw_tcp,
    "raw-proxy": run_raw_proxy,
    "ibb-raw": run_ibb_raw,
    "ibb-saw": run_ibb_saw,
    "ice-aiortc": run_ice_aiortc,
    "ice-ldc": run_ice_ldc,
    "s5b-conv": run_s5b_conversations,
}


async def run_row(ctx: Context, spec: RowSpec) -> Sample:
    size = ctx.sizes[spec.size_kind]
    if spec.jinglefs:
        return await run_jinglefs(ctx, spec, size)
    sample: Sample = await BASELINES[spec.key](ctx, size)
    return sample


# ================================================================== parent: report


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    med = _med(values)
    if len(values) == 1:
        return _fmt(med)
    return f"{_fmt(med)} ({_fmt(min(values))}–{_fmt(max(values))})"


def _per_gb(samples: list[Sample], attr: str) -> str:
    values = [getattr(s, attr) / (s.size / 1e9) for s in samples if getattr(s, attr) is not None]
    return f"{_med(values):.2f}" if values else "–"


def _peak(samples: list[Sample], attr: str) -> str:
    values = [getattr(s, attr) for s in samples if getattr(s, attr) is not None]
    return f"{max(values):.0f}" if values else "–"


HEADER = ("| path | does | MB | MB/s | MB/s data | 1st byte ms "
          "| CPU s/GB send / recv / server | peak RSS MB send / recv | sha-256 | vs baseline |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def table(specs: list[RowSpec], results: dict[str, list[Sample]],
          missing: dict[str, str]) -> str:
    lines = [HEADER]
    window, block = ibb_params()
    medians: dict[str, float] = {}
    for spec in specs:
        good = [s for s in results.get(spec.key, []) if s.ok]
        if good:
            medians[spec.key] = _med([s.mbps for s in good])
    for spec in specs:
        head = f"| {spec.label} | {spec.does.format(ibb_window=window, ibb_block=block)}"
        if spec.key in missing:
            lines.append(f"{head} | | {missing[spec.key]} | | | | | | |")
            continue
        samples = results.get(spec.key, [])
        good = [s for s in samples if s.ok]
        bad = [s for s in samples if not s.ok]
        if not samples:
            lines.append(f"{head} | | did not run | | | | | | |")
            continue
        size = samples[0].size / MB
        check = spec.check
        if bad:
            check = f"**FAILED** {len(bad)}/{len(samples)}: {bad[0].error[:160]}"
        if not good:
            lines.append(f"{head} | {size:.0f} | – | – | – | – | – | {check} | – |")
            continue
        ratio = "reference" if spec.reference else "baseline"
        if spec.baseline:
            base = medians.get(spec.baseline)
            ratio = f"{medians[spec.key] / base:.0%} of {spec.baseline}" if base else "–"
        data = _cell([s.data_mbps for s in good if s.data_mbps]) if spec.jinglefs else "–"
        ttfb = [s.ttfb * 1000 for s in good if s.ttfb is not None]
        cpu = " / ".join(_per_gb(good, a) for a in ("cpu_send", "cpu_recv", "cpu_server"))
        rss = " / ".join(_peak(good, a) for a in ("rss_send", "rss_recv"))
        lines.append(f"{head} | {size:.0f} | {_cell([s.mbps for s in good])} | {data} "
                     f"| {_cell(ttfb)} | {cpu} | {rss} | {check} | {ratio} |")
    return "\n".join(lines)


def ice_comparison(results: dict[str, list[Sample]]) -> str:
    """The two jinglefs ICE implementations side by side (same work, same run)."""
    native, aiortc = ([s for s in results.get(k, []) if s.ok] for k in ICE_PAIR)
    if not native or not aiortc:
        return ""
    ratio = _med([s.mbps for s in native]) / _med([s.mbps for s in aiortc])
    return (f"ICE, native / aiortc (jinglefs rows, the same work): {ratio:.1f}× the MB/s; "
            f"CPU s/GB send {_per_gb(native, 'cpu_send')} vs {_per_gb(aiortc, 'cpu_send')}, "
            f"receive {_per_gb(native, 'cpu_recv')} vs {_per_gb(aiortc, 'cpu_recv')}.\n\n")


NOTES = """\
- MB = 10^6 bytes. Cells: median (min–max) over the reps; peak RSS is the maximum.
- Same work on both sides of every ratio ("does"): the sender reads the file and hashes it
  with sha-256; the receiver hashes, writes (page cache recycled every 8 MiB, as jinglefs)
  and fsyncs; the sender's digest then reaches the receiver, which compares it. A baseline
  is the same protocol done minimally: raw TCP, raw SOCKS5 through the same proxy65, IBB
  with jinglefs' window and block size (raw XML IQs, each answered), a bare aiortc data
  channel with jinglefs' message size and buffer limit, a bare libdatachannel channel with
  its message size for the native ICE row. So "vs baseline" is jinglefs'
  overhead (Jingle negotiation, its stream and file layers) over that. The aiortc baseline acks
  every SCTP packet (aiortc's default); jinglefs acks every second one (RFC 4960 §6.2).
  The IBB stop-and-wait row is a reference only (slixmpp's own sender): no ratio.
- MB/s: jinglefs rows from `offer.accept()` on the receiver to the `Verified` event (S5B/ICE/IBB
  set-up, data, fsync, checksum); baselines have no set-up: from connected (IBB: `<open/>`) to
  the digest compared after the fsync. "data": jinglefs from the first received byte to
  `Verified`.
- CPU s/GB: user+system seconds of each process over the transfer, per GB moved; "server" is
  Prosody (for raw-proxy it includes two logins). Baselines from ibb.py/ice.py report a CPU
  share, converted with the receiver's time.
- sha-256: the jinglefs receiver hashes the file it ends with and it must equal the sender's
  file; a baseline's receiver must have matched the sender's digest, and its own digest must
  equal the sender's. A mismatch, an error, or a path other than the one asked for marks the
  row FAILED.
- vs baseline: ratio of the MB/s medians of this run. The machine is shared: only compare
  rows of one run."""


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _run(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def machine_lines() -> list[str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    if _run(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " + uncommitted changes"
    prosody = _run(["dpkg-query", "-W", "-f", "${Version}", "prosody"]) or "unknown"
    versions = ", ".join(f"{d} {_version(d)}" for d in
                         ("jinglefs", "slixmpp", "aioice", "aiortc", "aiolibdatachannel",
                          "cryptography", "psutil"))
    return [
        f"- machine: nproc {os.cpu_count()}, CPU \"{model}\", {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"- versions: {versions}, Prosody {prosody}; git {commit}",
    ]


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def write_report(out: Path | None, title: str, head: list[str], body: str) -> None:
    text = "\n".join([f"# {title}", "", *head, "", body, ""])
    print("\n" + text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"written to {out}")


# ================================================================== parent: main


def parse_only(only: str | None, missing: dict[str, str]) -> list[RowSpec]:
    if not only:
        return list(ROWS)
    keys = {k.strip() for k in only.split(",") if k.strip()}
    unknown = keys - set(BY_KEY)
    if unknown:
        raise SystemExit(f"--only: unknown rows {sorted(unknown)} (have: {', '.join(BY_KEY)})")
    for key in list(keys):  # a jinglefs row brings its baseline along
        base = BY_KEY[key].baseline
        if base:
            keys.add(base)
    return [r for r in ROWS if r.key in keys]


async def bench(args: argparse.Namespace, work: Path) -> int:
    from tests.servers.prosody import ProsodyServer

    load_start = _load()
    started = datetime.now(UTC)
    missing = availability()
    memory_check = args.memory_check_gb is not None
    if memory_check:
        specs = [BY_KEY[k.strip()] for k in args.memory_check_rows.split(",") if k.strip()]
        big = int(args.memory_check_gb * 1e9)
        sizes = {"tcp": big, "ice": big}
        reps = 1
    else:
        specs = parse_only(args.only, missing)
        sizes = {"tcp": int(args.size_mb * MB), "ibb": int(args.ibb_size_mb * MB),
                 "ice": int(args.ice_size_mb * MB)}
        reps = args.reps
        # No jinglefs ICE: its baseline alone is not worth the time.
        if "ice" in missing:
            specs = [s for s in specs if s.key != "ice-aiortc"]
    runnable = [s for s in specs if s.key not in missing]
    server = ProsodyServer(work / "xmpp", proxy65=True)
    server.add_account("alice", roster=["bob"])
    server.add_account("bob")
    results: dict[str, list[Sample]] = {s.key: [] for s in runnable}
    with server:
        ctx = Context(work=work, server=server, sizes=sizes)
        for spec in runnable:  # make the files before the clock matters
            ctx.file(sizes[spec.size_kind])
        for rep in range(reps):
            for spec in runnable:  # interleaved: load changes hit every row alike
                sample = await run_row(ctx, spec)
                results[spec.key].append(sample)
                status = "ok" if sample.ok else f"FAILED: {sample.error}"
                print(f"rep {rep + 1}/{reps} {spec.key:>10}: {sample.mbps:8.1f} MB/s  "
                      f"path={sample.path or '-'}  {status}", file=sys.stderr, flush=True)
    load_end = _load()
    netns = ("fresh network namespace (`unshare -n`, only lo)"
             if os.environ.get(NETNS_ENV) == "1" else "host network namespace (loopback)")
    head = [
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        *machine_lines(),
        f"- network: {netns}; Prosody 127.0.0.1 with proxy65, no mod_limits",
        f"- load average 1/5/15 min: start {load_start}, end {load_end}",
    ]
    failed = any(not s.ok for samples in results.values() for s in samples)
    if memory_check:
        names = ", ".join(s.label for s in specs)
        head.append(f"- one {sizes['tcp'] / 1e9:g} GB file over each of: {names}; target: "
                    f"peak RSS < {RSS_TARGET_MB:.0f} MB on each side")
        body = table(specs, results, missing)
        for spec in specs:
            [sample] = results.get(spec.key) or [Sample(sizes["tcp"], ok=False,
                                                        error="did not run")]
            if spec.key in missing or not (sample.ok and sample.rss_send and sample.rss_recv):
                body += f"\n\n{spec.label}: no peak RSS ({missing.get(spec.key, 'failed')})."
                failed = True
                continue
            worst = max(sample.rss_send, sample.rss_recv)
            verdict = "within" if worst < RSS_TARGET_MB else "OVER"
            failed = failed or worst >= RSS_TARGET_MB
            body += (f"\n\n{spec.label}: peak RSS sender {sample.rss_send:.0f} MB, receiver "
                     f"{sample.rss_recv:.0f} MB: {verdict} the {RSS_TARGET_MB:.0f} MB target.")
        write_report(args.out, "jinglefs memory check", head, body)
    else:
        head.append(f"- sizes: TCP/S5B {sizes['tcp'] / MB:g} MB, IBB {sizes['ibb'] / MB:g} MB, "
                    f"ICE {sizes['ice'] / MB:g} MB; {reps} reps, rows interleaved per rep")
        body = table(specs, results, missing) + "\n\n" + ice_comparison(results) + NOTES
        write_report(args.out, "jinglefs benchmarks", head, body)
    return 1 if failed else 0


def reexec_in_netns(mode: str) -> int | None:
    """Run this command again inside ``unshare -n``; None when that is not possible."""
    if mode == "off" or os.environ.get(NETNS_ENV) == "1":
        return None
    usable = bool(shutil.which("unshare") and shutil.which("ip")) and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0
    if not usable:
        if mode == "on":
            raise SystemExit("--netns on: `unshare -n` is not usable here")
        print("note: `unshare -n` not usable; running in the host network namespace",
              file=sys.stderr)
        return None
    setup = (f"ip link set lo up && ip addr add {NETNS_EXTRA_ADDR}/32 dev lo && "
             'exec "$0" "$@"')
    cmd = ["unshare", "-n", "sh", "-c", setup, sys.executable, sys.argv[0],
           *sys.argv[1:]]
    return subprocess.call(cmd, env={**os.environ, NETNS_ENV: "1"})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        return worker_main()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200.0,
                        help="file size for TCP/S5B rows (default %(default)s)")
    parser.add_argument("--ibb-size-mb", type=float, default=30.0,
                        help="file size for IBB rows (default %(default)s)")
    parser.add_argument("--ice-size-mb", type=float, default=50.0,
                        help="file size for ICE rows (default %(default)s)")
    parser.add_argument("--reps", type=int, default=3, help="default %(default)s")
    parser.add_argument("--only", help=f"comma-separated rows: {', '.join(BY_KEY)} "
                        "(a jinglefs row brings its baseline)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown report (default benchmarks/results/latest.md, or "
                        "memory-check.md with --memory-check-gb)")
    parser.add_argument("--memory-check-gb", type=float, default=None, metavar="GB",
                        help="instead: send one GB-sized file over each --memory-check-rows "
                        "row, report peak RSS")
    parser.add_argument("--memory-check-rows", default="s5b,ice-native", metavar="ROWS",
                        help="rows of --memory-check-gb (default %(default)s; ice-native "
                        "needs CPython >= 3.12)")
    parser.add_argument("--netns", choices=("auto", "on", "off"), default="auto",
                        help="run everything inside `unshare -n` (default %(default)s)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    bad = {k.strip() for k in args.memory_check_rows.split(",")} - {
        r.key for r in ROWS if r.jinglefs}
    if bad:
        parser.error(f"--memory-check-rows: not jinglefs rows: {sorted(bad)}")
    if args.out is None:
        name = "memory-check.md" if args.memory_check_gb is not None else "latest.md"
        args.out = ROOT / "benchmarks" / "results" / name
    rc = reexec_in_netns(args.netns)
    if rc is not None:
        return rc
    work = Path(tempfile.mkdtemp(prefix="jfs-bench-run-", dir=args.dir))
    try:
        return asyncio.run(bench(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
