"""The sending flow of one file (XEP-0234 §6.1, push): we are the Jingle initiator.

offer → wait for session-accept → connect over the ladder (transport-replace to the
next rung on failure, XEP-0166 §7.2.15) → stream the file → session-info checksum
(XEP-0234 §8.2) → wait for the receiver's session-terminate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
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
from .events import Accepted, Completed, TransportSelected
from .handles import TransferHandle
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
    TransportAccepted,
    TransportRejected,
)
from .jingle.transport import UnknownTransport
from .ladder import label
from .negotiator import Connected, Negotiator
from .transfer.hashing import DEFAULT_ALGO
from .transfer.sender import send_file

#: How long the sender waits for the receiver's session-terminate after the checksum.
FINISH_WAIT = 60.0


async def run_sender(driver: SessionDriver, path: Path, file: FileDesc, transfer: TransferHandle,
                     kinds: Sequence[str]) -> None:
    content_name = "0"  # Conversations' own name for the single content (docs/protocol.md §6.4)
    driver.contents[content_name] = ContentQueue(asyncio.Queue())
    stream: Connected | None = None
    try:
        neg = driver.new_negotiator(kinds[0], content_name)
        payload = await neg.offer()
        driver.session.initiate([Content(Role.INITIATOR, content_name, senders=Role.INITIATOR,
                                       description=FileTransferDescription(file),
                                       transport=payload)], time.monotonic())
        driver.pump()
        accepted = await driver.next_for(content_name, (SessionAccepted,),
                                    driver.host.settings.timeouts.accept + 5)
        [content] = [c for c in accepted.contents if c.name == content_name]
        offset = 0
        if isinstance(content.description, FileTransferDescription) and \
                content.description.file.range is not None:
            offset = min(content.description.file.range.offset, file.size or 0)
        transfer.emit(Accepted(transfer.id, offset=offset))
        if isinstance(content.transport, UnknownTransport) or \
                getattr(content.transport, "namespace", None) != neg.namespace:
            raise errors.RemoteProtocolError("the peer accepted with another transport")
        neg.remote_answer(content.transport)  # type: ignore[arg-type]
        stream = await connect_as_initiator(driver, content_name, neg, list(kinds[1:]),
                                                  transfer)
        meter = ProgressReporter(transfer, file.size or 0)
        digests = await driver.with_stall_guard(send_file(
            stream.stream, path, offset=offset, algos=(DEFAULT_ALGO,),
            on_progress=meter.update), transfer)
        meter.finish()
        await close_quietly(stream.stream)
        # XEP-0234 §8.2: the checksum after the last byte.
        driver.session.send_info(Checksum(Role.INITIATOR, content_name, FileDesc(
            hashes=tuple(digests.items()))), time.monotonic())
        driver.pump()
        ended = await asyncio.wait_for(asyncio.shield(driver.ended), FINISH_WAIT)
        if ended.reason.condition is not Reason.SUCCESS:
            raise error_for_end(ended)
        # The receiver said success; whether it checked our checksum only it knows
        # (Dino never does), so the sender does not claim "verified".
        transfer.emit(Completed(transfer.id, path=str(path), size=file.size or 0,
                                hashes=digests, verified=False))
    except Ended as e:
        transfer.fail(error_for_end(e.ended))
    except TimeoutError:
        driver.fail(transfer, errors.NegotiationTimeout(
            "the recipient did not finish the transfer in time"), Reason.TIMEOUT)
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
        await driver.close_negotiators()

async def connect_as_initiator(driver: SessionDriver, content: str, neg: Negotiator,
                               rest: list[str], transfer: TransferHandle) -> Connected:
    """Try each rung; on failure replace the transport with the next (XEP-0166 §7.2.15)."""
    failures: list[str] = []
    timeout = driver.host.settings.timeouts.transport
    while True:
        try:
            connected = await driver.until_ended(neg.connect(), timeout)
        except (errors.TransportError, TimeoutError, OSError) as e:
            why = str(e) or f"no connection within {timeout:.0f} s"
            failures.append(f"{label(neg.kind)}: {why}")
            driver.log.info("%s failed: %s", neg.kind, why)
            await neg.aclose()
        else:
            transfer.emit(TransportSelected(transfer.id, connected.path, connected.detail,
                                            connected.path.encrypted))
            return connected
        while rest:
            kind = rest.pop(0)
            neg = driver.new_negotiator(kind, content)
            payload = await neg.offer()
            driver.session.replace_transport(content, payload, time.monotonic())
            driver.pump()
            answer = await driver.next_for(content, (TransportAccepted, TransportRejected),
                                      timeout + 5)
            if isinstance(answer, TransportAccepted):
                neg.remote_answer(answer.transport)
                break
            assert isinstance(answer, TransportRejected)
            failures.append(f"{label(kind)}: refused by the contact "
                            f"({answer.detail})")
            await neg.aclose()
        else:
            raise errors.CandidatesFailed("no transport worked: " + "; ".join(failures))
