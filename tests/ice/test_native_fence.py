"""Canaries for the fence at the end of jinglefs/ice/native.py: one per aiolibdatachannel /
libdatachannel detail it relies on beyond the binding's public API.

Each fails with the detail's name and the installed version when a release changes it, so
an upgrade breaks here, with a reason.  Real peer connections on loopback, no servers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from importlib.metadata import version
from typing import Any

import pytest

from jinglefs.ice.protocol import DtlsFingerprint
from tests.ice.backends import NO_WHEEL, NO_WHEEL_REASON, native_module

pytestmark = pytest.mark.skipif(NO_WHEEL, reason=NO_WHEEL_REASON)

LO = ["127.0.0.1"]
BOUND = 10.0  # only to fail instead of hanging


def broken(detail: str, what: str) -> str:
    native = native_module()
    return (f"{detail}: {what} (installed: aiolibdatachannel {version('aiolibdatachannel')}; "
            f"the fence was checked against {native.CHECKED}); see jinglefs/ice/native.py")


@pytest.fixture
async def connected() -> AsyncIterator[tuple[Any, Any, Any, Any]]:
    native = native_module()
    a = native.NativeIceSession(initiator=True, host_addresses=LO)
    b = native.NativeIceSession(initiator=False, host_addresses=LO)
    await b.add_remote(await a.gather())
    await a.add_remote(await b.gather())
    async with asyncio.timeout(BOUND):
        sa, sb = await asyncio.gather(a.connect(BOUND), b.connect(BOUND))
    yield a, b, sa, sb
    await a.close()
    await b.close()


async def test_selected_pair_through_ctypes(connected: tuple[Any, Any, Any, Any]) -> None:
    """rtcGetSelectedCandidatePair (rtc.h), called on the extension module with
    ``PeerConnection._native.handle``."""
    native = native_module()
    a, b, _, _ = connected
    assert isinstance(getattr(getattr(a._pc, "_native", None), "handle", None), int), broken(
        "PeerConnection._native.handle", "the peer connection id is not there any more")
    lines = native._fence_selected_pair(a._pc)
    assert lines is not None, broken("rtcGetSelectedCandidatePair", "no pair once connected")
    local, remote = lines
    assert local.startswith("a=candidate:") and remote.startswith("a=candidate:"), broken(
        "rtcGetSelectedCandidatePair", f"returns {lines!r}")
    pa, pb = a.selected_pair(), b.selected_pair()
    assert pa is not None and pb is not None
    assert pa.remote_address == pb.local_address and pa.local_address == pb.remote_address


async def test_receive_queue_swap_keeps_every_message_in_order(
        connected: tuple[Any, Any, Any, Any]) -> None:
    """DataChannel._recv_queue (an asyncio.Queue of 1024 that drops the oldest) is looked up
    by DataChannel._handle_message at each message: after the swap nothing is dropped."""
    _, _, sa, sb = connected
    rx = sb._rx
    assert rx is not None
    queue = getattr(rx, "_recv_queue", None)
    assert isinstance(queue, asyncio.Queue) and queue.maxsize == 0, broken(
        "DataChannel._recv_queue", f"is {queue!r}, not the unbounded queue the fence put")
    # More than the binding's 1024 messages, all sent before any is read.
    messages = [i.to_bytes(4, "big") + os.urandom(60) for i in range(1500)]
    for m in messages:
        await sa._tx.send(m)
    got = []
    async with asyncio.timeout(BOUND):
        while len(got) < len(messages):
            got.append(await rx.recv())
    assert got == messages, broken("DataChannel._handle_message",
                                   "messages were dropped or reordered")


async def test_fingerprint_mismatch_is_logged_with_the_expected_fingerprint() -> None:
    """libdatachannel reports a forged fingerprint only in its log: 'Invalid fingerprint
    "…", expected "…"' (PeerConnection::checkFingerprint), routed by ldc.init_logger."""
    native = native_module()
    a = native.NativeIceSession(initiator=True, host_addresses=LO)
    b = native.NativeIceSession(initiator=False, host_addresses=LO)
    offer = await a.gather()
    await b.add_remote(offer)
    answer = await b.gather()
    fp = answer.fingerprint
    assert fp is not None
    forged = DtlsFingerprint(fp.hash, ("00" if fp.value[:2] != "00" else "01") + fp.value[2:],
                             fp.setup)
    await a.add_remote(replace(answer, ice=replace(answer.ice, fingerprint=forged)))
    results = await asyncio.gather(a.connect(BOUND), b.connect(BOUND), return_exceptions=True)
    assert forged.value in native._mismatched, broken(
        "libdatachannel's log", "no 'Invalid fingerprint …, expected …' line for the forgery")
    assert str(results[0]) == native.FINGERPRINT_MISMATCH
    await a.close()
    await b.close()
