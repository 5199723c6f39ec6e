"""Which ICE implementation carries a session (jinglefs/ice/backend.py), and the UDP probe
that decides between native (TURN over UDP) and aiortc (TURN over TCP) when the server
announces both (jinglefs/ice/probe.py).  Runs on every Python: the rule is told whether the
native stack is there."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest

from jinglefs.ice.backend import AIORTC, NATIVE, choose_implementation
from jinglefs.ice.probe import binding_request, is_answer, udp_reachable
from jinglefs.ice.protocol import IceServers
from jinglefs.ice.servers import ExternalService, pick_ice_servers
from tests.servers.coturn import CoturnServer

TURN_UDP = IceServers(stun_host="203.0.113.1", turn_host="203.0.113.1", turn_port=3478,
                      turn_username="u", turn_password="p", turn_transport="udp")
TURN_TCP_ONLY = replace(TURN_UDP, turn_transport="tcp")
TURN_TLS_ONLY = replace(TURN_UDP, turn_transport="tcp", turn_ssl=True, turn_port=5349)
TURN_BOTH = replace(TURN_TCP_ONLY, turn_also_udp_port=3478)  # what Prosody announces


@pytest.mark.parametrize("preference,native,servers,relay_only,reachable,expected", [
    # auto: native whenever it can do what the path needs
    ("auto", True, None, False, None, NATIVE),
    ("auto", True, IceServers(stun_host="s"), False, None, NATIVE),
    ("auto", True, TURN_UDP, False, None, NATIVE),
    ("auto", True, TURN_BOTH, False, True, NATIVE),
    # libjuice relays over UDP only
    ("auto", True, TURN_TCP_ONLY, False, None, AIORTC),
    ("auto", True, TURN_TLS_ONLY, False, None, AIORTC),
    ("auto", True, TURN_BOTH, False, False, AIORTC),  # UDP blocked: TURN/TCP (natlab)
    # libjuice's relay policy still sends checks from the host socket
    ("auto", True, TURN_UDP, True, None, AIORTC),
    # not installed (CPython < 3.12, another OS)
    ("auto", False, None, False, None, AIORTC),
    # forced
    ("aiortc", True, None, False, None, AIORTC),
    ("native", True, TURN_TCP_ONLY, True, None, NATIVE),
    ("native", False, None, False, None, AIORTC),  # cannot: said in the reason
])
def test_the_rule(preference: str, native: bool, servers: IceServers | None,
                  relay_only: bool, reachable: bool | None, expected: str) -> None:
    choice = choose_implementation(preference, native=native, servers=servers,
                                   relay_only=relay_only, turn_udp_reachable=reachable)
    assert choice.implementation == expected
    assert choice.why


def test_unavailable_native_says_why() -> None:
    choice = choose_implementation("native", native=False, servers=None, relay_only=False,
                                   turn_udp_reachable=None)
    assert "unavailable" in choice.why and "aiolibdatachannel" in choice.why


def test_turn_udp_port() -> None:
    assert TURN_UDP.turn_udp_port == 3478
    assert TURN_TCP_ONLY.turn_udp_port is None and TURN_TLS_ONLY.turn_udp_port is None
    assert TURN_BOTH.turn_udp_port == 3478
    assert replace(TURN_BOTH, turn_password=None).turn_udp_port is None  # no TURN at all


def turn(transport: str, port: int = 3478, kind: str = "turn", user: str = "u"
         ) -> ExternalService:
    return ExternalService(kind, "t.example", port, transport, user, "p")


def test_pick_keeps_the_udp_twin_of_a_tcp_turn() -> None:
    both = pick_ice_servers([turn("udp", 3479), turn("tcp")])
    assert both is not None
    assert (both.turn_transport, both.turn_port, both.turn_udp_port) == ("tcp", 3478, 3479)
    # another user name is another service: not the same server's UDP side
    other = pick_ice_servers([turn("udp", 3479, user="v"), turn("tcp")])
    assert other is not None and other.turn_transport == "tcp" and other.turn_udp_port is None
    only_tls = pick_ice_servers([turn("tcp", 5349, kind="turns")])
    assert only_tls is not None and only_tls.turn_udp_port is None


# ------------------------------------------------------------------ the probe


def test_binding_request_and_answers() -> None:
    tid = bytes(range(12))
    request = binding_request(tid)
    assert len(request) == 20 and request[:2] == b"\x00\x01" and request[8:] == tid
    success = b"\x01\x01\x00\x00" + request[4:8] + tid
    error = b"\x01\x11\x00\x00" + request[4:8] + tid
    assert is_answer(success, tid) and is_answer(error, tid)
    assert not is_answer(success, bytes(12))  # another transaction
    assert not is_answer(request, tid)  # our own request echoed back
    assert not is_answer(success[:19], tid)


async def test_probe_reaches_coturn_over_udp(coturn: CoturnServer) -> None:
    assert await udp_reachable(coturn.host, coturn.port) is True


@pytest.fixture
def silent_udp() -> Iterator[int]:
    """A bound UDP port that never answers (UDP dropped on the way)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_probe_of_a_silent_server_says_no(silent_udp: int) -> None:
    assert await udp_reachable("127.0.0.1", silent_udp, wait=0.3) is False


async def test_probe_of_an_unresolvable_name_says_no() -> None:
    assert await udp_reachable("no-such-host.invalid", 3478, wait=0.3) is False
