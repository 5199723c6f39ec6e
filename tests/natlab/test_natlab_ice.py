"""IceSession across real NATs (network namespaces; natlab README for the topology).

Two IceSessions run as separate processes in hosts A (10.1.0.2 behind r1) and B (10.2.0.2
behind r2); STUN/TURN is coturn at 203.0.113.1:3478 in the lab's "internet".
"""

from __future__ import annotations

import pytest

from tests.natlab.conftest import NatLab, record_timing

pytestmark = pytest.mark.natlab


def _stun(env: dict[str, str]) -> list[str]:
    return ["--stun", env["NATLAB_STUN"]]


def _turn(env: dict[str, str]) -> list[str]:
    return ["--turn", env["NATLAB_TURN"], env["NATLAB_TURN_USER"], env["NATLAB_TURN_PASS"]]


def _ok(a: dict[str, object], b: dict[str, object], name: str = "") -> None:
    assert "error" not in a and "error" not in b, (a, b)
    assert a["sha256"] == b["sha256"]
    if name:  # IceSession.connect() alone (candidates already exchanged), for the ladder's limits
        record_timing(name, f"{a['path']} {a['pair']}; connect A {a['connect_s']} s, "
                            f"B {b['connect_s']} s")


async def test_cone_nat_stun_hole_punch(natlab: NatLab) -> None:
    natlab.up("cone")
    env = natlab.env()
    a, b = await natlab.ice_pair(_stun(env), _stun(env))
    _ok(a, b, "cone, STUN")
    assert a["path"] == b["path"] == "ice-direct"
    # The peer is reached at its router's public (server-reflexive) address.
    assert env["NATLAB_R2_WAN"] in str(a["pair"])


async def test_cone_nat_with_turn_prefers_direct(natlab: NatLab) -> None:
    # natlab pitfall 3: without the relay hold, 12 of 20 such runs were relayed.
    natlab.up("cone")
    env = natlab.env()
    args = [*_stun(env), *_turn(env), "--relay-delay", "1.5"]
    a, b = await natlab.ice_pair(args, args)
    _ok(a, b, "cone, STUN + TURN")
    assert a["path"] == "ice-direct", a


async def test_symmetric_nat_needs_the_relay(natlab: NatLab) -> None:
    natlab.up("symmetric")
    env = natlab.env()
    args = [*_stun(env), *_turn(env)]
    a, b = await natlab.ice_pair(args, args)
    _ok(a, b, "symmetric, STUN + TURN")
    assert a["path"] == b["path"] == "ice-relay"


async def test_udp_blocked_without_turn_fails_bounded(natlab: NatLab) -> None:
    natlab.up("udp-blocked")
    env = natlab.env()
    args = [*_stun(env), "--timeout", "4"]
    a, b = await natlab.ice_pair(args, args)
    assert str(a.get("error", "")).startswith("CandidatesFailed"), a
    assert "error" in b, b
