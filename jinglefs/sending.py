"""The sending flow of one session (XEP-0234 §6.1, push): we are the Jingle initiator.

One session carries one file (the common ground: Conversations and Dino take one content
per session) or several, one per ``<content/>`` (XEP-0166 §7.2.10, XEP-0234 §5), for peers
known to take them (:mod:`jinglefs.multi_content`).  For each content: offer → wait for
session-accept → connect over the ladder (transport-replace to the next rung on failure,
XEP-0166 §7.2.15) → stream the file → session-info checksum (XEP-0234 §8.2).  The
contents of a session run side by side, each with its own transport and byte stream; then
the sender waits for the receiver's session-terminate (XEP-0234 §6.6: the receiver ends
the session once it has every file).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import errors
from .driver import (
    ContentQueue,
    Ended,
    ProgressReporter,
    SessionDriver,
    close_quietly,
    error_for_end,
    reason_for_error,
)
from .endings import pump_bytes
from .events import (
    Accepted,
    Completed,
    Protection,
    TransportSelected,
    Verification,
    Verified,
)
from .handles import TransferHandle
from .jet.stream import EncryptingStream, JetKeys, then_finish
from .jingle.model import (
    Checksum,
    Content,
    FileDesc,
    FileTransferDescription,
    Reason,
    Role,
)
from .jingle.session import (
    SessionAccepted,
    SessionEnded,
    SessionEvent,
    TransportAccepted,
    TransportRejected,
    TransportReplaceReceived,
)
from .jingle.transport import TransportPayload, UnknownTransport
from .ladder import DIRECT, connect_limit, fast_path, label
from .multi_content import known_client
from .negotiator import Connected, Negotiator
from .transfer.hashing import DEFAULT_ALGO, MultiHasher, canonical_hashes, verify
from .transfer.sender import open_for_sending, send_file

#: The sending flow waits this much longer than a rung's own limit (the negotiator gives
#: up first, with a clearer reason).
RUNG_GRACE = 1.0
#: How long the sender waits for the receiver's session-terminate after the checksum of
#: the session's last file.
FINISH_WAIT = 60.0
#: How long the sending flow waits, after a rung failed, for the transport-replace of a
#: contact that replaces transports itself (Dino sends it as soon as both sides reported
#: candidate-error, docs/interop.md §4.4).
PEER_REPLACE_WAIT = 10.0
#: The most files one session carries; a bigger action is split into several sessions
#: (which a jinglefs receiver still shows as one offer, docs/protocol.md §3.5).  It keeps
#: session-initiate, with every content's transport candidates, far below the stanza size
#: servers take (Prosody: 256 KiB by default).  All the files of an action move at once.
MAX_CONTENTS = 16


@dataclass(frozen=True)
class OutgoingFile:
    """One file of a session: where it is read from, what the offer says, its handle."""

    path: Path
    desc: FileDesc
    transfer: TransferHandle
    #: XEP-0391: the file travels encrypted with these keys (None: as it is)
    jet: JetKeys | None = None


def content_names(count: int) -> list[str]:
    """Content names of a session: "0" for a single file (Conversations' own name,
    docs/protocol.md §6.4), then "1", "2"… (unique per creator, XEP-0166 §7.1)."""
    return [str(i) for i in range(count)]


async def run_sender(driver: SessionDriver, files: Sequence[OutgoingFile],
                     kinds: Sequence[str]) -> None:
    """Offer ``files`` in one session and send each over its own transport."""
    names = content_names(len(files))
    for name in names:
        driver.contents[name] = ContentQueue(asyncio.Queue())
    try:
        gate = _HeldInfo()
        negotiators = [_first_negotiator(driver, kinds[0], name, gate) for name in names]
        payloads = await asyncio.gather(*(neg.offer() for neg in negotiators))
        driver.session.initiate([
            Content(Role.INITIATOR, name, senders=Role.INITIATOR,
                    description=FileTransferDescription(f.desc), transport=payload,
                    security=f.jet.security if f.jet is not None else None)
            for name, f, payload in zip(names, files, payloads, strict=True)],
            time.monotonic())
        driver.pump()
        gate.release()
        accepted = await _wait_for_accept(driver, names[0])
        taken = {c.name: c for c in accepted.contents}
        flows: list[asyncio.Task[dict[str, bytes] | None]] = []
        sent: list[tuple[str, OutgoingFile]] = []
        for name, f, neg in zip(names, files, negotiators, strict=True):
            content = taken.get(name)
            if content is None:
                # XEP-0166 §7.2.8: a content left out of session-accept is rejected; the
                # receiver chose not to take this file.
                f.transfer.fail(errors.Declined("the recipient did not take this file"))
                await neg.aclose()
                driver.contents[name].negotiator = None
                continue
            sent.append((name, f))
            flows.append(asyncio.ensure_future(
                _send_content(driver, name, neg, content, f, list(kinds[1:]))))
        try:
            digests = await asyncio.gather(*flows)
        except BaseException:
            for flow in flows:
                flow.cancel()
            await asyncio.gather(*flows, return_exceptions=True)
            raise
        if not sent:
            return
        # Only once every file is out does the receiver end the session (XEP-0234 §6.6).
        ended = await asyncio.wait_for(asyncio.shield(driver.ended), FINISH_WAIT)
        if ended.reason.condition is not Reason.SUCCESS:
            raise Ended(ended)
        for (name, f), got in zip(sent, digests, strict=True):
            if got is not None:
                _completed(driver, name, f, got)
    except Ended as e:
        _fail_all(driver, files, error_for_end(e.ended), None)
    except TimeoutError:
        _fail_all(driver, files, errors.NegotiationTimeout(
            "the recipient did not finish the transfer in time"), Reason.TIMEOUT)
    except errors.JingleFSError as e:
        _fail_all(driver, files, e, reason_for_error(e))
    except asyncio.CancelledError:
        _fail_all(driver, files, errors.Cancelled("cancelled here"), Reason.CANCEL)
        raise
    except Exception as e:
        driver.log.exception("sender flow crashed")
        _fail_all(driver, files, errors.TransferError(f"internal error: {e!r}"),
                  Reason.GENERAL_ERROR)
    finally:
        await driver.close_negotiators()


async def _wait_for_accept(driver: SessionDriver, name: str) -> SessionAccepted:
    """session-accept, or :class:`errors.Unanswered` when the contact's client neither
    accepts nor declines within ``Timeouts.accept``: some drop an offer without a word
    (Dino, from people without an open conversation: docs/interop.md §4.7).  The session
    ends with session-terminate ``<timeout/>`` (XEP-0166 §7.4), so nothing stays pending
    on either side."""
    limit = driver.host.settings.timeouts.accept
    try:
        # The session's own accept timer ends it at ``limit``; this is the backstop.
        return await driver.next_for(name, (SessionAccepted,), limit + 5)
    except Ended as e:
        if e.ended.by_peer or e.ended.reason.condition is not Reason.TIMEOUT:
            raise
    except TimeoutError:
        pass
    raise errors.Unanswered(f"no answer within {limit:g} s; {errors.UNANSWERED_HELP}",
                            reason=Reason.TIMEOUT.value)


class _HeldInfo:
    """Holds the transport-info a negotiator sends while the offers of the other contents
    are still being made: nothing may reach the peer about a session before its
    session-initiate (XEP-0166 §6.2), and the early candidates go right after it."""

    def __init__(self) -> None:
        self._held: list[tuple[Callable[[TransportPayload], None], TransportPayload]] | None = []

    def wrap(self, send: Callable[[TransportPayload], None]
             ) -> Callable[[TransportPayload], None]:
        def send_or_hold(payload: TransportPayload) -> None:
            if self._held is None:
                send(payload)
            else:
                self._held.append((send, payload))
        return send_or_hold

    def release(self) -> None:
        held, self._held = self._held or [], None
        for send, payload in held:
            send(payload)


def _first_negotiator(driver: SessionDriver, kind: str, name: str, gate: _HeldInfo
                      ) -> Negotiator:
    """The first rung's negotiator of a content, its transport-info held by ``gate``."""
    ctx = driver.context(name)
    neg = driver.host.factory(kind)(
        replace(ctx, send_transport_info=gate.wrap(ctx.send_transport_info)))
    driver.contents[name].negotiator = neg
    return neg


