"""The receiving flow of one content: we are the Jingle responder.

answer the transport → connect, switching when the initiator replaces the transport →
write the partial file → wait briefly for the checksum → verify → when the sender's hash
matched, a session-info checksum of what we received (XEP-0234 §8.2, docs/protocol.md
§5.8: the sender's proof that we verified) → session-info received (XEP-0234 §8.1) →
session-terminate success once every content is done.

"Verified" means the sender's hash (in the offer or its checksum) matched; a file whose
sender gave no hash (Dino never does) is kept and reported "complete, not verified".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

from . import errors
from .driver import (
    Ended,
    ProgressReporter,
    SessionDriver,
    close_quietly,
    error_for_end,
    reason_for_error,
)
from .endings import pump_bytes
from .events import Completed, FileInfo, Protection, TransportSelected, Verification, Verified
from .handles import TransferHandle
from .jet import policy as encryption_policy
from .jet.envelope import JetSecret
from .jet.stream import DecryptingStream, ciphertext_checksum, verify_received
from .jingle.model import (
    Checksum,
    Content,
    FileDesc,
    FileTransferDescription,
    Range,
    Reason,
    Received,
)
from .jingle.session import (
    InfoReceived,
    TransportReplaceReceived,
)
from .jingle.transport import TransportPayload
from .ladder import label
from .multi_content import known_client
from .negotiator import Connected
from .transfer.hashing import MultiHasher, normalize_algo
from .transfer.receiver import IncomingFile

#: How long a receiver waits for the sender's checksum after the last byte when the offer
#: announced it (``<hash-used/>``, XEP-0234 §8.2).
CHECKSUM_WAIT = 5.0
#: The same when the offer announced none: Conversations sends one anyway, at once; Dino
#: never does (docs/interop.md §3.3, §4.3), so the wait stays short.
CHECKSUM_GRACE = 1.0


async def run_receiver(driver: SessionDriver, content: Content, incoming: IncomingFile,
                       transfer: TransferHandle, *, jet: JetSecret | None = None) -> None:
    """``jet``: the file arrives encrypted with this secret (XEP-0391 §4.1)."""
    name = content.name
    connected: Connected | None = None
    #: a partial is kept for resume unless its bytes are known to be bad; never one of
    #: an encrypted file: its bytes are unauthenticated until the tag at the very end
    keep_partial = jet is None
    try:
        connected = await connect_as_responder(driver, name, transfer, jet=jet is not None)
        wire = connected.stream if jet is None else \
            DecryptingStream(connected.stream, jet, incoming.size - incoming.offset,
                             hash_ciphertext=peer_hashes_ciphertext(driver))
        meter = ProgressReporter(transfer, incoming.size, start=incoming.offset)
        # A stream that breaks because the sender cancelled ends as "cancelled by the
        # peer", not as a transport error (jinglefs.endings).
        await pump_bytes(driver, incoming.receive(wire, on_progress=meter.update), transfer)
        # XEP-0391 §5: the GCM tag after the last byte, checked before the file is kept.
        await pump_bytes(driver, verify_received(wire), transfer)
        meter.finish()
        keep_partial = False  # from here on a failure means the bytes are wrong
        await refuse_surplus(driver, connected)
        sender_hashes = await expected_hashes(driver, name, content)
        expected = ciphertext_checksum(wire, sender_hashes)
        by_ciphertext = bool(sender_hashes) and not expected
        final = await asyncio.to_thread(incoming.finish, expected)
        verification = incoming.verification
        if incoming.verified and verification is not None and \
                verification.algo is not None:
            transfer.emit(Verified(transfer.id, algo=verification.algo,
                                   digest=incoming.checked.get(verification.algo, b"")))
            confirm_checksum(driver, content, incoming.checked)
        if not driver.session.is_over:
            # XEP-0234 §8.1: a Psi sender waits for <received/> (docs/interop.md §6.3);
            # Gajim answers it with an error as well as a result (§5.3): only logged.
            driver.session.send_info(Received(content.creator, name), time.monotonic())
            driver.pump()
        # A sender that ended the session with <success/> right after the last byte
        # (before or without a checksum) leaves a complete file: nothing more to send.
        driver.content_done(name)
        how = Verification.SENDER_HASH if incoming.verified else \
            Verification.CIPHERTEXT_HASH if by_ciphertext else Verification.NO_SENDER_HASH
        transfer.emit(Completed(transfer.id, path=str(final), size=incoming.size,
                                hashes=dict(incoming.digests), verified=how.verified,
                                verification=how, reason="" if how.verified else how.text,
                                protection=transfer.protection))
    except Ended as e:
        incoming.abort(keep_partial=keep_partial)
        transfer.fail(error_for_end(e.ended))
    except errors.JingleFSError as e:
        incoming.abort(keep_partial=keep_partial)
        driver.fail(transfer, e, reason_for_error(e))
    except TimeoutError:
        incoming.abort(keep_partial=keep_partial)
        driver.fail(transfer, errors.NegotiationTimeout("the sender stopped answering"),
                   Reason.TIMEOUT)
    except asyncio.CancelledError:
        incoming.abort(keep_partial=keep_partial)
        driver.fail(transfer, errors.Cancelled("cancelled here"), Reason.CANCEL)
        raise
    except Exception as e:
        driver.log.exception("receiver flow crashed")
        incoming.abort(keep_partial=keep_partial)
        driver.fail(transfer, errors.TransferError(f"internal error: {e!r}"),
                   Reason.GENERAL_ERROR)
    finally:
        if connected is not None:
            await close_quietly(connected.stream)
        cq = driver.contents.get(name)
        if cq is not None and cq.negotiator is not None:
            await cq.negotiator.aclose()

def peer_hashes_ciphertext(driver: SessionDriver) -> bool:
    """Whether the sender's checksum of a JET file covers the ciphertext rather than the
    file: Conversations (docs/interop.md §3.3)."""
    names, node = driver.host.connection.software(driver.session.peer_jid)
    return known_client(names, node) == "conversations"


async def connect_as_responder(driver: SessionDriver, name: str,
                               transfer: TransferHandle, *, jet: bool = False) -> Connected:
    """Connect, switching when the initiator replaces the transport; once this returns
    (or fails) the content's transport is fixed, so a transport-replace still unanswered,
    or any later one, gets transport-reject (XEP-0166 §7.2.15: always answered)."""
    try:
        return await _switch_until_connected(driver, name, transfer, jet)
    finally:
        driver.session.refuse_replace(name, time.monotonic())
        driver.pump()


async def _switch_until_connected(driver: SessionDriver, name: str,
                                  transfer: TransferHandle, jet: bool = False) -> Connected:
    cq = driver.contents[name]
    timeout = driver.host.settings.timeouts.transport
    failures: list[str] = []
    while True:
        neg = cq.negotiator
        assert neg is not None
        connect = asyncio.ensure_future(neg.connect())
        replace_wait = asyncio.ensure_future(
            driver.next_for(name, (TransportReplaceReceived,), timeout * 4))
        try:
            done, _ = await asyncio.wait({connect, replace_wait},
                                         return_when=asyncio.FIRST_COMPLETED)
            if connect in done and connect.exception() is None:
                replace_wait.cancel()
                connected = connect.result()
                transfer.emit(TransportSelected(
                    transfer.id, connected.path, connected.detail,
                    connected.path.encrypted or jet, Protection.of(connected.path, jet)))
                return connected
            if connect in done:
                if isinstance(connect.exception(), errors.ProtocolError):
                    # The peer broke the transport's rules (e.g. XEP-0260 §2.4
                    # candidate-used for a cid never offered): end the session.
                    connect.result()
                failures.append(f"{label(neg.kind)}: {connect.exception()}")
                # Our side failed; the initiator decides what is next (XEP-0260 §3).
                replacement = await replace_wait
            else:
                connect.cancel()
                with contextlib.suppress(BaseException):
                    await connect
                replacement = replace_wait.result()
        except BaseException:
            connect.cancel()
            replace_wait.cancel()
            raise
        await neg.aclose()
        factory = driver.host.factory_for(
            getattr(replacement.transport, "namespace", ""))
        if factory is None:
            driver.session.reject_transport(name, replacement.transport, time.monotonic())
            driver.pump()
            continue  # keep waiting: the initiator may offer another one
        if not encryption_policy.may_switch_to(driver.host.settings.encryption, jet=jet,
                                               kind=factory.kind):
            raise errors.EncryptionRequired(
                f"the sender switched to {label(factory.kind)}, which would carry the "
                "file unencrypted")
        cq.negotiator = factory(driver.context(name))
        answer = await cq.negotiator.answer(replacement.transport)
        driver.session.accept_transport(name, answer, time.monotonic())
        driver.pump()
        del failures[:]


def confirm_checksum(driver: SessionDriver, content: Content,
                     checked: dict[str, bytes]) -> None:
    """Tell the sender we verified: a session-info ``<checksum/>`` (XEP-0234 §8.2) with
    our own digests of the algorithms its hash used, sent only after they matched and
    before ``<received/>`` and session-terminate.  A jinglefs sender compares them with its
    own and says "verified by the receiver"; other senders accept and ignore it
    (docs/protocol.md §5.8)."""
    if not checked or driver.session.is_over:
        return
    driver.session.send_info(Checksum(content.creator, content.name, FileDesc(
        hashes=tuple(sorted(checked.items())))), time.monotonic())
    driver.pump()


async def refuse_surplus(driver: SessionDriver, connected: Connected) -> None:
    """A sender that keeps sending after ``size`` bytes is lying about the size."""
    try:
        extra = await asyncio.wait_for(connected.stream.receive(1), 0.3)
    except (TimeoutError, errors.TransportError):
        return
    if extra:
        raise errors.SizeMismatch("the sender sent more bytes than it offered")

async def expected_hashes(driver: SessionDriver, name: str, content: Content) -> dict[str, bytes]:
    """The sender's digests of this file: from the offer and its checksum (XEP-0234
    §8.2), which may come before the bytes (Gajim, docs/interop.md §5.3) or after them.
    With none yet, wait :data:`CHECKSUM_WAIT` when the offer announced one
    (``<hash-used/>``: Psi, Libervia, jinglefs), :data:`CHECKSUM_GRACE` otherwise
    (Conversations sends one unannounced, Dino none), and never past the session's end:
    a sender that ended with ``<success/>`` sends nothing more.  Unknown algorithms are
    skipped; Libervia's hex-text values are decoded (:func:`sender_digest`)."""
    hashes: dict[str, bytes] = {}
    announced = False
    if isinstance(content.description, FileTransferDescription):
        hashes.update(content.description.file.hashes)
        announced = bool(content.description.file.hash_used)
    cq = driver.contents[name]
    if cq.checksum is None and not hashes and not driver.session.is_over:
        with contextlib.suppress(TimeoutError, Ended):
            await driver.next_for(name, (InfoReceived,),
                                  CHECKSUM_WAIT if announced else CHECKSUM_GRACE)
    if cq.checksum is not None:
        hashes.update(cq.checksum.file.hashes)
    return {algo: sender_digest(algo, v) for a, v in hashes.items()
            if (algo := normalize_algo(a))}


