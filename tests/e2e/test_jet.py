"""JET (XEP-0391) with the OMEMO envelope (XEP-0396) between two jinglefs accounts on the
real Prosody: encrypted transfers over SOCKS5 direct, the SOCKS5 proxy and IBB; what the
proxy and the server see is ciphertext; a bad tag leaves nothing; the policy refuses what
would go unencrypted; both sides say what protected the file."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from jinglefs import errors
from jinglefs.client import Client
from jinglefs.events import Completed, PathKind, Protection
from jinglefs.ibb import service as ibb_service
from jinglefs.jet import stream as jet_stream
from jinglefs.jet.envelope import KeyEnvelope
from jinglefs.jet.protocol import JET, peer_takes_jet
from jinglefs.jingle.model import Action, Jingle
from jinglefs.s5b.network import TcpStream
from tests.jet.envelopes import ClearEnvelope
from tests.servers.prosody import ProsodyServer

from .cli_run import events, jinglefs
from .conftest import BOUND, first_offer, login, make_file, paths, settings, settle

pytestmark = pytest.mark.e2e

MB3 = 3 * 1024 * 1024 + 17
#: transport name -> (send_files transport, Settings for both sides, expected path)
PATHS: dict[str, tuple[str, dict[str, Any], PathKind]] = {
    "s5b-direct": ("s5b", {"use_proxy": False}, PathKind.S5B_DIRECT),
    "s5b-proxy": ("s5b", {"s5b_direct": False}, PathKind.S5B_PROXY),
    "ibb": ("ibb", {}, PathKind.IBB),
}

EnvelopeMaker = Callable[[Client], KeyEnvelope]


def _envelope_maker() -> EnvelopeMaker:
    """The real OMEMO envelope: the client's own device (jinglefs.omemo), set up at login."""
    def existing(client: Client) -> KeyEnvelope:
        assert client.envelope is not None, f"no OMEMO: {client.omemo_error}"
        return client.envelope
    return existing


@asynccontextmanager
async def jet_pair(prosody: ProsodyServer, tag: str, **kw: Any
                   ) -> AsyncIterator[tuple[Client, Client]]:
    chosen = settings(**kw)
    alice = await login(prosody, "alice", f"{tag}-a", chosen)
    bob = await login(prosody, "bob", f"{tag}-b", chosen)
    try:
        make = _envelope_maker()
        for client in (alice, bob):
            await client.use_envelope(make(client))
        await wait_for_jet(alice, bob.jid)
        yield alice, bob
    finally:
        await bob.aclose()
        await alice.aclose()


async def wait_for_jet(client: Client, peer: str) -> None:
    """Until ``client`` sees the peer's new caps with JET-OMEMO in them."""
    async def seen() -> None:
        while not peer_takes_jet(await client.connection.features(peer)):
            await asyncio.sleep(0.05)
    await asyncio.wait_for(seen(), BOUND)


