"""The real-server test infrastructure, checked with real clients (slixmpp, raw sockets)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from jinglefs.api import Account
from tests.servers import ServerError, require_binary, tcp_accepts
from tests.servers.coturn import CoturnServer
from tests.servers.prosody import ProsodyServer, lua_str

pytestmark = pytest.mark.e2e

BYTESTREAMS = "http://jabber.org/protocol/bytestreams"
EXTDISCO = "urn:xmpp:extdisco:2"
ROOT = Path(__file__).resolve().parent.parent


class Client(slixmpp.ClientXMPP):
    """A minimal slixmpp client that records presences and the session start."""

    def __init__(self, account: Account, ca_file: str | None = None) -> None:
        super().__init__(f"{account.jid}/{account.resource}", account.password)
        # Port 5222-style STARTTLS port: no direct-TLS attempt first (natlab pitfall 14).
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        ca = ca_file if ca_file is not None else account.ca_file
        self.ca_certs = Path(ca) if ca else None
        self.register_plugin("xep_0030")
        self.started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.presences: list[str] = []
        self.presence_event = asyncio.Event()
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_auth", lambda _: self._fail("authentication failed"))
        self.add_event_handler("ssl_invalid_chain", lambda e: self._fail(f"TLS: {e}"))
        self.add_event_handler("connection_failed", lambda e: self._fail(f"connect: {e}"))
        self.add_event_handler("presence_available", self._on_presence)

    def _fail(self, why: str) -> None:
        if not self.started.done():
            self.started.set_exception(ConnectionError(why))

    async def _on_start(self, _event: object) -> None:
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _on_presence(self, pres: slixmpp.Presence) -> None:
        self.presences.append(str(pres["from"]))
        self.presence_event.set()

    async def wait_presence(self, pred: Callable[[str], bool], timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for p in self.presences:
                if pred(p):
                    return p
            self.presence_event.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching presence; got {self.presences}")
            try:
                await asyncio.wait_for(self.presence_event.wait(), left)
            except TimeoutError:
                pass


@asynccontextmanager
async def online(account: Account, ca_file: str | None = None) -> AsyncIterator[Client]:
    assert account.server and account.port
    client = Client(account, ca_file)
    client.connect(account.server, account.port)
    try:
        await asyncio.wait_for(client.started, 10)
        yield client
    finally:
        client.disconnect(wait=0.5)
        await asyncio.sleep(0)


def _read_until(s: socket.socket, done: Callable[[bytes], bool]) -> str:
    buf = b""
    while not done(buf):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


def _open_stream(s: socket.socket, domain: str) -> str:
    """Open a plaintext c2s stream on ``s``; everything up to </stream:features>."""
    s.sendall(
        f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
        "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".encode()
    )
    return _read_until(s, lambda buf: b"</stream:features>" in buf)


def raw_features(host: str, port: int, domain: str) -> str:
    """Open a plaintext c2s stream and return everything up to </stream:features>."""
    with socket.create_connection((host, port), timeout=5) as s:
        return _open_stream(s, domain)


def plain_auth(host: str, port: int, domain: str, user: str, password: str) -> str:
    """SASL PLAIN on an unencrypted stream; returns the server's answer element text."""
    with socket.create_connection((host, port), timeout=5) as s:
        _open_stream(s, domain)
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        s.sendall(auth.encode())
        return _read_until(s, lambda buf: re.search(rb"<(success|failure)[ />]", buf) is not None)


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# ---------------------------------------------------------------------------- tests
async def test_login_starttls_verified_and_presence(prosody: ProsodyServer) -> None:
    async with online(prosody.account("alice")) as alice:
        tls = alice.transport.get_extra_info("ssl_object") if alice.transport else None
        assert isinstance(tls, ssl.SSLObject), "the stream is not TLS"
        cert = tls.getpeercert()
        assert cert is not None
        assert cert["subjectAltName"] == (
            ("DNS", prosody.domain),
            ("DNS", prosody.proxy_jid),
        )
        async with online(prosody.account("bob", resource="bobres")) as bob:
            got = await alice.wait_presence(lambda j: j.startswith(prosody.jid("bob") + "/"))
            assert got == f"{prosody.jid('bob')}/bobres"
            await bob.wait_presence(lambda j: j == f"{prosody.jid('alice')}/jinglefs")
            assert alice.client_roster[prosody.jid("bob")]["subscription"] == "both"
            assert prosody.jid("carol") not in alice.client_roster


