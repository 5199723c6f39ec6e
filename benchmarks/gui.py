"""Transfer throughput with the desktop app running, against the headless CLI, in one run.

    python benchmarks/gui.py                  # 200 MB, 1 warm-up + 5 rounds of (GUI, CLI)
    python benchmarks/gui.py --mb 100 --reps 1 --warmup 0 --transport s5b

Everything is real and on loopback: a throwaway Prosody (tests/servers/prosody.py), and
Bob, a headless jinglefs client in a process of his own that accepts every offer, writes
the file and checks its sha-256.  Alice sends the same file to him, alternately

* ``gui``: from the desktop app (main window + bridge on a qasync loop, offscreen, in this
  process), started like a drop on Bob's row (``MainWindow.send_items``), with the
  transfers panel updating on every progress event;
* ``cli``: ``python -m jinglefs send --transport T FILE bob@...`` as its own process.

Both use the same forced transport (default ``s5b``, direct on loopback), and the receiver
reports which path was taken, so both rows move bytes the same way.

Printed per row: MB/s (10^6 B/s) as the receiver measured it, from accepting the offer to
the verified file on disk (the same interval for both senders, so the CLI's interpreter
start and login are not counted); the sender's wall time (GUI: drop -> row done; CLI:
process start -> exit); and the sender's CPU seconds.  The ratio compares the medians
(target: the GUI within 10% of the CLI).  A warm-up round (not counted) lets the app
import what it loads on its first send, as the CLI does before it logs in.  The machine is
shared: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jinglefs.api import Account, Settings, Timeouts  # noqa: E402
from tests.ui.ui_package import load_ui_package  # noqa: E402

TIMEOUTS = Timeouts(connect=20, accept=60, iq=20, transport=20, stall=30, peer_gone=5)
CHUNK = 1024 * 1024


@dataclass
class Received:
    """What the receiver measured for one file."""

    name: str
    size: int
    seconds: float
    path: str
    verified: bool
    error: str = ""


@dataclass
class Row:
    kind: str  # gui | cli
    mbps: float  # receiver-measured
    wall: float  # sender-side
    cpu: float  # sender process user+system seconds
    path: str


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# -- the receiver (its own process) --------------------------------------------------------

def receiver_main(account: Account, transport: str, inbox: str, conn: Connection) -> None:
    """Bob: accept every offer into ``inbox``; report each file; delete it afterwards."""
    from jinglefs.client import connect
    from jinglefs.events import Completed, Failed, TransportSelected

    async def main() -> None:
        client = await connect(account, Settings(transport=transport, timeouts=TIMEOUTS))
        conn.send(("ready", client.jid))
        try:
            async for offer in client.offers():
                start = time.perf_counter()
                [transfer] = await offer.accept(Path(inbox))
                path, result = "", None
                async for ev in transfer.events():
                    if isinstance(ev, TransportSelected):
                        path = ev.path.value
                    elif isinstance(ev, Completed):
                        result = Received(transfer.file.name, ev.size,
                                          time.perf_counter() - start, path, ev.verified)
                        Path(ev.path).unlink()
                    elif isinstance(ev, Failed):
                        result = Received(transfer.file.name, 0, time.perf_counter() - start,
                                          path, False, ev.reason)
                for leftover in Path(inbox).iterdir():
                    leftover.unlink()
                conn.send(("done", result))
        finally:
            await client.aclose()

    asyncio.run(main())


class Receiver:
    def __init__(self, account: Account, transport: str, inbox: Path) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=receiver_main, args=(account, transport, str(inbox),
                                                            child), daemon=True)
        self.proc.start()
        kind, self.jid = self._recv(60)
        assert kind == "ready", kind

    def _recv(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the receiver said nothing for {timeout:.0f} s")
        return self.conn.recv()

    def result(self, timeout: float = 600) -> Received:
        kind, result = self._recv(timeout)
        assert kind == "done" and result is not None
        if result.error or not result.verified:
            raise RuntimeError(f"the receiver did not get a verified file: {result}")
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


# -- the GUI sender (this process) ------------------------------------------------------------

class OneAccount:
    """The app's AccountStore, holding Alice's stored account and password."""

    def __init__(self, account: Account, state: Path) -> None:
        self.account = account
        self.state = state

    def load(self) -> list[Any]:
        from jinglefs_ui.accounts import AccountInfo

        a = self.account
        return [AccountInfo(jid=a.jid, server=a.server, port=a.port, ca_file=a.ca_file,
                            allow_plaintext=a.allow_plaintext)]

    def save(self, info: object) -> None:
        pass

    def set_password(self, jid: str, password: str) -> bool:
        return False

    def password(self, jid: str) -> str | None:
        return self.account.password

    def state_dir(self) -> Path:
        return self.state

    def downloads_dir(self) -> Path:
        return self.state / "downloads"


class GuiSender:
    """Alice's desktop app, offscreen, logged in with the real client."""

    def __init__(self, account: Account, transport: str, state: Path) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        load_ui_package()
        import qasync
        from PySide6.QtWidgets import QApplication

        from jinglefs_ui.bridge import ClientBridge, default_connect
        from jinglefs_ui.qtfix import protect_bools
        from jinglefs_ui.storage import History, Preferences
        from jinglefs_ui.widgets.main_window import MainWindow

        protect_bools()
        self.app = QApplication.instance() or QApplication(["jinglefs-gui"])
        self.loop = qasync.QEventLoop(self.app)
        asyncio.set_event_loop(self.loop)
        self.bridge = ClientBridge(default_connect,
                                   settings=Settings(transport=transport, timeouts=TIMEOUTS))
        self.window = MainWindow(self.bridge, OneAccount(account, state),
                                 Preferences(path=state / "prefs.json"),
                                 History(state / "history.json"))
        self.window.show()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def login(self, peer: str) -> None:
        from jinglefs_ui.bridge import ONLINE
        from jinglefs_ui.models import CAN_RECEIVE_ROLE

        await self.window.start()
        deadline = time.monotonic() + 60
        while True:
            idx = self.window.contacts_model.find(peer)
            if self.bridge.state == ONLINE and idx.isValid() and idx.data(CAN_RECEIVE_ROLE):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app is {self.bridge.state}; {peer} not receivable")
            await asyncio.sleep(0.05)

    async def send(self, peer: str, path: Path) -> tuple[float, float]:
        """Send like a drop on ``peer``'s row; (wall seconds, CPU seconds) until the row is done."""
        from jinglefs.events import Direction
        from jinglefs_ui.files import DroppedItem

        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def finished(rec: Any) -> None:
            if rec.direction is Direction.SEND and not done.done():
                done.set_result(rec)

        self.bridge.transferFinished.connect(finished)
        cpu, start = _cpu_self(), time.perf_counter()
        self.window.send_items(peer, True, [DroppedItem(url=path.as_uri(),
                                                        local_path=str(path))])
        rec = await asyncio.wait_for(done, 600)
        wall, cpu = time.perf_counter() - start, _cpu_self() - cpu
        self.bridge.transferFinished.disconnect(finished)
        if not rec.succeeded:
            raise RuntimeError(f"the app's send failed: {rec.status_text()}")
        return wall, cpu

    def close(self) -> None:
        self.run(self.bridge.aclose())
        self.window.hide()
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for t in pending:
            t.cancel()
        self.run(asyncio.gather(*pending, return_exceptions=True))
        gc.collect()  # the old XMPP stream must go while the loop can still take callbacks
        self.loop.close()
        asyncio.set_event_loop(None)


