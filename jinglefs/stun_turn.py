"""STUN and TURN server addresses as users write them (RFC 7064 / RFC 7065 URIs), pure.

Shared by the ICE rung (:mod:`jinglefs.ice.negotiator` turns :attr:`Settings.stun
<jinglefs.api.Settings.stun>` / :attr:`~jinglefs.api.Settings.turn` into the servers it gives
the ICE agent) and by the login step of the front ends (:mod:`jinglefs.login`, which checks
``--stun`` / ``--turn`` and stored servers).  No I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

__all__ = ["STUN_PORT", "TURNS_PORT", "TurnUrl", "parse_stun", "parse_turn", "turn_setting"]

#: RFC 8489 §18.6 / RFC 7064 §3.1 default ports; RFC 7065 §3 for turns.
STUN_PORT = 3478
TURNS_PORT = 5349


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (RFC 3986 authority without userinfo)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed '[' in an IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after the address")
        port_text = rest[1:]
        ipaddress.IPv6Address(host)  # ValueError when it is not one
    elif text.count(":") > 1:
        host, port_text = text, ""  # a bare IPv6 address
        ipaddress.IPv6Address(host)
    else:
        host, _, port_text = text.partition(":")
    if not host or any(ch.isspace() or ch in "/@?#[]" for ch in host):
        raise ValueError(f"bad host name {host!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"bad port {port_text!r}")
    return host, int(port_text)


def parse_stun(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` or a ``stun:`` URI (RFC 7064) -> (host, port).  ValueError if bad."""
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if sep and scheme.lower() == "stuns":
        raise ValueError("stuns: (STUN over TLS) is not supported, use stun:")
    if sep and scheme.lower() == "stun":
        text = rest
    if "?" in text:
        raise ValueError("a STUN URI takes no parameters")
    return _host_port(text, STUN_PORT)


@dataclass(frozen=True)
class TurnUrl:
    """One TURN server (RFC 7065 URI plus the credentials the ICE agent needs)."""

    host: str
    port: int
    transport: Literal["udp", "tcp"]
    ssl: bool = False  # turns: TURN over TLS (over TCP)
    username: str | None = None
    password: str | None = None


def parse_turn(text: str, *, password_in_url: bool = True) -> TurnUrl:
    """``turn[s]:[USER[:PASS]@]HOST[:PORT][?transport=udp|tcp]`` -> :class:`TurnUrl`.

    RFC 7065 plus the common user-info extension.  With ``password_in_url`` (the format of
    :attr:`~jinglefs.api.Settings.turn`) the user info splits at its *last* colon: TURN REST
    user names (``expiry:user``) contain colons, base64 passwords do not.  Without it (the
    command line, which never takes a password) the whole user info is the user name.  Both
    parts are percent-decoded.  ValueError when malformed.
    """
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("turn", "turns"):
        raise ValueError("a TURN server starts with turn: or turns:")
    rest, _, query = rest.partition("?")
    transport: str | None = None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key != "transport" or value.lower() not in ("udp", "tcp"):
            raise ValueError(f"unknown TURN parameter {item!r} (only transport=udp|tcp)")
        transport = value.lower()
    ssl = scheme == "turns"
    if ssl and transport == "udp":
        raise ValueError("turns: runs over TCP (DTLS to the TURN server is not supported)")
    userinfo, at, hostport = rest.rpartition("@")
    username: str | None = None
    password: str | None = None
    if at:
        if password_in_url and ":" in userinfo:
            user_text, _, pass_text = userinfo.rpartition(":")
            username, password = unquote(user_text), unquote(pass_text)
        else:
            username = unquote(userinfo)
        if not username:
            raise ValueError("empty TURN user name")
    host, port = _host_port(hostport, TURNS_PORT if ssl else STUN_PORT)
    chosen: Literal["udp", "tcp"] = "tcp" if ssl or transport == "tcp" else "udp"
    return TurnUrl(host, port, chosen, ssl, username, password or None)


def turn_setting(url: TurnUrl) -> str:
    """The :attr:`~jinglefs.api.Settings.turn` string for ``url`` (credentials escaped)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    userinfo = ""
    if url.username is not None:
        userinfo = quote(url.username, safe="")
        if url.password is not None:
            userinfo += ":" + quote(url.password, safe="")
        userinfo += "@"
    return (f"{'turns' if url.ssl else 'turn'}:{userinfo}{host}:{url.port}"
            f"?transport={url.transport}")
