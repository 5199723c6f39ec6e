"""XEP-0261 Jingle In-Band Bytestreams and the XEP-0047 rules underneath: pure logic.

Nothing here does I/O or reads a clock.  It answers questions:

* what block size to use (XEP-0261 §2.2: the responder may lower the offered size,
  never raise it; XEP-0047 §2.1: at most 65535 bytes);
* whether an ``<open/>`` matches what Jingle agreed (XEP-0261 §2.2);
* the per-direction ``seq`` counter (XEP-0047 §2.2: 16-bit, starts at 0, wraps
  65535 → 0) and which ``seq`` a receiver accepts (leniently, see
  :class:`ReceiveState`);
* whether a ``<data/>`` payload is valid base64 of at most ``block-size`` bytes;
* how to answer a ``<transport/>`` offer (:func:`answer_offer`; the payload class
  itself is :class:`IbbTransport`, below).

Errors the peer caused are raised as :class:`~jinglefs.errors.RemoteProtocolError`
whose ``condition`` / ``error_type`` are the RFC 6120 stanza error to answer with.
"""

from __future__ import annotations

import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import ClassVar

from ..errors import LocalProtocolError, RemoteProtocolError
from ..jingle import ns
from ..jingle.transport import register_transport

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "IbbTransport",
    "MAX_BLOCK_SIZE",
    "SEQ_MODULUS",
    "ReceiveState",
    "SendSeq",
    "answer_offer",
    "check_open_block_size",
    "decode_block",
    "encode_block",
    "negotiate_block_size",
    "next_seq",
    "parse_block_size",
    "parse_seq",
    "seq_acceptable",
    "validate_sid",
]

#: XEP-0047 §2.1: "block-size ... MUST NOT be greater than 65535".
MAX_BLOCK_SIZE = 65535
#: XEP-0047 §5 recommends 4096 (and every client in docs/protocol.md §8.3 uses 4096 or 8192).
DEFAULT_BLOCK_SIZE = 4096
#: XEP-0047 §2.2: seq is an unsignedShort that wraps to 0 after 65535.
SEQ_MODULUS = 65536
#: Libervia 0.8's wrap (docs/interop.md §7.4): 0…65534, then 0.
LIBERVIA_SEQ_MODULUS = SEQ_MODULUS - 1

# XEP-0047 §2.1: sid is an NMTOKEN.  This is the XML 1.0 NameChar set, minus the
# astral planes nobody uses in a session id.
_NMTOKEN = re.compile(
    "[-.0-9:A-Z_a-z\u00b7\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u037d\u037f-\u1fff"
    "\u200c\u200d\u203f\u2040\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff"
    "\uf900-\ufdcf\ufdf0-\ufffd]+"
)
_DIGITS = re.compile("[0-9]+")
_XML_WHITESPACE = " \t\r\n"


# --------------------------------------------------------------------------- block size


def parse_block_size(value: str | int | None) -> int:
    """A ``block-size`` as an int; bad-request unless 1 ≤ value ≤ 65535 (XEP-0047 §2.1)."""
    if value is None:
        raise RemoteProtocolError("block-size is missing", condition="bad-request",
                                  error_type="modify")
    if isinstance(value, int):
        size = value
    else:
        text = value.strip()
        if not _DIGITS.fullmatch(text):
            raise RemoteProtocolError(f"block-size {value!r} is not a number",
                                      condition="bad-request", error_type="modify")
        size = int(text)
    if not 1 <= size <= MAX_BLOCK_SIZE:
        raise RemoteProtocolError(f"block-size {size} is outside 1..{MAX_BLOCK_SIZE}",
                                  condition="bad-request", error_type="modify")
    return size


def negotiate_block_size(offered: int, limit: int = MAX_BLOCK_SIZE) -> int:
    """The block size to answer an offer with (XEP-0261 §2.2).

    The responder may lower the offered size to its own ``limit`` but never raise it
    (Conversations#3514 is what happens otherwise), and nothing exceeds 65535.
    """
    offered = parse_block_size(offered)
    if limit < 1:
        raise LocalProtocolError(f"our block-size limit {limit} is not positive")
    return min(offered, limit, MAX_BLOCK_SIZE)


