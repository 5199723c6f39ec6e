"""Fast, plain connection errors: `jinglefs send` and `receive` as a user runs them, against a
refused port, an unknown domain, a server whose certificate is not trusted or names another
host, a listener that does not speak XMPP, and the real Prosody with a wrong password.

Each case ends with the documented exit code (README: 3 cannot connect, 4 refused account)
and ONE plain line on stderr, well within the bound; the time is measured and printed
(pytest -s shows it).  The bound is generous on purpose: it catches a hang (the old 30 s
connect limit), not a slow machine.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jinglefs import errors
from tests.servers import LOOPBACK
from tests.servers.certs import make_self_signed
from tests.servers.prosody import ProsodyServer

from .cli_run import bare_cli

pytestmark = pytest.mark.e2e

#: Seconds: far above what any case takes here (1-4 s), far below the 30 s connect limit.
BOUND = 15.0
#: Words that mean the user saw the XMPP library's or the OS's view instead of a sentence.
JARGON = ("Traceback", "slixmpp", "Errno", "SSLError", "SSLCert", "CERTIFICATE_VERIFY",
          "Connect call failed", "Parse error", "End of stream", "[", "]")

_STREAM_OPEN = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' from='jinglefs.test' "
                b"id='fake' version='1.0'>")
_STARTTLS = (b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
             b"<required/></starttls></stream:features>")


@contextmanager
def listener(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on a free loopback port that runs ``handle`` per connection."""
    server = socket.create_server((LOOPBACK, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_guarded, args=(handle, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _guarded(handle: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn:
        conn.settimeout(20)
        try:
            handle(conn)
        except OSError:
            pass


def _garbage(conn: socket.socket) -> None:
    """Answers the stream header like a web server would."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\n<html\x00\x01")
    conn.recv(4096)  # keep the connection open until the client goes


def _starttls_with(cert: Path, key: Path) -> Callable[[socket.socket], None]:
    """An XMPP server that offers STARTTLS (RFC 6120 §5.4) and then presents ``cert``."""
    def handle(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(_STREAM_OPEN + _STARTTLS)
        seen = b""
        while b"starttls" not in seen:
            chunk = conn.recv(4096)
            if not chunk:
                return
            seen += chunk
        conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass  # the client refuses the certificate: that is the point
    return handle


def run_measured(tmp_path: Path, command: str, *args: str) -> tuple[int, list[str], float]:
    """`jinglefs COMMAND ARGS`: (exit code, stderr lines, seconds it took)."""
    extra = ["--accept-from", "bob@jinglefs.test", "--output", str(tmp_path / "in"),
             "--count", "1", "--timeout", "60"] \
        if command == "receive" else [__file__, "bob@jinglefs.test"]
    started = time.monotonic()
    proc = bare_cli(tmp_path, command, "--no-input", *args, *extra)
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    return proc.returncode, err.strip().splitlines(), elapsed


def check(case: str, command: str, result: tuple[int, list[str], float], code: int,
          words: str) -> None:
    returncode, lines, elapsed = result
    print(f"\n{case} ({command}): exit {returncode} after {elapsed:.2f} s: {lines}")
    assert returncode == code, lines
    assert len(lines) == 1, lines  # one sentence, nothing before or after it
    [line] = lines
    assert line.startswith("error: ") and words in line, line
    assert not any(j in line for j in JARGON), line
    assert elapsed < BOUND, f"{case} took {elapsed:.1f} s"


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text("not-the-password\n")
    return path


COMMANDS = ["send", "receive"]


@pytest.mark.parametrize("command", COMMANDS)
def test_refused_port(tmp_path: Path, pw: Path, command: str) -> None:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
        result = run_measured(tmp_path, command, "--account", "alice@jinglefs.test",
                              "--server", f"{LOOPBACK}:{port}", "--password-file", str(pw))
    check("refused port", command, result, errors.EXIT_CONNECT,
          f"{LOOPBACK} port {port} refused the connection")


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_domain(tmp_path: Path, pw: Path, command: str) -> None:
    # RFC 2606 §2: .invalid never resolves.
    result = run_measured(tmp_path, command, "--account", "alice@no-such-server.invalid",
                          "--password-file", str(pw))
    check("unknown domain", command, result, errors.EXIT_CONNECT,
          "the server name no-such-server.invalid was not found")


@pytest.mark.parametrize("command", COMMANDS)
def test_untrusted_certificate(prosody: ProsodyServer, tmp_path: Path, command: str) -> None:
    pw = tmp_path / "alice.pw"
    pw.write_text(prosody.passwords["alice"] + "\n")
    # The real Prosody, whose self-signed certificate we are not told to trust.
    result = run_measured(tmp_path, command, "--account", prosody.jid("alice"), "--server",
                          f"{LOOPBACK}:{prosody.port}", "--password-file", str(pw))
    check("untrusted certificate", command, result, errors.EXIT_CONNECT,
          f"the server's certificate for {prosody.domain} is not trusted")


@pytest.mark.parametrize("command", COMMANDS)
def test_certificate_for_another_name(tmp_path: Path, pw: Path, command: str) -> None:
    cert, key = tmp_path / "other.crt", tmp_path / "other.key"
    make_self_signed(cert, key, ["other.example"])
    with listener(_starttls_with(cert, key)) as port:
        result = run_measured(tmp_path, command, "--account", "alice@jinglefs.test",
                              "--server", f"{LOOPBACK}:{port}", "--ca-file", str(cert),
                              "--password-file", str(pw))
    check("certificate for another name", command, result, errors.EXIT_CONNECT,
          "the server's certificate for jinglefs.test is not trusted")


@pytest.mark.parametrize("command", COMMANDS)
def test_listener_that_does_not_speak_xmpp(tmp_path: Path, pw: Path, command: str) -> None:
    with listener(_garbage) as port:
        result = run_measured(tmp_path, command, "--account", "alice@jinglefs.test",
                              "--server", f"{LOOPBACK}:{port}", "--password-file", str(pw))
    check("not an XMPP server", command, result, errors.EXIT_CONNECT,
          f"{LOOPBACK} port {port} does not answer like an XMPP server")


@pytest.mark.parametrize("command", COMMANDS)
def test_wrong_password(prosody: ProsodyServer, tmp_path: Path, pw: Path,
                        command: str) -> None:
    result = run_measured(tmp_path, command, "--account", prosody.jid("alice"), "--server",
                          f"{LOOPBACK}:{prosody.port}", "--ca-file", str(prosody.ca_file),
                          "--password-file", str(pw))
    check("wrong password", command, result, errors.EXIT_AUTH,
          f"the server refused the account {prosody.jid('alice')} or its password")
