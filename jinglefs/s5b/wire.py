"""Sans-IO SOCKS5 (RFC 1928), the subset XEP-0065 uses (docs/protocol.md §7.6).

::

    client -> server   05 01 00                               greeting: NO-AUTH only
    server -> client   05 00                                  method selection (05 FF: none)
    client -> server   05 01 00 03 28 <40 hex chars> 00 00    CONNECT, ATYP=domain, port 0
    server -> client   05 00 00 03 28 <same 40 chars> 00 00   reply, BND echoes DST

Builders return bytes.  Parsers take whatever has been received so far and return
``None`` when more bytes are needed, or ``(message, consumed)`` once a whole message is
there (bytes after ``consumed`` belong to what follows).  Bytes that can never become a
valid message raise :class:`Socks5WireError` at once, without waiting for more.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import TransportError

__all__ = [
    "ATYP_DOMAIN",
    "ATYP_IPV4",
    "ATYP_IPV6",
    "CMD_CONNECT",
    "METHOD_NO_ACCEPTABLE",
    "METHOD_NO_AUTH",
    "REP_ADDRESS_TYPE_NOT_SUPPORTED",
    "REP_COMMAND_NOT_SUPPORTED",
    "REP_GENERAL_FAILURE",
    "REP_NOT_ALLOWED",
    "REP_SUCCEEDED",
    "Reply",
    "Request",
    "Socks5WireError",
    "build_connect",
    "build_greeting",
    "build_method_selection",
    "build_reply",
    "is_xep0065_dstaddr",
    "parse_greeting",
    "parse_method_selection",
    "parse_reply",
    "parse_request",
]

VERSION = 0x05
METHOD_NO_AUTH = 0x00
METHOD_NO_ACCEPTABLE = 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04
# RFC 1928 §6 reply codes.
REP_SUCCEEDED = 0x00
REP_GENERAL_FAILURE = 0x01
REP_NOT_ALLOWED = 0x02
REP_COMMAND_NOT_SUPPORTED = 0x07
REP_ADDRESS_TYPE_NOT_SUPPORTED = 0x08

_DSTADDR = re.compile(rb"[0-9a-f]{40}")

Buffer = bytes | bytearray | memoryview


class Socks5WireError(TransportError):
    """The other side sent bytes that are not valid SOCKS5."""


@dataclass(frozen=True)
class Request:
    """A SOCKS5 request (RFC 1928 §4)."""

    cmd: int
    atyp: int
    #: Domain name (ATYP 3) or textual IP address (ATYP 1/4).
    address: str
    port: int


@dataclass(frozen=True)
class Reply:
    """A SOCKS5 reply (RFC 1928 §6)."""

    rep: int
    atyp: int
    address: str
    port: int


def is_xep0065_dstaddr(address: str) -> bool:
    """A DST.ADDR as XEP-0065 §5.3.2 makes it: 40 lowercase hex digits."""
    return _DSTADDR.fullmatch(address.encode("ascii", "replace")) is not None


def build_greeting(methods: tuple[int, ...] = (METHOD_NO_AUTH,)) -> bytes:
    if not 1 <= len(methods) <= 255:
        raise ValueError("a SOCKS5 greeting offers 1..255 methods")
    return bytes([VERSION, len(methods), *methods])


def parse_greeting(buf: Buffer) -> tuple[tuple[int, ...], int] | None:
    """Client greeting -> (offered methods, consumed)."""
    if len(buf) < 1:
        return None
    if buf[0] != VERSION:
        raise Socks5WireError(f"not SOCKS5 (version byte {buf[0]:#04x})")
    if len(buf) < 2:
        return None
    n = buf[1]
    if n == 0:
        raise Socks5WireError("SOCKS5 greeting offers no method")
    if len(buf) < 2 + n:
        return None
    return tuple(buf[2 : 2 + n]), 2 + n


def build_method_selection(method: int) -> bytes:
    return bytes([VERSION, method])


def parse_method_selection(buf: Buffer) -> tuple[int, int] | None:
    """Server's method choice -> (method, consumed)."""
    if len(buf) < 1:
        return None
    if buf[0] != VERSION:
        raise Socks5WireError(f"not SOCKS5 (version byte {buf[0]:#04x})")
    if len(buf) < 2:
        return None
    return buf[1], 2


