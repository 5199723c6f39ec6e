"""A scripted, network-free stand-in for the jinglefs façade (``jinglefs.api``).

:class:`FakeClient`, :class:`FakeOffer` and :class:`FakeTransfer` implement
:class:`~jinglefs.api.ClientLike`, :class:`~jinglefs.api.OfferLike` and
:class:`~jinglefs.api.TransferLike`.  The CLI tests and the GUI tests drive them::

    client = FakeClient()
    client.outcomes["secret.txt"] = Declined("no thanks")      # per file name; default: success
    client.outcomes["big.iso"] = HANG                # mid-transfer until cancelled (or released)
    transfers = await client.send_files("bob@example.org", [Path("a.txt"), Path("secret.txt")])
    await transfers[0].wait()          # Completed
    await transfers[1].wait()          # raises Declined

    offer = FakeOffer("carol@example.org/laptop", [FileInfo("photo.jpg", 2048)],
                      contents=[b"..."])                      # accept() writes the bytes
    client.push_offer(offer)           # delivered by client.offers() and client.events()

As with the real client, a folder given to ``send_files`` becomes one transfer per file,
named ``folder/sub/file`` (:func:`offered_files`), and one offer lists every file of one
action: ``FakeOffer(peer, [FileInfo("album/a.jpg", 1), FileInfo("album/disc/b.flac", 2)])``,
whose ``accept`` writes each under ``dest_dir`` with its folders (:func:`received_path`).

A transfer plays a *script*: a list of steps run in a task, one step per event-loop turn.

* a :class:`~jinglefs.events.TransferEvent` is emitted as is (``Completed``/``Failed``
  end the transfer; a ``Failed`` uses :attr:`FakeTransfer.error` or an exception built
  from its ``error`` kind); the state follows :func:`jinglefs.events.next_state`;
* :data:`HANG` waits until :meth:`FakeTransfer.cancel` (or :meth:`FakeTransfer.release`);
* a callable is called with the transfer (sync or async), e.g. to send a signal.

:func:`success_script`, :func:`failure_script` and :func:`running_script` build the usual
sequences; :func:`peer_error` is what the other side of a session reports for an error.
Tests can also drive a transfer by hand with ``script=[]`` (or ``[HANG]``) and
:meth:`FakeTransfer.emit`.
Use :func:`fake_connect` for the ``connect`` function the CLI takes, and
:class:`MemoryKeyring` as an in-memory ``keyring`` backend.

The fake tells what the real client tells: error kinds and exit codes come from
``jinglefs.errors.ERROR_KINDS``, ``Failed`` events from ``jinglefs.handles.failed_event``,
states from ``jinglefs.events.TRANSITIONS``, and "verified" means what it means for the
real client (``jinglefs.events.Verification``): a receiver is verified when the sender gave
a hash (``FakeOffer(sender_hash=False)``: a Dino-like sender that gives none), a sender
only when its peer confirmed the checksum (``FakeClient(peer_confirms=True)``: a jinglefs
receiver; by default the peer does not confirm, as Dino and Conversations).
``tests/contract/test_facade_contract.py`` runs the same scenarios against this fake and
against the real client on a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from jinglefs import errors
from jinglefs.api import (
    Account,
    ClientEvent,
    Contact,
    ContactsChanged,
    OfferReceived,
    PeerDevice,
    Settings,
    TransferLike,
)
from jinglefs.events import (
    Accepted,
    Completed,
    Direction,
    Failed,
    FileInfo,
    Offered,
    PathKind,
    Progress,
    Protection,
    TransferEvent,
    TransferState,
    TransportSelected,
    Verification,
    Verified,
    next_state,
)
from jinglefs.handles import failed_event
from jinglefs.jet import policy as encryption_policy
from jinglefs.jet.envelope import EnvelopeError
from jinglefs.jid import bare_jid
from jinglefs.omemo import trust
from jinglefs.transfer.names import UnsafePathError, safe_filename, safe_relative_path
from jinglefs.transfer.selection import files_to_send

__all__ = [
    "HANG",
    "Step",
    "FakeTransfer",
    "FakeOffer",
    "FakeClient",
    "FakeOmemo",
    "fake_fingerprint",
    "FakeConnect",
    "fake_connect",
    "success_script",
    "failure_script",
    "running_script",
    "failed_event",
    "error_for_failed",
    "peer_error",
    "offered_files",
    "received_path",
    "MemoryKeyring",
]

_ids = itertools.count(1)


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


#: Script step: stop here until the transfer is cancelled (or released).
HANG: Final = _Hang()

Step = TransferEvent | _Hang | Callable[["FakeTransfer"], Any]

def error_for_failed(ev: Failed) -> errors.JingleFSError:
    """An exception matching a scripted ``Failed`` event (by its ``error`` kind)."""
    row = errors.row_by_kind(ev.error)
    cls = row.exception if row is not None else errors.TransferError
    if not issubclass(cls, errors.JingleFSError) or cls is errors.ProtocolError:
        cls = errors.TransferError
    return cls(ev.reason)


def peer_error(error: errors.JingleFSError) -> errors.JingleFSError:
    """What the *other* side of a real session reports when this side fails with
    ``error``: the session ends with ``reason_for_error(error)`` (XEP-0166 §7.4), which
    the peer maps back with ``error_for_end`` (jinglefs.driver's tables)."""
    from jinglefs.driver import error_for_end, reason_for_error
    from jinglefs.jingle.model import ReasonInfo
    from jinglefs.jingle.session import SessionEnded

    return error_for_end(SessionEnded(ReasonInfo(reason_for_error(error)), by_peer=True))


def success_script(
    transfer_id: str,
    file: FileInfo,
    *,
    peer: str,
    direction: Direction,
    path: PathKind = PathKind.S5B_DIRECT,
    local_path: str = "",
    steps: int = 4,
    algo: str = "sha-256",
    digest: bytes = b"\x00" * 32,
    rate: float = 1_000_000.0,
    verified: bool | None = None,
) -> list[Step]:
    """Offered, Accepted, TransportSelected, ``steps`` Progress, then Completed.

    ``verified`` (default: True for a receiver, False for a sender) says whether the
    digest was compared, as jinglefs.receiving / jinglefs.sending decide it: a receiver
    whose sender gave a hash, a sender whose receiver confirmed the checksum (a jinglefs
    receiver, docs/protocol.md §5.8) get ``Verified`` before ``Completed(verified=True)``;
    otherwise ``Completed(verified=False)`` says why (``Verification``).
    """
    script: list[Step] = [
        Offered(transfer_id, peer=peer, direction=direction, file=file),
        Accepted(transfer_id),
        TransportSelected(transfer_id, path=path, detail="", encrypted=path.encrypted,
                          protection=Protection.of(path, False)),
    ]
    for i in range(1, steps + 1):
        done = file.size * i // steps
        left = file.size - done
        script.append(Progress(transfer_id, done=done, total=file.size, rate=rate,
                               eta=left / rate if rate else None))
    receiving = direction is Direction.RECEIVE
    if verified is None:
        verified = receiving
    if receiving:
        how = Verification.SENDER_HASH if verified else Verification.NO_SENDER_HASH
    else:
        how = Verification.RECEIVER_CONFIRMED if verified else Verification.NOT_CONFIRMED
    if verified:
        script.append(Verified(transfer_id, algo=algo, digest=digest))
    script.append(Completed(transfer_id, path=local_path or file.name, size=file.size,
                            hashes={algo: digest}, verified=verified, verification=how,
                            reason="" if verified else how.text))
    return script


def running_script(transfer_id: str, file: FileInfo, *, peer: str, direction: Direction,
                   path: PathKind = PathKind.S5B_DIRECT, local_path: str = "",
                   verified: bool | None = None) -> list[Step]:
    """:func:`success_script` that stops at :data:`HANG` after its first ``Progress``:
    a transfer in the middle of its bytes until cancelled (or released, then it completes)."""
    script = success_script(transfer_id, file, peer=peer, direction=direction, path=path,
                            local_path=local_path, verified=verified)
    first = next(i for i, step in enumerate(script) if isinstance(step, Progress))
    script.insert(first + 1, HANG)
    return script


def failure_script(
    transfer_id: str,
    file: FileInfo,
    error: errors.JingleFSError,
    *,
    peer: str,
    direction: Direction,
    path: PathKind = PathKind.S5B_DIRECT,
) -> list[Step]:
    """The steps up to where ``error`` usually happens, then ``Failed``.

    Declined (and anything raised before acceptance) fails right after Offered; a
    checksum or size mismatch after the whole file moved; everything else half-way.
    """
    tid = transfer_id
    script: list[Step] = [Offered(tid, peer=peer, direction=direction, file=file)]
    if not isinstance(error, errors.Declined | errors.RecipientUnavailable
                      | errors.NegotiationTimeout):
        script.append(Accepted(tid))
        script.append(TransportSelected(tid, path=path, encrypted=path.encrypted,
                                        protection=Protection.of(path, False)))
        done = file.size if isinstance(error, errors.ChecksumMismatch
                                       | errors.SizeMismatch) else file.size // 2
        script.append(Progress(tid, done=done, total=file.size, rate=1_000_000.0))
    script.append(failed_event(tid, error))
    return script


class FakeTransfer:
    """A :class:`~jinglefs.api.TransferLike` that plays a script.

    :ivar history: every event emitted so far.
    :ivar cancelled: True once :meth:`cancel` was called.
    :ivar error: the exception :meth:`wait` raises after a ``Failed`` event.
    """

    def __init__(self, *, peer: str, file: FileInfo, direction: Direction,
                 script: Sequence[Step] | None = None, id: str | None = None,
                 error: errors.JingleFSError | None = None) -> None:
        self.id = id or f"t{next(_ids)}"
        self.peer = peer
        self.direction = direction
        self.file = file
        self.script: list[Step] = list(script) if script is not None else success_script(
            self.id, file, peer=peer, direction=direction)
        self.error = error
        self.history: list[TransferEvent] = []
        self.cancelled = False
        self.cancel_calls = 0
        self._state = TransferState.OFFERED
        self._path: PathKind | None = None
        self._changed = asyncio.Condition()
        self._released = asyncio.Event()
        #: the script waits at a HANG step now; releases that came before it got there
        self._hanging = False
        self._early_releases = 0
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- TransferLike

    @property
    def state(self) -> TransferState:
        return self._state

    @property
    def path(self) -> PathKind | None:
        return self._path

    @property
    def finished(self) -> bool:
        return self._state.finished

    async def events(self) -> AsyncIterator[TransferEvent]:
        """Every event from the first, ending after Completed/Failed."""
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._has_more, index))
                batch = self.history[index:]
            for ev in batch:
                index += 1
                yield ev
            if self.finished and index >= len(self.history):
                return

    def _has_more(self, seen: int) -> bool:
        return len(self.history) > seen or self.finished

    async def wait(self) -> TransferEvent:
        async with self._changed:
            await self._changed.wait_for(lambda: self.finished)
        last = self.history[-1]
        if isinstance(last, Failed):
            raise self.error or error_for_failed(last)
        return last

    async def cancel(self) -> None:
        self.cancel_calls += 1
        if self.finished:
            return
        self.cancelled = True
        self.error = errors.Cancelled("cancelled here")  # what TransferHandle.cancel says
        self._released.set()
        await self.emit(failed_event(self.id, self.error))

    # ------------------------------------------------------------- driving

    def start(self) -> asyncio.Task[None]:
        """Run the script in a task (FakeClient/FakeOffer call this for you)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    def release(self) -> None:
        """Let a script waiting at :data:`HANG` go on (or, if it has not reached its HANG
        yet, pass it when it does: a release is never lost)."""
        if self._hanging:
            self._released.set()
        else:
            self._early_releases += 1

    async def emit(self, ev: TransferEvent) -> None:
        """Emit one event now (ignored once the transfer has finished)."""
        if self.finished:
            return
        async with self._changed:
            self.history.append(ev)
            if isinstance(ev, TransportSelected):
                self._path = ev.path
            self._state = next_state(self._state, ev)
            self._changed.notify_all()

    async def _run(self) -> None:
        for step in self.script:
            if self.finished:
                return
            await asyncio.sleep(0)
            if isinstance(step, _Hang):
                if self._early_releases:
                    self._early_releases -= 1
                    continue
                self._released.clear()
                self._hanging = True
                try:
                    await self._released.wait()
                finally:
                    self._hanging = False
            elif isinstance(step, TransferEvent):
                await self.emit(step)
            else:
                result = step(self)
                if inspect.isawaitable(result):
                    await result


def _writer(target: Path, data: bytes) -> Callable[[FakeTransfer], None]:
    def write(_t: FakeTransfer) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return write


def offered_files(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """What the real client offers for ``paths`` (jinglefs.transfer.selection): a folder
    becomes its files named ``folder/sub/file``.  Unlike the real client, a path that does
    not exist is offered as it is (size 0), so tests may send made-up names."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(files_to_send([path]))
        else:
            out.append((path, path.name))
    return out