class Capture:
    """Every byte that leaves for the transport below the JET layer: IBB data blocks (what
    the XMPP server relays) and SOCKS5 writes (what the proxy relays)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ibb = bytearray()
        self.tcp = bytearray()
        real_data = ibb_service._XmppPort.send_data
        real_send = TcpStream.send
        capture = self

        def send_data(port: Any, seq: int, block: memoryview, on_done: Any) -> None:
            capture.ibb += bytes(block)
            real_data(port, seq, block, on_done)

        async def send(stream: TcpStream, data: bytes | memoryview) -> None:
            capture.tcp += bytes(data)
            await real_send(stream, data)

        monkeypatch.setattr(ibb_service._XmppPort, "send_data", send_data)
        monkeypatch.setattr(TcpStream, "send", send)


@pytest.mark.parametrize("size", [0, 1, MB3])
@pytest.mark.parametrize("route", sorted(PATHS))
async def test_encrypted_transfer(prosody: ProsodyServer, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, jingle_log: list[Any],
                                  route: str, size: int) -> None:
    transport, kw, path = PATHS[route]
    capture = Capture(monkeypatch)
    async with jet_pair(prosody, f"jet{route}{size}", **kw) as (alice, bob):
        src = make_file(tmp_path, f"jet-{size}.bin", size)
        data = src.read_bytes()
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [sent] = await alice.send_files(bob.jid, [src], transport=transport)
        offer = await first_offer(bob)
        [got] = await offer.accept(inbox)
        done = await asyncio.wait_for(got.wait(), BOUND)
        sender_done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and isinstance(sender_done, Completed)
        out = Path(done.path)
        assert out.read_bytes() == data and list(inbox.iterdir()) == [out]
        # hashes stay over the plaintext, and the receiver confirmed ours
        assert done.hashes["sha-256"] == sender_done.hashes["sha-256"] == \
            hashlib.sha256(data).digest()
        assert done.verified and sender_done.verified
        # both sides say the same, in the events and the final result
        for transfer, final in ((sent, sender_done), (got, done)):
            [selected] = await paths(transfer)
            assert selected.path is path
            assert selected.protection is Protection.OMEMO and selected.encrypted
            assert final.protection is Protection.OMEMO
            assert final.to_json()["protection"] == "encrypted (OMEMO)"
        await settle(alice, bob)
    # what crossed the wire: size + 16 bytes of ciphertext, never the plaintext
    carried = capture.ibb if route == "ibb" else capture.tcp
    assert len(carried) == size + 16
    if size >= 64:
        assert data[:64] not in carried and data[size // 2:size // 2 + 64] not in carried
    # the offer carried a <security/> per content; the accept echoed none
    initiate = [j for _, j in jingle_log if j.action is Action.SESSION_INITIATE]
    accept = [j for _, j in jingle_log if j.action is Action.SESSION_ACCEPT]
    assert [c.security is not None for j in initiate for c in j.contents] == [True]
    assert [c.security for j in accept for c in j.contents] == [None]


@pytest.mark.parametrize("what", ["ciphertext", "tag"])
async def test_a_flipped_byte_leaves_no_file(prosody: ProsodyServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             what: str) -> None:
    size = 200_000
    flip_at = 100_000 if what == "ciphertext" else size + 5
    real_send = jet_stream.EncryptingStream.send
    real_finish = jet_stream.EncryptingStream.finish
    sent_bytes = [0]

    def flip(data: bytes) -> bytes:
        start = sent_bytes[0]
        sent_bytes[0] += len(data)
        if start <= flip_at < start + len(data):
            b = bytearray(data)
            b[flip_at - start] ^= 0x01
            return bytes(b)
        return data

    async def send(self: jet_stream.EncryptingStream, data: bytes | memoryview) -> None:
        inner = self.inner
        real_inner_send = inner.send

        async def tampered(chunk: bytes | memoryview) -> None:
            await real_inner_send(flip(bytes(chunk)))
        self.inner = _Sender(tampered, inner)
        try:
            await real_send(self, data)
        finally:
            self.inner = inner

    async def finish(self: jet_stream.EncryptingStream) -> None:
        inner = self.inner
        real_inner_send = inner.send

        async def tampered(chunk: bytes | memoryview) -> None:
            await real_inner_send(flip(bytes(chunk)))
        self.inner = _Sender(tampered, inner)
        try:
            await real_finish(self)
        finally:
            self.inner = inner

    monkeypatch.setattr(jet_stream.EncryptingStream, "send", send)
    monkeypatch.setattr(jet_stream.EncryptingStream, "finish", finish)
    async with jet_pair(prosody, f"jetflip{what}", use_proxy=False) as (alice, bob):
        src = make_file(tmp_path, "tampered.bin", size)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        [sent] = await alice.send_files(bob.jid, [src], transport="s5b")
        offer = await first_offer(bob)
        [got] = await offer.accept(inbox)
        with pytest.raises(errors.DecryptFailed):
            await asyncio.wait_for(got.wait(), BOUND)
        with pytest.raises(errors.JingleFSError) as e:
            await asyncio.wait_for(sent.wait(), BOUND)
        assert "security-error" in str(e.value)
        await settle(alice, bob)
        assert list(inbox.iterdir()) == []  # no file, no partial
    assert errors.DecryptFailed().exit_code == 12


class _Sender:
    """A stream whose send is ``send`` and the rest is ``inner``'s."""

    def __init__(self, send: Callable[[bytes | memoryview], Any], inner: Any) -> None:
        self.send, self._inner = send, inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_an_offer_we_cannot_open_ends_with_security_error(
        prosody: ProsodyServer, tmp_path: Path, jingle_log: list[tuple[str, Jingle]]) -> None:
    async with jet_pair(prosody, "jetrefuse", use_proxy=False) as (alice, bob):
        await bob.use_envelope(ClearEnvelope(refuse=True))
        src = make_file(tmp_path, "locked.bin", 1000)
        [sent] = await alice.send_files(bob.jid, [src], transport="s5b")
        with pytest.raises(errors.JingleFSError) as e:
            await asyncio.wait_for(sent.wait(), BOUND)
        assert "security-error" in str(e.value) and "cannot decrypt" in str(e.value)
        [end] = [j for jid, j in jingle_log if jid == bob.jid
                 and j.action is Action.SESSION_TERMINATE]
        assert end.reason is not None and end.reason.condition.value == "security-error"
        assert end.reason.text is not None and "cannot decrypt" in end.reason.text
        await settle(alice, bob)