# -- the CLI sender (a process per file) ----------------------------------------------------

def cli_send(account: Account, transport: str, peer: str, path: Path, work: Path
             ) -> tuple[float, float]:
    pw = work / "alice.pw"
    pw.write_text(account.password + "\n")
    pw.chmod(0o600)
    env = dict(os.environ, JINGLEFS_CONFIG_DIR=str(work / "cli-config"),
               JINGLEFS_STATE_DIR=str(work / "cli-state"))
    env.pop("JINGLEFS_PASSWORD", None)
    cmd = [sys.executable, "-m", "jinglefs", "send",
           "--account", f"{account.jid}/{account.resource}",
           "--server", f"{account.server}:{account.port}", "--ca-file", str(account.ca_file),
           "--password-file", str(pw), "--no-input", "--transport", transport, str(path), peer]
    log = work / "cli.log"
    cpu, start = _cpu_children(), time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=f, env=env, cwd=ROOT,
                              stdin=subprocess.DEVNULL, timeout=900)
    wall, cpu = time.perf_counter() - start, _cpu_children() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"jinglefs send exited {proc.returncode}:\n{log.read_text()[-2000:]}")
    return wall, cpu


# -- the run ---------------------------------------------------------------------------------

def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def summary(rows: list[Row], kind: str) -> tuple[float, str]:
    mine = [r for r in rows if r.kind == kind]
    rates = [r.mbps for r in mine]
    med = statistics.median(rates)
    return med, (f"{kind:4} {med:8.1f} MB/s (min {min(rates):.1f}, max {max(rates):.1f}); "
                 f"sender wall {statistics.median(r.wall for r in mine):.2f} s, "
                 f"sender CPU {statistics.median(r.cpu for r in mine):.2f} s; "
                 f"path {', '.join(sorted({r.path for r in mine}))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="file size in 10^6 bytes")
    parser.add_argument("--reps", type=int, default=5, help="rounds of (gui, cli)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds not counted")
    parser.add_argument("--transport", choices=("s5b", "ibb", "auto"), default="s5b")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    args = parser.parse_args(argv)

    from tests.servers.prosody import ProsodyServer

    work = Path(tempfile.mkdtemp(prefix="jfs-bench-gui-", dir=args.dir))
    server = ProsodyServer(work / "prosody")
    server.add_account("alice", roster=["bob"])
    server.add_account("bob")
    receiver: Receiver | None = None
    gui: GuiSender | None = None
    rows: list[Row] = []
    try:
        server.start()
        size = args.mb * 1_000_000
        src = work / "payload.bin"
        make_file(src, size)
        inbox = work / "inbox"
        inbox.mkdir()
        receiver = Receiver(server.account("bob", resource="bench-rx"), args.transport, inbox)
        bob = server.jid("bob")
        gui = GuiSender(server.account("alice", resource="jinglefs"), args.transport,
                        work / "gui-state")
        gui.run(gui.login(bob))
        cli_account = server.account("alice", resource="bench-cli")
        print(f"{args.mb} MB, transport {args.transport}, {args.reps} round(s) after "
              f"{args.warmup} warm-up; "
              f"receiver {receiver.jid}", flush=True)
        for rep in range(-args.warmup, args.reps):
            for kind in ("gui", "cli"):
                if kind == "gui":
                    wall, cpu = gui.run(gui.send(bob, src))
                else:
                    wall, cpu = cli_send(cli_account, args.transport, bob, src, work)
                got = receiver.result()
                assert got.size == size, got
                row = Row(kind, size / got.seconds / 1e6, wall, cpu, got.path)
                if rep >= 0:
                    rows.append(row)
                label = f"round {rep + 1}" if rep >= 0 else "warm-up"
                print(f"  {label:8} {kind}: {row.mbps:7.1f} MB/s  (receiver "
                      f"{got.seconds:.2f} s, sender wall {wall:.2f} s, CPU {cpu:.2f} s, "
                      f"path {got.path})", flush=True)
    finally:
        if gui is not None:
            gui.close()
        if receiver is not None:
            receiver.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    gui_med, gui_line = summary(rows, "gui")
    cli_med, cli_line = summary(rows, "cli")
    print(gui_line)
    print(cli_line)
    ratio = gui_med / cli_med
    verdict = "met" if ratio >= 0.9 else "NOT met"
    print(f"gui/cli = {ratio:.2f} (target: the GUI at least 0.90 of the CLI: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