def _encode_address(address: str) -> bytes:
    """ATYP + address bytes: IP literals as ATYP 1/4, anything else as a domain name
    (ATYP 3, which is what XEP-0065 uses for its hash)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return bytes([ATYP_IPV4 if ip.version == 4 else ATYP_IPV6]) + ip.packed
    raw = address.encode("ascii")
    if not 1 <= len(raw) <= 255:
        raise ValueError("a SOCKS5 domain name is 1..255 bytes")
    return bytes([ATYP_DOMAIN, len(raw)]) + raw


def _build(code: int, address: str, port: int) -> bytes:
    """VER CMD|REP RSV ATYP ADDR PORT (RFC 1928 §4 and §6 share the layout)."""
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    return bytes([VERSION, code, 0x00]) + _encode_address(address) + port.to_bytes(2, "big")


def build_connect(dstaddr: str, port: int = 0) -> bytes:
    """CONNECT to ``dstaddr`` (the XEP-0065 hash), DST.PORT 0 (XEP-0065 §5.3.2)."""
    return _build(CMD_CONNECT, dstaddr, port)


def build_reply(rep: int, address: str, port: int = 0) -> bytes:
    """A reply whose BND.ADDR/BND.PORT echo the request's (XEP-0065 §5.3.2)."""
    return _build(rep, address, port)


def _parse_message(buf: Buffer, what: str) -> tuple[int, int, str, int, int] | None:
    """Common layout of requests and replies: VER x RSV ATYP ADDR PORT."""
    if len(buf) < 1:
        return None
    if buf[0] != VERSION:
        raise Socks5WireError(f"not SOCKS5 (version byte {buf[0]:#04x})")
    if len(buf) < 4:
        return None
    code, rsv, atyp = buf[1], buf[2], buf[3]
    if rsv != 0:
        raise Socks5WireError(f"SOCKS5 {what} with a non-zero reserved byte")
    if atyp == ATYP_IPV4:
        end = 4 + 4
    elif atyp == ATYP_IPV6:
        end = 4 + 16
    elif atyp == ATYP_DOMAIN:
        if len(buf) < 5:
            return None
        if buf[4] == 0:
            raise Socks5WireError(f"SOCKS5 {what} with an empty domain name")
        end = 5 + buf[4]
    else:
        raise Socks5WireError(f"SOCKS5 {what} with unknown address type {atyp:#04x}")
    if len(buf) < end + 2:
        return None
    raw = bytes(buf[4:end])
    if atyp == ATYP_DOMAIN:
        name = raw[1:]
        if not name.isascii() or any(b < 0x21 or b == 0x7F for b in name):
            raise Socks5WireError(f"SOCKS5 {what} with a non-printable domain name")
        address = name.decode("ascii")
    else:
        address = str(ipaddress.ip_address(raw))
    port = int.from_bytes(buf[end : end + 2], "big")
    return code, atyp, address, port, end + 2


def parse_request(buf: Buffer) -> tuple[Request, int] | None:
    """Client request -> (Request, consumed).  Any CMD/ATYP RFC 1928 allows parses;
    the server decides what it accepts (XEP-0065 needs CONNECT + ATYP 3)."""
    parsed = _parse_message(buf, "request")
    if parsed is None:
        return None
    cmd, atyp, address, port, consumed = parsed
    if cmd not in (0x01, 0x02, 0x03):
        raise Socks5WireError(f"SOCKS5 request with unknown command {cmd:#04x}")
    return Request(cmd=cmd, atyp=atyp, address=address, port=port), consumed


def parse_reply(buf: Buffer) -> tuple[Reply, int] | None:
    """Server reply -> (Reply, consumed)."""
    parsed = _parse_message(buf, "reply")
    if parsed is None:
        return None
    rep, atyp, address, port, consumed = parsed
    return Reply(rep=rep, atyp=atyp, address=address, port=port), consumed