def check_open_block_size(requested: str | int | None, negotiated: int) -> int:
    """Validate the ``block-size`` of an IBB ``<open/>`` against the Jingle agreement.

    XEP-0261 §2.2: a bigger block size than negotiated is refused with
    ``resource-constraint`` (XEP-0047 §2.1 Example 4 uses error type ``modify``).
    A smaller one is accepted and becomes the limit for data chunks.
    """
    size = parse_block_size(requested)
    if size > negotiated:
        raise RemoteProtocolError(
            f"<open/> asks for block-size {size}, Jingle negotiated {negotiated}",
            condition="resource-constraint", error_type="modify")
    return size


def validate_sid(sid: str | None) -> str:
    """Check that ``sid`` is an NMTOKEN (XEP-0047 §2.1); bad-request otherwise."""
    if not sid or not _NMTOKEN.fullmatch(sid):
        raise RemoteProtocolError(f"sid {sid!r} is not an NMTOKEN", condition="bad-request",
                                  error_type="modify")
    return sid


# --------------------------------------------------------------------------- seq


def next_seq(seq: int) -> int:
    """The ``seq`` after ``seq`` on the wire: +1, wrapping 65535 → 0 (XEP-0047 §2.2)."""
    return (seq + 1) % SEQ_MODULUS


def parse_seq(value: str | None) -> int:
    """A ``seq`` attribute as a non-negative int.

    Values above 65535 are *not* rejected here: Conversations' sender never wraps
    (docs/protocol.md §8.3), so it sends 65536, 65537, ... and :func:`seq_acceptable`
    decides whether such a value is the expected one.
    """
    if value is None or not _DIGITS.fullmatch(value.strip()):
        raise RemoteProtocolError(f"seq {value!r} is not an unsigned number",
                                  condition="bad-request", error_type="cancel")
    return int(value.strip())


def seq_acceptable(seq: int, count: int) -> bool:
    """Whether ``seq`` is valid for the ``count``-th block (0-based) in one direction.

    XEP-0047 §2.2 says ``seq`` wraps at 65536; docs/protocol.md §8.3 says be lenient with
    peers that do not wrap: accept ``seq == count`` (non-wrapping counter) or
    ``seq == count % 65536`` (spec).  The two differ only from the 65537th block on.
    Libervia 0.8 wraps one early, modulo 65535 (0…65534, then 0: docs/interop.md §7.4),
    so ``seq == count % 65535`` is accepted too; it differs from the others only from
    the 65536th block on, where none of them can be meant by a replayed block.
    """
    return seq in (count % SEQ_MODULUS, count, count % LIBERVIA_SEQ_MODULUS)


class SendSeq:
    """The sender's ``seq`` counter for one direction of one bytestream (XEP-0047 §2.2).

    ``wrap=False`` reproduces a non-wrapping peer (Conversations); tests use it, jinglefs
    always wraps.  ``start`` lets tests begin near 65535.
    """

    __slots__ = ("_value", "_wrap")

    def __init__(self, start: int = 0, *, wrap: bool = True) -> None:
        if start < 0 or (wrap and start >= SEQ_MODULUS):
            raise LocalProtocolError(f"seq cannot start at {start}")
        self._value = start
        self._wrap = wrap

    def take(self) -> int:
        """Return the ``seq`` for the next block and advance."""
        value = self._value
        self._value = next_seq(value) if self._wrap else value + 1
        return value


# --------------------------------------------------------------------------- payloads


