"""Does UDP reach our TURN server?  One STUN Binding request (RFC 8489 §6) to find out.

The native data channel relays over UDP only (libjuice), aiortc over TCP as well, so when
the server announces TURN over both, which stack can relay depends on whether this network
lets UDP out (natlab "udp-blocked": it does not).  :func:`udp_reachable` asks once: any
Binding success or error response from the server (it proves the round trip; no
authentication is needed for a Binding, RFC 8489 §10.1) means yes; silence for
:data:`PROBE_WAIT` means no.  The request is re-sent at :data:`RETRANSMITS` (RFC 8489
§6.2.1 retransmits unanswered UDP requests; a single lost datagram must not decide).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct

__all__ = ["PROBE_WAIT", "udp_reachable"]

logger = logging.getLogger(__name__)

#: How long to wait for an answer.  A STUN round trip to a reachable server is one RTT
#: (≤ 0.3 s on any sane path); this is only paid in full when UDP is blocked.
PROBE_WAIT = 1.0
#: When the request is (re-)sent, seconds after the start.
RETRANSMITS = (0.0, 0.25, 0.6)

_MAGIC_COOKIE = 0x2112A442  # RFC 8489 §5
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_BINDING_ERROR = 0x0111


def binding_request(transaction_id: bytes) -> bytes:
    """An attribute-less Binding request (RFC 8489 §5: 20-byte header)."""
    return struct.pack("!HHI", _BINDING_REQUEST, 0, _MAGIC_COOKIE) + transaction_id


def is_answer(data: bytes, transaction_id: bytes) -> bool:
    """A Binding success or error response to our transaction (RFC 8489 §6.3)."""
    if len(data) < 20:
        return False
    kind, _, cookie = struct.unpack("!HHI", data[:8])
    return (kind in (_BINDING_SUCCESS, _BINDING_ERROR) and cookie == _MAGIC_COOKIE
            and data[8:20] == transaction_id)


class _Probe(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes, answered: asyncio.Future[bool]) -> None:
        self.transaction_id = transaction_id
        self.answered = answered

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if is_answer(data, self.transaction_id) and not self.answered.done():
            self.answered.set_result(True)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the host answered, nothing listens.  That is not "UDP
        # reaches a TURN server"; keep waiting (a later retransmit may still be answered).
        logger.debug("UDP probe: %s", exc)


async def udp_reachable(host: str, port: int, *, wait: float = PROBE_WAIT) -> bool:
    """True when a STUN server at ``host:port`` answers a Binding request over UDP."""
    loop = asyncio.get_running_loop()
    transaction_id = secrets.token_bytes(12)
    answered: asyncio.Future[bool] = loop.create_future()
    try:
        transport, _ = await asyncio.wait_for(loop.create_datagram_endpoint(
            lambda: _Probe(transaction_id, answered), remote_addr=(host, port)), wait)
    except (OSError, TimeoutError) as e:  # no route, name does not resolve
        logger.info("UDP probe of %s:%d: %s", host, port, e)
        return False
    request = binding_request(transaction_id)
    start = loop.time()
    try:
        for at in RETRANSMITS:
            if at >= wait:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answered), max(0.0, start + at - loop.time()))
                break
            with contextlib.suppress(OSError):
                transport.sendto(request)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(answered), max(0.0, start + wait - loop.time()))
    finally:
        transport.close()
    reachable = answered.done() and answered.result()
    logger.info("UDP to %s:%d (STUN): %s", host, port, "answers" if reachable else "no answer")
    return reachable