async def test_stranger_sees_nothing(prosody: ProsodyServer) -> None:
    async with (
        online(prosody.account("carol")) as carol,
        online(prosody.account("alice")) as alice,
    ):
        await alice.wait_presence(lambda j: j.startswith(prosody.jid("alice")), 5)
        # A message from alice to carol leaves after alice's presence broadcast: once it
        # has arrived, any presence that was going to reach carol has too.
        got = asyncio.get_running_loop().create_future()
        carol.add_event_handler("message", lambda m: got.done() or got.set_result(m["body"]))
        alice.send_message(mto=slixmpp.JID(prosody.jid("carol")), mbody="barrier")
        assert await asyncio.wait_for(got, 5) == "barrier"
        assert not [p for p in carol.presences if not p.startswith(prosody.jid("carol"))]
        assert not [p for p in alice.presences if p.startswith(prosody.jid("carol"))]
        assert list(carol.client_roster) in ([], [prosody.jid("carol")])


async def test_wrong_ca_is_refused(prosody: ProsodyServer, tmp_path: Path) -> None:
    other = ProsodyServer(tmp_path / "other")  # never started: only its certificate is used
    from tests.servers.certs import make_self_signed

    other.cert_dir.mkdir(parents=True)
    make_self_signed(other.ca_file, other.key_file, [prosody.domain])
    with pytest.raises(ConnectionError, match="TLS"):
        async with online(prosody.account("alice"), ca_file=str(other.ca_file)):
            pass


async def test_wrong_password_is_refused(prosody: ProsodyServer) -> None:
    acc = prosody.account("alice")
    bad = Account(acc.jid, "not-the-password", acc.server, acc.port, acc.ca_file)
    with pytest.raises(ConnectionError, match="authentication"):
        async with online(bad):
            pass


async def test_proxy65_discovered_and_reachable(prosody: ProsodyServer) -> None:
    async with online(prosody.account("alice")) as alice:
        items = await alice.plugin["xep_0030"].get_items(jid=slixmpp.JID(prosody.domain), timeout=5)
        jids = [i[0] for i in items["disco_items"]["items"]]
        assert prosody.proxy_jid in jids
        info = await alice.plugin["xep_0030"].get_info(
            jid=slixmpp.JID(prosody.proxy_jid), timeout=5
        )
        assert BYTESTREAMS in info["disco_info"]["features"]
        iq = alice.make_iq_get(queryxmlns=BYTESTREAMS, ito=prosody.proxy_jid)
        reply = await iq.send(timeout=5)
        hosts = reply.xml.findall(f"{{{BYTESTREAMS}}}query/{{{BYTESTREAMS}}}streamhost")
        assert [(h.get("jid"), h.get("host"), h.get("port")) for h in hosts] == [
            (prosody.proxy_jid, "127.0.0.1", str(prosody.proxy65_port))
        ]
    # The SOCKS5 greeting (version 5, one method: no auth) is accepted.
    with socket.create_connection((prosody.host, prosody.proxy65_port), timeout=5) as s:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"


def test_plaintext_refused_when_encryption_required(prosody: ProsodyServer) -> None:
    feats = raw_features(prosody.host, prosody.port, prosody.domain)
    assert re.search(r"<starttls[^>]*>\s*<required\s*/>", feats), feats
    assert "<mechanisms" not in feats, feats
    answer = plain_auth(
        prosody.host, prosody.port, prosody.domain, "alice", prosody.passwords["alice"]
    )
    assert "<success" not in answer, answer


def test_plaintext_allowed_when_not_required(prosody_factory: Callable[..., ProsodyServer]) -> None:
    server = prosody_factory(require_encryption=False, proxy65=False)
    assert server.account("alice").allow_plaintext
    feats = raw_features(server.host, server.port, server.domain)
    assert "<mechanism>PLAIN</mechanism>" in feats, feats
    assert "<required" not in feats
    answer = plain_auth(server.host, server.port, server.domain, "bob", server.passwords["bob"])
    assert "<success" in answer, answer
    assert not tcp_accepts(server.host, server.proxy65_port or 1)