def encode_block(data: bytes | bytearray | memoryview) -> str:
    """One block's ``<data/>`` text: standard base64 with padding (XEP-0047 §2.2)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _strict_b64(text: str) -> bytes | None:
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        return None
    # strict_mode still ignores surplus "=" after the padding: demand the canonical length.
    return data if len(text) == 4 * ((len(data) + 2) // 3) else None


def decode_block(text: str | None, block_size: int) -> bytes:
    """Decode one ``<data/>`` text, strictly.

    XEP-0047 §2.2: each chunk is independently base64-encoded with padding (RFC 4648
    §4).  Characters outside the alphabet, missing padding or data after the padding
    are ``bad-request``.  XML whitespace (line wrapping) is tolerated.  A decoded chunk
    larger than ``block_size`` is also ``bad-request`` (XEP-0047 §2.1: block-size is the
    maximum before encoding).
    """
    if not text:
        return b""
    data = _strict_b64(text)
    if data is None and any(c in text for c in _XML_WHITESPACE):
        compact = "".join(text.split())
        data = _strict_b64(compact) if compact else b""
    if data is None:
        raise RemoteProtocolError("data is not valid base64", condition="bad-request",
                                  error_type="cancel")
    if len(data) > block_size:
        raise RemoteProtocolError(
            f"data chunk of {len(data)} bytes exceeds block-size {block_size}",
            condition="bad-request", error_type="modify")
    return data


class ReceiveState:
    """The receiving half of one bytestream direction, sans I/O (XEP-0047 §2.2–§3).

    Feed every ``<data/>`` to :meth:`accept`.  It returns the decoded bytes, or raises
    :class:`RemoteProtocolError` whose ``condition`` is the error to answer with:

    * ``unexpected-request``: out-of-sequence or reused ``seq`` (the chunk MUST NOT be
      processed and the bytestream MUST be closed);
    * ``bad-request``: malformed ``seq``, invalid base64, or a chunk over block-size.

    After the first error the state is :attr:`failed` and accepts nothing more, since
    the bytestream is closed.
    """

    __slots__ = ("block_size", "count", "failed")

    def __init__(self, block_size: int, *, first_count: int = 0) -> None:
        self.block_size = parse_block_size(block_size)
        #: Blocks accepted so far (plus ``first_count``); not wrapped.
        self.count = first_count
        self.failed = False

    @property
    def expected_seq(self) -> int:
        """The ``seq`` a spec-following (wrapping) sender puts on the next block."""
        return self.count % SEQ_MODULUS

    def accept(self, seq: str | int | None, text: str | None) -> bytes:
        if self.failed:
            raise RemoteProtocolError("the bytestream is already closed after an error",
                                      condition="unexpected-request", error_type="cancel")
        try:
            number = seq if isinstance(seq, int) else parse_seq(seq)
            if not seq_acceptable(number, self.count):
                raise RemoteProtocolError(
                    f"seq {number} is out of sequence (expected {self.expected_seq})",
                    condition="unexpected-request", error_type="cancel")
            data = decode_block(text, self.block_size)
        except RemoteProtocolError:
            self.failed = True
            raise
        self.count += 1
        return data


# --------------------------------------------------------------------------- XEP-0261 answer


def answer_offer(offer: IbbTransport, limit: int = MAX_BLOCK_SIZE) -> IbbTransport:
    """Our ``<transport/>`` answering an IBB offer (session-accept / transport-accept).

    XEP-0261 §2.2 and docs/protocol.md §15.8: same ``sid`` and ``stanza``, block size
    lowered to ``limit`` if needed, never raised.
    """
    return IbbTransport(sid=validate_sid(offer.sid),
                        block_size=negotiate_block_size(offer.block_size, limit),
                        stanza=offer.stanza)


@register_transport
@dataclass(frozen=True)
class IbbTransport:
    """XEP-0261 §2 ``<transport xmlns='urn:xmpp:jingle:transports:ibb:1'/>``."""

    sid: str
    block_size: int = 4096
    stanza: str = "iq"

    namespace: ClassVar[str] = ns.IBB_TRANSPORT
    MAX_BLOCK_SIZE: ClassVar[int] = 65535  # XEP-0047 §2.1

    @classmethod
    def from_element(cls, el: ET.Element) -> IbbTransport:
        sid = el.get("sid")
        if not sid:
            raise RemoteProtocolError("IBB transport without sid", condition="bad-request")
        try:
            block_size = int(el.get("block-size", "4096"))
        except ValueError:
            raise RemoteProtocolError("IBB block-size is not a number",
                                      condition="bad-request") from None
        if not 0 < block_size <= cls.MAX_BLOCK_SIZE:
            raise RemoteProtocolError(f"IBB block-size {block_size} out of range",
                                      condition="bad-request")
        stanza = el.get("stanza", "iq")
        if stanza not in ("iq", "message"):
            raise RemoteProtocolError(f"IBB stanza {stanza!r} unknown", condition="bad-request")
        return cls(sid=sid, block_size=block_size, stanza=stanza)

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.IBB_TRANSPORT}}}transport",
                        {"sid": self.sid, "block-size": str(self.block_size)})
        if self.stanza != "iq":
            el.set("stanza", self.stanza)
        return el
