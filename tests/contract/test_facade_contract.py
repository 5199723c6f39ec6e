"""The fake façade (tests/fakes.py) tells what the real client tells.

Every scenario runs twice, with the same steps: against two ``FakeClient``s, and against
two real :class:`jinglefs.client.Client` s (alice sends to bob over IBB) on the real
loopback Prosody.  Each side of each run is reduced to a :class:`Trace` (event types,
final state, error kind and exit code, what ``wait()`` raised, the verified flag, the file)
and compared with ONE expected trace per scenario, so the fake and the real client must
agree with each other.  The GUI and CLI tests trust the fake; this is why they may.

Faking a scenario needs the outcome of each side (the fake has no peer); the other side's
error comes from :func:`tests.fakes.peer_error`, i.e. from the real driver's reason tables.
The real runs provoke the same situations: a sender whose stream stops after the first
chunk (held mid-transfer, as in tests/e2e/test_transfer.py's corrupted sender), a flipped
byte, a receiver that goes unavailable (XEP-0166 §7.4 ``gone`` after ``peer_gone``).

"Verified" on both sides (docs/protocol.md §5.8): between two jinglefs clients the receiver
checks the sender's checksum and confirms it, so both say verified.  Against peers that do
not take part (Dino-like) the real clients play that part: a receiver that never confirms
(``unconfirmed``), a sender that never sends a checksum (``no-sender-hash``); the fake is
told the same with ``FakeClient(peer_confirms=...)`` and ``FakeOffer(sender_hash=...)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pytest

from jinglefs import errors
from jinglefs.api import ClientLike, OfferLike, TransferLike
from jinglefs.events import (
    Completed,
    Failed,
    FileInfo,
    Offered,
    Progress,
    TransferState,
    Verification,
)
from tests.fakes import HANG, FakeClient, FakeOffer, peer_error
from tests.fakes import _Hang as Hang

NAME = "contract.bin"
#: More than one sender chunk (jinglefs.transfer.sender.CHUNK_SIZE = 1 MiB), so a held
#: sender has reported its first chunk before it stops.
SIZE = (1 << 20) + 500_000
WAIT = 60.0

SCENARIOS = ("transfer", "unconfirmed", "no-sender-hash", "decline", "cancel-by-sender",
             "cancel-by-receiver", "checksum-mismatch", "peer-gone")


@dataclass(frozen=True)
class Trace:
    """What one side of a transfer showed through the façade."""

    #: event names in order; a run of Progress counts once (a late listener sees only
    #: the newest Progress of the real handle's history).
    events: tuple[str, ...]
    state: TransferState
    #: Failed.error and Failed.exit_code
    error: str | None = None
    exit_code: int | None = None
    #: kind of the exception ``wait()`` raised
    raised: str | None = None
    #: Completed.verified, Completed.verification (its value) and whether Completed.reason
    #: says why it is not verified
    verified: bool = False
    verification: str | None = None
    explained: bool = False
    #: (name, size) from Offered
    file: tuple[str, int] = (NAME, SIZE)
    #: the file at Completed.path holds the sent bytes
    same_bytes: bool | None = None


UP_TO_BYTES = ("offered", "accepted", "transport", "progress")


def completed(how: Verification) -> Trace:
    verified = how.verified
    events = (*UP_TO_BYTES, *(("verified",) if verified else ()), "completed")
    return Trace(events, TransferState.COMPLETED, verified=verified, verification=how.value,
                 explained=not verified, same_bytes=True)


def failed(kind: str, exit_code: int, *, before: tuple[str, ...] = UP_TO_BYTES) -> Trace:
    return Trace((*before, "failed"), TransferState.FAILED, error=kind, exit_code=exit_code,
                 raised=kind)


#: scenario -> (sender's trace, receiver's trace or None when it has no transfer)
EXPECTED: dict[str, tuple[Trace, Trace | None]] = {
    # The receiver checks the sender's checksum (XEP-0234 §8.2) and confirms it: both verified.
    "transfer": (completed(Verification.RECEIVER_CONFIRMED),
                 completed(Verification.SENDER_HASH)),
    # A receiver that does not confirm (Dino, Conversations): the sender says so.
    "unconfirmed": (completed(Verification.NOT_CONFIRMED), None),
    # A sender that gives no hash (Dino): kept, "complete, not verified"; nothing to confirm.
    "no-sender-hash": (completed(Verification.NOT_CONFIRMED),
                       completed(Verification.NO_SENDER_HASH)),
    "decline": (failed("declined", 10, before=("offered",)), None),
    "cancel-by-sender": (failed("cancelled", 9), failed("cancelled", 9)),
    "cancel-by-receiver": (failed("cancelled", 9), failed("cancelled", 9)),
    # The receiver ends the session with media-error; the sender only learns that.
    "checksum-mismatch": (failed("transfer-failed", 7), failed("hash-mismatch", 8)),
    # The receiver went offline; what it sees is not shown anywhere (it is offline).
    "peer-gone": (failed("peer-gone", 7), None),
}


class World(Protocol):
    """Two accounts: alice sends, bob receives."""

    async def send(self, src: Path) -> TransferLike: ...

    async def offer(self) -> OfferLike: ...

    async def receiver_vanishes(self) -> None: ...


async def first_offer(client: ClientLike) -> OfferLike:
    async for offer in client.offers():
        return offer
    raise AssertionError("offers() ended without an offer")


# ------------------------------------------------------------------------- the fake

Outcome = errors.JingleFSError | Hang | None

#: scenario -> (alice's outcome, bob's outcome); HANG: mid-transfer until cancelled.
FAKE_OUTCOMES: dict[str, tuple[Outcome, Outcome]] = {
    "transfer": (None, None),
    "unconfirmed": (None, None),
    "no-sender-hash": (None, None),
    "decline": (peer_error(errors.Declined("no thanks")), None),
    "cancel-by-sender": (HANG, peer_error(errors.Cancelled("cancelled here"))),
    "cancel-by-receiver": (peer_error(errors.Cancelled("cancelled here")), HANG),
    "checksum-mismatch": (peer_error(errors.ChecksumMismatch("sha-256")),
                          errors.ChecksumMismatch("sha-256")),
    "peer-gone": (errors.PeerGone("the contact went offline"), HANG),
}


#: scenario -> (the receiver confirms the checksum, the sender gives a hash); both are
#: jinglefs clients, so both do, unless the scenario plays a Dino-like peer.
FAKE_PEERS: dict[str, tuple[bool, bool]] = {
    "unconfirmed": (False, True),
    "no-sender-hash": (False, False),
}


class FakeWorld:
    def __init__(self, scenario: str) -> None:
        confirms, self.sender_hash = FAKE_PEERS.get(scenario, (True, True))
        self.alice = FakeClient("alice@jinglefs.test/jinglefs", peer_confirms=confirms)
        self.bob = FakeClient("bob@jinglefs.test/jinglefs")
        self.sender_outcome, self.receiver_outcome = FAKE_OUTCOMES[scenario]

    async def send(self, src: Path) -> TransferLike:
        if self.sender_outcome is not None:
            self.alice.outcomes[src.name] = self.sender_outcome
        [sent] = await self.alice.send_files(self.bob.jid, [src])
        outcomes = {} if self.receiver_outcome is None else {src.name: self.receiver_outcome}
        self.bob.push_offer(FakeOffer(self.alice.jid, [FileInfo(src.name, src.stat().st_size)],
                                      outcomes=outcomes, contents=[src.read_bytes()],
                                      sender_hash=self.sender_hash))
        return sent

    async def offer(self) -> OfferLike:
        return await first_offer(self.bob)

    async def receiver_vanishes(self) -> None:
        return None  # scripted: the sender's outcome is PeerGone


# ------------------------------------------------------------------------- the real one

StreamWrapper = Callable[[Any], Any]


def wrap_sender_stream(monkeypatch: pytest.MonkeyPatch, wrap: StreamWrapper) -> None:
    """Make the real sender write through ``wrap(stream)`` (see tests/e2e/test_transfer.py)."""
    import jinglefs.sending as sending_mod

    real_send_file = sending_mod.send_file

    async def send_file(stream: Any, path: Any, **kw: Any) -> dict[str, bytes]:
        return await real_send_file(wrap(stream), path, **kw)

    monkeypatch.setattr(sending_mod, "send_file", send_file)


class _Through:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.chunks = 0

    async def receive(self, n: int) -> bytes:
        return bytes(await self.stream.receive(n))

    async def aclose(self) -> None:
        await self.stream.aclose()


class HeldAfterFirstChunk(_Through):
    """Sends the first chunk, then waits until the session ends (mid-transfer)."""

    async def send(self, data: bytes) -> None:
        self.chunks += 1
        if self.chunks > 1:
            await asyncio.Event().wait()  # cancelled when the session ends
        await self.stream.send(data)


class FlipFirstByte(_Through):
    """Bytes that do not match the checksum the sender computes (XEP-0234 §8.2)."""

    async def send(self, data: bytes) -> None:
        self.chunks += 1
        if self.chunks == 1 and data:
            data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
        await self.stream.send(data)


def receiver_never_confirms(monkeypatch: pytest.MonkeyPatch) -> None:
    """bob receives like Dino or Conversations: no checksum sent back (docs/protocol.md §5.8)."""
    import jinglefs.receiving as receiving_mod

    monkeypatch.setattr(receiving_mod, "confirm_checksum", lambda *args: None)


def sender_gives_no_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """alice sends like Dino: no checksum after the bytes (XEP-0234 §8.2 is optional for
    it); bob waits a short CHECKSUM_WAIT for it."""
    import jinglefs.receiving as receiving_mod
    from jinglefs.jingle.model import Checksum, Role
    from jinglefs.jingle.session import JingleSession

    real_send_info = JingleSession.send_info

    def send_info(self: JingleSession, info: Any, now: float) -> None:
        if isinstance(info, Checksum) and self.role is Role.INITIATOR:
            return
        real_send_info(self, info, now)

    monkeypatch.setattr(JingleSession, "send_info", send_info)
    monkeypatch.setattr(receiving_mod, "CHECKSUM_WAIT", 1.0)


REAL_PEERS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "unconfirmed": receiver_never_confirms,
    "no-sender-hash": sender_gives_no_hash,
}


REAL_STREAMS: dict[str, StreamWrapper] = {
    "cancel-by-sender": HeldAfterFirstChunk,
    "cancel-by-receiver": HeldAfterFirstChunk,
    "peer-gone": HeldAfterFirstChunk,
    "checksum-mismatch": FlipFirstByte,
}


class RealWorld:
    def __init__(self, alice: Any, bob: Any) -> None:
        self.alice = alice
        self.bob = bob

    async def send(self, src: Path) -> TransferLike:
        [sent] = await self.alice.send_files(self.bob.jid, [src], transport="ibb")
        return sent

    async def offer(self) -> OfferLike:
        return await first_offer(self.bob)

    async def receiver_vanishes(self) -> None:
        # RFC 6121 §4.5: unavailable presence; alice ends the session ``gone`` once
        # Timeouts.peer_gone passed without bob coming back (jinglefs.client).
        self.bob.connection.xmpp.send_presence(ptype="unavailable")


CASES = [
    *[pytest.param(("fake", s), id=f"fake-{s}") for s in SCENARIOS],
    *[pytest.param(("real", s), id=f"real-{s}", marks=pytest.mark.e2e) for s in SCENARIOS],
]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(implementation, scenario)"""
    impl, scenario = request.param
    return impl, scenario