async def test_extdisco_gives_turn_credentials(
    prosody_factory: Callable[..., ProsodyServer], coturn: CoturnServer
) -> None:
    server = prosody_factory(turn=coturn, proxy65=False)
    async with online(server.account("alice")) as alice:
        info = await alice.plugin["xep_0030"].get_info(jid=slixmpp.JID(server.domain), timeout=5)
        assert EXTDISCO in info["disco_info"]["features"]
        iq = alice.make_iq_get(ito=server.domain)
        iq.append(ET.Element(f"{{{EXTDISCO}}}services"))
        reply = await iq.send(timeout=5)
    services = reply.xml.findall(f"{{{EXTDISCO}}}services/{{{EXTDISCO}}}service")
    kinds = sorted((s.get("type"), s.get("transport")) for s in services)
    assert kinds == [("stun", "tcp"), ("stun", "udp"), ("turn", "tcp"), ("turn", "udp")]
    now = time.time()
    for s in services:
        assert (s.get("host"), s.get("port")) == ("127.0.0.1", str(coturn.port))
        if s.get("type") == "turn":
            user, password = s.get("username"), s.get("password")
            assert user and password
            assert now + 3600 < int(user.split(":")[0]) < now + 2 * 86400
            mac = hmac.new(coturn.secret.encode(), user.encode(), hashlib.sha1).digest()
            assert password == base64.b64encode(mac).decode()


async def test_no_extdisco_without_turn(prosody: ProsodyServer) -> None:
    async with online(prosody.account("bob")) as bob:
        iq = bob.make_iq_get(ito=prosody.domain)
        iq.append(ET.Element(f"{{{EXTDISCO}}}services"))
        with pytest.raises(IqError) as err:
            await iq.send(timeout=5)
        assert err.value.condition == "service-unavailable"


def test_coturn_answers_stun_binding(coturn: CoturnServer) -> None:
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(3)
        u.sendto(request, (coturn.host, coturn.port))
        data, _ = u.recvfrom(2048)
    kind, _length, cookie = struct.unpack("!HHI", data[:8])
    assert (kind, cookie, data[8:20]) == (0x0101, 0x2112A442, txid)
    assert tcp_accepts(coturn.host, coturn.port)


async def test_add_account_while_running(prosody_factory: Callable[..., ProsodyServer]) -> None:
    server = prosody_factory(accounts={"alice": ()}, proxy65=False)
    async with online(server.account("alice")) as alice:
        alice.presences.clear()
        # alice is online: her roster is cached in the server, so this goes through the shell.
        server.add_account("dave", 'd\'ave "pw" \\ é', roster=["alice"])
        for _ in range(50):
            if server.jid("dave") in alice.client_roster:
                break
            await asyncio.sleep(0.05)
        assert alice.client_roster[server.jid("dave")]["subscription"] == "both"
        async with online(server.account("dave")) as dave:
            await alice.wait_presence(lambda j: j.startswith(server.jid("dave") + "/"))
            assert dave.client_roster[server.jid("alice")]["subscription"] == "both"
    # A contact that does not exist yet: the entry is completed when it is created.
    server.add_account("erin", roster=["frank"])
    server.add_account("frank")
    async with online(server.account("erin")) as erin, online(server.account("frank")):
        await erin.wait_presence(lambda j: j.startswith(server.jid("frank") + "/"))


def test_stop_leaves_no_process(prosody_factory: Callable[..., ProsodyServer]) -> None:
    server = prosody_factory(accounts={})
    pid, port, proxy_port = server.pid, server.port, server.proxy65_port
    assert pid and pid_alive(pid) and tcp_accepts(server.host, port)
    server.stop()
    assert not pid_alive(pid)
    assert not server.running
    assert not tcp_accepts(server.host, port)
    assert not tcp_accepts(server.host, proxy_port)
    server.stop()  # idempotent, and signals nothing once the process is gone


def test_coturn_stop_leaves_no_process(coturn_factory: Callable[..., CoturnServer]) -> None:
    turn = coturn_factory()
    pid = turn.pid
    assert pid and pid_alive(pid)
    turn.stop()
    assert not pid_alive(pid)
    assert not tcp_accepts(turn.host, turn.port)


def test_config_limits_only_on_request(tmp_path: Path) -> None:
    plain = ProsodyServer(tmp_path / "a")._config_text()
    assert '"limits"' not in plain
    assert "nagle = false" in plain and "read_size = 262144" in plain
    throttled = ProsodyServer(tmp_path / "b", c2s_rate="10kb/s")._config_text()
    assert '"limits"' in throttled and 'rate = "10kb/s"' in throttled
    assert "nagle" not in throttled and "read_size" not in throttled