def received_path(dest_dir: Path, name: str) -> Path:
    """Where the real client puts an offered ``name`` under ``dest_dir``: its folders kept,
    never outside (jinglefs.transfer.names.safe_relative_path)."""
    try:
        rel = safe_relative_path(name)
    except UnsafePathError:
        rel = PurePosixPath(safe_filename(name))
    return Path(dest_dir).joinpath(*rel.parts)


class FakeOffer:
    """An incoming offer (:class:`~jinglefs.api.OfferLike`).

    :param outcomes: per file name, an error to fail that file with after acceptance, or
        :data:`HANG` to stop in the middle of the bytes (:func:`running_script`).
    :param contents: bytes to write into ``dest_dir`` for each file on success (optional).
    :param sender_hash: the sender gave a hash, so a received file is verified; False: a
        Dino-like sender (no hash): "complete, not verified".
    :ivar accepted_into: the directory given to :meth:`accept`, or None.
    :ivar declined: True once :meth:`decline` was called.
    """

    def __init__(self, peer: str, files: Sequence[FileInfo], *, from_contact: bool = True,
                 outcomes: Mapping[str, errors.JingleFSError | _Hang] | None = None,
                 contents: Sequence[bytes] | None = None, path: PathKind = PathKind.S5B_DIRECT,
                 id: str | None = None, sender_hash: bool = True) -> None:
        self.id = id or f"o{next(_ids)}"
        self.peer = peer
        self.files: Sequence[FileInfo] = list(files)
        self.from_contact = from_contact
        self.outcomes = dict(outcomes or {})
        self.contents = list(contents) if contents is not None else None
        self.path = path
        self.sender_hash = sender_hash
        self.accepted_into: Path | None = None
        self.filenames: list[str] | None = None
        self.declined = False
        self.transfers: list[FakeTransfer] = []

    @property
    def answered(self) -> bool:
        return self.declined or self.accepted_into is not None

    async def accept(self, dest_dir: Path, *, filenames: Sequence[str] | None = None
                     ) -> list[TransferLike]:
        if self.answered:  # as jinglefs.handles.OfferHandle
            raise errors.UsageError("this offer was already answered")
        self.accepted_into = Path(dest_dir)
        self.filenames = list(filenames) if filenames is not None else None
        for i, info in enumerate(self.files):
            name = self.filenames[i] if self.filenames else info.name
            target = received_path(Path(dest_dir), name)
            tid = f"{self.id}-{i}"
            outcome = self.outcomes.get(info.name)
            error = outcome if isinstance(outcome, errors.JingleFSError) else None
            script: list[Step]
            if error is not None:
                script = failure_script(tid, info, error, peer=self.peer,
                                        direction=Direction.RECEIVE, path=self.path)
            else:
                make = running_script if isinstance(outcome, _Hang) else success_script
                script = make(tid, info, peer=self.peer, direction=Direction.RECEIVE,
                              path=self.path, local_path=str(target),
                              verified=self.sender_hash)
                if self.contents is not None:
                    data = self.contents[i]
                    script.insert(-1, _writer(target, data))
            t = FakeTransfer(peer=self.peer, file=info, direction=Direction.RECEIVE,
                             script=script, id=tid, error=error)
            self.transfers.append(t)
            t.start()
        return list[TransferLike](self.transfers)

    async def decline(self) -> None:
        if not self.answered:  # declining an answered offer does nothing (OfferHandle)
            self.declined = True