async def test_policy_off_declines_a_jet_offer(prosody: ProsodyServer, tmp_path: Path) -> None:
    async with jet_pair(prosody, "jetoff", use_proxy=False) as (alice, _bob):
        off = await login(prosody, "bob", "jetoff-c", settings(encryption="off"))
        try:
            await off.use_envelope(ClearEnvelope())
            assert JET not in await alice.connection.features(off.jid)
            # A peer that sends JET without looking at our features (Conversations does)
            src = make_file(tmp_path, "x.bin", 10)
            alice_keys, _ = await alice._jet_keys(off.jid, frozenset(
                [JET, "urn:xmpp:jingle:jet-omemo:0"]), 1)
            assert alice_keys is not None
            [sent] = await _send_with_keys(alice, off.jid, src, alice_keys[0])
            with pytest.raises(errors.Declined) as e:
                await asyncio.wait_for(sent.wait(), BOUND)
            assert "encryption is off" in str(e.value)
        finally:
            await off.aclose()


async def _send_with_keys(client: Client, peer: str, src: Path, keys: Any) -> list[Any]:
    from jinglefs.sending import run_sender
    assert client.manager is not None
    driver = client._add_driver(client.manager.create(peer))
    out = client._outgoing(driver, peer, src, src.name, keys)
    client._spawn(run_sender(driver, [out], ["s5b"]))
    return [out.transfer]


async def test_without_jet_the_protection_is_what_the_path_gives(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    chosen = settings(use_proxy=False, encryption="off")
    alice = await login(prosody, "alice", "nojet-a", chosen)
    bob = await login(prosody, "bob", "nojet-b", chosen)
    try:
        src = make_file(tmp_path, "plain.bin", 5000)
        [sent] = await alice.send_files(bob.jid, [src], transport="s5b")
        [got] = await (await first_offer(bob)).accept(tmp_path)
        done = await asyncio.wait_for(got.wait(), BOUND)
        sender_done = await asyncio.wait_for(sent.wait(), BOUND)
        assert isinstance(done, Completed) and isinstance(sender_done, Completed)
        assert done.protection is sender_done.protection is Protection.NONE
        await settle(alice, bob)
    finally:
        await bob.aclose()
        await alice.aclose()


async def test_required_refuses_a_peer_without_omemo(prosody: ProsodyServer,
                                                     tmp_path: Path) -> None:
    required = settings(encryption="required")
    alice = await login(prosody, "alice", "req-a", required)
    bob = await login(prosody, "bob", "req-b", settings(omemo=False))
    try:
        src = make_file(tmp_path, "secret.txt", 100)
        with pytest.raises(errors.EncryptionRequired) as e:
            await alice.send_files(bob.jid, [src], transport="s5b")
        assert e.value.exit_code == 13
        assert "OMEMO" in str(e.value)
    finally:
        await bob.aclose()
        await alice.aclose()


def test_cli_required_refuses_with_its_exit_code(prosody: ProsodyServer,
                                                 tmp_path: Path) -> None:
    """`send --encryption required` to a device that takes no JET (bob receives with
    encryption off), over SOCKS5 only: refused before any offer, exit code 13."""
    src = tmp_path / "secret.txt"
    src.write_bytes(b"not for the proxy\n")
    inbox = tmp_path / "inbox"
    receiver = jinglefs(prosody, "bob", tmp_path, "receive", "--accept-from",
                        prosody.jid("alice"), "--count", "1", "--timeout", "30",
                        "--encryption", "off", "--output", str(inbox))
    try:
        assert receiver.stderr is not None
        lines: list[str] = []
        while not lines or "Waiting for files" not in lines[-1]:  # online once it says so
            lines.append(receiver.stderr.readline())
            assert lines[-1], "".join(lines)  # it ended without saying so
        sender = jinglefs(prosody, "alice", tmp_path, "send", "--json", "--encryption",
                          "required", "--transport", "s5b", str(src), prosody.jid("bob"))
        s_out, s_err = sender.communicate(timeout=90)
    finally:
        receiver.kill()
        receiver.communicate()
    assert sender.returncode == 13, s_err
    [summary] = [e for e in events(s_out) if e["event"] == "summary"]
    assert summary["exit_code"] == 13 and not summary["ok"]
    assert "Encryption is required" in s_err
    assert not inbox.exists() or list(inbox.iterdir()) == []