def test_lua_str_escapes() -> None:
    assert lua_str('a"b\\c\nd') == '"a\\034b\\092c\\010d"'
    assert lua_str("é") == '"\\195\\169"'


def test_run_cli_foreground(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    pw = tmp_path / "pw"
    pw.write_text("sekrit\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.servers.prosody",
            "run",
            "--dir",
            str(work),
            "--accounts",
            "alice,bob",
            "--password-file",
            str(pw),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["domain"] == "jinglefs.test" and info["host"] == "127.0.0.1"
        assert info["accounts"] == ["alice@jinglefs.test", "bob@jinglefs.test"]
        assert Path(info["ca_file"]).is_file()
        assert tcp_accepts(info["host"], info["port"])
        answer = raw_features(info["host"], info["port"], info["domain"])
        assert "starttls" in answer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not pid_alive(info["pid"])
        assert not tcp_accepts(info["host"], info["port"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_server_dies_with_a_killed_test_process(tmp_path: Path) -> None:
    """A test run killed hard (SIGKILL, os._exit) must not leave Prosody or coturn running."""
    script = (
        "import sys, time\n"
        "from tests.servers.prosody import ProsodyServer\n"
        "from tests.servers.coturn import CoturnServer\n"
        f"t = CoturnServer({str(tmp_path / 't')!r}).start()\n"
        f"p = ProsodyServer({str(tmp_path / 'p')!r}).start()\n"
        "print(p.pid, t.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    pids = [int(x) for x in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)


def c2s_read_limits(server: ProsodyServer) -> dict[str, str]:
    """user -> the pause Prosody's epoll loop takes per byte read from that user's c2s
    connection (mod_limits: 1/rate seconds; "nil" when unthrottled), live sessions only."""
    out = server.shell(
        "> local t = {} for _, s in pairs(prosody.full_sessions) do "
        't[#t+1] = s.username .. "=" .. tostring(s.conn._limit) end '
        'return table.concat(t, ",")'
    )
    found = re.search(r"^Result: (.*)$", out, re.MULTILINE)
    assert found, out
    return dict(pair.split("=", 1) for pair in found.group(1).split(",") if pair)


async def _limits_while_pushing(server: ProsodyServer, total: int) -> dict[str, str]:
    """Push *total* bytes of message bodies from alice to bob (all must arrive) and return
    the read limits of their two c2s connections."""
    async with (
        online(server.account("bob")) as bob,
        online(server.account("alice")) as alice,
    ):
        got = 0
        done = asyncio.Event()

        def on_message(msg: slixmpp.Message) -> None:
            nonlocal got
            got += len(msg["body"])
            if got >= total:
                done.set()

        bob.add_event_handler("message", on_message)
        body = "x" * 4000
        for _ in range(total // len(body)):
            alice.send_message(mto=slixmpp.JID(server.jid("bob") + "/jinglefs"), mbody=body)
        await asyncio.wait_for(done.wait(), 30)
        assert got == total
        limits = c2s_read_limits(server)
        return {user: limits[user] for user in ("alice", "bob")}


async def test_c2s_rate_throttles_only_on_request(
    prosody: ProsodyServer, prosody_factory: Callable[..., ProsodyServer]
) -> None:
    # mod_limits with the epoll loop pauses 1/rate seconds per byte read (1/50000 = 2e-05).
    throttled = prosody_factory(c2s_rate="50kb/s", proxy65=False)
    assert await _limits_while_pushing(throttled, 80_000) == {"alice": "2e-05", "bob": "2e-05"}
    assert await _limits_while_pushing(prosody, 80_000) == {"alice": "nil", "bob": "nil"}


def test_start_failure_is_reported_with_log_and_cleaned_up(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ProsodyServer(tmp_path / "x", c2s_port=port, start_timeout=10)
        with pytest.raises(ServerError, match="Failed to open server port") as err:
            server.start()
    assert "prosody.log" in str(err.value)
    assert server.pid is not None and not pid_alive(server.pid)


def test_missing_binary_says_how_to_install() -> None:
    with pytest.raises(ServerError, match="scripts/setup"):
        require_binary("no-such-server-binary", "no-such-package")