def _completed(driver: SessionDriver, name: str, f: OutgoingFile,
               digests: dict[str, bytes]) -> None:
    """The receiver said success.  "Verified by the receiver" only when it confirmed our
    checksum: a session-info checksum of what it received (XEP-0234 §8.2, sent by a
    jinglefs receiver after its check, docs/protocol.md §5.8) equal to ours.  Dino and
    Conversations never send one: then "delivered; the receiver did not confirm"."""
    transfer = f.transfer
    theirs = driver.contents[name].checksum if name in driver.contents else None
    check = verify(dict(theirs.file.hashes), digests) if theirs is not None else None
    if check is not None and not check.ok:
        assert check.algo is not None and theirs is not None
        got = canonical_hashes(dict(theirs.file.hashes))[check.algo]
        transfer.fail(errors.ChecksumMismatch(
            f"the receiver's {check.algo} of {f.desc.name} is {got.hex()}, ours is "
            f"{digests[check.algo].hex()}", algo=check.algo, expected=digests[check.algo],
            actual=got))
        return
    how = Verification.RECEIVER_CONFIRMED if check is not None and check.verified \
        else Verification.NOT_CONFIRMED
    if how.verified:
        assert check is not None and check.algo is not None
        transfer.emit(Verified(transfer.id, algo=check.algo, digest=digests[check.algo]))
    transfer.emit(Completed(transfer.id, path=str(f.path), size=f.desc.size or 0,
                            hashes=digests, verified=how.verified, verification=how,
                            reason="" if how.verified else how.text,
                            protection=transfer.protection))