def sender_digest(algo: str, value: bytes) -> bytes:
    """A digest as the sender meant it.  Libervia 0.8 puts base64 of the *hex text* of
    the digest in ``<hash/>`` (docs/interop.md §7.3, docs/protocol.md §9.3): a value
    twice the digest's length made of hex digits is that text, decoded here.  (A real
    digest made only of those 22 byte values is as likely as guessing it.)"""
    size = len(MultiHasher((algo,)).digests()[algo])
    if len(value) == 2 * size and all(c in _HEX_DIGITS for c in value):
        return bytes.fromhex(value.decode("ascii"))
    return value


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def file_info(desc: FileDesc) -> FileInfo:
    hashes = {a: sender_digest(a, v) for name, v in desc.hashes if (a := normalize_algo(name))}
    return FileInfo(name=desc.name or "file", size=desc.size or 0,
                    media_type=desc.media_type or "application/octet-stream",
                    date=desc.date, desc=desc.desc, hashes=hashes)


def accepted_content(content: Content, transport: TransportPayload, offset: int) -> Content:
    """The content as echoed in session-accept, with our transport and a resume range."""
    desc = content.description
    if isinstance(desc, FileTransferDescription) and offset:
        desc = FileTransferDescription(replace(desc.file, range=Range(offset=offset)))
    return replace(content, description=desc, transport=transport)
