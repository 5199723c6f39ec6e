"""End to end through a real Prosody: the façade sends real files between two accounts."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from jinglefs import errors
from jinglefs.client import Client
from jinglefs.events import Completed, Failed, PathKind, Progress, TransportSelected, Verified
from tests.servers.prosody import ProsodyServer

from .conftest import FAST, first_offer, login, make_file, settings, settle

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("size", [0, 1, 3 * 1024 * 1024 + 17])
async def test_ibb_transfer_bytes_and_hash(alice: Client, bob: Client, tmp_path: Path,
                                           size: int) -> None:
    src = make_file(tmp_path, f"data-{size}.bin", size)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    offer = await first_offer(bob)
    assert offer.peer == alice.jid and offer.from_contact
    assert [(f.name, f.size) for f in offer.files] == [(src.name, size)]
    [received] = await offer.accept(inbox)
    done = await asyncio.wait_for(received.wait(), 60)
    assert isinstance(done, Completed) and done.verified
    out = Path(done.path)
    assert out.parent == inbox and out.name == src.name
    assert out.read_bytes() == src.read_bytes()
    assert done.hashes["sha-256"] == hashlib.sha256(src.read_bytes()).digest()
    sender_done = await asyncio.wait_for(sent.wait(), 30)
    assert isinstance(sender_done, Completed)
    assert sender_done.hashes["sha-256"] == done.hashes["sha-256"]
    events = [e async for e in received.events()]
    path_events = [e for e in events if isinstance(e, TransportSelected)]
    assert [e.path for e in path_events] == [PathKind.IBB]
    assert any(isinstance(e, Verified) for e in events)
    assert list(inbox.iterdir()) == [out]  # no partial or sidecar left behind


async def test_bare_jid_picks_the_online_resource(alice: Client, bob: Client,
                                                  tmp_path: Path) -> None:
    src = make_file(tmp_path, "hello.txt", 1000)
    [sent] = await alice.send_files(bob.jid.split("/")[0], [src], transport="ibb")
    assert sent.peer == bob.jid
    offer = await first_offer(bob)
    [got] = await offer.accept(tmp_path)
    done = await asyncio.wait_for(got.wait(), 30)
    assert Path(done.path).read_bytes() == src.read_bytes()  # type: ignore[attr-defined]


async def test_progress_is_monotonic(alice: Client, bob: Client, tmp_path: Path) -> None:
    src = make_file(tmp_path, "p.bin", 2 * 1024 * 1024)
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    [got] = await (await first_offer(bob)).accept(tmp_path)
    seen: list[int] = []

    async def watch() -> None:
        async for e in sent.events():
            if isinstance(e, Progress):
                seen.append(e.done)

    watcher = asyncio.ensure_future(watch())
    await asyncio.wait_for(got.wait(), 60)
    await asyncio.wait_for(sent.wait(), 30)
    await asyncio.wait_for(watcher, 5)
    assert seen == sorted(seen) and seen[-1] == src.stat().st_size


async def test_decline(alice: Client, bob: Client, tmp_path: Path) -> None:
    src = make_file(tmp_path, "no.bin", 10)
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    await (await first_offer(bob)).decline()
    with pytest.raises(errors.Declined):
        await asyncio.wait_for(sent.wait(), 15)
    events = [e async for e in sent.events()]
    assert isinstance(events[-1], Failed) and events[-1].error == "declined"
    assert events[-1].exit_code == errors.EXIT_DECLINED


async def test_sender_cancels_mid_transfer(plain: tuple[Client, Client], tmp_path: Path) -> None:
    alice, bob = plain  # JET off: an unencrypted partial is kept
    src = make_file(tmp_path, "big.bin", 20 * 1024 * 1024)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    [got] = await (await first_offer(bob)).accept(inbox)
    partial = inbox / "big.bin.jfs-part"
    # The partial appears with the first bytes written (none before: a tidy folder).
    for _ in range(600):
        if partial.exists() and partial.stat().st_size > 0:
            break
        await asyncio.sleep(0.05)
    await sent.cancel()
    with pytest.raises(errors.Cancelled) as err:
        await asyncio.wait_for(got.wait(), 15)
    assert err.value.by_peer
    await settle(alice, bob)
    # Nothing that looks complete: only the resumable partial remains (its resume record
    # is in the state directory, not beside it), holding a prefix of the file.
    assert sorted(p.name for p in inbox.iterdir()) == ["big.bin.jfs-part"]
    kept = partial.read_bytes()
    assert 0 < len(kept) < src.stat().st_size and kept == src.read_bytes()[:len(kept)]


async def test_stranger_offer_is_marked(prosody: ProsodyServer, alice: Client,
                                        tmp_path: Path) -> None:
    carol = await login(prosody, "carol")
    try:
        src = make_file(tmp_path, "x.bin", 5)
        await carol.send_files(alice.jid, [src], transport="ibb")
        offer = await first_offer(alice)
        assert offer.peer == carol.jid and not offer.from_contact
        await offer.decline()
    finally:
        await carol.aclose()


async def test_stranger_without_full_jid_gets_a_clear_error(prosody: ProsodyServer,
                                                            alice: Client,
                                                            tmp_path: Path) -> None:
    # A bare JID whose devices presence does not show gets a JMI proposal (XEP-0353), which
    # jinglefs does not answer for strangers (§6): unanswered, and the error says why.
    carol = await login(prosody, "carol", settings=settings(
        timeouts=replace(FAST.timeouts, accept=2)))
    try:
        with pytest.raises(errors.Unanswered, match="full JID"):
            await carol.send_files(alice.jid.split("/")[0], [make_file(tmp_path, "y", 1)])
    finally:
        await carol.aclose()


async def test_name_from_peer_never_escapes_the_folder(alice: Client, bob: Client,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    import jinglefs.client as client_mod

    src = make_file(tmp_path, "evil.bin", 100)
    real_expand = client_mod.files_to_send
    monkeypatch.setattr(client_mod, "files_to_send",
                        lambda paths: [(p, "../../etc/passwd") for p, _ in real_expand(paths)])
    inbox = tmp_path / "deep" / "inbox"
    inbox.mkdir(parents=True)
    await alice.send_files(bob.jid, [src], transport="ibb")
    offer = await first_offer(bob)
    [got] = await offer.accept(inbox)
    done = await asyncio.wait_for(got.wait(), 30)
    out = Path(done.path)  # type: ignore[attr-defined]
    assert out.resolve().parent == inbox.resolve()
    assert out.read_bytes() == src.read_bytes()
    assert not (tmp_path / "etc").exists()


async def test_corrupted_bytes_fail_the_hash_and_leave_nothing(
        alice: Client, bob: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender whose bytes do not match its checksum: ChecksumMismatch, no file kept."""
    import jinglefs.sending as sending_mod

    real_send_file = sending_mod.send_file

    async def corrupting_send_file(stream, path, **kw):  # type: ignore[no-untyped-def]
        class Flip:
            flipped = False

            async def send(self, data: bytes) -> None:
                if not Flip.flipped and data:
                    data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
                    Flip.flipped = True
                await stream.send(data)

            async def receive(self, n: int) -> bytes:
                return await stream.receive(n)

            async def aclose(self) -> None:
                await stream.aclose()

        return await real_send_file(Flip(), path, **kw)

    monkeypatch.setattr(sending_mod, "send_file", corrupting_send_file)
    src = make_file(tmp_path, "c.bin", 50_000)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    [got] = await (await first_offer(bob)).accept(inbox)
    with pytest.raises(errors.ChecksumMismatch):
        await asyncio.wait_for(got.wait(), 30)
    with pytest.raises(errors.TransferError):
        await asyncio.wait_for(sent.wait(), 30)
    assert list(inbox.iterdir()) == []


async def test_size_lie_is_refused(alice: Client, bob: Client, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Offered size larger than what is sent: SizeMismatch, nothing looks complete."""
    import jinglefs.client as client_mod

    real_desc = client_mod.FileDesc

    def lying_desc(**kw):  # type: ignore[no-untyped-def]
        kw["size"] = kw["size"] + 1000
        return real_desc(**kw)

    monkeypatch.setattr(client_mod, "FileDesc", lying_desc)
    src = make_file(tmp_path, "s.bin", 10_000)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    [got] = await (await first_offer(bob)).accept(inbox)
    with pytest.raises((errors.SizeMismatch, errors.StreamClosed, errors.TransferError)):
        await asyncio.wait_for(got.wait(), 40)
    assert not (inbox / "s.bin").exists()
    await asyncio.wait_for(asyncio.shield(_settle(sent)), 40)


async def _settle(transfer: object) -> None:
    try:
        await transfer.wait()  # type: ignore[attr-defined]
    except errors.JingleFSError:
        pass
