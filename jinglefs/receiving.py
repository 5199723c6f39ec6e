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
from .events import Completed, FileInfo, TransportSelected, Verification, Verified
from .handles import TransferHandle
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
from .negotiator import Connected
from .transfer.hashing import normalize_algo
from .transfer.receiver import IncomingFile

#: How long a receiver waits for the sender's checksum after the last byte.  Conversations
#: sends it at once; Dino never does (docs/protocol.md §5.4), so the wait must stay short.
CHECKSUM_WAIT = 5.0


async def run_receiver(driver: SessionDriver, content: Content, incoming: IncomingFile,
                       transfer: TransferHandle) -> None:
    name = content.name
    connected: Connected | None = None
    #: a partial is kept for resume unless its bytes are known to be bad
    keep_partial = True
    try:
        connected = await connect_as_responder(driver, name, transfer)
        meter = ProgressReporter(transfer, incoming.size, start=incoming.offset)
        # A stream that breaks because the sender cancelled ends as "cancelled by the
        # peer", not as a transport error (jinglefs.endings).
        await pump_bytes(driver, incoming.receive(connected.stream,
                                                  on_progress=meter.update), transfer)
        meter.finish()
        keep_partial = False  # from here on a failure means the bytes are wrong
        await refuse_surplus(driver, connected)
        expected = await expected_hashes(driver, name, content)
        final = await asyncio.to_thread(incoming.finish, expected)
        verification = incoming.verification
        if incoming.verified and verification is not None and \
                verification.algo is not None:
            transfer.emit(Verified(transfer.id, algo=verification.algo,
                                   digest=incoming.checked.get(verification.algo, b"")))
            confirm_checksum(driver, content, incoming.checked)
        driver.session.send_info(Received(content.creator, name), time.monotonic())
        driver.pump()
        driver.content_done(name)
        how = Verification.SENDER_HASH if incoming.verified else Verification.NO_SENDER_HASH
        transfer.emit(Completed(transfer.id, path=str(final), size=incoming.size,
                                hashes=dict(incoming.digests), verified=how.verified,
                                verification=how, reason="" if how.verified else how.text))
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

async def connect_as_responder(driver: SessionDriver, name: str,
                               transfer: TransferHandle) -> Connected:
    """Connect, switching when the initiator replaces the transport; once this returns
    (or fails) the content's transport is fixed, so a transport-replace still unanswered,
    or any later one, gets transport-reject (XEP-0166 §7.2.15: always answered)."""
    try:
        return await _switch_until_connected(driver, name, transfer)
    finally:
        driver.session.refuse_replace(name, time.monotonic())
        driver.pump()


async def _switch_until_connected(driver: SessionDriver, name: str,
                                  transfer: TransferHandle) -> Connected:
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
                transfer.emit(TransportSelected(transfer.id, connected.path,
                                                connected.detail, connected.path.encrypted))
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
    hashes: dict[str, bytes] = {}
    if isinstance(content.description, FileTransferDescription):
        hashes.update(content.description.file.hashes)
    cq = driver.contents[name]
    if cq.checksum is None and not hashes:
        with contextlib.suppress(TimeoutError):
            await driver.next_for(name, (InfoReceived,), CHECKSUM_WAIT)
    if cq.checksum is not None:
        hashes.update(cq.checksum.file.hashes)
    return {algo: v for a, v in hashes.items() if (algo := normalize_algo(a))}


def file_info(desc: FileDesc) -> FileInfo:
    hashes = {a: v for name, v in desc.hashes if (a := normalize_algo(name))}
    return FileInfo(name=desc.name or "file", size=desc.size or 0,
                    media_type=desc.media_type or "application/octet-stream",
                    date=desc.date, desc=desc.desc, hashes=hashes)


def accepted_content(content: Content, transport: TransportPayload, offset: int) -> Content:
    """The content as echoed in session-accept, with our transport and a resume range."""
    desc = content.description
    if isinstance(desc, FileTransferDescription) and offset:
        desc = FileTransferDescription(replace(desc.file, range=Range(offset=offset)))
    return replace(content, description=desc, transport=transport)