def _fail_all(driver: SessionDriver, files: Sequence[OutgoingFile],
              exc: errors.JingleFSError, condition: Reason | None) -> None:
    """Fail every file still running and, with ``condition``, end the session."""
    for f in files:
        f.transfer.fail(exc)
    if condition is not None and not driver.session.is_over:
        driver.terminate(condition, str(exc)[:200])


async def _send_content(driver: SessionDriver, name: str, neg: Negotiator, content: Content,
                        f: OutgoingFile, rest: list[str]) -> dict[str, bytes] | None:
    """One accepted content: connect, stream, checksum.  Returns the digests, or None when
    this file failed (then the session is ended: the other files fail with it)."""
    transfer = f.transfer
    size = f.desc.size or 0
    stream: Connected | None = None
    digests: dict[str, bytes] | None = None
    try:
        offset = 0
        if isinstance(content.description, FileTransferDescription) and \
                content.description.file.range is not None:
            # XEP-0234 §6.4: the receiver resumes from this offset.
            offset = min(content.description.file.range.offset, size)
        transfer.emit(Accepted(transfer.id, offset=offset))
        if isinstance(content.transport, UnknownTransport) or \
                getattr(content.transport, "namespace", None) != neg.namespace:
            raise errors.RemoteProtocolError("the peer accepted with another transport")
        neg.remote_answer(content.transport)  # type: ignore[arg-type]
        stream = await connect_as_initiator(driver, name, neg, rest, transfer,
                                            jet=f.jet is not None)
        # XEP-0391 §3: with JET the transport carries ciphertext, then the tag.
        wire = EncryptingStream(stream.stream, f.jet.secret) if f.jet is not None \
            else stream.stream
        meter = ProgressReporter(transfer, size)
        with open_for_sending(f.path) as source:
            if source.size != size:
                # Never more (or fewer) bytes than the offer's <size/>: Conversations
                # writes whatever follows into the file (docs/interop.md §3.10).
                raise errors.StorageError(f"{f.path.name} changed size since it was "
                                          f"offered ({size} -> {source.size} bytes)")
            # A stream the receiver closed because it cancelled ends as "cancelled by
            # the peer", not as a transport error (jinglefs.endings).
            digests = await pump_bytes(driver, then_finish(send_file(
                wire, source, offset=offset, length=size - offset,
                algos=(DEFAULT_ALGO,), on_progress=meter.update), wire), transfer)
        meter.finish()
        await close_quietly(stream.stream)
        if driver.ended.done():
            raise Ended(driver.ended.result())
        assert digests is not None
        # XEP-0234 §8.2: the checksum after the last byte.
        driver.session.send_info(Checksum(Role.INITIATOR, name, FileDesc(
            hashes=tuple(digests.items()))), time.monotonic())
        driver.pump()
        return digests
    except Ended as e:
        if e.ended.reason.condition is Reason.SUCCESS and transfer.progress_done >= size:
            # Every byte is out and the receiver already said success, before our
            # checksum (a receiver that wants none, as Dino, may end that early; the
            # checksum is optional, XEP-0234 §8.2): the file is delivered.
            return digests if digests is not None else \
                await asyncio.to_thread(_file_digests, f.path)
        transfer.fail(error_for_end(e.ended))
    except TimeoutError:
        driver.fail(transfer, errors.NegotiationTimeout(
            "the recipient stopped answering"), Reason.TIMEOUT)
    except errors.JingleFSError as e:
        driver.fail(transfer, e, reason_for_error(e))
    except asyncio.CancelledError:
        driver.fail(transfer, errors.Cancelled("cancelled here"), Reason.CANCEL)
        raise
    except Exception as e:
        driver.log.exception("sender flow crashed")
        driver.fail(transfer, errors.TransferError(f"internal error: {e!r}"),
                    Reason.GENERAL_ERROR)
    finally:
        if stream is not None:
            await close_quietly(stream.stream)
    return None