@pytest.fixture
async def world(case: tuple[str, str], request: pytest.FixtureRequest,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    impl, scenario = case
    if impl == "fake":
        yield FakeWorld(scenario)
        return
    from tests.e2e.conftest import login

    prosody = request.getfixturevalue("prosody")
    if scenario in REAL_STREAMS:
        wrap_sender_stream(monkeypatch, REAL_STREAMS[scenario])
    if scenario in REAL_PEERS:
        REAL_PEERS[scenario](monkeypatch)
    alice = await login(prosody, "alice")
    bob = await login(prosody, "bob")
    try:
        yield RealWorld(alice, bob)
    finally:
        await alice.aclose()
        await bob.aclose()


# ------------------------------------------------------------------------- the scenarios

async def reaches_the_bytes(t: TransferLike) -> None:
    async for ev in t.events():
        if isinstance(ev, Progress) and ev.done > 0:
            return
    raise AssertionError(f"{t.direction.value} side ended before any byte moved")


def collapse(names: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        if not (name == "progress" and out and out[-1] == "progress"):
            out.append(name)
    return tuple(out)


async def trace(t: TransferLike, src: Path) -> Trace:
    raised = None
    try:
        await asyncio.wait_for(t.wait(), WAIT)
    except errors.JingleFSError as exc:
        raised = errors.kind_of(exc)
    events = [ev async for ev in t.events()]
    first, last = events[0], events[-1]
    assert isinstance(first, Offered) and isinstance(last, Completed | Failed)
    return Trace(
        events=collapse(ev.name for ev in events),
        state=t.state,
        error=last.error if isinstance(last, Failed) else None,
        exit_code=last.exit_code if isinstance(last, Failed) else None,
        raised=raised,
        verified=isinstance(last, Completed) and last.verified,
        verification=(last.verification.value if isinstance(last, Completed)
                      and last.verification is not None else None),
        explained=isinstance(last, Completed) and bool(last.reason),
        file=(first.file.name, first.file.size),
        same_bytes=(Path(last.path).read_bytes() == src.read_bytes()
                    if isinstance(last, Completed) else None),
    )


async def play(world: World, scenario: str, tmp_path: Path) -> tuple[Trace, Trace | None]:
    src = tmp_path / "out" / NAME
    src.parent.mkdir()
    src.write_bytes(bytes(range(256)) * (SIZE // 256) + b"\x07" * (SIZE % 256))
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    sent = await world.send(src)
    offer = await asyncio.wait_for(world.offer(), WAIT)
    assert [(f.name, f.size) for f in offer.files] == [(NAME, SIZE)]
    if scenario == "decline":
        await offer.decline()
        return await trace(sent, src), None

    [got] = await offer.accept(inbox)
    if scenario in ("cancel-by-sender", "cancel-by-receiver", "peer-gone"):
        await asyncio.wait_for(reaches_the_bytes(sent), WAIT)
        await asyncio.wait_for(reaches_the_bytes(got), WAIT)
        if scenario == "cancel-by-sender":
            await sent.cancel()
        elif scenario == "cancel-by-receiver":
            await got.cancel()
        else:
            await world.receiver_vanishes()
            sender = await trace(sent, src)
            await got.cancel()  # the vanished side's transfer is nobody's concern
            return sender, None
    if scenario == "unconfirmed":
        sender = await trace(sent, src)
        await asyncio.wait_for(got.wait(), WAIT)  # the Dino-like receiver's view: not ours
        return sender, None
    return await trace(sent, src), await trace(got, src)


async def test_fake_and_real_show_the_same(case: tuple[str, str], world: World,
                                           tmp_path: Path) -> None:
    _, scenario = case
    sender, receiver = await play(world, scenario, tmp_path)
    expected_sender, expected_receiver = EXPECTED[scenario]
    assert sender == expected_sender
    assert receiver == expected_receiver


# ------------------------------------------------------------------------- a folder

#: One action (a folder with a subfolder): one offer listing every file, each file its own
#: transfer on both sides, the folders kept under the receiver's folder (docs/protocol.md
#: §3.5).  Between two jinglefs clients that is one session with a content per file.
FOLDER = {"album/cover.jpg": 3_000, "album/disc1/01.flac": SIZE, "album/disc1/02.flac": 70_001}


def make_folder(root: Path) -> Path:
    for i, (name, size) in enumerate(FOLDER.items()):
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes((i + n) % 251 for n in range(size)))
    return root / "album"


@pytest.mark.parametrize("impl", [
    pytest.param("fake", id="fake-folder"),
    pytest.param("real", id="real-folder", marks=pytest.mark.e2e)])
async def test_a_folder_is_one_offer_on_fake_and_real(impl: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    root = tmp_path / "out"
    folder = make_folder(root)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    src = {name: root.joinpath(*name.split("/")) for name in FOLDER}
    closing: list[Any] = []
    try:
        if impl == "fake":
            fake = FakeWorld("transfer")
            alice, bob = fake.alice, fake.bob
            sent = await alice.send_files(bob.jid, [folder])
            # The fake has no peer: bob gets what the real alice's one session offers.
            bob.push_offer(FakeOffer(alice.jid, [t.file for t in sent],
                                     contents=[src[t.file.name].read_bytes() for t in sent]))
        else:
            from tests.e2e.conftest import login

            prosody = request.getfixturevalue("prosody")
            alice = await login(prosody, "alice")
            closing.append(alice)
            bob = await login(prosody, "bob")
            closing.append(bob)
            sent = await alice.send_files(bob.jid, [folder], transport="ibb")
        offer = await asyncio.wait_for(first_offer(bob), WAIT)
        assert [(f.name, f.size) for f in offer.files] == list(FOLDER.items())
        got = await offer.accept(inbox)
        senders = [await trace(t, src[t.file.name]) for t in sent]
        receivers = [await trace(t, src[t.file.name]) for t in got]
    finally:
        for client in closing:
            await client.aclose()
    expected_sender, expected_receiver = EXPECTED["transfer"]
    assert expected_receiver is not None
    assert senders == [replace(expected_sender, file=item) for item in FOLDER.items()]
    assert receivers == [replace(expected_receiver, file=item) for item in FOLDER.items()]
    kept = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*") if p.is_file())
    assert kept == sorted(FOLDER)