class _Subscription:
    """One ``FakeClient.events()`` iterator; ends when the client is closed."""

    def __init__(self, subscribers: list[asyncio.Queue[ClientEvent | None]]) -> None:
        self._subscribers = subscribers
        self._queue: asyncio.Queue[ClientEvent | None] = asyncio.Queue()
        subscribers.append(self._queue)
        self._done = False

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> ClientEvent:
        if self._done:
            raise StopAsyncIteration
        ev = await self._queue.get()
        if ev is None:
            self._done = True
            if self._queue in self._subscribers:
                self._subscribers.remove(self._queue)
            raise StopAsyncIteration
        return ev


def fake_fingerprint(seed: str) -> str:
    """An OMEMO fingerprint in the form people compare (8 groups of 8 hex digits), the
    same for the same seed."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return " ".join(digest[i:i + 8] for i in range(0, 64, 8))


class FakeOmemo:
    """Our OMEMO device's view of trust (:class:`jinglefs.omemo.device.OmemoDevice`), no
    network: the same rules, from the same pure module (:mod:`jinglefs.omemo.trust`).

    A contact adds a device with :meth:`publish` (a new device id, or a known id with a
    new key: a changed device).  The client sees it at its next look (:meth:`devices`:
    ``devices_of``, or a send to that contact) and decides its trust then, as the real one
    does: blind trust before verification (BTBV), "new-after-verified" once a device of
    that contact is verified.  ``unreachable[bare] = why``: their devices cannot be fetched.
    """

    def __init__(self, own_jid: str, fingerprint: str | None = None) -> None:
        #: our own device's fingerprint: one device per client (per full JID) here
        self.fingerprint = fingerprint or fake_fingerprint(own_jid)
        #: bare JID -> device id -> fingerprint, as published
        self._published: dict[str, dict[int, str]] = {}
        #: (bare JID, fingerprint) -> trust: python-omemo keeps trust per identity key
        self._trust: dict[tuple[str, str], str] = {}
        self._seen: dict[str, list[PeerDevice]] = {}
        self.unreachable: dict[str, str] = {}

    def publish(self, bare: str, device_id: int, fingerprint: str) -> None:
        self._published.setdefault(bare_jid(bare), {})[device_id] = fingerprint

    def devices(self, bare: str) -> list[PeerDevice]:
        peer = bare_jid(bare)
        if peer in self.unreachable:
            raise EnvelopeError(f"cannot fetch the OMEMO devices of {peer}: "
                                f"{self.unreachable[peer]}")
        published = self._published.get(peer, {})
        levels = [self._trust.get((peer, fp), trust.UNDECIDED) for fp in published.values()]
        level = trust.decide(levels)
        for fp in published.values():
            self._trust.setdefault((peer, fp), level)
        out = [PeerDevice(peer, i, fp, self._trust[(peer, fp)])
               for i, fp in sorted(published.items())]
        self._seen[peer] = out
        return out

    def new_devices_of_verified(self, bare: str) -> list[PeerDevice]:
        return [d for d in self._seen.get(bare_jid(bare), [])
                if d.trust == trust.NEW_AFTER_VERIFIED]

    def verify(self, bare: str, fingerprint: str) -> PeerDevice:
        wanted = trust.normalize_fingerprint(fingerprint)
        if wanted is None:
            raise EnvelopeError(f"{fingerprint!r} is not an OMEMO fingerprint (64 hex "
                                f"digits, usually shown as 8 groups of 8)")
        peer = bare_jid(bare)
        match = [d for d in self.devices(peer) if d.fingerprint == wanted]
        if not match:
            raise EnvelopeError(f"no OMEMO device of {peer} has the fingerprint {wanted}; "
                                f"nothing was marked verified")
        self._trust[(peer, wanted)] = trust.VERIFIED
        return next(d for d in self.devices(peer) if d.device_id == match[0].device_id)


@dataclass
class _SendCall:
    recipient: str
    paths: list[Path]
    transport: str | None


class FakeClient:
    """A logged-in account (:class:`~jinglefs.api.ClientLike`), no network.

    :ivar outcomes: file name -> error (that file fails), :data:`HANG` (it stops in the
        middle of the bytes: :func:`running_script`) or a list of steps (its script).
    :ivar send_error: raised by :meth:`send_files` itself (e.g. RecipientUnavailable).
    :ivar sent: every :meth:`send_files` call, as ``_SendCall(recipient, paths, transport)``.
    :ivar transfers: every transfer created by :meth:`send_files`.
    :param end_offers: end :meth:`offers` once the offers given here are delivered
        (like a connection that closes); otherwise it waits for :meth:`push_offer`.
    :param peer_confirms: the recipient confirms the checksum (a jinglefs receiver), so a
        sent file is "verified by the receiver"; by default it does not (Dino,
        Conversations): "delivered; the receiver did not confirm the checksum".
    :ivar omemo: our OMEMO device's trust (:class:`FakeOmemo`); None with
        ``omemo=False`` (``Settings.omemo`` off).
    :ivar encryption: ``Settings.encryption`` as :meth:`set_encryption` last set it.
    """

    def __init__(self, jid: str = "me@example.org/jinglefs", *,
                 contacts: Sequence[Contact] = (), offers: Sequence[FakeOffer] = (),
                 end_offers: bool = False, path: PathKind = PathKind.S5B_DIRECT,
                 peer_confirms: bool = False, omemo: bool = True) -> None:
        self.jid = jid
        self.omemo: FakeOmemo | None = FakeOmemo(jid) if omemo else None
        self.encryption = "auto"
        self.peer_confirms = peer_confirms
        self._contacts = list(contacts)
        self.path = path
        self.outcomes: dict[str, errors.JingleFSError | _Hang | list[Step]] = {}
        self.send_error: errors.JingleFSError | None = None
        self.sent: list[_SendCall] = []
        self.transfers: list[FakeTransfer] = []
        self.closed = False
        #: ClientLike.online; a test sets False for a client that starts offline
        self.online = True
        self._offers: asyncio.Queue[FakeOffer | None] = asyncio.Queue()
        for offer in offers:
            self._offers.put_nowait(offer)
        if end_offers:
            self._offers.put_nowait(None)
        self._subscribers: list[asyncio.Queue[ClientEvent | None]] = []

    def contacts(self) -> list[Contact]:
        return list(self._contacts)

    async def send_files(self, recipient: str, paths: Sequence[Path], *,
                         transport: str | None = None) -> list[TransferLike]:
        self.sent.append(_SendCall(recipient, [Path(p) for p in paths], transport))
        if self.omemo is not None and self.encryption != "off":
            # the real client looks at the contact's devices before it seals a key
            with contextlib.suppress(EnvelopeError):
                self.omemo.devices(recipient)
        if self.send_error is not None:
            raise self.send_error
        made: list[FakeTransfer] = []
        for path, name in offered_files(paths):
            size = path.stat().st_size if path.is_file() else 0
            info = FileInfo(name, size)
            tid = f"t{next(_ids)}"
            outcome = self.outcomes.get(path.name)
            error: errors.JingleFSError | None = None
            if outcome is None:
                script = success_script(tid, info, peer=recipient, direction=Direction.SEND,
                                        path=self.path, local_path=str(path),
                                        verified=self.peer_confirms)
            elif isinstance(outcome, errors.JingleFSError):
                error = outcome
                script = failure_script(tid, info, outcome, peer=recipient,
                                        direction=Direction.SEND, path=self.path)
            elif isinstance(outcome, _Hang):
                script = running_script(tid, info, peer=recipient, direction=Direction.SEND,
                                        path=self.path, local_path=str(path),
                                        verified=self.peer_confirms)
            else:
                script = list(outcome)
            t = FakeTransfer(peer=recipient, file=info, direction=Direction.SEND,
                             script=script, id=tid, error=error)
            made.append(t)
        self.transfers.extend(made)
        for t in made:
            t.start()
        return list[TransferLike](made)

    # ------------------------------------------------------------- incoming

    def push_offer(self, offer: FakeOffer) -> None:
        """Deliver an offer to :meth:`offers` and, as OfferReceived, to :meth:`events`."""
        self._offers.put_nowait(offer)
        self.push_event(OfferReceived(offer))

    def end_offers(self) -> None:
        """Make :meth:`offers` finish (after the offers already queued)."""
        self._offers.put_nowait(None)

    def set_contacts(self, contacts: Sequence[Contact]) -> None:
        """Replace the roster and announce it as ContactsChanged on :meth:`events`."""
        self._contacts = list(contacts)
        self.push_event(ContactsChanged(tuple(self._contacts)))

    def push_event(self, event: ClientEvent) -> None:
        for q in self._subscribers:
            q.put_nowait(event)

    async def offers(self) -> AsyncIterator[FakeOffer]:
        while True:
            offer = await self._offers.get()
            if offer is None:
                return
            yield offer

    def events(self) -> AsyncIterator[ClientEvent]:
        """Client events from this call on (subscribed at once, not at the first ``anext``)."""
        return _Subscription(self._subscribers)

    # ----------------------------------------------------------- encryption

    async def set_encryption(self, policy: str) -> None:
        self.encryption = encryption_policy.check(policy)

    def _omemo_device(self) -> FakeOmemo:
        if self.omemo is None:
            raise EnvelopeError("OMEMO is not set up on this device "
                                "(OMEMO is off for this account)")
        return self.omemo

    async def own_fingerprint(self) -> str | None:
        return self.omemo.fingerprint if self.omemo is not None else None

    async def devices_of(self, bare: str) -> list[PeerDevice]:
        return self._omemo_device().devices(bare)

    async def verify_device(self, bare: str, fingerprint: str) -> PeerDevice:
        return self._omemo_device().verify(bare, fingerprint)

    def new_devices_of_verified(self, bare: str) -> list[PeerDevice]:
        return self.omemo.new_devices_of_verified(bare) if self.omemo is not None else []

    async def aclose(self) -> None:
        self.closed = True
        self._offers.put_nowait(None)
        for q in self._subscribers:
            q.put_nowait(None)


@dataclass
class FakeConnect:
    """A ``connect(account, settings)`` coroutine function returning a fixed client.

    :ivar calls: the (Account, Settings) pairs it was called with.
    """

    client: FakeClient | None = None
    error: errors.JingleFSError | None = None
    calls: list[tuple[Account, Settings]] = field(default_factory=list)

    async def __call__(self, account: Account, settings: Settings) -> FakeClient:
        self.calls.append((account, settings))
        if self.error is not None:
            raise self.error
        if self.client is None:
            self.client = FakeClient(jid=f"{account.jid}/{account.resource}")
        return self.client


def fake_connect(client: FakeClient | None = None, *,
                 error: errors.JingleFSError | None = None) -> FakeConnect:
    """``main(argv, connect=fake_connect(client))``; None creates a FakeClient on connect.

    A FakeClient may be built outside any event loop (its queues bind to the loop that
    first uses them), but must then be used by one loop only.
    """
    return FakeConnect(client=client, error=error)


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend: ``keyring.set_keyring(MemoryKeyring())``."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise PasswordDeleteError("no such password") from None