def _file_digests(path: Path) -> dict[str, bytes]:
    """Our digest of the whole file, when the byte pump ended before it gave one."""
    hasher = MultiHasher((DEFAULT_ALGO,))
    with path.open("rb") as src:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
    return hasher.digests()


async def connect_as_initiator(driver: SessionDriver, content: str, neg: Negotiator,
                               rest: list[str], transfer: TransferHandle, *,
                               jet: bool = False) -> Connected:
    """Climb the ladder from the accepted transport ``neg`` (README "How the ladder
    decides"): each rung gets its own limit (:func:`jinglefs.ladder.connect_limit`); on
    failure the transport is replaced with the next rung of ``rest`` (XEP-0166 §7.2.15).
    When the accepted ICE transport shows that the machines reach each other directly, the
    fast path puts SOCKS5 direct first and ICE right after it."""
    failures: list[str] = []
    current: Negotiator | None = neg
    why = fast_path(neg, rest, driver.host.settings)
    if why is not None:
        driver.log.info("%s before %s: %s", DIRECT.kind, neg.kind, why)
        await neg.aclose()
        rest[:0] = [DIRECT.kind, neg.kind]
        current = None
    peer_replaces = peer_replaces_transports(driver)
    if peer_replaces:
        # Dino replaces a failed transport itself, whatever its role, and rejects every
        # transport-replace it receives (docs/interop.md §4.4): take its replace.
        driver.session.expect_replace(content)
    try:
        while True:
            if current is not None:
                connected = await _connect_rung(driver, current, failures,
                                                content if peer_replaces else None)
                if connected is not None:
                    transfer.emit(TransportSelected(
                        transfer.id, connected.path, connected.detail,
                        connected.path.encrypted or jet, Protection.of(connected.path, jet)))
                    return connected
            if peer_replaces:
                current = await _take_peer_replace(driver, content, rest, failures)
            else:
                current = await _replace_with_next(driver, content, rest, failures)
            if current is None:
                raise errors.CandidatesFailed("no transport worked: " + "; ".join(failures))
    finally:
        if peer_replaces and not driver.session.is_over:
            # From here on the transport is fixed (XEP-0166 §7.2.15: still answered).
            driver.session.refuse_replace(content, time.monotonic())
            driver.pump()


def peer_replaces_transports(driver: SessionDriver) -> bool:
    """Whether the contact's client replaces a failed transport itself, as responder,
    and refuses ours: Dino (docs/interop.md §4.4, §11 "Fallback")."""
    names, node = driver.host.connection.software(driver.session.peer_jid)
    return known_client(names, node) == "dino"


