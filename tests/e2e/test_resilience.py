"""Interrupted transfers: resume with XEP-0234 ranges; peers and servers that vanish."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from jinglefs import errors
from jinglefs.client import Client
from jinglefs.events import Accepted, Completed, Progress

from .test_transfer import first_offer, make_file

pytestmark = pytest.mark.e2e


async def wait_progress(transfer: object, at_least: int) -> None:
    async for e in transfer.events():  # type: ignore[attr-defined]
        if isinstance(e, Progress) and e.done >= at_least:
            return


async def test_resume_sends_only_the_missing_bytes(plain: tuple[Client, Client],
                                                   tmp_path: Path) -> None:
    alice, bob = plain  # JET off: an unencrypted partial is kept
    src = make_file(tmp_path, "movie.bin", 8 * 1024 * 1024)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # First attempt: the receiver stops it half way; the partial stays for resume.
    await alice.send_files(bob.jid, [src], transport="ibb")
    [first] = await (await first_offer(bob)).accept(inbox)
    await asyncio.wait_for(wait_progress(first, 2 * 1024 * 1024), 60)
    await first.cancel()
    partial = inbox / "movie.bin.jfs-part"
    for _ in range(100):  # the receiving flow flushes what it has, then ends
        if not bob._tasks:
            break
        await asyncio.sleep(0.05)
    assert not bob._tasks
    kept = partial.stat().st_size
    assert 0 < kept < src.stat().st_size
    assert partial.read_bytes() == src.read_bytes()[:kept]

    # Second attempt: same file, same sender: accepted with <range offset=kept/>.
    [again] = await alice.send_files(bob.jid, [src], transport="ibb")
    [second] = await (await first_offer(bob)).accept(inbox)
    done = await asyncio.wait_for(second.wait(), 60)
    assert isinstance(done, Completed) and done.verified
    assert Path(done.path).read_bytes() == src.read_bytes()
    [accepted] = [e async for e in again.events() if isinstance(e, Accepted)]
    assert accepted.offset == kept  # the sender started at the receiver's offset
    await asyncio.wait_for(again.wait(), 30)
    assert sorted(p.name for p in inbox.iterdir()) == ["movie.bin"]


async def test_peer_vanishing_mid_transfer_fails_both_sides_with_a_reason(
        plain: tuple[Client, Client], tmp_path: Path) -> None:
    alice, bob = plain  # JET off: an unencrypted partial is kept
    src = make_file(tmp_path, "long.bin", 40 * 1024 * 1024)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    [sent] = await alice.send_files(bob.jid, [src], transport="ibb")
    [got] = await (await first_offer(bob)).accept(inbox)
    await asyncio.wait_for(wait_progress(got, 512 * 1024), 60)
    # Bob's machine drops off the network: no session-terminate, no unavailable presence
    # from him; the server notices the dead stream.
    transport = bob.connection.xmpp.transport
    assert transport is not None
    start = time.monotonic()
    transport.abort()
    with pytest.raises(errors.JingleFSError) as sender_err:
        await asyncio.wait_for(sent.wait(), 30)
    with pytest.raises(errors.JingleFSError) as receiver_err:
        await asyncio.wait_for(got.wait(), 30)
    elapsed = time.monotonic() - start
    print(f"both sides failed {elapsed:.1f} s after the drop: {sender_err.value!s} | "
          f"{receiver_err.value!s}")
    assert "connection" in str(receiver_err.value).lower()
    assert str(sender_err.value)  # a plain reason, not an empty error
    # The receiver keeps only the resumable partial: nothing looks complete.
    assert not (inbox / "long.bin").exists()
    assert os.path.exists(inbox / "long.bin.jfs-part")
