"""Throwaway real servers for tests: Prosody (XMPP) and coturn (STUN/TURN) on loopback.

``tests.servers.prosody.ProsodyServer`` and ``tests.servers.coturn.CoturnServer`` build on the
process discipline here: each server runs in its own work directory, on free loopback ports,
and ``stop()`` only ever signals the one process it started (checked by PID *and* start time).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "ManagedServer",
    "ServerError",
    "ServerProcess",
    "free_port",
    "free_udp_tcp_port",
    "log_tail",
    "owns_port",
    "require_binary",
    "tcp_accepts",
]

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server could not be started (the message carries the log tail)."""


def require_binary(name: str, package: str) -> str:
    """Path of *name*, or a ServerError that says how to install it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise ServerError(
            f"'{name}' is not installed; the real-server tests need it. "
            f"Install it with `bash scripts/setup` (or `sudo apt-get install {package}`)."
        )
    return path


def free_port(kind: int = socket.SOCK_STREAM, host: str = LOOPBACK) -> int:
    """A port the kernel considers free right now (there is a small race until it is bound)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_tcp_port(host: str = LOOPBACK, attempts: int = 50) -> int:
    """A port free for both TCP and UDP (STUN/TURN listens on both)."""
    for _ in range(attempts):
        port = free_port(socket.SOCK_STREAM, host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((host, port))
            except OSError:
                continue
        return port
    raise ServerError("no port free for both TCP and UDP")


def tcp_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _socket_inodes(port: int, proto: str) -> set[str]:
    """Inodes of sockets bound to *port* (TCP: listening only) in this network namespace."""
    inodes: set[str] = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) < 10 or int(f[1].rsplit(":", 1)[1], 16) != port:
                continue
            if proto == "tcp" and f[3] != "0A":  # 0A = LISTEN
                continue
            inodes.add(f[9])
    return inodes


def owns_port(pid: int, port: int, proto: str = "tcp") -> bool:
    """True if process *pid* holds the socket listening on *port* (not somebody else)."""
    inodes = _socket_inodes(port, proto)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of *pid* from /proc, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 overall


_PR_SET_PDEATHSIG = 1
_live: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (even by SIGKILL/os._exit)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        proc.stop(timeout=5)


class ServerProcess:
    """One child process that this object started, and nothing else.

    ``stop()`` signals the PID only while it is still our unreaped child with the recorded
    start time, waits, then escalates to SIGKILL.
    """

    def __init__(self, name: str, argv: Sequence[str], cwd: Path, output: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.output = output
        self.popen: subprocess.Popen[bytes] | None = None
        self._start_time: int | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def spawn(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            raise ServerError(f"{self.name} is already running (pid {self.popen.pid})")
        # PDEATHSIG fires when the *thread* that forked exits, so only use it from the main
        # thread (a server started from a worker thread relies on stop()/atexit instead).
        preexec: Callable[[], None] | None = (
            _die_with_parent if threading.current_thread() is threading.main_thread() else None
        )
        with open(self.output, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # terminal Ctrl-C goes to the test runner, not here
                close_fds=True,
                preexec_fn=preexec,
            )
        self._start_time = _proc_start_time(self.popen.pid)
        _live.add(self)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _is_ours(self) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            return False
        return self._start_time is not None and _proc_start_time(self.popen.pid) == self._start_time

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate, wait up to *timeout*, then SIGKILL. Returns the exit status."""
        popen = self.popen
        if popen is None:
            return None
        if self._is_ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                if self._is_ours():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(popen.pid, signal.SIGKILL)
                popen.wait(5)
        else:
            popen.poll()
        return popen.returncode

    def wait_ready(
        self,
        checks: Sequence[tuple[int, str]],
        timeout: float,
        log: Path,
        fatal_markers: Sequence[str] = (),
    ) -> None:
        """Wait until this process holds every (port, "tcp"|"udp") socket; fail early if it
        dies or logs a fatal marker. (A plain connect() test could be answered by another
        process that took the port first.)"""
        deadline = time.monotonic() + timeout
        pending = list(checks)
        while pending:
            if not self.alive():
                code = self.popen.returncode if self.popen is not None else None
                raise ServerError(
                    f"{self.name} exited with status {code} during start-up.\n"
                    f"--- {log} ---\n{log_tail(log)}\n--- {self.output} ---\n"
                    f"{log_tail(self.output)}"
                )
            for marker in fatal_markers:
                if log.exists() and marker in log.read_text(errors="replace"):
                    raise ServerError(
                        f"{self.name} reported '{marker}'.\n--- {log} ---\n{log_tail(log)}"
                    )
            pid = self.pid
            pending = [c for c in pending if pid is None or not owns_port(pid, *c)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} did not accept TCP on {pending} within {timeout:.0f} s.\n"
                    f"--- {log} ---\n{log_tail(log)}\n--- {self.output} ---\n"
                    f"{log_tail(self.output)}"
                )
            time.sleep(0.05)


class ManagedServer:
    """What ProsodyServer and CoturnServer share: one :class:`ServerProcess` at a time,
    started on freshly picked ports and started again when another process took a port
    first (its log shows one of ``PORT_RACE``).

    A subclass names itself (``NAME``), sets ``dir``, ``log_file``, ``start_timeout``, and
    implements :meth:`_prepare` (once per start), :meth:`_pick_ports`, :meth:`_write_config`,
    :meth:`_argv` and :meth:`_ready_checks` (the (port, "tcp"|"udp") sockets it must hold).
    """

    NAME = "server"
    #: log lines that mean a port we picked was taken between picking and binding
    PORT_RACE: tuple[str, ...] = ()
    dir: Path
    log_file: Path
    start_timeout: float
    _proc: ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def _pick_ports(self) -> None:
        raise NotImplementedError

    def _write_config(self) -> None:
        raise NotImplementedError

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready_checks(self) -> list[tuple[int, str]]:
        raise NotImplementedError

    def _may_retry(self, exc: ServerError) -> bool:
        return any(m in str(exc) for m in self.PORT_RACE)

    def start(self) -> Self:
        if self.running:
            return self
        self._prepare()
        last: ServerError | None = None
        for _ in range(3):
            self._pick_ports()
            self._write_config()
            self.log_file.unlink(missing_ok=True)
            proc = ServerProcess(self.NAME, self._argv(), self.dir, self.dir / "stdout.log")
            proc.spawn()
            self._proc = proc
            try:
                proc.wait_ready(self._ready_checks(), self.start_timeout, self.log_file,
                                self.PORT_RACE)
                return self
            except ServerError as exc:
                last = exc
                proc.stop()
                if not self._may_retry(exc):
                    break
        assert last is not None
        raise last

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_file, lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