async def _take_peer_replace(driver: SessionDriver, content: str, rest: list[str],
                             failures: list[str]) -> Negotiator | None:
    """The contact's own transport-replace (XEP-0166 §7.2.15, sent by a Dino responder),
    accepted when it names a rung still left in ``rest``; None when none comes within
    :data:`PEER_REPLACE_WAIT` or it names a transport we cannot take."""
    try:
        replacement = await driver.next_for(content, (TransportReplaceReceived,),
                                            PEER_REPLACE_WAIT)
    except TimeoutError:
        failures.append(f"the contact offered no other transport within "
                        f"{PEER_REPLACE_WAIT:g} s")
        return None
    namespace = getattr(replacement.transport, "namespace", "")
    factory = driver.host.factory_for(namespace)
    if factory is None or factory.kind not in rest:
        driver.session.reject_transport(content, replacement.transport, time.monotonic())
        driver.pump()
        failures.append(f"the contact offered {namespace or 'an unknown transport'}, "
                        "which is not left to try")
        return None
    rest.remove(factory.kind)
    neg = factory(driver.context(content))
    driver.contents[content].negotiator = neg
    answer = await neg.answer(replacement.transport)
    driver.session.accept_transport(content, answer, time.monotonic())
    driver.pump()
    return neg


async def _connect_rung(driver: SessionDriver, neg: Negotiator, failures: list[str],
                        replaceable: str | None = None) -> Connected | None:
    """One rung within its limit; None, with the reason added to ``failures``, when it
    did not connect.  With ``replaceable`` (a content name), the contact's
    transport-replace of that content also ends the attempt (it gave up on this rung)."""
    limit = connect_limit(neg.kind, driver.host.settings)
    started = time.monotonic()
    try:
        # The negotiator ends itself at ``limit`` with a clearer reason; this is the backstop.
        work = neg.connect() if replaceable is None else \
            _connect_unless_replaced(driver, neg, replaceable)
        connected = await driver.until_ended(work, limit + RUNG_GRACE)
    except (errors.TransportError, TimeoutError, OSError) as e:
        why = str(e) or f"no connection within {limit:.0f} s"
        failures.append(f"{label(neg.kind)}: {why}")
        # natlab reads these two lines (tests/natlab/test_natlab_transfer.py RUNG_LINE)
        driver.log.info("%s failed after %.2f s: %s", neg.kind, time.monotonic() - started,
                        why)
        await neg.aclose()
        return None
    driver.log.info("%s connected after %.2f s: %s", neg.kind, time.monotonic() - started,
                    connected.detail)
    return connected


async def _connect_unless_replaced(driver: SessionDriver, neg: Negotiator,
                                   content: str) -> Connected:
    """``neg.connect()``, given up as soon as the contact replaces the transport (its
    transport-replace stays queued for :func:`_take_peer_replace`)."""
    queue = driver.contents[content].queue
    connect = asyncio.ensure_future(neg.connect())
    getter: asyncio.Future[SessionEvent] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({connect, getter},
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                return connect.result()
            event = getter.result()
            if isinstance(event, TransportReplaceReceived | SessionEnded):
                queue.put_nowait(event)  # for the next step, which answers it
                raise errors.TransportError("the contact replaced the transport")
            # Other events need nothing here (a checksum is kept in ContentQueue.checksum).
    finally:
        if getter is not None and not getter.done():
            getter.cancel()  # a pending get() would swallow the next event
        if not connect.done():
            connect.cancel()
            with contextlib.suppress(BaseException):
                await connect


async def _replace_with_next(driver: SessionDriver, content: str, rest: list[str],
                             failures: list[str]) -> Negotiator | None:
    """transport-replace with the next rung of ``rest`` that the contact accepts
    (XEP-0166 §7.2.15); None when none is left."""
    while rest:
        kind = rest.pop(0)
        if kind == DIRECT.kind:  # the fast path is no factory of the host's (ladder.DIRECT)
            neg = DIRECT.factory(driver.context(content))
            driver.contents[content].negotiator = neg
        else:
            neg = driver.new_negotiator(kind, content)
        payload = await neg.offer()
        driver.session.replace_transport(content, payload, time.monotonic())
        driver.pump()
        answer = await driver.next_for(content, (TransportAccepted, TransportRejected),
                                       driver.host.settings.timeouts.transport + 5)
        if isinstance(answer, TransportAccepted):
            neg.remote_answer(answer.transport)
            return neg
        assert isinstance(answer, TransportRejected)
        failures.append(f"{label(kind)}: refused by the contact ({answer.detail})")
        await neg.aclose()
    return None
